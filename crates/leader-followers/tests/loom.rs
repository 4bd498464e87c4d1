//! A loom model of the pools' wake-up protocol, run by plain `cargo test` (bounded: a
//! preemption bound of 2, a few handles and events per scenario).
//!
//! The pool loops of `engine.rs` (leader/followers and half-sync/half-async) are reduced to
//! their synchronisation: a state mutex, the followers' condition variable, a ready set with
//! rounds, per-handle busy/queued state with pending timers, notifications and readiness, a
//! timer queue expired at the top of a loop and before each upcall of a turn, and a "kernel"
//! (the demultiplexer) that the poller waits on without the state lock, woken by readiness, by
//! the waker, or by its timeout when a timer it waited for falls due. Every wake-up decision
//! is the engine's own: `leader_followers::wakeup::Wakeup`, the type the engine carries out.
//! Loom explores the interleavings and fails on a deadlock (a lost wake-up leaves every thread
//! waiting while work is queued), on two upcalls of one handle overlapping, and on work never
//! processed. `the_old_protocol_loses_a_wake_up` shows the model catching issue 14's lost
//! wake-up with the decisions the engine used to make.

use std::collections::VecDeque;

use leader_followers::wakeup::{Role, Wake, Wakeup};
use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::{Arc, Condvar, Mutex, MutexGuard};
use loom::thread;

const HANDLES: usize = 2;

/// What a handle's upcall does besides being counted.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Script {
    /// Nothing.
    Plain,
    /// Handle 0's first upcall blocks until handle 1 has been upcalled: only another pool
    /// thread can release it, so a wake-up lost for handle 1's work deadlocks.
    BlockUntilOther,
    /// Handle 0's first upcall schedules a zero-delay timer for handle 1, then blocks until
    /// handle 1 has been upcalled (the timer hand-off to another thread).
    TimerForOtherThenBlock,
}

/// The wake-up decisions under test: the engine's, or the ones it made before issue 14.
trait Decide: Send + 'static {
    fn new(role: Role) -> Self;
    fn follower_waits(&mut self);
    fn follower_runs(&mut self);
    fn all_followers_woken(&mut self);
    fn poll_begins(&mut self, blocking: bool);
    fn poll_ends(&mut self);
    fn polling(&self) -> bool;
    fn work_added(&mut self) -> Wake;
    fn work_taken(&mut self, work_left: bool) -> Wake;
    fn timer_scheduled(&mut self, before_wait_ends: bool, due_now: bool) -> Wake;
}

impl Decide for Wakeup {
    fn new(role: Role) -> Self {
        Wakeup::new(role)
    }
    fn follower_waits(&mut self) {
        Wakeup::follower_waits(self);
    }
    fn follower_runs(&mut self) {
        Wakeup::follower_runs(self);
    }
    fn all_followers_woken(&mut self) {
        Wakeup::all_followers_woken(self);
    }
    fn poll_begins(&mut self, blocking: bool) {
        Wakeup::poll_begins(self, blocking);
    }
    fn poll_ends(&mut self) {
        Wakeup::poll_ends(self);
    }
    fn polling(&self) -> bool {
        Wakeup::polling(self)
    }
    fn work_added(&mut self) -> Wake {
        Wakeup::work_added(self)
    }
    fn work_taken(&mut self, work_left: bool) -> Wake {
        Wakeup::work_taken(self, work_left)
    }
    fn timer_scheduled(&mut self, before_wait_ends: bool, due_now: bool) -> Wake {
        Wakeup::timer_scheduled(self, before_wait_ends, due_now)
    }
}

/// The engine's decisions before the fix: a follower counted free until it runs (two kicks
/// signal it twice), and no wake-up for work left behind while someone polls.
struct OldWakeup {
    role: Role,
    followers: usize,
    polling: bool,
    woken: bool,
}

impl Decide for OldWakeup {
    fn new(role: Role) -> Self {
        OldWakeup {
            role,
            followers: 0,
            polling: false,
            woken: false,
        }
    }
    fn follower_waits(&mut self) {
        self.followers += 1;
    }
    fn follower_runs(&mut self) {
        self.followers -= 1;
    }
    fn all_followers_woken(&mut self) {}
    fn poll_begins(&mut self, _blocking: bool) {
        self.polling = true;
        self.woken = false;
    }
    fn poll_ends(&mut self) {
        self.polling = false;
    }
    fn polling(&self) -> bool {
        self.polling
    }
    fn work_added(&mut self) -> Wake {
        if self.followers > 0 {
            Wake::Follower
        } else if self.polling && self.role == Role::LeaderFollowers && !self.woken {
            self.woken = true;
            Wake::Poller
        } else {
            Wake::Nobody
        }
    }
    fn work_taken(&mut self, _work_left: bool) -> Wake {
        if self.role == Role::HalfSync || self.polling {
            Wake::Nobody
        } else if self.followers > 0 {
            Wake::Follower
        } else {
            Wake::Nobody
        }
    }
    fn timer_scheduled(&mut self, before_wait_ends: bool, due_now: bool) -> Wake {
        if self.polling && before_wait_ends && !self.woken {
            self.woken = true;
            Wake::Poller
        } else if !self.polling && self.followers > 0 && due_now {
            Wake::Follower
        } else {
            Wake::Nobody
        }
    }
}

struct State<W> {
    wake: W,
    round: usize,
    ready: VecDeque<usize>,
    busy: [bool; HANDLES],
    queued: [bool; HANDLES],
    /// Work per handle, in the order a turn takes it: due timers, notifications, readiness.
    due: [u32; HANDLES],
    notices: [u32; HANDLES],
    io: [u32; HANDLES],
    /// Timers scheduled and not yet due: (owner, due at once).
    timers: Vec<(usize, bool)>,
    /// The clock passed every timer's deadline.
    clock_passed: bool,
    processed: usize,
    total: usize,
    ended: bool,
    /// Handle 1 was upcalled (opens handle 0's gate).
    other_ran: bool,
    scripted: bool,
}

struct Kernel {
    events: Vec<usize>,
    /// The waker's eventfd is readable.
    woken: bool,
    /// The timeout a poller computed from a waiting timer has passed.
    timed_out: bool,
    ended: bool,
}

struct Pool<W> {
    role: Role,
    state: Mutex<State<W>>,
    followers_cv: Condvar,
    kernel: Mutex<Kernel>,
    kernel_cv: Condvar,
    gate_cv: Condvar,
    in_upcall: [AtomicBool; HANDLES],
    script: Script,
}

impl<W: Decide> Pool<W> {
    fn new(role: Role, total: usize, script: Script) -> Arc<Self> {
        Arc::new(Pool {
            role,
            state: Mutex::new(State {
                wake: W::new(role),
                round: 0,
                ready: VecDeque::new(),
                busy: [false; HANDLES],
                queued: [false; HANDLES],
                due: [0; HANDLES],
                notices: [0; HANDLES],
                io: [0; HANDLES],
                timers: Vec::new(),
                clock_passed: false,
                processed: 0,
                total,
                ended: false,
                other_ran: false,
                scripted: false,
            }),
            followers_cv: Condvar::new(),
            kernel: Mutex::new(Kernel {
                events: Vec::new(),
                woken: false,
                timed_out: false,
                ended: false,
            }),
            kernel_cv: Condvar::new(),
            gate_cv: Condvar::new(),
            in_upcall: [AtomicBool::new(false), AtomicBool::new(false)],
            script,
        })
    }

    fn carry_out(&self, wake: Wake) {
        match wake {
            Wake::Nobody | Wake::Grow => {}
            Wake::Follower => self.followers_cv.notify_one(),
            Wake::Poller => {
                let mut k = self.kernel.lock().unwrap();
                k.woken = true;
                self.kernel_cv.notify_all();
            }
        }
    }

    fn has_work(st: &State<W>, h: usize) -> bool {
        st.due[h] + st.notices[h] + st.io[h] > 0
    }

    /// The engine's `queue`: idle with work goes to the ready set; wakes nobody.
    fn queue(st: &mut State<W>, h: usize) -> bool {
        if st.busy[h] || st.queued[h] || !Self::has_work(st, h) {
            return false;
        }
        st.queued[h] = true;
        st.ready.push_back(h);
        true
    }

    /// The engine's `make_runnable`: queues and kicks.
    fn make_runnable(&self, st: &mut State<W>, h: usize) {
        if Self::queue(st, h) {
            let wake = st.wake.work_added();
            self.carry_out(wake);
        }
    }

    /// The engine's `demultiplexed`: a leader keeps the work; the reactor thread hands it on.
    fn demultiplexed(&self, st: &mut State<W>, h: usize) {
        match self.role {
            Role::LeaderFollowers | Role::StrictLeaderFollowers => {
                Self::queue(st, h);
            }
            Role::HalfSync => self.make_runnable(st, h),
        }
    }

    fn expire_timers(&self, st: &mut State<W>) {
        let clock = st.clock_passed;
        let (now, later): (Vec<_>, Vec<_>) = st
            .timers
            .drain(..)
            .partition(|&(_, at_once)| at_once || clock);
        st.timers = later;
        for (h, _) in now {
            st.due[h] += 1;
            self.demultiplexed(st, h);
        }
    }

    fn end(&self, st: &mut State<W>) {
        st.ended = true;
        st.wake.all_followers_woken();
        self.followers_cv.notify_all();
        self.gate_cv.notify_all();
        let mut k = self.kernel.lock().unwrap();
        k.ended = true;
        self.kernel_cv.notify_all();
    }

    fn follower_wait<'a>(&'a self, mut st: MutexGuard<'a, State<W>>) -> MutexGuard<'a, State<W>> {
        st.wake.follower_waits();
        st = self.followers_cv.wait(st).unwrap();
        st.wake.follower_runs();
        st
    }

    /// A leader/followers pool thread (the engine's `lf_thread`).
    fn lf_thread(&self) {
        let mut st = self.state.lock().unwrap();
        loop {
            if st.ended {
                break;
            }
            self.expire_timers(&mut st);
            let idle = st.ready.is_empty();
            if st.round > 0 || st.wake.polling() || idle {
                if let Some(h) = st.ready.pop_front() {
                    st.round = st.round.saturating_sub(1);
                    let work_left = !st.ready.is_empty();
                    let wake = st.wake.work_taken(work_left);
                    self.carry_out(wake);
                    st = self.turn(st, h);
                    continue;
                }
            }
            if st.wake.polling() {
                st = self.follower_wait(st);
                continue;
            }
            st = self.poll_once(st, !idle);
        }
        st.wake.all_followers_woken();
        self.followers_cv.notify_all();
    }

    /// A half-sync/half-async worker (the engine's `worker_thread`).
    fn worker_thread(&self) {
        let mut st = self.state.lock().unwrap();
        loop {
            if st.ended {
                break;
            }
            if let Some(h) = st.ready.pop_front() {
                let work_left = !st.ready.is_empty();
                let wake = st.wake.work_taken(work_left);
                self.carry_out(wake);
                st = self.turn(st, h);
                continue;
            }
            st = self.follower_wait(st);
        }
    }

    /// The half-sync/half-async reactor thread (the engine's `reactor_thread`).
    fn reactor_thread(&self) {
        let mut st = self.state.lock().unwrap();
        loop {
            if st.ended {
                break;
            }
            self.expire_timers(&mut st);
            st = self.poll_once(st, false);
        }
    }

    fn poll_once<'a>(
        &'a self,
        mut st: MutexGuard<'a, State<W>>,
        nonblocking: bool,
    ) -> MutexGuard<'a, State<W>> {
        st.wake.poll_begins(!nonblocking);
        // The engine's timeout: the earliest waiting timer's deadline, if any.
        let deadline = !st.timers.is_empty();
        drop(st);
        let events = {
            let mut k = self.kernel.lock().unwrap();
            while !nonblocking
                && k.events.is_empty()
                && !k.woken
                && !k.ended
                && (!deadline || !k.timed_out)
            {
                k = self.kernel_cv.wait(k).unwrap();
            }
            k.woken = false;
            std::mem::take(&mut k.events)
        };
        let mut st = self.state.lock().unwrap();
        st.wake.poll_ends();
        for h in events {
            st.io[h] += 1;
            self.demultiplexed(&mut st, h);
        }
        st.round = st.ready.len();
        st
    }

    /// The engine's `turn`: due timers (expired again before each pick), then notifications,
    /// then readiness, one upcall at a time, without the lock.
    fn turn<'a>(&'a self, mut st: MutexGuard<'a, State<W>>, h: usize) -> MutexGuard<'a, State<W>> {
        st.queued[h] = false;
        st.busy[h] = true;
        for _ in 0..2 {
            if st.ended {
                break;
            }
            self.expire_timers(&mut st);
            let picked = if st.due[h] > 0 {
                &mut st.due[h]
            } else if st.notices[h] > 0 {
                &mut st.notices[h]
            } else if st.io[h] > 0 {
                &mut st.io[h]
            } else {
                break;
            };
            *picked -= 1;
            let first_scripted = h == 0 && !std::mem::replace(&mut st.scripted, true);
            drop(st);
            assert!(
                !self.in_upcall[h].swap(true, Ordering::SeqCst),
                "two upcalls of one handle overlap"
            );
            st = self.upcall(h, first_scripted);
            self.in_upcall[h].store(false, Ordering::SeqCst);
            st.processed += 1;
            if st.processed == st.total {
                self.end(&mut st);
            }
        }
        st.busy[h] = false;
        Self::queue(&mut st, h);
        st
    }

    fn upcall(&self, h: usize, first_scripted: bool) -> MutexGuard<'_, State<W>> {
        if h == 1 {
            let mut st = self.state.lock().unwrap();
            st.other_ran = true;
            self.gate_cv.notify_all();
            return st;
        }
        let mut st = self.state.lock().unwrap();
        if !first_scripted {
            return st;
        }
        if self.script == Script::TimerForOtherThenBlock {
            // Context::schedule_timer(other, ZERO): due at once.
            st.timers.push((1, true));
            let before_wait_ends = true;
            let wake = st.wake.timer_scheduled(before_wait_ends, true);
            self.carry_out(wake);
        }
        if self.script != Script::Plain {
            while !st.other_ran && !st.ended {
                st = self.gate_cv.wait(st).unwrap();
            }
        }
        st
    }

    /// A notification from another thread (the engine's `notify`).
    fn notify(&self, h: usize) {
        let mut st = self.state.lock().unwrap();
        st.notices[h] += 1;
        self.make_runnable(&mut st, h);
    }

    /// Readiness arrives on handle `h` (the kernel's side).
    fn readiness(&self, h: usize) {
        let mut k = self.kernel.lock().unwrap();
        k.events.push(h);
        self.kernel_cv.notify_all();
    }

    /// A timer for `h` scheduled from outside an upcall, due when the clock passes.
    fn schedule_later(&self, h: usize) {
        let mut st = self.state.lock().unwrap();
        st.timers.push((h, false));
        let wake = st.wake.timer_scheduled(true, false);
        self.carry_out(wake);
    }

    /// The clock passes every deadline: the poller's timeout expires.
    fn clock_passes(&self) {
        let mut st = self.state.lock().unwrap();
        st.clock_passed = true;
        drop(st);
        let mut k = self.kernel.lock().unwrap();
        k.timed_out = true;
        self.kernel_cv.notify_all();
    }
}

/// What a scenario feeds the pool.
struct Scenario {
    role: Role,
    threads: usize,
    /// Readiness injected by a kernel thread.
    readiness: &'static [usize],
    /// Notifications posted back to back by the main thread.
    notifications: &'static [usize],
    /// Timers scheduled from the main thread before the clock passes (by a clock thread).
    timers: &'static [usize],
    script: Script,
}

fn check<W: Decide>(s: Scenario) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(2);
    builder.check(move || {
        let extra = usize::from(s.script == Script::TimerForOtherThenBlock);
        let total = s.readiness.len() + s.notifications.len() + s.timers.len() + extra;
        let pool = Pool::<W>::new(s.role, total, s.script);
        let mut threads = Vec::new();
        for _ in 0..s.threads {
            let pool = pool.clone();
            threads.push(match s.role {
                // The model's leader/followers loop is the hybrid's; the strict protocol's
                // own wake-up decisions are unit-tested in `wakeup.rs`, not modelled here.
                Role::LeaderFollowers | Role::StrictLeaderFollowers => {
                    thread::spawn(move || pool.lf_thread())
                }
                Role::HalfSync => thread::spawn(move || pool.worker_thread()),
            });
        }
        if s.role == Role::HalfSync {
            let pool = pool.clone();
            threads.push(thread::spawn(move || pool.reactor_thread()));
        }
        for &h in s.timers {
            pool.schedule_later(h);
        }
        // The outside world, on one thread (loom runs at most five): the kernel reports
        // readiness, then the clock passes the timers' deadlines.
        if !s.readiness.is_empty() || !s.timers.is_empty() {
            let pool = pool.clone();
            let (readiness, timers) = (s.readiness, !s.timers.is_empty());
            threads.push(thread::spawn(move || {
                for &h in readiness {
                    pool.readiness(h);
                }
                if timers {
                    pool.clock_passes();
                }
            }));
        }
        for &h in s.notifications {
            pool.notify(h);
        }
        for t in threads {
            t.join().unwrap();
        }
        let st = pool.state.lock().unwrap();
        assert_eq!(st.processed, st.total, "work was lost");
    });
}

const LF: Role = Role::LeaderFollowers;
const HS: Role = Role::HalfSync;

/// Issue 14's lost wake-up: two notifications back to back, the first to a handler whose
/// upcall blocks until the second is processed, two threads.
#[test]
fn two_notifications_while_one_upcall_blocks() {
    check::<Wakeup>(Scenario {
        role: LF,
        threads: 2,
        readiness: &[],
        notifications: &[0, 1],
        timers: &[],
        script: Script::BlockUntilOther,
    });
}

/// The model catches that lost wake-up with the engine's former decisions. Loom reports the
/// deadlock by panicking, and panics again while unwinding, which aborts the process: so the
/// check runs in a child process (this test binary, filtered to this test), which must fail
/// with loom's deadlock report.
#[test]
fn the_old_protocol_loses_a_wake_up() {
    const CHILD: &str = "LEADER_FOLLOWERS_LOOM_OLD_PROTOCOL";
    if std::env::var_os(CHILD).is_some() {
        check::<OldWakeup>(Scenario {
            role: LF,
            threads: 2,
            readiness: &[],
            notifications: &[0, 1],
            timers: &[],
            script: Script::BlockUntilOther,
        });
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "the_old_protocol_loses_a_wake_up",
            "--test-threads=1",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run the model in a child process");
    let stderr =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success() && stderr.contains("deadlock"),
        "the old decisions should deadlock in the model; status {}, stderr:\n{stderr}",
        out.status
    );
}

/// A blocked leader is relieved by a promoted follower (readiness on both handles).
#[test]
fn blocked_leader_is_relieved_by_a_promoted_follower() {
    check::<Wakeup>(Scenario {
        role: LF,
        threads: 2,
        readiness: &[0, 1],
        notifications: &[],
        timers: &[],
        script: Script::BlockUntilOther,
    });
}

/// Readiness and a notification on one handle: never overlapping, nothing lost.
#[test]
fn one_handle_readiness_and_notification() {
    check::<Wakeup>(Scenario {
        role: LF,
        threads: 2,
        readiness: &[0],
        notifications: &[0],
        timers: &[],
        script: Script::Plain,
    });
}

/// The timer hand-off: an upcall schedules a zero-delay timer for another handle, then
/// blocks until that timer has been upcalled on another thread.
#[test]
fn zero_delay_timer_handed_to_another_thread() {
    check::<Wakeup>(Scenario {
        role: LF,
        threads: 2,
        readiness: &[],
        notifications: &[0],
        timers: &[],
        script: Script::TimerForOtherThenBlock,
    });
}

/// A timer that falls due while its handler is busy and the other thread polls.
#[test]
fn timer_falls_due_while_its_handler_is_busy() {
    check::<Wakeup>(Scenario {
        role: LF,
        threads: 2,
        readiness: &[],
        notifications: &[0],
        timers: &[0],
        script: Script::Plain,
    });
}

/// Three threads: the blocked upcall and the lost wake-up, with a follower to spare.
#[test]
fn three_threads_two_notifications_while_one_upcall_blocks() {
    check::<Wakeup>(Scenario {
        role: LF,
        threads: 3,
        readiness: &[],
        notifications: &[0, 1],
        timers: &[],
        script: Script::BlockUntilOther,
    });
}

/// Half-sync/half-async, two workers: the same lost wake-up scenario.
#[test]
fn half_sync_two_notifications_while_one_upcall_blocks() {
    check::<Wakeup>(Scenario {
        role: HS,
        threads: 2,
        readiness: &[],
        notifications: &[0, 1],
        timers: &[],
        script: Script::BlockUntilOther,
    });
}

/// Half-sync/half-async, two workers: readiness and a timer due by the clock.
#[test]
fn half_sync_readiness_and_a_timer() {
    check::<Wakeup>(Scenario {
        role: HS,
        threads: 2,
        readiness: &[1],
        notifications: &[],
        timers: &[0],
        script: Script::BlockUntilOther,
    });
}
