//! `logd`: the logging server.
#![forbid(unsafe_code)]

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use logging_service::Error;
use logging_service::limits::{self, parse_in};
use logging_service::server::{Logd, LogdConfig, parse_durability};
use logging_service::store::{Durability, StoreConfig};

/// The longest `--fsync <N>ms` interval: an hour.
const MAX_FSYNC_INTERVAL: Duration = Duration::from_secs(3600);
use pattern_core::{Context, Disposition, EventHandler};
use wrapper_facade::signal::{Signal, SignalSet};

const USAGE: &str =
    "usage: logd [--ace-port P] [--syslog-port P] [--bind ADDR] [--data-dir D] [-f svc.conf]
            [--concurrency reactor|leader-followers|half-sync-half-async] [--threads N]
            [--forward HOST:PORT] [--fsync none|batch|<N>ms] [--rotate-bytes N] [--keep N]
            [--idle-timeout SECS] [--max-frame BYTES] [--max-buffered BYTES] [--backlog N]
            [--max-open-files N] [--max-hosts N] [--max-pending RECORDS]
       logd --check-config [-f svc.conf]   (validate options and svc.conf, start nothing)
A port of 0 picks a free one; `--ace-port off` or `--syslog-port off` disables a listener.
With -f, the services come from the svc.conf (static ACE_Logging \"-p P\", static Syslog_Logging
\"-p P\", static Statistics \"-i SECS\", and dynamic plugins) and the port options are ignored.
SIGTERM or SIGINT: stop, writing everything read. SIGHUP: re-read the svc.conf, reopen the files.
Exits 1 when records were dropped because they could not be stored.";

/// A count that must be at least 1.
fn positive(v: &str) -> Option<usize> {
    v.parse().ok().filter(|&n| n > 0)
}

/// What the command line asks for.
#[derive(Debug)]
enum Mode {
    /// Run the server.
    Serve(LogdConfig),
    /// `--check-config`: validate the options and the svc.conf, start nothing.
    Check(LogdConfig),
}

fn parse_mode(args: &[String]) -> Result<Mode, Error> {
    let check = args.iter().any(|a| a == "--check-config");
    let rest: Vec<String> = args
        .iter()
        .filter(|a| *a != "--check-config")
        .cloned()
        .collect();
    let cfg = parse_args(&rest)?;
    Ok(if check {
        Mode::Check(cfg)
    } else {
        Mode::Serve(cfg)
    })
}

/// `--check-config`, like `rsyslogd -N1`: the options were checked while parsing; the
/// svc.conf is checked as a SIGHUP would check it (syntax, services, their arguments).
fn check_config(cfg: &LogdConfig) -> ExitCode {
    match &cfg.svc_conf {
        Some(path) => match logging_service::services::check_file(path, cfg.bind) {
            Ok(()) => {
                println!("logd: {}: configuration OK", path.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("logd: {e}");
                ExitCode::FAILURE
            }
        },
        None => {
            println!("logd: options OK (no svc.conf given)");
            ExitCode::SUCCESS
        }
    }
}

fn parse_args(args: &[String]) -> Result<LogdConfig, Error> {
    let mut cfg = LogdConfig {
        store: StoreConfig::new("logd-data"),
        ..LogdConfig::default()
    };
    let mut model = String::from("reactor");
    let mut threads: Option<usize> = None;
    let mut it = args.iter();
    let bad = |flag: &str, v: &str| Error::Usage(format!("{flag}: bad value `{v}`"));
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            return Err(Error::Usage(USAGE.into()));
        }
        let value = it
            .next()
            .ok_or_else(|| Error::Usage(format!("{flag} needs a value\n{USAGE}")))?;
        let port = |v: &str| -> Result<Option<u16>, Error> {
            if v == "off" {
                Ok(None)
            } else {
                v.parse().map(Some).map_err(|_| bad(flag, v))
            }
        };
        match flag.as_str() {
            "--ace-port" => cfg.ace_port = port(value)?,
            "--syslog-port" => cfg.syslog_port = port(value)?,
            "--bind" => cfg.bind = value.parse::<IpAddr>().map_err(|_| bad(flag, value))?,
            "--data-dir" => cfg.store.dir = value.into(),
            "-f" => cfg.svc_conf = Some(value.into()),
            "--concurrency" => model = value.clone(),
            "--threads" => {
                threads =
                    Some(parse_in(flag, value, 1..=limits::MAX_THREADS).map_err(Error::Usage)?)
            }
            "--forward" => {
                let addr = std::net::ToSocketAddrs::to_socket_addrs(value.as_str())
                    .ok()
                    .and_then(|mut a| a.next())
                    .ok_or_else(|| bad(flag, value))?;
                cfg.forward = Some(addr);
            }
            "--fsync" => {
                let d = parse_durability(value)?;
                if let Durability::Interval(every) = d
                    && every > MAX_FSYNC_INTERVAL
                {
                    return Err(Error::Usage(format!(
                        "--fsync: {}ms is out of range (at most {}ms)",
                        every.as_millis(),
                        MAX_FSYNC_INTERVAL.as_millis()
                    )));
                }
                cfg.store.durability = d;
            }
            "--rotate-bytes" => {
                cfg.store.rotate_bytes =
                    parse_in(flag, value, 1..=1u64 << 40).map_err(Error::Usage)?
            }
            "--keep" => cfg.store.keep = parse_in(flag, value, 0..=1000).map_err(Error::Usage)?,
            "--idle-timeout" => {
                cfg.idle = Duration::from_secs(
                    parse_in(flag, value, 0..=limits::MAX_IDLE.as_secs()).map_err(Error::Usage)?,
                )
            }
            "--max-frame" => {
                cfg.max_frame =
                    parse_in(flag, value, 1..=limits::MAX_FRAME_LIMIT).map_err(Error::Usage)?
            }
            "--max-buffered" => {
                let n =
                    parse_in(flag, value, 1..=limits::MAX_BUFFERED_LIMIT).map_err(Error::Usage)?;
                cfg.max_buffered = usize::try_from(n).map_err(|_| bad(flag, value))?;
            }
            "--backlog" => {
                cfg.backlog =
                    parse_in(flag, value, 1..=limits::MAX_BACKLOG).map_err(Error::Usage)?
            }
            "--max-open-files" => {
                cfg.store.max_open_files = positive(value).ok_or_else(|| bad(flag, value))?
            }
            "--max-hosts" => {
                cfg.store.max_hosts = positive(value).ok_or_else(|| bad(flag, value))?
            }
            "--max-pending" => {
                cfg.store.max_pending = positive(value).ok_or_else(|| bad(flag, value))?
            }
            other => return Err(Error::Usage(format!("unknown option {other}\n{USAGE}"))),
        }
    }
    let spec = match threads {
        Some(n) if model != "reactor" => format!("{model}:{n}"),
        _ => model,
    };
    cfg.concurrency = spec
        .parse()
        .map_err(|e| Error::Usage(format!("--concurrency: {e}")))?;
    if cfg.max_buffered < cfg.max_frame {
        return Err(Error::Usage(format!(
            "--max-buffered: {} is less than --max-frame {} (one frame must fit)",
            cfg.max_buffered, cfg.max_frame
        )));
    }
    cfg.validate()?;
    Ok(cfg)
}

/// What the signal watcher tells the main thread.
#[derive(Debug)]
enum Event {
    Hangup,
    Stop(i32),
}

/// Receives SIGTERM, SIGINT and SIGHUP through the dispatcher's signal fd, on its loop, and
/// hands them to the main thread, which reconfigures or stops (both wait on the loop, so
/// they cannot run inside an upcall).
struct SignalWatcher {
    tx: crossbeam_channel::Sender<Event>,
}

impl EventHandler for SignalWatcher {
    fn handle_signal(&mut self, _ctx: &mut dyn Context, signal: i32) -> Disposition {
        let event = if signal == Signal::HUP.as_raw() {
            Event::Hangup
        } else {
            Event::Stop(signal)
        };
        let _ = self.tx.send(event);
        Disposition::Continue
    }
}

fn print_listening(logd: &Logd) {
    let l = logd.listening();
    let show = |name: &str, a: Option<SocketAddr>| {
        if let Some(a) = a {
            println!("logd: {name} listening on {a}");
        }
    };
    show("ACE logging (tcp)", l.ace);
    show("syslog (tcp)", l.syslog_tcp);
    show("syslog (udp)", l.syslog_udp);
}

fn serve(cfg: LogdConfig) -> Result<ExitCode, Error> {
    // Block the signals before any thread exists, so every thread inherits the mask and the
    // signals wait for the signal fd instead of killing the process.
    let signals = [Signal::TERM, Signal::INT, Signal::HUP];
    signals
        .iter()
        .copied()
        .collect::<SignalSet>()
        .block_current_thread()
        .map_err(Error::io("cannot block the signals logd handles"))?;
    let mut logd = Logd::start(cfg.clone())?;
    let (tx, rx) = crossbeam_channel::unbounded();
    let watcher = logd.register(Box::new(SignalWatcher { tx }))?;
    logd.remote().post(Box::new(move |ctx| {
        for s in signals {
            if let Err(e) = ctx.watch_signal(watcher, s.as_raw()) {
                eprintln!("logd: cannot watch {s}: {e}");
            }
        }
    }))?;
    print_listening(&logd);
    println!(
        "logd: storing under {} ({:?})",
        logd.data_dir().display(),
        cfg.concurrency
    );
    for line in logd.services() {
        eprintln!("logd: service {line}");
    }
    loop {
        match rx.recv() {
            Ok(Event::Hangup) => match logd.reconfigure() {
                Ok(report) => {
                    for c in &report.changes {
                        eprintln!("logd: reconfigure: {c}");
                    }
                    for e in &report.errors {
                        eprintln!("logd: reconfigure failed: {e}");
                    }
                    if report.is_ok() {
                        eprintln!("logd: reconfigured; files reopened");
                    } else {
                        eprintln!(
                            "logd: reconfiguration failed in part (failed services kept their old arguments); files reopened"
                        );
                    }
                    print_listening(&logd);
                }
                Err(e) => eprintln!("logd: reconfiguration refused, nothing changed: {e}"),
            },
            Ok(Event::Stop(signal)) => {
                eprintln!("logd: stopping on signal {signal}");
                break;
            }
            Err(_) => break,
        }
    }
    let stats = logd.stop()?;
    println!(
        "logd: stopped; {} records stored ({} ACE, {} syslog), {} rejected, {} connections, {} closed idle",
        stats.stored, stats.ace, stats.syslog, stats.rejected, stats.connections, stats.idle_closed
    );
    println!(
        "logd: limits: {} closed with an unfinished frame past the idle timeout, {} closed for an oversized frame, {} closed at --max-buffered (peak {} bytes buffered), {} UDP datagrams over --max-frame dropped, {} accept back-offs",
        stats.idle_partial,
        stats.oversized_closed,
        stats.buffer_cap_closed,
        stats.buffered_peak,
        stats.udp_oversized,
        stats.accept_backoffs
    );
    println!(
        "logd: {} received, {} stored ({} in the overflow file), {} dropped (held past --max-pending: {}, unwritable at stop: {}); {} failed writes, {} torn lines ended, {} data directories made again, {} failed rotations",
        stats.records,
        stats.stored,
        stats.overflow,
        stats.dropped(),
        stats.dropped_pending_full,
        stats.dropped_write_failed,
        stats.write_errors,
        stats.torn_repaired,
        stats.dir_recreated,
        stats.rotate_failures
    );
    if stats.dropped() > 0 {
        eprintln!(
            "logd: LOST {} records that could not be stored under {} (see the errors above)",
            stats.dropped(),
            cfg.store.dir.display()
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal: a log file or a test reads plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match parse_mode(&args) {
        Ok(Mode::Check(cfg)) => return check_config(&cfg),
        Ok(Mode::Serve(cfg)) => serve(cfg),
        Err(e) => Err(e),
    };
    match result {
        Ok(code) => code,
        Err(Error::Usage(msg)) => {
            eprintln!("logd: {msg}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("logd: {}", pattern_core::ErrorChain(&e));
            ExitCode::FAILURE
        }
    }
}
