//! `--concurrency proactor`: the TCP listeners' ingest on the [`proactor::Proactor`]
//! (io_uring), fed by completions instead of readiness.
//!
//! The framers ([`AceFraming`], [`SyslogFraming`]) and the [`Output`] are the same as the
//! reactor's; what changes is who reads. A connection's handler starts one multishot receive
//! from the provided-buffer ring; the kernel reads, and each completed chunk arrives in
//! [`CompletionHandler::on_received`], where it is framed and stored before the upcall
//! returns. Accepts are one multishot accept per listener.
//!
//! Syslog over UDP is received the same way: a few `recvmsg` operations in flight on the
//! socket ([`Initiator::recv_msg`]), each re-armed with its buffer when it completes; the
//! datagrams go to the same [`UdpIntake`] as the reactor's, which stores them as one batch
//! per dispatch round (a zero timeout, started with the first datagram of a batch, completes
//! after the round's other completions).
//!
//! Everything else (the svc.conf services, RELP, TLS, timers, signals, metrics) stays on the
//! reactor. A listener service hands its bound listener or UDP socket to [`Ingest::listen`] or
//! [`Ingest::listen_udp`], which return a stand-in [`EventHandler`] for the reactor: removing
//! it (the service's `fini` or `suspend`) closes the socket on the proactor and returns once
//! the port is closed.
//!
//! Where io_uring is missing or refused, [`Ingest::start`] fails with the proactor's setup
//! error, and `logd` falls back to the reactor with a warning.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;
use pattern_core::{Context, Disposition, EventHandler};
use proactor::{
    CloseReason, CompletionHandler, Config, HandlerId, Initiator, OpId, Outcome, Proactor,
    ProvidedBuf, Received,
};
use wrapper_facade::SockDgram;

use crate::error::FrameError;
use crate::limits::BufferBudget;
use crate::record::RecordBatch;
use crate::server::{
    AceFraming, Framing, SCRATCH, SyslogFraming, UDP_BUFFER, UdpIntake, note_buffered,
};
use crate::services::{AcceptorCounters, Format};
use crate::store::Output;

/// Submission entries of the proactor's ring by default ([`crate::logd::LogdConfig::proactor_ring_entries`]).
pub const DEFAULT_RING_ENTRIES: u32 = 1024;
/// Provided buffers shared by every connection's receive: count (a power of two) and size.
const BUFFERS: (u16, usize) = (256, 32 * 1024);
/// How often a connection paused by a backlogged output looks again.
const BACKLOG_RECHECK: Duration = Duration::from_millis(20);
/// How long an accept that failed (`EMFILE`) waits before the next.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// How long removing a listener waits for the proactor to close it.
const CLOSE_WAIT: Duration = Duration::from_secs(10);
/// Datagram receives in flight per UDP socket.
const UDP_DEPTH: usize = 8;

/// What connections need from the server.
#[derive(Clone)]
struct Env {
    output: Arc<Output>,
    budget: Arc<BufferBudget>,
    max_frame: usize,
    idle: Duration,
}

enum Command {
    Listen {
        listener: TcpListener,
        format: Format,
        counters: AcceptorCounters,
        closed: ClosedSignal,
        ack: Sender<HandlerId>,
    },
    ListenUdp {
        socket: SockDgram,
        closed: ClosedSignal,
        ack: Sender<HandlerId>,
    },
    Close(HandlerId),
    Stop,
}

/// The proactor's thread and the way to reach it: commands on a channel, and a byte on a
/// socket pair whose other end the proactor keeps a continuous read on.
pub struct Ingest {
    commands: Sender<Command>,
    wake: Mutex<UnixStream>,
    thread: Mutex<Option<JoinHandle<Result<(), proactor::Error>>>>,
}

impl std::fmt::Debug for Ingest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingest").finish_non_exhaustive()
    }
}

impl Ingest {
    /// Starts the proactor on a thread of its own; fails with the proactor's setup error
    /// (io_uring missing, disabled or refused) before anything runs.
    pub fn start(
        output: Arc<Output>,
        budget: Arc<BufferBudget>,
        max_frame: usize,
        idle: Duration,
        ring_entries: u32,
    ) -> Result<Ingest, proactor::Error> {
        let env = Env {
            output,
            budget,
            max_frame,
            idle,
        };
        let (wake, inbox) = UnixStream::pair().map_err(proactor::Error::Submit)?;
        let (commands, rx) = crossbeam_channel::unbounded();
        let (ready_tx, ready_rx) = crossbeam_channel::bounded(1);
        let thread = std::thread::Builder::new()
            .name("logd-proactor".into())
            .spawn(move || run(env, ring_entries, inbox, rx, ready_tx))
            .map_err(proactor::Error::Submit)?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Ingest {
                commands,
                wake: Mutex::new(wake),
                thread: Mutex::new(Some(thread)),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => Err(match thread.join() {
                Ok(Err(e)) => e,
                _ => proactor::Error::Submit(io::Error::other("the proactor thread died")),
            }),
        }
    }

    fn send(&self, command: Command) -> io::Result<()> {
        self.commands
            .send(command)
            .map_err(|_| io::Error::other("the proactor has stopped"))?;
        self.wake.lock().write_all(&[1])
    }

    /// Serves `format` on `listener` from the proactor, counting accepts and back-offs in
    /// `counters`; the returned stand-in, registered on the reactor in the listener's place,
    /// closes it when removed.
    pub fn listen(
        self: &Arc<Self>,
        listener: TcpListener,
        format: Format,
        counters: AcceptorCounters,
    ) -> io::Result<Box<dyn EventHandler>> {
        if format == Format::Relp {
            // RELP answers every frame; the proactor's connections only read.
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "RELP listeners are served by the reactor, not the proactor",
            ));
        }
        self.serve(|closed, ack| Command::Listen {
            listener,
            format,
            counters,
            closed,
            ack,
        })
    }

    /// Receives syslog datagrams on `socket` from the proactor (turning on the kernel's drop
    /// counter, `SO_RXQ_OVFL`); the returned stand-in, registered on the reactor, closes it
    /// when removed.
    pub fn listen_udp(self: &Arc<Self>, socket: SockDgram) -> io::Result<Box<dyn EventHandler>> {
        socket.set_drop_counting(true)?;
        self.serve(|closed, ack| Command::ListenUdp {
            socket,
            closed,
            ack,
        })
    }

    /// Sends the proactor a command registering a handler, and makes its stand-in.
    fn serve(
        self: &Arc<Self>,
        command: impl FnOnce(ClosedSignal, Sender<HandlerId>) -> Command,
    ) -> io::Result<Box<dyn EventHandler>> {
        let (ack, id) = crossbeam_channel::bounded(1);
        let closed = ClosedSignal::default();
        self.send(command(closed.clone(), ack))?;
        let id = id
            .recv_timeout(CLOSE_WAIT)
            .map_err(|_| io::Error::other("the proactor did not take the socket"))?;
        let (quiet, never) = UnixStream::pair()?;
        Ok(Box::new(StandIn {
            ingest: self.clone(),
            id,
            closed,
            quiet,
            _never: never,
        }))
    }

    /// Closes every connection (each stores what it read first) and ends the thread.
    pub fn stop(&self) -> io::Result<()> {
        let _ = self.send(Command::Stop);
        if let Some(thread) = self.thread.lock().take() {
            match thread.join() {
                Ok(r) => r.map_err(io::Error::other)?,
                Err(_) => return Err(io::Error::other("the proactor thread panicked")),
            }
        }
        Ok(())
    }
}

/// The proactor's thread: builds it (reporting the setup result), then dispatches until told
/// to stop, then closes every handler.
fn run(
    env: Env,
    ring_entries: u32,
    inbox: UnixStream,
    commands: Receiver<Command>,
    ready: Sender<Result<(), proactor::Error>>,
) -> Result<(), proactor::Error> {
    let built = Proactor::with_config(Config {
        entries: ring_entries,
        max_in_flight: 1 << 16,
        defer_taskrun: true,
        provided_buffers: Some(BUFFERS),
        sqpoll: None,
    });
    let mut proactor = match built {
        Ok(p) => {
            let _ = ready.send(Ok(()));
            p
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            return Ok(());
        }
    };
    let stopping = Arc::new(std::sync::atomic::AtomicBool::new(false));
    proactor.register(Mailbox {
        inbox,
        commands,
        env,
        stopping: stopping.clone(),
    });
    while !stopping.load(std::sync::atomic::Ordering::Relaxed) {
        proactor.turn()?;
    }
    proactor.shutdown()
}

/// Takes commands from other threads (a byte on the socket pair says there are some).
struct Mailbox {
    inbox: UnixStream,
    commands: Receiver<Command>,
    env: Env,
    stopping: Arc<std::sync::atomic::AtomicBool>,
}

impl CompletionHandler for Mailbox {
    fn on_open(&mut self, cx: &mut Initiator<'_>) {
        if let Err(e) = cx.read_continuous(self.inbox.as_fd(), vec![0; 64]) {
            tracing::error!(error = %e, "the proactor's mailbox cannot read");
            self.stopping
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }

    fn on_received(&mut self, cx: &mut Initiator<'_>, _: OpId, _: &[u8]) {
        while let Ok(command) = self.commands.try_recv() {
            match command {
                Command::Listen {
                    listener,
                    format,
                    counters,
                    closed,
                    ack,
                } => {
                    let id = cx.register(Listener {
                        listener: Some(listener),
                        format,
                        counters,
                        env: self.env.clone(),
                        closed,
                    });
                    let _ = ack.send(id);
                }
                Command::ListenUdp {
                    socket,
                    closed,
                    ack,
                } => {
                    let id = cx.register(UdpReceiver {
                        socket,
                        intake: UdpIntake::new(self.env.output.clone(), self.env.max_frame),
                        flush: None,
                        closed,
                    });
                    let _ = ack.send(id);
                }
                Command::Close(id) => {
                    let _ = cx.close_handler(id);
                }
                Command::Stop => {
                    self.stopping
                        .store(true, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }
    }

    fn on_read(&mut self, _: &mut Initiator<'_>, _: OpId, _: Outcome<usize>, _: Vec<u8>) {
        // The other end is gone: nobody can send commands any more.
        self.stopping
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// How a stand-in learns that its socket is closed on the proactor: the handler owning the
/// socket signals it from its `on_close`, telling the stand-in if it is waiting, or marking
/// it done so that a stand-in removed later does not wait at all.
#[derive(Clone, Default)]
struct ClosedSignal(Arc<Mutex<Closed>>);

#[derive(Default)]
struct Closed {
    done: bool,
    waiter: Option<Sender<()>>,
}

impl ClosedSignal {
    fn signal(&self) {
        let mut closed = self.0.lock();
        closed.done = true;
        if let Some(tx) = closed.waiter.take() {
            let _ = tx.send(());
        }
    }
}

/// Stands in for a listener on the reactor (registered for input on a socket that never
/// becomes readable); dropping it closes the listener on the proactor and waits until the
/// port is closed.
struct StandIn {
    ingest: Arc<Ingest>,
    id: HandlerId,
    closed: ClosedSignal,
    quiet: UnixStream,
    _never: UnixStream,
}

impl EventHandler for StandIn {
    fn handle(&self) -> Option<BorrowedFd<'_>> {
        Some(self.quiet.as_fd())
    }

    fn handle_input(&mut self, _ctx: &mut dyn Context) -> Disposition {
        Disposition::Continue
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        let (tx, rx) = crossbeam_channel::bounded(1);
        {
            let mut closed = self.closed.0.lock();
            if closed.done {
                // The socket was closed on the proactor's side already (its handler ended).
                return;
            }
            closed.waiter = Some(tx);
        }
        if self.ingest.send(Command::Close(self.id)).is_ok() {
            // Closed, or the proactor stopped (the sender is dropped with the listener).
            let _ = rx.recv_timeout(CLOSE_WAIT);
        }
    }
}

/// One listening socket: a multishot accept; a connection handler per client.
struct Listener {
    listener: Option<TcpListener>,
    format: Format,
    counters: AcceptorCounters,
    env: Env,
    /// Told once the socket is closed.
    closed: ClosedSignal,
}

impl Listener {
    fn accept(&mut self, cx: &mut Initiator<'_>) {
        let Some(l) = &self.listener else { return };
        if let Err(e) = cx.accept_multishot(l.as_fd()) {
            tracing::error!(error = %e, "proactor: cannot accept");
            cx.close();
        }
    }
}

impl CompletionHandler for Listener {
    fn on_open(&mut self, cx: &mut Initiator<'_>) {
        self.accept(cx);
    }

    fn on_accepted(&mut self, cx: &mut Initiator<'_>, _: OpId, stream: TcpStream) {
        let peer = match stream.peer_addr() {
            Ok(a) => a.ip().to_string(),
            Err(_) => return,
        };
        let _ = stream.set_nodelay(true);
        self.counters.lock().accepted += 1;
        self.env.output.count(|s| s.connections += 1);
        match self.format {
            Format::Ace => cx.register(Connection::new(
                stream,
                peer,
                AceFraming::new(self.env.max_frame),
                &self.env,
            )),
            Format::Syslog => cx.register(Connection::new(
                stream,
                peer,
                SyslogFraming::new(self.env.max_frame),
                &self.env,
            )),
            Format::Relp => unreachable!("`listen` refuses RELP"),
        };
    }

    fn on_accept(&mut self, cx: &mut Initiator<'_>, _: OpId, outcome: Outcome<TcpStream>) {
        // The multishot accept ended by itself (EMFILE and the like): try again shortly.
        if let Outcome::Failed(e) = outcome {
            tracing::warn!(error = %e, "proactor: accept failed; retrying after a back-off");
            self.counters.lock().backoffs += 1;
            if cx.timeout(ACCEPT_BACKOFF).is_err() {
                cx.close();
            }
        }
    }

    fn on_timeout(&mut self, cx: &mut Initiator<'_>, _: OpId, outcome: Outcome<()>) {
        if outcome.is_done() {
            self.accept(cx);
        }
    }

    fn on_close(&mut self, _: CloseReason) {
        self.listener = None;
        self.closed.signal();
    }
}

/// Syslog over UDP: [`UDP_DEPTH`] datagram receives in flight, each re-armed with its buffer
/// as it completes; the datagrams of one dispatch round are stored as one batch.
struct UdpReceiver {
    socket: SockDgram,
    intake: UdpIntake,
    /// The zero timeout that flushes the batch after this round's completions.
    flush: Option<OpId>,
    /// Told once the socket is closed.
    closed: ClosedSignal,
}

impl UdpReceiver {
    fn receive(&mut self, cx: &mut Initiator<'_>, buf: Vec<u8>) {
        if let Err(e) = cx.recv_msg(self.socket.as_fd(), buf) {
            tracing::error!(error = %e.error, "proactor: cannot receive UDP datagrams");
            cx.close();
        }
    }
}

impl CompletionHandler for UdpReceiver {
    fn on_open(&mut self, cx: &mut Initiator<'_>) {
        for _ in 0..UDP_DEPTH {
            self.receive(cx, vec![0; UDP_BUFFER]);
        }
    }

    fn on_datagram(
        &mut self,
        cx: &mut Initiator<'_>,
        _: OpId,
        outcome: Outcome<Received>,
        buf: Vec<u8>,
    ) {
        match outcome {
            Outcome::Done(r) => {
                self.intake.take(&buf[..r.len], &r);
                if self.flush.is_none() {
                    match cx.timeout(Duration::ZERO) {
                        Ok(op) => self.flush = Some(op),
                        // No room for the timeout: store now rather than later.
                        Err(_) => self.intake.flush(),
                    }
                }
                self.receive(cx, buf);
            }
            Outcome::Cancelled => {}
            Outcome::Failed(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted
                        | io::ErrorKind::ConnectionRefused
                        // Several receives wait on one socket: a datagram that woke this one
                        // can be taken by another first (seen under a flood of datagrams).
                        | io::ErrorKind::WouldBlock
                ) =>
            {
                self.receive(cx, buf);
            }
            Outcome::Failed(e) => {
                // Not a passing error: this receive ends (the others go on; once none is
                // left the receiver closes).
                tracing::error!(error = %e, "proactor: a UDP receive failed");
            }
        }
    }

    fn on_timeout(&mut self, _: &mut Initiator<'_>, _: OpId, _: Outcome<()>) {
        self.flush = None;
        self.intake.flush();
    }

    fn on_close(&mut self, _: CloseReason) {
        if !self.intake.is_empty() {
            self.intake.flush();
        }
        self.closed.signal();
    }
}

/// Why a connection is being closed by its own decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closing {
    No,
    Oversized,
    OverBudget,
}

/// One client: the kernel receives into provided buffers; each chunk is framed and stored
/// in the upcall, like the reactor's `Connection` does after its own reads. The records are
/// decoded into the proactor thread's batch (`server::SCRATCH`, Thread-Specific Storage),
/// which each upcall hands to the output and leaves empty, so a connection grows no batch of
/// its own (`tests/alloc_per_record.rs` counts it).
struct Connection<F> {
    stream: TcpStream,
    peer: String,
    framing: F,
    env: Env,
    /// Bytes reserved from the budget for the unfinished frame.
    held: usize,
    last_progress: Instant,
    /// The multishot receive, while it runs.
    reading: Option<OpId>,
    /// The receive was cancelled because the output is backlogged.
    paused: bool,
    /// The timer that looks at the backlog again while paused.
    recheck: Option<OpId>,
    /// Chunks the kernel received while the output was backlogged, in order, kept in their
    /// provided buffers until the backlog clears: the reactor leaves such data in the socket,
    /// a multishot receive has read it already. At most the chunks that arrive before the
    /// receive's cancellation lands; the shared buffer ring bounds them all.
    kept: VecDeque<ProvidedBuf>,
    /// The stream ended while chunks were kept: finish once they are stored.
    ended: Option<Ended>,
}

/// What [`Connection::store_kept`] left.
enum Kept {
    /// Every kept chunk is stored (and the output is not backlogged, when that was asked).
    Stored,
    /// The output is backlogged.
    Waiting,
    /// A chunk closes the connection.
    Closing,
}

/// How a stream whose last chunks are still kept ended.
enum Ended {
    /// End of stream: a last record that needs no terminator may follow the kept chunks.
    Eof,
    /// The receive failed.
    Failed,
}

impl<F: Framing> Connection<F> {
    fn new(stream: TcpStream, peer: String, framing: F, env: &Env) -> Self {
        Connection {
            stream,
            peer,
            framing,
            env: env.clone(),
            held: 0,
            last_progress: Instant::now(),
            reading: None,
            paused: false,
            recheck: None,
            kept: VecDeque::new(),
            ended: None,
        }
    }

    fn receive(&mut self, cx: &mut Initiator<'_>) {
        match cx.read_multishot(self.stream.as_fd()) {
            Ok(op) => self.reading = Some(op),
            Err(e) => {
                tracing::warn!(peer = %self.peer, error = %e, "proactor: cannot receive");
                cx.close();
            }
        }
    }

    /// Writes the batch and counts it, as the reactor's connection does; `unfinished` when
    /// the connection closes with a partial frame that will never be completed. Leaves
    /// `batch` (the thread's) empty.
    fn flush(
        &mut self,
        batch: &mut RecordBatch,
        rejected: u64,
        closing: Closing,
        unfinished: bool,
    ) {
        let n = batch.len() as u64;
        // Handed to the store's thread without waiting, as the reactor's connections do; a
        // chunk that arrives once the store says it is backlogged is kept, not stored
        // (`on_received_buf`). A full queue holds this thread here until the store makes room.
        self.env.output.write(batch);
        batch.clear();
        let budget = &self.env.budget;
        self.env.output.count(|s| {
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

    /// Brings the reservation in line with what the framer holds; false when growing it
    /// would pass the global cap.
    fn reserve(&mut self) -> bool {
        let held = self.framing.buffered();
        if held > self.held {
            if !self.env.budget.try_grow(held - self.held) {
                return false;
            }
        } else {
            self.env.budget.shrink(self.held - held);
        }
        self.held = held;
        true
    }

    /// A chunk received: framed into `batch` (the thread's), written, counted.
    /// Frames and stores one chunk into `batch` (the thread's, left empty); `false` when the
    /// connection must close (a stream that cannot be resynchronised, or over the budget).
    fn feed(&mut self, data: &[u8], batch: &mut RecordBatch) -> bool {
        let mut rejected = 0;
        let mut closing = Closing::No;
        let mut goes_on = true;
        match self.framing.feed(data, &self.peer, batch, &mut rejected) {
            Err(e) => {
                tracing::warn!(peer = %self.peer, error = %e, "closing: the stream cannot be resynchronised");
                rejected += 1;
                if matches!(
                    e,
                    FrameError::TooLarge { .. } | FrameError::OversizedCount { .. }
                ) {
                    closing = Closing::Oversized;
                }
                goes_on = false;
            }
            Ok(()) if !self.reserve() => {
                tracing::warn!(
                    peer = %self.peer,
                    held = self.framing.buffered(),
                    cap = self.env.budget.cap(),
                    "closing: unfinished frames of all connections would pass --max-buffered"
                );
                closing = Closing::OverBudget;
                goes_on = false;
            }
            Ok(()) => {}
        }
        if !batch.is_empty() || rejected > 0 {
            self.last_progress = Instant::now();
        }
        let unfinished = closing == Closing::OverBudget && self.framing.buffered() > 0;
        self.flush(batch, rejected, closing, unfinished);
        goes_on
    }

    /// Stops receiving while the output is backlogged: the receive is cancelled (what the
    /// client sends next waits in the kernel, and TCP slows it down) and the backlog is looked
    /// at again every [`BACKLOG_RECHECK`].
    fn pause(&mut self, cx: &mut Initiator<'_>) {
        self.paused = true;
        self.env.output.count(|s| s.pauses += 1);
        self.recheck = cx.timeout(BACKLOG_RECHECK).ok();
        let cancelled = self.reading.is_none_or(|op| cx.cancel(op).is_ok());
        if !cancelled || self.recheck.is_none() {
            cx.close();
        }
    }

    /// The end of the stream: a last record that needs no terminator, or the count of an
    /// unfinished one.
    fn finish(&mut self, ended: Ended, batch: &mut RecordBatch) {
        let mut rejected = 0;
        if let Ended::Eof = ended {
            self.framing.finish(&self.peer, batch, &mut rejected);
        }
        let unfinished = self.framing.buffered() > 0;
        self.flush(batch, rejected, Closing::No, unfinished);
        // The close that follows tells a client that half-closed and waits for it that its
        // records are in their place, as on the reactor: wait for the store to have done
        // every batch of this connection (an empty batch with a completion, in order).
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.env.output.write_then(batch, move |_| {
            let _ = tx.send(());
        });
        let _ = rx.recv();
    }

    /// Stores the kept chunks, in order; with `until_backlogged`, only while the output is
    /// not backlogged.
    fn store_kept(&mut self, until_backlogged: bool) -> Kept {
        loop {
            if until_backlogged && self.env.output.backlogged() {
                return Kept::Waiting;
            }
            let Some(chunk) = self.kept.pop_front() else {
                return Kept::Stored;
            };
            if !SCRATCH.with(|batch| self.feed(&chunk, batch)) {
                // The rest of a stream that cannot be resynchronised is not read either.
                self.kept.clear();
                self.ended = None;
                return Kept::Closing;
            }
        }
    }
}

impl<F> Drop for Connection<F> {
    fn drop(&mut self) {
        if self.held > 0 {
            self.env.budget.shrink(std::mem::take(&mut self.held));
            let budget = &self.env.budget;
            self.env.output.count(|s| note_buffered(s, budget));
        }
    }
}

impl<F: Framing> CompletionHandler for Connection<F> {
    fn on_open(&mut self, cx: &mut Initiator<'_>) {
        self.receive(cx);
        if !self.env.idle.is_zero() && cx.timeout(self.env.idle).is_err() {
            cx.close();
        }
    }

    fn on_received_buf(&mut self, cx: &mut Initiator<'_>, _: OpId, chunk: ProvidedBuf) {
        // Once the store says it is backlogged, chunks are kept in order, not stored, until
        // it is not (the recheck timer stores them).
        if self.paused || !self.kept.is_empty() || self.env.output.backlogged() {
            self.last_progress = Instant::now();
            self.kept.push_back(chunk);
            if !self.paused {
                self.pause(cx);
            }
            return;
        }
        let goes_on = SCRATCH.with(|batch| {
            debug_assert!(
                batch.is_empty(),
                "an upcall leaves the thread's batch empty"
            );
            self.feed(&chunk, batch)
        });
        drop(chunk);
        if !goes_on {
            cx.close();
        } else if self.env.output.backlogged() {
            self.pause(cx);
        }
    }

    fn on_read(&mut self, cx: &mut Initiator<'_>, _: OpId, outcome: Outcome<usize>, _: Vec<u8>) {
        self.reading = None;
        let ended = match outcome {
            Outcome::Cancelled if self.paused => return,
            Outcome::Cancelled => {
                cx.close();
                return;
            }
            Outcome::Done(_) => Ended::Eof,
            Outcome::Failed(e) => {
                tracing::debug!(peer = %self.peer, error = %e, "receive failed");
                Ended::Failed
            }
        };
        if self.kept.is_empty() {
            SCRATCH.with(|batch| self.finish(ended, batch));
            cx.close();
        } else {
            // The recheck timer of the pause stores the kept chunks, then finishes.
            self.ended = Some(ended);
        }
    }

    fn on_timeout(&mut self, cx: &mut Initiator<'_>, op: OpId, outcome: Outcome<()>) {
        if !outcome.is_done() {
            return;
        }
        if self.recheck == Some(op) {
            self.recheck = None;
            // The receive's cancellation has landed, the backlog is gone and every kept
            // chunk is stored: the stream's end, or receiving again.
            let kept = if self.reading.is_some() {
                Kept::Waiting
            } else {
                self.store_kept(true)
            };
            match kept {
                Kept::Closing => cx.close(),
                Kept::Waiting => {
                    self.recheck = cx.timeout(BACKLOG_RECHECK).ok();
                    if self.recheck.is_none() {
                        cx.close();
                    }
                }
                Kept::Stored => match self.ended.take() {
                    Some(ended) => {
                        SCRATCH.with(|batch| self.finish(ended, batch));
                        cx.close();
                    }
                    None => {
                        self.paused = false;
                        self.receive(cx);
                    }
                },
            }
            return;
        }
        if self.paused {
            // A paused connection is not idle: its client is waiting for us.
            self.last_progress = Instant::now();
        }
        let quiet = self.last_progress.elapsed();
        if quiet >= self.env.idle {
            let partial = self.framing.buffered();
            if partial > 0 {
                tracing::warn!(peer = %self.peer, partial, idle = ?self.env.idle, "closing: a frame left unfinished past the idle timeout");
                self.env.output.count(|s| {
                    s.idle_partial += 1;
                    let input = F::input(s);
                    input.read += 1;
                    input.unfinished += 1;
                });
            } else {
                tracing::info!(peer = %self.peer, "closing idle connection");
                self.env.output.count(|s| s.idle_closed += 1);
            }
            cx.close();
        } else if cx.timeout(self.env.idle - quiet).is_err() {
            cx.close();
        }
    }

    fn on_close(&mut self, _: CloseReason) {
        // Closed with chunks still kept (logd stopping, or a close while paused): they were
        // read, so they are stored now, past the backlog; the store counts what it cannot hold.
        if let Kept::Stored = self.store_kept(false)
            && let Some(ended) = self.ended.take()
        {
            SCRATCH.with(|batch| self.finish(ended, batch));
        }
    }
}
