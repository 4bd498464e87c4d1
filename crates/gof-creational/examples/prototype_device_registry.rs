//! Prototype: devices commissioned by cloning named prototypes, and what shallow and deep copies share.

use std::sync::Arc;

use gof_creational::prototype::{
    BusLog, Calibration, Device, PrototypeRegistry, Relay, TemperatureSensor,
};
use pattern_core::diagram::Diagram;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `cargo xtask demo --diagrams` draws the Prototype page's sequence diagram from the
    // registry part of this run.
    let diagram = Diagram::from_env("prototype_device_registry");
    let table = Arc::new(Calibration {
        model: "PT100".into(),
        coefficients: vec![-245.0, 2.5],
    });
    let bus_a = Arc::new(BusLog::default());

    println!("== a registry of prototypes: clone by name, concrete types unknown ==");
    let mut registry: PrototypeRegistry<dyn Device> = PrototypeRegistry::default();
    let pt100 = TemperatureSensor::new("pt100", Arc::clone(&table), Arc::clone(&bus_a));
    registry.register("pt100", Box::new(pt100));
    registry.register("relay", Box::new(Relay::new("relay", 1)));
    println!(
        "registry: prototypes {:?}",
        registry.names().collect::<Vec<_>>()
    );
    let mut plant: Vec<Box<dyn Device>> = Vec::new();
    for (prototype, name) in [
        ("pt100", "boiler"),
        ("pt100", "return-pipe"),
        ("relay", "pump"),
    ] {
        let mut device = registry.create(prototype)?;
        device.rename(name);
        println!("cloned `{prototype}` -> {}", device.describe());
        plant.push(device);
    }
    println!(
        "shallow copies share: calibration table owners {}, bus A log owners {}",
        Arc::strong_count(&table),
        Arc::strong_count(&bus_a)
    );
    let mut probe = registry.create_deep("pt100")?;
    probe.rename("lab-probe");
    println!("deep-cloned `pt100` -> {}", probe.describe());
    println!(
        "after the deep copy: table owners {}, bus A log owners {} (unchanged: the copy owns its own)",
        Arc::strong_count(&table),
        Arc::strong_count(&bus_a)
    );
    match registry.create("lidar") {
        Ok(_) => println!("registry: unexpected lidar"),
        Err(err) => println!("registry: {err}"),
    }

    diagram.pause();
    println!("== shallow versus deep, seen through the shared bus log ==");
    let mut prototype =
        TemperatureSensor::new("tank", Arc::clone(&table), Arc::new(BusLog::default()));
    prototype.set_alarm_above(80.0);
    let mut shallow = prototype.clone();
    shallow.rename("tank-shallow");
    let mut deep = prototype.deep_copy();
    deep.rename("tank-deep");
    prototype.read(120.0);
    shallow.read(134.0);
    deep.read(130.0);
    println!("prototype's bus log (the shallow clone writes into it too):");
    for line in prototype.bus().lines() {
        println!("  {line}");
    }
    println!("deep clone's bus log (its own):");
    for line in deep.bus().lines() {
        println!("  {line}");
    }

    println!("== recalibrating a shallow clone: copy on write ==");
    shallow.set_coefficients(vec![-240.0, 2.5]);
    println!(
        "raw 134.0: prototype reads {:.1} C, recalibrated clone reads {:.1} C, tables shared: {}",
        prototype.calibration().apply(134.0),
        shallow.calibration().apply(134.0),
        Arc::ptr_eq(prototype.calibration(), shallow.calibration())
    );
    println!("plant: {} devices commissioned", plant.len());
    diagram.finish()?;
    Ok(())
}
