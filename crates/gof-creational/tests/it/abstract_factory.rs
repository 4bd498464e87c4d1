//! Abstract Factory: one client on two families, and what happens when products are mixed.

use std::fs;
use std::path::{Path, PathBuf};

use gof_creational::Error;
use gof_creational::abstract_factory::{
    CONSOLE_PORT, DRIVER_ENABLE_LINE, GpioLine, Hal, LED_LINE, Level, LinuxHost, SimBoard,
    SimEvent, Timer, Uart, heartbeat,
};

/// A scratch directory removed when the test ends.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("gof-creational-it-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        Scratch(dir)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn without_timestamps(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split_once("] ").map_or(l, |(_, rest)| rest).to_owned())
        .collect()
}

#[test]
fn the_client_runs_unchanged_on_the_simulated_board() {
    let mut board = SimBoard::default();
    board.receive(CONSOLE_PORT, b"status\n\nreboot\n");
    let report = heartbeat(&mut board, 2).unwrap();
    assert_eq!(report.family, "simulated board");
    assert_eq!(report.led, Level::Low);
    assert_eq!(report.commands, ["status", "reboot"]);

    let gpio = |at_ms, line, level| SimEvent::Gpio { at_ms, line, level };
    let tx = |at_ms, text: &str| SimEvent::Transmit {
        at_ms,
        port: CONSOLE_PORT,
        text: text.into(),
    };
    assert_eq!(
        board.trace(),
        [
            tx(0, "[     0 ms] boot on simulated board\n"),
            gpio(0, LED_LINE, Level::High),
            gpio(10, LED_LINE, Level::Low),
            gpio(20, LED_LINE, Level::High),
            gpio(30, LED_LINE, Level::Low),
            gpio(40, DRIVER_ENABLE_LINE, Level::High),
            tx(40, "ack status\n"),
            gpio(40, DRIVER_ENABLE_LINE, Level::Low),
            gpio(40, DRIVER_ENABLE_LINE, Level::High),
            tx(40, "ack reboot\n"),
            gpio(40, DRIVER_ENABLE_LINE, Level::Low),
            tx(40, "[    40 ms] heartbeat done\n"),
        ]
    );
}

#[test]
fn the_client_runs_unchanged_on_the_linux_host() {
    let scratch = Scratch::new("heartbeat");
    let mut host = LinuxHost::open(scratch.path()).unwrap();
    fs::write(host.rx_path(CONSOLE_PORT), "status\n").unwrap();
    let report = heartbeat(&mut host, 1).unwrap();
    assert_eq!(report.family, "linux host");
    assert_eq!(report.commands, ["status"]);
    assert_eq!(
        fs::read_to_string(host.value_path(LED_LINE)).unwrap(),
        "0\n"
    );
    assert_eq!(
        fs::read_to_string(host.value_path(DRIVER_ENABLE_LINE)).unwrap(),
        "0\n"
    );
    let sent = fs::read_to_string(host.tx_path(CONSOLE_PORT)).unwrap();
    assert_eq!(
        without_timestamps(&sent),
        ["boot on linux host", "ack status", "heartbeat done"]
    );
}

#[test]
fn host_uart_reads_only_new_bytes() {
    let scratch = Scratch::new("rx");
    let mut host = LinuxHost::open(scratch.path()).unwrap();
    let mut uart = host.uart(1).unwrap();
    assert!(uart.read_available().unwrap().is_empty());
    fs::write(host.rx_path(1), "ab").unwrap();
    assert_eq!(uart.read_available().unwrap(), b"ab");
    fs::write(host.rx_path(1), "abcd").unwrap();
    assert_eq!(uart.read_available().unwrap(), b"cd");
}

#[test]
fn host_lines_are_sysfs_like_value_files() {
    let scratch = Scratch::new("gpio");
    let mut host = LinuxHost::open(scratch.path()).unwrap();
    let mut line = host.gpio(40).unwrap();
    assert_eq!(line.level().unwrap(), Level::Low);
    assert_eq!(line.toggle().unwrap(), Level::High);
    assert_eq!(
        fs::read_to_string(scratch.path().join("gpio/gpio40/value")).unwrap(),
        "1\n"
    );
    // Something else wrote garbage into the file: an error, not a panic.
    fs::write(host.value_path(40), "maybe\n").unwrap();
    assert!(matches!(line.level(), Err(Error::Malformed { .. })));
    assert!(matches!(
        host.gpio(64),
        Err(Error::NoSuchLine {
            line: 64,
            lines: 64
        })
    ));
    assert!(matches!(host.gpio(40), Err(Error::InUse { .. })));
    assert!(matches!(host.uart(4), Err(Error::NoSuchPort { .. })));
}

#[test]
fn half_duplex_lowers_driver_enable_even_when_the_write_fails() {
    let scratch = Scratch::new("de");
    let mut host = LinuxHost::open(scratch.path()).unwrap();
    let mut uart = host.uart(0).unwrap();
    let mut de = host.gpio(DRIVER_ENABLE_LINE).unwrap();
    fs::remove_file(host.tx_path(0)).unwrap();
    assert!(matches!(
        uart.write_half_duplex(&mut de, b"lost"),
        Err(Error::Io(_))
    ));
    assert_eq!(de.level().unwrap(), Level::Low);
}

#[test]
fn products_of_two_boards_of_one_family_are_refused_at_run_time() {
    let mut first = SimBoard::default();
    let mut second = SimBoard::default();
    let mut timer = first.timer();
    let mut foreign_led = second.gpio(LED_LINE).unwrap();
    let err = timer.blink(&mut foreign_led, 1, 5).unwrap_err();
    assert!(matches!(
        err,
        Error::ForeignProduct { product: "GPIO line", owner, expected }
            if owner == second.id().get() && expected == first.id().get()
    ));
    // Nothing happened on either board.
    assert!(first.trace().is_empty() && second.trace().is_empty());

    let mut uart = first.uart(0).unwrap();
    let foreign_timer = second.timer();
    assert!(matches!(
        uart.log_line(&foreign_timer, "x"),
        Err(Error::ForeignProduct { .. })
    ));
    assert!(matches!(
        uart.write_half_duplex(&mut foreign_led, b"x"),
        Err(Error::ForeignProduct { .. })
    ));
    assert!(first.transmitted(0).is_empty());
}

#[test]
fn generic_code_picks_the_family_at_the_call_site() {
    fn led_after_blinks<H: Hal>(hal: &mut H, times: u32) -> Level {
        let mut led = hal.gpio(0).unwrap();
        led.set(Level::High).unwrap();
        hal.timer().blink(&mut led, times, 1).unwrap()
    }
    let scratch = Scratch::new("generic");
    assert_eq!(led_after_blinks(&mut SimBoard::default(), 2), Level::Low);
    assert_eq!(
        led_after_blinks(&mut LinuxHost::open(scratch.path()).unwrap(), 0),
        Level::High
    );
}
