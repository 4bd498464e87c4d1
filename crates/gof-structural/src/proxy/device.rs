//! The subject interface every proxy keeps: a field device's register service, and a real subject.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::Error;

/// Register addresses of the field device used throughout the proxy examples.
pub mod registers {
    /// Device identifier (read-only).
    pub const DEVICE_ID: u16 = 0x0000;
    /// Firmware version, major in the high half, minor in the low half (read-only).
    pub const FIRMWARE: u16 = 0x0001;
    /// Temperature set point in millidegrees (read-write).
    pub const SETPOINT: u16 = 0x0010;
    /// Operating mode: 0 off, 1 auto, 2 manual (read-write).
    pub const MODE: u16 = 0x0011;
    /// Calibration gain in parts per million (read-write, for maintainers).
    pub const CALIBRATION: u16 = 0x0020;
    /// Measured temperature in millidegrees (read-only).
    pub const TEMPERATURE: u16 = 0x0030;
}

/// The subject interface: what clients of a field device can ask of it.
///
/// Methods take `&self` because a device is shared by many clients; implementations
/// synchronise inside. Every proxy in [`crate::proxy`] implements this same trait,
/// which is the course's contrast with Adapter: a proxy keeps its subject's interface.
pub trait DeviceService {
    /// The device's model and serial number.
    fn identify(&self) -> Result<String, Error>;
    /// Reads one register.
    fn read_register(&self, register: u16) -> Result<u32, Error>;
    /// Writes one register.
    fn write_register(&self, register: u16, value: u32) -> Result<(), Error>;
}

impl<S: DeviceService + ?Sized> DeviceService for &S {
    fn identify(&self) -> Result<String, Error> {
        (**self).identify()
    }
    fn read_register(&self, register: u16) -> Result<u32, Error> {
        (**self).read_register(register)
    }
    fn write_register(&self, register: u16, value: u32) -> Result<(), Error> {
        (**self).write_register(register, value)
    }
}

impl<S: DeviceService + ?Sized> DeviceService for Box<S> {
    fn identify(&self) -> Result<String, Error> {
        (**self).identify()
    }
    fn read_register(&self, register: u16) -> Result<u32, Error> {
        (**self).read_register(register)
    }
    fn write_register(&self, register: u16, value: u32) -> Result<(), Error> {
        (**self).write_register(register, value)
    }
}

impl<S: DeviceService + ?Sized> DeviceService for Arc<S> {
    fn identify(&self) -> Result<String, Error> {
        (**self).identify()
    }
    fn read_register(&self, register: u16) -> Result<u32, Error> {
        (**self).read_register(register)
    }
    fn write_register(&self, register: u16, value: u32) -> Result<(), Error> {
        (**self).write_register(register, value)
    }
}

/// One operation on a [`DeviceService`], as access policies and the wire protocol see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DeviceOperation {
    /// [`DeviceService::identify`].
    Identify,
    /// [`DeviceService::read_register`].
    Read(u16),
    /// [`DeviceService::write_register`].
    Write(u16, u32),
}

impl fmt::Display for DeviceOperation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceOperation::Identify => f.write_str("identify"),
            DeviceOperation::Read(r) => write!(f, "read {r:#06x}"),
            DeviceOperation::Write(r, v) => write!(f, "write {v} to {r:#06x}"),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    value: u32,
    writable: bool,
}

/// The real subject: a simulated temperature controller with a register map.
///
/// It counts the operations that reached it, so tests and examples can see what a proxy let through.
///
/// ```
/// use gof_structural::proxy::{registers, DeviceService, FieldDevice};
///
/// let dev = FieldDevice::new("TC-100", 42);
/// dev.write_register(registers::SETPOINT, 21_000)?;
/// assert_eq!(dev.read_register(registers::SETPOINT)?, 21_000);
/// assert!(dev.write_register(registers::DEVICE_ID, 1).is_err());
/// assert_eq!(dev.served(), 3);
/// # Ok::<(), gof_structural::Error>(())
/// ```
#[derive(Debug)]
pub struct FieldDevice {
    model: String,
    serial: u32,
    registers: Mutex<BTreeMap<u16, Slot>>,
    served: AtomicU64,
}

impl FieldDevice {
    /// A controller of `model` with serial number `serial` and its factory register map.
    pub fn new(model: impl Into<String>, serial: u32) -> Self {
        use registers::*;
        let map = [
            (DEVICE_ID, serial, false),
            (FIRMWARE, 0x0002_0005, false),
            (SETPOINT, 20_000, true),
            (MODE, 1, true),
            (CALIBRATION, 1_000_000, true),
            (TEMPERATURE, 19_500, false),
        ]
        .into_iter()
        .map(|(r, value, writable)| (r, Slot { value, writable }))
        .collect();
        FieldDevice {
            model: model.into(),
            serial,
            registers: Mutex::new(map),
            served: AtomicU64::new(0),
        }
    }

    /// How many operations reached this device, failed ones included.
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }

    /// Sets a read-only register, as the device's own sensors do.
    pub fn set_measurement(&self, register: u16, value: u32) {
        let mut map = self
            .registers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        map.entry(register)
            .or_insert(Slot {
                value,
                writable: false,
            })
            .value = value;
    }
}

impl DeviceService for FieldDevice {
    fn identify(&self) -> Result<String, Error> {
        self.served.fetch_add(1, Ordering::Relaxed);
        Ok(format!("{} #{}", self.model, self.serial))
    }

    fn read_register(&self, register: u16) -> Result<u32, Error> {
        self.served.fetch_add(1, Ordering::Relaxed);
        let map = self
            .registers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        map.get(&register)
            .map(|slot| slot.value)
            .ok_or(Error::NoSuchRegister(register))
    }

    fn write_register(&self, register: u16, value: u32) -> Result<(), Error> {
        self.served.fetch_add(1, Ordering::Relaxed);
        let mut map = self
            .registers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match map.get_mut(&register) {
            None => Err(Error::NoSuchRegister(register)),
            Some(slot) if !slot.writable => Err(Error::ReadOnlyRegister(register)),
            Some(slot) => {
                slot.value = value;
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_registers_are_errors() {
        let dev = FieldDevice::new("TC", 1);
        assert!(matches!(
            dev.read_register(0x7777),
            Err(Error::NoSuchRegister(0x7777))
        ));
        assert!(matches!(
            dev.write_register(0x7777, 0),
            Err(Error::NoSuchRegister(0x7777))
        ));
        dev.set_measurement(registers::TEMPERATURE, 22_000);
        assert_eq!(dev.read_register(registers::TEMPERATURE).unwrap(), 22_000);
    }

    #[test]
    fn operations_display_for_error_messages() {
        assert_eq!(DeviceOperation::Read(0x10).to_string(), "read 0x0010");
        assert_eq!(
            DeviceOperation::Write(0x11, 2).to_string(),
            "write 2 to 0x0011"
        );
    }
}
