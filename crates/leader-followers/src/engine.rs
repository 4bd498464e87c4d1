//! The engine both thread pools share: the registration table, per-handle serialisation, the
//! promotion protocol, and the [`Context`] and [`Remote`] that upcalls and other threads use.
//!
//! One mutex guards the table; no thread holds it while calling user code.
//! A registration is *idle* (its handler is in its slot), *queued* (idle, with work, its token in
//! the ready set), or *busy* (a thread took its handler out to upcall it).
//! Work arriving for a busy registration (readiness bits, due timers, notifications, signals) is
//! recorded in the slot; the busy thread finds it when its upcall returns, so it is never lost
//! and never given to a second thread: this is step 2 of the pattern, deactivating a handle
//! while it is processed, done in user space because mio has no one-shot mode.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use parking_lot::{Condvar, Mutex, MutexGuard};
use pattern_core::{
    Act, Clock, CloseReason, Context, DispatchError, Disposition, EventHandler, Interest, Job,
    Message, Remote, Removal, Slab, TimerId, Token,
};
use wrapper_facade::notify::EventFd;
use wrapper_facade::signal::{Signal, SignalFd, SignalSet};

use reactor::readiness::{Readiness, bits_of, closed, mask_of, mio_interest};
use reactor::timer::{Expired, Finished, Head, TimerQueue};

use crate::wakeup::{Role, Wake, Wakeup};

const WAKER: mio::Token = mio::Token(usize::MAX);
const SIGNALS: mio::Token = mio::Token(usize::MAX - 1);

/// Which pool the engine runs.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Mode {
    /// Every thread takes turns as leader; `max` bounds growth (equal to the start size when
    /// growth is off).
    LeaderFollowers { max: usize },
    /// One reactor thread demultiplexes; at most `queue` ready registrations wait for workers.
    HalfSync { queue: usize },
}

/// Configuration shared by both pools.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) max_handlers: usize,
    pub(crate) max_timers: usize,
    pub(crate) events: usize,
    /// Upcalls one thread makes for one registration before it serves the others.
    pub(crate) batch: usize,
}

/// One registration.
struct Slot {
    /// `None` while busy: a thread holds the handler for an upcall.
    handler: Option<Box<dyn EventHandler>>,
    fd: Option<RawFd>,
    in_poll: bool,
    interest: Interest,
    suspended: bool,
    /// Readiness seen and not yet consumed.
    pending: Readiness,
    /// The peer's close (or an error) was reported and no input upcall has started since.
    hup: bool,
    queued: bool,
    /// Timers that expired and wait for the handler to be free (their ACTs stay in the timer
    /// queue, so a cancel meanwhile gives the ACT back and the id is skipped here).
    due: VecDeque<TimerId>,
    notices: VecDeque<Message>,
    signals: VecDeque<i32>,
    /// Head of the list of this registration's timers (linked through the timer queue).
    timers: Option<TimerId>,
    doomed: Option<Removal>,
}

impl Slot {
    fn has_work(&self) -> bool {
        !self.due.is_empty()
            || !self.notices.is_empty()
            || !self.signals.is_empty()
            || (!self.suspended && self.pending.intersects(mask_of(self.interest)))
    }
}

/// What one thread takes from the shared state to run without the lock.
enum Work {
    Job(Job),
    Turn(Token),
}

/// One upcall a turn makes.
enum Item {
    Timer(TimerId, Act),
    Notice(Message),
    Signal(i32),
    /// An I/O upcall for one readiness bit; for input, whether the peer's close was known
    /// when it started.
    Io(Readiness, bool),
}

/// Everything behind the engine's mutex.
pub(crate) struct State {
    slots: Slab<Slot>,
    timers: TimerQueue,
    /// Registrations with work, in arrival order: the events demultiplexed and not yet dispatched.
    ready: VecDeque<Token>,
    jobs: VecDeque<Job>,
    expired: Vec<Expired>,
    /// Who waits (followers, the poller) and whom to wake for new work.
    wake: Wakeup,
    poll_deadline: Option<Instant>,
    /// Pool threads alive (the reactor thread excluded).
    threads: usize,
    /// Pool threads inside a turn or a job.
    busy: usize,
    reactor_waiting: bool,
    /// Ready entries and posted jobs left from the last look at the kernel (leader/followers).
    /// Jobs count too: a lone thread with jobs and nothing ready must take them, not poll again.
    round: usize,
    /// Entries workers took from the queue (half-sync/half-async).
    dequeues: u64,
    closed: bool,
    signal_fd: Option<SignalFd>,
    watchers: Vec<(i32, Token)>,
}

/// Counters a running pool keeps; read them through [`PoolMonitor`](crate::PoolMonitor).
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) upcalls: AtomicU64,
    pub(crate) promotions: AtomicU64,
    pub(crate) handoffs: AtomicU64,
    pub(crate) polls: AtomicU64,
    pub(crate) threads_started: AtomicUsize,
    pub(crate) peak_busy: AtomicUsize,
}

struct Poller {
    poll: mio::Poll,
    events: mio::Events,
}

/// The state shared by a pool's threads, its [`Remote`]s and the dispatcher value itself.
pub(crate) struct Core {
    state: Mutex<State>,
    followers_cv: Condvar,
    reactor_cv: Condvar,
    /// Held only by the thread in the leader (or reactor) role while it waits for events.
    poller: Mutex<Poller>,
    registry: mio::Registry,
    /// Wakes the thread waiting in the poll: the Wrapper Facade's eventfd, registered with it.
    waker: EventFd,
    clock: Arc<dyn Clock>,
    mode: Mode,
    batch: usize,
    ended: AtomicBool,
    handles: Mutex<Vec<JoinHandle<()>>>,
    error: Mutex<Option<io::Error>>,
    /// Bumped when the set of watched signals grows, so each pool thread blocks it too.
    sig_epoch: AtomicU64,
    pub(crate) stats: Stats,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("mode", &self.mode)
            .field("ended", &self.ended.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

type Guard<'a> = MutexGuard<'a, State>;

impl Core {
    pub(crate) fn new(config: Config, mode: Mode) -> io::Result<Arc<Core>> {
        let poll = mio::Poll::new()?;
        let mut waker = EventFd::new()?;
        poll.registry()
            .register(&mut waker, WAKER, mio::Interest::READABLE)?;
        let registry = poll.registry().try_clone()?;
        Ok(Arc::new(Core {
            state: Mutex::new(State {
                slots: Slab::with_limit(config.max_handlers),
                timers: TimerQueue::with_limit(config.max_timers),
                ready: VecDeque::new(),
                jobs: VecDeque::new(),
                expired: Vec::new(),
                wake: Wakeup::new(match mode {
                    Mode::LeaderFollowers { .. } => Role::LeaderFollowers,
                    Mode::HalfSync { .. } => Role::HalfSync,
                }),
                poll_deadline: None,
                threads: 0,
                busy: 0,
                reactor_waiting: false,
                round: 0,
                dequeues: 0,
                closed: false,
                signal_fd: None,
                watchers: Vec::new(),
            }),
            followers_cv: Condvar::new(),
            reactor_cv: Condvar::new(),
            poller: Mutex::new(Poller {
                poll,
                events: mio::Events::with_capacity(config.events.max(1)),
            }),
            registry,
            waker,
            clock: config.clock,
            mode,
            batch: config.batch.max(1),
            ended: AtomicBool::new(false),
            handles: Mutex::new(Vec::new()),
            error: Mutex::new(None),
            sig_epoch: AtomicU64::new(0),
            stats: Stats::default(),
        }))
    }

    fn ended(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }

    pub(crate) fn end(&self) {
        self.ended.store(true, Ordering::Release);
        let mut st = self.state.lock();
        st.wake.all_followers_woken();
        self.followers_cv.notify_all();
        self.reactor_cv.notify_all();
        let _ = self.waker.notify();
    }

    pub(crate) fn remote(self: &Arc<Self>) -> Arc<dyn Remote> {
        Arc::new(PoolRemote { core: self.clone() })
    }

    /// Live registrations.
    pub(crate) fn handlers(&self) -> usize {
        self.state.lock().slots.len()
    }

    /// Scheduled timers: waiting, due or firing.
    pub(crate) fn timers(&self) -> usize {
        self.state.lock().timers.len()
    }

    // ----- waking threads -------------------------------------------------------------

    /// Work was added from outside the pool loop: wake someone to take it.
    fn kick(self: &Arc<Self>, st: &mut State) {
        let wake = st.wake.work_added();
        self.carry_out(st, wake);
    }

    /// Carries out a wake-up decision of [`Wakeup`].
    fn carry_out(self: &Arc<Self>, st: &mut State, wake: Wake) {
        match wake {
            Wake::Nobody => {}
            Wake::Follower => {
                self.followers_cv.notify_one();
            }
            Wake::Poller => {
                // Cannot fail on a live eventfd: saturation is ruled out by the drain below.
                let _ = self.waker.notify();
            }
            Wake::Grow => self.grow_if_stalled(st),
        }
    }

    fn wake_poller(self: &Arc<Self>, st: &mut State) {
        let wake = st.wake.poller();
        self.carry_out(st, wake);
    }

    /// A thread took a piece of work and is about to process it. Leader/followers: with
    /// nobody polling it was the leader, so it promotes a follower to leader (or, when every
    /// thread is busy in an upcall and growth is on, generates a new leader); with someone
    /// polling and more work queued, it wakes one more thread for that work, so that the work
    /// never waits behind an upcall that blocks. Half-sync/half-async: work left wakes a free
    /// worker.
    fn promote(self: &Arc<Self>, st: &mut State) {
        let work_left = !st.ready.is_empty() || !st.jobs.is_empty();
        let wake = st.wake.work_taken(work_left);
        if wake == Wake::Follower && matches!(self.mode, Mode::LeaderFollowers { .. }) {
            self.stats.promotions.fetch_add(1, Ordering::Relaxed);
        }
        self.carry_out(st, wake);
    }

    fn grow_if_stalled(self: &Arc<Self>, st: &mut State) {
        let Mode::LeaderFollowers { max } = self.mode else {
            return;
        };
        if self.ended() || st.threads == 0 || st.threads >= max || st.busy < st.threads {
            return;
        }
        self.spawn_thread(st);
    }

    pub(crate) fn spawn_thread(self: &Arc<Self>, st: &mut State) {
        st.threads += 1;
        let n = self.stats.threads_started.fetch_add(1, Ordering::Relaxed);
        let core = self.clone();
        let name = match self.mode {
            Mode::LeaderFollowers { .. } => format!("lf-{n}"),
            Mode::HalfSync { .. } => format!("hsha-worker-{n}"),
        };
        let spawned = std::thread::Builder::new()
            .name(name)
            .spawn(move || match core.mode {
                Mode::LeaderFollowers { .. } => core.lf_thread(),
                Mode::HalfSync { .. } => core.worker_thread(),
            });
        match spawned {
            Ok(h) => self.handles.lock().push(h),
            Err(e) => {
                st.threads -= 1;
                tracing::warn!(error = %e, "could not start a pool thread");
            }
        }
    }

    pub(crate) fn lock(&self) -> Guard<'_> {
        self.state.lock()
    }

    // ----- the pool threads -----------------------------------------------------------

    fn block_signals(&self, epoch: &mut u64, st: &State) {
        let now = self.sig_epoch.load(Ordering::Acquire);
        if now != *epoch {
            *epoch = now;
            if let Some(fd) = &st.signal_fd {
                let _ = fd.signals().block_current_thread();
            }
        }
    }

    /// A leader/followers pool thread: follower, leader, processing, and back.
    pub(crate) fn lf_thread(self: &Arc<Self>) {
        let mut st = self.state.lock();
        let mut epoch = 0;
        loop {
            if self.ended() {
                break;
            }
            self.block_signals(&mut epoch, &st);
            self.expire_timers(&mut st);
            // Work demultiplexed earlier is taken first, but once a whole round of the ready
            // set (and of the jobs) has been served, the kernel is asked again (without
            // blocking) before more: handlers answering `Again`, or jobs posting jobs, must not
            // starve the others' new events.
            let idle = st.ready.is_empty() && st.jobs.is_empty();
            if (st.round > 0 || st.wake.polling() || idle)
                && let Some(work) = self.next_work(&mut st)
            {
                // Step 5: promote a follower before processing.
                st.busy += 1;
                self.promote(&mut st);
                st = self.perform(st, work);
                st.busy -= 1;
                continue;
            }
            if st.wake.polling() {
                // Someone leads: wait as a follower.
                st.wake.follower_waits();
                self.followers_cv.wait(&mut st);
                st.wake.follower_runs();
                continue;
            }
            // Lead: wait for events on the shared handle set.
            st = self.poll_once(st, !idle);
        }
        st.threads -= 1;
        // A thread that leaves may have been the one a promotion woke.
        st.wake.all_followers_woken();
        self.followers_cv.notify_all();
    }

    /// A half-sync/half-async worker: takes queued work, never polls.
    pub(crate) fn worker_thread(self: &Arc<Self>) {
        let mut st = self.state.lock();
        loop {
            if self.ended() {
                break;
            }
            if let Some(work) = self.next_work(&mut st) {
                self.stats.handoffs.fetch_add(1, Ordering::Relaxed);
                st.dequeues += 1;
                if st.reactor_waiting {
                    self.reactor_cv.notify_one();
                }
                st.busy += 1;
                self.promote(&mut st);
                st = self.perform(st, work);
                st.busy -= 1;
                continue;
            }
            st.wake.follower_waits();
            self.followers_cv.wait(&mut st);
            st.wake.follower_runs();
        }
        st.threads -= 1;
    }

    /// The half-sync/half-async reactor thread: demultiplexes and queues, never upcalls.
    pub(crate) fn reactor_thread(self: &Arc<Self>) {
        let Mode::HalfSync { queue } = self.mode else {
            return;
        };
        let mut st = self.state.lock();
        let mut epoch = 0;
        loop {
            if self.ended() {
                break;
            }
            self.block_signals(&mut epoch, &st);
            if st.ready.len() >= queue {
                // The queue is full: stop reading the kernel until a worker takes an entry.
                let seen = st.dequeues;
                while st.dequeues == seen && !self.ended() {
                    st.reactor_waiting = true;
                    self.reactor_cv.wait(&mut st);
                    st.reactor_waiting = false;
                }
            }
            self.expire_timers(&mut st);
            st = self.poll_once(st, false);
        }
    }

    /// One wait on the handle set, then the readiness is recorded in the slots.
    fn poll_once<'a>(self: &'a Arc<Self>, mut st: Guard<'a>, nonblocking: bool) -> Guard<'a> {
        st.wake.poll_begins(!nonblocking);
        let now = self.clock.now();
        let deadline = st.timers.next_deadline();
        st.poll_deadline = if nonblocking { Some(now) } else { deadline };
        let timeout = if nonblocking {
            Some(Duration::ZERO)
        } else {
            deadline.map(|d| d.saturating_duration_since(now))
        };
        drop(st);
        self.stats.polls.fetch_add(1, Ordering::Relaxed);
        let mut poller = self.poller.lock();
        let Poller { poll, events } = &mut *poller;
        let result = if self.ended() {
            Ok(())
        } else {
            poll.poll(events, timeout)
        };
        if events.iter().any(|e| e.token() == WAKER) {
            // Reset the eventfd's counter (one read, before taking the state lock), so that it
            // never saturates and every later write raises a new edge.
            let _ = self.waker.drain();
        }
        let mut st = self.state.lock();
        st.wake.poll_ends();
        st.poll_deadline = None;
        match result {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => events.clear(),
            Err(e) => {
                tracing::error!(error = %e, "poll failed; ending the pool");
                events.clear();
                *self.error.lock() = Some(e);
                self.ended.store(true, Ordering::Release);
                st.wake.all_followers_woken();
                self.followers_cv.notify_all();
            }
        }
        let mut signals = false;
        for event in events.iter() {
            match event.token() {
                WAKER => {}
                SIGNALS => signals = true,
                t => {
                    let token = Token::from_u64(t.0 as u64);
                    if let Some(slot) = st.slots.get_mut(token) {
                        slot.pending |= bits_of(event);
                        slot.hup |= closed(event);
                        self.demultiplexed(&mut st, token);
                    }
                }
            }
        }
        drop(poller);
        if signals {
            self.read_signals(&mut st);
        }
        st.round = st.ready.len() + st.jobs.len();
        st
    }

    fn read_signals(self: &Arc<Self>, st: &mut State) {
        loop {
            let info = match st.signal_fd.as_ref().map(|fd| fd.read()) {
                Some(Ok(Some(info))) => info,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "reading the signal fd failed");
                    return;
                }
                _ => return,
            };
            let signo = info.signal().as_raw();
            let targets: Vec<Token> = st
                .watchers
                .iter()
                .filter(|(s, _)| *s == signo)
                .map(|(_, t)| *t)
                .collect();
            for t in targets {
                if let Some(slot) = st.slots.get_mut(t) {
                    slot.signals.push_back(signo);
                    self.demultiplexed(st, t);
                }
            }
        }
    }

    fn expire_timers(self: &Arc<Self>, st: &mut State) {
        let now = self.clock.now();
        let mut expired = std::mem::take(&mut st.expired);
        st.timers.expire(now, &mut expired);
        for Expired { id, owner } in expired.drain(..) {
            if let Some(slot) = st.slots.get_mut(owner) {
                slot.due.push_back(id);
                self.demultiplexed(st, owner);
            }
        }
        st.expired = expired;
    }

    /// The next piece of work for a pool thread: posted jobs first, then ready registrations.
    fn next_work(self: &Arc<Self>, st: &mut State) -> Option<Work> {
        let work = match st.jobs.pop_front() {
            Some(job) => Work::Job(job),
            None => Work::Turn(st.ready.pop_front()?),
        };
        st.round = st.round.saturating_sub(1);
        Some(work)
    }

    /// Queues `token` when it is idle and has work; returns whether it was queued. Wakes a
    /// thread for it.
    fn make_runnable(self: &Arc<Self>, st: &mut State, token: Token) -> bool {
        let queued = Self::queue(st, token);
        if queued {
            self.kick(st);
        }
        queued
    }

    /// Queues `token` when it is idle and has work, waking nobody: for the thread that is
    /// about to look for work itself (a leader after its wait, a thread after its turn), which
    /// promotes a follower when it takes an event, one at a time.
    fn queue(st: &mut State, token: Token) -> bool {
        let Some(slot) = st.slots.get_mut(token) else {
            return false;
        };
        if slot.queued || slot.handler.is_none() || !slot.has_work() {
            return false;
        }
        slot.queued = true;
        st.ready.push_back(token);
        true
    }

    /// Queues work found by the thread that waits on the demultiplexer: a leader keeps it for
    /// itself and the followers it promotes; the half-sync/half-async reactor thread hands it
    /// to a worker.
    fn demultiplexed(self: &Arc<Self>, st: &mut State, token: Token) {
        match self.mode {
            Mode::LeaderFollowers { .. } => {
                Self::queue(st, token);
            }
            Mode::HalfSync { .. } => {
                self.make_runnable(st, token);
            }
        }
    }

    fn perform<'a>(self: &'a Arc<Self>, st: Guard<'a>, work: Work) -> Guard<'a> {
        let busy = st.busy;
        self.stats.peak_busy.fetch_max(busy, Ordering::Relaxed);
        match work {
            Work::Job(job) => {
                drop(st);
                let mut ctx = PoolContext {
                    core: self,
                    current: None,
                };
                if catch_unwind(AssertUnwindSafe(|| job(&mut ctx))).is_err() {
                    tracing::warn!("posted job panicked");
                }
                self.state.lock()
            }
            Work::Turn(token) => self.turn(st, token),
        }
    }

    /// The next upcall for a busy registration: due timers, then notifications, then signals,
    /// then I/O.
    fn pick(st: &mut State, token: Token) -> Option<Item> {
        let State { slots, timers, .. } = st;
        let slot = slots.get_mut(token)?;
        while let Some(id) = slot.due.pop_front() {
            if let Some(act) = timers.take_act(id) {
                return Some(Item::Timer(id, act));
            }
        }
        if let Some(m) = slot.notices.pop_front() {
            return Some(Item::Notice(m));
        }
        if let Some(s) = slot.signals.pop_front() {
            return Some(Item::Signal(s));
        }
        if slot.suspended {
            return None;
        }
        let mask = mask_of(slot.interest);
        for bit in Readiness::KINDS {
            if (slot.pending & bit).intersects(mask) {
                slot.pending.remove(bit);
                // Taken when the upcall starts, not when it ends: a close reported while it
                // runs may come after data it has not read, and needs an upcall of its own.
                let hup = bit == Readiness::READ && std::mem::take(&mut slot.hup);
                return Some(Item::Io(bit, hup));
            }
        }
        None
    }

    /// Processes one registration: takes its handler out (busy), upcalls it for the work found
    /// in its slot, at most `batch` times, then puts it back (idle) and requeues it if work
    /// arrived meanwhile.
    fn turn<'a>(self: &'a Arc<Self>, mut st: Guard<'a>, token: Token) -> Guard<'a> {
        let Some(slot) = st.slots.get_mut(token) else {
            return st;
        };
        slot.queued = false;
        let Some(mut handler) = slot.handler.take() else {
            return st;
        };
        let mut budget = self.batch;
        loop {
            if budget == 0 || self.ended() {
                break;
            }
            // Timers that fell due while this handler was busy go before the notifications
            // queued meanwhile: the order of an iteration (timers, notifications, I/O) holds
            // for each upcall of a turn, not only for work found at the top of a loop.
            if st
                .timers
                .next_deadline()
                .is_some_and(|d| d <= self.clock.now())
            {
                self.expire_timers(&mut st);
            }
            let Some(item) = Self::pick(&mut st, token) else {
                break;
            };
            budget -= 1;
            drop(st);
            self.stats.upcalls.fetch_add(1, Ordering::Relaxed);
            let mut ctx = PoolContext {
                core: self,
                current: Some(token),
            };
            let h = handler.as_mut();
            let mut io_bit = None;
            let mut closed_before = false;
            let mut lent = None;
            let result = match item {
                Item::Timer(id, mut act) => {
                    let r = catch_unwind(AssertUnwindSafe(|| {
                        h.handle_timeout(&mut ctx, id, act.as_mut())
                    }));
                    lent = Some((id, act));
                    r
                }
                Item::Notice(m) => catch_unwind(AssertUnwindSafe(|| h.handle_notify(&mut ctx, m))),
                Item::Signal(s) => catch_unwind(AssertUnwindSafe(|| h.handle_signal(&mut ctx, s))),
                Item::Io(bit, hup) => {
                    io_bit = Some(bit);
                    closed_before = hup;
                    catch_unwind(AssertUnwindSafe(|| match bit {
                        Readiness::READ => h.handle_input(&mut ctx),
                        Readiness::WRITE => h.handle_output(&mut ctx),
                        _ => h.handle_exception(&mut ctx),
                    }))
                }
            };
            st = self.state.lock();
            if let Some((id, act)) = lent {
                let now = self.clock.now();
                let spent = match st.timers.finish(id, act, now) {
                    Finished::Rearmed => {
                        if st.wake.polling()
                            && st
                                .timers
                                .next_deadline()
                                .is_some_and(|d| st.poll_deadline.is_none_or(|p| d < p))
                        {
                            self.wake_poller(&mut st);
                        }
                        None
                    }
                    Finished::Fired { act, head } => {
                        if let Head::Becomes(head) = head {
                            st.slots
                                .get_mut(token)
                                .expect("a busy registration stays live")
                                .timers = head;
                        }
                        Some(act)
                    }
                    // Cancelled during the upcall: not re-armed.
                    Finished::Gone(act) => Some(act),
                };
                if let Some(act) = spent {
                    // Dropping the ACT runs user code: not under the lock. The registration
                    // stays busy meanwhile, so nothing else touches its handler.
                    MutexGuard::unlocked(&mut st, || drop(act));
                }
            }
            let slot = st
                .slots
                .get_mut(token)
                .expect("a busy registration stays live");
            let doomed = slot.doomed.take();
            match (result, doomed) {
                (Err(_), _) => {
                    tracing::warn!(?token, "upcall panicked; closing its handler");
                    return self.close_taken(st, token, handler, CloseReason::Panicked, false);
                }
                (Ok(_), Some(how)) => {
                    return self.close_taken(
                        st,
                        token,
                        handler,
                        CloseReason::Removed,
                        how == Removal::Quiet,
                    );
                }
                (Ok(Disposition::Close), None) => {
                    return self.close_taken(st, token, handler, CloseReason::Requested, false);
                }
                (Ok(Disposition::Again), None) => {
                    if let Some(bit) = io_bit {
                        // Serve the others first, then come back without a new edge.
                        slot.pending |= bit;
                        slot.hup |= closed_before;
                        break;
                    }
                }
                (Ok(_), None) => {
                    // A handler may stop at a short read; if the peer had closed before this
                    // upcall started, no new edge will come: upcall input once more.
                    if closed_before {
                        slot.pending |= Readiness::READ;
                    }
                }
            }
        }
        let slot = st
            .slots
            .get_mut(token)
            .expect("a busy registration stays live");
        slot.handler = Some(handler);
        // This thread looks for work next and finds it.
        Self::queue(&mut st, token);
        st
    }

    /// Ends a registration whose handler this thread holds: deregisters, cancels timers,
    /// then upcalls close without the lock.
    fn close_taken<'a>(
        self: &'a Arc<Self>,
        mut st: Guard<'a>,
        token: Token,
        mut handler: Box<dyn EventHandler>,
        reason: CloseReason,
        quiet: bool,
    ) -> Guard<'a> {
        let Some(slot) = st.slots.remove(token) else {
            return st;
        };
        if let (true, Some(fd)) = (slot.in_poll, slot.fd) {
            // The handler, still alive, keeps the descriptor open until after this.
            let _ = self.registry.deregister(&mut SourceFd(&fd));
        }
        let mut acts = Vec::new();
        st.timers.cancel_list(slot.timers, |act| acts.push(act));
        st.watchers.retain(|(_, t)| *t != token);
        drop(st);
        // Pending notifications and the timers' ACTs are user values: drop them without the
        // lock.
        drop(slot);
        drop(acts);
        if !quiet {
            let mut ctx = PoolContext {
                core: self,
                current: Some(token),
            };
            if catch_unwind(AssertUnwindSafe(|| handler.handle_close(&mut ctx, reason))).is_err() {
                tracing::warn!(?token, "handle_close panicked");
            }
        }
        drop(handler);
        self.state.lock()
    }

    /// After every pool thread has left: closes each live registration with `Shutdown`, once.
    /// From here on the engine is closed: registrations (from `handle_close` too), posts and
    /// notifications are refused with [`DispatchError::ShutDown`], so the closes below end
    /// the table however handlers react, and nothing is left to drop without its close.
    pub(crate) fn close_all(self: &Arc<Self>) {
        let mut st = self.state.lock();
        st.closed = true;
        loop {
            let tokens = st.slots.tokens();
            if tokens.is_empty() {
                break;
            }
            let mut progress = false;
            for t in tokens {
                let taken = st.slots.get_mut(t).and_then(|s| s.handler.take());
                if let Some(h) = taken {
                    st = self.close_taken(st, t, h, CloseReason::Shutdown, false);
                    progress = true;
                }
            }
            if !progress {
                // Every pool thread has been joined, so no handler is busy; should one be,
                // its thread closes it when the upcall returns (the engine is ended).
                break;
            }
        }
        debug_assert!(st.timers.is_empty(), "every timer has an owner");
        st.timers.clear();
        st.ready.clear();
        let jobs = std::mem::take(&mut st.jobs);
        drop(st);
        // Posted jobs are user values: dropped without the lock.
        drop(jobs);
    }

    /// Closes every registration unless that was done already (a pool dropped unrun).
    pub(crate) fn close_if_open(self: &Arc<Self>) {
        if !self.state.lock().closed {
            self.close_all();
        }
    }

    /// Runs the pool on the calling thread until the end, joins every thread it started,
    /// then closes every registration.
    pub(crate) fn run(self: &Arc<Self>, threads: usize) -> io::Result<()> {
        let threads = threads.max(1);
        match self.mode {
            Mode::LeaderFollowers { .. } => {
                let mut st = self.state.lock();
                // The calling thread is one of the pool.
                st.threads += 1;
                self.stats.threads_started.fetch_add(1, Ordering::Relaxed);
                for _ in 1..threads {
                    self.spawn_thread(&mut st);
                }
                drop(st);
                self.lf_thread();
            }
            Mode::HalfSync { .. } => {
                let mut st = self.state.lock();
                for _ in 0..threads {
                    self.spawn_thread(&mut st);
                }
                drop(st);
                self.reactor_thread();
            }
        }
        loop {
            let next = self.handles.lock().pop();
            match next {
                Some(h) => {
                    if h.join().is_err() {
                        tracing::error!("a pool thread panicked");
                    }
                }
                None => break,
            }
        }
        self.close_all();
        match self.error.lock().take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    // ----- operations shared by Context, Remote and Dispatcher -------------------------

    pub(crate) fn register(
        self: &Arc<Self>,
        handler: Box<dyn EventHandler>,
        interest: Interest,
    ) -> Result<Token, DispatchError> {
        let fd = handler.handle().map(|fd| fd.as_raw_fd());
        let wanted = mio_interest(interest);
        if wanted.is_some() && fd.is_none() {
            return Err(DispatchError::NoHandle(interest));
        }
        let slot = Slot {
            handler: Some(handler),
            fd,
            in_poll: false,
            interest,
            suspended: false,
            pending: Readiness::NONE,
            hup: false,
            queued: false,
            due: VecDeque::new(),
            notices: VecDeque::new(),
            signals: VecDeque::new(),
            timers: None,
            doomed: None,
        };
        let mut st = self.state.lock();
        if st.closed {
            // After run, or from a handle_close during shutdown: the pool upcalls nothing any
            // more, so it takes no handler it could never close.
            drop(st);
            drop(slot);
            return Err(DispatchError::ShutDown);
        }
        let capacity = st.slots.limit();
        let token = match st.slots.insert(slot) {
            Ok(t) => t,
            Err(slot) => {
                drop(st);
                drop(slot);
                return Err(DispatchError::Full {
                    what: "handler table",
                    capacity,
                });
            }
        };
        if let (Some(wanted), Some(fd)) = (wanted, fd) {
            let mio_token = mio::Token(token.to_u64() as usize);
            // epoll_ctl is safe while another thread waits in epoll_wait: registration from
            // any thread needs no wakeup of the leader.
            if let Err(e) = self
                .registry
                .register(&mut SourceFd(&fd), mio_token, wanted)
            {
                let slot = st.slots.remove(token);
                drop(st);
                drop(slot);
                return Err(e.into());
            }
            st.slots.get_mut(token).expect("just inserted").in_poll = true;
        }
        Ok(token)
    }

    fn remove(self: &Arc<Self>, token: Token, how: Removal) -> Result<(), DispatchError> {
        let mut st = self.state.lock();
        let slot = st
            .slots
            .get_mut(token)
            .ok_or(DispatchError::UnknownToken(token))?;
        match slot.handler.take() {
            // Removed already while busy: the first removal decides how it ends (close or
            // quiet), and this one is refused, as after the registration has gone.
            None if slot.doomed.is_some() => return Err(DispatchError::UnknownToken(token)),
            // Busy (in this upcall or on another thread): its thread closes it on return.
            None => slot.doomed = Some(how),
            Some(h) => {
                let _st =
                    self.close_taken(st, token, h, CloseReason::Removed, how == Removal::Quiet);
            }
        }
        Ok(())
    }

    fn set_interest(
        self: &Arc<Self>,
        token: Token,
        interest: Interest,
    ) -> Result<(), DispatchError> {
        let mut st = self.state.lock();
        let slot = st
            .slots
            .get_mut(token)
            .ok_or(DispatchError::UnknownToken(token))?;
        let wanted = mio_interest(interest);
        let mio_token = mio::Token(token.to_u64() as usize);
        match (wanted, slot.fd) {
            (Some(_), None) => return Err(DispatchError::NoHandle(interest)),
            (Some(wanted), Some(fd)) => {
                if slot.in_poll {
                    self.registry
                        .reregister(&mut SourceFd(&fd), mio_token, wanted)?;
                } else {
                    self.registry
                        .register(&mut SourceFd(&fd), mio_token, wanted)?;
                    slot.in_poll = true;
                }
            }
            (None, Some(fd)) if slot.in_poll => {
                self.registry.deregister(&mut SourceFd(&fd))?;
                slot.in_poll = false;
            }
            (None, _) => {}
        }
        slot.interest = interest;
        self.make_runnable(&mut st, token);
        Ok(())
    }

    fn interest(&self, token: Token) -> Result<Interest, DispatchError> {
        let st = self.state.lock();
        st.slots
            .get(token)
            .map(|slot| slot.interest)
            .ok_or(DispatchError::UnknownToken(token))
    }

    fn set_suspended(self: &Arc<Self>, token: Token, suspended: bool) -> Result<(), DispatchError> {
        let mut st = self.state.lock();
        st.slots
            .get_mut(token)
            .ok_or(DispatchError::UnknownToken(token))?
            .suspended = suspended;
        if !suspended {
            self.make_runnable(&mut st, token);
        }
        Ok(())
    }

    fn schedule_timer(
        self: &Arc<Self>,
        token: Token,
        delay: Duration,
        interval: Option<Duration>,
        act: Act,
    ) -> Result<TimerId, DispatchError> {
        let mut st = self.state.lock();
        if !st.slots.contains(token) {
            return Err(DispatchError::UnknownToken(token));
        }
        let head = st.slots.get(token).expect("checked").timers;
        let deadline = self.clock.now() + delay;
        let capacity = st.timers.limit();
        let id = match st.timers.schedule(token, head, deadline, interval, act) {
            Ok(id) => id,
            Err(act) => {
                drop(st);
                drop(act);
                return Err(DispatchError::Full {
                    what: "timer queue",
                    capacity,
                });
            }
        };
        st.slots.get_mut(token).expect("checked").timers = Some(id);
        // The waiting thread computed its timeout from the earlier deadlines.
        let before_wait_ends = st.poll_deadline.is_none_or(|p| deadline < p);
        let wake = st.wake.timer_scheduled(before_wait_ends, delay.is_zero());
        self.carry_out(&mut st, wake);
        Ok(id)
    }

    fn cancel_timer(&self, timer: TimerId) -> Option<Act> {
        let mut st = self.state.lock();
        let gone = st.timers.cancel(timer)?;
        if let Head::Becomes(head) = gone.head
            && let Some(slot) = st.slots.get_mut(gone.owner)
        {
            slot.timers = head;
        }
        drop(st);
        gone.act
    }

    fn reset_timer_interval(
        &self,
        timer: TimerId,
        interval: Option<Duration>,
    ) -> Result<(), DispatchError> {
        if self.state.lock().timers.set_interval(timer, interval) {
            Ok(())
        } else {
            Err(DispatchError::UnknownTimer(timer))
        }
    }

    fn notify(self: &Arc<Self>, token: Token, message: Message) -> Result<(), DispatchError> {
        let mut st = self.state.lock();
        let Some(slot) = st.slots.get_mut(token) else {
            drop(st);
            drop(message);
            return Err(DispatchError::UnknownToken(token));
        };
        slot.notices.push_back(message);
        self.make_runnable(&mut st, token);
        Ok(())
    }

    fn post(self: &Arc<Self>, job: Job) -> Result<(), DispatchError> {
        let mut st = self.state.lock();
        if st.closed {
            drop(st);
            drop(job);
            return Err(DispatchError::ShutDown);
        }
        st.jobs.push_back(job);
        self.kick(&mut st);
        Ok(())
    }

    fn watch_signal(self: &Arc<Self>, token: Token, signal: i32) -> Result<(), DispatchError> {
        let mut st = self.state.lock();
        if !st.slots.contains(token) {
            return Err(DispatchError::UnknownToken(token));
        }
        let sig = Signal::from_raw(signal).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{signal} is not a signal"),
            )
        })?;
        let mut set: SignalSet = st
            .signal_fd
            .as_ref()
            .map(|fd| *fd.signals())
            .unwrap_or_default();
        if !set.contains(sig) {
            set.insert(sig);
            // signalfd's set is fixed at creation: open one for the wider set, retire the old.
            let mut fd = SignalFd::new(&set)?;
            self.registry
                .register(&mut fd, SIGNALS, mio::Interest::READABLE)?;
            if let Some(mut old) = st.signal_fd.replace(fd) {
                let _ = self.registry.deregister(&mut old);
            }
            // Every pool thread blocks the wider set at its next turn round the loop: wake the
            // idle ones now. (A thread busy in an upcall blocks it when the upcall returns;
            // to close that window, block the signals before `run`, as threads inherit masks.)
            self.sig_epoch.fetch_add(1, Ordering::AcqRel);
            st.wake.all_followers_woken();
            self.followers_cv.notify_all();
            self.wake_poller(&mut st);
            self.read_signals(&mut st);
            if !st.ready.is_empty() {
                self.kick(&mut st);
            }
        }
        if !st.watchers.contains(&(signal, token)) {
            st.watchers.push((signal, token));
        }
        Ok(())
    }
}

/// The [`Context`] an upcall or a posted job gets from a pool.
struct PoolContext<'a> {
    core: &'a Arc<Core>,
    current: Option<Token>,
}

impl Context for PoolContext<'_> {
    fn current(&self) -> Option<Token> {
        self.current
    }

    fn now(&self) -> Instant {
        self.core.clock.now()
    }

    fn register(
        &mut self,
        handler: Box<dyn EventHandler>,
        interest: Interest,
    ) -> Result<Token, DispatchError> {
        self.core.register(handler, interest)
    }

    fn remove(&mut self, token: Token, how: Removal) -> Result<(), DispatchError> {
        self.core.remove(token, how)
    }

    fn set_interest(&mut self, token: Token, interest: Interest) -> Result<(), DispatchError> {
        self.core.set_interest(token, interest)
    }

    fn interest(&self, token: Token) -> Result<Interest, DispatchError> {
        self.core.interest(token)
    }

    fn suspend(&mut self, token: Token) -> Result<(), DispatchError> {
        self.core.set_suspended(token, true)
    }

    fn resume(&mut self, token: Token) -> Result<(), DispatchError> {
        self.core.set_suspended(token, false)
    }

    fn schedule_timer(
        &mut self,
        token: Token,
        delay: Duration,
        interval: Option<Duration>,
        act: Act,
    ) -> Result<TimerId, DispatchError> {
        self.core.schedule_timer(token, delay, interval, act)
    }

    fn cancel_timer(&mut self, timer: TimerId) -> Option<Act> {
        self.core.cancel_timer(timer)
    }

    fn reset_timer_interval(
        &mut self,
        timer: TimerId,
        interval: Option<Duration>,
    ) -> Result<(), DispatchError> {
        self.core.reset_timer_interval(timer, interval)
    }

    fn notify(&mut self, token: Token, message: Message) -> Result<(), DispatchError> {
        self.core.notify(token, message)
    }

    fn watch_signal(&mut self, token: Token, signal: i32) -> Result<(), DispatchError> {
        self.core.watch_signal(token, signal)
    }

    fn end(&mut self) {
        self.core.end();
    }

    fn remote(&self) -> Arc<dyn Remote> {
        self.core.remote()
    }
}

/// The cross-thread handle on a pool.
struct PoolRemote {
    core: Arc<Core>,
}

impl std::fmt::Debug for PoolRemote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolRemote")
            .field("core", &self.core)
            .finish()
    }
}

impl Remote for PoolRemote {
    fn post(&self, job: Job) -> Result<(), DispatchError> {
        self.core.post(job)
    }

    fn notify(&self, token: Token, message: Message) -> Result<(), DispatchError> {
        if self.core.lock().closed {
            return Err(DispatchError::ShutDown);
        }
        match self.core.notify(token, message) {
            // A stale token loses its message, as the contract allows.
            Err(DispatchError::UnknownToken(_)) => Ok(()),
            other => other,
        }
    }

    fn end(&self) {
        self.core.end();
    }
}

#[cfg(test)]
mod tests {
    //! The engine's use of the timer queue, driven by hand on one thread under a manual clock:
    //! the states of a timer (waiting, due on its busy registration, firing), and ACTs dropped
    //! without the lock.

    use std::any::Any;
    use std::sync::Weak;

    use pattern_core::ManualClock;

    use super::*;

    /// An ACT that counts its drops, and the drops that happened under the engine's lock.
    struct Probe {
        core: Weak<Core>,
        drops: Arc<AtomicUsize>,
        locked: Arc<AtomicUsize>,
    }

    impl Drop for Probe {
        fn drop(&mut self) {
            self.drops.fetch_add(1, Ordering::SeqCst);
            // One thread drives the engine here: a lock we cannot take is one we hold.
            if let Some(core) = self.core.upgrade()
                && core.state.try_lock().is_none()
            {
                self.locked.fetch_add(1, Ordering::SeqCst);
            }
        }
    }

    type OnTimeout = Box<dyn FnMut(&mut dyn Context, TimerId) + Send>;

    /// A handler that runs a closure on each timeout.
    struct Timed(OnTimeout);

    impl EventHandler for Timed {
        fn handle_timeout(
            &mut self,
            ctx: &mut dyn Context,
            timer: TimerId,
            _act: &mut (dyn Any + Send),
        ) -> Disposition {
            (self.0)(ctx, timer);
            Disposition::Continue
        }
    }

    struct Bench {
        core: Arc<Core>,
        clock: ManualClock,
        drops: Arc<AtomicUsize>,
        locked: Arc<AtomicUsize>,
    }

    impl Bench {
        fn new(max_timers: usize) -> Bench {
            let clock = ManualClock::default();
            let config = Config {
                clock: Arc::new(clock.clone()),
                max_handlers: 16,
                max_timers,
                events: 16,
                batch: 32,
            };
            Bench {
                core: Core::new(config, Mode::LeaderFollowers { max: 1 }).expect("core"),
                clock,
                drops: Arc::default(),
                locked: Arc::default(),
            }
        }

        fn probe(&self) -> Act {
            Box::new(Probe {
                core: Arc::downgrade(&self.core),
                drops: self.drops.clone(),
                locked: self.locked.clone(),
            })
        }

        fn register(&self, on_timeout: OnTimeout) -> Token {
            self.core
                .register(Box::new(Timed(on_timeout)), Interest::NONE)
                .expect("register")
        }

        /// What a pool thread does between waits: expire timers, then take turns until no
        /// registration has work.
        fn turns(&self) {
            let mut st = self.core.lock();
            self.core.expire_timers(&mut st);
            while let Some(work) = self.core.next_work(&mut st) {
                st = self.core.perform(st, work);
            }
        }

        fn drops(&self) -> (usize, usize) {
            (
                self.drops.load(Ordering::SeqCst),
                self.locked.load(Ordering::SeqCst),
            )
        }
    }

    fn far() -> Duration {
        Duration::from_secs(3600)
    }

    #[test]
    fn schedule_and_cancel_churn_leaves_only_the_pending_timers() {
        let b = Bench::new(1 << 20);
        let token = b.register(Box::new(|_, _| {}));
        for _ in 0..10 {
            b.core
                .schedule_timer(token, far(), None, b.probe())
                .unwrap();
        }
        for i in 0..100_000u64 {
            let delay = far() + Duration::from_millis(i % 1000);
            let id = b
                .core
                .schedule_timer(token, delay, None, b.probe())
                .unwrap();
            assert!(
                b.core.cancel_timer(id).is_some(),
                "a waiting timer's ACT comes back"
            );
        }
        assert_eq!(b.drops(), (100_000, 0));
        let st = b.core.lock();
        assert_eq!((st.timers.len(), st.timers.waiting()), (10, 10));
        drop(st);
        assert_eq!(b.core.timers(), 10);
    }

    #[test]
    fn closing_a_registration_cancels_its_timers_and_drops_the_acts_unlocked() {
        let b = Bench::new(1 << 20);
        let token = b.register(Box::new(|_, _| {}));
        let other = b.register(Box::new(|_, _| {}));
        for i in 0..10_000u64 {
            let delay = far() + Duration::from_millis(i % 1000);
            b.core
                .schedule_timer(token, delay, None, b.probe())
                .unwrap();
        }
        let kept = b
            .core
            .schedule_timer(other, far(), None, b.probe())
            .unwrap();
        b.core.remove(token, Removal::Close).unwrap();
        assert_eq!(b.drops(), (10_000, 0));
        assert_eq!(b.core.timers(), 1, "the other registration's timer stays");
        assert!(b.core.cancel_timer(kept).is_some());
    }

    #[test]
    fn a_one_shot_fires_once_and_its_act_is_dropped_unlocked() {
        let b = Bench::new(16);
        let fired = Arc::new(AtomicUsize::new(0));
        let seen = fired.clone();
        let token = b.register(Box::new(move |_, _| {
            seen.fetch_add(1, Ordering::SeqCst);
        }));
        let id = b
            .core
            .schedule_timer(token, Duration::from_millis(5), None, b.probe())
            .unwrap();
        b.turns();
        assert_eq!(fired.load(Ordering::SeqCst), 0, "not yet due");
        b.clock.advance(Duration::from_millis(5));
        b.turns();
        b.turns();
        assert_eq!(fired.load(Ordering::SeqCst), 1);
        assert_eq!(b.drops(), (1, 0));
        assert!(
            b.core.cancel_timer(id).is_none(),
            "a fired one-shot is gone"
        );
        let st = b.core.lock();
        assert!(st.timers.is_empty());
        assert_eq!(st.slots.get(token).unwrap().timers, None, "list head kept");
    }

    #[test]
    fn a_periodic_timer_is_not_due_again_while_it_fires() {
        let b = Bench::new(16);
        let core = Arc::downgrade(&b.core);
        let clock = b.clock.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let token = b.register(Box::new(move |_, timer| {
            // Time passes during the upcall, and another thread expires timers meanwhile.
            clock.advance(Duration::from_millis(35));
            let core = core.upgrade().unwrap();
            let mut st = core.lock();
            core.expire_timers(&mut st);
            let token = st.slots.tokens()[0];
            let due = st.slots.get(token).unwrap().due.len();
            tx.send((timer, due)).unwrap();
        }));
        let id = b
            .core
            .schedule_timer(
                token,
                Duration::from_millis(10),
                Some(Duration::from_millis(10)),
                b.probe(),
            )
            .unwrap();
        b.clock.advance(Duration::from_millis(10));
        b.turns();
        assert_eq!(rx.try_recv().unwrap(), (id, 0), "not due a second time");
        assert!(rx.try_recv().is_err(), "one upcall");
        // Re-armed an interval after the late upcall, not in a burst of catch-ups.
        let st = b.core.lock();
        assert_eq!(st.timers.waiting(), 1);
        assert_eq!(
            st.timers.next_deadline(),
            Some(b.clock.now() + Duration::from_millis(10))
        );
    }

    #[test]
    fn a_due_timer_cancelled_meanwhile_is_skipped() {
        let b = Bench::new(16);
        let victim = Arc::new(Mutex::new(None::<TimerId>));
        let fired = Arc::new(Mutex::new(Vec::new()));
        let (v, f) = (victim.clone(), fired.clone());
        let token = b.register(Box::new(move |ctx, timer| {
            f.lock().push(timer);
            if let Some(other) = v.lock().take() {
                let act = ctx.cancel_timer(other);
                assert!(act.is_some(), "a due timer's ACT comes back");
            }
        }));
        let ms = Duration::from_millis;
        let first = b
            .core
            .schedule_timer(token, ms(1), None, b.probe())
            .unwrap();
        let second = b
            .core
            .schedule_timer(token, ms(1), None, b.probe())
            .unwrap();
        *victim.lock() = Some(second);
        b.clock.advance(ms(1));
        {
            // Both are due: queued on the registration, their ACTs still in the queue.
            let mut st = b.core.lock();
            b.core.expire_timers(&mut st);
            let due: Vec<TimerId> = st.slots.get(token).unwrap().due.iter().copied().collect();
            assert_eq!(due, vec![first, second]);
        }
        b.turns();
        assert_eq!(*fired.lock(), vec![first]);
        assert_eq!(b.drops(), (2, 0));
        assert!(b.core.lock().timers.is_empty());
    }

    #[test]
    fn cancelling_a_firing_timer_gives_no_act_and_stops_it() {
        let b = Bench::new(16);
        let answers = Arc::new(Mutex::new(Vec::new()));
        let a = answers.clone();
        let token = b.register(Box::new(move |ctx, timer| {
            a.lock().push(ctx.cancel_timer(timer).is_some());
        }));
        let ms = Duration::from_millis;
        b.core
            .schedule_timer(token, ms(1), Some(ms(1)), b.probe())
            .unwrap();
        b.clock.advance(ms(1));
        b.turns();
        assert_eq!(
            *answers.lock(),
            vec![false],
            "the ACT is lent to the upcall"
        );
        assert_eq!(b.drops(), (1, 0), "dropped after the upcall, unlocked");
        b.clock.advance(ms(10));
        b.turns();
        assert_eq!(answers.lock().len(), 1, "not re-armed");
        let st = b.core.lock();
        assert!(st.timers.is_empty());
        assert_eq!(st.slots.get(token).unwrap().timers, None);
    }

    #[test]
    fn a_full_queue_refuses_and_drops_the_act_unlocked() {
        let b = Bench::new(2);
        let token = b.register(Box::new(|_, _| {}));
        b.core
            .schedule_timer(token, far(), None, b.probe())
            .unwrap();
        b.core
            .schedule_timer(token, far(), None, b.probe())
            .unwrap();
        let err = b
            .core
            .schedule_timer(token, far(), None, b.probe())
            .unwrap_err();
        assert!(matches!(
            err,
            DispatchError::Full {
                what: "timer queue",
                capacity: 2
            }
        ));
        assert_eq!(b.drops(), (1, 0));
        assert_eq!(b.core.timers(), 2);
    }
}
