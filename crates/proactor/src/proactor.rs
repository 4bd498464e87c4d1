//! The completion dispatcher and the proactive initiator.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::panic::{self, AssertUnwindSafe};
use std::time::Duration;

use act::{CompletionToken, TokenTable};
use wrapper_facade::uring::{self, Cqe, Op, ProvidedBuf, PushError, Ring, RingParams};

use crate::{CloseReason, CompletionHandler, Error, HandlerId, OpId, Outcome, Refused};

/// The provided-buffer group the proactor registers.
const BUFFER_GROUP: u16 = 0;

/// How to build a [`Proactor`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Submission queue entries of the ring.
    pub entries: u32,
    /// The cap on operations in flight; starting one more is refused with
    /// [`Error::TooManyInFlight`].
    pub max_in_flight: usize,
    /// Ask for `SINGLE_ISSUER | DEFER_TASKRUN` (fall back without them if refused).
    pub defer_taskrun: bool,
    /// A provided-buffer ring for [`Initiator::read_multishot`]: `(count, size)`, `count`
    /// buffers (a power of two) of `size` bytes. `None`: multishot reads are refused.
    pub provided_buffers: Option<(u16, usize)>,
    /// `IORING_SETUP_SQPOLL` with this idle time in milliseconds (off by default: on a small
    /// machine the kernel's poller thread competes with the work; see docs/benchmarks.md).
    /// Replaces `defer_taskrun`, which the kernel refuses together with it.
    pub sqpoll: Option<u32>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            entries: 256,
            max_in_flight: 4096,
            defer_taskrun: true,
            provided_buffers: None,
            sqpoll: None,
        }
    }
}

/// Counters of the dispatcher.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Completions delivered to handlers (terminal and continuous chunks).
    pub delivered: u64,
    /// Completions whose token the ACT table refused (stale, duplicate or forged): dropped.
    pub refused: u64,
    /// Upcalls that panicked.
    pub panics: u64,
    /// Handlers closed.
    pub closed: u64,
    /// Multishot reads the kernel ended for want of a provided buffer while every buffer was
    /// lent out ([`ProvidedBuf`]s held by handlers): each waited, not polling, until one came
    /// back, and then went on under the same [`OpId`].
    pub buffer_waits: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Accept,
    AcceptMulti,
    Connect,
    Read,
    Continuous,
    RecvMulti,
    RecvMsg,
    Write,
    SendProvided,
    Timeout,
}

/// What the ACT table holds for a token.
#[derive(Debug)]
enum OpCtx {
    User {
        owner: HandlerId,
        kind: Kind,
        /// The socket a connect is connecting, kept alive until the operation ends.
        socket: Option<OwnedFd>,
    },
    Cancel,
}

/// A handler's operations in flight (raw token, cancellation sent): a handler has a few at a
/// time, so a vector scanned linearly beats a tree that allocates nodes.
#[derive(Debug, Default)]
struct Ops(Vec<(u64, bool)>);

impl Ops {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn get(&self, raw: &u64) -> Option<&bool> {
        self.0.iter().find(|(r, _)| r == raw).map(|(_, c)| c)
    }

    fn get_mut(&mut self, raw: &u64) -> Option<&mut bool> {
        self.0.iter_mut().find(|(r, _)| r == raw).map(|(_, c)| c)
    }

    fn insert(&mut self, raw: u64, cancelled: bool) {
        match self.get_mut(&raw) {
            Some(c) => *c = cancelled,
            None => self.0.push((raw, cancelled)),
        }
    }

    fn remove(&mut self, raw: &u64) {
        if let Some(i) = self.0.iter().position(|(r, _)| r == raw) {
            self.0.swap_remove(i);
        }
    }

    fn keys(&self) -> impl Iterator<Item = &u64> {
        self.0.iter().map(|(r, _)| r)
    }
}

struct Live {
    handler: Option<Box<dyn CompletionHandler>>,
    /// The handler's type, for the sequence diagrams drawn from runs.
    name: &'static str,
    /// Raw tokens of the operations in flight, and whether a cancellation was sent.
    ops: Ops,
    closing: Option<CloseReason>,
}

struct Slot {
    generation: u32,
    live: Option<Live>,
}

#[derive(Debug, Clone, Copy)]
enum Deferred {
    Open(HandlerId),
    Settle(HandlerId),
    /// A multishot read waiting for a buffer ended (cancelled, or no buffer can come back).
    EndWaiting(CompletionToken, HandlerId, WaitEnd),
}

/// How a waiting multishot read ends.
#[derive(Debug, Clone, Copy)]
enum WaitEnd {
    Cancelled,
    NoBuffers,
}

/// A multishot read the kernel ended with `ENOBUFS` while every provided buffer was lent out,
/// waiting (still in flight for its handler and the ACT table) for a buffer to come back.
#[derive(Debug, Clone, Copy)]
struct Waiting {
    token: CompletionToken,
    owner: HandlerId,
    fd: RawFd,
}

/// The state the initiator may touch during an upcall: everything but the handler being upcalled.
struct Core {
    ring: Ring,
    provided: bool,
    table: TokenTable<OpCtx>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    user_in_flight: usize,
    limit: usize,
    deferred: VecDeque<Deferred>,
    waiting: Vec<Waiting>,
    stats: Stats,
}

/// The POSA2 Proactor on io_uring: the *completion dispatcher* (one thread: submit, wait,
/// reap, upcall) over the kernel as *asynchronous operation processor*.
///
/// A handler lives while it has operations in flight: when its last one ends and it started
/// no other, nothing could ever upcall it again, so it is closed with
/// [`CloseReason::Finished`].
///
/// A `Proactor` stays on the thread that built it (it is not `Send`: handlers need not be),
/// which is what `SINGLE_ISSUER | DEFER_TASKRUN` asks of the ring. Dropping it cancels what is
/// still in flight and waits for the kernel, but drops the handlers without
/// [`on_close`](CompletionHandler::on_close); call [`shutdown`](Self::shutdown) for that.
pub struct Proactor {
    core: Core,
    reaped: Vec<Cqe>,
}

impl fmt::Debug for Proactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proactor")
            .field("ring", &self.core.ring)
            .field("in_flight", &self.core.user_in_flight)
            .field("limit", &self.core.limit)
            .field("handlers", &self.handlers())
            .field("stats", &self.core.stats)
            .finish()
    }
}

impl Proactor {
    /// A proactor with the default [`Config`].
    pub fn new() -> Result<Proactor, Error> {
        Self::with_config(Config::default())
    }

    /// A proactor set up with `config`; fails with [`Error::Setup`] where io_uring is missing,
    /// disabled or refuses the parameters.
    pub fn with_config(config: Config) -> Result<Proactor, Error> {
        let ring = Ring::with_params(RingParams {
            entries: config.entries,
            defer_taskrun: config.defer_taskrun,
            sqpoll: config.sqpoll,
        })?;
        let mut ring = ring;
        if let Some((count, size)) = config.provided_buffers {
            ring.provide_buffers(BUFFER_GROUP, count, size)
                .map_err(Error::ProvidedBuffers)?;
        }
        let limit = config.max_in_flight.max(1);
        Ok(Proactor {
            core: Core {
                ring,
                provided: config.provided_buffers.is_some(),
                table: TokenTable::with_limit((2 * limit + 1).min(act::MAX_SLOTS)),
                slots: Vec::new(),
                free: Vec::new(),
                user_in_flight: 0,
                limit,
                deferred: VecDeque::new(),
                waiting: Vec::new(),
                stats: Stats::default(),
            },
            reaped: Vec::new(),
        })
    }

    /// Registers a handler and upcalls its [`on_open`](CompletionHandler::on_open).
    pub fn register<H: CompletionHandler + 'static>(&mut self, handler: H) -> HandlerId {
        let id = self.core.insert(Box::new(handler), short::<H>());
        self.drain_deferred();
        id
    }

    /// Acts as the proactive initiator for handler `id` from outside its upcalls: `f` may
    /// start operations whose completions go to that handler. `None` if `id` is closed.
    pub fn initiate<R>(
        &mut self,
        id: HandlerId,
        f: impl FnOnce(&mut Initiator<'_>) -> R,
    ) -> Option<R> {
        self.core.live_mut(id)?;
        let r = f(&mut Initiator {
            core: &mut self.core,
            me: id,
        });
        self.drain_deferred();
        Some(r)
    }

    /// Closes a handler: cancels its operations; [`on_close`](CompletionHandler::on_close)
    /// follows its last completion. A handler already closing or closed is refused.
    pub fn close(&mut self, id: HandlerId) -> Result<(), Error> {
        self.core.close(id, CloseReason::Removed)?;
        self.drain_deferred();
        Ok(())
    }

    /// Closes every handler with [`CloseReason::Shutdown`] and dispatches until all are closed.
    pub fn shutdown(&mut self) -> Result<(), Error> {
        let ids: Vec<HandlerId> = self.core.live_ids();
        for id in ids {
            let _ = self.core.close(id, CloseReason::Shutdown);
        }
        self.drain_deferred();
        self.run()
    }

    /// Dispatches until no handler is left.
    pub fn run(&mut self) -> Result<(), Error> {
        while self.turn()? > 0 {}
        Ok(())
    }

    /// One round: submits what is queued, waits for at least one completion, and upcalls the
    /// handlers of all ready completions. Returns how many completions were reaped; 0 when
    /// nothing is in flight (nothing could complete).
    pub fn turn(&mut self) -> Result<usize, Error> {
        self.drain_deferred();
        self.resume_waiting();
        if self.core.ring.in_flight() == 0 {
            return Ok(0);
        }
        self.core.ring.submit_and_wait(1).map_err(Error::Submit)?;
        let mut reaped = std::mem::take(&mut self.reaped);
        self.core.ring.reap(&mut reaped);
        let n = reaped.len();
        for cqe in reaped.drain(..) {
            self.dispatch(cqe);
            self.drain_deferred();
        }
        self.reaped = reaped;
        Ok(n)
    }

    /// Posts a completion carrying an arbitrary `user_data` through the kernel (a no-op
    /// submission), as a buggy or foreign submitter would. Its token is checked like any
    /// other: a value the ACT table did not issue, or one whose operation ended, is counted in
    /// [`Stats::refused`] and dropped; no handler sees it.
    pub fn inject_completion(&mut self, user_data: u64) -> Result<(), Error> {
        match self.core.ring.push(user_data, Op::Nop) {
            Ok(()) => Ok(()),
            Err(PushError::Submit { source, .. }) => Err(Error::Submit(source)),
            Err(_) => Err(Error::Busy { user_data }),
        }
    }

    /// The dispatcher's counters.
    pub fn stats(&self) -> Stats {
        self.core.stats
    }

    /// Operations in flight (not counting internal cancellations).
    pub fn in_flight(&self) -> usize {
        self.core.user_in_flight
    }

    /// Handlers registered and not yet closed.
    pub fn handlers(&self) -> usize {
        self.core.slots.iter().filter(|s| s.live.is_some()).count()
    }

    /// Whether the ring runs with `SINGLE_ISSUER | DEFER_TASKRUN`.
    pub fn defer_taskrun(&self) -> bool {
        self.core.ring.defer_taskrun()
    }

    /// Provided buffers the kernel can receive into now (the rest are lent to handlers or
    /// not yet given back); `None` without [`Config::provided_buffers`].
    pub fn provided_buffers_free(&self) -> Option<u16> {
        self.core.ring.buffers_available(BUFFER_GROUP)
    }

    fn drain_deferred(&mut self) {
        while let Some(d) = self.core.deferred.pop_front() {
            match d {
                Deferred::Open(id) => {
                    seq!("Proactor" => self.core.who(id), "on_open");
                    self.upcall(id, |h, cx| h.on_open(cx))
                }
                Deferred::Settle(id) => self.settle(id),
                Deferred::EndWaiting(token, owner, how) => {
                    self.finish(token, owner);
                    let outcome = match how {
                        WaitEnd::Cancelled => Outcome::Cancelled,
                        WaitEnd::NoBuffers => {
                            Outcome::Failed(io::Error::from_raw_os_error(uring::ENOBUFS))
                        }
                    };
                    let op = OpId(token);
                    self.upcall(owner, |h, cx| h.on_read(cx, op, outcome, Vec::new()));
                }
            }
        }
    }

    /// Starts again the multishot reads that waited for a provided buffer, as many as there
    /// are buffers back. With nothing else in flight no buffer can come back (only an upcall
    /// gives one back, and only a completion causes an upcall): those reads end with
    /// `Failed(ENOBUFS)` rather than wait for ever.
    fn resume_waiting(&mut self) {
        while !self.core.waiting.is_empty() {
            let free = self.core.ring.buffers_available(BUFFER_GROUP).unwrap_or(0);
            let stuck = free == 0 && self.core.ring.in_flight() == 0;
            if free == 0 && !stuck {
                return;
            }
            let w = self.core.waiting.remove(0);
            if stuck {
                self.core.deferred.push_back(Deferred::EndWaiting(
                    w.token,
                    w.owner,
                    WaitEnd::NoBuffers,
                ));
                self.drain_deferred();
                continue;
            }
            let op = Op::RecvMulti {
                fd: w.fd,
                group: BUFFER_GROUP,
            };
            if let Err(e) = self.core.ring.push(w.token.to_raw(), op) {
                self.finish(w.token, w.owner);
                let e = push_error(e);
                let op = OpId(w.token);
                self.upcall(w.owner, |h, cx| {
                    h.on_read(cx, op, Outcome::Failed(io::Error::other(e)), Vec::new())
                });
                self.drain_deferred();
            }
        }
    }

    /// Closes `id` if it has nothing in flight (and is not being upcalled).
    fn settle(&mut self, id: HandlerId) {
        let Some(live) = self.core.live_mut(id) else {
            return;
        };
        if !live.ops.is_empty() || live.handler.is_none() {
            return;
        }
        let reason = live.closing.unwrap_or(CloseReason::Finished);
        let mut handler = live.handler.take();
        let slot = &mut self.core.slots[id.index as usize];
        slot.live = None;
        slot.generation = slot.generation.wrapping_add(1);
        self.core.free.push(id.index);
        self.core.stats.closed += 1;
        if let Some(h) = handler.as_mut() {
            if panic::catch_unwind(AssertUnwindSafe(|| h.on_close(reason))).is_err() {
                self.core.stats.panics += 1;
            }
        }
    }

    /// Runs `f` on handler `id` with an initiator for it; contains a panic.
    fn upcall(
        &mut self,
        id: HandlerId,
        f: impl FnOnce(&mut dyn CompletionHandler, &mut Initiator<'_>),
    ) {
        let Some(live) = self.core.live_mut(id) else {
            return;
        };
        if live.closing == Some(CloseReason::Panicked) {
            self.core.deferred.push_back(Deferred::Settle(id));
            return;
        }
        let Some(mut handler) = live.handler.take() else {
            return;
        };
        let result = {
            let mut cx = Initiator {
                core: &mut self.core,
                me: id,
            };
            panic::catch_unwind(AssertUnwindSafe(|| f(handler.as_mut(), &mut cx)))
        };
        // A handler with operations in flight that is not closing cannot settle now: its
        // last completion's upcall, or its close, defers the settling then.
        let settles = match self.core.live_mut(id) {
            Some(live) => {
                live.handler = Some(handler);
                live.ops.is_empty() || live.closing.is_some()
            }
            None => false,
        };
        if result.is_err() {
            self.core.stats.panics += 1;
            // Closing defers the settling.
            let _ = self.core.close(id, CloseReason::Panicked);
        } else if settles {
            self.core.deferred.push_back(Deferred::Settle(id));
        }
    }

    fn dispatch(&mut self, mut cqe: Cqe) {
        let token = CompletionToken::from_raw(cqe.user_data);
        // How completions split into `submit_and_wait` rounds is the kernel's timing, so the
        // diagrams draw each completion, not each round.
        seq!(reply RING => "Proactor", "CQE (user_data: the token): TokenTable get(token)");
        let (owner, kind) = match self.core.table.get(token) {
            Err(_) => {
                seq!(note "Proactor", "a token the table did not issue: refused (Stats::refused), dropped");
                self.core.stats.refused += 1;
                return;
            }
            Ok(OpCtx::Cancel) => {
                let _ = self.core.table.complete(token);
                return;
            }
            Ok(OpCtx::User { owner, kind, .. }) => (*owner, *kind),
        };
        let op = OpId(token);
        seq!(
            "Proactor" => self.core.who(owner),
            "{}({})",
            match kind {
                Kind::Accept | Kind::AcceptMulti => "on_accept",
                Kind::Connect => "on_connect",
                Kind::Read | Kind::Continuous | Kind::RecvMulti => "on_read",
                Kind::RecvMsg => "on_datagram",
                Kind::Write => "on_write",
                Kind::SendProvided => "on_sent",
                Kind::Timeout => "on_timeout",
            },
            match kind {
                Kind::Read | Kind::Continuous | Kind::RecvMulti | Kind::RecvMsg | Kind::Write | Kind::SendProvided => format!("res {}", cqe.result),
                _ => "done".to_owned(),
            }
        );
        if kind == Kind::AcceptMulti {
            if cqe.more {
                self.core.stats.delivered += 1;
                if let Some(fd) = cqe.take_fd() {
                    let stream = TcpStream::from(fd);
                    self.upcall(owner, |h, cx| h.on_accepted(cx, op, stream));
                }
                return;
            }
            if cqe.result >= 0 {
                self.dispatch_accept_multi_end(cqe, token, owner);
                return;
            }
        }
        if kind == Kind::RecvMulti {
            self.dispatch_recv_multi(cqe, token, owner);
            return;
        }
        let matching = matches!(
            (kind, &cqe.op),
            (Kind::Accept, Some(Op::Accept { .. }))
                | (Kind::AcceptMulti, Some(Op::AcceptMulti { .. }))
                | (Kind::Connect, Some(Op::Connect { .. }))
                | (Kind::Read | Kind::Continuous, Some(Op::Read { .. }))
                | (Kind::Write, Some(Op::Write { .. } | Op::Send { .. }))
                | (Kind::SendProvided, Some(Op::SendProvided { .. }))
                | (Kind::RecvMsg, Some(Op::RecvMsg { .. }))
                | (Kind::Timeout, Some(Op::Timeout { .. }))
        );
        if !matching {
            // Not this token's operation ending (the ring returned no resources, or another
            // operation's): refuse it rather than end the token's operation early.
            self.core.stats.refused += 1;
            return;
        }
        self.core.stats.delivered += 1;
        // A continuous read that got data, and is neither cancelled nor closing, goes on.
        if kind == Kind::Continuous && cqe.result > 0 {
            let n = cqe.result as usize;
            let Some(Op::Read { fd, buf }) = cqe.op.take() else {
                return;
            };
            self.upcall(owner, |h, cx| h.on_received(cx, op, &buf[..n]));
            let going_on = self.goes_on(owner, token);
            if going_on {
                match self.core.ring.push(token.to_raw(), Op::Read { fd, buf }) {
                    Ok(()) => return,
                    Err(e) => {
                        let buf = match e {
                            PushError::Submit {
                                op: Op::Read { buf, .. },
                                ..
                            }
                            | PushError::Duplicate {
                                op: Op::Read { buf, .. },
                                ..
                            } => buf,
                            _ => Vec::new(),
                        };
                        self.finish(token, owner);
                        self.upcall(owner, |h, cx| {
                            h.on_read(
                                cx,
                                op,
                                Outcome::Failed(io::Error::other("re-arm failed")),
                                buf,
                            )
                        });
                        return;
                    }
                }
            }
            self.finish(token, owner);
            self.upcall(owner, |h, cx| h.on_read(cx, op, Outcome::Cancelled, buf));
            return;
        }
        let Some(OpCtx::User { socket, .. }) = self.finish(token, owner) else {
            return;
        };
        let result = cqe.result;
        let outcome = |v: usize| -> Outcome<usize> {
            if result == -uring::ECANCELED {
                Outcome::Cancelled
            } else if result < 0 {
                Outcome::Failed(io::Error::from_raw_os_error(-result))
            } else {
                Outcome::Done(v)
            }
        };
        match kind {
            Kind::Accept | Kind::AcceptMulti => {
                let o = match cqe.take_fd() {
                    Some(fd) => Outcome::Done(TcpStream::from(fd)),
                    None => map(outcome(0), |_| unreachable_stream()),
                };
                self.upcall(owner, |h, cx| h.on_accept(cx, op, o));
            }
            Kind::Connect => {
                let o = match (outcome(0), socket) {
                    (Outcome::Done(_), Some(s)) => Outcome::Done(TcpStream::from(s)),
                    (o, _) => map(o, |_| unreachable_stream()),
                };
                self.upcall(owner, |h, cx| h.on_connect(cx, op, o));
            }
            Kind::Read | Kind::Continuous | Kind::RecvMulti => {
                let buf = match cqe.op.take() {
                    Some(Op::Read { buf, .. }) => buf,
                    _ => Vec::new(),
                };
                let o = outcome(result.max(0) as usize);
                self.upcall(owner, |h, cx| h.on_read(cx, op, o, buf));
            }
            Kind::Write => {
                let buf = match cqe.op.take() {
                    Some(Op::Write { buf, .. } | Op::Send { buf, .. }) => buf,
                    _ => Vec::new(),
                };
                let o = outcome(result.max(0) as usize);
                self.upcall(owner, |h, cx| h.on_write(cx, op, o, buf));
            }
            Kind::RecvMsg => {
                let Some(Op::RecvMsg { buf, .. }) = cqe.op.take() else {
                    return;
                };
                let o = match (outcome(0), cqe.received) {
                    (Outcome::Done(_), Some(r)) => Outcome::Done(r),
                    (Outcome::Done(_), None) => Outcome::Failed(io::Error::other(
                        "a datagram without a sender address the facade could read",
                    )),
                    (Outcome::Cancelled, _) => Outcome::Cancelled,
                    (Outcome::Failed(e), _) => Outcome::Failed(e),
                };
                self.upcall(owner, |h, cx| h.on_datagram(cx, op, o, buf));
            }
            Kind::SendProvided => {
                let Some(Op::SendProvided { buf, .. }) = cqe.op.take() else {
                    return;
                };
                let o = outcome(result.max(0) as usize);
                self.upcall(owner, |h, cx| h.on_sent(cx, op, o, buf));
            }
            Kind::Timeout => {
                let o = if result == -uring::ETIME {
                    Outcome::Done(())
                } else {
                    map(outcome(0), |_| ())
                };
                self.upcall(owner, |h, cx| h.on_timeout(cx, op, o));
            }
        }
    }

    /// Whether `owner` is open and has not asked to cancel `token`.
    fn goes_on(&mut self, owner: HandlerId, token: CompletionToken) -> bool {
        self.core
            .live_mut(owner)
            .is_some_and(|l| l.closing.is_none() && l.ops.get(&token.to_raw()) == Some(&false))
    }

    /// A multishot accept the kernel ended with a connection: it does so when it cannot post
    /// a completion (a full completion queue), and the last connection comes with the end.
    /// The connection goes to `on_accepted` and the accept is re-armed under the same token,
    /// unless the handler cancelled it or is closing, when it ends as cancelled.
    fn dispatch_accept_multi_end(
        &mut self,
        mut cqe: Cqe,
        token: CompletionToken,
        owner: HandlerId,
    ) {
        let op = OpId(token);
        let Some(Op::AcceptMulti { fd }) = cqe.op.take() else {
            self.core.stats.refused += 1;
            return;
        };
        if let Some(stream) = cqe.take_fd().map(TcpStream::from) {
            self.core.stats.delivered += 1;
            self.upcall(owner, |h, cx| h.on_accepted(cx, op, stream));
        }
        self.core.stats.delivered += 1;
        let outcome = if self.goes_on(owner, token) {
            match self.core.ring.push(token.to_raw(), Op::AcceptMulti { fd }) {
                Ok(()) => return,
                Err(e) => Outcome::Failed(io::Error::other(push_error(e))),
            }
        } else {
            Outcome::Cancelled
        };
        self.finish(token, owner);
        self.upcall(owner, |h, cx| h.on_accept(cx, op, outcome));
    }

    fn dispatch_recv_multi(&mut self, mut cqe: Cqe, token: CompletionToken, owner: HandlerId) {
        let op = OpId(token);
        if let Some(data) = cqe.data.take().filter(|d| !d.is_empty()) {
            self.core.stats.delivered += 1;
            self.upcall(owner, |h, cx| h.on_received_buf(cx, op, data));
        }
        if cqe.more {
            return;
        }
        let Some(Op::RecvMulti { fd, group }) = cqe.op.take() else {
            self.core.stats.refused += 1;
            return;
        };
        self.core.stats.delivered += 1;
        let result = cqe.result;
        // The kernel ends a multishot receive on its own now and then (out of buffers, a full
        // completion queue): re-armed under the same token unless cancelled or closing.
        let interrupted = result > 0 || result == -uring::ENOBUFS;
        if interrupted && self.goes_on(owner, token) {
            // Every buffer lent out: re-arming now would end again at once, as long as bytes
            // wait; the read waits instead until a buffer is given back.
            if result == -uring::ENOBUFS
                && self.core.ring.buffers_available(BUFFER_GROUP) == Some(0)
            {
                self.core.stats.buffer_waits += 1;
                self.core.waiting.push(Waiting { token, owner, fd });
                return;
            }
            match self
                .core
                .ring
                .push(token.to_raw(), Op::RecvMulti { fd, group })
            {
                Ok(()) => return,
                Err(e) => {
                    self.finish(token, owner);
                    let e = push_error(e);
                    self.upcall(owner, |h, cx| {
                        h.on_read(cx, op, Outcome::Failed(io::Error::other(e)), Vec::new())
                    });
                    return;
                }
            }
        }
        self.finish(token, owner);
        let outcome = if result == 0 {
            Outcome::Done(0)
        } else if interrupted || result == -uring::ECANCELED {
            Outcome::Cancelled
        } else {
            Outcome::Failed(io::Error::from_raw_os_error(-result))
        };
        self.upcall(owner, |h, cx| h.on_read(cx, op, outcome, Vec::new()));
    }

    /// Ends the operation `token` of `owner` in the table and the handler's books.
    /// The handler's last operation ending defers its settling, so a handler whose completion
    /// is refused rather than upcalled is closed all the same.
    fn finish(&mut self, token: CompletionToken, owner: HandlerId) -> Option<OpCtx> {
        let ctx = self.core.table.complete(token).ok()?;
        self.core.user_in_flight -= 1;
        if let Some(live) = self.core.live_mut(owner) {
            live.ops.remove(&token.to_raw());
            if live.ops.is_empty() {
                self.core.deferred.push_back(Deferred::Settle(owner));
            }
        }
        Some(ctx)
    }
}

fn map<T, U>(o: Outcome<T>, f: impl FnOnce(T) -> U) -> Outcome<U> {
    match o {
        Outcome::Done(t) => Outcome::Done(f(t)),
        Outcome::Cancelled => Outcome::Cancelled,
        Outcome::Failed(e) => Outcome::Failed(e),
    }
}

fn unreachable_stream() -> TcpStream {
    unreachable!("a successful accept or connect always carries its socket")
}

impl Core {
    fn live_mut(&mut self, id: HandlerId) -> Option<&mut Live> {
        let slot = self.slots.get_mut(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        slot.live.as_mut()
    }

    fn live_ids(&self) -> Vec<HandlerId> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.live.is_some())
            .map(|(i, s)| HandlerId {
                index: i as u32,
                generation: s.generation,
            })
            .collect()
    }

    fn insert(&mut self, handler: Box<dyn CompletionHandler>, name: &'static str) -> HandlerId {
        let live = Live {
            handler: Some(handler),
            name,
            ops: Ops::default(),
            closing: None,
        };
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    live: None,
                });
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.live = Some(live);
        let id = HandlerId {
            index,
            generation: slot.generation,
        };
        self.deferred.push_back(Deferred::Open(id));
        id
    }

    fn close(&mut self, id: HandlerId, reason: CloseReason) -> Result<(), Error> {
        let live = self.live_mut(id).ok_or(Error::Closed)?;
        match live.closing {
            Some(_) if reason != CloseReason::Panicked => return Err(Error::Closed),
            _ => live.closing = Some(reason),
        }
        let ops: Vec<u64> = live.ops.keys().copied().collect();
        for raw in ops {
            let _ = self.cancel(CompletionToken::from_raw(raw));
        }
        self.deferred.push_back(Deferred::Settle(id));
        Ok(())
    }

    fn cancel(&mut self, token: CompletionToken) -> Result<(), Error> {
        let op = OpId(token);
        let owner = match self.table.get(token) {
            Ok(OpCtx::User { owner, .. }) => *owner,
            _ => return Err(Error::NotInFlight { op }),
        };
        let raw = token.to_raw();
        match self.live_mut(owner).and_then(|l| l.ops.get(&raw).copied()) {
            Some(false) => {}
            Some(true) => return Ok(()),
            None => return Err(Error::NotInFlight { op }),
        }
        // Not in the kernel's hands: it ends here, once, after the current upcall.
        if let Some(i) = self.waiting.iter().position(|w| w.token == token) {
            self.waiting.remove(i);
            if let Some(flag) = self.live_mut(owner).and_then(|l| l.ops.get_mut(&raw)) {
                *flag = true;
            }
            self.deferred
                .push_back(Deferred::EndWaiting(token, owner, WaitEnd::Cancelled));
            return Ok(());
        }
        let cancel = self
            .table
            .issue(OpCtx::Cancel)
            .map_err(|_| Error::TooManyInFlight { limit: self.limit })?;
        if let Err(e) = self.ring.push(
            cancel.to_raw(),
            Op::Cancel {
                target: token.to_raw(),
            },
        ) {
            let _ = self.table.cancel(cancel);
            return Err(push_error(e));
        }
        if let Some(flag) = self.live_mut(owner).and_then(|l| l.ops.get_mut(&raw)) {
            *flag = true;
        }
        Ok(())
    }

    fn start(
        &mut self,
        me: HandlerId,
        kind: Kind,
        socket: Option<OwnedFd>,
        op: Op,
    ) -> Result<OpId, (Error, Op)> {
        let Some(live) = self.live_mut(me) else {
            return Err((Error::Closed, op));
        };
        if live.closing.is_some() {
            return Err((Error::Closed, op));
        }
        if self.user_in_flight >= self.limit {
            return Err((Error::TooManyInFlight { limit: self.limit }, op));
        }
        let ctx = OpCtx::User {
            owner: me,
            kind,
            socket,
        };
        seq!(
            self.who(me) => "Initiator",
            "{kind:?}: issue a token, push the SQE{}",
            if matches!(kind, Kind::Read | Kind::Write) { " (the buffer is the ring's now)" } else { "" }
        );
        let token = match self.table.issue(ctx) {
            Ok(t) => t,
            Err(_) => return Err((Error::TooManyInFlight { limit: self.limit }, op)),
        };
        if let Err(e) = self.ring.push(token.to_raw(), op) {
            let _ = self.table.cancel(token);
            let (err, op) = match e {
                PushError::Submit { op, source } => (Error::Submit(source), op),
                PushError::Duplicate { op, user_data } => (Error::Busy { user_data }, op),
                other => (
                    Error::Busy {
                        user_data: u64::MAX,
                    },
                    other.into_op(),
                ),
            };
            return Err((err, op));
        }
        self.user_in_flight += 1;
        if let Some(live) = self.live_mut(me) {
            live.ops.insert(token.to_raw(), false);
        }
        Ok(OpId(token))
    }
}

/// The ring's name in the sequence diagrams drawn from runs.
const RING: &str = "io_uring (kernel)";

/// A type's name without its path and parameters.
fn short<T: ?Sized>() -> &'static str {
    let name = std::any::type_name::<T>();
    let name = name.split('<').next().unwrap_or(name);
    name.rsplit("::").next().unwrap_or(name)
}

impl Core {
    /// A handler's name in the sequence diagrams: its type and id.
    fn who(&self, id: HandlerId) -> String {
        let name = self
            .slots
            .get(id.index as usize)
            .and_then(|s| s.live.as_ref())
            .map_or("closed handler", |l| l.name);
        format!("{name} {id}")
    }
}

fn push_error(e: PushError) -> Error {
    match e {
        PushError::Submit { source, .. } => Error::Submit(source),
        PushError::Duplicate { user_data, .. } => Error::Busy { user_data },
        _ => Error::Busy {
            user_data: u64::MAX,
        },
    }
}

/// The POSA2 *proactive initiator*: handed to every upcall, it starts asynchronous operations
/// on behalf of the handler being upcalled, cancels them, closes handlers and registers new
/// ones. Operations are queued for the kernel and submitted when the upcall returns.
pub struct Initiator<'a> {
    core: &'a mut Core,
    me: HandlerId,
}

impl fmt::Debug for Initiator<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Initiator")
            .field("handler", &self.me)
            .field("in_flight", &self.core.user_in_flight)
            .finish()
    }
}

impl Initiator<'_> {
    /// The handler being upcalled.
    pub fn handler(&self) -> HandlerId {
        self.me
    }

    /// Operations in flight, all handlers together.
    pub fn in_flight(&self) -> usize {
        self.core.user_in_flight
    }

    fn start_buf(&mut self, kind: Kind, op: Op) -> Result<OpId, Refused> {
        self.core
            .start(self.me, kind, None, op)
            .map_err(|(error, op)| {
                let buf = match op {
                    Op::Read { buf, .. }
                    | Op::Write { buf, .. }
                    | Op::Send { buf, .. }
                    | Op::RecvMsg { buf, .. } => buf,
                    _ => Vec::new(),
                };
                Refused { error, buf }
            })
    }

    fn start_plain(&mut self, kind: Kind, socket: Option<OwnedFd>, op: Op) -> Result<OpId, Error> {
        self.core
            .start(self.me, kind, socket, op)
            .map_err(|(e, _)| e)
    }

    /// Accepts one connection on `listener` ([`CompletionHandler::on_accept`]). The handler
    /// keeps the listener open while the operation is in flight.
    pub fn accept(&mut self, listener: BorrowedFd<'_>) -> Result<OpId, Error> {
        self.start_plain(
            Kind::Accept,
            None,
            Op::Accept {
                fd: listener.as_raw_fd(),
            },
        )
    }

    /// Accepts connections on `listener` until cancelled or failed, with one multishot
    /// submission (`IORING_ACCEPT_MULTISHOT`): each connection goes to
    /// [`CompletionHandler::on_accepted`]; the operation ends once in
    /// [`CompletionHandler::on_accept`].
    pub fn accept_multishot(&mut self, listener: BorrowedFd<'_>) -> Result<OpId, Error> {
        self.start_plain(
            Kind::AcceptMulti,
            None,
            Op::AcceptMulti {
                fd: listener.as_raw_fd(),
            },
        )
    }

    /// Connects a new TCP socket to `addr` ([`CompletionHandler::on_connect`] gets the socket).
    pub fn connect(&mut self, addr: SocketAddr) -> Result<OpId, Error> {
        let socket = uring::tcp_socket_for(&addr).map_err(Error::Socket)?;
        let fd: RawFd = socket.as_raw_fd();
        self.start_plain(Kind::Connect, Some(socket), Op::Connect { fd, addr })
    }

    /// Reads into `buf` ([`CompletionHandler::on_read`] gets it back).
    pub fn read(&mut self, fd: BorrowedFd<'_>, buf: Vec<u8>) -> Result<OpId, Refused> {
        let fd = fd.as_raw_fd();
        self.start_buf(Kind::Read, Op::Read { fd, buf })
    }

    /// Reads continuously: each chunk goes to [`CompletionHandler::on_received`] and the read
    /// is re-armed with the same buffer and the same [`OpId`], until end of stream, an error
    /// or cancellation ends it in [`CompletionHandler::on_read`].
    pub fn read_continuous(&mut self, fd: BorrowedFd<'_>, buf: Vec<u8>) -> Result<OpId, Refused> {
        let fd = fd.as_raw_fd();
        self.start_buf(Kind::Continuous, Op::Read { fd, buf })
    }

    /// Reads continuously with one multishot submission: the kernel picks a buffer from the
    /// proactor's provided-buffer ring ([`Config::provided_buffers`]) for each chunk, and the
    /// buffer is lent in place to [`CompletionHandler::on_received_buf`] (by default,
    /// [`CompletionHandler::on_received`] sees its bytes and the buffer goes back to the
    /// kernel after the upcall). Ends once in [`CompletionHandler::on_read`] (with an empty
    /// buffer): `Done(0)` at end of stream, `Cancelled`, or `Failed`. When the kernel finds
    /// every buffer lent out, the read waits for one to come back and goes on
    /// ([`Stats::buffer_waits`]); if none can (nothing else in flight), it ends with
    /// `Failed(ENOBUFS)`.
    pub fn read_multishot(&mut self, fd: BorrowedFd<'_>) -> Result<OpId, Error> {
        if !self.core.provided {
            return Err(Error::NoProvidedBuffers);
        }
        let op = Op::RecvMulti {
            fd: fd.as_raw_fd(),
            group: BUFFER_GROUP,
        };
        self.start_plain(Kind::RecvMulti, None, op)
    }

    /// Writes `buf` ([`CompletionHandler::on_write`] gets the count and the buffer back).
    pub fn write(&mut self, fd: BorrowedFd<'_>, buf: Vec<u8>) -> Result<OpId, Refused> {
        let fd = fd.as_raw_fd();
        self.start_buf(Kind::Write, Op::Write { fd, buf })
    }

    /// Sends `buf` on the socket `fd` (`send(2)` with `MSG_NOSIGNAL`: cheaper than
    /// [`write`](Self::write) on a socket); [`CompletionHandler::on_write`] gets the count and
    /// the buffer back.
    pub fn send(&mut self, fd: BorrowedFd<'_>, buf: Vec<u8>) -> Result<OpId, Refused> {
        let fd = fd.as_raw_fd();
        self.start_buf(Kind::Write, Op::Send { fd, buf })
    }

    /// Receives one datagram on the socket `fd` into `buf` (`recvmsg(2)`);
    /// [`CompletionHandler::on_datagram`] gets its sender, its length, whether it was cut to
    /// fit `buf`, the kernel's drop counter (`SO_RXQ_OVFL`, once the socket counts), and the
    /// buffer back.
    pub fn recv_msg(&mut self, fd: BorrowedFd<'_>, buf: Vec<u8>) -> Result<OpId, Refused> {
        let fd = fd.as_raw_fd();
        self.start_buf(Kind::RecvMsg, Op::RecvMsg { fd, buf })
    }

    /// Sends the bytes of a lent provided buffer on the socket `fd`, from where the kernel
    /// received them (no copy); [`CompletionHandler::on_sent`] gets the count and the buffer
    /// back, and the buffer returns to the kernel's ring when that drops it.
    pub fn send_provided(
        &mut self,
        fd: BorrowedFd<'_>,
        buf: ProvidedBuf,
    ) -> Result<OpId, Refused<ProvidedBuf>> {
        let fd = fd.as_raw_fd();
        self.core
            .start(
                self.me,
                Kind::SendProvided,
                None,
                Op::SendProvided { fd, buf },
            )
            .map_err(|(error, op)| match op {
                Op::SendProvided { buf, .. } => Refused { error, buf },
                _ => unreachable!("Core::start hands back the operation it was given"),
            })
    }

    /// A timeout of `after` ([`CompletionHandler::on_timeout`]).
    pub fn timeout(&mut self, after: Duration) -> Result<OpId, Error> {
        self.start_plain(Kind::Timeout, None, Op::Timeout { after })
    }

    /// Asks the kernel to cancel `op`. The operation still ends exactly once: `Cancelled`,
    /// or `Done`/`Failed` if it completed first.
    pub fn cancel(&mut self, op: OpId) -> Result<(), Error> {
        self.core.cancel(op.0)
    }

    /// Closes the handler being upcalled: its operations are cancelled, and
    /// [`CompletionHandler::on_close`] follows the last completion.
    pub fn close(&mut self) {
        let _ = self.core.close(self.me, CloseReason::Requested);
    }

    /// Closes another handler (as [`Proactor::close`]).
    pub fn close_handler(&mut self, id: HandlerId) -> Result<(), Error> {
        self.core.close(id, CloseReason::Removed)
    }

    /// Registers a new handler; its [`on_open`](CompletionHandler::on_open) runs after this
    /// upcall returns.
    pub fn register<H: CompletionHandler + 'static>(&mut self, handler: H) -> HandlerId {
        self.core.insert(Box::new(handler), short::<H>())
    }

    /// Registers an already boxed handler.
    pub fn register_boxed(&mut self, handler: Box<dyn CompletionHandler>) -> HandlerId {
        self.core.insert(handler, "handler")
    }
}
