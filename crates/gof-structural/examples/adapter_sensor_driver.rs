//! Adapter demo: a legacy C-style sensor SDK meets the new `Sensor` trait, three ways,
//! with the course's consequences of the object and class adapters side by side.

use gof_structural::adapter::legacy::{
    LegacyThermoDriver, LegacyThermoDriverEx, SD_OK, SensorDriverApi, sd_poll, status_text,
};
use gof_structural::adapter::{DigitalThermometer, DriverAdapter, Sensor, TwoWayAdapter, read_all};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `cargo xtask demo --diagrams` draws the Adapter page's sequence diagram from the
    // calibrated reading below (the object adapter over the legacy driver).
    let diagram = pattern_core::diagram::Diagram::from_env("adapter_sensor_driver");
    diagram.pause();
    println!("== the adaptee: the vendor SDK, C style ==");
    let mut raw = LegacyThermoDriver::new([401]);
    let mut centi = 0;
    let status = raw.sd_read(&mut centi);
    println!(
        "sd_read before sd_open -> {status} ({})",
        status_text(status)
    );
    raw.sd_open();
    let status = raw.sd_read(&mut centi);
    println!("sd_read after sd_open  -> {status}, out = {centi} centidegrees");
    raw.sd_close();

    println!();
    println!("== object adapter: one adapter, many adaptees ==");
    let mut sensors: Vec<Box<dyn Sensor>> = vec![
        Box::new(DriverAdapter::new(
            LegacyThermoDriver::new([401]).with_conversion_polls(2),
        )),
        Box::new(DriverAdapter::new(
            LegacyThermoDriverEx::new([6416]).with_conversion_polls(2),
        )),
        Box::new(DigitalThermometer::new("DT-9", [25_070])),
    ];
    for (name, reading) in read_all(&mut sensors) {
        println!("{name:>8}: {}", reading?);
    }
    println!(
        "(busy polling, open-on-first-use and close-on-drop were added to both drivers at once)"
    );

    println!();
    println!("== object adapter: extras for every adaptee ==");
    let mut base = LegacyThermoDriver::new([400]).with_conversion_polls(3);
    diagram.resume();
    {
        let mut calibrated = DriverAdapter::new(&mut base).with_offset_millidegrees(-250);
        println!("calibrated TMP-16: {}", calibrated.read()?);
    }
    diagram.pause();
    let stats = base.stats();
    println!(
        "driver saw: {} open, {} busy polls, {} close (the adapter closed it on drop)",
        stats.opens, stats.busy, stats.closes
    );

    println!();
    println!("== consequences side by side, on the same chip reading (raw 401 = 25.0625 °C) ==");
    let mut object = DriverAdapter::new(LegacyThermoDriver::new([401]));
    let mut class = LegacyThermoDriver::new([401]);
    println!(
        "object adapter: {}  (sees only the common table: SDK conversion, truncated)",
        object.read()?
    );
    println!(
        "class adapter:  {}  (overrides the conversion from the chip's raw register)",
        class.read()?
    );
    // Sizes vary with the compiler; the comparison does not.
    println!(
        "object adapter is its own object, larger than the driver it wraps: {}",
        std::mem::size_of::<DriverAdapter<LegacyThermoDriver>>()
            > std::mem::size_of::<LegacyThermoDriver>()
    );
    println!("class adapter is the driver itself: no extra object, no extra hop");
    println!("class adapter covers only LegacyThermoDriver: LegacyThermoDriverEx is not a Sensor");
    println!("object adapter covers the whole family, but overriding one chip needs a new adapter");

    println!();
    println!("== two-way adapter: one new sensor, two kinds of client ==");
    let mut two_way =
        TwoWayAdapter::new(DigitalThermometer::new("DT-11", [19_990, 20_015, 20_040]));
    println!("new client reads:    {}", two_way.read()?);
    let mut out = [0; 2];
    let status = sd_poll(&mut two_way, 0, &mut out);
    println!(
        "legacy sd_poll reads: {out:?} centidegrees, status {status} ({})",
        status_text(status)
    );
    assert_eq!(status, SD_OK);
    let status = sd_poll(&mut two_way, 0, &mut out[..1]);
    println!(
        "legacy sd_poll again: status {status} ({}), last error: {}",
        status_text(status),
        two_way
            .last_error()
            .map(ToString::to_string)
            .unwrap_or_default()
    );
    diagram.finish()?;
    Ok(())
}
