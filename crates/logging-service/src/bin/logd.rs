//! `logd`: the logging server.

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use logging_service::Error;
use logging_service::forward::{ForwardHandle, parse_size};
use logging_service::server::{Logd, LogdConfig, parse_durability};
use logging_service::store::StoreConfig;
use pattern_core::{Context, Disposition, EventHandler};
use wrapper_facade::signal::{Signal, SignalSet};

const USAGE: &str =
    "usage: logd [--ace-port P] [--syslog-port P] [--bind ADDR] [--data-dir D] [-f svc.conf]
            [--concurrency reactor|leader-followers|half-sync-half-async] [--threads N]
            [--forward HOST:PORT] [--fsync none|batch|<N>ms] [--rotate-bytes N] [--keep N]
            [--idle-timeout SECS] [--max-frame BYTES]
            [--forward-queue BYTES] [--spool-dir D] [--spool-max BYTES]
            [--spool-full block|drop-oldest|drop-newest] [--forward-backoff MS:MS]
            [--stop-timeout SECS]
A port of 0 picks a free one; `--ace-port off` or `--syslog-port off` disables a listener.
With -f, the services come from the svc.conf (static ACE_Logging \"-p P\", static Syslog_Logging
\"-p P\", static Statistics \"-i SECS\", and dynamic plugins) and the port options are ignored.
Sizes take K, M or G. Forwarding queues --forward-queue (8M) in memory, then spools to
--spool-dir (DATA/spool) up to --spool-max (1G), then applies --spool-full (block).
SIGTERM or SIGINT: stop, writing everything read; forwarding drains for --stop-timeout (5)
seconds, then spools the rest; a second SIGTERM or SIGINT stops draining at once. SIGHUP: re-read the svc.conf, reopen the files.";

fn parse_args(args: &[String]) -> Result<LogdConfig, Error> {
    let mut cfg = LogdConfig {
        store: StoreConfig::new("logd-data"),
        ..LogdConfig::default()
    };
    let mut model = String::from("reactor");
    let mut threads: Option<String> = None;
    let mut it = args.iter();
    let bad = |flag: &str, v: &str| Error::Config(format!("{flag}: bad value `{v}`"));
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            return Err(Error::Config(USAGE.into()));
        }
        let value = it
            .next()
            .ok_or_else(|| Error::Config(format!("{flag} needs a value\n{USAGE}")))?;
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
            "--threads" => threads = Some(value.clone()),
            "--forward" => {
                let addr = std::net::ToSocketAddrs::to_socket_addrs(value.as_str())
                    .ok()
                    .and_then(|mut a| a.next())
                    .ok_or_else(|| bad(flag, value))?;
                cfg.forward = Some(addr);
            }
            "--fsync" => cfg.store.durability = parse_durability(value)?,
            "--rotate-bytes" => {
                cfg.store.rotate_bytes = value.parse().map_err(|_| bad(flag, value))?
            }
            "--keep" => cfg.store.keep = value.parse().map_err(|_| bad(flag, value))?,
            "--idle-timeout" => {
                cfg.idle = Duration::from_secs(value.parse().map_err(|_| bad(flag, value))?)
            }
            "--max-frame" => cfg.max_frame = value.parse().map_err(|_| bad(flag, value))?,
            "--forward-queue" => {
                cfg.forwarding.queue_bytes = parse_size(value).map_err(|_| bad(flag, value))?
            }
            "--spool-dir" => cfg.forwarding.spool_dir = Some(value.into()),
            "--spool-max" => {
                cfg.forwarding.spool_max = parse_size(value).map_err(|_| bad(flag, value))?
            }
            "--spool-full" => {
                cfg.forwarding.spool_full = value.parse().map_err(|_| bad(flag, value))?
            }
            "--forward-backoff" => {
                let (base, cap) = value
                    .split_once(':')
                    .and_then(|(b, c)| Some((b.parse().ok()?, c.parse().ok()?)))
                    .filter(|&(b, c): &(u64, u64)| b > 0 && b <= c)
                    .ok_or_else(|| bad(flag, value))?;
                cfg.forwarding.backoff_base = Duration::from_millis(base);
                cfg.forwarding.backoff_cap = Duration::from_millis(cap);
            }
            "--stop-timeout" => {
                cfg.forwarding.stop_timeout =
                    Duration::from_secs(value.parse().map_err(|_| bad(flag, value))?)
            }
            other => return Err(Error::Config(format!("unknown option {other}\n{USAGE}"))),
        }
    }
    let spec = match threads {
        Some(n) if model != "reactor" => format!("{model}:{n}"),
        _ => model,
    };
    cfg.concurrency = spec
        .parse()
        .map_err(|e| Error::Config(format!("--concurrency: {e}")))?;
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
/// A second stop signal that comes while the dispatcher still runs stops forwarding at once
/// from here (the main thread is busy stopping).
struct SignalWatcher {
    tx: crossbeam_channel::Sender<Event>,
    stops: u32,
    forwarder: Option<ForwardHandle>,
}

impl EventHandler for SignalWatcher {
    fn handle_signal(&mut self, _ctx: &mut dyn Context, signal: i32) -> Disposition {
        let event = if signal == Signal::HUP.as_raw() {
            Event::Hangup
        } else {
            self.stops += 1;
            if self.stops > 1 {
                second_stop(signal, self.forwarder.as_ref());
            }
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

fn serve(cfg: LogdConfig) -> Result<(), Error> {
    // Block the signals before any thread exists, so every thread inherits the mask and the
    // signals wait for the signal fd instead of killing the process.
    let signals = [Signal::TERM, Signal::INT, Signal::HUP];
    signals
        .iter()
        .copied()
        .collect::<SignalSet>()
        .block_current_thread()?;
    let mut logd = Logd::start(cfg.clone())?;
    let (tx, rx) = crossbeam_channel::unbounded();
    let watcher = logd.register(Box::new(SignalWatcher {
        tx,
        stops: 0,
        forwarder: logd.forwarder(),
    }))?;
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
                        eprintln!("logd: reconfigure: {c:?}");
                    }
                    for e in &report.errors {
                        eprintln!("logd: reconfigure: {e}");
                    }
                    eprintln!("logd: reconfigured; files reopened");
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
    let forwarder = logd.forwarder();
    let stats = stop_on_second_signal(logd, forwarder.clone())?;
    println!(
        "logd: stopped; {} records stored ({} ACE, {} syslog), {} rejected, {} connections, {} closed idle",
        stats.records,
        stats.ace,
        stats.syslog,
        stats.rejected,
        stats.connections,
        stats.idle_closed
    );
    if let Some(f) = forwarder {
        println!("logd: forwarding to {}: {}", f.upstream(), f.stats());
    }
    Ok(())
}

fn second_stop(signal: i32, forwarder: Option<&ForwardHandle>) {
    eprintln!("logd: signal {signal} again: stopping at once, spooling what is not forwarded");
    if let Some(f) = forwarder {
        f.stop_now();
    }
}

/// Stops logd on another thread while this one waits for a second SIGTERM or SIGINT: once the
/// dispatcher has ended, its signal fd is no longer read, so a signal fd of our own is.
fn stop_on_second_signal(
    logd: Logd,
    forwarder: Option<ForwardHandle>,
) -> Result<logging_service::store::Stats, Error> {
    use mio::{Events, Interest, Poll, Token, Waker};
    const SIGNAL: Token = Token(0);
    const DONE: Token = Token(1);
    let mut fd = wrapper_facade::signal::SignalFd::new(
        &[Signal::TERM, Signal::INT]
            .into_iter()
            .collect::<SignalSet>(),
    )?;
    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut fd, SIGNAL, Interest::READABLE)?;
    // Kept alive here: a waker dropped by the thread would close its descriptor, and the
    // wake-up with it, before this thread polls.
    let waker = Arc::new(Waker::new(poll.registry(), DONE)?);
    let wake = waker.clone();
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::Builder::new()
        .name("logd-stop".into())
        .spawn(move || {
            let _ = tx.send(logd.stop());
            let _ = wake.wake();
        })?;
    let mut events = Events::with_capacity(4);
    loop {
        match rx.try_recv() {
            Ok(result) => return result,
            Err(crossbeam_channel::TryRecvError::Disconnected) => {
                return Err(Error::Io(std::io::Error::other(
                    "the stopping thread panicked",
                )));
            }
            Err(crossbeam_channel::TryRecvError::Empty) => {}
        }
        match poll.poll(&mut events, None) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        }
        while let Some(info) = fd.read()? {
            second_stop(info.signal().as_raw(), forwarder.as_ref());
        }
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = parse_args(&args).and_then(serve);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Error::Config(msg)) => {
            eprintln!("logd: {msg}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("logd: {e}");
            ExitCode::FAILURE
        }
    }
}
