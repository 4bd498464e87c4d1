//! The timer queue under a manual clock: ACTs, cancel, intervals, capacity.

use std::any::Any;
use std::sync::Arc;
use std::sync::mpsc::{self, Sender};
use std::time::Duration;

use reactor::{
    Context, DispatchError, Disposition, EventHandler, Interest, ManualClock, Reactor, TimerId,
};

struct Log(Sender<(TimerId, String)>);

impl EventHandler for Log {
    fn handle_timeout(
        &mut self,
        _ctx: &mut dyn Context,
        timer: TimerId,
        act: &mut (dyn Any + Send),
    ) -> Disposition {
        let label = act.downcast_mut::<String>().expect("string act");
        label.push('!');
        self.0.send((timer, label.clone())).unwrap();
        Disposition::Continue
    }
}

fn setup() -> (
    Reactor,
    ManualClock,
    reactor::Token,
    mpsc::Receiver<(TimerId, String)>,
) {
    let clock = ManualClock::default();
    let mut reactor = Reactor::builder()
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let t = reactor.register(Box::new(Log(tx)), Interest::NONE).unwrap();
    (reactor, clock, t, rx)
}

fn turn(reactor: &mut Reactor) -> usize {
    reactor.handle_events(Some(Duration::ZERO)).unwrap()
}

#[test]
fn expiry_follows_the_clock_in_deadline_then_schedule_order() {
    let (mut r, clock, t, rx) = setup();
    let ms = Duration::from_millis;
    let late = r
        .schedule_timer(t, ms(30), None, Box::new("late".to_string()))
        .unwrap();
    let a = r
        .schedule_timer(t, ms(10), None, Box::new("a".to_string()))
        .unwrap();
    let b = r
        .schedule_timer(t, ms(10), None, Box::new("b".to_string()))
        .unwrap();
    assert_eq!(turn(&mut r), 0);
    clock.advance(ms(9));
    assert_eq!(turn(&mut r), 0);
    clock.advance(ms(1));
    assert_eq!(turn(&mut r), 2);
    let got: Vec<_> = rx.try_iter().collect();
    assert_eq!(got, vec![(a, "a!".to_string()), (b, "b!".to_string())]);
    clock.advance(ms(100));
    assert_eq!(turn(&mut r), 1);
    assert_eq!(rx.try_recv().unwrap(), (late, "late!".to_string()));
    assert_eq!(r.timers(), 0);
}

#[test]
fn periodic_act_persists_and_interval_can_be_reset() {
    let (mut r, clock, t, rx) = setup();
    let ms = Duration::from_millis;
    let id = r
        .schedule_timer(t, ms(10), Some(ms(10)), Box::new("p".to_string()))
        .unwrap();
    for expected in ["p!", "p!!", "p!!!"] {
        clock.advance(ms(10));
        assert_eq!(turn(&mut r), 1);
        assert_eq!(
            rx.try_recv().unwrap(),
            (id, expected.to_string()),
            "the ACT is kept between expiries"
        );
    }
    // A late loop fires once, not a burst, and the next expiry is an interval from now.
    clock.advance(ms(35));
    assert_eq!(turn(&mut r), 1);
    clock.advance(ms(9));
    assert_eq!(turn(&mut r), 0);
    clock.advance(ms(1));
    assert_eq!(turn(&mut r), 1);
    r.reset_timer_interval(id, Some(ms(50))).unwrap();
    clock.advance(ms(10));
    assert_eq!(
        turn(&mut r),
        1,
        "the new interval applies after the next expiry"
    );
    clock.advance(ms(49));
    assert_eq!(turn(&mut r), 0);
    clock.advance(ms(1));
    assert_eq!(turn(&mut r), 1);
    r.reset_timer_interval(id, None).unwrap();
    clock.advance(ms(50));
    assert_eq!(turn(&mut r), 1);
    assert_eq!(r.timers(), 0, "no interval: one-shot after its next expiry");
    assert!(matches!(
        r.reset_timer_interval(id, None),
        Err(DispatchError::UnknownTimer(_))
    ));
    let acts: Vec<_> = rx.try_iter().map(|(_, s)| s).collect();
    assert_eq!(acts.last().map(|s| s.matches('!').count()), Some(8));
}

#[test]
fn cancel_returns_the_act_and_stale_ids_are_refused() {
    let (mut r, clock, t, rx) = setup();
    let id = r
        .schedule_timer(t, Duration::from_millis(1), None, Box::new("x".to_string()))
        .unwrap();
    let act = r.cancel_timer(id).expect("pending");
    assert_eq!(*act.downcast::<String>().unwrap(), "x");
    assert!(r.cancel_timer(id).is_none());
    // The slot is reused by the next timer; the old id must not cancel it.
    let id2 = r
        .schedule_timer(t, Duration::from_millis(1), None, Box::new("y".to_string()))
        .unwrap();
    assert_eq!(id.index(), id2.index());
    assert!(r.cancel_timer(id).is_none());
    clock.advance(Duration::from_millis(1));
    assert_eq!(turn(&mut r), 1);
    assert_eq!(rx.try_recv().unwrap(), (id2, "y!".to_string()));
}

#[test]
fn timers_of_a_closed_handler_are_cancelled() {
    let (mut r, _clock, t, _rx) = setup();
    for _ in 0..10 {
        r.schedule_timer(t, Duration::from_secs(1), None, Box::new(String::new()))
            .unwrap();
    }
    assert_eq!(r.timers(), 10);
    r.remove(t, reactor::Removal::Quiet).unwrap();
    assert_eq!(r.timers(), 0);
    assert!(matches!(
        r.schedule_timer(t, Duration::ZERO, None, Box::new(())),
        Err(DispatchError::UnknownToken(_))
    ));
}

#[test]
fn a_million_pending_timers_and_cancelled_ones_do_not_accumulate() {
    let (mut r, clock, t, rx) = setup();
    let ids: Vec<TimerId> = (0..1_000_000u64)
        .map(|i| {
            let delay = Duration::from_micros(1 + (i * 7919) % 1_000_000);
            r.schedule_timer(t, delay, None, Box::new(String::new()))
                .unwrap()
        })
        .collect();
    assert_eq!(r.timers(), 1_000_000);
    // Cancel every other one, out of order.
    for id in ids.iter().rev().step_by(2) {
        assert!(r.cancel_timer(*id).is_some());
    }
    assert_eq!(r.timers(), 500_000);
    // Churn: schedule and cancel many more; the queue does not grow.
    for _ in 0..200_000 {
        let id = r
            .schedule_timer(t, Duration::from_secs(5), None, Box::new(String::new()))
            .unwrap();
        r.cancel_timer(id).unwrap();
    }
    assert_eq!(r.timers(), 500_000);
    clock.advance(Duration::from_secs(2));
    assert_eq!(turn(&mut r), 500_000);
    assert_eq!(rx.try_iter().count(), 500_000);
    assert_eq!(r.timers(), 0);
}

#[test]
fn the_timer_queue_is_bounded() {
    let mut r = Reactor::builder().max_timers(2).build().unwrap();
    let (tx, _rx) = mpsc::channel();
    let t = r.register(Box::new(Log(tx)), Interest::NONE).unwrap();
    r.schedule_timer(t, Duration::from_secs(1), None, Box::new(()))
        .unwrap();
    r.schedule_timer(t, Duration::from_secs(1), None, Box::new(()))
        .unwrap();
    let err = r
        .schedule_timer(t, Duration::from_secs(1), None, Box::new(()))
        .unwrap_err();
    assert!(
        matches!(err, DispatchError::Full { capacity: 2, .. }),
        "{err}"
    );
}
