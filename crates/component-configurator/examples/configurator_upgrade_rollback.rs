//! Component Configurator: a hot upgrade triggered by SIGHUP, and its rollbacks. A gateway's
//! statistics service runs as a static component linked into the host; svc.conf is changed
//! to name the statistics plugin (`cc_stats`) instead, and each SIGHUP asks the configurator,
//! on the reactor's loop, to upgrade it with its request count handed over. The first try
//! fails to export the state (the old instance is resumed), the second exports state the new
//! build refuses (the old instance takes its own state back and starts again), the third
//! succeeds and the plugin carries the count on.
//!
//! The plugin is built with `cargo build -p cc-stats` if missing.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use component_configurator::{
    Component, ComponentError, Configurator, ReconfigureOnHangup, Report,
};
use pattern_core::diagram::Diagram;
use reactor::Reactor;
use wrapper_facade::signal::{Signal, SignalSet, send_to_own_process};

mod common;
use common::plugin_dir;

/// How the linked-in statistics service's `export_state` answers on the next upgrade.
#[derive(Debug, Clone, Copy)]
enum Export {
    /// Refuses, with this reason.
    Refuse(&'static str),
    /// Its count as 4 bytes, the old format, which only it reads.
    Old,
    /// Its count as 8 bytes, the format the plugin reads too.
    New,
}

/// The statistics service linked into the host: it counts requests (41 so far, here).
struct LinkedStats {
    count: u64,
    export: Arc<Mutex<Export>>,
}

impl Component for LinkedStats {
    fn init(&mut self, _args: &[String]) -> Result<(), ComponentError> {
        Ok(())
    }

    fn fini(&mut self) -> Result<(), ComponentError> {
        Ok(())
    }

    fn info(&self) -> String {
        format!("linked statistics, {} requests counted", self.count)
    }

    fn export_state(&self) -> Result<Option<Vec<u8>>, ComponentError> {
        match *self.export.lock().expect("export") {
            Export::Refuse(why) => Err(ComponentError::new(why)),
            Export::Old => {
                let count =
                    u32::try_from(self.count).map_err(|e| ComponentError::new(e.to_string()))?;
                Ok(Some(count.to_le_bytes().to_vec()))
            }
            Export::New => Ok(Some(self.count.to_le_bytes().to_vec())),
        }
    }

    fn import_state(&mut self, state: &[u8]) -> Result<(), ComponentError> {
        self.count = match state.len() {
            4 => u64::from(u32::from_le_bytes(state.try_into().expect("4 bytes"))),
            8 => u64::from_le_bytes(state.try_into().expect("8 bytes")),
            n => {
                return Err(ComponentError::new(format!(
                    "{n} bytes of state is no count"
                )));
            }
        };
        Ok(())
    }
}

fn request(addr: SocketAddr, line: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(addr)?;
    stream.write_all(format!("{line}\n").as_bytes())?;
    let mut reply = String::new();
    BufReader::new(stream).read_line(&mut reply)?;
    Ok(reply.trim_end().to_owned())
}

/// What a reconfiguration did, as lines to print.
fn lines(outcome: &component_configurator::Result<Report>) -> Vec<String> {
    match outcome {
        Ok(report) => report
            .changes
            .iter()
            .map(|c| c.to_string())
            .chain(report.errors.iter().map(|e| format!("error: {}", e.error)))
            .collect(),
        Err(e) => vec![format!("refused: {e}")],
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // First, before any thread starts (the plugin's service runs one): SIGHUP is read from
    // the reactor's signal fd, never delivered.
    SignalSet::default()
        .with(Signal::HUP)
        .block_current_thread()?;
    // `cargo xtask demo --diagrams` draws the Component Configurator page's reconfiguration
    // sequence from this run: the reactor reading SIGHUP, the configurator's upgrade, and
    // its two rollbacks.
    let mut diagram = Diagram::from_env_limited("configurator_upgrade_rollback", 120);
    // The reactor's loop runs on this thread, which reads the signal fd.
    diagram.alias("main", "Reactor");
    diagram.pause();
    let plugins = plugin_dir(&["cc-stats"]);
    let dir = std::env::temp_dir().join(format!("configurator-upgrade-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let conf = dir.join("svc.conf");
    std::fs::write(&conf, "static Stats \"-p 0\"\n")?;

    let export = Arc::new(Mutex::new(Export::New));
    let mut cfg = Configurator::default();
    cfg.add_search_dir(&plugins);
    let handed = export.clone();
    cfg.register_static("Stats", move || {
        Box::new(LinkedStats {
            count: 41,
            export: handed.clone(),
        })
    });
    println!("configurator: svc.conf has the statistics service linked in");
    for line in lines(&cfg.process_file(&conf)) {
        println!("  {line}");
    }

    let mut reactor = Reactor::new()?;
    let (reports, reported) = mpsc::channel();
    let hangup = ReconfigureOnHangup::new(cfg, move |cfg, outcome| {
        let stats = cfg
            .repository()
            .get("Stats")
            .map(|r| (r.state(), r.component().info()));
        let _ = reports.send((lines(outcome), stats));
    });
    let token = hangup.watch(&mut reactor)?;
    diagram.alias(format!("handler {token}"), "ReconfigureOnHangup");

    println!("svc.conf now names the statistics plugin: dynamic Stats ... cc_stats:_make_stats()");
    std::fs::write(
        &conf,
        "dynamic Stats Service_Object * cc_stats:_make_stats() \"-p 0\"\n",
    )?;
    let tries = [
        (
            "the linked service cannot export its state now",
            Export::Refuse("busy: a snapshot is being written"),
        ),
        (
            "it exports its count in its old 4-byte format, which the plugin refuses",
            Export::Old,
        ),
        ("it exports its count as 8 bytes", Export::New),
    ];
    let mut last = None;
    for (n, (what, how)) in tries.into_iter().enumerate() {
        println!("kill -HUP, try {}: {what}", n + 1);
        *export.lock().expect("export") = how;
        diagram.resume();
        diagram.note("Reactor", &format!("kill -HUP, try {}: {what}", n + 1));
        send_to_own_process(Signal::HUP)?;
        let (said, stats) = loop {
            reactor.handle_events(Some(Duration::from_secs(10)))?;
            if let Ok(done) = reported.try_recv() {
                break done;
            }
        };
        diagram.pause();
        for line in said {
            println!("  {line}");
        }
        if let Some((state, info)) = &stats {
            println!("  Stats is {state:?}: {}", portless(info));
        }
        last = stats;
    }
    if let Some((_, info)) = last {
        let addr = addr_of(&info);
        println!(
            "client -> Stats: {:?} (the count survived the upgrade)",
            request(addr, "count me")?
        );
    }
    drop(reactor);
    std::fs::remove_dir_all(&dir)?;
    diagram.finish()?;
    Ok(())
}

/// The address in a component's info.
fn addr_of(info: &str) -> SocketAddr {
    let at = info.find("127.0.0.1:").expect("an address");
    let rest = &info[at..];
    let end = rest.find([' ', ',', ')']).unwrap_or(rest.len());
    rest[..end].parse().expect("socket address")
}

/// Info without the port number, which changes from run to run.
fn portless(info: &str) -> String {
    match info.find("127.0.0.1:") {
        Some(at) => {
            let rest = &info[at + 10..];
            let end = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            format!("{}127.0.0.1:<port>{}", &info[..at], &rest[end..])
        }
        None => info.to_owned(),
    }
}
