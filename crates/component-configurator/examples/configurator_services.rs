//! Component Configurator with dynamic components: three plugin libraries (echo, time and
//! statistics services) are loaded from a svc.conf, serve clients, and are reconfigured live:
//! one suspended, one restarted with new arguments, one hot-upgraded to a new build of its
//! library with its request count handed over, one removed and its library unloaded.
//!
//! The plugins are built with `cargo build -p cc-echo -p cc-time -p cc-stats` if missing.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};

use component_configurator::{Configurator, Report};

mod common;
use common::plugin_dir;

fn request(addr: SocketAddr, line: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(addr)?;
    stream.write_all(format!("{line}\n").as_bytes())?;
    let mut reply = String::new();
    BufReader::new(stream).read_line(&mut reply)?;
    Ok(reply.trim_end().to_owned())
}

fn addr(cfg: &Configurator, name: &str) -> SocketAddr {
    let info = cfg
        .repository()
        .get(name)
        .expect("configured")
        .component()
        .info();
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

fn show(report: &Report) {
    for c in &report.changes {
        println!("  {c}");
    }
    for e in &report.errors {
        println!("  error: {}", e.error);
    }
}

fn list(cfg: &Configurator) {
    println!("repository:");
    for l in cfg.repository().list() {
        let state = format!("{:?}", l.state);
        println!("  {:<6} {state:<9} {}", l.name, portless(&l.info));
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `cargo xtask demo --diagrams` draws the Component Configurator page's sequence diagram
    // from this run.
    let diagram = pattern_core::diagram::Diagram::from_env_limited("configurator_services", 120);
    let plugins = plugin_dir(&["cc-echo", "cc-time", "cc-stats"]);
    let dir = std::env::temp_dir().join(format!("configurator-services-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    // A second "build" of the statistics plugin for the hot upgrade.
    std::fs::copy(
        plugins.join("libcc_stats.so"),
        dir.join("libcc_stats_v2.so"),
    )?;
    let conf = dir.join("svc.conf");
    std::fs::write(
        &conf,
        "# three services, each on a port the system picks\n\
         dynamic Echo  Service_Object * cc_echo:_make_echo()   \"-p 0\"\n\
         dynamic Time  Service_Object * cc_time:_make_time()   \"-p 0\"\n\
         dynamic Stats Service_Object * cc_stats:_make_stats() \"-p 0\"\n",
    )?;

    let mut cfg = Configurator::default();
    cfg.add_search_dir(&plugins);
    let v2 = dir.display().to_string();
    cfg.set_env(move |name| (name == "NEW_BUILD").then(|| v2.clone()));

    println!("configurator: processing svc.conf (three dynamic components)");
    show(&cfg.process_file(&conf)?);
    list(&cfg);

    let echo = addr(&cfg, "Echo");
    println!(
        "client -> Echo : {:?}",
        request(echo, "hello, configurator")?
    );
    let time = request(addr(&cfg, "Time"), "now?")?;
    let is_timestamp = time
        .strip_prefix("time ")
        .is_some_and(|s| s.parse::<u64>().is_ok());
    println!("client -> Time : a timestamp? {is_timestamp}");
    let stats = addr(&cfg, "Stats");
    for _ in 0..3 {
        request(stats, "count me")?;
    }
    println!("client -> Stats: {:?}", request(stats, "count me")?);

    println!("reconfigure: suspend Echo, new arguments for Time, upgrade Stats to a new build");
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    std::fs::write(
        &conf,
        format!(
            "dynamic Echo  Service_Object * cc_echo:_make_echo()   inactive \"-p 0\"\n\
             dynamic Time  Service_Object * cc_time:_make_time()   \"-p {port}\"\n\
             dynamic Stats Service_Object * $NEW_BUILD/libcc_stats_v2.so:_make_stats() \"-p 0\"\n"
        ),
    )?;
    show(&cfg.reconfigure()?);
    println!(
        "client -> Echo : {}",
        match request(echo, "anyone?") {
            Ok(r) => format!("answered {r:?}"),
            Err(_) => "refused (suspended)".to_owned(),
        }
    );
    println!(
        "client -> Time : now on the port from its new arguments? {}",
        addr(&cfg, "Time").port() == port
    );
    println!(
        "client -> Stats: {:?} (the count survived the upgrade)",
        request(addr(&cfg, "Stats"), "count me")?
    );

    println!("reconfigure: Time removed from svc.conf");
    std::fs::write(
        &conf,
        "dynamic Echo  Service_Object * cc_echo:_make_echo()   inactive \"-p 0\"\n\
         dynamic Stats Service_Object * $NEW_BUILD/libcc_stats_v2.so:_make_stats() \"-p 0\"\n",
    )?;
    show(&cfg.reconfigure()?);
    list(&cfg);

    println!("shutdown: fini in reverse order of insertion");
    for removal in cfg.close() {
        let library = match removal.unloaded {
            Some(u) if u.unmapped => "library unmapped",
            Some(_) => "library still mapped",
            None => "library still in use",
        };
        println!(
            "  {:<6} fini {}, {library}",
            removal.name,
            if removal.fini.is_ok() { "ok" } else { "failed" }
        );
    }
    std::fs::remove_dir_all(&dir)?;
    diagram.finish()?;
    Ok(())
}
