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
    /// The context an upcall would get, for the calls a handler makes.
    fn ctx(&self) -> PoolContext<'_> {
        PoolContext {
            core: &self.core,
            current: None,
        }
    }

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
            core: Core::new(
                config,
                Mode::LeaderFollowers {
                    max: 1,
                    strict: false,
                },
            )
            .expect("core"),
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
        b.ctx()
            .schedule_timer(token, far(), None, b.probe())
            .unwrap();
    }
    for i in 0..100_000u64 {
        let delay = far() + Duration::from_millis(i % 1000);
        let id = b
            .ctx()
            .schedule_timer(token, delay, None, b.probe())
            .unwrap();
        assert!(
            b.ctx().cancel_timer(id).is_some(),
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
        b.ctx()
            .schedule_timer(token, delay, None, b.probe())
            .unwrap();
    }
    let kept = b
        .ctx()
        .schedule_timer(other, far(), None, b.probe())
        .unwrap();
    b.ctx().remove(token, Removal::Close).unwrap();
    assert_eq!(b.drops(), (10_000, 0));
    assert_eq!(b.core.timers(), 1, "the other registration's timer stays");
    assert!(b.ctx().cancel_timer(kept).is_some());
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
        .ctx()
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
        b.ctx().cancel_timer(id).is_none(),
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
        .ctx()
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
        .ctx()
        .schedule_timer(token, ms(1), None, b.probe())
        .unwrap();
    let second = b
        .ctx()
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
    b.ctx()
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
    b.ctx()
        .schedule_timer(token, far(), None, b.probe())
        .unwrap();
    b.ctx()
        .schedule_timer(token, far(), None, b.probe())
        .unwrap();
    let err = b
        .ctx()
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
