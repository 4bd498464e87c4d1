//! Forwarding upstream: every record as RFC 5424 with octet counting over TCP, through a
//! [`Spool`] so that no outage, however long, loses a record or stops forwarding.
//!
//! The [`Forwarder`] is a [`RecordSink`]: it encodes each record and pushes it into the
//! spool (memory first, then segment files, see [`crate::spool`]). The sending is done by
//! handlers on the dispatcher, with no thread and no blocking I/O of its own
//! ([`ForwardHandle::attach`]): a supervisor without a descriptor, which starts a reactor
//! [`Connector`] when records wait and, on any failure, tries again from a back-off timer
//! (capped, exponential, jittered, forever); and per connection a session handler, which
//! moves batches from the spool into an [`OutBuffer`], writes it as the socket allows, and
//! commits a batch only once all of it was written. Writers wake the supervisor with one
//! notification per burst; a periodic look catches anything else. On an error the session
//! closes and the next one sends again from the last commit. The session's bytes go through
//! a [`Link`]: the plain socket, or a TLS session over it ([`crate::forward_tls`],
//! `--forward-tls`), whose handshake must finish, the upstream's certificate verified, before
//! the first record is written; a refused handshake ends the session like any other error
//! (counted in `tls_handshake_failures`), and the records stay in the spool.
//!
//! Stopping ([`RecordSink::flush`], after the dispatcher has ended): the dispatcher's
//! shutdown parks the session and the outage state; the stop goes on with them on a reactor
//! of its own for at most `stop_timeout`; then, or at once after [`ForwardHandle::stop_now`],
//! that reactor ends and whatever was not delivered is written to the spool on disk, which
//! the next start replays first.
//!
//! What plain TCP cannot promise: a record is committed once the kernel accepted it, so the
//! records in the kernel's send buffer when the upstream crashes are lost, and a batch cut
//! by an error half-way is sent again whole (duplicates upstream). The session waits for input
//! too: an upstream sends nothing, so a readable socket means it closed the connection,
//! which catches an orderly restart of the upstream before anything is written into the void.
//!
//! Over RELP ([`Transport::Relp`]) the session speaks RELP instead: every
//! record goes to a spool segment first (so that nothing acknowledged to a RELP sender in
//! front lives only in memory), at most `relp_window` records are unacknowledged, and a
//! record is committed only once it and every record before it are acknowledged. Each record
//! in flight holds an [`act`] completion token whose context is its spool position; the
//! transaction number of an answer leads to the token, the token table gives the position
//! back, and an answer for no record in flight or for one already answered is refused and
//! counted (the Asynchronous Completion Token). A broken session leaves the unacknowledged
//! records in the spool, to be sent again on the next one (counted as `relp_resent`).

use std::any::Any;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use act::{CompletionToken, TokenTable};
use pattern_core::{
    CloseReason, Context, DispatchError, Dispatcher, Disposition, EventHandler, Interest, Message,
    Remote, Removal, TimerId, Token,
};
use reactor::{Connector, OutBuffer, SockStream};

use crate::forward_tls::{ForwardTls, ForwardTlsOptions};
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
    /// TLS to the upstream (`--forward-tls`, see [`crate::forward_tls`]); `None`: cleartext.
    pub tls: Option<ForwardTlsOptions>,
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
            tls: None,
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
    /// TLS: sessions that ended before their handshake finished (the upstream's certificate
    /// refused, an alert, a close, or no answer in time), each logged with its reason.
    pub tls_handshake_failures: u64,
}

impl ForwardStats {
    /// Puts these counters in `stats`, in place of what it said of the forwarder: the
    /// store's thread does at each group, and the readers of the counters (metrics, the
    /// statistics service) do again with the forwarder's counters of now, since the
    /// forwarder's sessions count on the dispatcher, between the store's groups.
    pub fn put_in(self, stats: &mut crate::store::Stats) {
        stats.forwarded = self.forwarded;
        stats.forward_queued = self.queued;
        stats.relp_in_flight = self.relp_in_flight;
        stats.relp_resent = self.relp_resent;
        stats.relp_bad_txnr = self.relp_bad_txnr;
        stats.forwarder = Some(self);
    }

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
        if self.tls_handshake_failures > 0 {
            write!(f, ", {} TLS handshakes failed", self.tls_handshake_failures)?;
        }
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
    tls_handshake_failures: u64,
}

/// The byte stream of an upstream connection, as a `Session` drives it: nonblocking reads
/// and writes (`WouldBlock` when the socket is not ready) over a descriptor the dispatcher
/// waits on.
///
/// The plain socket is one ([`SockStream`]). A TLS layer is another
/// ([`crate::forward_tls`]): a rustls `ClientConnection` over the socket, whose `read` and
/// `write` move records through it, which refuses writes (`WouldBlock`) until its handshake
/// is [established](Link::established), and whose [`wants_write`](Link::wants_write) says
/// when it holds bytes of its own to send (handshake, alerts, records encrypted and not yet
/// taken by the socket), so that the session waits for writability and commits a batch only
/// once the socket took all of it; it is made from the connected socket by the forwarder's
/// [`LinkMaker`].
pub trait Link: Read + Write + Send {
    /// The descriptor the dispatcher waits on.
    fn fd(&self) -> BorrowedFd<'_>;

    /// Whether the layer holds bytes to send that no [`Write::write`] queued (plain: never).
    fn wants_write(&self) -> bool {
        false
    }

    /// Whether records may be written: the handshake finished (plain: always).
    fn established(&self) -> bool {
        true
    }
}

impl Link for SockStream {
    fn fd(&self) -> BorrowedFd<'_> {
        self.as_fd()
    }
}

/// Makes the [`Link`] of each new connection from its connected socket.
pub type LinkMaker = Arc<dyn Fn(SockStream) -> io::Result<Box<dyn Link>> + Send + Sync>;

/// The plain [`LinkMaker`]: the socket itself.
fn plain_link(stream: SockStream) -> io::Result<Box<dyn Link>> {
    Ok(Box::new(stream))
}

/// How often the supervisor looks at the spool without being woken.
const LOOK: Duration = Duration::from_secs(1);
/// How often a session looks at its deadlines (answers, a stalled upstream, the stop).
const TICK: Duration = Duration::from_millis(100);
/// A connection whose upstream takes no byte for this long is given up (and made again).
const WRITE_STALL: Duration = Duration::from_secs(5);
/// How long a drained RELP session waits for the answer to its `close`.
const CLOSE_WAIT: Duration = Duration::from_millis(200);

/// What the forwarder's handlers tell each other (their notifications).
enum Msg {
    /// Records arrived, or a stop asks to look again.
    Wake,
    /// The Connector finished.
    Connected(reactor::ConnectResult),
    /// A session parked at the dispatcher's shutdown, to go on on the stop's own reactor.
    Adopt(Box<Session>),
    /// A session ended: `None` when it finished cleanly (drained at a stop).
    Ended(Option<io::Error>),
    /// A session's TLS handshake finished.
    Up,
}

/// The ACTs of the forwarder's timers.
struct Retry;
struct Look;
struct Deadline;
struct Tick;

/// The state of the reconnection that outlives a dispatcher (parked at its shutdown).
#[derive(Debug, Clone)]
struct Outage {
    backoff: Backoff,
    /// When the current outage began (the upstream is away at start until it answers).
    down_since: Option<Instant>,
    ever_up: bool,
}

/// What the handlers leave when the dispatcher shuts down before the stop drains.
#[derive(Default)]
struct Parked {
    outage: Option<Outage>,
    session: Option<Box<Session>>,
}

struct Shared {
    upstream: SocketAddr,
    opts: ForwardOptions,
    spool: Mutex<Spool>,
    counters: Mutex<Counters>,
    /// The spool's back-pressure, readable without its lock.
    backlogged: AtomicBool,
    /// Set by a stop: drain until `deadline`.
    deadline: Mutex<Option<Instant>>,
    /// Set by a second signal or at the deadline: stop sending now.
    abort: AtomicBool,
    /// Set when a writer notified the supervisor; cleared when the sender looks at the spool
    /// (so a burst of batches costs one notification).
    wake_pending: AtomicBool,
    /// The dispatcher the supervisor is registered with, and its token.
    target: Mutex<Option<(Arc<dyn Remote>, Token)>>,
    parked: Mutex<Parked>,
    link: Mutex<LinkMaker>,
    /// The TLS client, when forwarding over TLS (its files reload on SIGHUP).
    tls: Option<ForwardTls>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("upstream", &self.upstream)
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
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
            tls_handshake_failures: c.tls_handshake_failures,
        }
    }

    fn stopping(&self) -> Option<Instant> {
        *self.deadline.lock()
    }

    /// Whether the sender must give up now.
    fn must_end(&self) -> bool {
        self.abort.load(Ordering::Acquire) || self.stopping().is_some_and(|d| Instant::now() >= d)
    }

    /// Tells the supervisor to look at the spool (at most one notification outstanding).
    fn wake(&self) {
        if !self.wake_pending.swap(true, Ordering::AcqRel)
            && let Some((remote, token)) = &*self.target.lock()
        {
            let _ = remote.notify(*token, Box::new(Msg::Wake));
        }
    }

    /// Stops sending at once: the supervisor is woken, and closes the session (or ends the
    /// stop's reactor).
    fn abort(&self) {
        self.abort.store(true, Ordering::Release);
        if let Some((remote, token)) = &*self.target.lock() {
            let _ = remote.notify(*token, Box::new(Msg::Wake));
        }
    }
}

/// The Connector's side: connects when records wait, with capped jittered back-off after
/// every failure, forever; registers a [`Session`] per connection. It waits on no descriptor;
/// its token is where writers and the session's end notify.
struct Supervisor {
    shared: Arc<Shared>,
    outage: Outage,
    session: Option<Token>,
    connecting: bool,
    retry: Option<TimerId>,
    /// On the stop's reactor: end it once nothing is left (or at the deadline).
    draining: bool,
}

impl Supervisor {
    fn new(shared: Arc<Shared>, outage: Option<Outage>, draining: bool) -> Self {
        let outage = outage.unwrap_or_else(|| Outage {
            backoff: Backoff::new(shared.opts.backoff_base, shared.opts.backoff_cap),
            down_since: None,
            ever_up: false,
        });
        Supervisor {
            shared,
            outage,
            session: None,
            connecting: false,
            retry: None,
            draining,
        }
    }

    fn look(&mut self, ctx: &mut dyn Context) {
        self.shared.wake_pending.store(false, Ordering::Release);
        if let Some(s) = self.session {
            // The session looks at the spool (and at the stop) itself.
            let _ = ctx.notify(s, Box::new(Msg::Wake));
            return;
        }
        if self.shared.must_end() {
            if self.draining {
                ctx.end();
            }
            return;
        }
        if self.connecting || self.retry.is_some() {
            return;
        }
        if self.shared.spool.lock().is_empty() {
            if self.draining {
                ctx.end();
            }
            return;
        }
        self.connect(ctx);
    }

    fn connect(&mut self, ctx: &mut dyn Context) {
        let Some(me) = ctx.current() else { return };
        let timeout = match self.shared.stopping() {
            Some(d) => d
                .saturating_duration_since(Instant::now())
                .min(self.shared.opts.connect_timeout)
                .max(Duration::from_millis(1)),
            None => self.shared.opts.connect_timeout,
        };
        let done = move |ctx: &mut dyn Context, r: reactor::ConnectResult| {
            let _ = ctx.notify(me, Box::new(Msg::Connected(r)));
        };
        match Connector::connect(ctx, self.shared.upstream, timeout, done) {
            Ok(_) => self.connecting = true,
            Err(e) => self.failed(ctx, io::Error::other(e.to_string())),
        }
    }

    /// A connection attempt failed: counted, and tried again after the back-off.
    fn failed(&mut self, ctx: &mut dyn Context, e: io::Error) {
        let mut counters = self.shared.counters.lock();
        counters.connect_failures += 1;
        if self.outage.down_since.is_none() {
            counters.outages += 1;
            self.outage.down_since = Some(Instant::now());
            tracing::warn!("forwarding to {} down: {e}", self.shared.upstream);
        }
        drop(counters);
        self.retry_later(ctx);
    }

    fn retry_later(&mut self, ctx: &mut dyn Context) {
        if let Some(me) = ctx.current() {
            let delay = self.outage.backoff.next_delay();
            self.retry = ctx.schedule_timer(me, delay, None, Box::new(Retry)).ok();
        }
    }

    /// Registers `session` for its socket, with its tick.
    fn host(&mut self, ctx: &mut dyn Context, mut session: Box<Session>) -> io::Result<()> {
        let me = ctx.current().expect("upcalls know their token");
        session.sup = me;
        let token = ctx
            .register(
                Box::new(SessionHandler(Some(session))),
                Interest::READ | Interest::WRITE,
            )
            .map_err(|e| io::Error::other(e.to_string()))?;
        if let Err(e) = ctx.schedule_timer(token, TICK, Some(TICK), Box::new(Tick)) {
            let _ = ctx.remove(token, Removal::Quiet);
            return Err(io::Error::other(e.to_string()));
        }
        self.session = Some(token);
        self.shared.counters.lock().connected = true;
        Ok(())
    }

    fn connected(&mut self, ctx: &mut dyn Context, stream: SockStream) {
        if self.shared.must_end() {
            return self.look(ctx);
        }
        let _ = stream.set_nodelay(true);
        let make = self.shared.link.lock().clone();
        let session = match make(stream) {
            Ok(link) => Session::new(self.shared.clone(), link, ctx.now()),
            Err(e) => return self.failed(ctx, e),
        };
        let established = session.link.established();
        if let Err(e) = self.host(ctx, session) {
            return self.failed(ctx, e);
        }
        // A TLS session is up once its handshake finished (the session says so).
        if established {
            self.up();
        }
    }

    /// The upstream answers: the outage (if any) ends and the back-off starts again.
    fn up(&mut self) {
        let queued = self.shared.spool.lock().len();
        let mut counters = self.shared.counters.lock();
        if let Some(since) = self.outage.down_since.take() {
            if self.outage.ever_up {
                counters.reconnects += 1;
            }
            tracing::info!(
                "forwarding to {} up again after {:.1} s, {queued} records to replay",
                self.shared.upstream,
                since.elapsed().as_secs_f64()
            );
        }
        self.outage.ever_up = true;
        self.outage.backoff.reset();
    }

    fn ended(&mut self, ctx: &mut dyn Context, error: Option<io::Error>) {
        self.session = None;
        let Some(e) = error else {
            // Drained at a stop, the session closed politely.
            return self.look(ctx);
        };
        if self.shared.must_end() {
            return self.look(ctx);
        }
        if self.outage.down_since.is_none() {
            self.shared.counters.lock().outages += 1;
            self.outage.down_since = Some(Instant::now());
            let up = self.shared.upstream;
            match self.shared.opts.transport {
                Transport::Relp => tracing::warn!(
                    "forwarding to relp://{up} down: {e} (the records unacknowledged are sent again on the next session)"
                ),
                _ => tracing::warn!("forwarding to {up} down: {e}"),
            }
        }
        self.retry_later(ctx);
    }
}

impl EventHandler for Supervisor {
    fn handle_notify(&mut self, ctx: &mut dyn Context, message: Message) -> Disposition {
        let Ok(msg) = message.downcast::<Msg>() else {
            return Disposition::Continue;
        };
        match *msg {
            Msg::Wake => self.look(ctx),
            Msg::Connected(r) => {
                self.connecting = false;
                match r {
                    Ok(stream) => self.connected(ctx, stream),
                    Err(e) => self.failed(ctx, e),
                }
            }
            Msg::Adopt(session) => {
                if let Err(e) = self.host(ctx, session) {
                    tracing::warn!("forwarding: cannot go on with the session at the stop: {e}");
                    self.look(ctx);
                }
            }
            Msg::Ended(e) => self.ended(ctx, e),
            Msg::Up => self.up(),
        }
        Disposition::Continue
    }

    fn handle_timeout(
        &mut self,
        ctx: &mut dyn Context,
        _timer: TimerId,
        act: &mut (dyn Any + Send),
    ) -> Disposition {
        if act.is::<Deadline>() {
            // The stop timeout passed: what is left goes to the spool on disk.
            self.shared.abort.store(true, Ordering::Release);
            ctx.end();
        } else {
            if act.is::<Retry>() {
                self.retry = None;
            }
            self.look(ctx);
        }
        Disposition::Continue
    }

    fn handle_close(&mut self, _ctx: &mut dyn Context, reason: CloseReason) {
        // The dispatcher shut down before the stop's drain: the outage goes on there.
        if reason == CloseReason::Shutdown && self.shared.stopping().is_none() {
            self.shared.parked.lock().outage = Some(self.outage.clone());
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

fn protocol(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RelpState {
    /// `open` sent, its answer due by then.
    Opening(Instant),
    Open,
    /// Drained at a stop: `close` sent, its answer waited for until then.
    Closing(Instant),
}

/// One RELP session: `open`, then records from the spool with at most `relp_window`
/// unacknowledged, each committed once it and every record before it are acknowledged. The
/// transaction number is the token on the wire; a [`TokenTable`] maps it back to the record's
/// spool position (the Asynchronous Completion Token), so that an answer naming no record in
/// flight, or one already answered, is refused and counted.
struct Relp {
    dec: RelpDecoder,
    state: RelpState,
    txnr: u32,
    table: TokenTable<Position>,
    flight: VecDeque<InFlight>,
    last_answer: Instant,
    wire: Vec<u8>,
}

enum Proto {
    /// RFC 5424 over TCP: the batch in the output buffer, committed once it is all written.
    Plain(Option<Position>),
    Relp(Box<Relp>),
}

/// The service handler of one upstream connection: spool → [`OutBuffer`] → [`Link`],
/// answers (RELP) back to the spool's commits. It closes on any error, and the supervisor
/// connects again.
struct Session {
    shared: Arc<Shared>,
    link: Box<dyn Link>,
    out: OutBuffer,
    proto: Proto,
    sup: Token,
    /// When the upstream last took bytes (or there was nothing to give it).
    progress: Instant,
    /// Why it closes (`None`: it finished).
    error: Option<io::Error>,
    /// The last read stopped before the socket was drained (bounded per upcall).
    unread: bool,
    /// When the connection was made (the handshake's deadline counts from it).
    opened: Instant,
    /// The supervisor still waits to hear that the handshake finished.
    announce: bool,
}

/// Bytes asked of the spool per batch.
const BATCH_BYTES: usize = 256 << 10;

impl Session {
    fn new(shared: Arc<Shared>, link: Box<dyn Link>, now: Instant) -> Box<Session> {
        let link_established = link.established();
        let mut out = OutBuffer::with_limit(BATCH_BYTES);
        let proto = match shared.opts.transport {
            Transport::Relp => {
                let mut wire = Vec::new();
                relp::encode(
                    &mut wire,
                    1,
                    Command::Open,
                    relp::offers(&crate::relp_listener::software()).as_bytes(),
                );
                out.push(&wire);
                let window = shared.opts.relp_window.max(1);
                Proto::Relp(Box::new(Relp {
                    dec: RelpDecoder::new(64 * 1024),
                    state: RelpState::Opening(now + shared.opts.ack_timeout),
                    txnr: 2,
                    table: TokenTable::with_limit(window),
                    flight: VecDeque::new(),
                    last_answer: now,
                    wire,
                }))
            }
            _ => Proto::Plain(None),
        };
        Box::new(Session {
            shared,
            link,
            out,
            proto,
            sup: Token::new(0, 0),
            progress: now,
            error: None,
            unread: false,
            opened: now,
            announce: !link_established,
        })
    }

    fn in_flight(&self) -> u64 {
        match &self.proto {
            Proto::Relp(r) => r.flight.len() as u64,
            Proto::Plain(_) => 0,
        }
    }

    /// Reads what the upstream sent: RELP answers into the decoder; a plain upstream sends
    /// nothing, so a readable socket there means end of stream (an orderly restart of the
    /// upstream, noticed before anything is written into the void) or an error.
    fn read_input(&mut self) -> io::Result<()> {
        let mut buf = [0u8; 16 * 1024];
        self.unread = true;
        for _ in 0..16 {
            match self.link.read(&mut buf) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the upstream closed the connection",
                    ));
                }
                Ok(n) => {
                    if let Proto::Relp(r) = &mut self.proto {
                        r.dec.extend(&buf[..n]);
                    }
                    if n < buf.len() {
                        self.unread = false;
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.unread = false;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Writes what is queued; true when nothing is left, in the buffer nor in the link (so
    /// that a batch is committed only once the socket took all of it).
    fn flush(&mut self, now: Instant) -> io::Result<bool> {
        let before = self.out.len();
        let empty = self.out.flush(&mut self.link)?;
        self.link.flush()?;
        let empty = empty && !self.link.wants_write();
        if empty || self.out.len() < before {
            self.progress = now;
        }
        Ok(empty)
    }

    /// One round; `Ok(true)` when there is more to send at once, `Ok(false)` when it waits
    /// (for the socket, answers or records). A finished session sets no error and closes.
    fn step(&mut self, now: Instant) -> io::Result<Option<bool>> {
        self.read_input()?;
        let flushed = self.flush(now)?;
        let draining = self.shared.stopping().is_some();
        let more = match &mut self.proto {
            Proto::Plain(sending) => {
                if !flushed {
                    return Ok(Some(false));
                }
                // Everything written: the kernel took it, the batch is committed.
                if let Some(p) = sending.take() {
                    commit(&self.shared, p)?;
                }
                let batch = self.shared.spool.lock().peek(512, BATCH_BYTES)?;
                if batch.records.is_empty() {
                    return Ok(if draining { None } else { Some(false) });
                }
                for r in &batch.records {
                    self.out.push(r);
                }
                *sending = Some(batch.position);
                return Ok(Some(true));
            }
            Proto::Relp(r) => r.step(&self.shared, &mut self.out, now, draining)?,
        };
        self.flush(now)?;
        Ok(more)
    }

    /// Checks the session's deadlines.
    fn check(&self, now: Instant) -> io::Result<Option<()>> {
        if !self.link.established() && now.saturating_duration_since(self.opened) >= WRITE_STALL {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the upstream did not finish the TLS handshake within {WRITE_STALL:?}"),
            ));
        }
        if (!self.out.is_empty() || self.link.wants_write())
            && now.saturating_duration_since(self.progress) >= WRITE_STALL
        {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the upstream took nothing for {WRITE_STALL:?}"),
            ));
        }
        let Proto::Relp(r) = &self.proto else {
            return Ok(Some(()));
        };
        match r.state {
            RelpState::Opening(until) if now >= until => {
                Err(io::Error::new(io::ErrorKind::TimedOut, "no answer to open"))
            }
            RelpState::Open
                if !r.flight.is_empty()
                    && now.saturating_duration_since(r.last_answer)
                        >= self.shared.opts.ack_timeout =>
            {
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "{} records unanswered for {:?}",
                        r.flight.len(),
                        self.shared.opts.ack_timeout
                    ),
                ))
            }
            RelpState::Closing(until) if now >= until => Ok(None),
            _ => Ok(Some(())),
        }
    }

    /// An upcall's work: a bounded number of rounds, then the interest the buffer needs.
    /// `io`: an I/O upcall, which may answer `Again`; another upcall with work left notifies
    /// itself instead.
    fn pump(&mut self, ctx: &mut dyn Context, io: bool, check: bool) -> Disposition {
        self.shared.wake_pending.store(false, Ordering::Release);
        if self.shared.must_end() {
            self.error = Some(io::ErrorKind::Interrupted.into());
            return Disposition::Close;
        }
        let now = ctx.now();
        let mut again = false;
        let mut result = Ok(Some(()));
        if check {
            result = self.check(now);
        }
        if matches!(result, Ok(Some(()))) {
            for _ in 0..8 {
                match self.step(now) {
                    Ok(Some(true)) => again = true,
                    Ok(Some(false)) => {
                        again = false;
                        break;
                    }
                    Ok(None) => {
                        result = Ok(None);
                        break;
                    }
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
            }
        }
        self.shared.counters.lock().relp_in_flight = self.in_flight();
        if self.announce && self.link.established() {
            self.announce = false;
            let _ = ctx.notify(self.sup, Box::new(Msg::Up));
        }
        match result {
            Ok(Some(())) => {}
            // Finished: drained at a stop.
            Ok(None) => return Disposition::Close,
            Err(e) => {
                self.error = Some(e);
                return Disposition::Close;
            }
        }
        let mut interest = Interest::READ;
        // Until the handshake finishes the link takes no record: only its own bytes wait
        // for writability (else a queued batch would spin on a writable socket).
        if (!self.out.is_empty() && self.link.established()) || self.link.wants_write() {
            interest |= Interest::WRITE;
        }
        if let Some(me) = ctx.current()
            && ctx.interest(me).is_ok_and(|i| i != interest)
        {
            let _ = ctx.set_interest(me, interest);
        }
        if (again && self.out.is_empty()) || self.unread {
            if io {
                return Disposition::Again;
            }
            if let Some(me) = ctx.current() {
                let _ = ctx.notify(me, Box::new(Msg::Wake));
            }
        }
        Disposition::Continue
    }
}

impl Relp {
    fn step(
        &mut self,
        shared: &Shared,
        out: &mut OutBuffer,
        now: Instant,
        draining: bool,
    ) -> io::Result<Option<bool>> {
        if let RelpState::Closing(_) = self.state {
            // Any answer to `close` (or the upstream's end) finishes the session.
            return Ok(match self.dec.next_frame() {
                Ok(Some(_)) | Err(_) => None,
                Ok(None) => Some(false),
            });
        }
        if let RelpState::Opening(_) = self.state {
            let Some(f) = self.dec.next_frame().map_err(|e| protocol(e.to_string()))? else {
                return Ok(Some(false));
            };
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
            self.state = RelpState::Open;
            self.last_answer = now;
        }
        if take_answers(shared, &mut self.dec, &mut self.table, &mut self.flight)? {
            self.last_answer = now;
        }
        commit_acked(shared, &mut self.flight)?;
        let window = shared.opts.relp_window.max(1);
        if self.flight.len() < window && out.is_empty() {
            let batch = shared.spool.lock().peek_after(
                self.flight.len() as u64,
                window - self.flight.len(),
                BATCH_BYTES,
            )?;
            if !batch.records.is_empty() {
                self.wire.clear();
                for (i, r) in batch.records.iter().enumerate() {
                    // Never full: the table holds at most the records in flight.
                    let Ok(token) = self.table.issue(batch.position_of(i)) else {
                        break;
                    };
                    relp::encode(
                        &mut self.wire,
                        self.txnr,
                        Command::Syslog,
                        relp::strip_octet_count(r),
                    );
                    self.flight.push_back(InFlight {
                        txnr: self.txnr,
                        token,
                        acked: None,
                    });
                    self.txnr = next_txnr(self.txnr);
                }
                if self.flight.len() == batch.records.len() {
                    self.last_answer = now;
                }
                out.push(&self.wire);
                return Ok(Some(true));
            }
        }
        if draining && self.flight.is_empty() && out.is_empty() && shared.spool.lock().is_empty() {
            // Nothing left: end the session politely (the answer is not waited for long).
            self.wire.clear();
            relp::encode(&mut self.wire, self.txnr, Command::Close, b"");
            out.push(&self.wire);
            self.state = RelpState::Closing(now + CLOSE_WAIT);
        }
        Ok(Some(false))
    }
}

/// Commits a delivered span of the spool and counts it.
fn commit(shared: &Shared, span: Position) -> io::Result<()> {
    let delivered = {
        let mut spool = shared.spool.lock();
        let d = spool.commit(span);
        // Room was made: paused readers may go on.
        shared
            .backlogged
            .store(spool.backlogged(), Ordering::Release);
        d
    }?;
    shared.counters.lock().forwarded += delivered;
    Ok(())
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
    match span {
        Some(span) => commit(shared, span),
        None => Ok(()),
    }
}

/// Registered for one connection's socket: holds the [`Session`] until it closes (or is
/// parked at the dispatcher's shutdown, to go on on the stop's reactor).
struct SessionHandler(Option<Box<Session>>);

impl SessionHandler {
    fn session(&mut self) -> &mut Session {
        self.0.as_mut().expect("live until closed")
    }
}

impl EventHandler for SessionHandler {
    fn handle(&self) -> Option<BorrowedFd<'_>> {
        self.0.as_ref().map(|s| s.link.fd())
    }

    fn handle_input(&mut self, ctx: &mut dyn Context) -> Disposition {
        self.session().pump(ctx, true, false)
    }

    fn handle_output(&mut self, ctx: &mut dyn Context) -> Disposition {
        self.session().pump(ctx, true, false)
    }

    fn handle_notify(&mut self, ctx: &mut dyn Context, _message: Message) -> Disposition {
        self.session().pump(ctx, false, false)
    }

    fn handle_timeout(
        &mut self,
        ctx: &mut dyn Context,
        _timer: TimerId,
        _act: &mut (dyn Any + Send),
    ) -> Disposition {
        self.session().pump(ctx, false, true)
    }

    fn handle_close(&mut self, ctx: &mut dyn Context, reason: CloseReason) {
        let Some(mut s) = self.0.take() else { return };
        let shared = s.shared.clone();
        if reason == CloseReason::Shutdown && shared.stopping().is_none() {
            shared.parked.lock().session = Some(s);
            return;
        }
        let error = match reason {
            CloseReason::Requested => s.error.take(),
            CloseReason::Panicked => Some(io::Error::other("the session panicked")),
            _ => Some(io::ErrorKind::Interrupted.into()),
        };
        {
            // What was unacknowledged stays in the spool and goes again on the next session.
            let mut counters = shared.counters.lock();
            counters.relp_resent += s.in_flight();
            counters.relp_in_flight = 0;
            counters.connected = false;
            if !s.link.established()
                && error
                    .as_ref()
                    .is_some_and(|e| e.kind() != io::ErrorKind::Interrupted)
            {
                counters.tls_handshake_failures += 1;
            }
        }
        let _ = ctx.notify(s.sup, Box::new(Msg::Ended(error)));
    }
}

/// Forwards records upstream as RFC 5424 messages with RFC 6587 octet counting over TCP
/// (which another `logd`, rsyslog and syslog-ng all accept), or over RELP, through a
/// [`Spool`], from handlers on the dispatcher, so that a slow or absent upstream never blocks
/// it. See the [module documentation](self).
#[derive(Debug)]
pub struct Forwarder {
    shared: Arc<Shared>,
    /// Records of the last batch the spool refused.
    unplaced: u64,
    stopped: bool,
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

    /// Reads the TLS files again (SIGHUP), when forwarding over TLS: the next connection
    /// uses them, the established one keeps its session; on an error the running
    /// configuration stays. `None`: forwarding in cleartext.
    pub fn reload_tls(&self) -> Option<Result<(), crate::tls::TlsError>> {
        self.0.tls.as_ref().map(ForwardTls::reload)
    }

    /// Ends a stop's drain now (a second SIGTERM): what is not delivered goes to the spool.
    /// Before a stop began it also makes the sender give up for good.
    pub fn stop_now(&self) {
        self.0.abort();
    }

    /// Registers the forwarder's supervisor with `dispatcher` (before it runs, or from any
    /// thread while it runs): from then on it connects and sends there, until the dispatcher
    /// shuts down; the stop ([`RecordSink::flush`]) drains the rest.
    pub fn attach(&self, dispatcher: &mut dyn Dispatcher) -> Result<(), DispatchError> {
        let token = dispatcher.register(
            Box::new(Supervisor::new(self.0.clone(), None, false)),
            Interest::NONE,
        )?;
        let remote = dispatcher.remote();
        remote.post(Box::new(move |ctx| {
            // Looks now (the spool of an earlier run replays) and every LOOK, whatever happens.
            let _ = ctx.schedule_timer(token, LOOK, Some(LOOK), Box::new(Look));
            let _ = ctx.notify(token, Box::new(Msg::Wake));
        }))?;
        *self.0.target.lock() = Some((remote, token));
        Ok(())
    }
}

impl Forwarder {
    /// Opens the spool (`opts.spool_dir`, else `default_spool_dir`), which replays what an
    /// earlier run left there first; sending starts once the handle is
    /// [attached](ForwardHandle::attach) to a dispatcher.
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
        let tls = match &opts.tls {
            Some(o) => Some(ForwardTls::new(o.clone(), upstream).map_err(|e| {
                io::Error::new(io::ErrorKind::InvalidInput, format!("--forward-tls: {e}"))
            })?),
            None => None,
        };
        let link: LinkMaker = match &tls {
            Some(t) => t.link_maker(),
            None => Arc::new(plain_link),
        };
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
            counters: Mutex::new(Counters::default()),
            deadline: Mutex::new(None),
            abort: AtomicBool::new(false),
            wake_pending: AtomicBool::new(false),
            target: Mutex::new(None),
            parked: Mutex::new(Parked::default()),
            link: Mutex::new(link),
            tls,
        });
        Ok(Forwarder {
            shared,
            unplaced: 0,
            stopped: false,
        })
    }

    /// The counters so far.
    pub fn stats(&self) -> ForwardStats {
        self.shared.stats()
    }

    /// Puts `make` between each new connection's socket and its session (a TLS layer, say);
    /// connections made from then on use it.
    pub fn set_link(&self, make: LinkMaker) {
        *self.shared.link.lock() = make;
    }

    /// A handle for reading the counters, attaching and stopping at once, from elsewhere.
    pub fn handle(&self) -> ForwardHandle {
        ForwardHandle(self.shared.clone())
    }

    /// The stop's drain: the supervisor (and the session the dispatcher's shutdown parked)
    /// go on on a reactor of its own on this thread, until nothing is left, the deadline, or
    /// [`ForwardHandle::stop_now`].
    fn drain(&self, deadline: Instant) -> io::Result<()> {
        let parked = std::mem::take(&mut *self.shared.parked.lock());
        let mut reactor = reactor::Reactor::new()?;
        let sup = Supervisor::new(self.shared.clone(), parked.outage, true);
        let token = Dispatcher::register(&mut reactor, Box::new(sup), Interest::NONE)
            .map_err(|e| io::Error::other(e.to_string()))?;
        let remote = Dispatcher::remote(&reactor);
        let first = match parked.session {
            Some(s) => Msg::Adopt(s),
            None => Msg::Wake,
        };
        let left = deadline.saturating_duration_since(Instant::now());
        remote
            .post(Box::new(move |ctx| {
                let _ = ctx.schedule_timer(token, left, None, Box::new(Deadline));
                let _ = ctx.schedule_timer(token, LOOK, Some(LOOK), Box::new(Look));
                let _ = ctx.notify(token, Box::new(first));
            }))
            .map_err(|e| io::Error::other(e.to_string()))?;
        *self.shared.target.lock() = Some((remote, token));
        // A second signal that came before the reactor was reachable.
        if self.shared.must_end() {
            return Ok(());
        }
        Dispatcher::run(&mut reactor)
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
        drop(spool);
        self.shared.wake();
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
        self.shared.stats().put_in(stats);
    }

    /// The graceful stop, once the dispatcher has ended: sends for at most the stop timeout
    /// (less after [`ForwardHandle::stop_now`]) on a reactor of its own, then writes what is
    /// left to the spool on disk.
    fn flush(&mut self) -> io::Result<()> {
        if std::mem::replace(&mut self.stopped, true) {
            return Ok(());
        }
        let deadline = Instant::now() + self.shared.opts.stop_timeout;
        *self.shared.deadline.lock() = Some(deadline);
        let drained = self.drain(deadline);
        *self.shared.target.lock() = None;
        if let Err(e) = drained {
            tracing::warn!("forwarding: the stop's drain failed: {e}");
        }
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

    /// A layer put between the socket and the session ([`Forwarder::set_link`], where TLS
    /// goes) carries every byte the session sends; the forwarder runs as handlers on a
    /// dispatcher it is attached to, and the stop drains it on a reactor of its own.
    #[test]
    fn a_link_layer_carries_every_byte_the_session_sends() {
        use std::sync::atomic::AtomicUsize;
        struct Counting {
            inner: SockStream,
            written: Arc<AtomicUsize>,
        }
        impl Read for Counting {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                self.inner.read(buf)
            }
        }
        impl Write for Counting {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                let n = self.inner.write(buf)?;
                self.written.fetch_add(n, Ordering::SeqCst);
                Ok(n)
            }
            fn flush(&mut self) -> io::Result<()> {
                self.inner.flush()
            }
        }
        impl Link for Counting {
            fn fd(&self) -> BorrowedFd<'_> {
                self.inner.as_fd()
            }
        }

        let up = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dir = std::env::temp_dir().join(format!("logd-forward-link-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut f = Forwarder::start(
            up.local_addr().unwrap(),
            &ForwardOptions::default(),
            dir.clone(),
        )
        .unwrap();
        let written = Arc::new(AtomicUsize::new(0));
        let w = written.clone();
        f.set_link(Arc::new(move |inner| {
            Ok(Box::new(Counting {
                inner,
                written: w.clone(),
            }))
        }));
        let mut dispatcher = reactor::Reactor::new().unwrap();
        f.handle().attach(&mut dispatcher).unwrap();
        let remote = Dispatcher::remote(&dispatcher);
        let running = std::thread::spawn(move || Dispatcher::run(&mut dispatcher));

        let m = parse(b"<14>1 2026-01-01T00:00:00Z h app 1 - - through the layer").unwrap();
        let mut batch = RecordBatch::new();
        batch.push_syslog(&m, "10.0.0.1");
        let expected = encode_rfc5424(&batch.get(0).unwrap());
        f.write_batch(&batch).unwrap();
        let (mut conn, _) = up.accept().unwrap();
        let mut got = vec![0u8; expected.len()];
        conn.read_exact(&mut got).unwrap();
        assert_eq!(got, expected);

        remote.end();
        running.join().unwrap().unwrap();
        f.flush().unwrap();
        assert_eq!(written.load(Ordering::SeqCst), expected.len());
        let stats = f.stats();
        assert_eq!((stats.forwarded, stats.queued), (1, 0), "{stats:?}");
        std::fs::remove_dir_all(&dir).unwrap();
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
