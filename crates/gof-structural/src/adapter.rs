//! Adapter: the legacy C-style sensor SDK matched to the new [`Sensor`] trait, three ways.
//!
//! | Course participant | Here |
//! |---|---|
//! | Target | [`Sensor`] |
//! | Adaptee | [`legacy::SensorDriverApi`] drivers: [`legacy::LegacyThermoDriver`], [`legacy::LegacyThermoDriverEx`] |
//! | Object adapter | [`DriverAdapter`], a struct that owns any driver of the family |
//! | Class adapter | `impl Sensor for LegacyThermoDriver`: the target implemented on the adaptee type itself |
//! | Two-way adapter | [`TwoWayAdapter`], a new sensor offered to new code *and* to legacy SDK code |
//! | Client | anything generic over `Sensor`, e.g. [`read_all`]; legacy client: [`legacy::sd_poll`] |
//!
//! Rust has no implementation inheritance, so the class adapter is a trait impl on the adaptee type,
//! and "subclasses" of the adaptee are the other drivers that fill in the same driver table.
//! The course's consequences then read as follows (tests in `tests/it/adapter.rs` check each):
//!
//! * the object adapter works with every driver of the family, and adds its extras
//!   (open on first use, polling through busy answers, a calibration offset, close on drop) to all of them at once;
//! * it only sees the family's common interface, so overriding one driver's behaviour means
//!   writing another adapter (or another adaptee), which is harder;
//! * the class adapter commits to `LegacyThermoDriver`: `LegacyThermoDriverEx` is not a `Sensor`
//!   (a `compile_fail` doctest on it proves it);
//! * being the adaptee itself, the class adapter can override adaptee behaviour: it replaces the SDK's
//!   truncating conversion with an exact one from the chip's raw register, which only code committed to this chip can read;
//! * the class adapter introduces no extra object and no indirection: it *is* the driver,
//!   and has no room for state of its own (no configurable retries, no offset).

pub mod legacy;

use std::collections::VecDeque;
use std::fmt;

use crate::{Error, short};
use legacy::{
    LegacyThermoDriver, SD_E_ALREADY_OPEN, SD_E_BUSY, SD_E_FAULT, SD_E_NO_DATA, SD_E_NOT_OPEN,
    SD_OK, SensorDriverApi,
};

/// One temperature reading, in thousandths of a degree Celsius.
///
/// ```
/// use gof_structural::adapter::Reading;
/// assert_eq!(Reading::from_millidegrees(-1250).to_string(), "-1.250 °C");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Reading {
    millidegrees: i32,
}

impl Reading {
    /// A reading of `millidegrees` thousandths of a degree Celsius.
    pub const fn from_millidegrees(millidegrees: i32) -> Self {
        Reading { millidegrees }
    }

    /// The temperature in thousandths of a degree Celsius.
    pub const fn millidegrees(self) -> i32 {
        self.millidegrees
    }
}

impl fmt::Display for Reading {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.millidegrees < 0 { "-" } else { "" };
        let abs = self.millidegrees.unsigned_abs();
        write!(f, "{sign}{}.{:03} °C", abs / 1000, abs % 1000)
    }
}

/// The target interface: what the new system expects of a temperature sensor.
///
/// ```
/// use gof_structural::adapter::{DigitalThermometer, Reading, Sensor};
///
/// let mut s = DigitalThermometer::new("dt-1", [21_500]);
/// assert_eq!(s.name(), "dt-1");
/// assert_eq!(s.read().unwrap(), Reading::from_millidegrees(21_500));
/// assert!(s.read().is_err());
/// ```
pub trait Sensor {
    /// A human-readable name for the sensor.
    fn name(&self) -> &str;
    /// Takes one reading.
    fn read(&mut self) -> Result<Reading, Error>;
}

impl<S: Sensor + ?Sized> Sensor for &mut S {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn read(&mut self) -> Result<Reading, Error> {
        (**self).read()
    }
}

impl<S: Sensor + ?Sized> Sensor for Box<S> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn read(&mut self) -> Result<Reading, Error> {
        (**self).read()
    }
}

/// A client of the target interface: reads each sensor once, in order.
///
/// ```
/// use gof_structural::adapter::{read_all, DigitalThermometer, Sensor};
///
/// let mut sensors: Vec<Box<dyn Sensor>> = vec![Box::new(DigitalThermometer::new("a", [1000]))];
/// let readings = read_all(&mut sensors);
/// assert_eq!(readings[0].0, "a");
/// assert_eq!(readings[0].1.as_ref().unwrap().millidegrees(), 1000);
/// ```
pub fn read_all<S: Sensor>(sensors: &mut [S]) -> Vec<(String, Result<Reading, Error>)> {
    sensors
        .iter_mut()
        .map(|s| (s.name().to_owned(), s.read()))
        .collect()
}

/// Turns an SDK status code into a `Result`.
fn check(status: i32) -> Result<(), Error> {
    if status == SD_OK {
        Ok(())
    } else {
        Err(Error::Driver { code: status })
    }
}

/// The object adapter: owns any driver of the SDK family and presents it as a [`Sensor`].
///
/// One adapter type serves every adaptee that fills in [`SensorDriverApi`]
/// (owned, borrowed as `&mut`, or boxed as `dyn`), and adds the same extras to all of them:
/// it opens the device on first use, polls through busy answers up to a bound,
/// applies a calibration offset, counts readings, and closes the device when dropped.
///
/// ```
/// use gof_structural::adapter::{DriverAdapter, Sensor};
/// use gof_structural::adapter::legacy::{LegacyThermoDriver, LegacyThermoDriverEx};
///
/// // Two different drivers, one adapter type.
/// let mut a = DriverAdapter::new(LegacyThermoDriver::new([400]).with_conversion_polls(3));
/// let mut b = DriverAdapter::new(LegacyThermoDriverEx::new([6400])).with_offset_millidegrees(-500);
/// assert_eq!(a.name(), "TMP-16");
/// assert_eq!(a.read()?.millidegrees(), 25_000);
/// assert_eq!(b.read()?.millidegrees(), 24_500);
/// # Ok::<(), gof_structural::Error>(())
/// ```
#[derive(Debug)]
pub struct DriverAdapter<D: SensorDriverApi> {
    driver: D,
    name: String,
    open: bool,
    max_busy: u32,
    offset_millidegrees: i32,
    readings: u64,
}

impl<D: SensorDriverApi> DriverAdapter<D> {
    /// How many busy answers in a row the adapter polls through by default.
    pub const DEFAULT_MAX_BUSY: u32 = 16;

    /// Adapts `driver`. The device stays closed until the first reading.
    pub fn new(driver: D) -> Self {
        let name =
            legacy::part_number(&driver).unwrap_or_else(|err| format!("unnamed sensor ({err})"));
        DriverAdapter {
            driver,
            name,
            open: false,
            max_busy: Self::DEFAULT_MAX_BUSY,
            offset_millidegrees: 0,
            readings: 0,
        }
    }

    /// Sets how many busy answers in a row a reading polls through before giving up.
    pub fn with_max_busy(mut self, max_busy: u32) -> Self {
        self.max_busy = max_busy;
        self
    }

    /// Adds a calibration offset to every reading.
    pub fn with_offset_millidegrees(mut self, offset: i32) -> Self {
        self.offset_millidegrees = offset;
        self
    }

    /// Replaces the name taken from the driver's part number.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// How many readings the adapter has delivered.
    pub fn readings(&self) -> u64 {
        self.readings
    }

    /// The adapted driver.
    pub fn driver(&self) -> &D {
        &self.driver
    }

    /// Closes the device if it is open; the next reading opens it again.
    pub fn close(&mut self) -> Result<(), Error> {
        if !self.open {
            return Ok(());
        }
        self.open = false;
        check(self.driver.sd_close())
    }

    fn ensure_open(&mut self) -> Result<(), Error> {
        if !self.open {
            seq!("DriverAdapter" => short::<D>(), "sd_open()");
            let status = self.driver.sd_open();
            seq!(reply short::<D>() => "DriverAdapter", "{}", legacy::status_text(status));
            match status {
                // Someone else opened it through the raw SDK: it is usable, and now ours to close.
                SD_OK | SD_E_ALREADY_OPEN => self.open = true,
                code => return Err(Error::Driver { code }),
            }
        }
        Ok(())
    }
}

impl<D: SensorDriverApi> Sensor for DriverAdapter<D> {
    fn name(&self) -> &str {
        &self.name
    }

    fn read(&mut self) -> Result<Reading, Error> {
        seq!("Client" => "DriverAdapter", "read()");
        self.ensure_open()?;
        let mut busy = 0;
        let mut centi = 0;
        loop {
            seq!("DriverAdapter" => short::<D>(), "sd_read(&mut centi)");
            let status = self.driver.sd_read(&mut centi);
            seq!(reply short::<D>() => "DriverAdapter", "{}, centi = {centi}", legacy::status_text(status));
            match status {
                SD_OK => break,
                SD_E_BUSY if busy < self.max_busy => busy += 1,
                code => {
                    seq!(fail "DriverAdapter" => "Client", "Err(driver code {code})");
                    return Err(Error::Driver { code });
                }
            }
        }
        self.readings += 1;
        let reading = Reading::from_millidegrees(centi * 10 + self.offset_millidegrees);
        seq!(reply "DriverAdapter" => "Client", "Ok({reading})");
        Ok(reading)
    }
}

impl<D: SensorDriverApi> Drop for DriverAdapter<D> {
    fn drop(&mut self) {
        // Powering the device down is the one clean-up a C caller most often forgets.
        if self.open {
            seq!("DriverAdapter" => short::<D>(), "sd_close() (on drop)");
            self.driver.sd_close();
        }
    }
}

/// How many busy answers in a row the class adapter polls through. It is a constant because
/// the class adapter has nowhere to keep a per-sensor setting: it *is* the driver.
pub const CLASS_ADAPTER_MAX_BUSY: u32 = 16;

/// The class adapter: `LegacyThermoDriver` itself is a [`Sensor`].
///
/// Being committed to this very chip, it overrides the SDK's conversion: it reads the raw
/// 1/16 °C register and rounds to the nearest millidegree, where `sd_read` truncates to centidegrees.
///
/// ```
/// use gof_structural::adapter::Sensor;
/// use gof_structural::adapter::legacy::LegacyThermoDriver;
///
/// let mut drv = LegacyThermoDriver::new([401]); // 25.0625 °C
/// assert_eq!(drv.read()?.millidegrees(), 25_063);
/// # Ok::<(), gof_structural::Error>(())
/// ```
impl Sensor for LegacyThermoDriver {
    fn name(&self) -> &str {
        Self::PART_NUMBER
    }

    fn read(&mut self) -> Result<Reading, Error> {
        match self.sd_open() {
            SD_OK | SD_E_ALREADY_OPEN => {}
            code => return Err(Error::Driver { code }),
        }
        let mut raw = 0;
        let mut busy = 0;
        loop {
            match self.sd_read_raw(&mut raw) {
                SD_OK => break,
                SD_E_BUSY if busy < CLASS_ADAPTER_MAX_BUSY => busy += 1,
                code => return Err(Error::Driver { code }),
            }
        }
        // raw counts are 1/16 °C = 62.5 m°C; round half away from zero.
        let twice = i64::from(raw) * 125;
        let milli = (twice + twice.signum()) / 2;
        Ok(Reading::from_millidegrees(milli as i32))
    }
}

/// A new-generation sensor written directly against [`Sensor`]: it delivers scripted readings.
///
/// ```
/// use gof_structural::adapter::{DigitalThermometer, Sensor};
/// let mut dt = DigitalThermometer::new("dt-7", [19_000, 19_250]);
/// assert_eq!(dt.read()?.millidegrees(), 19_000);
/// # Ok::<(), gof_structural::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct DigitalThermometer {
    name: String,
    readings: VecDeque<i32>,
}

impl DigitalThermometer {
    /// A sensor called `name` that will deliver these millidegree readings, in order.
    pub fn new(name: impl Into<String>, millidegrees: impl IntoIterator<Item = i32>) -> Self {
        DigitalThermometer {
            name: name.into(),
            readings: millidegrees.into_iter().collect(),
        }
    }
}

impl Sensor for DigitalThermometer {
    fn name(&self) -> &str {
        &self.name
    }

    fn read(&mut self) -> Result<Reading, Error> {
        self.readings
            .pop_front()
            .map(Reading::from_millidegrees)
            .ok_or_else(|| Error::NoReading {
                sensor: self.name.clone(),
            })
    }
}

/// The two-way adapter: a new [`Sensor`] that old SDK code can drive through [`SensorDriverApi`],
/// while new code keeps using it as a `Sensor`, both on the same object.
///
/// The legacy face keeps the SDK's rules (open before read, status codes, centidegrees, truncation);
/// errors without a status code of their own become `SD_E_FAULT`, and the full error is kept for
/// [`TwoWayAdapter::last_error`], the way C SDKs keep an `errno`.
///
/// ```
/// use gof_structural::adapter::{DigitalThermometer, Sensor, TwoWayAdapter};
/// use gof_structural::adapter::legacy::{sd_poll, SD_OK};
///
/// let mut two_way = TwoWayAdapter::new(DigitalThermometer::new("dt-9", [20_000, 20_125, 20_250]));
/// // New code:
/// assert_eq!(two_way.read()?.millidegrees(), 20_000);
/// // Old SDK code, on the same object:
/// let mut out = [0; 2];
/// assert_eq!(sd_poll(&mut two_way, 0, &mut out), SD_OK);
/// assert_eq!(out, [2012, 2025]);
/// # Ok::<(), gof_structural::Error>(())
/// ```
#[derive(Debug)]
pub struct TwoWayAdapter<S: Sensor> {
    sensor: S,
    open: bool,
    last_error: Option<Error>,
}

impl<S: Sensor> TwoWayAdapter<S> {
    /// Offers `sensor` through both interfaces.
    pub fn new(sensor: S) -> Self {
        TwoWayAdapter {
            sensor,
            open: false,
            last_error: None,
        }
    }

    /// The error behind the last non-`SD_OK` status the legacy face returned, if any.
    pub fn last_error(&self) -> Option<&Error> {
        self.last_error.as_ref()
    }

    /// The adapted sensor.
    pub fn sensor(&self) -> &S {
        &self.sensor
    }

    /// Gives the sensor back.
    pub fn into_inner(self) -> S {
        self.sensor
    }

    fn fail(&mut self, code: i32, err: Error) -> i32 {
        self.last_error = Some(err);
        code
    }
}

impl<S: Sensor> Sensor for TwoWayAdapter<S> {
    fn name(&self) -> &str {
        self.sensor.name()
    }

    fn read(&mut self) -> Result<Reading, Error> {
        self.sensor.read()
    }
}

impl<S: Sensor> SensorDriverApi for TwoWayAdapter<S> {
    fn sd_open(&mut self) -> i32 {
        if self.open {
            return SD_E_ALREADY_OPEN;
        }
        self.open = true;
        SD_OK
    }

    fn sd_read(&mut self, out_centi: &mut i32) -> i32 {
        if !self.open {
            return SD_E_NOT_OPEN;
        }
        match self.sensor.read() {
            Ok(reading) => {
                // Truncate toward zero, as the SDK's own drivers do.
                *out_centi = reading.millidegrees() / 10;
                SD_OK
            }
            Err(err) => {
                let code = match &err {
                    Error::Driver { code } => *code,
                    Error::NoReading { .. } => SD_E_NO_DATA,
                    _ => SD_E_FAULT,
                };
                self.fail(code, err)
            }
        }
    }

    fn sd_close(&mut self) -> i32 {
        if !self.open {
            return SD_E_NOT_OPEN;
        }
        self.open = false;
        SD_OK
    }

    fn sd_part_number(&self, buf: &mut [u8]) -> i32 {
        let name = self.sensor.name().as_bytes();
        if buf.len() <= name.len() {
            return legacy::SD_E_BUFFER;
        }
        buf[..name.len()].copy_from_slice(name);
        buf[name.len()] = 0;
        SD_OK
    }
}

#[cfg(test)]
mod tests {
    use super::legacy::LegacyThermoDriverEx;
    use super::*;

    #[test]
    fn object_adapter_opens_lazily_and_closes_on_drop() {
        let mut drv = LegacyThermoDriver::new([16]);
        {
            let mut adapter = DriverAdapter::new(&mut drv);
            assert_eq!(adapter.read().unwrap().millidegrees(), 1000);
        }
        assert!(!drv.is_open());
        assert_eq!(drv.stats().opens, 1);
        assert_eq!(drv.stats().closes, 1);
    }

    #[test]
    fn object_adapter_gives_up_after_its_busy_bound() {
        let mut adapter =
            DriverAdapter::new(LegacyThermoDriverEx::new([256]).with_conversion_polls(4))
                .with_max_busy(3);
        assert!(matches!(
            adapter.read(),
            Err(Error::Driver { code: SD_E_BUSY })
        ));
        // The chip finished converting meanwhile; the next reading succeeds.
        assert_eq!(adapter.read().unwrap().millidegrees(), 1000);
    }

    #[test]
    fn class_adapter_rounds_negative_values_away_from_zero() {
        let mut drv = LegacyThermoDriver::new([-1, -8]);
        assert_eq!(drv.read().unwrap().millidegrees(), -63);
        assert_eq!(drv.read().unwrap().millidegrees(), -500);
    }

    #[test]
    fn reading_display_handles_signs_and_padding() {
        assert_eq!(Reading::from_millidegrees(5).to_string(), "0.005 °C");
        assert_eq!(
            Reading::from_millidegrees(-25_063).to_string(),
            "-25.063 °C"
        );
    }

    #[test]
    fn two_way_adapter_translates_errors_to_status_codes() {
        let mut two_way = TwoWayAdapter::new(DigitalThermometer::new("dt", []));
        let mut centi = 0;
        assert_eq!(two_way.sd_read(&mut centi), SD_E_NOT_OPEN);
        assert_eq!(two_way.sd_open(), SD_OK);
        assert_eq!(two_way.sd_read(&mut centi), SD_E_NO_DATA);
        assert!(matches!(
            two_way.last_error(),
            Some(Error::NoReading { .. })
        ));
        assert_eq!(legacy::part_number(&two_way).unwrap(), "dt");
    }
}
