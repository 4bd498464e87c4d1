//! Abstract Factory: the same firmware on a simulated board and on a Linux host.

use std::fs;

use gof_creational::Error;
use gof_creational::abstract_factory::{
    CONSOLE_PORT, DRIVER_ENABLE_LINE, Hal, LED_LINE, LinuxHost, SimBoard, Timer, heartbeat,
};
use pattern_core::diagram::Diagram;

/// Runs the firmware on whatever family the caller chose; no platform switch in here.
fn boot<H: Hal>(hal: &mut H) -> Result<(), Error> {
    println!(
        "firmware: asking the {} factory for LED, driver enable, timer and console",
        H::FAMILY
    );
    let report = heartbeat(hal, 2)?;
    println!(
        "firmware: LED left {}, answered {:?}",
        report.led, report.commands
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `cargo xtask demo --diagrams` draws the Abstract Factory page's sequence diagram from this run.
    let diagram = Diagram::from_env("abstract_factory_hal");
    println!("== family 1: simulated board (virtual clock, in memory) ==");
    let mut board = SimBoard::default();
    board.receive(CONSOLE_PORT, b"status\nversion\n");
    boot(&mut board)?;
    println!("trace of the simulated board:");
    for event in board.trace() {
        println!("  {event}");
    }

    diagram.note(
        "firmware (client)",
        "the same firmware on the Linux host family",
    );
    println!("== family 2: Linux host (sysfs-like files, monotonic clock) ==");
    let root = std::env::temp_dir().join(format!("gof-creational-hal-demo-{}", std::process::id()));
    let mut host = LinuxHost::open(&root)?;
    fs::write(host.rx_path(CONSOLE_PORT), "status\n")?;
    boot(&mut host)?;
    for line in [LED_LINE, DRIVER_ENABLE_LINE] {
        println!(
            "  gpio/gpio{line}/value = {}",
            fs::read_to_string(host.value_path(line))?.trim()
        );
    }
    println!("  tty/ttyS{CONSOLE_PORT}.tx (timestamps vary on a real host, so they are cut here):");
    for line in fs::read_to_string(host.tx_path(CONSOLE_PORT))?.lines() {
        println!(
            "    {}",
            line.split_once("] ").map_or(line, |(_, text)| text)
        );
    }
    fs::remove_dir_all(&root)?;

    diagram.note(
        "firmware (client)",
        "a timer of one board given a line of another board",
    );
    println!("== mixing families ==");
    let mut other = SimBoard::default();
    println!(
        "boards made so far: sim {}, host {}, sim {}",
        board.id(),
        host.id(),
        other.id()
    );
    let mut timer = board.timer();
    let mut foreign = other.gpio(LED_LINE)?;
    // A host line would not even compile here (the timer's `Line` type is `SimLine`);
    // a line of another simulated board compiles, and is refused at run time.
    match timer.blink(&mut foreign, 1, 10) {
        Ok(_) => println!("mixing two boards: accepted (unexpected)"),
        Err(err) => println!("mixing two boards: refused: {err}"),
    }
    diagram.finish()?;
    Ok(())
}
