//! Extension Interface: one plugin component (`cc-gate`) exports three interfaces, its
//! control interface, a record filter and statistics; clients ask for the one they need by
//! its identifier. A plugin built before the query existed (`cc-echo`) keeps working and
//! answers "none"; so does any component asked for an interface it lacks.
//!
//! The plugins are built with `cargo build -p cc-gate -p cc-echo` if missing.

use std::path::{Path, PathBuf};

use component_configurator::ext::{self, Extension, FilterInput, FilterVerdict};
use component_configurator::{Component, Configurator};

fn plugin_dir() -> PathBuf {
    // This example runs from target/<profile>/examples/.
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .to_owned();
    let plugins = ["cc-gate", "cc-echo"];
    if plugins
        .iter()
        .any(|p| !dir.join(format!("lib{}.so", p.replace('-', "_"))).exists())
    {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_owned());
        let mut cmd = std::process::Command::new(cargo);
        cmd.args(["build", "--quiet"]);
        if dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        for p in plugins {
            cmd.args(["-p", p]);
        }
        cmd.env("CARGO_TARGET_DIR", dir.parent().expect("target dir"));
        let status = cmd.status().expect("cargo build for the plugins");
        assert!(status.success(), "building the plugins failed");
    }
    dir
}

/// A client that knows only the record filter interface.
fn run_filter(gate: &dyn Component, records: &[(u8, &str)]) {
    let Some(filter) = gate
        .query_interface(ext::record_filter::IID)
        .and_then(Extension::record_filter)
    else {
        println!("  no record filter");
        return;
    };
    for &(severity, message) in records {
        let input = FilterInput {
            host: "pos-7",
            app: "till",
            severity,
            message,
        };
        let verdict = match filter.filter(&input) {
            FilterVerdict::Pass => "pass".to_owned(),
            FilterVerdict::Drop => "drop".to_owned(),
            FilterVerdict::Rewrite(text) => format!("rewrite to {text:?}"),
            other => format!("{other:?}"),
        };
        println!("  <{severity}> {message:?}: {verdict}");
    }
}

/// A client that knows only the statistics interface: it reports every component that
/// exports one.
fn report_statistics(cfg: &Configurator) {
    for listing in cfg.repository().list() {
        let component = cfg
            .repository()
            .find(&listing.name)
            .expect("listed")
            .component();
        match component
            .query_interface(ext::statistics::IID)
            .and_then(Extension::statistics)
        {
            Some(stats) => {
                let counters: Vec<String> = stats
                    .counters()
                    .iter()
                    .map(|(name, value)| format!("{name}={value}"))
                    .collect();
                println!("  {}: {}", listing.name, counters.join(" "));
            }
            None => println!("  {}: exports no statistics", listing.name),
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `cargo xtask demo --diagrams` draws the Extension Interface page's sequence diagram from this run.
    let diagram = pattern_core::diagram::Diagram::from_env_limited("extension_interface_gate", 120);
    let dir = std::env::temp_dir().join(format!("extension-interface-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let conf = dir.join("svc.conf");
    let svc_conf = |gate_args: &str| {
        format!(
            "dynamic Gate Service_Object * cc_gate:_make_gate() \"{gate_args}\"\n\
             dynamic Echo Service_Object * cc_echo:_make_echo() \"-p 0\"\n"
        )
    };
    std::fs::write(&conf, svc_conf("-s 6"))?;
    let mut cfg = Configurator::default();
    cfg.add_search_dir(plugin_dir());
    let report = cfg.process_file(&conf)?;
    assert!(report.is_ok(), "{:?}", report.errors);

    println!("1. which component exports which interface");
    for name in ["Gate", "Echo"] {
        let component = cfg.repository().find(name)?.component();
        let answers: Vec<String> = ext::KNOWN
            .iter()
            .chain(&["posa.sink/1", "posa.statistics/2"])
            .map(|iid| {
                let answer = if component.query_interface(iid).is_some() {
                    "yes"
                } else {
                    "none"
                };
                format!("{iid} {answer}")
            })
            .collect();
        println!("  {name}: {}", answers.join(", "));
    }

    println!("2. the gate's record filter, through its own interface");
    let gate = cfg.repository().find("Gate")?.component();
    println!("  control interface says: {}", gate.info());
    run_filter(
        gate,
        &[
            (3, "printer jammed"),
            (7, "polling the scanner"),
            (6, "paid with 4111-1111-1111-1234"),
        ],
    );

    println!("3. the gate's statistics, through another interface of the same object");
    report_statistics(&cfg);

    println!("4. reconfigured through the control interface (-s 3); the other interfaces see it");
    std::fs::write(&conf, svc_conf("-s 3"))?;
    let report = cfg.reconfigure()?;
    println!("  changes: {:?}", report.changes);
    let gate = cfg.repository().find("Gate")?.component();
    println!("  control interface says: {}", gate.info());
    run_filter(
        gate,
        &[(3, "printer jammed"), (6, "paid with 4111-1111-1111-1234")],
    );
    report_statistics(&cfg);
    cfg.close();
    std::fs::remove_dir_all(&dir)?;
    diagram.finish()?;
    Ok(())
}
