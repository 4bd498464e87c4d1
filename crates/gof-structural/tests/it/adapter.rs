//! Adapter: each consequence the course lists, for the object, class and two-way adapters.

use gof_structural::Error;
use gof_structural::adapter::legacy::{
    LegacyThermoDriver, LegacyThermoDriverEx, SD_E_BUSY, SD_E_NO_DATA, SD_OK, SensorDriverApi,
    sd_poll,
};
use gof_structural::adapter::{
    DigitalThermometer, DriverAdapter, Reading, Sensor, TwoWayAdapter, read_all,
};

fn milli(r: Result<Reading, Error>) -> i32 {
    r.expect("a reading").millidegrees()
}

#[test]
fn object_adapter_lets_one_adapter_work_with_many_adaptees() {
    let mut borrowed = LegacyThermoDriver::new([320]);
    let boxed: Box<dyn SensorDriverApi> = Box::new(LegacyThermoDriverEx::new([5120]));
    let mut sensors: Vec<Box<dyn Sensor>> = vec![
        Box::new(DriverAdapter::new(LegacyThermoDriver::new([400]))),
        Box::new(DriverAdapter::new(LegacyThermoDriverEx::new([6400]))),
        Box::new(DriverAdapter::new(&mut borrowed)),
        Box::new(DriverAdapter::new(boxed)),
    ];
    let readings = read_all(&mut sensors);
    let summary: Vec<(String, i32)> = readings
        .into_iter()
        .map(|(name, r)| (name, milli(r)))
        .collect();
    assert_eq!(
        summary,
        [
            ("TMP-16".to_owned(), 25_000),
            ("TMP-256".to_owned(), 25_000),
            ("TMP-16".to_owned(), 20_000),
            ("TMP-256".to_owned(), 20_000),
        ]
    );
}

#[test]
fn object_adapter_adds_functionality_to_all_adaptees_at_once() {
    // Both drivers convert slowly; neither knows about calibration or closing on drop.
    let mut base = LegacyThermoDriver::new([400]).with_conversion_polls(3);
    let mut ex = LegacyThermoDriverEx::new([6400]).with_conversion_polls(3);
    {
        let mut a = DriverAdapter::new(&mut base).with_offset_millidegrees(150);
        let mut b = DriverAdapter::new(&mut ex).with_offset_millidegrees(150);
        // Polling through busy answers, opening on first use, the offset: the same for both.
        assert_eq!(milli(a.read()), 25_150);
        assert_eq!(milli(b.read()), 25_150);
        assert_eq!(a.readings() + b.readings(), 2);
    }
    // Closing on drop: both.
    for stats in [base.stats(), ex.stats()] {
        assert_eq!((stats.opens, stats.closes, stats.busy), (1, 1, 3));
    }
}

#[test]
fn object_adapter_makes_overriding_adaptee_behaviour_harder() {
    // The object adapter sees every adaptee only through the family's common table, whose
    // `sd_read` truncates to centidegrees. The chip-specific raw register it cannot reach,
    // so it cannot override the conversion for one chip without a new adapter.
    let mut object = DriverAdapter::new(LegacyThermoDriver::new([401]));
    assert_eq!(milli(object.read()), 25_060);
    // The class adapter, committed to the concrete chip, overrides it (rounded 25.0625 °C).
    let mut class = LegacyThermoDriver::new([401]);
    assert_eq!(milli(class.read()), 25_063);
}

#[test]
fn class_adapter_commits_to_the_concrete_adaptee() {
    // Only `LegacyThermoDriver` is a Sensor; `LegacyThermoDriverEx` is not
    // (see the `compile_fail` doctest on `LegacyThermoDriverEx`), so a generic client takes it
    // only through an object adapter.
    fn takes_sensors<S: Sensor>(sensors: &mut [S]) -> usize {
        read_all(sensors)
            .into_iter()
            .filter(|(_, r)| r.is_ok())
            .count()
    }
    let mut classes = [LegacyThermoDriver::new([16]), LegacyThermoDriver::new([32])];
    assert_eq!(takes_sensors(&mut classes), 2);
    let mut wrapped = [DriverAdapter::new(LegacyThermoDriverEx::new([256]))];
    assert_eq!(takes_sensors(&mut wrapped), 1);
}

#[test]
fn class_adapter_introduces_only_one_object_and_no_indirection() {
    use std::mem::size_of;
    // The class adapter *is* the driver: no wrapper, not one byte more.
    let mut driver = LegacyThermoDriver::new([16]);
    let as_sensor: &mut dyn Sensor = &mut driver;
    assert_eq!(milli(as_sensor.read()), 1_000);
    assert!(
        driver.is_open(),
        "the reading went straight to this very object"
    );
    // The object adapter is another object around the driver, with state of its own.
    assert!(size_of::<DriverAdapter<LegacyThermoDriver>>() > size_of::<LegacyThermoDriver>());
}

#[test]
fn class_adapter_keeps_the_adaptee_usable_through_its_old_interface() {
    let mut driver = LegacyThermoDriver::new([16, 32, 48]);
    assert_eq!(milli(driver.read()), 1_000);
    // Still the same driver for old SDK code, which finds it open.
    let mut centi = 0;
    assert_eq!(driver.sd_read(&mut centi), SD_OK);
    assert_eq!(centi, 200);
    assert_eq!(milli(driver.read()), 3_000);
}

#[test]
fn adapters_report_driver_failures_as_errors() {
    let mut object = DriverAdapter::new(LegacyThermoDriver::new([]));
    assert!(matches!(
        object.read(),
        Err(Error::Driver { code: SD_E_NO_DATA })
    ));
    let mut class = LegacyThermoDriver::new([16]).with_conversion_polls(100);
    assert!(matches!(
        class.read(),
        Err(Error::Driver { code: SD_E_BUSY })
    ));
}

#[test]
fn two_way_adapter_serves_new_and_old_clients_on_one_object() {
    let sensor = DigitalThermometer::new("DT-9", [20_000, 20_125, 20_250, 20_375]);
    let mut two_way = TwoWayAdapter::new(sensor);
    // New client.
    assert_eq!(milli(two_way.read()), 20_000);
    // Old SDK client, same object, sees the next readings in its own units.
    let mut out = [0; 2];
    assert_eq!(sd_poll(&mut two_way, 0, &mut out), SD_OK);
    assert_eq!(out, [2012, 2025]);
    // And the name through the C-style buffer.
    let mut name = [0u8; 8];
    assert_eq!(two_way.sd_part_number(&mut name), SD_OK);
    assert_eq!(&name[..3], b"DT-");
    // New client again.
    assert_eq!(milli(two_way.read()), 20_375);
    assert!(matches!(two_way.read(), Err(Error::NoReading { .. })));
}

#[test]
fn two_way_adapter_can_carry_a_legacy_driver_back_to_legacy_code() {
    // Round trip: legacy driver -> object adapter (Sensor) -> two-way adapter (SDK table).
    let adapted = DriverAdapter::new(LegacyThermoDriverEx::new([2560, 2816]));
    let mut back = TwoWayAdapter::new(adapted);
    let mut out = [0; 3];
    assert_eq!(sd_poll(&mut back, 0, &mut out), SD_E_NO_DATA);
    assert_eq!(&out[..2], &[1000, 1100]);
    assert!(matches!(
        back.last_error(),
        Some(Error::Driver { code: SD_E_NO_DATA })
    ));
}
