//! `logd`: the logging server.
#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use logging_service::Error;
use logging_service::cli::logd::{Cli, LogFormat};
use logging_service::forward::ForwardHandle;
use logging_service::logd::{Logd, LogdConfig};
use logging_service::notify::Notifier;
use logging_service::services::SocketPool;
use pattern_core::{Context, Disposition, ErrorChain, EventHandler};
use wrapper_facade::activation::{self, Identity, InheritedSocket};
use wrapper_facade::signal::{Signal, SignalSet};

/// `println!` that ignores a failed write: stdout may be a file on a full disk (or past a
/// file size limit), and `println!` would panic there, ending logd mid-stop.
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

/// [`say!`] for stderr.
macro_rules! say_err {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}

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

/// `--check-config`, like `rsyslogd -N1`: the options were checked while parsing; the
/// svc.conf is checked as a SIGHUP would check it (syntax, services, their arguments).
fn check_config(cfg: &LogdConfig) -> ExitCode {
    match &cfg.svc_conf {
        Some(path) => match logging_service::services::check_file_with(
            path,
            cfg.bind,
            logging_service::tls_conn::Security::new(cfg.security.clone()),
        ) {
            Ok(()) => {
                say!("logd: {}: configuration OK", path.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                say_err!("logd: {}", ErrorChain(&e));
                ExitCode::from(exit::CONFIG)
            }
        },
        None => {
            say!("logd: options OK (no svc.conf given)");
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
        ("RELP (tcp)", l.relp),
        ("ACE logging (tls)", l.ace_tls),
        ("syslog (tls)", l.syslog_tls),
        ("RELP (tls)", l.relp_tls),
        ("metrics (http)", l.metrics),
    ] {
        if let Some(a) = a {
            say!("logd: {name} listening on {a}");
            tracing::info!("{name} listening on {a}");
            all.push(format!("{name} on {a}"));
        }
    }
    all.join(", ")
}

/// The sockets the service manager passed, plus, with `--user`, those bound ahead while
/// root; then root is given up. Runs before any thread but the main one exists.
fn sockets_and_privileges(
    cfg: &LogdConfig,
    user: Option<&str>,
    group: Option<&str>,
) -> Result<Vec<InheritedSocket>, Error> {
    let mut sockets = activation::listen_fds().map_err(Error::io(
        "cannot take the sockets passed by the service manager",
    ))?;
    for s in &sockets {
        tracing::info!(
            "socket activation: {} socket on {}{}",
            s.kind,
            s.local,
            s.name
                .as_deref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default()
        );
    }
    if let Some(user) = user {
        let who = Identity::lookup(user, group)
            .map_err(|e| Error::Usage(format!("--user {user}: {e}")))?;
        sockets.extend(logging_service::logd::bind_ahead(cfg, &sockets)?);
        activation::drop_privileges(&who).map_err(Error::io("cannot drop privileges"))?;
        tracing::info!("running as uid {} gid {}", who.uid, who.gid);
    }
    Ok(sockets)
}

fn serve(mut cfg: LogdConfig, user: Option<&str>, group: Option<&str>) -> Result<ExitCode, Error> {
    // Block the signals before any thread exists, so every thread inherits the mask and the
    // signals wait for the signal fd instead of killing the process.
    let signals = [Signal::TERM, Signal::INT, Signal::HUP];
    signals
        .iter()
        .copied()
        .collect::<SignalSet>()
        .block_current_thread()
        .map_err(Error::io("cannot block the signals logd handles"))?;
    // A file size limit (`ulimit -f`, systemd's LimitFSIZE=) must not kill logd: a write
    // past it then fails with EFBIG, and the store holds the records and retries, as on a
    // full disk.
    wrapper_facade::signal::ignore(Signal::XFSZ).map_err(Error::io("cannot ignore SIGXFSZ"))?;
    let notifier = Notifier::from_env().map_err(Error::io("cannot use $NOTIFY_SOCKET"))?;
    cfg.sockets = SocketPool::new(sockets_and_privileges(&cfg, user, group)?);
    let mut logd = Logd::start(cfg.clone())?;
    for (kind, addr) in cfg.sockets.unused() {
        tracing::warn!("the {kind} socket passed in on {addr} is not used by any listener");
    }
    let (tx, rx) = crossbeam_channel::unbounded();
    let watcher = logd.register(Box::new(SignalWatcher {
        tx,
        stops: 0,
        forwarder: logd.forwarder(),
    }))?;
    // Watched before logd says it listens: a signal sent once the listeners are announced
    // reaches the watcher, and its descriptor is open by then (tests count descriptors).
    let raw: Vec<i32> = signals.iter().map(|s| s.as_raw()).collect();
    logd.watch_signals(watcher, &raw)?;
    let listening = print_listening(&logd);
    let dir = std::path::absolute(logd.data_dir()).unwrap_or_else(|_| logd.data_dir().into());
    let model = if logd.proactor() {
        "proactor (TCP ingest on io_uring) beside the reactor".to_owned()
    } else {
        cfg.concurrency.to_string()
    };
    say!("logd: storing under {} ({model})", dir.display());
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
                            say_err!("logd: reconfigured; files reopened");
                            tracing::info!("reconfigured; files reopened");
                        } else {
                            say_err!(
                                "logd: reconfiguration failed in part (failed services kept their old arguments); files reopened"
                            );
                        }
                        print_listening(&logd);
                    }
                    Err(e) => {
                        say_err!(
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
    say!(
        "logd: stopped; {} records stored ({} ACE, {} syslog, {} RELP), {} rejected, {} connections, {} closed idle, {} RELP sessions closed unacknowledged",
        stats.stored,
        stats.ace,
        stats.syslog,
        stats.relp,
        stats.rejected,
        stats.connections,
        stats.idle_closed,
        stats.relp_unacked_closes
    );
    say!(
        "logd: limits: {} closed with an unfinished frame past the idle timeout, {} closed for an oversized frame, {} closed at --max-buffered (peak {} bytes buffered), {} UDP datagrams over --max-frame dropped, {} UDP datagrams dropped by the kernel (receive buffer full), {} accept back-offs",
        stats.idle_partial,
        stats.oversized_closed,
        stats.buffer_cap_closed,
        stats.buffered_peak,
        stats.udp_oversized,
        stats.udp_kernel_drops,
        stats.accept_backoffs
    );
    say!(
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
    say!(
        "logd: security: {} TLS sessions, {} TLS handshakes refused ({} names not permitted, {} timed out), {} TLS reloads ({} failed), {} connections over --max-connections-per-peer, {} pauses over --max-rate-per-peer",
        stats.tls_sessions,
        stats.tls_handshake_failures,
        stats.tls_not_permitted,
        stats.tls_handshake_timeouts,
        stats.tls_reloads,
        stats.tls_reload_failures,
        stats.peer_connections_refused,
        stats.peer_rate_pauses
    );
    say!("logd: ledger: {}", ledger(&stats));
    if let Some(f) = forwarder {
        say!("logd: forwarding to {}: {}", f.upstream(), f.stats());
        let f = f.stats();
        say!(
            "logd: forward ledger: received={} recovered={} queued={} forwarded={} dropped={} balanced={}",
            f.received,
            f.recovered,
            f.queued,
            f.forwarded,
            f.dropped(),
            if f.balances() { "yes" } else { "no" }
        );
    }
    if stats.clickhouse_received + stats.clickhouse_recovered > 0 {
        let s = &stats;
        say!(
            "logd: clickhouse: {} inserted in {} batches, {} queued, {} dropped, {} failed inserts, {} batches retried",
            s.clickhouse_inserted,
            s.clickhouse_batches,
            s.clickhouse_queued,
            s.clickhouse_dropped,
            s.clickhouse_failed,
            s.clickhouse_retried
        );
        if s.clickhouse_unreadable > 0 {
            say_err!(
                "logd: clickhouse: {} spooled rows unreadable, dropped (counted in the {} dropped; see the errors above)",
                s.clickhouse_unreadable,
                s.clickhouse_dropped
            );
        }
        say!(
            "logd: clickhouse ledger: received={} recovered={} queued={} inserted={} dropped={} balanced={}",
            s.clickhouse_received,
            s.clickhouse_recovered,
            s.clickhouse_queued,
            s.clickhouse_inserted,
            s.clickhouse_dropped,
            if s.clickhouse_balances() { "yes" } else { "no" }
        );
    }
    if stats.dropped() > 0 {
        say_err!(
            "logd: LOST {} records that could not be stored under {} (see the errors above)",
            stats.dropped(),
            dir.display()
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// The stop's account of everything read, per input and in the store, in `key=value` form
/// (the chaos run parses it), ending with whether it balances.
fn ledger(stats: &logging_service::store::Stats) -> String {
    let mut parts: Vec<String> = stats
        .inputs()
        .iter()
        .map(|(name, i)| {
            format!(
                "{name} read={} records={} malformed={} oversized={} unfinished={}",
                i.read, i.records, i.rejected, i.oversized, i.unfinished
            )
        })
        .collect();
    // Datagrams the kernel dropped before logd could read them (not in `read`).
    parts.push(format!(
        "syslog_udp_kernel_dropped={}",
        stats.udp_kernel_drops
    ));
    parts.push(format!(
        "store received={} stored={} held={} dropped_pending_full={} dropped_write_failed={}",
        stats.records,
        stats.stored,
        stats.held,
        stats.dropped_pending_full,
        stats.dropped_write_failed
    ));
    let verdict = match stats.balances() {
        Ok(()) => "balanced=yes".to_owned(),
        Err(e) => format!("balanced=no ({e})"),
    };
    format!("{}; {verdict}", parts.join("; "))
}

fn second_stop(signal: Signal, forwarder: Option<&ForwardHandle>) {
    say_err!("logd: {signal} again: stopping at once, spooling what is not forwarded");
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
    use mio::{Events, Interest, Poll, Token};
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
    // The facade's eventfd wakes this thread once the stop is over. Kept alive here: one
    // dropped by the thread would close its descriptor, and the wake-up with it, before this
    // thread polls.
    let mut done = wrapper_facade::notify::EventFd::new()
        .map_err(Error::io("cannot wait for a second stop signal"))?;
    poll.registry()
        .register(&mut done, DONE, Interest::READABLE)
        .map_err(Error::io("cannot wait for a second stop signal"))?;
    let done = Arc::new(done);
    let wake = done.clone();
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::Builder::new()
        .name("logd-stop".into())
        .spawn(move || {
            let _ = tx.send(logd.stop());
            let _ = wake.notify();
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
    // A log line that cannot be written (stderr is a file on a full disk, or past a file
    // size limit) is lost, not reported: the subscriber's report goes to stderr too, and
    // `eprintln!` panics when that fails, which ended logd's dispatching thread.
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .log_internal_errors(false)
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
            serve(cfg, cli.user.as_deref(), cli.group.as_deref())
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            say_err!("logd: {}", ErrorChain(&e));
            ExitCode::from(exit_code(&e))
        }
    }
}
