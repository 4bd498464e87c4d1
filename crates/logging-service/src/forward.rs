//! Forwarding upstream: every record as RFC 5424 with octet counting over TCP, through a
//! [`Spool`] so that no outage, however long, loses a record or stops forwarding.
//!
//! The [`Forwarder`] is a [`RecordSink`]: it encodes each record and pushes it into the
//! spool (memory first, then segment files, see [`crate::spool`]). A sender thread of its
//! own takes batches from the spool, writes them to the upstream, and commits a batch only
//! after its write and flush succeeded; on any error it drops the connection, reconnects
//! with capped exponential back-off and jitter, forever, and sends again from the last
//! commit. The transport (a blocking `TcpStream` on that thread) and the queue (the spool)
//! are separate, so that a later Connector handler on the dispatcher can replace the thread.
//!
//! Stopping ([`RecordSink::flush`] at a graceful stop) lets the sender drain for at most
//! `stop_timeout`; then, or at once after [`ForwardHandle::stop_now`], the sender is
//! interrupted (its socket shut down) and whatever was not delivered is written to the
//! spool on disk, which the next start replays first.
//!
//! What plain TCP cannot promise: a record is committed once the kernel accepted it, so the
//! records in the kernel's send buffer when the upstream crashes are lost, and a batch cut
//! by an error half-way is sent again whole (duplicates upstream). Before each batch the
//! sender checks whether the upstream closed the connection, which catches an orderly
//! restart of the upstream before anything is written into the void.
//!
//! Over RELP ([`Transport::Relp`]) the same sender thread runs RELP sessions instead: every
//! record goes to a spool segment first (so that nothing acknowledged to a RELP sender in
//! front lives only in memory), at most `relp_window` records are unacknowledged, and a
//! record is committed only once it and every record before it are acknowledged. Each record
//! in flight holds an [`act`] completion token whose context is its spool position; the
//! transaction number of an answer leads to the token, the token table gives the position
//! back, and an answer for no record in flight or for one already answered is refused and
//! counted (the Asynchronous Completion Token). A broken session leaves the unacknowledged
//! records in the spool, to be sent again on the next one (counted as `relp_resent`).

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use act::{CompletionToken, TokenTable};

use crate::record::{LogRecord, RecordBatch};
use crate::relp::{self, Command, RelpDecoder};
use crate::spool::{FullPolicy, Position, Pushed, Spool, SpoolConfig, SpoolStats};
use crate::store::RecordSink;

/// How a [`Forwarder`] queues, reconnects and stops (everything but the upstream address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardOptions {
    /// Bytes of records queued in memory before they spill to the spool (`--forward-queue`).
    /// Not used by [`Transport::Relp`], which writes every record to the spool's disk.
    pub queue_bytes: u64,
    /// The spool directory (`--spool-dir`); `None`: `spool` under the data directory.
    pub spool_dir: Option<PathBuf>,
    /// Bytes the spool may hold on disk (`--spool-max`).
    pub spool_max: u64,
    /// What a full spool does (`--spool-full`).
    pub spool_full: FullPolicy,
    /// The first reconnection delay; it doubles per failure up to `backoff_cap`.
    pub backoff_base: Duration,
    /// The longest reconnection delay.
    pub backoff_cap: Duration,
    /// How long one connection attempt may take.
    pub connect_timeout: Duration,
    /// How long a graceful stop keeps sending before it spools the rest (`--stop-timeout`).
    pub stop_timeout: Duration,
    /// How records travel upstream (`--forward HOST:PORT` or `--forward relp://HOST:PORT`).
    pub transport: Transport,
    /// RELP: records sent and not yet acknowledged, at most (`--relp-window`).
    pub relp_window: usize,
    /// RELP: how long the upstream may leave records in flight unanswered before the
    /// session is given up (and the records sent again on a new one).
    pub ack_timeout: Duration,
}

/// How a [`Forwarder`] delivers, and so when a record leaves the spool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Transport {
    /// RFC 5424 with octet counting over TCP: committed once the kernel took the bytes.
    #[default]
    Plain,
    /// RELP: committed once the upstream acknowledged the record and every one before it.
    Relp,
}

impl Default for ForwardOptions {
    fn default() -> Self {
        ForwardOptions {
            queue_bytes: 8 << 20,
            spool_dir: None,
            spool_max: 1 << 30,
            spool_full: FullPolicy::Block,
            backoff_base: Duration::from_millis(100),
            backoff_cap: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(1),
            stop_timeout: Duration::from_secs(5),
            transport: Transport::Plain,
            relp_window: 128,
            ack_timeout: Duration::from_secs(10),
        }
    }
}

/// Counters of a [`Forwarder`]. Every record handed to it is, at any moment, queued
/// (`queued`, in memory or spooled on disk), `forwarded`, or in one `dropped_*` counter:
/// `received + recovered == queued + forwarded + dropped()`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ForwardStats {
    /// Records handed to the forwarder in this run.
    pub received: u64,
    /// Records found in the spool at start (left by an earlier run).
    pub recovered: u64,
    /// Records written to the upstream and committed.
    pub forwarded: u64,
    /// Records written to the spool on disk (when memory was full, or at a stop).
    pub spooled: u64,
    /// Records waiting now, in memory or in the spool.
    pub queued: u64,
    /// Dropped, reason `spool_full_block`: the spool was full under `--spool-full block`
    /// (producers were told to pause, this one could not: UDP, or a batch already read).
    pub dropped_spool_full_block: u64,
    /// Dropped, reason `spool_full_drop_oldest`.
    pub dropped_spool_full_drop_oldest: u64,
    /// Dropped, reason `spool_full_drop_newest`.
    pub dropped_spool_full_drop_newest: u64,
    /// Dropped, reason `spool_write_error`: the spool's disk refused the record.
    pub dropped_spool_write_error: u64,
    /// Torn tails cut off the spool's files at start (a record half-written by a crash).
    pub torn_tails: u64,
    /// Connections re-established after an outage.
    pub reconnects: u64,
    /// Connection attempts that failed.
    pub connect_failures: u64,
    /// Outages (the upstream went away, or was away at start).
    pub outages: u64,
    /// Whether the sender is connected now.
    pub connected: bool,
    /// RELP: records sent and not yet acknowledged now.
    pub relp_in_flight: u64,
    /// RELP: records sent again after a session broke with them unacknowledged (the
    /// upstream may have stored them already: possible duplicates, counted, never losses).
    pub relp_resent: u64,
    /// RELP: answers naming a transaction number with no record in flight (forged, or a
    /// second answer for the same record: stale), refused and counted.
    pub relp_bad_txnr: u64,
    /// RELP: records the upstream answered with an error code (the session is given up and
    /// they are sent again).
    pub relp_refused: u64,
}

impl ForwardStats {
    /// Records dropped, all reasons.
    pub fn dropped(&self) -> u64 {
        self.drops().iter().map(|(_, n)| n).sum()
    }

    /// Whether every record handed over or recovered is queued, forwarded or dropped under
    /// a counted reason: `received + recovered == queued + forwarded + dropped()`.
    pub fn balances(&self) -> bool {
        self.received + self.recovered == self.queued + self.forwarded + self.dropped()
    }

    /// Each drop counter with its reason.
    pub fn drops(&self) -> [(&'static str, u64); 4] {
        [
            ("spool_full_block", self.dropped_spool_full_block),
            (
                "spool_full_drop_oldest",
                self.dropped_spool_full_drop_oldest,
            ),
            (
                "spool_full_drop_newest",
                self.dropped_spool_full_drop_newest,
            ),
            ("spool_write_error", self.dropped_spool_write_error),
        ]
    }
}

impl std::fmt::Display for ForwardStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} forwarded, {} spooled, {} queued, {} dropped",
            self.forwarded,
            self.spooled,
            self.queued,
            self.dropped()
        )?;
        let drops: Vec<String> = self
            .drops()
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(r, n)| format!("{r} {n}"))
            .collect();
        if !drops.is_empty() {
            write!(f, " ({})", drops.join(", "))?;
        }
        write!(f, ", {} reconnects", self.reconnects)?;
        if self.recovered > 0 {
            write!(f, ", {} recovered from the spool", self.recovered)?;
        }
        if self.relp_resent + self.relp_bad_txnr + self.relp_refused > 0 {
            write!(
                f,
                ", RELP: {} resent, {} bad txnr, {} refused",
                self.relp_resent, self.relp_bad_txnr, self.relp_refused
            )?;
        }
        Ok(())
    }
}

/// RFC 5424 with octet counting, as a forwarder sends it.
///
/// TIMESTAMP is the sender's own (SENT, with its UTC offset) when it is RFC 3339, else the
/// record's UTC time; MSGID and STRUCTURED-DATA go as the sender sent them (STRUCTURED-DATA
/// byte for byte, its escapes intact), so an upstream logd stores the same fields.
/// The other header fields are made what RFC 5424 allows, whatever the original sender put in
/// them: printable US-ASCII only (anything else becomes `_`), at most the RFC's length for
/// each (TIMESTAMP 32, HOSTNAME 255, APP-NAME 48, PROCID 128, MSGID 32), `-` when empty.
/// The message goes as it is: octet counting frames it.
///
/// ```
/// use logging_service::record::LogRecord;
/// use logging_service::forward::encode_rfc5424;
///
/// let r = LogRecord { time: "2023-11-14T22:13:20.000000Z", host: "gw 1", app: "app\nx", pid: "",
///                     facility: 1, severity: 6, sent: "2023-11-15T03:43:20+05:30", msgid: "ID47",
///                     structured_data: r#"[m a="\]"]"#, message: "hello" };
/// assert_eq!(encode_rfc5424(&r),
///            &br#"66 <14>1 2023-11-15T03:43:20+05:30 gw_1 app_x - ID47 [m a="\]"] hello"#[..]);
/// ```
pub fn encode_rfc5424(r: &LogRecord<'_>) -> Vec<u8> {
    fn header_field(out: &mut String, s: &str, max: usize) {
        if s.is_empty() {
            out.push('-');
        } else {
            out.extend(
                s.chars()
                    .take(max)
                    .map(|c| if c.is_ascii_graphic() { c } else { '_' }),
            );
        }
        out.push(' ');
    }
    let pri = u16::from(r.facility) * 8 + u16::from(r.severity);
    let mut msg = format!("<{pri}>1 ");
    let time = if crate::record::parse_rfc3339(r.sent).is_some() {
        r.sent
    } else {
        r.time
    };
    header_field(&mut msg, time, 32);
    header_field(&mut msg, r.host, 255);
    header_field(&mut msg, r.app, 48);
    header_field(&mut msg, r.pid, 128);
    header_field(&mut msg, r.msgid, 32);
    if r.structured_data != "-" && crate::line::is_structured_data(r.structured_data) {
        msg.push_str(r.structured_data);
    } else {
        msg.push('-');
    }
    msg.push(' ');
    msg.push_str(r.message);
    let mut out = format!("{} ", msg.len()).into_bytes();
    out.extend(msg.into_bytes());
    out
}

/// Capped exponential back-off with full jitter: each delay is drawn from
/// `[d/2, d]`, where `d` doubles from `base` up to `cap` with each failure.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    current: Duration,
}

impl Backoff {
    /// Starts at `base`, never more than `cap`.
    pub fn new(base: Duration, cap: Duration) -> Self {
        let cap = cap.max(base);
        Backoff {
            base,
            cap,
            current: base,
        }
    }

    /// The next delay, and doubles the following one.
    pub fn next_delay(&mut self) -> Duration {
        let d = self.current;
        self.current = (self.current * 2).min(self.cap);
        let half = d / 2;
        half + half.mul_f64(fastrand::f64())
    }

    /// After a success: start again at `base`.
    pub fn reset(&mut self) {
        self.current = self.base;
    }
}

#[derive(Debug, Default)]
struct Counters {
    received: u64,
    forwarded: u64,
    write_errors: u64,
    reconnects: u64,
    connect_failures: u64,
    outages: u64,
    connected: bool,
    relp_in_flight: u64,
    relp_resent: u64,
    relp_bad_txnr: u64,
    relp_refused: u64,
}

#[derive(Debug)]
struct Shared {
    upstream: SocketAddr,
    opts: ForwardOptions,
    spool: Mutex<Spool>,
    /// Signalled, under the spool's lock, when records arrive and when stopping begins.
    wake: Condvar,
    counters: Mutex<Counters>,
    /// The spool's back-pressure, readable without its lock.
    backlogged: AtomicBool,
    /// Set by a stop: drain until `deadline`.
    deadline: Mutex<Option<Instant>>,
    /// Set by a second signal or at the deadline: stop sending now.
    abort: AtomicBool,
    /// A clone of the sender's connection, for shutting it down to interrupt a write.
    conn: Mutex<Option<TcpStream>>,
}

impl Shared {
    fn stats(&self) -> ForwardStats {
        let s: SpoolStats = self.spool.lock().stats();
        let c = self.counters.lock();
        ForwardStats {
            received: c.received,
            recovered: s.recovered,
            forwarded: c.forwarded,
            spooled: s.spooled,
            queued: s.records,
            dropped_spool_full_block: s.dropped_block,
            dropped_spool_full_drop_oldest: s.dropped_oldest,
            dropped_spool_full_drop_newest: s.dropped_newest,
            dropped_spool_write_error: c.write_errors,
            torn_tails: s.torn_tails,
            reconnects: c.reconnects,
            connect_failures: c.connect_failures,
            outages: c.outages,
            connected: c.connected,
            relp_in_flight: c.relp_in_flight,
            relp_resent: c.relp_resent,
            relp_bad_txnr: c.relp_bad_txnr,
            relp_refused: c.relp_refused,
        }
    }

    fn stopping(&self) -> Option<Instant> {
        *self.deadline.lock()
    }

    /// Whether the sender must give up now.
    fn must_end(&self) -> bool {
        self.abort.load(Ordering::Acquire) || self.stopping().is_some_and(|d| Instant::now() >= d)
    }

    /// Stops sending at once: interrupts a write in progress and wakes the sender.
    fn abort(&self) {
        self.abort.store(true, Ordering::Release);
        if let Some(c) = self.conn.lock().as_ref() {
            let _ = c.shutdown(Shutdown::Both);
        }
        let _guard = self.spool.lock();
        self.wake.notify_all();
    }

    /// Waits up to `d` or until woken (records, stop, abort).
    fn pause(&self, d: Duration) {
        let mut spool = self.spool.lock();
        if !self.abort.load(Ordering::Acquire) {
            self.wake.wait_for(&mut spool, d);
        }
    }
}

/// Forwards records upstream as RFC 5424 messages with RFC 6587 octet counting over TCP
/// (which another `logd`, rsyslog and syslog-ng all accept), through a [`Spool`], from a
/// thread of its own so that a slow or absent upstream never blocks the dispatcher.
/// See the [module documentation](self).
#[derive(Debug)]
pub struct Forwarder {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    done: crossbeam_channel::Receiver<()>,
    /// Records of the last batch the spool refused.
    unplaced: u64,
}

/// A handle on a running [`Forwarder`]: its counters, and stopping it at once.
#[derive(Debug, Clone)]
pub struct ForwardHandle(Arc<Shared>);

impl ForwardHandle {
    /// The counters so far (also after the forwarder stopped).
    pub fn stats(&self) -> ForwardStats {
        self.0.stats()
    }

    /// The upstream address.
    pub fn upstream(&self) -> SocketAddr {
        self.0.upstream
    }

    /// Ends a stop's drain now (a second SIGTERM): what is not delivered goes to the spool.
    /// Before a stop began it also makes the sender give up for good.
    pub fn stop_now(&self) {
        self.0.abort();
    }
}

impl Forwarder {
    /// Opens the spool (`opts.spool_dir`, else `default_spool_dir`), which replays what an
    /// earlier run left there first, and starts sending to `upstream`.
    pub fn start(
        upstream: SocketAddr,
        opts: &ForwardOptions,
        default_spool_dir: PathBuf,
    ) -> io::Result<Self> {
        let mut cfg = SpoolConfig::new(opts.spool_dir.clone().unwrap_or(default_spool_dir));
        cfg.memory_bytes = match opts.transport {
            Transport::Plain => opts.queue_bytes,
            // RELP promises that an acknowledged record survives a crash: each record goes
            // to a spool segment (in the kernel) before a batch is written, so that a RELP
            // listener in front acknowledges nothing that only memory holds.
            Transport::Relp => 0,
        };
        cfg.max_bytes = opts.spool_max;
        cfg.full = opts.spool_full;
        // Several segments per spool, so that drop-oldest drops a part of it at a time.
        cfg.segment_bytes = (opts.spool_max / 8).clamp(512, 4 << 20);
        let spool = Spool::open(cfg)?;
        if !spool.is_empty() {
            tracing::info!(
                records = spool.len(),
                "forwarding: replaying the spool of an earlier run"
            );
        }
        let shared = Arc::new(Shared {
            upstream,
            opts: opts.clone(),
            backlogged: AtomicBool::new(spool.backlogged()),
            spool: Mutex::new(spool),
            wake: Condvar::new(),
            counters: Mutex::new(Counters::default()),
            deadline: Mutex::new(None),
            abort: AtomicBool::new(false),
            conn: Mutex::new(None),
        });
        let (done_tx, done) = crossbeam_channel::bounded::<()>(0);
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("logd-forward".into())
            .spawn(move || {
                send_loop(&s);
                drop(done_tx);
            })?;
        Ok(Forwarder {
            shared,
            thread: Some(thread),
            done,
            unplaced: 0,
        })
    }

    /// The counters so far.
    pub fn stats(&self) -> ForwardStats {
        self.shared.stats()
    }

    /// A handle for reading the counters and stopping at once, from elsewhere.
    pub fn handle(&self) -> ForwardHandle {
        ForwardHandle(self.shared.clone())
    }
}

/// The sender: batches from the spool to the upstream, forever, until a stop ends it.
fn send_loop(shared: &Shared) {
    let up = shared.upstream;
    let mut conn: Option<TcpStream> = None;
    let mut backoff = Backoff::new(shared.opts.backoff_base, shared.opts.backoff_cap);
    // When the current outage began (the upstream is away at start until it answers).
    let mut down_since: Option<Instant> = None;
    let mut ever_up = false;
    let mut buf = Vec::new();
    loop {
        {
            let mut spool = shared.spool.lock();
            loop {
                if shared.must_end() {
                    return;
                }
                if !spool.is_empty() {
                    break;
                }
                if shared.stopping().is_some() {
                    return;
                }
                shared.wake.wait_for(&mut spool, Duration::from_secs(1));
            }
        }
        let Some(c) = conn.as_mut() else {
            let timeout = match shared.stopping() {
                Some(d) => d
                    .saturating_duration_since(Instant::now())
                    .min(shared.opts.connect_timeout)
                    .max(Duration::from_millis(1)),
                None => shared.opts.connect_timeout,
            };
            match TcpStream::connect_timeout(&up, timeout) {
                Ok(c) => {
                    let _ = c.set_nodelay(true);
                    let _ = c.set_write_timeout(Some(Duration::from_secs(5)));
                    *shared.conn.lock() = c.try_clone().ok();
                    if shared.abort.load(Ordering::Acquire) {
                        return;
                    }
                    // The spool's lock before the counters', as `stats` takes them.
                    let queued = shared.spool.lock().len();
                    let mut counters = shared.counters.lock();
                    counters.connected = true;
                    if let Some(since) = down_since.take() {
                        if ever_up {
                            counters.reconnects += 1;
                        }
                        tracing::info!(
                            "forwarding to {up} up again after {:.1} s, {queued} records to replay",
                            since.elapsed().as_secs_f64()
                        );
                    }
                    ever_up = true;
                    backoff.reset();
                    conn = Some(c);
                }
                Err(e) => {
                    let mut counters = shared.counters.lock();
                    counters.connect_failures += 1;
                    if down_since.is_none() {
                        counters.outages += 1;
                        down_since = Some(Instant::now());
                        tracing::warn!("forwarding to {up} down: {e}");
                    }
                    drop(counters);
                    shared.pause(backoff.next_delay());
                }
            }
            continue;
        };
        if shared.opts.transport == Transport::Relp {
            let mut in_flight = 0;
            let ended = relp_session(shared, c, &mut in_flight);
            {
                let mut counters = shared.counters.lock();
                counters.relp_resent += in_flight;
                counters.relp_in_flight = 0;
            }
            match ended {
                Ok(()) => return,
                Err(e) => {
                    conn = None;
                    *shared.conn.lock() = None;
                    shared.counters.lock().connected = false;
                    if shared.must_end() {
                        return;
                    }
                    if down_since.is_none() {
                        shared.counters.lock().outages += 1;
                        down_since = Some(Instant::now());
                        tracing::warn!(
                            "forwarding to relp://{up} down: {e} ({in_flight} records unacknowledged, sent again on the next session)"
                        );
                    }
                    shared.pause(backoff.next_delay());
                }
            }
            continue;
        }
        let batch = match shared.spool.lock().peek(512, 256 << 10) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!("forwarding: reading the spool failed: {e}");
                shared.pause(backoff.next_delay());
                continue;
            }
        };
        buf.clear();
        for r in &batch.records {
            buf.extend_from_slice(r);
        }
        let sent = peer_open(c).and_then(|()| {
            c.write_all(&buf)?;
            c.flush()
        });
        match sent {
            Ok(()) => {
                let delivered = {
                    let mut spool = shared.spool.lock();
                    let delivered = spool.commit(batch.position);
                    // Room was made: paused readers may go on.
                    shared
                        .backlogged
                        .store(spool.backlogged(), Ordering::Release);
                    delivered
                };
                match delivered {
                    Ok(n) => shared.counters.lock().forwarded += n,
                    Err(e) => tracing::error!("forwarding: updating the spool failed: {e}"),
                }
            }
            Err(e) => {
                conn = None;
                *shared.conn.lock() = None;
                shared.counters.lock().connected = false;
                if down_since.is_none() && !shared.abort.load(Ordering::Acquire) {
                    shared.counters.lock().outages += 1;
                    down_since = Some(Instant::now());
                    tracing::warn!("forwarding to {up} down: {e}");
                }
            }
        }
    }
}

/// A record sent over RELP and not yet committed: its transaction number, the completion
/// token that stands for it in the session's [`TokenTable`], and once acknowledged its
/// spool position (what the token table gave back).
#[derive(Debug)]
struct InFlight {
    txnr: u32,
    token: CompletionToken,
    acked: Option<Position>,
}

/// The transaction number after `t` (RELP's numbers wrap from 999,999,999 to 1).
fn next_txnr(t: u32) -> u32 {
    if t >= relp::MAX_TXNR { 1 } else { t + 1 }
}

/// Reads from the upstream into `dec`, waiting up to `wait`; `Ok(false)` when nothing came.
fn read_some(c: &mut TcpStream, dec: &mut RelpDecoder, wait: Duration) -> io::Result<bool> {
    let mut buf = [0u8; 16 * 1024];
    c.set_read_timeout(Some(wait.max(Duration::from_millis(1))))?;
    let r = c.read(&mut buf);
    match r {
        Ok(0) => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the upstream closed the session",
        )),
        Ok(n) => {
            dec.extend(&buf[..n]);
            Ok(true)
        }
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            Ok(false)
        }
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(false),
        Err(e) => Err(e),
    }
}

fn protocol(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// One RELP session on a connected socket: `open`, then records from the spool with at most
/// `relp_window` unacknowledged, each committed once it and every record before it are
/// acknowledged. The transaction number is the token on the wire; a [`TokenTable`] maps it
/// back to the record's spool position (the Asynchronous Completion Token), so that an
/// answer naming no record in flight, or one already answered, is refused and counted.
///
/// Returns `Ok` when a stop finds nothing left to send (after a `close`), an error when the
/// session broke or the sender must end; `in_flight` then says how many records were
/// unacknowledged (they stay in the spool and are sent again).
fn relp_session(shared: &Shared, c: &mut TcpStream, in_flight: &mut u64) -> io::Result<()> {
    let window = shared.opts.relp_window.max(1);
    let mut dec = RelpDecoder::new(64 * 1024);
    let mut wire = Vec::new();
    relp::encode(
        &mut wire,
        1,
        Command::Open,
        relp::offers(&crate::relp_listener::software()).as_bytes(),
    );
    c.write_all(&wire)?;
    let deadline = Instant::now() + shared.opts.ack_timeout;
    loop {
        if let Some(f) = dec.next_frame().map_err(|e| protocol(e.to_string()))? {
            let (code, text) = relp::parse_rsp(f.data).map_err(|e| protocol(e.to_string()))?;
            if f.command != Command::Rsp || f.txnr != 1 || code != 200 {
                return Err(protocol(format!(
                    "the upstream refused the session: {} {code} {}",
                    f.command,
                    String::from_utf8_lossy(text)
                )));
            }
            if !relp::offers_syslog(f.data) {
                return Err(protocol(
                    "the upstream does not offer the syslog command".into(),
                ));
            }
            break;
        }
        if shared.must_end() {
            return Err(io::ErrorKind::Interrupted.into());
        }
        if Instant::now() >= deadline {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "no answer to open"));
        }
        read_some(c, &mut dec, Duration::from_millis(100))?;
    }
    let mut txnr = 2;
    let mut table: TokenTable<Position> = TokenTable::with_limit(window);
    let mut flight: VecDeque<InFlight> = VecDeque::new();
    let mut last_answer = Instant::now();
    let result = loop {
        *in_flight = flight.len() as u64;
        shared.counters.lock().relp_in_flight = *in_flight;
        if shared.must_end() {
            break Err(io::ErrorKind::Interrupted.into());
        }
        // Send what the window allows.
        if flight.len() < window {
            let batch = shared.spool.lock().peek_after(
                flight.len() as u64,
                window - flight.len(),
                256 << 10,
            );
            let batch = match batch {
                Ok(b) => b,
                Err(e) => break Err(e),
            };
            if !batch.records.is_empty() {
                wire.clear();
                for (i, r) in batch.records.iter().enumerate() {
                    // Never full: the table holds at most the records in flight.
                    let Ok(token) = table.issue(batch.position_of(i)) else {
                        break;
                    };
                    relp::encode(&mut wire, txnr, Command::Syslog, relp::strip_octet_count(r));
                    flight.push_back(InFlight {
                        txnr,
                        token,
                        acked: None,
                    });
                    txnr = next_txnr(txnr);
                }
                if flight.len() == batch.records.len() {
                    last_answer = Instant::now();
                }
                if let Err(e) = c.write_all(&wire) {
                    break Err(e);
                }
                *in_flight = flight.len() as u64;
                continue;
            }
        }
        if flight.is_empty() {
            let mut spool = shared.spool.lock();
            if spool.is_empty() {
                if shared.stopping().is_some() {
                    drop(spool);
                    break Ok(());
                }
                shared.wake.wait_for(&mut spool, Duration::from_millis(200));
            }
            continue;
        }
        // Nothing more can go now (the window is full, the spool has nothing more, or the
        // rest waits behind a segment boundary): wait for answers, looking up now and then
        // for new records and a stop.
        match read_some(c, &mut dec, Duration::from_millis(100)) {
            Ok(true) => {}
            Ok(false) => {
                if last_answer.elapsed() >= shared.opts.ack_timeout {
                    break Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "{} records unanswered for {:?}",
                            flight.len(),
                            shared.opts.ack_timeout
                        ),
                    ));
                }
                continue;
            }
            Err(e) => break Err(e),
        }
        match take_answers(shared, &mut dec, &mut table, &mut flight) {
            Ok(true) => last_answer = Instant::now(),
            Ok(false) => {}
            Err(e) => break Err(e),
        }
        if let Err(e) = commit_acked(shared, &mut flight) {
            break Err(e);
        }
    };
    *in_flight = flight.len() as u64;
    if result.is_ok() {
        // Nothing left: end the session politely (the answer is not waited for long).
        wire.clear();
        relp::encode(&mut wire, txnr, Command::Close, b"");
        if c.write_all(&wire).is_ok() {
            let _ = read_some(c, &mut dec, Duration::from_millis(200));
        }
    }
    result
}

/// Handles every answer decoded: marks its record acknowledged, through the token table.
/// Returns whether any answer came.
fn take_answers(
    shared: &Shared,
    dec: &mut RelpDecoder,
    table: &mut TokenTable<Position>,
    flight: &mut VecDeque<InFlight>,
) -> io::Result<bool> {
    let mut any = false;
    while let Some(f) = dec.next_frame().map_err(|e| protocol(e.to_string()))? {
        match f.command {
            Command::Rsp => {}
            Command::ServerClose => {
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "the upstream closes the session (serverclose)",
                ));
            }
            c => return Err(protocol(format!("unexpected {c} from the upstream"))),
        }
        any = true;
        let first = flight.front().map_or(0, |e| e.txnr);
        let distance = if f.txnr >= first {
            f.txnr - first
        } else {
            f.txnr + relp::MAX_TXNR - first
        } as usize;
        let Some(entry) = flight.get_mut(distance).filter(|_| f.txnr != 0) else {
            tracing::warn!(
                txnr = f.txnr,
                "RELP: an answer for no record in flight refused"
            );
            shared.counters.lock().relp_bad_txnr += 1;
            continue;
        };
        // The transaction number found the token; the token table checks it is still
        // outstanding and gives back the record's spool position.
        let position = match table.complete(entry.token) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(txnr = f.txnr, error = %e, "RELP: a second answer for a record refused");
                shared.counters.lock().relp_bad_txnr += 1;
                continue;
            }
        };
        let (code, text) = relp::parse_rsp(f.data).map_err(|e| protocol(e.to_string()))?;
        if code != 200 {
            shared.counters.lock().relp_refused += 1;
            return Err(protocol(format!(
                "the upstream refused record txnr {}: {code} {}",
                f.txnr,
                String::from_utf8_lossy(text)
            )));
        }
        entry.acked = Some(position);
    }
    Ok(any)
}

/// Commits the acknowledged records at the front of the window (a record leaves the spool
/// only when it and every record before it are acknowledged).
fn commit_acked(shared: &Shared, flight: &mut VecDeque<InFlight>) -> io::Result<()> {
    let mut span: Option<Position> = None;
    while let Some(p) = flight.front().and_then(|e| e.acked) {
        flight.pop_front();
        span = Some(span.map_or(p, |s| s.through(p)));
    }
    let Some(span) = span else { return Ok(()) };
    let delivered = {
        let mut spool = shared.spool.lock();
        let d = spool.commit(span);
        shared
            .backlogged
            .store(spool.backlogged(), Ordering::Release);
        d
    }?;
    shared.counters.lock().forwarded += delivered;
    Ok(())
}

/// Fails when the upstream has closed the connection (or reset it). An upstream sends
/// nothing, so a readable socket means end of stream or an error: finding that out before
/// writing keeps a batch from going into a connection nobody reads.
fn peer_open(c: &TcpStream) -> io::Result<()> {
    c.set_nonblocking(true)?;
    let mut byte = [0u8; 1];
    let r = c.peek(&mut byte);
    c.set_nonblocking(false)?;
    match r {
        Ok(0) => Err(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "the upstream closed the connection",
        )),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
        Err(e) => Err(e),
    }
}

impl RecordSink for Forwarder {
    fn write_batch(&mut self, batch: &RecordBatch) -> io::Result<()> {
        let mut spool = self.shared.spool.lock();
        let mut write_errors = 0;
        let mut refused = 0;
        let mut first_err = None;
        for r in batch.iter() {
            // A refused record is counted by the spool under its policy's reason.
            match spool.push(&encode_rfc5424(&r)) {
                Ok(Pushed::Queued) => {}
                Ok(_) => refused += 1,
                Err(e) => {
                    write_errors += 1;
                    first_err.get_or_insert(e);
                }
            }
        }
        // The segment writes go to the kernel per batch, so that they survive a crash of logd.
        if let Err(e) = spool.flush() {
            first_err.get_or_insert(e);
        }
        self.shared
            .backlogged
            .store(spool.backlogged(), Ordering::Release);
        self.shared.wake.notify_one();
        drop(spool);
        let mut counters = self.shared.counters.lock();
        counters.received += batch.len() as u64;
        counters.write_errors += write_errors;
        drop(counters);
        self.unplaced = write_errors + refused;
        first_err.map_or(Ok(()), Err)
    }

    fn unplaced(&self) -> u64 {
        self.unplaced
    }

    fn add_stats(&self, stats: &mut crate::store::Stats) {
        let f = self.shared.stats();
        stats.forwarded += f.forwarded;
        stats.forward_queued += f.queued;
        stats.relp_in_flight += f.relp_in_flight;
        stats.relp_resent += f.relp_resent;
        stats.relp_bad_txnr += f.relp_bad_txnr;
        stats.forwarder = Some(f);
    }

    /// The graceful stop: sends for at most the stop timeout (less after
    /// [`ForwardHandle::stop_now`]), then writes what is left to the spool on disk.
    fn flush(&mut self) -> io::Result<()> {
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        let deadline = Instant::now() + self.shared.opts.stop_timeout;
        *self.shared.deadline.lock() = Some(deadline);
        {
            let _guard = self.shared.spool.lock();
            self.shared.wake.notify_all();
        }
        // Disconnected when the sender ends; a timeout means the deadline passed first.
        let _ = self.done.recv_deadline(deadline);
        self.shared.abort();
        thread
            .join()
            .map_err(|_| io::Error::other("forwarder panicked"))?;
        let mut spool = self.shared.spool.lock();
        let left = spool.len();
        spool.persist()?;
        if left > 0 {
            tracing::warn!(
                "forwarding to {}: {left} records not delivered, kept in the spool for the next start",
                self.shared.upstream
            );
        }
        Ok(())
    }

    fn backlogged(&self) -> bool {
        self.shared.backlogged.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syslog::{Dialect, parse};
    use proptest::prelude::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(800));
        let bounds = [100, 200, 400, 800, 800, 800];
        for max in bounds {
            let d = b.next_delay();
            assert!(
                d >= Duration::from_millis(max / 2) && d <= Duration::from_millis(max),
                "{d:?} for {max}"
            );
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }

    /// MSGID, STRUCTURED-DATA (escapes and all) and the sender's own timestamp travel as the
    /// original sender sent them: what the upstream parses is what the edge parsed.
    #[test]
    fn msgid_structured_data_and_the_senders_time_are_forwarded_intact() {
        let original = "<165>1 2026-11-26T08:00:01.5+05:30 gw-1 mqttd 812 ID47 [ex@32473 a=\"x\\]y\\\"z\\\\\" b=\"h\u{f4}te\"][meta seq=\"1\"] valve stuck";
        let m = parse(original.as_bytes()).unwrap();
        let mut batch = crate::record::RecordBatch::new();
        batch.push_syslog(&m, "10.0.0.1");
        let framed = encode_rfc5424(&batch.get(0).unwrap());
        let text = std::str::from_utf8(&framed).unwrap();
        let (_, body) = text.split_once(' ').unwrap();
        assert_eq!(body, original);
        // A record without them (ACE) sends nil fields and its UTC time.
        let r = LogRecord {
            time: "2026-01-01T00:00:00.000000Z",
            host: "h",
            app: "ace",
            pid: "1",
            facility: 1,
            severity: 6,
            sent: "-",
            msgid: "-",
            structured_data: "-",
            message: "m",
        };
        assert_eq!(
            encode_rfc5424(&r),
            b"47 <14>1 2026-01-01T00:00:00.000000Z h ace 1 - - m"
        );
    }

    proptest! {
        /// Whatever the original sender put in a record, what the forwarder sends is one RFC
        /// 5424 message whose header fields are printable US-ASCII within the RFC's lengths.
        #[test]
        fn forwarded_headers_are_what_rfc_5424_allows(
            time in any::<String>(),
            host in any::<String>(),
            app in any::<String>(),
            pid in any::<String>(),
            sent in any::<String>(),
            msgid in any::<String>(),
            message in "[^\r\n\0]*",
        ) {
            let r = LogRecord { time: &time, host: &host, app: &app, pid: &pid, facility: 1, severity: 6,
                                sent: &sent, msgid: &msgid, structured_data: "-", message: &message };
            let framed = encode_rfc5424(&r);
            let text = std::str::from_utf8(&framed).unwrap();
            let (count, body) = text.split_once(' ').unwrap();
            prop_assert_eq!(count.parse::<usize>().unwrap(), body.len());
            let m = parse(body.as_bytes()).unwrap();
            prop_assert_eq!(m.dialect, Dialect::Rfc5424);
            for (field, max) in [(&m.timestamp, 32), (&m.hostname, 255), (&m.app, 48), (&m.procid, 128), (&m.msgid, 32)] {
                if let Some(f) = field {
                    prop_assert!(f.len() <= max && f.chars().all(|c| c.is_ascii_graphic()), "{f:?}");
                }
            }
            prop_assert_eq!(m.message.as_ref(), message.strip_prefix('\u{feff}').unwrap_or(&message));
        }
    }
}
