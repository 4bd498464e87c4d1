//! Timers under both pools, seen through the public API: cancelled timers leave the queue at
//! once, closing a handler cancels all of its timers and drops their ACTs, and a full queue
//! refuses a timer.

use std::any::Any;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Sender};
use std::time::Duration;

use leader_followers::{HalfSyncHalfAsync, LeaderFollowers, PoolMonitor};
use pattern_core::{
    CloseReason, Context, DispatchError, Dispatcher, Disposition, EventHandler, Interest, Message,
    TimerId,
};

use crate::support::PATIENCE;

/// Far enough that no timer of these tests expires while they run.
const FAR: Duration = Duration::from_secs(3600);

/// An ACT that counts its drops.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Closes when notified; reports on close what its close left behind.
struct Closer {
    drops: Arc<AtomicUsize>,
    monitor: PoolMonitor,
    closed: Sender<(usize, usize)>,
}

impl EventHandler for Closer {
    fn handle_notify(&mut self, _ctx: &mut dyn Context, _m: Message) -> Disposition {
        Disposition::Close
    }

    fn handle_timeout(
        &mut self,
        _ctx: &mut dyn Context,
        _timer: TimerId,
        _act: &mut (dyn Any + Send),
    ) -> Disposition {
        panic!("no timer of this test is due");
    }

    fn handle_close(&mut self, ctx: &mut dyn Context, reason: CloseReason) {
        assert_eq!(reason, CloseReason::Requested);
        let _ = self
            .closed
            .send((self.drops.load(Ordering::SeqCst), self.monitor.timers()));
        ctx.end();
    }
}

/// Schedules and cancels 100,000 timers, 16 kept, then closes the handler with 10,000 more.
fn churn_then_close(mut pool: Box<dyn Dispatcher>, monitor: PoolMonitor) {
    const CHURN: usize = 100_000;
    const KEPT: usize = 16;
    const ON_CLOSE: usize = 10_000;
    let drops = Arc::new(AtomicUsize::new(0));
    let (closed_tx, closed) = mpsc::channel();
    let token = pool
        .register(
            Box::new(Closer {
                drops: drops.clone(),
                monitor: monitor.clone(),
                closed: closed_tx,
            }),
            Interest::NONE,
        )
        .expect("register");
    let (churned_tx, churned) = mpsc::channel();
    let counter = drops.clone();
    pool.remote()
        .post(Box::new(move |ctx| {
            let act = || Box::new(Counted(counter.clone()));
            for _ in 0..KEPT {
                ctx.schedule_timer(token, FAR, None, act())
                    .expect("schedule");
            }
            let mut returned = 0;
            for i in 0..CHURN {
                let delay = FAR + Duration::from_micros(i as u64 % 997);
                let id = ctx
                    .schedule_timer(token, delay, None, act())
                    .expect("schedule");
                returned += usize::from(ctx.cancel_timer(id).is_some());
            }
            churned_tx.send((returned, monitor.timers())).unwrap();
            for _ in KEPT..ON_CLOSE {
                let every = Some(Duration::from_secs(1));
                ctx.schedule_timer(token, FAR, every, act())
                    .expect("schedule");
            }
            ctx.notify(token, Box::new(())).expect("notify");
        }))
        .expect("post");
    pool.run().expect("run");
    assert_eq!(
        churned.recv_timeout(PATIENCE).expect("churned"),
        (CHURN, KEPT),
        "every cancel gave its ACT back and the queue holds only the pending timers"
    );
    let (dropped, left) = closed.recv_timeout(PATIENCE).expect("closed");
    assert_eq!(dropped, CHURN + ON_CLOSE, "the close dropped every ACT");
    assert_eq!(left, 0, "the close cancelled every timer");
}

#[test]
fn leader_followers_timers_leave_on_cancel_and_on_close() {
    let pool = LeaderFollowers::new(2).expect("pool");
    let monitor = pool.monitor();
    churn_then_close(Box::new(pool), monitor);
}

#[test]
fn half_sync_timers_leave_on_cancel_and_on_close() {
    let pool = HalfSyncHalfAsync::new(2, 64).expect("pool");
    let monitor = pool.monitor();
    churn_then_close(Box::new(pool), monitor);
}

#[test]
fn a_full_timer_queue_refuses_and_drops_the_act() {
    let mut pool = LeaderFollowers::builder()
        .threads(1)
        .max_timers(2)
        .build()
        .expect("pool");
    let drops = Arc::new(AtomicUsize::new(0));
    let token = pool
        .register(Box::new(Idle), Interest::NONE)
        .expect("register");
    let (tx, rx) = mpsc::channel();
    let counter = drops.clone();
    pool.remote()
        .post(Box::new(move |ctx| {
            let mut results = Vec::new();
            for _ in 0..3 {
                results.push(
                    ctx.schedule_timer(token, FAR, None, Box::new(Counted(counter.clone())))
                        .map(|_| ()),
                );
            }
            tx.send((results, counter.load(Ordering::SeqCst))).unwrap();
            ctx.end();
        }))
        .expect("post");
    pool.run().expect("run");
    let (results, dropped) = rx.recv_timeout(PATIENCE).expect("results");
    assert!(results[0].is_ok() && results[1].is_ok());
    assert!(matches!(
        results[2],
        Err(DispatchError::Full {
            what: "timer queue",
            capacity: 2
        })
    ));
    assert_eq!(dropped, 1, "the refused ACT is dropped at once");
}

/// A handler that only owns timers.
struct Idle;

impl EventHandler for Idle {}
