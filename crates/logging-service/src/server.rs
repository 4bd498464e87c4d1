//! The service handlers: a connection handler per client (made by a [`ConnectionFactory`]
//! for the reactor's `Acceptor`), a UDP handler, and the backlog checks they share. They
//! depend on no module that uses them: [`crate::services`] makes them components and
//! [`crate::logd`] wires those to a dispatcher.

use std::any::Any;
use std::io::{self, Read};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use concurrency::ThreadSpecific;
use pattern_core::{Context, Disposition, EventHandler, Interest, Message, TimerId, Token};
use reactor::ServiceFactory;
use reactor::SockStream as TcpStream;
use wrapper_facade::SockDgram;
use wrapper_facade::sock::Received;

use crate::ace::AceDecoder;
use crate::error::FrameError;
use crate::limits::BufferBudget;
use crate::record::RecordBatch;
use crate::store::{InputCounts, Output, Stats};
use crate::syslog::{self, SyslogFramer};
use crate::tls_conn::{self, Admission, PeerSlot, Stream};

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
    if output.backlogged() && pause_for(ctx, BACKLOG_RECHECK) {
        output.count(|s| s.pauses += 1);
        return true;
    }
    false
}

/// Suspends the current handler and looks again after `wait` (resuming it then unless the
/// output is backlogged); `true` when suspended.
pub(crate) fn pause_for(ctx: &mut dyn Context, wait: Duration) -> bool {
    if let Some(me) = ctx.current()
        && ctx.suspend(me).is_ok()
    {
        let _ = ctx.schedule_timer(me, wait, None, Box::new(BacklogCheck));
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

/// One client connection: reads, decodes with its framing, hands each batch to the output's
/// store thread before the upcall returns (so a graceful stop, which drains the output, loses
/// nothing that was read), and closes itself when no complete frame arrived for the idle
/// timeout. It closes once what it read is stored: the last batch goes with a completion that
/// comes back through the dispatcher's notification path, so a client that half-closes and
/// waits for our close knows its records are in the files.
///
/// The idle clock restarts on a complete frame, not on any byte, so a client trickling a
/// frame it never finishes (slowloris) is closed too; the bytes its unfinished frame holds
/// are reserved from the server-wide [`BufferBudget`], and a connection that would pass it
/// is closed.
pub struct Connection<F> {
    stream: Stream,
    /// Its place in the per-peer table (connection cap, record rate).
    slot: PeerSlot,
    peer: String,
    framing: F,
    output: Arc<Output>,
    idle: Duration,
    /// When the last complete frame (a record or a refused message) arrived.
    last_progress: Option<Instant>,
    /// The host its records are stored under whatever they claim (`--host-from
    /// certificate`), lent to the thread's batch for each upcall.
    host: Option<String>,
    /// Reading stopped because the output is backlogged (the data waits in the kernel).
    paused: bool,
    budget: Arc<BufferBudget>,
    /// Bytes reserved from `budget` for the unfinished frame.
    held: usize,
    /// Closing: waiting (suspended) for the store's answer on the last batch.
    closing: bool,
    /// Suspended until the store's queue has room (see [`Output::wait_for_room`]).
    waiting_room: bool,
}

/// The batch an input upcall decodes into: Thread-Specific Storage, one batch per thread that
/// runs upcalls (the reactor's, each leader/followers or half-sync/half-async pool thread),
/// reached through one access point, with no lock and no batch per connection. A connection
/// uses the batch only within an upcall (each upcall hands what it decoded to the output and
/// leaves the batch empty), and an upcall runs on one thread, so the thread's batch serves
/// every connection that thread serves; once it has grown to its working size, a record costs
/// no allocation, a new connection grows no batch of its own, and the memory of batches is one
/// per thread, not one per connection (`tests/alloc_per_record.rs` counts the allocations).
/// Its caches (time stamps, the last pid) are per thread too, which only makes them warmer.
pub(crate) static SCRATCH: LazyLock<ThreadSpecific<RecordBatch>> =
    LazyLock::new(|| ThreadSpecific::new(RecordBatch::new));

/// The store's answer on a closing connection's last batch (see [`Connection`]).
#[derive(Debug)]
struct Stored;

/// The store's queue has room again: a connection that waited for it reads on.
#[derive(Debug)]
struct Room;

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
    fn flush_batch(
        &mut self,
        batch: &mut RecordBatch,
        rejected: u64,
        closing: Closing,
        unfinished: bool,
        done: Option<Box<dyn FnOnce(bool) + Send>>,
    ) {
        let n = batch.len() as u64;
        match done {
            Some(done) => self.output.write_then(batch, done),
            None => self.output.write(batch),
        }
        batch.clear();
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

    /// The input upcall, decoding into `batch` (the thread's, empty) and leaving it empty.
    fn input(&mut self, ctx: &mut dyn Context, batch: &mut RecordBatch) -> Disposition {
        if pause_if_backlogged(&self.output, ctx)
            || tls_conn::pause_if_over_rate(&self.slot, &self.output, ctx)
        {
            self.paused = true;
            return Disposition::Again;
        }
        // A full queue: yield to the other connections until the store makes room, rather
        // than wait for it in the write below.
        if let Some(me) = ctx.current() {
            let remote = ctx.remote();
            let waker = move || -> crate::output::Waker {
                Box::new(move || {
                    let _ = remote.notify(me, Box::new(Room));
                })
            };
            if self.output.wait_for_room(waker) && ctx.suspend(me).is_ok() {
                self.waiting_room = true;
                return Disposition::Again;
            }
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
                    self.framing.finish(&self.peer, batch, &mut rejected);
                    break Disposition::Close;
                }
                Ok(n) => {
                    budget = budget.saturating_sub(n);
                    let short = n < buf.len() && !self.stream.ended();
                    self.stream.apply_host(batch);
                    if let Err(e) = self
                        .framing
                        .feed(&buf[..n], &self.peer, batch, &mut rejected)
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
        if !batch.is_empty() || rejected > 0 {
            self.last_progress = Some(ctx.now());
        }
        // A partial frame left at a close is lost: counted (unless it is the bad frame that
        // closed the connection, already counted as malformed or oversized).
        let unfinished =
            disposition == Disposition::Close && !broken && self.framing.buffered() > 0;
        self.slot.spend(batch.len() as u64);
        if disposition == Disposition::Close
            && let Some(me) = ctx.current()
            && ctx.suspend(me).is_ok()
        {
            let remote = ctx.remote();
            let done = Box::new(move |_| {
                let _ = remote.notify(me, Box::new(Stored));
            });
            self.flush_batch(batch, rejected, closing, unfinished, Some(done));
            self.closing = true;
            // Suspended until `handle_notify` closes it.
            return Disposition::Again;
        }
        self.flush_batch(batch, rejected, closing, unfinished, None);
        disposition
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
        SCRATCH.with(|batch| {
            debug_assert!(
                batch.is_empty(),
                "an upcall leaves the thread's batch empty"
            );
            batch.set_host(self.host.take());
            let d = self.input(ctx, batch);
            self.host = batch.take_host();
            d
        })
    }

    fn handle_notify(&mut self, ctx: &mut dyn Context, message: Message) -> Disposition {
        if self.closing && message.is::<Stored>() {
            return Disposition::Close;
        }
        if message.is::<Room>() && std::mem::take(&mut self.waiting_room) && !self.closing {
            if let Some(me) = ctx.current() {
                let _ = ctx.resume(me);
            }
        }
        Disposition::Continue
    }

    fn handle_timeout(
        &mut self,
        ctx: &mut dyn Context,
        _timer: TimerId,
        act: &mut (dyn Any + Send),
    ) -> Disposition {
        if let Some(d) = self.stream.deadline(act) {
            return d;
        }
        let now = ctx.now();
        if self.closing || self.waiting_room {
            return Disposition::Continue;
        }
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
    admission: Admission,
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
            admission: Admission::default(),
            max_frame,
            output,
            idle,
            budget,
        }
    }

    /// Connections admitted by `admission`: the per-peer limits, TLS.
    pub fn with_admission(mut self, admission: Admission) -> Self {
        self.admission = admission;
        self
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
        let (stream, slot) = self.admission.admit(stream, peer, &self.output)?;
        let peer = peer.ip().to_string();
        // Interception point "connection opened": a veto closes it before any read.
        if !self.output.chain().connection_opened(&peer) {
            return None;
        }
        let conn = Connection {
            stream,
            slot,
            peer,
            framing: (self.make)(self.max_frame),
            output: self.output.clone(),
            idle: self.idle,
            last_progress: None,
            host: None,
            paused: false,
            budget: self.budget.clone(),
            held: 0,
            closing: false,
            waiting_room: false,
        };
        Some((Box::new(conn), Interest::READ))
    }

    fn opened(&mut self, ctx: &mut dyn Context, token: Token) {
        self.admission.opened(ctx, token);
        if !self.idle.is_zero() {
            // Checked every interval; a connection is closed within two intervals of going quiet.
            let _ = ctx.schedule_timer(token, self.idle, Some(self.idle), Box::new(()));
        }
    }
}

/// What becomes of syslog datagrams once received, whoever received them (the reactor's
/// [`SyslogUdp`] after its own `recvmsg` calls, the proactor's receiver from completions):
/// one datagram, one message; a datagram over `max_frame` is dropped and counted
/// (`udp_oversized`), and so are the datagrams the kernel dropped because the socket's
/// receive buffer was full (`udp_kernel_drops`, from the counter `SO_RXQ_OVFL` attaches).
pub(crate) struct UdpIntake {
    output: Arc<Output>,
    max_frame: usize,
    batch: RecordBatch,
    /// The last sender and its address as text, so that a run of datagrams from one sender
    /// formats the address once.
    last_peer: Option<(IpAddr, String)>,
    /// The kernel's drop counter as last seen: the socket's total since it was opened.
    kernel_drops: u32,
    /// Since the last flush: the counter as it was, datagrams, rejected, oversized.
    seen: u32,
    datagrams: u64,
    rejected: u64,
    oversized: u64,
}

impl UdpIntake {
    pub(crate) fn new(output: Arc<Output>, max_frame: usize) -> Self {
        UdpIntake {
            output,
            max_frame,
            batch: RecordBatch::new(),
            last_peer: None,
            kernel_drops: 0,
            seen: 0,
            datagrams: 0,
            rejected: 0,
            oversized: 0,
        }
    }

    /// Takes one datagram (`bytes`, as `r` describes it) into the batch.
    pub(crate) fn take(&mut self, bytes: &[u8], r: &Received) {
        self.datagrams += 1;
        // The counter only grows while the socket lives (it wraps at 2^32).
        if let Some(d) = r.drops
            && d.wrapping_sub(self.kernel_drops) < u32::MAX / 2
        {
            self.kernel_drops = d;
        }
        let peer = r.from.ip();
        // Receive buffers hold any UDP payload (at most 65,507 bytes), so `len` is the
        // datagram's real size unless the kernel says it cut it.
        if r.len > self.max_frame || r.truncated {
            tracing::warn!(%peer, len = r.len, max = self.max_frame, "UDP datagram over --max-frame dropped");
            self.oversized += 1;
            return;
        }
        if self
            .last_peer
            .as_ref()
            .is_none_or(|(last, _)| *last != peer)
        {
            self.last_peer = Some((peer, peer.to_string()));
        }
        let (_, text) = self.last_peer.as_ref().expect("just set");
        push_syslog(bytes, text, &mut self.batch, &mut self.rejected);
    }

    /// Whether datagrams were taken since the last flush.
    pub(crate) fn is_empty(&self) -> bool {
        self.datagrams == 0
    }

    /// Stores the batch and counts what was taken since the last flush.
    pub(crate) fn flush(&mut self) {
        let kernel_drops = u64::from(self.kernel_drops.wrapping_sub(self.seen));
        self.seen = self.kernel_drops;
        if kernel_drops > 0 {
            tracing::warn!(
                dropped = kernel_drops,
                total = self.kernel_drops,
                "the kernel dropped syslog UDP datagrams: the receive buffer was full (see --udp-rcvbuf)"
            );
        }
        let n = self.batch.len() as u64;
        self.output.write(&self.batch);
        self.batch.clear();
        let (datagrams, rejected, oversized) = (
            std::mem::take(&mut self.datagrams),
            std::mem::take(&mut self.rejected),
            std::mem::take(&mut self.oversized),
        );
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
    }
}

/// Syslog over UDP on the reactor: on readiness, receives up to 1,024 datagrams
/// (`recvmsg` with the kernel's drop counter) into one buffer and hands each to a
/// [`UdpIntake`], which stores them as one batch.
pub struct SyslogUdp {
    socket: SockDgram,
    intake: UdpIntake,
    /// The receive buffer, kept across upcalls (a datagram is at most 64 KiB).
    buf: Vec<u8>,
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
            intake: UdpIntake::new(output, max_frame),
            buf: vec![0u8; UDP_BUFFER],
        })
    }
}

/// Room for any UDP payload (at most 65,507 bytes).
pub(crate) const UDP_BUFFER: usize = 65_536;

impl EventHandler for SyslogUdp {
    fn handle(&self) -> Option<BorrowedFd<'_>> {
        Some(self.socket.as_fd())
    }

    fn handle_input(&mut self, _ctx: &mut dyn Context) -> Disposition {
        let mut disposition = Disposition::Again;
        for _ in 0..1024 {
            match self.socket.recv_counting_drops(&mut self.buf) {
                Ok(r) => self.intake.take(&self.buf[..r.len], &r),
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
        self.intake.flush();
        disposition
    }
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
    /// ACE over TLS.
    pub ace_tls: Option<SocketAddr>,
    /// Syslog over TLS (RFC 5425).
    pub syslog_tls: Option<SocketAddr>,
    /// RELP over TLS.
    pub relp_tls: Option<SocketAddr>,
}
