//! `logd`: the logging server.
#![forbid(unsafe_code)]

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use leader_followers::Concurrency;
use logging_service::Error;
use logging_service::forward::{ForwardHandle, ForwardOptions};
use logging_service::limits::{self, parse_duration, parse_size};
use logging_service::notify::Notifier;
use logging_service::server::{Logd, LogdConfig};
use logging_service::spool::FullPolicy;
use logging_service::store::{Durability, StoreConfig};
use pattern_core::{Context, Disposition, ErrorChain, EventHandler};
use wrapper_facade::signal::{Signal, SignalSet};

/// Exit statuses by kind, from BSD's sysexits.h, as rsyslogd and many daemons use them.
mod exit {
    /// A command line that cannot be used (EX_USAGE).
    pub(crate) const USAGE: u8 = 64;
    /// Something the host lacks: a port in use, an address not there (EX_UNAVAILABLE).
    pub(crate) const UNAVAILABLE: u8 = 69;
    /// A failure of logd itself or of the OS under it (EX_SOFTWARE).
    pub(crate) const SOFTWARE: u8 = 70;
    /// The data directory cannot be created or used (EX_CANTCREAT).
    pub(crate) const CANNOT_CREATE: u8 = 73;
    /// A configuration that is wrong (EX_CONFIG).
    pub(crate) const CONFIG: u8 = 78;
}

/// The longest `--fsync <N>ms` interval: an hour.
const MAX_FSYNC_INTERVAL: Duration = Duration::from_secs(3600);

const AFTER_HELP: &str = "\
Signals: SIGTERM or SIGINT stop logd, writing everything read; forwarding drains for
--stop-timeout, then spools the rest; a second SIGTERM or SIGINT stops draining at once.
SIGHUP re-reads the svc.conf (checked whole before anything changes) and reopens the files
(after logrotate or a `mv`).
Forwarding queues --forward-queue bytes in memory, then spools to --spool-dir up to --spool-max,
then applies --spool-full; what is spooled is replayed in order when the upstream is back and
after a restart.
Exit status: 0 after a clean stop; 1 when records were dropped because they could not be stored;
64 usage, 69 a port or address unavailable, 73 the data directory unusable, 78 a bad svc.conf.";

/// POSA2's networked logging server: ACE and syslog records in, one file per client host out.
#[derive(Parser, Debug)]
#[command(name = "logd", version, after_help = AFTER_HELP)]
struct Cli {
    /// TCP port for ACE's logging protocol; 0 picks a free port, `off` disables it.
    #[arg(long, value_name = "PORT", default_value = "20009", value_parser = parse_port)]
    ace_port: Port,
    /// Port for syslog over TCP and UDP; 0 picks a free port, `off` disables it.
    #[arg(long, value_name = "PORT", default_value = "20514", value_parser = parse_port)]
    syslog_port: Port,
    /// Address to listen on (a name such as `localhost` is resolved).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1", value_parser = parse_bind)]
    bind: IpAddr,
    /// Where the per-host files go.
    #[arg(long, value_name = "DIR", default_value = "logd-data")]
    data_dir: PathBuf,
    /// A svc.conf naming the services to run, instead of the port options.
    #[arg(short = 'f', long = "config", value_name = "SVC_CONF", conflicts_with_all = ["ace_port", "syslog_port"])]
    svc_conf: Option<PathBuf>,
    /// Check the options and the svc.conf as a reload would, start nothing, and exit.
    #[arg(long)]
    check_config: bool,
    /// How handlers are dispatched.
    #[arg(long, value_enum, default_value_t = Model::Reactor)]
    concurrency: Model,
    /// Threads of the leader-followers or half-sync-half-async pool [default: one per CPU].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=limits::MAX_THREADS as i64))]
    threads: Option<u16>,
    /// Forward every record to a syslog collector over TCP (RFC 5424, octet counting).
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_forward)]
    forward: Option<SocketAddr>,
    /// Bytes of records queued in memory for the upstream before they spill to the spool.
    #[arg(long, value_name = "SIZE", default_value = "8M", requires = "forward", value_parser = size_in(1, 1 << 40))]
    forward_queue: u64,
    /// The forwarder's spool directory [default: DATA_DIR/spool].
    #[arg(long, value_name = "DIR", requires = "forward")]
    spool_dir: Option<PathBuf>,
    /// Bytes the spool may hold on disk.
    #[arg(long, value_name = "SIZE", default_value = "1G", requires = "forward", value_parser = size_in(512, 1 << 50))]
    spool_max: u64,
    /// What a full spool does: `block` (pause reading TCP clients; UDP drops counted),
    /// `drop-oldest` or `drop-newest` (counted).
    #[arg(
        long,
        value_name = "POLICY",
        default_value = "block",
        requires = "forward"
    )]
    spool_full: FullPolicy,
    /// Reconnection back-off: first delay and cap, doubling with jitter (`100ms:30s`).
    #[arg(long, value_name = "BASE:CAP", default_value = "100ms:30s", requires = "forward", value_parser = parse_backoff)]
    forward_backoff: (Duration, Duration),
    /// How long a stop keeps forwarding before it spools the rest.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = duration_up_to(Duration::from_secs(3600)))]
    stop_timeout: Duration,
    /// When to fdatasync: `none`, `batch` (after each batch), or at most `<N>ms` after a write.
    #[arg(long, value_name = "POLICY", default_value = "none", value_parser = parse_fsync)]
    fsync: Durability,
    /// Rotate a host's file at this size (`16M`, `1G`).
    #[arg(long, value_name = "SIZE", default_value = "16M", value_parser = size_in(1, 1 << 40))]
    rotate_bytes: u64,
    /// Rotated files kept per host.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(0..=1000))]
    keep: u16,
    /// Close a connection after this long without a complete record (`0` never).
    #[arg(long, value_name = "DURATION", default_value = "300s", value_parser = duration_up_to(limits::MAX_IDLE))]
    idle_timeout: Duration,
    /// The largest frame or message accepted, over TCP and UDP.
    #[arg(long, value_name = "SIZE", default_value = "64K", value_parser = size_in(1, limits::MAX_FRAME_LIMIT as u64))]
    max_frame: u64,
    /// Bytes all connections may hold in unfinished frames together.
    #[arg(long, value_name = "SIZE", default_value = "64M", value_parser = size_in(1, limits::MAX_BUFFERED_LIMIT))]
    max_buffered: u64,
    /// Connections waiting to be accepted [default: net.core.somaxconn].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(1..=limits::MAX_BACKLOG as i64))]
    backlog: Option<i32>,
    /// Host files kept open at once (others are reopened on demand).
    #[arg(long, value_name = "N", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    max_open_files: u32,
    /// Distinct host files; records of further hosts go to `_overflow.log`, counted.
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    max_hosts: u32,
    /// Records held in memory while their file cannot be written; beyond, dropped and counted.
    #[arg(long, value_name = "RECORDS", default_value_t = 100_000, value_parser = clap::value_parser!(u32).range(1..))]
    max_pending: u32,
    /// Serve Prometheus metrics at `http://ADDR/metrics` (`127.0.0.1:9120`; port 0 picks one).
    #[arg(long, value_name = "ADDR", value_parser = parse_forward)]
    metrics: Option<SocketAddr>,
    /// `SO_RCVBUF` of the syslog UDP socket (`4M`; the kernel caps it at net.core.rmem_max).
    #[arg(long, value_name = "SIZE", value_parser = size_in(1, i32::MAX as u64))]
    udp_rcvbuf: Option<u64>,
    /// Format of logd's own log on stderr (`RUST_LOG` sets its level; info by default).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

/// A port, or `None` for `off`.
type Port = Option<u16>;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Model {
    Reactor,
    /// TCP ingest on the proactor (io_uring), the rest on the reactor; falls back to the
    /// reactor with a warning where io_uring is missing or refused.
    Proactor,
    LeaderFollowers,
    HalfSyncHalfAsync,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn parse_port(s: &str) -> Result<Port, String> {
    if s == "off" {
        return Ok(None);
    }
    s.parse::<u16>()
        .map(Some)
        .map_err(|_| format!("`{s}` is not a port (0 to 65535, or `off`)"))
}

fn parse_bind(s: &str) -> Result<IpAddr, String> {
    if let Ok(ip) = s.parse() {
        return Ok(ip);
    }
    (s, 0)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve `{s}`: {e}"))?
        .next()
        .map(|a| a.ip())
        .ok_or_else(|| format!("`{s}` resolves to no address"))
}

fn parse_forward(s: &str) -> Result<SocketAddr, String> {
    s.to_socket_addrs()
        .map_err(|e| format!("`{s}` is not HOST:PORT that resolves: {e}"))?
        .next()
        .ok_or_else(|| format!("`{s}` resolves to no address"))
}

fn parse_backoff(s: &str) -> Result<(Duration, Duration), String> {
    let (base, cap) = s
        .split_once(':')
        .ok_or_else(|| format!("`{s}` is not BASE:CAP (`100ms:30s`)"))?;
    let (base, cap) = (parse_duration(base)?, parse_duration(cap)?);
    if base.is_zero() || base > cap {
        return Err(format!(
            "`{s}`: the base must be above zero and at most the cap"
        ));
    }
    Ok((base, cap))
}

fn parse_fsync(s: &str) -> Result<Durability, String> {
    let d: Durability = s.parse()?;
    if let Durability::Interval(every) = d
        && every > MAX_FSYNC_INTERVAL
    {
        return Err(format!(
            "{}ms is out of range (at most {}ms)",
            every.as_millis(),
            MAX_FSYNC_INTERVAL.as_millis()
        ));
    }
    Ok(d)
}

fn size_in(min: u64, max: u64) -> impl Fn(&str) -> Result<u64, String> + Clone {
    move |s| {
        let n = parse_size(s)?;
        if (min..=max).contains(&n) {
            Ok(n)
        } else {
            Err(format!("{n} bytes is out of range ({min} to {max})"))
        }
    }
}

fn duration_up_to(max: Duration) -> impl Fn(&str) -> Result<Duration, String> + Clone {
    move |s| {
        let d = parse_duration(s)?;
        if d <= max {
            Ok(d)
        } else {
            Err(format!("`{s}` is longer than {}s", max.as_secs()))
        }
    }
}

impl Cli {
    /// The server's configuration; an option that does not apply is a usage error.
    fn config(&self) -> Result<LogdConfig, Error> {
        let threads = self.threads.map(usize::from);
        let concurrency = match (self.concurrency, threads) {
            (Model::Reactor, Some(_)) => {
                return Err(Error::Usage(
                    "--threads applies to leader-followers and half-sync-half-async, not to the reactor"
                        .into(),
                ));
            }
            (Model::Reactor | Model::Proactor, None) => Concurrency::Reactor,
            (Model::Proactor, Some(_)) => {
                return Err(Error::Usage(
                    "--threads applies to leader-followers and half-sync-half-async, not to the proactor"
                        .into(),
                ));
            }
            (Model::LeaderFollowers, n) => Concurrency::LeaderFollowers {
                threads: n.unwrap_or_else(cpus),
            },
            (Model::HalfSyncHalfAsync, n) => {
                let spec = format!("half-sync-half-async:{}", n.unwrap_or_else(cpus));
                spec.parse().map_err(|e| Error::Usage(format!("{e}")))?
            }
        };
        if self.max_buffered < self.max_frame {
            return Err(Error::Usage(format!(
                "--max-buffered {} is less than --max-frame {} (one frame must fit)",
                self.max_buffered, self.max_frame
            )));
        }
        let store = StoreConfig {
            rotate_bytes: self.rotate_bytes,
            keep: usize::from(self.keep),
            durability: self.fsync,
            max_open_files: self.max_open_files as usize,
            max_hosts: self.max_hosts as usize,
            max_pending: self.max_pending as usize,
            ..StoreConfig::new(&self.data_dir)
        };
        let cfg = LogdConfig {
            bind: self.bind,
            ace_port: self.ace_port,
            syslog_port: self.syslog_port,
            svc_conf: self.svc_conf.clone(),
            store,
            concurrency,
            proactor: self.concurrency == Model::Proactor,
            forward: self.forward,
            forwarding: ForwardOptions {
                queue_bytes: self.forward_queue,
                spool_dir: self.spool_dir.clone(),
                spool_max: self.spool_max,
                spool_full: self.spool_full,
                backoff_base: self.forward_backoff.0,
                backoff_cap: self.forward_backoff.1,
                stop_timeout: self.stop_timeout,
                ..ForwardOptions::default()
            },
            idle: self.idle_timeout,
            max_frame: self.max_frame as usize,
            max_buffered: self.max_buffered as usize,
            backlog: self.backlog.unwrap_or_else(limits::default_backlog),
            metrics: self.metrics,
            udp_rcvbuf: self.udp_rcvbuf.map(|n| n as usize),
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(2, usize::from)
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
                eprintln!("logd: {}", ErrorChain(&e));
                ExitCode::from(exit::CONFIG)
            }
        },
        None => {
            println!("logd: options OK (no svc.conf given)");
            ExitCode::SUCCESS
        }
    }
}

/// What the signal watcher tells the main thread.
#[derive(Debug)]
enum Event {
    Hangup,
    Stop(Signal),
}

/// Receives SIGTERM, SIGINT and SIGHUP through the dispatcher's signal fd, on its loop, and
/// hands them to the main thread, which reconfigures or stops (both wait on the loop, so
/// they cannot run inside an upcall).
struct SignalWatcher {
    tx: crossbeam_channel::Sender<Event>,
    /// Stop signals seen: the second one stops forwarding at once.
    stops: u32,
    forwarder: Option<ForwardHandle>,
}

impl EventHandler for SignalWatcher {
    fn handle_signal(&mut self, _ctx: &mut dyn Context, signal: i32) -> Disposition {
        let event = if signal == Signal::HUP.as_raw() {
            Event::Hangup
        } else {
            let signal = if signal == Signal::INT.as_raw() {
                Signal::INT
            } else {
                Signal::TERM
            };
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

/// Prints one line per listener on stdout (scripts and tests read the ports there) and logs it.
fn print_listening(logd: &Logd) -> String {
    let l = logd.listening();
    let mut all = Vec::new();
    for (name, a) in [
        ("ACE logging (tcp)", l.ace),
        ("syslog (tcp)", l.syslog_tcp),
        ("syslog (udp)", l.syslog_udp),
        ("metrics (http)", l.metrics),
    ] {
        if let Some(a) = a {
            println!("logd: {name} listening on {a}");
            tracing::info!("{name} listening on {a}");
            all.push(format!("{name} on {a}"));
        }
    }
    all.join(", ")
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
    let notifier = Notifier::from_env().map_err(Error::io("cannot use $NOTIFY_SOCKET"))?;
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
                tracing::error!("cannot watch {s}: {}", ErrorChain(&e));
            }
        }
    }))?;
    let listening = print_listening(&logd);
    let dir = std::path::absolute(logd.data_dir()).unwrap_or_else(|_| logd.data_dir().into());
    let model = if logd.proactor() {
        "proactor (TCP ingest on io_uring) beside the reactor".to_owned()
    } else {
        cfg.concurrency.to_string()
    };
    println!("logd: storing under {} ({model})", dir.display());
    tracing::info!("storing under {} ({model})", dir.display());
    for line in logd.services() {
        tracing::info!("service {line}");
    }
    let notify = |r: std::io::Result<()>| {
        if let Err(e) = r {
            tracing::warn!("cannot notify the service manager: {e}");
        }
    };
    notify(notifier.ready(&listening));
    loop {
        match rx.recv() {
            Ok(Event::Hangup) => {
                notify(notifier.reloading());
                match logd.reconfigure() {
                    Ok(report) => {
                        for c in &report.changes {
                            tracing::info!("reconfigure: {c}");
                        }
                        for e in &report.errors {
                            tracing::error!("reconfigure failed: {e}");
                        }
                        if report.is_ok() {
                            eprintln!("logd: reconfigured; files reopened");
                            tracing::info!("reconfigured; files reopened");
                        } else {
                            eprintln!(
                                "logd: reconfiguration failed in part (failed services kept their old arguments); files reopened"
                            );
                        }
                        print_listening(&logd);
                    }
                    Err(e) => {
                        eprintln!(
                            "logd: reconfiguration refused, nothing changed: {}",
                            ErrorChain(&e)
                        );
                    }
                }
                notify(notifier.ready(&listening));
            }
            Ok(Event::Stop(signal)) => {
                tracing::info!("stopping on {signal}");
                notify(notifier.stopping(&format!("stopping on {signal}")));
                break;
            }
            Err(_) => break,
        }
    }
    let forwarder = logd.forwarder();
    let stats = stop_on_second_signal(logd, forwarder.clone())?;
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
    if let Some(f) = forwarder {
        println!("logd: forwarding to {}: {}", f.upstream(), f.stats());
    }
    if stats.dropped() > 0 {
        eprintln!(
            "logd: LOST {} records that could not be stored under {} (see the errors above)",
            stats.dropped(),
            dir.display()
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn second_stop(signal: Signal, forwarder: Option<&ForwardHandle>) {
    eprintln!("logd: {signal} again: stopping at once, spooling what is not forwarded");
    tracing::warn!("{signal} again: stopping at once, spooling what is not forwarded");
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
    let setup = Error::io("cannot wait for a second stop signal");
    let mut fd = wrapper_facade::signal::SignalFd::new(
        &[Signal::TERM, Signal::INT]
            .into_iter()
            .collect::<SignalSet>(),
    )
    .map_err(Error::io("cannot wait for a second stop signal"))?;
    let mut poll = Poll::new().map_err(Error::io("cannot wait for a second stop signal"))?;
    poll.registry()
        .register(&mut fd, SIGNAL, Interest::READABLE)
        .map_err(Error::io("cannot wait for a second stop signal"))?;
    // Kept alive here: a waker dropped by the thread would close its descriptor, and the
    // wake-up with it, before this thread polls.
    let waker = Arc::new(
        Waker::new(poll.registry(), DONE)
            .map_err(Error::io("cannot wait for a second stop signal"))?,
    );
    let wake = waker.clone();
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::Builder::new()
        .name("logd-stop".into())
        .spawn(move || {
            let _ = tx.send(logd.stop());
            let _ = wake.wake();
        })
        .map_err(setup)?;
    let mut events = Events::with_capacity(4);
    loop {
        match rx.try_recv() {
            Ok(result) => return result,
            Err(crossbeam_channel::TryRecvError::Disconnected) => {
                return Err(Error::Io {
                    what: "the stopping thread panicked",
                    source: std::io::Error::other("panic"),
                });
            }
            Err(crossbeam_channel::TryRecvError::Empty) => {}
        }
        match poll.poll(&mut events, None) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io("cannot wait for a second stop signal")(e)),
        }
        while let Some(info) = fd.read().map_err(Error::io("cannot read the signal fd"))? {
            second_stop(info.signal(), forwarder.as_ref());
        }
    }
}

/// logd's own log: lifecycle events at info by default, `RUST_LOG` wins; colour only on a terminal.
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn exit_code(e: &Error) -> u8 {
    match e {
        Error::Usage(_) => exit::USAGE,
        Error::Config(_) => exit::CONFIG,
        Error::Services {
            unavailable: true, ..
        } => exit::UNAVAILABLE,
        Error::Services { .. } => exit::CONFIG,
        Error::Store { .. } => exit::CANNOT_CREATE,
        _ => exit::SOFTWARE,
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // Help and version go to stdout with status 0; usage errors to stderr.
            let code = if e.use_stderr() { exit::USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    init_logging(cli.log_format);
    let result = cli.config().and_then(|cfg| {
        if cli.check_config {
            Ok(check_config(&cfg))
        } else {
            serve(cfg)
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("logd: {}", ErrorChain(&e));
            ExitCode::from(exit_code(&e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cli_defaults_are_the_library_defaults() {
        let cli = Cli::try_parse_from(["logd"]).unwrap();
        let ours = cli.config().unwrap();
        let lib = LogdConfig {
            store: StoreConfig::new("logd-data"),
            ..LogdConfig::default()
        };
        assert_eq!(ours.bind, lib.bind);
        assert_eq!(
            (ours.ace_port, ours.syslog_port),
            (lib.ace_port, lib.syslog_port)
        );
        assert_eq!((ours.idle, ours.max_frame), (lib.idle, lib.max_frame));
        assert_eq!(ours.max_buffered, lib.max_buffered);
        let (a, b) = (&ours.store, &lib.store);
        assert_eq!((a.rotate_bytes, a.keep), (b.rotate_bytes, b.keep));
        assert_eq!(a.durability, b.durability);
        assert_eq!(
            (a.max_open_files, a.max_hosts, a.max_pending),
            (b.max_open_files, b.max_hosts, b.max_pending)
        );
        assert_eq!(ours.concurrency, Concurrency::Reactor);
    }

    #[test]
    fn options_that_do_not_apply_are_refused() {
        let cli = Cli::try_parse_from(["logd", "--threads", "4"]).unwrap();
        assert!(matches!(cli.config(), Err(Error::Usage(_))));
        let e = Cli::try_parse_from(["logd", "-f", "x.conf", "--ace-port", "1"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::ArgumentConflict);
        let cli =
            Cli::try_parse_from(["logd", "--max-frame", "1M", "--max-buffered", "64K"]).unwrap();
        assert!(matches!(cli.config(), Err(Error::Usage(_))));
    }

    #[test]
    fn sizes_durations_names_and_equals_signs() {
        let cli = Cli::try_parse_from([
            "logd",
            "--ace-port=0",
            "--rotate-bytes=1G",
            "--idle-timeout",
            "90s",
            "--bind",
            "localhost",
            "--concurrency",
            "leader-followers",
            "--threads",
            "3",
        ])
        .unwrap();
        let cfg = cli.config().unwrap();
        assert_eq!(cfg.ace_port, Some(0));
        assert_eq!(cfg.store.rotate_bytes, 1 << 30);
        assert_eq!(cfg.idle, Duration::from_secs(90));
        assert!(cfg.bind.is_loopback());
        assert_eq!(cfg.concurrency, Concurrency::LeaderFollowers { threads: 3 });
        for bad in [
            &["logd", "--max-frame", "0"][..],
            &["logd", "--idle-timeout", "18446744073709551615"],
            &["logd", "--threads", "100000"],
            &["logd", "--rotate-bytes", "16Q"],
        ] {
            assert!(Cli::try_parse_from(bad).is_err(), "{bad:?}");
        }
    }
}
