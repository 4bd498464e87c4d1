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
//!
//! This module holds the state and its types; [`wake`] carries out the wake-up decisions,
//! [`threads`] runs the pool threads and a thread's turn on one registration, [`context`] is the
//! [`Context`] upcalls get (written once, on `PoolContext`) and the cross-thread [`Remote`].

use std::collections::VecDeque;
use std::io;
use std::os::fd::AsRawFd;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};
use pattern_core::{
    Act, AfterUpcall, Clock, CloseReason, Context, DispatchError, Disposition, EventHandler,
    Interest, Job, Message, Remote, Removal, Slab, TimerId, Token,
};
use wrapper_facade::notify::EventFd;
use wrapper_facade::signal::{Signal, SignalFd, SignalSet};

use reactor::readiness::{
    Readiness, Registration, bits_of, closed, mask_of, mio_interest, rearm_own,
};
use reactor::timer::{Expired, Finished, Head, TimerQueue};

use crate::wakeup::{Role, Wake, Wakeup};

mod context;
#[cfg(test)]
mod tests;
mod threads;
mod wake;

use context::{PoolContext, PoolRemote};

const WAKER: mio::Token = mio::Token(usize::MAX);
const SIGNALS: mio::Token = mio::Token(usize::MAX - 1);

/// Which pool the engine runs.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Mode {
    /// Every thread takes turns as leader; `max` bounds growth (equal to the start size when
    /// growth is off). `strict`: POSA2's protocol (one event per wait, only the leader takes
    /// work, the handle deactivated in the handle set while it is processed) instead of the
    /// hybrid whose followers take demultiplexed work without leading.
    LeaderFollowers { max: usize, strict: bool },
    /// One reactor thread demultiplexes; at most `queue` ready registrations wait for workers.
    HalfSync { queue: usize },
}

impl Mode {
    /// Whether this is the strict leader/followers protocol.
    pub(crate) fn strict(self) -> bool {
        matches!(self, Mode::LeaderFollowers { strict: true, .. })
    }
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
    /// The descriptor's place in mio's set.
    reg: Registration,
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
                    Mode::LeaderFollowers { strict: true, .. } => Role::StrictLeaderFollowers,
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
                // Strict: one event per wait, taken by the leader that waited for it.
                events: mio::Events::with_capacity(if mode.strict() {
                    1
                } else {
                    config.events.max(1)
                }),
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

    pub(crate) fn is_strict(&self) -> bool {
        self.mode.strict()
    }

    /// Live registrations.
    pub(crate) fn handlers(&self) -> usize {
        self.state.lock().slots.len()
    }

    /// Scheduled timers: waiting, due or firing.
    pub(crate) fn timers(&self) -> usize {
        self.state.lock().timers.len()
    }
}
