//! The service handlers: an Acceptor per TCP format, a connection handler per client, a UDP
//! handler, and [`Logd`], which wires them to a dispatcher of the configured concurrency model.

use std::any::Any;
use std::io::{self, Read};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use component_configurator::{Configurator, Report};
use leader_followers::Concurrency;
use pattern_core::{Context, Disposition, EventHandler, Interest, Remote, TimerId, Token};
use reactor::ServiceFactory;
use reactor::SockStream as TcpStream;
use wrapper_facade::SockDgram;

use crate::ace::AceDecoder;
use crate::error::{Error, FrameError};
use crate::forward::{ForwardHandle, ForwardOptions, Forwarder};
use crate::intercept;
use crate::limits::{self, BufferBudget};
use crate::record::RecordBatch;
use crate::services::{self, ServiceEnv};
use crate::store::{Durability, FileStore, InputCounts, Output, RecordSink, Stats, StoreConfig};
use crate::syslog::{self, SyslogFramer};

/// How bytes on a connection become records (the framing strategy).
pub trait Framing: Send + 'static {
    /// Feeds bytes read from the connection; decoded records are appended to `out`.
    /// Malformed frames that the stream can skip are counted in `rejected`; an error means
    /// the stream cannot be resynchronised and the connection must close.
    fn feed(
        &mut self,
        bytes: &[u8],
        peer: &str,
        out: &mut RecordBatch,
        rejected: &mut u64,
    ) -> Result<(), FrameError>;

    /// At end of stream: a last record that needs no terminator.
    fn finish(&mut self, _peer: &str, _out: &mut RecordBatch, _rejected: &mut u64) {}

    /// Counts a record of this framing's format.
    fn count(stats: &mut Stats, n: u64);

    /// The per-input counters of this framing's input.
    fn input(stats: &mut Stats) -> &mut InputCounts;

    /// Bytes held that do not yet form a whole frame (what the global budget accounts for).
    fn buffered(&self) -> usize;
}

/// ACE's logging protocol.
#[derive(Debug)]
pub struct AceFraming(AceDecoder);

impl AceFraming {
    /// Frames of at most `max_payload` bytes.
    pub fn new(max_payload: usize) -> Self {
        AceFraming(AceDecoder::new(max_payload))
    }
}

impl Framing for AceFraming {
    fn feed(
        &mut self,
        bytes: &[u8],
        peer: &str,
        out: &mut RecordBatch,
        rejected: &mut u64,
    ) -> Result<(), FrameError> {
        self.0.extend(bytes);
        loop {
            match self.0.next_view() {
                Ok(Some(r)) => out.push_ace(&r, peer),
                Ok(None) => return Ok(()),
                // A bad payload was consumed: go on with the next frame.
                Err(e @ (FrameError::Malformed(_) | FrameError::Truncated { .. })) => {
                    tracing::warn!(%peer, error = %e, "ACE record refused");
                    *rejected += 1;
                }
                // A bad header: no way to find the next frame.
                Err(e) => return Err(e),
            }
        }
    }

    fn count(stats: &mut Stats, n: u64) {
        stats.ace += n;
    }

    fn input(stats: &mut Stats) -> &mut InputCounts {
        &mut stats.ace_input
    }

    fn buffered(&self) -> usize {
        self.0.buffered()
    }
}

/// Syslog over TCP, RFC 6587 octet counting or newline framing.
#[derive(Debug)]
pub struct SyslogFraming(SyslogFramer);

impl SyslogFraming {
    /// Messages of at most `max_len` bytes.
    pub fn new(max_len: usize) -> Self {
        SyslogFraming(SyslogFramer::new(max_len))
    }
}

fn push_syslog(raw: &[u8], peer: &str, out: &mut RecordBatch, rejected: &mut u64) {
    match syslog::parse(raw) {
        Ok(m) => out.push_syslog(&m, peer),
        Err(e) => {
            tracing::warn!(%peer, error = %e, "syslog message refused");
            *rejected += 1;
        }
    }
}

impl Framing for SyslogFraming {
    fn feed(
        &mut self,
        bytes: &[u8],
        peer: &str,
        out: &mut RecordBatch,
        rejected: &mut u64,
    ) -> Result<(), FrameError> {
        self.0.extend(bytes);
        loop {
            match self.0.next_message() {
                Ok(Some(raw)) => push_syslog(raw, peer, out, rejected),
                Ok(None) => return Ok(()),
                // No frame boundary left to find: the connection must close.
                Err(e @ FrameError::OversizedCount { .. }) => return Err(e),
                Err(e) => {
                    tracing::warn!(%peer, error = %e, "syslog frame refused");
                    *rejected += 1;
                }
            }
        }
    }

    fn finish(&mut self, peer: &str, out: &mut RecordBatch, rejected: &mut u64) {
        if let Some(raw) = self.0.finish() {
            push_syslog(&raw, peer, out, rejected);
        }
    }

    fn count(stats: &mut Stats, n: u64) {
        stats.syslog += n;
    }

    fn input(stats: &mut Stats) -> &mut InputCounts {
        &mut stats.syslog_tcp_input
    }

    fn buffered(&self) -> usize {
        self.0.buffered()
    }
}

/// Bytes read per upcall before yielding to other connections.
pub(crate) const READ_BUDGET: usize = 256 * 1024;

/// How often a connection paused by a backlogged output looks again.
const BACKLOG_RECHECK: Duration = Duration::from_millis(20);

/// The ACT of a paused connection's re-check timer (its idle timer carries `()`).
#[derive(Debug)]
struct BacklogCheck;

/// Suspends the current handler when the output is backlogged, counts the pause and
/// schedules the re-check; `true` when paused: the upcall answers `Again` and leaves the
/// data in the socket buffer, so that TCP slows the sender down (the resume delivers the
/// kept readiness).
pub(crate) fn pause_if_backlogged(output: &Output, ctx: &mut dyn Context) -> bool {
    if output.backlogged()
        && let Some(me) = ctx.current()
        && ctx.suspend(me).is_ok()
    {
        output.count(|s| s.pauses += 1);
        let _ = ctx.schedule_timer(me, BACKLOG_RECHECK, None, Box::new(BacklogCheck));
        return true;
    }
    false
}

/// A paused handler's timer: `None` when `act` is not the re-check; else resumes the handler
/// once the output is no longer backlogged (or checks again later) and says whether it is
/// still paused.
pub(crate) fn backlog_recheck(
    output: &Output,
    ctx: &mut dyn Context,
    act: &(dyn Any + Send),
) -> Option<bool> {
    if !act.is::<BacklogCheck>() {
        return None;
    }
    let Some(me) = ctx.current() else {
        return Some(true);
    };
    if output.backlogged() {
        let _ = ctx.schedule_timer(me, BACKLOG_RECHECK, None, Box::new(BacklogCheck));
        Some(true)
    } else {
        let _ = ctx.resume(me);
        Some(false)
    }
}

/// Brings a connection's reservation (`reserved`) in line with the bytes its decoder holds;
/// false when growing it would pass the global cap (the reservation is then left as it was).
pub(crate) fn reserve(budget: &BufferBudget, reserved: &mut usize, held: usize) -> bool {
    if held > *reserved {
        if !budget.try_grow(held - *reserved) {
            return false;
        }
    } else {
        budget.shrink(*reserved - held);
    }
    *reserved = held;
    true
}

/// One client connection: reads, decodes with its framing, writes each batch to the output
/// before the upcall returns (so a graceful stop loses nothing that was read), and closes
/// itself when no complete frame arrived for the idle timeout.
///
/// The idle clock restarts on a complete frame, not on any byte, so a client trickling a
/// frame it never finishes (slowloris) is closed too; the bytes its unfinished frame holds
/// are reserved from the server-wide [`BufferBudget`], and a connection that would pass it
/// is closed.
pub struct Connection<F> {
    stream: TcpStream,
    peer: String,
    framing: F,
    output: Arc<Output>,
    idle: Duration,
    /// When the last complete frame (a record or a refused message) arrived.
    last_progress: Option<Instant>,
    batch: RecordBatch,
    /// Reading stopped because the output is backlogged (the data waits in the kernel).
    paused: bool,
    budget: Arc<BufferBudget>,
    /// Bytes reserved from `budget` for the unfinished frame.
    held: usize,
}

impl<F> std::fmt::Debug for Connection<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("peer", &self.peer)
            .finish()
    }
}

/// Copies the budget's gauge into the counters (under the counters' lock, so the last
/// writer always stores the latest value).
pub(crate) fn note_buffered(s: &mut Stats, budget: &BufferBudget) {
    s.buffered_bytes = budget.used() as u64;
    s.buffered_peak = budget.peak() as u64;
}

/// Why a connection is being closed by its own decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closing {
    No,
    Oversized,
    OverBudget,
}

impl<F: Framing> Connection<F> {
    /// Writes the batch and counts it; `unfinished` when the connection closes with a
    /// partial frame that will never be completed.
    fn flush_batch(&mut self, rejected: u64, closing: Closing, unfinished: bool) {
        let n = self.batch.len() as u64;
        if let Err(e) = self.output.write(&self.batch) {
            tracing::error!(peer = %self.peer, records = n, error = %e, "storing records failed");
        }
        self.batch.clear();
        let budget = &self.budget;
        self.output.count(|s| {
            F::count(s, n);
            s.rejected += rejected;
            let oversized = u64::from(closing == Closing::Oversized);
            let unfinished = u64::from(unfinished);
            match closing {
                Closing::No => {}
                Closing::Oversized => s.oversized_closed += 1,
                Closing::OverBudget => s.buffer_cap_closed += 1,
            }
            // The frame that closed the connection for its size is `oversized`, not `malformed`.
            let input = F::input(s);
            input.records += n;
            input.rejected += rejected - oversized;
            input.oversized += oversized;
            input.unfinished += unfinished;
            input.read += n + rejected + unfinished;
            note_buffered(s, budget);
        });
    }

    fn reserve(&mut self) -> bool {
        reserve(&self.budget, &mut self.held, self.framing.buffered())
    }
}

impl<F> Drop for Connection<F> {
    fn drop(&mut self) {
        // Interception point "connection closed".
        self.output.chain().connection_closed(&self.peer);
        if self.held > 0 {
            self.budget.shrink(std::mem::take(&mut self.held));
            let budget = &self.budget;
            self.output.count(|s| note_buffered(s, budget));
        }
    }
}

impl<F: Framing> EventHandler for Connection<F> {
    fn handle(&self) -> Option<BorrowedFd<'_>> {
        Some(self.stream.as_fd())
    }

    fn handle_input(&mut self, ctx: &mut dyn Context) -> Disposition {
        if pause_if_backlogged(&self.output, ctx) {
            self.paused = true;
            return Disposition::Again;
        }
        let mut buf = [0u8; 64 * 1024];
        let mut budget = READ_BUDGET;
        let mut rejected = 0;
        let mut closing = Closing::No;
        // A frame the decoder could not get past: counted in `rejected` (or as oversized).
        let mut broken = false;
        let disposition = loop {
            if budget == 0 {
                break Disposition::Again;
            }
            match self.stream.read(&mut buf) {
                Ok(0) => {
                    self.framing
                        .finish(&self.peer, &mut self.batch, &mut rejected);
                    break Disposition::Close;
                }
                Ok(n) => {
                    budget = budget.saturating_sub(n);
                    let short = n < buf.len();
                    if let Err(e) =
                        self.framing
                            .feed(&buf[..n], &self.peer, &mut self.batch, &mut rejected)
                    {
                        tracing::warn!(peer = %self.peer, error = %e, "closing: the stream cannot be resynchronised");
                        rejected += 1;
                        broken = true;
                        if matches!(
                            e,
                            FrameError::TooLarge { .. } | FrameError::OversizedCount { .. }
                        ) {
                            closing = Closing::Oversized;
                        }
                        break Disposition::Close;
                    }
                    if !self.reserve() {
                        tracing::warn!(
                            peer = %self.peer,
                            held = self.framing.buffered(),
                            cap = self.budget.cap(),
                            "closing: unfinished frames of all connections would pass --max-buffered"
                        );
                        closing = Closing::OverBudget;
                        break Disposition::Close;
                    }
                    if short {
                        // Drained for now (the contract's short read); if the client closed
                        // too, the dispatcher upcalls input once more to read end of stream.
                        break Disposition::Continue;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Disposition::Continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    tracing::debug!(peer = %self.peer, error = %e, "read failed");
                    break Disposition::Close;
                }
            }
        };
        if !self.batch.is_empty() || rejected > 0 {
            self.last_progress = Some(ctx.now());
        }
        // A partial frame left at a close is lost: counted (unless it is the bad frame that
        // closed the connection, already counted as malformed or oversized).
        let unfinished =
            disposition == Disposition::Close && !broken && self.framing.buffered() > 0;
        self.flush_batch(rejected, closing, unfinished);
        disposition
    }

    fn handle_timeout(
        &mut self,
        ctx: &mut dyn Context,
        _timer: TimerId,
        act: &mut (dyn Any + Send),
    ) -> Disposition {
        let now = ctx.now();
        if let Some(paused) = backlog_recheck(&self.output, ctx, act) {
            // A paused connection is not idle: its client is waiting for us.
            self.last_progress = Some(now);
            self.paused = paused;
            return Disposition::Continue;
        }
        if self.paused {
            return Disposition::Continue;
        }
        let last = *self.last_progress.get_or_insert(now);
        if now.saturating_duration_since(last) >= self.idle {
            let partial = self.framing.buffered();
            if partial > 0 {
                tracing::warn!(peer = %self.peer, partial, idle = ?self.idle, "closing: a frame left unfinished past the idle timeout");
                self.output.count(|s| {
                    s.idle_partial += 1;
                    let input = F::input(s);
                    input.read += 1;
                    input.unfinished += 1;
                });
            } else {
                tracing::info!(peer = %self.peer, "closing idle connection");
                self.output.count(|s| s.idle_closed += 1);
            }
            return Disposition::Close;
        }
        Disposition::Continue
    }
}

/// Makes a [`Connection`] per accepted client and starts its idle timer.
pub struct ConnectionFactory<F> {
    make: fn(usize) -> F,
    max_frame: usize,
    output: Arc<Output>,
    idle: Duration,
    budget: Arc<BufferBudget>,
}

impl<F> std::fmt::Debug for ConnectionFactory<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionFactory")
            .field("idle", &self.idle)
            .finish()
    }
}

impl<F: Framing> ConnectionFactory<F> {
    /// Connections framed by `make(max_frame)`, writing to `output`, closed after `idle`
    /// without a complete frame, their unfinished frames reserved from `budget`.
    pub fn new(
        make: fn(usize) -> F,
        max_frame: usize,
        output: Arc<Output>,
        idle: Duration,
        budget: Arc<BufferBudget>,
    ) -> Self {
        ConnectionFactory {
            make,
            max_frame,
            output,
            idle,
            budget,
        }
    }
}

impl<F: Framing> ServiceFactory for ConnectionFactory<F> {
    fn make_service(
        &mut self,
        stream: TcpStream,
        peer: SocketAddr,
    ) -> Option<(Box<dyn EventHandler>, Interest)> {
        let _ = stream.set_nodelay(true);
        self.output.count(|s| s.connections += 1);
        let peer = peer.ip().to_string();
        // Interception point "connection opened": a veto closes it before any read.
        if !self.output.chain().connection_opened(&peer) {
            return None;
        }
        let conn = Connection {
            stream,
            peer,
            framing: (self.make)(self.max_frame),
            output: self.output.clone(),
            idle: self.idle,
            last_progress: None,
            batch: RecordBatch::new(),
            paused: false,
            budget: self.budget.clone(),
            held: 0,
        };
        Some((Box::new(conn), Interest::READ))
    }

    fn opened(&mut self, ctx: &mut dyn Context, token: Token) {
        if !self.idle.is_zero() {
            // Checked every interval; a connection is closed within two intervals of going quiet.
            let _ = ctx.schedule_timer(token, self.idle, Some(self.idle), Box::new(()));
        }
    }
}

/// Syslog over UDP: one datagram, one message; a datagram over `max_frame` is dropped and
/// counted (`udp_oversized`), and so are the datagrams the kernel dropped because the socket's
/// receive buffer was full (`udp_kernel_drops`, from the counter `SO_RXQ_OVFL` attaches).
pub struct SyslogUdp {
    socket: SockDgram,
    output: Arc<Output>,
    max_frame: usize,
    batch: RecordBatch,
    /// The receive buffer, kept across upcalls (a datagram is at most 64 KiB).
    buf: Vec<u8>,
    /// The last sender and its address as text, so that a run of datagrams from one sender
    /// formats the address once.
    last_peer: Option<(IpAddr, String)>,
    /// The kernel's drop counter as last seen: the socket's total since it was opened.
    kernel_drops: u32,
}

impl std::fmt::Debug for SyslogUdp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyslogUdp")
            .field("socket", &self.socket)
            .finish()
    }
}

impl SyslogUdp {
    /// Receives on `socket` (nonblocking), writing to `output`, messages of at most
    /// `max_frame` bytes; turns on the kernel's drop counter (`SO_RXQ_OVFL`).
    pub fn new(socket: SockDgram, output: Arc<Output>, max_frame: usize) -> io::Result<Self> {
        socket.set_drop_counting(true)?;
        Ok(SyslogUdp {
            socket,
            output,
            max_frame,
            batch: RecordBatch::new(),
            buf: vec![0u8; 65_536],
            last_peer: None,
            kernel_drops: 0,
        })
    }
}

impl EventHandler for SyslogUdp {
    fn handle(&self) -> Option<BorrowedFd<'_>> {
        Some(self.socket.as_fd())
    }

    fn handle_input(&mut self, _ctx: &mut dyn Context) -> Disposition {
        let mut rejected = 0;
        let mut oversized = 0;
        let mut datagrams = 0;
        let mut disposition = Disposition::Again;
        let seen = self.kernel_drops;
        for _ in 0..1024 {
            match self.socket.recv_counting_drops(&mut self.buf) {
                Ok(r) => {
                    datagrams += 1;
                    // The counter only grows while the socket lives (it wraps at 2^32).
                    if let Some(d) = r.drops
                        && d.wrapping_sub(self.kernel_drops) < u32::MAX / 2
                    {
                        self.kernel_drops = d;
                    }
                    let peer = r.from.ip();
                    // The buffer holds any UDP payload (at most 65,507 bytes), so `len` is
                    // the datagram's real size.
                    if r.len > self.max_frame || r.truncated {
                        tracing::warn!(%peer, len = r.len, max = self.max_frame, "UDP datagram over --max-frame dropped");
                        oversized += 1;
                        continue;
                    }
                    if self
                        .last_peer
                        .as_ref()
                        .is_none_or(|(last, _)| *last != peer)
                    {
                        self.last_peer = Some((peer, peer.to_string()));
                    }
                    let (_, text) = self.last_peer.as_ref().expect("just set");
                    push_syslog(&self.buf[..r.len], text, &mut self.batch, &mut rejected);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    disposition = Disposition::Continue;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    tracing::warn!(error = %e, "UDP receive failed");
                    disposition = Disposition::Continue;
                    break;
                }
            }
        }
        let kernel_drops = u64::from(self.kernel_drops.wrapping_sub(seen));
        if kernel_drops > 0 {
            tracing::warn!(
                dropped = kernel_drops,
                total = self.kernel_drops,
                "the kernel dropped syslog UDP datagrams: the receive buffer was full (see --udp-rcvbuf)"
            );
        }
        let n = self.batch.len() as u64;
        if let Err(e) = self.output.write(&self.batch) {
            tracing::error!(records = n, error = %e, "storing records failed (UDP)");
        }
        self.batch.clear();
        self.output.count(|s| {
            s.syslog += n;
            s.syslog_udp += n;
            s.rejected += rejected;
            s.udp_oversized += oversized;
            let input = &mut s.syslog_udp_input;
            input.read += datagrams;
            input.records += n;
            input.rejected += rejected;
            input.oversized += oversized;
            s.udp_kernel_drops += kernel_drops;
        });
        disposition
    }
}

/// What `logd` runs: listeners, storage, concurrency model.
#[derive(Debug, Clone)]
pub struct LogdConfig {
    /// Address to listen on.
    pub bind: IpAddr,
    /// ACE logging port (`None`: no ACE listener). Port 0 picks a free one.
    /// Ignored when `svc_conf` is given.
    pub ace_port: Option<u16>,
    /// Syslog port, TCP and UDP (`None`: no syslog listeners). Ignored when `svc_conf` is given.
    pub syslog_port: Option<u16>,
    /// RELP port (`None`: no RELP listener, the default). Ignored when `svc_conf` is given.
    pub relp_port: Option<u16>,
    /// A svc.conf configuring the services (see [`crate::services`] for the directives).
    pub svc_conf: Option<PathBuf>,
    /// Storage.
    pub store: StoreConfig,
    /// The dispatcher.
    pub concurrency: Concurrency,
    /// `--concurrency proactor`: the TCP listeners' ingest on the proactor (io_uring), the
    /// rest on the reactor (`concurrency` must then be the reactor). Where io_uring is missing
    /// or refused, logd falls back to the reactor with a warning ([`Logd::proactor`] tells).
    pub proactor: bool,
    /// Upstream to forward every record to.
    pub forward: Option<SocketAddr>,
    /// How forwarding queues, spools, reconnects and stops.
    pub forwarding: ForwardOptions,
    /// Close connections idle this long (zero: never).
    pub idle: Duration,
    /// Largest frame or message accepted (1 to [`limits::MAX_FRAME_LIMIT`]).
    pub max_frame: usize,
    /// Bytes all connections together may hold in unfinished frames (at least `max_frame`).
    pub max_buffered: usize,
    /// The listen backlog of the TCP listeners (1 to [`limits::MAX_BACKLOG`]).
    pub backlog: i32,
    /// Where to serve Prometheus metrics over HTTP (`GET /metrics`); port 0 picks one.
    pub metrics: Option<SocketAddr>,
    /// `SO_RCVBUF` of the syslog UDP socket (`None`: the kernel's default).
    pub udp_rcvbuf: Option<usize>,
    /// Who may have written the plugins of `dynamic` directives (`--insecure-plugins`).
    pub plugin_trust: component_configurator::PluginTrust,
    /// Sockets bound before start (socket activation, or bound as root before `--user`),
    /// which listeners on their addresses use instead of binding.
    pub sockets: services::SocketPool,
    /// The arguments of a `ClickHouse` directive (`--clickhouse`; see [`crate::clickhouse`]),
    /// added to the port options' directives.
    pub clickhouse: Option<String>,
}

impl Default for LogdConfig {
    fn default() -> Self {
        LogdConfig {
            bind: IpAddr::from([127, 0, 0, 1]),
            ace_port: Some(20009),
            syslog_port: Some(20514),
            relp_port: None,
            svc_conf: None,
            store: StoreConfig::new("logd-data"),
            concurrency: Concurrency::Reactor,
            proactor: false,
            forward: None,
            forwarding: ForwardOptions::default(),
            idle: Duration::from_secs(300),
            max_frame: 64 * 1024,
            max_buffered: limits::DEFAULT_MAX_BUFFERED,
            backlog: limits::default_backlog(),
            metrics: None,
            udp_rcvbuf: None,
            plugin_trust: component_configurator::PluginTrust::Strict,
            sockets: services::SocketPool::default(),
            clickhouse: None,
        }
    }
}

impl LogdConfig {
    /// Checks every numeric setting against its range ([`limits`]), so that nothing out of
    /// range reaches the dispatcher (an idle timeout of `u64::MAX` seconds used to overflow
    /// the first timer and close the acceptor).
    pub fn validate(&self) -> Result<(), Error> {
        let fail = |m: String| Err(Error::Usage(m));
        if self.idle > limits::MAX_IDLE {
            return fail(format!(
                "idle timeout {}s is out of range (0 to {}s)",
                self.idle.as_secs(),
                limits::MAX_IDLE.as_secs()
            ));
        }
        if !(1..=limits::MAX_FRAME_LIMIT).contains(&self.max_frame) {
            return fail(format!(
                "max frame {} is out of range (1 to {})",
                self.max_frame,
                limits::MAX_FRAME_LIMIT
            ));
        }
        if self.max_buffered < self.max_frame
            || self.max_buffered as u64 > limits::MAX_BUFFERED_LIMIT
        {
            return fail(format!(
                "max buffered {} is out of range (the max frame {} to {})",
                self.max_buffered,
                self.max_frame,
                limits::MAX_BUFFERED_LIMIT
            ));
        }
        if !(1..=limits::MAX_BACKLOG).contains(&self.backlog) {
            return fail(format!(
                "backlog {} is out of range (1 to {})",
                self.backlog,
                limits::MAX_BACKLOG
            ));
        }
        if self.proactor && self.concurrency != Concurrency::Reactor {
            return fail(format!(
                "the proactor runs beside the reactor, not {}",
                self.concurrency
            ));
        }
        let threads = match self.concurrency {
            Concurrency::LeaderFollowers { threads }
            | Concurrency::HalfSyncHalfAsync { threads, .. } => threads,
            _ => 1,
        };
        if !(1..=limits::MAX_THREADS).contains(&threads) {
            return fail(format!(
                "{threads} threads is out of range (1 to {})",
                limits::MAX_THREADS
            ));
        }
        Ok(())
    }

    /// The svc.conf equivalent of the port options: what runs without `-f`.
    pub fn default_directives(&self) -> String {
        let mut d = String::new();
        if let Some(p) = self.ace_port {
            d.push_str(&format!("static {} \"-p {p}\"\n", services::ACE_LOGGING));
        }
        if let Some(p) = self.syslog_port {
            d.push_str(&format!("static {} \"-p {p}\"\n", services::SYSLOG_LOGGING));
        }
        if let Some(p) = self.relp_port {
            d.push_str(&format!("static {} \"-p {p}\"\n", services::RELP_LOGGING));
        }
        if let Some(args) = &self.clickhouse {
            d.push_str(&format!(
                "static {} \"{args}\"\n",
                crate::clickhouse::CLICKHOUSE
            ));
        }
        d
    }
}

/// Binds, while the process is still privileged, every fixed address the configuration's
/// listeners will use that `already` lacks (for `logd --user`: bind port 514, then drop
/// root before any input is read). The sockets go into [`LogdConfig::sockets`].
pub fn bind_ahead(
    cfg: &LogdConfig,
    already: &[wrapper_facade::activation::InheritedSocket],
) -> Result<Vec<wrapper_facade::activation::InheritedSocket>, Error> {
    use wrapper_facade::activation::{InheritedSocket, SocketKind};
    use wrapper_facade::{AcceptorOptions, InetAddr, SockAcceptor, SockDgram};
    let (source, text) = match &cfg.svc_conf {
        Some(path) => (
            path.display().to_string(),
            std::fs::read_to_string(path).map_err(Error::io("cannot read the svc.conf"))?,
        ),
        None => ("options".to_owned(), cfg.default_directives()),
    };
    let mut out = Vec::new();
    for (kind, local) in services::planned_listeners(&source, &text, cfg.bind) {
        if already
            .iter()
            .any(|s| s.kind == kind && s.local.port() == local.port())
        {
            continue;
        }
        let bound = match kind {
            SocketKind::Stream => {
                let opts = AcceptorOptions::default()
                    .backlog(cfg.backlog)
                    .nonblocking(true)
                    .reuse_addr(true);
                SockAcceptor::open(&InetAddr::from(local), &opts).map(std::os::fd::OwnedFd::from)
            }
            SocketKind::Datagram => {
                SockDgram::bind(&InetAddr::from(local)).map(std::os::fd::OwnedFd::from)
            }
        };
        let fd = bound.map_err(|e| Error::Io {
            what: "cannot bind a listener before dropping privileges",
            source: std::io::Error::new(e.kind(), format!("{local}: {e}")),
        })?;
        out.push(InheritedSocket {
            fd,
            kind,
            local,
            name: None,
        });
    }
    Ok(out)
}

/// The addresses `logd` listens on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Listening {
    /// ACE over TCP.
    pub ace: Option<SocketAddr>,
    /// Syslog over TCP.
    pub syslog_tcp: Option<SocketAddr>,
    /// Syslog over UDP.
    pub syslog_udp: Option<SocketAddr>,
    /// RELP over TCP.
    pub relp: Option<SocketAddr>,
    /// Prometheus metrics over HTTP.
    pub metrics: Option<SocketAddr>,
}

/// The logging server: a dispatcher running on a thread of its own, services configured
/// on it by a [`Configurator`], records going to an [`Output`].
pub struct Logd {
    env: ServiceEnv,
    configurator: Configurator,
    thread: Option<JoinHandle<io::Result<()>>>,
    data_dir: PathBuf,
    forwarder: Option<ForwardHandle>,
}

/// `--concurrency proactor`: the ingest on io_uring, or `None` after a warning where io_uring
/// is missing or refused (the reactor then serves the listeners).
fn start_proactor(cfg: &LogdConfig, output: &Arc<Output>) -> Option<Arc<crate::proactive::Ingest>> {
    if !cfg.proactor {
        return None;
    }
    let budget = Arc::new(BufferBudget::new(cfg.max_buffered));
    match crate::proactive::Ingest::start(output.clone(), budget, cfg.max_frame, cfg.idle) {
        Ok(ingest) => Some(Arc::new(ingest)),
        Err(e) => {
            tracing::warn!(
                "--concurrency proactor: {}; falling back to the reactor",
                pattern_core::ErrorChain(&e)
            );
            None
        }
    }
}

impl std::fmt::Debug for Logd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logd")
            .field("listening", &self.listening())
            .finish()
    }
}

/// The services a (re)configuration could not start, as an error; `None` when all started.
///
/// With `from_options`, the directives stand for the port options (there is no svc.conf the
/// user wrote), so each failure names the option instead of a directive's position.
fn services_failed(report: &Report, from_options: bool) -> Option<Error> {
    if report.is_ok() {
        return None;
    }
    let mut unavailable = false;
    let failures = report
        .errors
        .iter()
        .map(|d| {
            let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&d.error);
            while let Some(e) = cause {
                let kind = e
                    .downcast_ref::<io::Error>()
                    .map(io::Error::kind)
                    .or_else(|| match e.downcast_ref::<component_configurator::Error>() {
                        Some(component_configurator::Error::Component { error, .. }) => {
                            error.io_kind
                        }
                        _ => None,
                    });
                if let Some(kind) = kind {
                    unavailable |= matches!(
                        kind,
                        io::ErrorKind::AddrInUse
                            | io::ErrorKind::AddrNotAvailable
                            | io::ErrorKind::PermissionDenied
                    );
                }
                cause = e.source();
            }
            let option = match d.name.as_str() {
                "ACE_Logging" => Some("--ace-port"),
                "Syslog_Logging" => Some("--syslog-port"),
                "RELP_Logging" => Some("--relp-port"),
                _ => None,
            };
            match option {
                Some(opt) if from_options => {
                    format!("{} ({opt}): {}", d.name, pattern_core::ErrorChain(&d.error))
                }
                _ => d.to_string(),
            }
        })
        .collect();
    Some(Error::Services {
        failures,
        unavailable,
    })
}

impl Logd {
    /// Starts the dispatcher and configures the services (from `svc_conf`, or the port
    /// options). On a configuration error nothing keeps running.
    pub fn start(cfg: LogdConfig) -> Result<Logd, Error> {
        cfg.validate()?;
        let store = FileStore::open(cfg.store.clone()).map_err(|source| Error::Store {
            path: std::path::absolute(&cfg.store.dir).unwrap_or_else(|_| cfg.store.dir.clone()),
            source,
        })?;
        // Interception points "before store" and "before forward" wrap the sinks.
        let chain = Arc::new(intercept::Chain::default());
        let point = |p, sink: Box<dyn RecordSink>| -> Box<dyn RecordSink> {
            Box::new(intercept::Intercepted::new(chain.clone(), p, sink))
        };
        let mut sinks: Vec<Box<dyn RecordSink>> =
            vec![point(intercept::Point::Store, Box::new(store))];
        let mut forwarder = None;
        if let Some(up) = cfg.forward {
            let f = Forwarder::start(up, &cfg.forwarding, cfg.store.dir.join("spool"))
                .map_err(Error::io("cannot start the forwarder"))?;
            forwarder = Some(f.handle());
            sinks.push(point(intercept::Point::Forward, Box::new(f)));
        }
        let output = Output::with_chain(sinks, chain);
        let mut dispatcher = cfg
            .concurrency
            .build()
            .map_err(Error::io("cannot create the dispatcher"))?;
        let stopped = Arc::new(AtomicBool::new(false));
        let proactor = start_proactor(&cfg, &output);
        let env = ServiceEnv {
            remote: dispatcher.remote(),
            output,
            bind: cfg.bind,
            idle: cfg.idle,
            max_frame: cfg.max_frame,
            budget: Arc::new(BufferBudget::new(cfg.max_buffered)),
            backlog: cfg.backlog,
            acceptors: Default::default(),
            listening: Default::default(),
            stopped: stopped.clone(),
            udp_rcvbuf: cfg.udp_rcvbuf,
            forwarder: forwarder.clone(),
            sockets: cfg.sockets.clone(),
            proactor,
            data_dir: cfg.store.dir.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("logd-dispatcher".into())
            .spawn(move || {
                let result = dispatcher.run();
                stopped.store(true, Ordering::Release);
                result
            })
            .map_err(Error::io("cannot start the dispatcher thread"))?;
        let mut configurator = services::configurator(&env);
        configurator.set_plugin_trust(cfg.plugin_trust);
        let mut logd = Logd {
            configurator,
            env,
            thread: Some(thread),
            data_dir: cfg.store.dir.clone(),
            forwarder,
        };
        let report = match &cfg.svc_conf {
            Some(path) => logd.configurator.process_file(path),
            None => logd
                .configurator
                .process_directive(&cfg.default_directives()),
        };
        let failure = match report {
            Ok(r) => services_failed(&r, cfg.svc_conf.is_none()),
            Err(e) => Some(Error::Config(e)),
        };
        if let Some(e) = failure {
            let _ = logd.stop();
            return Err(e);
        }
        if let Err(e) = logd.start_store_timer(cfg.store.tick_period()) {
            let _ = logd.stop();
            return Err(e);
        }
        if let Some(addr) = cfg.metrics
            && let Err(e) = crate::metrics::open(&logd.env, addr)
        {
            let _ = logd.stop();
            return Err(Error::Services {
                failures: vec![format!("--metrics: {}", pattern_core::ErrorChain(&e))],
                unavailable: true,
            });
        }
        Ok(logd)
    }

    /// The output's timer: retries held records, syncs within the fsync interval and checks
    /// the data directory, whether or not records arrive.
    fn start_store_timer(&self, period: Duration) -> Result<(), Error> {
        let token = self.register(Box::new(StoreTimer {
            output: self.env.output.clone(),
        }))?;
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.env.remote.post(Box::new(move |ctx| {
            let _ = tx.send(ctx.schedule_timer(token, period, Some(period), Box::new(())));
        }))?;
        rx.recv_timeout(Duration::from_secs(30))
            .map_err(|_| pattern_core::DispatchError::ShutDown)??;
        Ok(())
    }

    /// Re-reads the svc.conf and applies what changed (SIGHUP), and reopens the files.
    /// The whole file is validated first, every service's arguments included: on any error
    /// there nothing changes and every service goes on as it was (the files are reopened
    /// all the same, since `logrotate` relies on that). What fails while applying (a port in
    /// use) is in the report's errors, and that service keeps its old arguments.
    pub fn reconfigure(&mut self) -> Result<Report, Error> {
        let reopened = self.env.output.reopen();
        let result = match reopened {
            Ok(()) => self.configurator.reconfigure().map_err(Error::from),
            Err(e) => Err(Error::Io {
                what: "cannot reopen the store's files",
                source: e,
            }),
        };
        let failed = !matches!(&result, Ok(r) if r.is_ok());
        self.env.output.count(|s| {
            s.reconfigurations += 1;
            s.reconfigurations_failed += u64::from(failed);
        });
        result
    }

    /// One line per configured service (ACE's `info`).
    pub fn services(&self) -> Vec<String> {
        self.configurator
            .repository()
            .list()
            .iter()
            .map(|l| format!("{}: {}", l.name, l.info))
            .collect()
    }

    /// Where it listens now.
    pub fn listening(&self) -> Listening {
        *self.env.listening.lock()
    }

    /// The storage directory.
    pub fn data_dir(&self) -> &std::path::Path {
        &self.data_dir
    }

    /// A handle to end the server or post work to it from any thread.
    pub fn remote(&self) -> Arc<dyn Remote> {
        self.env.remote.clone()
    }

    /// The shared output (counters, reopen).
    pub fn output(&self) -> Arc<Output> {
        self.env.output.clone()
    }

    /// Whether the TCP listeners run on the proactor (`--concurrency proactor` on a kernel
    /// that allows io_uring); `false` also after a fallback to the reactor.
    pub fn proactor(&self) -> bool {
        self.env.proactor.is_some()
    }

    /// The forwarder's handle, when forwarding: its counters (readable after the stop too),
    /// and [`ForwardHandle::stop_now`] for a second stop signal.
    pub fn forwarder(&self) -> Option<ForwardHandle> {
        self.forwarder.clone()
    }

    /// Registers another handler (signal watchers) and waits until it is registered.
    pub fn register(&self, handler: Box<dyn EventHandler>) -> Result<Token, Error> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.env.remote.post(Box::new(move |ctx| {
            let _ = tx.send(ctx.register(handler, Interest::NONE));
        }))?;
        let r = rx
            .recv_timeout(Duration::from_secs(30))
            .map_err(|_| pattern_core::DispatchError::ShutDown)?;
        Ok(r?)
    }

    /// Ends the dispatcher, then [`wait`](Self::wait)s.
    pub fn stop(self) -> Result<Stats, Error> {
        self.env.remote.end();
        self.wait()
    }

    /// Waits until the dispatcher ends (from [`stop`](Self::stop), a signal watcher or a
    /// remote); then every connection is closed, every record read has been written, the
    /// services are finalised, files are synced and the forwarder drained: for at most its
    /// stop timeout, after which what was not delivered is written to the spool. Returns the
    /// counters.
    pub fn wait(mut self) -> Result<Stats, Error> {
        let run = self.thread.take().expect("waited once").join();
        self.configurator.close();
        if let Some(ingest) = &self.env.proactor {
            // Every connection on the proactor stores what it read, then closes.
            ingest
                .stop()
                .map_err(Error::io("the proactor failed at the stop"))?;
        }
        self.env
            .output
            .flush()
            .map_err(Error::io("cannot flush the store at the stop"))?;
        match run {
            Ok(r) => r.map_err(Error::io("the dispatcher failed"))?,
            Err(_) => {
                return Err(Error::Io {
                    what: "the dispatcher thread panicked",
                    source: io::Error::other("panic"),
                });
            }
        }
        Ok(self.stats())
    }

    /// The counters, with the acceptors' `EMFILE` back-offs (every listener started so
    /// far, stopped ones included).
    pub fn stats(&self) -> Stats {
        self.env.stats()
    }
}

/// Drives [`Output::tick`] from the dispatcher's timer queue.
struct StoreTimer {
    output: Arc<Output>,
}

impl EventHandler for StoreTimer {
    fn handle_timeout(
        &mut self,
        _ctx: &mut dyn Context,
        _timer: TimerId,
        _act: &mut (dyn Any + Send),
    ) -> Disposition {
        self.output.tick();
        Disposition::Continue
    }
}

/// Parses a `--fsync` value.
pub fn parse_durability(s: &str) -> Result<Durability, Error> {
    s.parse().map_err(Error::Usage)
}
