//! Prototype: boxed cloning, the registry, and shallow versus deep copies.

use std::sync::Arc;

use gof_creational::Error;
use gof_creational::prototype::{
    BusLog, Calibration, DeepClone, Device, PrototypeRegistry, Relay, TemperatureSensor,
};

fn pt100() -> Arc<Calibration> {
    Arc::new(Calibration {
        model: "PT100".into(),
        coefficients: vec![-245.0, 2.5],
    })
}

#[test]
fn a_shallow_clone_shares_the_arc_parts() {
    let bus = Arc::new(BusLog::default());
    let prototype = TemperatureSensor::new("boiler", pt100(), Arc::clone(&bus));
    let mut clone = prototype.clone();
    clone.rename("boiler-2");
    clone.set_alarm_above(50.0);

    assert!(Arc::ptr_eq(prototype.calibration(), clone.calibration()));
    assert!(Arc::ptr_eq(prototype.bus(), clone.bus()));
    // Owned parts are copied: changing them on the clone leaves the prototype alone.
    assert_eq!(prototype.name(), "boiler");
    assert_eq!(prototype.alarm_above(), 90.0);
    // Shared parts are shared: what the clone writes, the prototype's log shows.
    clone.read(120.0);
    assert_eq!(prototype.bus().lines(), ["boiler-2: 55.0 C ALARM"]);
}

#[test]
fn a_deep_clone_shares_nothing() {
    let bus = Arc::new(BusLog::default());
    bus.record("before the copy");
    let prototype = TemperatureSensor::new("boiler", pt100(), Arc::clone(&bus));
    let deep = prototype.deep_copy();

    assert!(!Arc::ptr_eq(prototype.calibration(), deep.calibration()));
    assert!(!Arc::ptr_eq(prototype.bus(), deep.bus()));
    assert_eq!(**deep.calibration(), **prototype.calibration());
    deep.read(100.0);
    assert_eq!(bus.lines(), ["before the copy"]);
    assert_eq!(deep.bus().lines(), ["before the copy", "boiler: 5.0 C"]);
}

#[test]
fn recalibrating_a_shallow_clone_copies_on_write() {
    let prototype = TemperatureSensor::new("a", pt100(), Arc::default());
    let mut clone = prototype.clone();
    clone.set_coefficients(vec![0.0, 1.0]);
    assert!(!Arc::ptr_eq(prototype.calibration(), clone.calibration()));
    assert_eq!(prototype.calibration().coefficients, [-245.0, 2.5]);
    assert_eq!(clone.read(42.0).0, 42.0);
}

#[test]
fn boxed_devices_clone_without_naming_their_type() {
    let devices: Vec<Box<dyn Device>> = vec![
        Box::new(Relay::new("pump", 4)),
        Box::new(TemperatureSensor::new("tank", pt100(), Arc::default())),
    ];
    let copies = devices.clone();
    let described: Vec<String> = copies.iter().map(|d| d.describe()).collect();
    assert_eq!(
        described,
        [
            "relay pump on channel 4 (open)",
            "temperature sensor tank (PT100 table, alarm above 90.0 C)"
        ]
    );
}

#[test]
fn the_registry_hands_out_shallow_or_deep_copies_by_name() {
    let bus = Arc::new(BusLog::default());
    let mut registry: PrototypeRegistry<dyn Device> = PrototypeRegistry::default();
    registry.register(
        "pt100",
        Box::new(TemperatureSensor::new("pt100", pt100(), Arc::clone(&bus))),
    );
    registry.register("relay", Box::new(Relay::new("relay", 0)));
    assert_eq!(registry.names().collect::<Vec<_>>(), ["pt100", "relay"]);
    assert_eq!(Arc::strong_count(&bus), 2);

    let shallow = registry.create("pt100").unwrap();
    assert_eq!(
        Arc::strong_count(&bus),
        3,
        "a shallow copy shares the bus log"
    );
    let deep = registry.create_deep("pt100").unwrap();
    assert_eq!(
        Arc::strong_count(&bus),
        3,
        "a deep copy has its own bus log"
    );
    assert_eq!(deep.kind(), shallow.kind());

    let mut relay = registry.create_deep("relay").unwrap();
    relay.rename("fan");
    assert_eq!(registry.prototype("relay").unwrap().name(), "relay");

    assert!(
        matches!(registry.create("lidar"), Err(Error::UnknownPrototype { name }) if name == "lidar")
    );
    assert!(registry.create_deep("lidar").is_err());
}

#[test]
fn deep_clone_of_a_box_dispatches_to_the_concrete_type() {
    let bus = Arc::new(BusLog::default());
    let boxed: Box<dyn Device> = Box::new(TemperatureSensor::new("t", pt100(), Arc::clone(&bus)));
    let shallow = boxed.clone();
    assert_eq!(Arc::strong_count(&bus), 3);
    let deep = boxed.deep_clone();
    assert_eq!(Arc::strong_count(&bus), 3);
    drop((shallow, deep));
    assert_eq!(Arc::strong_count(&bus), 2);
}

/// The registry is generic: any boxed trait object with `Box<T>: Clone` works.
#[test]
fn the_registry_works_for_other_prototype_interfaces() {
    trait Shape: std::fmt::Debug {
        fn area(&self) -> f64;
        fn boxed(&self) -> Box<dyn Shape>;
    }
    #[derive(Debug, Clone)]
    struct Square(f64);
    impl Shape for Square {
        fn area(&self) -> f64 {
            self.0 * self.0
        }
        fn boxed(&self) -> Box<dyn Shape> {
            Box::new(self.clone())
        }
    }
    impl Clone for Box<dyn Shape> {
        fn clone(&self) -> Self {
            (**self).boxed()
        }
    }
    let mut shapes: PrototypeRegistry<dyn Shape> = PrototypeRegistry::default();
    shapes.register("unit", Box::new(Square(1.0)));
    assert_eq!(shapes.create("unit").unwrap().area(), 1.0);
}
