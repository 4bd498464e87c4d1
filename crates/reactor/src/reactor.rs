//! The Reactor itself: registrations, the loop, and the [`Context`] upcalls act through.

use std::collections::VecDeque;
use std::io;
use std::os::fd::AsRawFd;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pattern_core::{
    Act, AfterUpcall, Clock, CloseReason, Context, DispatchError, Dispatcher, Disposition,
    EventHandler, Interest, Message, MonotonicClock, Remote, Removal, Slab, TimerId, Token,
};
use wrapper_facade::notify::EventFd;
use wrapper_facade::signal::{Signal, SignalFd};

use crate::notify::{Notice, ReactorRemote, Shared};
use crate::readiness::{
    Readiness, Registration, bits_of, closed, mask_of, mio_interest, rearm_own,
};
use crate::timer::{Cancelled, Expired, Finished, Head, TimerQueue};
use crate::trace::{Hook, Outcome, TraceHook, UpcallRecord};

const WAKER: mio::Token = mio::Token(usize::MAX);
const SIGNALS: mio::Token = mio::Token(usize::MAX - 1);

/// One registration.
struct Slot {
    /// `None` while one of its upcalls runs (further up the stack).
    handler: Option<Box<dyn EventHandler>>,
    /// The descriptor's place in mio's set.
    reg: Registration,
    interest: Interest,
    suspended: bool,
    /// Readiness seen and not yet consumed by an upcall answering `Continue`.
    pending: Readiness,
    /// The peer's close (or an error) was reported and no input upcall answered since.
    hup: bool,
    queued: bool,
    /// Head of the list of this registration's timers (linked through the timer queue).
    timers: Option<TimerId>,
    /// A removal asked for while the handler's upcall was running.
    doomed: Option<Removal>,
}

/// Configures a [`Reactor`].
#[derive(Debug)]
pub struct ReactorBuilder {
    clock: Arc<dyn Clock>,
    notify_cap: usize,
    max_handlers: usize,
    max_timers: usize,
    events: usize,
    trace: Option<TraceHook>,
}

impl Default for ReactorBuilder {
    fn default() -> Self {
        ReactorBuilder {
            clock: Arc::new(MonotonicClock),
            notify_cap: 1024,
            max_handlers: 1 << 20,
            max_timers: 1 << 22,
            events: 1024,
            trace: None,
        }
    }
}

impl ReactorBuilder {
    /// The clock timers run on (a [`ManualClock`](pattern_core::ManualClock) in tests).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// At most this many notifications are dispatched per iteration, so that a flood of
    /// posts cannot starve I/O (ACE's `max_notify_iterations`). At least 1.
    pub fn notify_cap(mut self, cap: usize) -> Self {
        self.notify_cap = cap.max(1);
        self
    }

    /// At most this many live registrations.
    pub fn max_handlers(mut self, max: usize) -> Self {
        self.max_handlers = max;
        self
    }

    /// At most this many pending timers.
    pub fn max_timers(mut self, max: usize) -> Self {
        self.max_timers = max;
        self
    }

    /// Readiness events taken from the kernel per wait.
    pub fn events_per_wait(mut self, n: usize) -> Self {
        self.events = n.max(1);
        self
    }

    /// Calls `hook` after every upcall, on the loop thread, in dispatch order: which
    /// registration, which hook ([`Hook`]), what it answered ([`Outcome`]). A debugging aid
    /// for inverted control (`reactor_debugging` prints one); off by default.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use std::time::Duration;
    /// use reactor::{Context, Disposition, EventHandler, Hook, Reactor, TimerId};
    ///
    /// struct Tick;
    /// impl EventHandler for Tick {
    ///     fn handle_timeout(&mut self, ctx: &mut dyn Context, _: TimerId, _: &mut (dyn std::any::Any + Send)) -> Disposition {
    ///         ctx.end();
    ///         Disposition::Close
    ///     }
    /// }
    ///
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let log = seen.clone();
    /// let mut reactor = Reactor::builder()
    ///     .trace_upcalls(move |r| log.lock().unwrap().push(r.hook))
    ///     .build()?;
    /// let t = reactor.register(Tick, reactor::Interest::NONE)?;
    /// let id = reactor::Context::schedule_timer(&mut reactor, t, Duration::ZERO, None, Box::new(()))?;
    /// reactor.serve()?;
    /// assert_eq!(*seen.lock().unwrap(), [Hook::Timeout(id), Hook::Close(reactor::CloseReason::Requested)]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn trace_upcalls(mut self, hook: impl FnMut(&UpcallRecord) + Send + 'static) -> Self {
        self.trace = Some(TraceHook(Box::new(hook)));
        self
    }

    /// Builds the reactor: an epoll instance (through mio) and an eventfd wake-up
    /// ([`EventFd`], registered with it).
    pub fn build(self) -> io::Result<Reactor> {
        let poll = mio::Poll::new()?;
        // The wake-up is the Wrapper Facade's eventfd, registered like any other source.
        let mut waker = EventFd::new()?;
        poll.registry()
            .register(&mut waker, WAKER, mio::Interest::READABLE)?;
        let registry = poll.registry().try_clone()?;
        Ok(Reactor {
            poll,
            events: mio::Events::with_capacity(self.events),
            registry,
            slots: Slab::with_limit(self.max_handlers),
            timers: TimerQueue::with_limit(self.max_timers),
            shared: Arc::new(Shared::new(waker)),
            clock: self.clock,
            ready: VecDeque::new(),
            current: None,
            notify_cap: self.notify_cap,
            signal_fd: None,
            watchers: Vec::new(),
            signals_ready: false,
            expired: Vec::new(),
            notices: VecDeque::new(),
            closing: false,
            trace: self.trace,
        })
    }
}

/// The Reactor: waits for events on many handles at once, then demultiplexes and dispatches
/// each to the handler registered for it, on one thread.
///
/// See the [crate docs](crate) for the contract and an example. Besides its own loop methods
/// ([`handle_events`](Self::handle_events), [`serve`](Self::serve), [`end`](Self::end),
/// [`is_done`](Self::is_done), [`reset`](Self::reset)), it implements [`Context`], so code
/// outside any upcall registers, schedules and notifies with the same calls as a handler.
/// Inside an upcall the handler gets the same `Reactor` as its `&mut dyn Context` (its own
/// registration's handler is out of its slot meanwhile), so `Context` is implemented once.
pub struct Reactor {
    poll: mio::Poll,
    events: mio::Events,
    registry: mio::Registry,
    slots: Slab<Slot>,
    timers: TimerQueue,
    shared: Arc<Shared>,
    clock: Arc<dyn Clock>,
    /// Registrations with readiness to dispatch, in arrival order.
    ready: VecDeque<Token>,
    current: Option<Token>,
    notify_cap: usize,
    signal_fd: Option<SignalFd>,
    watchers: Vec<(i32, Token)>,
    signals_ready: bool,
    expired: Vec<Expired>,
    notices: VecDeque<Notice>,
    /// [`Reactor::close_all`] is running: registrations are refused until it returns.
    closing: bool,
    trace: Option<TraceHook>,
}

impl std::fmt::Debug for Reactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reactor")
            .field("handlers", &self.slots.len())
            .field("timers", &self.timers.len())
            .field("done", &self.is_done())
            .finish()
    }
}

impl Reactor {
    /// A reactor with the default configuration.
    pub fn new() -> io::Result<Reactor> {
        ReactorBuilder::default().build()
    }

    /// Configures a reactor.
    pub fn builder() -> ReactorBuilder {
        ReactorBuilder::default()
    }

    /// A cross-thread handle: post messages or closures, end the loop.
    pub fn remote(&self) -> ReactorRemote {
        ReactorRemote {
            shared: self.shared.clone(),
        }
    }

    /// Waits at most `timeout` (forever with `None`) for events, then dispatches one iteration:
    /// expired timers, then up to the cap of notifications, then signals and I/O.
    /// Returns how many upcalls ran.
    ///
    /// The wait is cut short by the earliest timer, by pending notifications and by handlers
    /// that asked to be dispatched again; an interrupted wait (`EINTR`) counts as an empty one.
    pub fn handle_events(&mut self, timeout: Option<Duration>) -> io::Result<usize> {
        let mut wait = timeout;
        let mut why = if timeout.is_some() {
            "at most the caller's timeout"
        } else {
            "no timeout"
        };
        if !self.ready.is_empty() || self.shared.has_pending() || self.shared.is_ended() {
            wait = Some(Duration::ZERO);
            why = "0: work is waiting";
        }
        if let Some(deadline) = self.timers.next_deadline() {
            let until = deadline.saturating_duration_since(self.clock.now());
            if wait.is_none_or(|w| until < w) {
                why = "until the earliest timer";
            }
            wait = Some(wait.map_or(until, |w| w.min(until)));
        }
        seq!(REACTOR => DEMUX, "poll({why})");
        match self.poll.poll(&mut self.events, wait) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => self.events.clear(),
            Err(e) => return Err(e),
        }
        for event in self.events.iter() {
            match event.token() {
                WAKER => {
                    seq!(reply DEMUX => REACTOR, "notify eventfd readable");
                    self.shared.woke();
                    rearm_own(&self.registry, self.shared.waker_fd(), WAKER);
                }
                SIGNALS => {
                    seq!(reply DEMUX => REACTOR, "signalfd readable");
                    self.signals_ready = true;
                }
                t => Self::mark_ready(
                    &mut self.slots,
                    &mut self.ready,
                    Token::from_u64(t.0 as u64),
                    bits_of(event),
                    closed(event),
                ),
            }
        }
        let mut upcalls = self.dispatch_timers();
        upcalls += self.dispatch_notifications();
        upcalls += self.dispatch_signals();
        upcalls += self.dispatch_io();
        Ok(upcalls)
    }

    /// Registers `handler` for `interest` from outside any upcall (inside one, use
    /// [`Context::register`]). Takes the handler itself, boxed or not.
    ///
    /// This inherent method is what `reactor.register(..)` calls even with both [`Context`]
    /// and [`Dispatcher`] in scope, so the call is never ambiguous.
    pub fn register(
        &mut self,
        handler: impl EventHandler,
        interest: Interest,
    ) -> Result<Token, DispatchError> {
        Context::register(self, crate::boxed(handler), interest)
    }

    /// Runs [`handle_events`](Self::handle_events) until [`end`](Self::end) is called
    /// (from an upcall, another thread or a signal handler). Live handlers stay registered:
    /// [`reset`](Self::reset) and serve again, inspect them, or drop the reactor (or call
    /// [`close_all`](Self::close_all)) to close them.
    ///
    /// [`Dispatcher::run`] is the other way to run a reactor: the same loop, then every live
    /// registration closed with [`CloseReason::Shutdown`], as every dispatcher does.
    pub fn serve(&mut self) -> io::Result<()> {
        while !self.is_done() {
            self.handle_events(None)?;
        }
        Ok(())
    }

    /// Asks the loop to end after the current iteration.
    pub fn end(&self) {
        self.shared.end();
    }

    /// Whether the loop was asked to end.
    pub fn is_done(&self) -> bool {
        self.shared.is_ended()
    }

    /// Lets an ended loop run again.
    pub fn reset(&mut self) {
        self.shared.reset();
    }

    /// Number of live registrations.
    pub fn handlers(&self) -> usize {
        self.slots.len()
    }

    /// Number of scheduled timers.
    pub fn timers(&self) -> usize {
        self.timers.len()
    }

    /// Drops the notifications still queued for `token`; returns how many.
    pub fn purge_notifications(&mut self, token: Token) -> usize {
        self.shared.purge(token)
    }
}

impl Drop for Reactor {
    fn drop(&mut self) {
        self.close_all();
        self.shared.close();
    }
}

/// The participants' names in the sequence diagrams drawn from runs: the Initiation
/// Dispatcher, the Synchronous Event Demultiplexer, the timer queue and the notification queue.
const REACTOR: &str = "Reactor";
const DEMUX: &str = "demultiplexer (mio Poll)";
const TIMERS: &str = "TimerQueue";
const NOTICES: &str = "notify queue";

/// A registration's name in the sequence diagrams drawn from runs (examples alias it).
fn participant(token: Token) -> String {
    format!("handler {token}")
}

/// What an event reported, as the sequence diagrams say it.
fn describe(bits: Readiness) -> String {
    let names = [
        (Readiness::READ, "readable"),
        (Readiness::WRITE, "writable"),
        (Readiness::EXCEPT, "exceptional"),
    ];
    let said: Vec<&str> = names
        .iter()
        .filter(|(bit, _)| bits.intersects(*bit))
        .map(|(_, name)| *name)
        .collect();
    if said.is_empty() {
        "closed".to_owned()
    } else {
        said.join(" and ")
    }
}

impl Reactor {
    /// Records what an event reported for `token` and queues it if its interest wants it.
    /// (An associated function: the caller is iterating the reactor's `events`.)
    fn mark_ready(
        slots: &mut Slab<Slot>,
        ready: &mut VecDeque<Token>,
        token: Token,
        bits: Readiness,
        closed: bool,
    ) {
        let Some(slot) = slots.get_mut(token) else {
            return;
        };
        seq!(reply DEMUX => REACTOR, "{} {}", participant(token), describe(bits));
        slot.pending |= bits;
        slot.hup |= closed;
        slot.reg.reported(bits);
        if !slot.suspended && !slot.queued && slot.pending.intersects(mask_of(slot.interest)) {
            slot.queued = true;
            ready.push_back(token);
        }
    }

    /// Runs one upcall with the panic and removal rules of the contract. `None` when the
    /// registration is gone or its handler is already in an upcall further up the stack.
    fn upcall(
        &mut self,
        token: Token,
        hook: Hook,
        f: impl FnOnce(&mut dyn EventHandler, &mut dyn Context) -> Disposition,
    ) -> Option<Disposition> {
        let mut handler = self.slots.get_mut(token)?.handler.take()?;
        let outer = self.current.replace(token);
        seq!(REACTOR => participant(token), "{hook}");
        let result = catch_unwind(AssertUnwindSafe(|| f(handler.as_mut(), self)));
        self.current = outer;
        let outcome = result
            .as_ref()
            .map_or(Outcome::Panicked, |d| Outcome::Answered(*d));
        match outcome {
            Outcome::Panicked => seq!(fail participant(token) => REACTOR, "panicked"),
            _ => seq!(reply participant(token) => REACTOR, "{outcome}"),
        }
        self.traced(token, hook, outcome);
        let slot = self
            .slots
            .get_mut(token)
            .expect("a registration in an upcall stays live");
        slot.handler = Some(handler);
        let doomed = slot.doomed.take();
        match AfterUpcall::of(result.ok(), doomed) {
            AfterUpcall::Keep(d) => Some(d),
            AfterUpcall::Close { reason, quiet } => {
                if reason == CloseReason::Panicked {
                    tracing::warn!(?token, "upcall panicked; closing its handler");
                }
                self.close(token, reason, quiet);
                Some(Disposition::Close)
            }
        }
    }

    /// Tells the trace hook, if any, of an upcall that returned.
    fn traced(&mut self, token: Token, hook: Hook, outcome: Outcome) {
        if let Some(TraceHook(trace)) = &mut self.trace {
            trace(&UpcallRecord {
                token,
                hook,
                outcome,
            });
        }
    }

    /// Ends a registration whose handler is not in an upcall.
    fn close(&mut self, token: Token, reason: CloseReason, quiet: bool) {
        let Some(slot) = self.slots.remove(token) else {
            return;
        };
        // The handler, still alive, keeps the descriptor open until after this.
        let mut reg = slot.reg;
        seq!(REACTOR => DEMUX, "deregister {}", participant(token));
        reg.deregister(&self.registry);
        if slot.timers.is_some() {
            seq!(REACTOR => TIMERS, "cancel the timers of {}", participant(token));
        }
        self.timers.cancel_list(slot.timers, drop);
        self.watchers.retain(|(_, t)| *t != token);
        let mut handler = slot
            .handler
            .expect("close runs on a handler not in an upcall");
        if !quiet {
            let outer = self.current.replace(token);
            seq!(REACTOR => participant(token), "handle_close({reason:?})");
            let panicked =
                catch_unwind(AssertUnwindSafe(|| handler.handle_close(self, reason))).is_err();
            if panicked {
                tracing::warn!(?token, "handle_close panicked");
            }
            self.current = outer;
            let outcome = if panicked {
                Outcome::Panicked
            } else {
                Outcome::Closed
            };
            match outcome {
                Outcome::Panicked => seq!(fail participant(token) => REACTOR, "panicked"),
                _ => seq!(reply participant(token) => REACTOR, "{outcome}"),
            }
            self.traced(token, Hook::Close(reason), outcome);
        }
        drop(handler);
    }

    /// Closes every live registration with [`CloseReason::Shutdown`], once each.
    ///
    /// Registrations are refused with [`DispatchError::ShutDown`] meanwhile (a `handle_close` registering a successor gets
    /// the error), so the table empties however the handlers react, and none goes without its
    /// close. Afterwards the reactor takes registrations again (it may be reset and run).
    pub fn close_all(&mut self) {
        self.closing = true;
        loop {
            let tokens = self.slots.tokens();
            if tokens.is_empty() {
                break;
            }
            let mut progress = false;
            for t in tokens {
                if self.slots.get(t).is_some_and(|s| s.handler.is_some()) {
                    self.close(t, CloseReason::Shutdown, false);
                    progress = true;
                }
            }
            if !progress {
                // Only handlers in an upcall further up the stack are left (not reachable
                // from the public API): their upcall's return closes them.
                break;
            }
        }
        self.closing = false;
        self.timers.clear();
        self.ready.clear();
    }

    fn dispatch_timers(&mut self) -> usize {
        if self.timers.is_empty() {
            return 0;
        }
        let now = self.clock.now();
        let mut expired = std::mem::take(&mut self.expired);
        self.timers.expire(now, &mut expired);
        if !expired.is_empty() {
            seq!(REACTOR => TIMERS, "expire(now)");
            seq!(reply TIMERS => REACTOR, "{} timer(s) due", expired.len());
        }
        let mut upcalls = 0;
        for Expired { id, owner } in expired.drain(..) {
            // An earlier timeout of this iteration may have cancelled it.
            let Some(mut act) = self.timers.take_act(id) else {
                continue;
            };
            let d = self.upcall(owner, Hook::Timeout(id), |h, ctx| {
                h.handle_timeout(ctx, id, act.as_mut())
            });
            if d.is_some() {
                upcalls += 1;
            }
            if let Finished::Fired {
                head: Head::Becomes(head),
                ..
            } = self.timers.finish(id, act, now)
                && let Some(slot) = self.slots.get_mut(owner)
            {
                slot.timers = head;
            }
        }
        self.expired = expired;
        upcalls
    }

    fn dispatch_notifications(&mut self) -> usize {
        self.shared.rearm();
        let mut notices = std::mem::take(&mut self.notices);
        self.shared.take(self.notify_cap, &mut notices);
        if !notices.is_empty() {
            seq!(REACTOR => NOTICES, "take up to {} notification(s)", self.notify_cap);
            seq!(reply NOTICES => REACTOR, "{} notification(s)", notices.len());
        }
        let mut upcalls = 0;
        while let Some(notice) = notices.pop_front() {
            match notice {
                Notice::Message(token, message) => {
                    if self
                        .upcall(token, Hook::Notify, |h, ctx| h.handle_notify(ctx, message))
                        .is_some()
                    {
                        upcalls += 1;
                    }
                }
                Notice::Job(job) => {
                    let outer = self.current.take();
                    if catch_unwind(AssertUnwindSafe(|| job(self))).is_err() {
                        tracing::warn!("posted job panicked");
                    }
                    self.current = outer;
                    upcalls += 1;
                }
            }
        }
        self.notices = notices;
        upcalls
    }

    fn dispatch_signals(&mut self) -> usize {
        if !std::mem::take(&mut self.signals_ready) {
            return 0;
        }
        let mut upcalls = 0;
        loop {
            let info = match self.signal_fd.as_ref().map(|fd| fd.read()) {
                Some(Ok(Some(info))) => info,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "reading the signal fd failed");
                    break;
                }
                _ => {
                    // Drained: a backend that disarms what it reported must watch it again.
                    if let Some(fd) = &self.signal_fd {
                        rearm_own(&self.registry, fd.as_raw_fd(), SIGNALS);
                    }
                    break;
                }
            };
            let signo = info.signal().as_raw();
            let targets: Vec<Token> = self
                .watchers
                .iter()
                .filter(|(s, _)| *s == signo)
                .map(|(_, t)| *t)
                .collect();
            for t in targets {
                if self
                    .upcall(t, Hook::Signal(signo), |h, ctx| h.handle_signal(ctx, signo))
                    .is_some()
                {
                    upcalls += 1;
                }
            }
        }
        upcalls
    }

    fn dispatch_io(&mut self) -> usize {
        let mut upcalls = 0;
        // Registrations asking to be dispatched again go to the back and wait for the next
        // iteration, after everyone else had a turn.
        for _ in 0..self.ready.len() {
            let Some(token) = self.ready.pop_front() else {
                break;
            };
            upcalls += self.dispatch_one(token);
        }
        upcalls
    }

    fn dispatch_one(&mut self, token: Token) -> usize {
        let mut upcalls = 0;
        match self.slots.get_mut(token) {
            Some(slot) => slot.queued = false,
            None => return 0,
        }
        for bit in Readiness::KINDS {
            let Some(slot) = self.slots.get_mut(token) else {
                return upcalls;
            };
            if slot.suspended || !(slot.pending & bit).intersects(mask_of(slot.interest)) {
                continue;
            }
            slot.pending.remove(bit);
            let hook = match bit {
                Readiness::READ => Hook::Input,
                Readiness::WRITE => Hook::Output,
                _ => Hook::Exception,
            };
            let d = self.upcall(token, hook, |h, ctx| match bit {
                Readiness::READ => h.handle_input(ctx),
                Readiness::WRITE => h.handle_output(ctx),
                _ => h.handle_exception(ctx),
            });
            upcalls += 1;
            match d {
                Some(Disposition::Again) => {
                    if let Some(slot) = self.slots.get_mut(token) {
                        slot.pending |= bit;
                    }
                }
                Some(Disposition::Close) | None => return upcalls,
                Some(_) => {
                    // A handler may stop at a short read; if the peer's close came with the
                    // data, no new edge will come: upcall input once more.
                    if let Some(slot) = self.slots.get_mut(token)
                        && bit == Readiness::READ
                        && std::mem::take(&mut slot.hup)
                    {
                        slot.pending |= Readiness::READ;
                    }
                }
            }
        }
        if let Some(slot) = self.slots.get_mut(token) {
            // What the upcalls drained is watched again (poll(2) backend only).
            slot.reg.rearm(
                &self.registry,
                mio::Token(token.to_u64() as usize),
                slot.interest,
                slot.pending,
            );
            if !slot.suspended && !slot.queued && slot.pending.intersects(mask_of(slot.interest)) {
                slot.queued = true;
                self.ready.push_back(token);
            }
        }
        upcalls
    }

    /// Keeps the owner's timer list head right when one of its timers leaves the queue.
    fn timer_gone(&mut self, gone: &Cancelled) {
        if let Head::Becomes(head) = gone.head
            && let Some(slot) = self.slots.get_mut(gone.owner)
        {
            slot.timers = head;
        }
    }

    fn slot(&mut self, token: Token) -> Result<&mut Slot, DispatchError> {
        self.slots
            .get_mut(token)
            .ok_or(DispatchError::UnknownToken(token))
    }

    fn requeue_if_ready(&mut self, token: Token) {
        if let Some(slot) = self.slots.get_mut(token)
            && !slot.suspended
            && !slot.queued
            && slot.pending.intersects(mask_of(slot.interest))
        {
            slot.queued = true;
            self.ready.push_back(token);
        }
    }
}

impl Context for Reactor {
    fn current(&self) -> Option<Token> {
        self.current
    }

    fn now(&self) -> Instant {
        self.clock.now()
    }

    fn register(
        &mut self,
        handler: Box<dyn EventHandler>,
        interest: Interest,
    ) -> Result<Token, DispatchError> {
        if self.closing {
            return Err(DispatchError::ShutDown);
        }
        let fd = handler.handle().map(|fd| fd.as_raw_fd());
        let wanted = mio_interest(interest);
        if wanted.is_some() && fd.is_none() {
            return Err(DispatchError::NoHandle(interest));
        }
        let slot = Slot {
            handler: Some(handler),
            reg: Registration::new(fd),
            interest,
            suspended: false,
            pending: Readiness::NONE,
            hup: false,
            queued: false,
            timers: None,
            doomed: None,
        };
        let capacity = self.slots.limit();
        let token = self.slots.insert(slot).map_err(|_| DispatchError::Full {
            what: "handler table",
            capacity,
        })?;
        let slot = self.slots.get_mut(token).expect("just inserted");
        let mio_token = mio::Token(token.to_u64() as usize);
        if let Err(e) = slot.reg.set_interest(&self.registry, mio_token, interest) {
            self.slots.remove(token);
            return Err(e);
        }
        if posa_seq::enabled() {
            let caller = self
                .current
                .map_or_else(|| posa_seq::THREAD.to_owned(), participant);
            seq!(caller => REACTOR, "register({}, {interest:?})", participant(token));
        }
        Ok(token)
    }

    fn remove(&mut self, token: Token, how: Removal) -> Result<(), DispatchError> {
        let slot = self.slot(token)?;
        if slot.doomed.is_some() {
            // Removed already during its upcall: the first removal decides how it ends.
            return Err(DispatchError::UnknownToken(token));
        }
        if slot.handler.is_none() {
            slot.doomed = Some(how);
        } else {
            self.close(token, CloseReason::Removed, how == Removal::Quiet);
        }
        Ok(())
    }

    fn interest(&self, token: Token) -> Result<Interest, DispatchError> {
        self.slots
            .get(token)
            .map(|slot| slot.interest)
            .ok_or(DispatchError::UnknownToken(token))
    }

    fn set_interest(&mut self, token: Token, interest: Interest) -> Result<(), DispatchError> {
        let registry = &self.registry;
        let slot = self
            .slots
            .get_mut(token)
            .ok_or(DispatchError::UnknownToken(token))?;
        slot.reg
            .set_interest(registry, mio::Token(token.to_u64() as usize), interest)?;
        slot.interest = interest;
        self.requeue_if_ready(token);
        Ok(())
    }

    fn suspend(&mut self, token: Token) -> Result<(), DispatchError> {
        self.slot(token)?.suspended = true;
        Ok(())
    }

    fn resume(&mut self, token: Token) -> Result<(), DispatchError> {
        self.slot(token)?.suspended = false;
        self.requeue_if_ready(token);
        Ok(())
    }

    fn schedule_timer(
        &mut self,
        token: Token,
        delay: Duration,
        interval: Option<Duration>,
        act: Act,
    ) -> Result<TimerId, DispatchError> {
        let deadline = self.clock.now() + delay;
        let head = self.slot(token)?.timers;
        let capacity = self.timers.limit();
        let id = self
            .timers
            .schedule(token, head, deadline, interval, act)
            .map_err(|_| DispatchError::Full {
                what: "timer queue",
                capacity,
            })?;
        self.slot(token)?.timers = Some(id);
        Ok(id)
    }

    fn cancel_timer(&mut self, timer: TimerId) -> Option<Act> {
        let gone = self.timers.cancel(timer)?;
        self.timer_gone(&gone);
        gone.act
    }

    fn reset_timer_interval(
        &mut self,
        timer: TimerId,
        interval: Option<Duration>,
    ) -> Result<(), DispatchError> {
        if self.timers.set_interval(timer, interval) {
            Ok(())
        } else {
            Err(DispatchError::UnknownTimer(timer))
        }
    }

    fn notify(&mut self, token: Token, message: Message) -> Result<(), DispatchError> {
        if !self.slots.contains(token) {
            return Err(DispatchError::UnknownToken(token));
        }
        self.shared.push_local(Notice::Message(token, message));
        Ok(())
    }

    fn watch_signal(&mut self, token: Token, signal: i32) -> Result<(), DispatchError> {
        if !self.slots.contains(token) {
            return Err(DispatchError::UnknownToken(token));
        }
        let sig = Signal::from_raw(signal).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{signal} is not a signal"),
            )
        })?;
        let mut set = self
            .signal_fd
            .as_ref()
            .map(|fd| *fd.signals())
            .unwrap_or_default();
        if !set.contains(sig) {
            set.insert(sig);
            // signalfd's set is fixed at creation: open one for the wider set, then retire the old.
            let mut fd = SignalFd::new(&set)?;
            self.registry
                .register(&mut fd, SIGNALS, mio::Interest::READABLE)?;
            if let Some(mut old) = self.signal_fd.replace(fd) {
                let _ = self.registry.deregister(&mut old);
            }
            // Signals pending before the switch are readable from the new descriptor.
            self.signals_ready = true;
        }
        if !self.watchers.contains(&(signal, token)) {
            self.watchers.push((signal, token));
        }
        Ok(())
    }

    fn end(&mut self) {
        self.shared.end();
    }

    fn remote(&self) -> Arc<dyn Remote> {
        Arc::new(ReactorRemote {
            shared: self.shared.clone(),
        })
    }
}

impl Dispatcher for Reactor {
    fn register(
        &mut self,
        handler: Box<dyn EventHandler>,
        interest: Interest,
    ) -> Result<Token, DispatchError> {
        Context::register(self, handler, interest)
    }

    fn remote(&self) -> Arc<dyn Remote> {
        Context::remote(self)
    }

    fn run(&mut self) -> io::Result<()> {
        let result = self.serve();
        self.close_all();
        result
    }
}
