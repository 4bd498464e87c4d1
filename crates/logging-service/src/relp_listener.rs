//! The RELP listener's connection handler: a session per client on the dispatcher, which
//! answers `rsp 200 OK` for a record only once the output has put it in its place.
//!
//! Each input upcall reads what the client sent, decodes every whole frame
//! ([`crate::relp::RelpDecoder`]) and hands the batch of `syslog` records to the [`Output`]'s
//! store thread (the store files, and the forwarder's spool when forwarding) with a
//! completion; the session then stops reading (it is suspended) until the completion comes
//! back through the dispatcher's notification path ([`Remote::notify`], the upcall
//! `handle_notify`), and only then queues the answers, in order, into an [`OutBuffer`] and
//! reads on. So the dispatcher's thread never waits for a file write or an `fdatasync`, and a
//! session has at most one batch in the store at a time. When the output could not put every
//! record of the batch in its place (a store write failed and the record is held for a retry, the spool was
//! full), none of the batch is acknowledged: the session ends with a `serverclose` hint,
//! so that the sender, which keeps every unanswered frame, sends them again on its next
//! session. Closing, not answering `500`, because librelp's sender treats a `500` as a
//! failed session anyway, and a held record may still be written by the store's retry: the
//! resent copy is then a duplicate, never a loss.
//!
//! A `syslog` frame whose message does not parse is answered `500` and counted in
//! `rejected` (its place in the ledger); a malformed frame, a frame before `open`, or an
//! `open` without the `syslog` command ends the session.

use std::any::Any;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pattern_core::{Context, Disposition, EventHandler, Interest, Message, Remote, TimerId, Token};
use reactor::SockStream as TcpStream;
use reactor::{OutBuffer, ServiceFactory};

use crate::limits::BufferBudget;
use crate::record::RecordBatch;
use crate::relp::{self, Command, RelpDecoder, RelpError};
use crate::server;
use crate::store::{Output, Stats};
use crate::syslog;
use crate::tls_conn::{self, Admission, PeerSlot, Stream};

/// What logd calls itself in `open`.
pub(crate) fn software() -> String {
    format!("logd,{},-", env!("CARGO_PKG_VERSION"))
}

/// Answers queued for a client that does not read them before the session stops reading.
const OUT_LIMIT: usize = 256 * 1024;

/// An answer waiting for the batch's write.
#[derive(Debug, Clone, Copy)]
enum Reply {
    /// `200 OK` once the batch is in its place.
    Ack(u32),
    /// `500`, with the reason.
    Refuse(u32, &'static str),
    /// The `open` answer.
    Open(u32),
    /// The `close` answer; the session ends after it.
    Close(u32),
}

/// One RELP session. See the [module documentation](self).
pub struct RelpConnection {
    stream: Stream,
    /// Its place in the per-peer table (connection cap, record rate).
    slot: PeerSlot,
    peer: String,
    decoder: RelpDecoder,
    output: Arc<Output>,
    out: OutBuffer,
    opened: bool,
    replies: Vec<Reply>,
    /// The host its records are stored under whatever they claim (`--host-from
    /// certificate`), lent to the thread's batch ([`server::SCRATCH`]) for each upcall.
    host: Option<String>,
    idle: Duration,
    last_progress: Option<Instant>,
    paused: bool,
    budget: Arc<BufferBudget>,
    held: usize,
    /// A batch is in the store: how the frames of its upcall ended the session (the answers
    /// wait in `replies` for the completion).
    in_flight: Option<Ending>,
}

/// The store's answer on a session's batch, delivered to the session's `handle_notify`.
#[derive(Debug)]
struct Placed(bool);

impl std::fmt::Debug for RelpConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelpConnection")
            .field("peer", &self.peer)
            .finish()
    }
}

impl Drop for RelpConnection {
    fn drop(&mut self) {
        if self.held > 0 {
            self.budget.shrink(std::mem::take(&mut self.held));
            let budget = &self.budget;
            self.output.count(|s| server::note_buffered(s, budget));
        }
    }
}

/// How an upcall's frames end the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    No,
    /// The client sent `close` (answered) or end of stream.
    Client,
    /// A protocol error.
    Error,
    /// A frame over `--max-frame`.
    Oversized,
    /// The unfinished frames of all connections would pass `--max-buffered`.
    OverBudget,
}

impl RelpConnection {
    /// Decodes every whole frame held, turning `syslog` frames into records and queuing the
    /// answers. Returns how the frames end the session.
    fn take_frames(&mut self, batch: &mut RecordBatch, rejected: &mut u64) -> Ending {
        loop {
            let f = match self.decoder.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => return Ending::No,
                Err(e) => {
                    tracing::warn!(peer = %self.peer, error = %e, "RELP: closing the session: the stream cannot be resynchronised");
                    *rejected += 1;
                    return match e {
                        RelpError::TooLarge { .. } => Ending::Oversized,
                        _ => Ending::Error,
                    };
                }
            };
            match (f.command, self.opened) {
                (Command::Open, false) => {
                    if !relp::offers_syslog(f.data) {
                        tracing::warn!(peer = %self.peer, "RELP: the client does not offer the syslog command");
                        *rejected += 1;
                        return Ending::Error;
                    }
                    self.opened = true;
                    self.replies.push(Reply::Open(f.txnr));
                }
                (Command::Syslog, true) => match syslog::parse(f.data) {
                    Ok(m) => {
                        batch.push_syslog(&m, &self.peer);
                        self.replies.push(Reply::Ack(f.txnr));
                    }
                    Err(e) => {
                        tracing::warn!(peer = %self.peer, error = %e, "RELP: syslog message refused");
                        *rejected += 1;
                        self.replies
                            .push(Reply::Refuse(f.txnr, "malformed syslog message"));
                    }
                },
                (Command::Close, true) => {
                    self.replies.push(Reply::Close(f.txnr));
                    return Ending::Client;
                }
                (Command::Other, true) => {
                    self.replies
                        .push(Reply::Refuse(f.txnr, "command not supported"));
                }
                (c, opened) => {
                    tracing::warn!(peer = %self.peer, command = %c, opened, "RELP: closing the session: unexpected command");
                    *rejected += 1;
                    return Ending::Error;
                }
            }
        }
    }

    /// Counts what the upcall read.
    fn count_input(&mut self, n: u64, rejected: u64, ending: Ending) {
        let budget = &self.budget;
        self.output.count(|s| {
            s.relp += n;
            s.rejected += rejected;
            match ending {
                Ending::Oversized => s.oversized_closed += 1,
                Ending::OverBudget => s.buffer_cap_closed += 1,
                _ => {}
            }
            server::note_buffered(s, budget);
        });
    }

    /// Hands the batch to the store, whose completion comes to `handle_notify` as [`Placed`]
    /// (`None`; the session is suspended meanwhile); `Some(placed)` when the session could not
    /// be suspended (it then waited for the store here).
    fn write_batch(
        &mut self,
        ctx: &mut dyn Context,
        batch: &mut RecordBatch,
        ending: Ending,
    ) -> Option<bool> {
        let me = ctx.current();
        let placed = match me {
            Some(me) if ctx.suspend(me).is_ok() => {
                let remote: Arc<dyn Remote> = ctx.remote();
                self.output.write_acknowledged(batch, move |placed| {
                    // A closed session's notification is dropped: its records are stored all
                    // the same, and the sender, unanswered, sends them again.
                    let _ = remote.notify(me, Box::new(Placed(placed)));
                });
                self.in_flight = Some(ending);
                None
            }
            _ => {
                let (tx, rx) = crossbeam_channel::bounded(1);
                self.output.write_acknowledged(batch, move |placed| {
                    let _ = tx.send(placed);
                });
                Some(rx.recv().unwrap_or(false))
            }
        };
        batch.clear();
        placed
    }

    /// Queues the answers once the batch is `placed`, or a `serverclose` when it is not:
    /// whether the session goes on.
    fn answer(&mut self, placed: bool) -> bool {
        if !placed {
            tracing::warn!(peer = %self.peer, "RELP: records not yet in their place; closing the session unacknowledged, the sender sends them again");
            self.output.count(|s| s.relp_unacked_closes += 1);
        }
        let mut wire = Vec::new();
        if !placed {
            relp::encode(&mut wire, 0, Command::ServerClose, b"");
        } else {
            for r in self.replies.drain(..) {
                match r {
                    Reply::Ack(t) => relp::encode_rsp(&mut wire, t, 200, "OK"),
                    Reply::Refuse(t, why) => relp::encode_rsp(&mut wire, t, 500, why),
                    Reply::Open(t) => {
                        let data = format!("200 OK\n{}", relp::offers(&software()));
                        relp::encode(&mut wire, t, Command::Rsp, data.as_bytes());
                    }
                    Reply::Close(t) => relp::encode_rsp(&mut wire, t, 200, "OK"),
                }
            }
        }
        self.replies.clear();
        self.out.push(&wire);
        placed
    }

    /// Answers and decides what becomes of the session.
    fn settle(
        &mut self,
        ctx: &mut dyn Context,
        ending: Ending,
        placed: bool,
        more: bool,
    ) -> Disposition {
        let placed = self.answer(placed);
        if ending != Ending::No || !placed {
            // Best effort: the answers queued so far (and a `serverclose`), then close.
            let _ = self.out.flush(&mut self.stream);
            return Disposition::Close;
        }
        let d = self
            .out
            .settle(&mut self.stream, ctx, more || self.out.is_over_limit());
        self.stream.settle(ctx, self.out.is_empty(), d)
    }

    fn reserve(&mut self) -> bool {
        server::reserve(&self.budget, &mut self.held, self.decoder.buffered())
    }

    /// The input upcall, decoding into `batch` (the thread's, empty) and leaving it empty.
    fn input(&mut self, ctx: &mut dyn Context, batch: &mut RecordBatch) -> Disposition {
        if self.in_flight.is_some() {
            // Only a resume by someone else gets here: wait for the store's answer.
            if let Some(me) = ctx.current() {
                let _ = ctx.suspend(me);
            }
            return Disposition::Again;
        }
        if server::pause_if_backlogged(&self.output, ctx)
            || tls_conn::pause_if_over_rate(&self.slot, &self.output, ctx)
        {
            self.paused = true;
            return Disposition::Again;
        }
        let mut buf = [0u8; 64 * 1024];
        let mut budget = server::READ_BUDGET;
        let mut rejected = 0;
        let mut ending = Ending::No;
        let mut more = false;
        while !self.out.is_over_limit() {
            if budget == 0 {
                more = true;
                break;
            }
            match self.stream.read(&mut buf) {
                Ok(0) => {
                    ending = Ending::Client;
                    break;
                }
                Ok(n) => {
                    budget = budget.saturating_sub(n);
                    self.stream.apply_host(batch);
                    self.decoder.extend(&buf[..n]);
                    ending = self.take_frames(batch, &mut rejected);
                    if ending != Ending::No {
                        break;
                    }
                    if !self.reserve() {
                        tracing::warn!(peer = %self.peer, "RELP: closing: unfinished frames of all connections would pass --max-buffered");
                        ending = Ending::OverBudget;
                        break;
                    }
                    if n < buf.len() && !self.stream.ended() {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    tracing::debug!(peer = %self.peer, error = %e, "RELP: read failed");
                    ending = Ending::Error;
                    break;
                }
            }
        }
        if !self.replies.is_empty() || rejected > 0 {
            self.last_progress = Some(ctx.now());
        }
        let n = batch.len() as u64;
        self.slot.spend(n);
        self.count_input(n, rejected, ending);
        let placed = if batch.is_empty() {
            Some(true)
        } else {
            self.write_batch(ctx, batch, ending)
        };
        match placed {
            Some(placed) => self.settle(ctx, ending, placed, more),
            // Suspended until the store answers; `Again` keeps the readiness for the resume.
            None => Disposition::Again,
        }
    }
}

impl EventHandler for RelpConnection {
    fn handle(&self) -> Option<BorrowedFd<'_>> {
        Some(self.stream.as_fd())
    }

    fn handle_input(&mut self, ctx: &mut dyn Context) -> Disposition {
        server::SCRATCH.with(|batch| {
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
        let (Ok(placed), Some(ending)) = (message.downcast::<Placed>(), self.in_flight) else {
            return Disposition::Continue;
        };
        self.in_flight = None;
        if let Some(me) = ctx.current() {
            let _ = ctx.resume(me);
        }
        self.last_progress = Some(ctx.now());
        self.settle(ctx, ending, placed.0, false)
    }

    fn handle_output(&mut self, ctx: &mut dyn Context) -> Disposition {
        let d = self.out.settle(&mut self.stream, ctx, true);
        self.stream.settle(ctx, self.out.is_empty(), d)
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
        if let Some(paused) = server::backlog_recheck(&self.output, ctx, act) {
            self.last_progress = Some(now);
            self.paused = paused;
            return Disposition::Continue;
        }
        // A paused session, or one waiting for the store, is not idle.
        if self.paused || self.in_flight.is_some() {
            return Disposition::Continue;
        }
        let last = *self.last_progress.get_or_insert(now);
        if now.saturating_duration_since(last) >= self.idle {
            tracing::info!(peer = %self.peer, "RELP: closing idle session");
            self.output.count(|s| {
                if self.decoder.buffered() > 0 {
                    s.idle_partial += 1;
                } else {
                    s.idle_closed += 1;
                }
            });
            return Disposition::Close;
        }
        Disposition::Continue
    }
}

/// Makes a [`RelpConnection`] per accepted client.
#[derive(Debug)]
pub struct RelpFactory {
    admission: Admission,
    max_frame: usize,
    output: Arc<Output>,
    idle: Duration,
    budget: Arc<BufferBudget>,
}

impl RelpFactory {
    /// Sessions with frames of at most `max_frame` bytes of data, writing to `output`, closed
    /// after `idle` without a complete frame, their unfinished frames reserved from `budget`.
    pub fn new(
        max_frame: usize,
        output: Arc<Output>,
        idle: Duration,
        budget: Arc<BufferBudget>,
    ) -> Self {
        RelpFactory {
            admission: Admission::default(),
            max_frame,
            output,
            idle,
            budget,
        }
    }

    /// Sessions admitted by `admission`: the per-peer limits, TLS.
    pub fn with_admission(mut self, admission: Admission) -> Self {
        self.admission = admission;
        self
    }
}

impl ServiceFactory for RelpFactory {
    fn make_service(
        &mut self,
        stream: TcpStream,
        peer: SocketAddr,
    ) -> Option<(Box<dyn EventHandler>, Interest)> {
        let _ = stream.set_nodelay(true);
        self.output.count(|s: &mut Stats| s.connections += 1);
        let (stream, slot) = self.admission.admit(stream, peer, &self.output)?;
        let conn = RelpConnection {
            stream,
            slot,
            peer: peer.ip().to_string(),
            decoder: RelpDecoder::new(self.max_frame),
            output: self.output.clone(),
            out: OutBuffer::with_limit(OUT_LIMIT),
            opened: false,
            replies: Vec::new(),
            host: None,
            idle: self.idle,
            last_progress: None,
            paused: false,
            budget: self.budget.clone(),
            held: 0,
            in_flight: None,
        };
        Some((Box::new(conn), Interest::READ))
    }

    fn opened(&mut self, ctx: &mut dyn Context, token: Token) {
        self.admission.opened(ctx, token);
        if !self.idle.is_zero() {
            let _ = ctx.schedule_timer(token, self.idle, Some(self.idle), Box::new(()));
        }
    }
}
