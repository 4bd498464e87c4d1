//! Memento on a field device: an operator edits a gateway's configuration with undo and redo,
//! the caretaker never sees inside the mementos, full and delta mementos are weighed,
//! and a memento travels as bytes (as a hot upgrade would hand it over).
//!
//! Run with `cargo run -p gof-behavioral --example memento_device_config`.

use gof_behavioral::memento::{
    Caretaker, ChannelConfig, ConfigCommand, ConfigMemento, DeviceConfig, Originator, Snapshotting,
    UndoStack,
};

fn show(config: &DeviceConfig) -> String {
    let channels: Vec<String> = config
        .channels()
        .iter()
        .map(|c| {
            format!(
                "{}{}>{}",
                if c.enabled() { "" } else { "!" },
                c.label(),
                c.threshold()
            )
        })
        .collect();
    format!(
        "{} @{} Hz, report {} s, [{}]",
        config.name(),
        config.sample_rate_hz(),
        config.report_interval_s(),
        channels.join(" ")
    )
}

fn gateway(channels: usize) -> Result<DeviceConfig, gof_behavioral::Error> {
    let mut config = DeviceConfig::new("gw-north")?;
    for i in 0..channels {
        config.add_channel(ChannelConfig::new(
            format!("probe-{i:02}"),
            50_000 + 1_000 * i as i32,
        )?)?;
    }
    Ok(config)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `cargo xtask demo --diagrams` draws the Memento page's sequence diagram from the undo
    // stack and the snapshot caretaker below.
    let diagram = pattern_core::diagram::Diagram::from_env("memento_device_config");
    println!("== Command + Memento: an undo stack of edits ==");
    let mut config = gateway(3)?;
    let mut edits = UndoStack::with_limit(4);
    println!("start:      {}", show(&config));
    edits.mark_saved();
    for cmd in [
        ConfigCommand::SetSampleRate(50),
        ConfigCommand::SetThreshold {
            channel: 1,
            threshold: 48_000,
        },
        ConfigCommand::SetEnabled {
            channel: 2,
            enabled: false,
        },
        ConfigCommand::SetThreshold {
            channel: 7,
            threshold: 1,
        },
    ] {
        match edits.apply(&mut config, cmd.clone()) {
            Ok(()) => println!("apply {cmd}: {}", show(&config)),
            Err(e) => println!("apply {cmd}: refused ({e}), nothing recorded"),
        }
    }
    println!(
        "saved? {}  undo {} / redo {}",
        edits.is_saved(),
        edits.undo_len(),
        edits.redo_len()
    );
    while let Some(cmd) = edits.undo(&mut config) {
        println!("undo  {cmd}: {}", show(&config));
        if edits.undo_len() == 1 {
            break;
        }
    }
    if let Some(cmd) = edits.redo(&mut config)? {
        println!("redo  {cmd}: {}", show(&config));
    }
    edits.apply(&mut config, ConfigCommand::SetReportInterval(10))?;
    println!("apply report every 10 s: {}", show(&config));
    println!("a new edit cleared redo: redo {}", edits.redo_len());

    println!();
    diagram.pause();
    println!("== History limit and saved marker ==");
    for t in [40_000, 41_000, 42_000, 43_000] {
        edits.apply(
            &mut config,
            ConfigCommand::SetThreshold {
                channel: 0,
                threshold: t,
            },
        )?;
    }
    println!(
        "after 4 more edits with a limit of {}: undo {}",
        edits.limit(),
        edits.undo_len()
    );
    let mut undone = 0;
    while edits.undo(&mut config).is_some() {
        undone += 1;
    }
    println!("undid {undone}: {}", show(&config));
    println!(
        "back at the saved state? {} (it fell off the history)",
        edits.is_saved()
    );

    println!();
    println!("== Snapshot caretaker with rollback ==");
    let mut config = gateway(3)?;
    let mut history = Caretaker::default();
    diagram.resume();
    history.try_edit(&mut config, |c| c.rename("gw-north-2"))?;
    let refused = history.try_edit(&mut config, |c| {
        c.set_sample_rate(20)?;
        c.set_threshold(9, 0) // fails half-way: the memento rolls the first change back
    });
    println!("two-step edit: {:?}", refused.map(drop));
    diagram.pause();
    println!("after rollback: {}", show(&config));
    println!(
        "caretaker holds {} memento(s): {:?}",
        history.undo_len(),
        history
    );

    println!();
    println!("== Memory cost: full vs delta mementos over 100 threshold edits ==");
    for channels in [1, 8, 32] {
        let (mut a, mut b) = (gateway(channels)?, gateway(channels)?);
        let mut delta = UndoStack::with_limit(100);
        let mut full = UndoStack::with_limit(100);
        for i in 0..100 {
            let cmd = ConfigCommand::SetThreshold {
                channel: i % channels,
                threshold: i as i32,
            };
            delta.apply(&mut a, cmd.clone())?;
            full.apply(&mut b, Snapshotting(cmd))?;
        }
        println!(
            "{channels:>2} channel(s): delta {:>6} B, full {:>6} B in memory; one full memento encodes to {:>3} B",
            delta.footprint(),
            full.footprint(),
            b.save().encoded_len()
        );
    }

    println!();
    println!("== A memento as bytes ==");
    let config = gateway(2)?;
    let memento = config.save();
    let bytes = memento.to_bytes();
    println!(
        "memento {memento:?} -> {} bytes, version byte {}",
        bytes.len(),
        bytes[4]
    );
    let mut replacement = DeviceConfig::new("blank")?;
    replacement.restore(ConfigMemento::from_bytes(&bytes)?);
    println!("restored on the new instance: {}", show(&replacement));
    let mut corrupt = bytes.clone();
    corrupt[4] = 9;
    for (what, input) in [
        ("truncated", &bytes[..bytes.len() - 3]),
        ("future version", &corrupt[..]),
        ("wrong file", &b"PNG\r\n"[..]),
    ] {
        match ConfigMemento::from_bytes(input) {
            Ok(_) => println!("{what}: accepted?!"),
            Err(e) => println!("{what}: {e}"),
        }
    }
    diagram.finish()?;
    Ok(())
}
