//! Prototype: devices cloned through `Box<dyn Device>` without knowing their concrete types, a registry that clones by name, and shallow versus deep copies.
//!
//! [`Device`] is the prototype interface.
//! Its supertrait [`CloneDevice`] supplies `clone_box` for every `Clone` device through a
//! blanket impl, which makes `Box<dyn Device>` itself [`Clone`]: the object clones itself,
//! the caller never names its class.
//!
//! A device's parts are either owned (its name, its settings) or shared through [`Arc`]
//! (a calibration table that many sensors use, a bus log that every device on a bus
//! writes to).
//! [`Clone`] is a *shallow* copy: owned parts are copied, shared parts are shared with the
//! prototype.
//! [`Device::deep_clone_box`] is a *deep* copy: shared parts are copied too, so the clone
//! is independent of its prototype.
//! [`PrototypeRegistry`] keeps named prototypes and hands out either kind of copy.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use crate::Error;

/// Supplies `clone_box` for every [`Device`] that is [`Clone`]; implement `Clone`, not this.
pub trait CloneDevice {
    /// A shallow copy of `self`, boxed: shared parts stay shared with `self`.
    fn clone_box(&self) -> Box<dyn Device>;
}

impl<T> CloneDevice for T
where
    T: Device + Clone + 'static,
{
    fn clone_box(&self) -> Box<dyn Device> {
        Box::new(self.clone())
    }
}

/// The prototype interface: a configurable device that can copy itself.
///
/// ```
/// use gof_creational::prototype::{Device, Relay};
///
/// let prototype: Box<dyn Device> = Box::new(Relay::new("pump", 3));
/// let mut copy = prototype.clone(); // Box<dyn Device> is Clone: no concrete type named
/// copy.rename("pump-2");
/// assert_eq!(prototype.name(), "pump");
/// assert_eq!(copy.describe(), "relay pump-2 on channel 3 (open)");
/// ```
pub trait Device: CloneDevice + fmt::Debug + Send + Sync {
    /// The kind of device, e.g. `"temperature sensor"`.
    fn kind(&self) -> &'static str;
    /// This device's name.
    fn name(&self) -> &str;
    /// Renames this device (clones are usually renamed right after creation).
    fn rename(&mut self, name: &str);
    /// One line describing the device and its settings.
    fn describe(&self) -> String;
    /// A deep copy: like [`clone_box`](CloneDevice::clone_box), but parts shared through
    /// `Arc` are copied too. The default suits devices without shared parts.
    fn deep_clone_box(&self) -> Box<dyn Device> {
        self.clone_box()
    }
}

impl Clone for Box<dyn Device> {
    fn clone(&self) -> Box<dyn Device> {
        // Dispatch on the boxed device: `self.clone_box()` would not compile here because
        // `Box<dyn Device>` is not itself a `Device`, and must not (it would recurse).
        (**self).clone_box()
    }
}

/// A copy that shares nothing with its original; the counterpart of [`Clone`] for prototypes.
pub trait DeepClone {
    /// A copy independent of `self`.
    fn deep_clone(&self) -> Self;
}

impl DeepClone for Box<dyn Device> {
    fn deep_clone(&self) -> Box<dyn Device> {
        (**self).deep_clone_box()
    }
}

/// A calibration table: the polynomial that turns raw readings into degrees.
///
/// Tables are large in real life and usually shared by every sensor of one model.
#[derive(Debug, Clone, PartialEq)]
pub struct Calibration {
    /// The model the table is for.
    pub model: String,
    /// Coefficients `c0 + c1*x + c2*x^2 + ...`.
    pub coefficients: Vec<f64>,
}

impl Calibration {
    /// Applies the table to a raw reading.
    pub fn apply(&self, raw: f64) -> f64 {
        self.coefficients
            .iter()
            .rev()
            .fold(0.0, |acc, c| acc * raw + c)
    }
}

/// A log of the messages seen on a field bus, shared by every device on that bus.
#[derive(Debug, Default)]
pub struct BusLog {
    lines: Mutex<Vec<String>>,
}

impl BusLog {
    /// Appends one message.
    pub fn record(&self, line: impl Into<String>) {
        self.lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(line.into());
    }

    /// A copy of the messages so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Clone for BusLog {
    fn clone(&self) -> BusLog {
        BusLog {
            lines: Mutex::new(self.lines()),
        }
    }
}

/// A concrete prototype with an owned part (its alarm threshold) and two shared parts
/// (its calibration table and its bus log).
///
/// ```
/// use std::sync::Arc;
/// use gof_creational::prototype::{BusLog, Calibration, TemperatureSensor};
///
/// let table = Arc::new(Calibration { model: "PT100".into(), coefficients: vec![-245.0, 2.4] });
/// let sensor = TemperatureSensor::new("boiler", table, Arc::new(BusLog::default()));
/// let shallow = sensor.clone();
/// assert!(Arc::ptr_eq(sensor.calibration(), shallow.calibration()));
/// let deep = sensor.deep_copy();
/// assert!(!Arc::ptr_eq(sensor.calibration(), deep.calibration()));
/// assert_eq!(deep.calibration(), sensor.calibration()); // equal, not shared
/// ```
#[derive(Debug, Clone)]
pub struct TemperatureSensor {
    name: String,
    alarm_above: f64,
    calibration: Arc<Calibration>,
    bus: Arc<BusLog>,
}

impl TemperatureSensor {
    /// A sensor with a 90 degree alarm threshold.
    pub fn new(name: &str, calibration: Arc<Calibration>, bus: Arc<BusLog>) -> TemperatureSensor {
        TemperatureSensor {
            name: name.to_owned(),
            alarm_above: 90.0,
            calibration,
            bus,
        }
    }

    /// The alarm threshold in degrees.
    pub fn alarm_above(&self) -> f64 {
        self.alarm_above
    }

    /// Changes the alarm threshold (an owned part: never affects clones).
    pub fn set_alarm_above(&mut self, degrees: f64) {
        self.alarm_above = degrees;
    }

    /// The calibration table (a shared part).
    pub fn calibration(&self) -> &Arc<Calibration> {
        &self.calibration
    }

    /// The bus log (a shared part).
    pub fn bus(&self) -> &Arc<BusLog> {
        &self.bus
    }

    /// Recalibrates this sensor only: copy-on-write, so clones sharing the old table keep it.
    pub fn set_coefficients(&mut self, coefficients: Vec<f64>) {
        Arc::make_mut(&mut self.calibration).coefficients = coefficients;
    }

    /// Converts a raw reading, reports it on the bus and says whether it raises the alarm.
    pub fn read(&self, raw: f64) -> (f64, bool) {
        let degrees = self.calibration.apply(raw);
        let alarm = degrees > self.alarm_above;
        self.bus.record(format!(
            "{}: {degrees:.1} C{}",
            self.name,
            if alarm { " ALARM" } else { "" }
        ));
        (degrees, alarm)
    }

    /// A deep copy with its concrete type: new calibration table and new bus log.
    pub fn deep_copy(&self) -> TemperatureSensor {
        TemperatureSensor {
            name: self.name.clone(),
            alarm_above: self.alarm_above,
            calibration: Arc::new(Calibration::clone(&self.calibration)),
            bus: Arc::new(BusLog::clone(&self.bus)),
        }
    }
}

impl Device for TemperatureSensor {
    fn kind(&self) -> &'static str {
        "temperature sensor"
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn rename(&mut self, name: &str) {
        name.clone_into(&mut self.name);
    }
    fn describe(&self) -> String {
        format!(
            "temperature sensor {} ({} table, alarm above {:.1} C)",
            self.name, self.calibration.model, self.alarm_above
        )
    }
    fn deep_clone_box(&self) -> Box<dyn Device> {
        Box::new(self.deep_copy())
    }
}

/// A concrete prototype with owned parts only, so its deep and shallow copies are the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relay {
    name: String,
    channel: u8,
    closed: bool,
}

impl Relay {
    /// An open relay on `channel`.
    pub fn new(name: &str, channel: u8) -> Relay {
        Relay {
            name: name.to_owned(),
            channel,
            closed: false,
        }
    }

    /// Closes or opens the relay.
    pub fn set_closed(&mut self, closed: bool) {
        self.closed = closed;
    }

    /// Whether the relay is closed.
    pub fn is_closed(&self) -> bool {
        self.closed
    }
}

impl Device for Relay {
    fn kind(&self) -> &'static str {
        "relay"
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn rename(&mut self, name: &str) {
        name.clone_into(&mut self.name);
    }
    fn describe(&self) -> String {
        let state = if self.closed { "closed" } else { "open" };
        format!("relay {} on channel {} ({state})", self.name, self.channel)
    }
}

/// Named prototypes; new objects are made by cloning one, never by naming a type.
///
/// It works for any boxed trait object that is [`Clone`] (and [`DeepClone`] for deep copies),
/// not only for [`Device`].
///
/// ```
/// use gof_creational::prototype::{Device, PrototypeRegistry, Relay};
///
/// let mut registry: PrototypeRegistry<dyn Device> = PrototypeRegistry::default();
/// registry.register("valve", Box::new(Relay::new("valve", 1)));
/// let mut v1 = registry.create("valve")?;
/// v1.rename("valve-1");
/// assert_eq!(v1.describe(), "relay valve-1 on channel 1 (open)");
/// assert!(registry.create("lidar").is_err());
/// # Ok::<(), gof_creational::Error>(())
/// ```
pub struct PrototypeRegistry<T: ?Sized> {
    prototypes: BTreeMap<String, Box<T>>,
}

impl<T: ?Sized> Default for PrototypeRegistry<T> {
    fn default() -> Self {
        PrototypeRegistry {
            prototypes: BTreeMap::new(),
        }
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for PrototypeRegistry<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.prototypes.iter()).finish()
    }
}

impl<T: ?Sized> PrototypeRegistry<T> {
    /// Registers `prototype` under `name`, returning the prototype it replaces.
    pub fn register(&mut self, name: impl Into<String>, prototype: Box<T>) -> Option<Box<T>> {
        self.prototypes.insert(name.into(), prototype)
    }

    /// Removes and returns the prototype registered under `name`.
    pub fn unregister(&mut self, name: &str) -> Option<Box<T>> {
        self.prototypes.remove(name)
    }

    /// The prototype registered under `name`, to inspect rather than to copy.
    pub fn prototype(&self, name: &str) -> Option<&T> {
        self.prototypes.get(name).map(|p| &**p)
    }

    /// The registered names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.prototypes.keys().map(String::as_str)
    }
}

/// The registry's name in the sequence diagrams drawn from runs.
const REGISTRY: &str = "PrototypeRegistry";

/// The registry's answer to a request for `name`, drawn as the reply.
fn answer<T: ?Sized>(name: &str, copy: Option<Box<T>>) -> Result<Box<T>, Error> {
    match copy {
        Some(copy) => {
            seq!(reply REGISTRY => "Client", "Ok(copy)");
            Ok(copy)
        }
        None => {
            let e = unknown(name);
            seq!(fail REGISTRY => "Client", "Err({e})");
            Err(e)
        }
    }
}

fn unknown(name: &str) -> Error {
    Error::UnknownPrototype {
        name: name.to_owned(),
    }
}

impl<T: ?Sized> PrototypeRegistry<T>
where
    Box<T>: Clone,
{
    /// A shallow copy of the prototype registered under `name`.
    pub fn create(&self, name: &str) -> Result<Box<T>, Error> {
        seq!("Client" => REGISTRY, "create({name:?})");
        let copy = self.prototypes.get(name).map(|prototype| {
            seq!(REGISTRY => format!("prototype {name:?}"), "clone() (shallow: shares Arc parts)");
            prototype.clone()
        });
        answer(name, copy)
    }
}

impl<T: ?Sized> PrototypeRegistry<T>
where
    Box<T>: DeepClone,
{
    /// A deep copy of the prototype registered under `name`.
    pub fn create_deep(&self, name: &str) -> Result<Box<T>, Error> {
        seq!("Client" => REGISTRY, "create_deep({name:?})");
        let copy = self.prototypes.get(name).map(|prototype| {
            seq!(REGISTRY => format!("prototype {name:?}"), "deep_clone() (owns its parts)");
            prototype.deep_clone()
        });
        answer(name, copy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calibration_is_a_polynomial() {
        let c = Calibration {
            model: "x".into(),
            coefficients: vec![1.0, 2.0, 3.0],
        };
        assert_eq!(c.apply(2.0), 1.0 + 4.0 + 12.0);
    }

    #[test]
    fn boxed_clone_keeps_the_concrete_type() {
        let original: Box<dyn Device> = Box::new(Relay::new("r", 1));
        let copy = original.clone();
        assert_eq!(copy.kind(), "relay");
        assert_eq!(format!("{copy:?}"), format!("{original:?}"));
        assert!(!std::ptr::addr_eq(&*copy, &*original));
    }

    #[test]
    fn registry_replaces_and_unregisters() {
        let mut registry: PrototypeRegistry<dyn Device> = PrototypeRegistry::default();
        assert!(
            registry
                .register("r", Box::new(Relay::new("a", 1)))
                .is_none()
        );
        let old = registry
            .register("r", Box::new(Relay::new("b", 2)))
            .unwrap();
        assert_eq!(old.name(), "a");
        assert_eq!(registry.create("r").unwrap().name(), "b");
        assert!(registry.unregister("r").is_some());
        assert!(matches!(
            registry.create("r"),
            Err(Error::UnknownPrototype { .. })
        ));
    }
}
