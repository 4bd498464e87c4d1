//! The adaptee: a legacy, C-style temperature sensor driver API, as a vendor SDK would ship it.
//!
//! Everything here deliberately keeps the "view of the world" of an old C SDK:
//! functions return `i32` status codes (`SD_OK` or a negative `SD_E_*`),
//! results come back through out-parameters,
//! the device must be opened before use and closed after,
//! strings are NUL-terminated byte buffers,
//! and temperatures are integers in hundredths of a degree.
//! The driver table [`SensorDriverApi`] is what the SDK's `struct sd_ops` would be:
//! every driver of the family fills it in, and SDK routines such as [`sd_poll`] are written against it.
//!
//! Nothing here is `unsafe` and nothing calls C: the "hardware" is simulated from a script of raw samples,
//! which keeps the adapters testable and the examples deterministic.

use std::collections::VecDeque;

/// Success.
pub const SD_OK: i32 = 0;
/// The device was used before `sd_open`.
pub const SD_E_NOT_OPEN: i32 = -1;
/// A conversion is in progress; poll again.
pub const SD_E_BUSY: i32 = -2;
/// The sensor delivered no data (unplugged, or the simulation script ran out).
pub const SD_E_NO_DATA: i32 = -3;
/// `sd_open` was called on a device that is already open.
pub const SD_E_ALREADY_OPEN: i32 = -4;
/// A caller-supplied buffer is too small.
pub const SD_E_BUFFER: i32 = -5;
/// Any other hardware fault.
pub const SD_E_FAULT: i32 = -6;

/// The SDK's `sd_strerror`: a fixed text for each status code.
///
/// ```
/// use gof_structural::adapter::legacy::{status_text, SD_E_BUSY};
/// assert_eq!(status_text(SD_E_BUSY), "conversion in progress");
/// ```
pub fn status_text(code: i32) -> &'static str {
    match code {
        SD_OK => "ok",
        SD_E_NOT_OPEN => "device not open",
        SD_E_BUSY => "conversion in progress",
        SD_E_NO_DATA => "no data",
        SD_E_ALREADY_OPEN => "device already open",
        SD_E_BUFFER => "buffer too small",
        SD_E_FAULT => "hardware fault",
        _ => "unknown status",
    }
}

/// The SDK's driver table (`struct sd_ops` in the C header): every driver of the family offers it.
///
/// The signatures are the C ones, transcribed: status codes, out-parameters, NUL-terminated names.
pub trait SensorDriverApi {
    /// Powers the device up. Returns `SD_OK` or `SD_E_ALREADY_OPEN`.
    fn sd_open(&mut self) -> i32;
    /// Reads one temperature in hundredths of a degree Celsius into `out_centi`.
    /// Returns `SD_OK`, `SD_E_NOT_OPEN`, `SD_E_BUSY` (poll again) or `SD_E_NO_DATA`.
    fn sd_read(&mut self, out_centi: &mut i32) -> i32;
    /// Powers the device down. Returns `SD_OK` or `SD_E_NOT_OPEN`.
    fn sd_close(&mut self) -> i32;
    /// Copies the part number, NUL-terminated, into `buf`. Returns `SD_OK` or `SD_E_BUFFER`.
    fn sd_part_number(&self, buf: &mut [u8]) -> i32;
}

impl<D: SensorDriverApi + ?Sized> SensorDriverApi for &mut D {
    fn sd_open(&mut self) -> i32 {
        (**self).sd_open()
    }
    fn sd_read(&mut self, out_centi: &mut i32) -> i32 {
        (**self).sd_read(out_centi)
    }
    fn sd_close(&mut self) -> i32 {
        (**self).sd_close()
    }
    fn sd_part_number(&self, buf: &mut [u8]) -> i32 {
        (**self).sd_part_number(buf)
    }
}

impl<D: SensorDriverApi + ?Sized> SensorDriverApi for Box<D> {
    fn sd_open(&mut self) -> i32 {
        (**self).sd_open()
    }
    fn sd_read(&mut self, out_centi: &mut i32) -> i32 {
        (**self).sd_read(out_centi)
    }
    fn sd_close(&mut self) -> i32 {
        (**self).sd_close()
    }
    fn sd_part_number(&self, buf: &mut [u8]) -> i32 {
        (**self).sd_part_number(buf)
    }
}

/// Counters the simulation keeps so tests and examples can see what the driver was asked to do.
/// They are not part of the vendor API.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DriverStats {
    /// Calls to `sd_open` that powered the device up.
    pub opens: u32,
    /// Calls to `sd_close` that powered the device down.
    pub closes: u32,
    /// Calls to `sd_read`, busy answers included.
    pub reads: u32,
    /// Busy answers given.
    pub busy: u32,
}

/// Copies `name` NUL-terminated into `buf`, the way the C SDK does.
fn copy_c_string(name: &str, buf: &mut [u8]) -> i32 {
    let bytes = name.as_bytes();
    if buf.len() <= bytes.len() {
        return SD_E_BUFFER;
    }
    buf[..bytes.len()].copy_from_slice(bytes);
    buf[bytes.len()] = 0;
    SD_OK
}

/// The simulated chip behind a driver: a script of raw samples and a conversion time.
#[derive(Debug)]
struct Chip {
    samples: VecDeque<i32>,
    conversion_polls: u32,
    pending_polls: u32,
    open: bool,
    stats: DriverStats,
}

impl Chip {
    fn new(samples: impl IntoIterator<Item = i32>) -> Self {
        Chip {
            samples: samples.into_iter().collect(),
            conversion_polls: 0,
            pending_polls: 0,
            open: false,
            stats: DriverStats::default(),
        }
    }

    fn open(&mut self) -> i32 {
        if self.open {
            return SD_E_ALREADY_OPEN;
        }
        self.open = true;
        self.pending_polls = self.conversion_polls;
        self.stats.opens += 1;
        SD_OK
    }

    fn close(&mut self) -> i32 {
        if !self.open {
            return SD_E_NOT_OPEN;
        }
        self.open = false;
        self.stats.closes += 1;
        SD_OK
    }

    /// One poll of the conversion register: `Ok(raw)` or a status code.
    fn poll(&mut self) -> Result<i32, i32> {
        self.stats.reads += 1;
        if !self.open {
            return Err(SD_E_NOT_OPEN);
        }
        if self.pending_polls > 0 {
            self.pending_polls -= 1;
            self.stats.busy += 1;
            return Err(SD_E_BUSY);
        }
        let raw = self.samples.pop_front().ok_or(SD_E_NO_DATA)?;
        // The next sample needs a fresh conversion.
        self.pending_polls = self.conversion_polls;
        Ok(raw)
    }
}

/// The vendor's driver for its TMP-16 chip: raw counts of 1/16 °C.
///
/// Besides the driver table it has a chip-specific extra, [`LegacyThermoDriver::sd_read_raw`],
/// which only code committed to this very chip can use (the class adapter does).
///
/// ```
/// use gof_structural::adapter::legacy::{LegacyThermoDriver, SensorDriverApi, SD_OK, SD_E_NOT_OPEN};
///
/// let mut drv = LegacyThermoDriver::new([400]); // 400/16 = 25.0 °C
/// let mut centi = 0;
/// assert_eq!(drv.sd_read(&mut centi), SD_E_NOT_OPEN);
/// assert_eq!(drv.sd_open(), SD_OK);
/// assert_eq!(drv.sd_read(&mut centi), SD_OK);
/// assert_eq!(centi, 2500);
/// ```
#[derive(Debug)]
pub struct LegacyThermoDriver {
    chip: Chip,
}

impl LegacyThermoDriver {
    /// The part number this driver reports.
    pub const PART_NUMBER: &'static str = "TMP-16";

    /// A driver whose chip will deliver these raw samples (1/16 °C each), in order.
    pub fn new(raw_samples: impl IntoIterator<Item = i32>) -> Self {
        LegacyThermoDriver {
            chip: Chip::new(raw_samples),
        }
    }

    /// Makes every conversion take `polls` busy answers before the value is ready.
    pub fn with_conversion_polls(mut self, polls: u32) -> Self {
        self.chip.conversion_polls = polls;
        self
    }

    /// Chip-specific extra: reads the raw conversion register (1/16 °C per count).
    /// Same status codes as `sd_read`.
    pub fn sd_read_raw(&mut self, out_raw: &mut i32) -> i32 {
        match self.chip.poll() {
            Ok(raw) => {
                *out_raw = raw;
                SD_OK
            }
            Err(code) => code,
        }
    }

    /// Simulation counters (not part of the vendor API).
    pub fn stats(&self) -> DriverStats {
        self.chip.stats
    }

    /// Whether the device is powered up (not part of the vendor API).
    pub fn is_open(&self) -> bool {
        self.chip.open
    }
}

impl SensorDriverApi for LegacyThermoDriver {
    fn sd_open(&mut self) -> i32 {
        self.chip.open()
    }

    fn sd_read(&mut self, out_centi: &mut i32) -> i32 {
        match self.chip.poll() {
            Ok(raw) => {
                // The SDK converts with C integer division, which truncates toward zero.
                *out_centi = raw * 100 / 16;
                SD_OK
            }
            Err(code) => code,
        }
    }

    fn sd_close(&mut self) -> i32 {
        self.chip.close()
    }

    fn sd_part_number(&self, buf: &mut [u8]) -> i32 {
        copy_c_string(Self::PART_NUMBER, buf)
    }
}

/// The vendor's driver for its newer TMP-256 chip (raw counts of 1/256 °C), another member of the family.
///
/// It fills in the same driver table, so SDK routines and the object adapter work with it,
/// but nobody wrote a class adapter for it: it is not a [`Sensor`](crate::adapter::Sensor).
///
/// ```compile_fail
/// use gof_structural::adapter::{legacy::LegacyThermoDriverEx, Sensor};
///
/// fn wants_a_sensor(_: &mut dyn Sensor) {}
/// let mut drv = LegacyThermoDriverEx::new([6400]);
/// // The class adapter committed to `LegacyThermoDriver`; its sibling is left out.
/// wants_a_sensor(&mut drv);
/// ```
#[derive(Debug)]
pub struct LegacyThermoDriverEx {
    chip: Chip,
}

impl LegacyThermoDriverEx {
    /// The part number this driver reports.
    pub const PART_NUMBER: &'static str = "TMP-256";

    /// A driver whose chip will deliver these raw samples (1/256 °C each), in order.
    pub fn new(raw_samples: impl IntoIterator<Item = i32>) -> Self {
        LegacyThermoDriverEx {
            chip: Chip::new(raw_samples),
        }
    }

    /// Makes every conversion take `polls` busy answers before the value is ready.
    pub fn with_conversion_polls(mut self, polls: u32) -> Self {
        self.chip.conversion_polls = polls;
        self
    }

    /// Simulation counters (not part of the vendor API).
    pub fn stats(&self) -> DriverStats {
        self.chip.stats
    }

    /// Whether the device is powered up (not part of the vendor API).
    pub fn is_open(&self) -> bool {
        self.chip.open
    }
}

impl SensorDriverApi for LegacyThermoDriverEx {
    fn sd_open(&mut self) -> i32 {
        self.chip.open()
    }

    fn sd_read(&mut self, out_centi: &mut i32) -> i32 {
        match self.chip.poll() {
            Ok(raw) => {
                *out_centi = raw * 100 / 256;
                SD_OK
            }
            Err(code) => code,
        }
    }

    fn sd_close(&mut self) -> i32 {
        self.chip.close()
    }

    fn sd_part_number(&self, buf: &mut [u8]) -> i32 {
        copy_c_string(Self::PART_NUMBER, buf)
    }
}

/// The SDK's polling routine, legacy client code written against the driver table:
/// opens the device, reads `out.len()` samples (polling through busy answers, at most
/// `max_busy` in a row), closes it, and returns `SD_OK` or the first failing status.
///
/// ```
/// use gof_structural::adapter::legacy::{sd_poll, LegacyThermoDriver, SD_OK};
///
/// let mut drv = LegacyThermoDriver::new([320, 336]).with_conversion_polls(2);
/// let mut out = [0; 2];
/// assert_eq!(sd_poll(&mut drv, 5, &mut out), SD_OK);
/// assert_eq!(out, [2000, 2100]);
/// ```
pub fn sd_poll(api: &mut dyn SensorDriverApi, max_busy: u32, out: &mut [i32]) -> i32 {
    let status = api.sd_open();
    if status != SD_OK {
        return status;
    }
    let mut result = SD_OK;
    'samples: for slot in out.iter_mut() {
        let mut busy = 0;
        loop {
            match api.sd_read(slot) {
                SD_OK => break,
                SD_E_BUSY if busy < max_busy => busy += 1,
                status => {
                    result = status;
                    break 'samples;
                }
            }
        }
    }
    let closed = api.sd_close();
    if result == SD_OK { closed } else { result }
}

/// Reads a NUL-terminated part number out of a driver, the way C callers do.
pub(crate) fn part_number(api: &dyn SensorDriverApi) -> Result<String, crate::Error> {
    let mut buf = [0u8; 32];
    let status = api.sd_part_number(&mut buf);
    if status != SD_OK {
        return Err(crate::Error::Driver { code: status });
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Ok(String::from_utf8_lossy(&buf[..end]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversion_truncates_like_c() {
        let mut drv = LegacyThermoDriver::new([401, -1]);
        let mut centi = 0;
        assert_eq!(drv.sd_open(), SD_OK);
        assert_eq!(drv.sd_read(&mut centi), SD_OK);
        assert_eq!(centi, 2506); // 25.0625 °C truncated
        assert_eq!(drv.sd_read(&mut centi), SD_OK);
        assert_eq!(centi, -6); // -0.0625 °C truncated toward zero
        assert_eq!(drv.sd_read(&mut centi), SD_E_NO_DATA);
    }

    #[test]
    fn open_close_protocol_is_enforced() {
        let mut drv = LegacyThermoDriverEx::new([]);
        assert_eq!(drv.sd_close(), SD_E_NOT_OPEN);
        assert_eq!(drv.sd_open(), SD_OK);
        assert_eq!(drv.sd_open(), SD_E_ALREADY_OPEN);
        assert_eq!(drv.sd_close(), SD_OK);
        assert_eq!(
            drv.stats(),
            DriverStats {
                opens: 1,
                closes: 1,
                reads: 0,
                busy: 0
            }
        );
    }

    #[test]
    fn busy_polls_precede_every_sample() {
        let mut drv = LegacyThermoDriver::new([16, 32]).with_conversion_polls(1);
        let mut centi = 0;
        drv.sd_open();
        assert_eq!(drv.sd_read(&mut centi), SD_E_BUSY);
        assert_eq!(drv.sd_read(&mut centi), SD_OK);
        assert_eq!(drv.sd_read(&mut centi), SD_E_BUSY);
        assert_eq!(drv.sd_read(&mut centi), SD_OK);
        assert_eq!(centi, 200);
        assert_eq!(drv.stats().busy, 2);
    }

    #[test]
    fn part_number_needs_room_for_the_nul() {
        let drv = LegacyThermoDriver::new([]);
        let mut small = [0u8; 6];
        assert_eq!(drv.sd_part_number(&mut small), SD_E_BUFFER);
        assert_eq!(part_number(&drv).unwrap(), "TMP-16");
    }

    #[test]
    fn poll_reports_the_first_failure_and_still_closes() {
        let mut drv = LegacyThermoDriver::new([16]);
        let mut out = [0; 3];
        assert_eq!(sd_poll(&mut drv, 0, &mut out), SD_E_NO_DATA);
        assert!(!drv.is_open());
        assert_eq!(out[0], 100);
    }
}
