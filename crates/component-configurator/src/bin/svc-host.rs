//! `svc-host`: a process that hosts components from svc.conf files and reconfigures them
//! on SIGHUP (like ACE's `ace_netsvcs`), ending on SIGTERM or SIGINT.
//!
//! Usage: `svc-host [--insecure-plugins] [-L LIBDIR]... [-f FILE]... [-S DIRECTIVE]...
//! [-a ADMIN_SOCKET [--admin-dynamic]]`, applied in order (`--insecure-plugins` affects the
//! `-f` and `-S` after it).
//! After start-up and after each SIGHUP (or `reconfigure` on the admin socket) it prints the
//! changes, one line per component (`NAME STATE INFO`), then `ready`.
//! The admin socket (mode 0600, this user's or root's connections only) takes one command
//! per line: `reconfigure`, `list`, or a directive; `dynamic` directives only with
//! `--admin-dynamic`. Plugins are loaded only if their owner and mode pass
//! [`PluginTrust::Strict`](component_configurator::PluginTrust), unless `--insecure-plugins`.

use component_configurator::{Configurator, Report};
use reactor::{Context, Disposition, EventHandler, Interest, Reactor};
use wrapper_facade::signal::{Signal, SignalSet};

struct Terminate;

impl EventHandler for Terminate {
    fn handle_signal(&mut self, ctx: &mut dyn Context, _signal: i32) -> Disposition {
        ctx.end();
        Disposition::Continue
    }
}

fn print(cfg: &Configurator, outcome: &component_configurator::Result<Report>) {
    match outcome {
        Ok(report) => {
            let changes: Vec<String> = report.changes.iter().map(|c| c.to_string()).collect();
            println!("configured: {}", changes.join("; "));
            for e in &report.errors {
                println!("error: {e}");
            }
        }
        Err(e) => println!("refused: {}", pattern_core::ErrorChain(e)),
    }
    for l in cfg.repository().list() {
        println!("  {} {:?} {}", l.name, l.state, l.info);
    }
    println!("ready");
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Block the signals before any thread starts, so every thread inherits the mask and the
    // kernel can only deliver them through the reactor's signal fd.
    SignalSet::default()
        .with(Signal::HUP)
        .with(Signal::TERM)
        .with(Signal::INT)
        .block_current_thread()?;
    tracing_init();
    let mut cfg = Configurator::default();
    let mut args = std::env::args().skip(1);
    let mut outcome = Ok(Report::default());
    let mut admin = None;
    let mut admin_dynamic = false;
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--insecure-plugins" => {
                cfg.set_plugin_trust(component_configurator::PluginTrust::Insecure);
                continue;
            }
            "--admin-dynamic" => {
                admin_dynamic = true;
                continue;
            }
            _ => {}
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let step = match flag.as_str() {
            "-L" => {
                cfg.add_search_dir(value);
                continue;
            }
            "-f" => cfg.process_file(&value),
            "-S" => cfg.process_directive(&value),
            "-a" => {
                admin = Some(value);
                continue;
            }
            other => return Err(format!("unknown flag {other}").into()),
        };
        outcome = match (outcome, step) {
            (Ok(mut all), Ok(more)) => {
                all.changes.extend(more.changes);
                all.errors.extend(more.errors);
                Ok(all)
            }
            (Err(e), _) | (_, Err(e)) => Err(e),
        };
    }
    // Bound before "ready" is printed, so a client may connect as soon as it reads it.
    let admin = admin
        .map(component_configurator::AdminSocket::bind)
        .transpose()?
        .map(|a| a.allow_dynamic(admin_dynamic));
    print(&cfg, &outcome);
    let mut reactor = Reactor::new()?;
    let configurator = component_configurator::ReconfigureOnHangup::new(cfg, print)
        .watch(&mut reactor)
        .map_err(|e| e.to_string())?;
    if let Some(admin) = admin {
        admin
            .open(&mut reactor, configurator)
            .map_err(|e| e.to_string())?;
    }
    let token = reactor
        .register(Box::new(Terminate), Interest::NONE)
        .map_err(|e| e.to_string())?;
    for s in [Signal::TERM, Signal::INT] {
        reactor
            .watch_signal(token, s.as_raw())
            .map_err(|e| e.to_string())?;
    }
    reactor.serve()?;
    println!("stopped");
    Ok(())
}

fn tracing_init() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .try_init();
}
