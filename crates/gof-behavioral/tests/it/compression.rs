//! Event compression: exact deliveries for each policy, driven by a manual clock.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use gof_behavioral::clock::ManualClock;
use gof_behavioral::observer::{
    CoalesceByKey, CompressionPolicy, CompressionStats, Compressor, Debounce, LatestWins,
};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Subscribes a recorder to `compressor` and returns what it saw.
fn record<E: Clone + 'static, P: CompressionPolicy<E>>(
    compressor: &Compressor<E, P, ManualClock>,
) -> (gof_behavioral::observer::Subscription, Rc<RefCell<Vec<E>>>) {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let log = Rc::clone(&seen);
    let sub = compressor.subscribe(move |e: &E| log.borrow_mut().push(e.clone()));
    (sub, seen)
}

#[test]
fn coalesce_by_key_delivers_the_latest_per_key_in_first_arrival_order() {
    let clock = ManualClock::default();
    let c = Compressor::new(CoalesceByKey::new(|r: &(char, i32)| r.0), clock);
    let (_sub, seen) = record(&c);

    for r in [('a', 1), ('b', 1), ('a', 2), ('c', 1), ('b', 2), ('a', 3)] {
        c.publish(r);
    }
    assert!(seen.borrow().is_empty(), "nothing before a flush");
    assert_eq!(c.pending(), 3);
    assert_eq!(c.flush(), 3);
    assert_eq!(*seen.borrow(), [('a', 3), ('b', 2), ('c', 1)]);

    // Key order restarts after each flush.
    c.publish(('c', 9));
    c.publish(('a', 4));
    assert_eq!(c.flush(), 2);
    assert_eq!(c.flush(), 0);
    assert_eq!(seen.borrow()[3..], [('c', 9), ('a', 4)]);
    assert_eq!(
        c.stats(),
        CompressionStats {
            offered: 8,
            delivered: 5,
            superseded: 3
        }
    );
}

#[test]
fn latest_wins_delivers_one_event_per_flush() {
    let c = Compressor::new(LatestWins::default(), ManualClock::default());
    let (_sub, seen) = record(&c);
    for e in 1..=3 {
        c.publish(e);
    }
    assert_eq!(c.flush(), 1);
    assert_eq!(c.flush(), 0);
    c.publish(4);
    assert_eq!(c.flush(), 1);
    assert_eq!(*seen.borrow(), [3, 4]);
    assert_eq!(
        c.stats(),
        CompressionStats {
            offered: 4,
            delivered: 2,
            superseded: 2
        }
    );
}

#[test]
fn debounce_delivers_the_last_event_of_a_burst_after_the_quiet_window() {
    let clock = ManualClock::default();
    let c = Compressor::new(Debounce::new(ms(100)), clock.clone());
    let (_sub, seen) = record(&c);

    c.publish("a"); // t = 0
    clock.set_elapsed(ms(30));
    c.publish("b");
    clock.set_elapsed(ms(60));
    c.publish("c");
    assert_eq!(c.next_deadline(), Some(clock.origin() + ms(160)));
    clock.set_elapsed(ms(100));
    assert_eq!(c.flush(), 0, "the burst is still bouncing");
    clock.set_elapsed(ms(159));
    assert_eq!(c.flush(), 0);
    clock.set_elapsed(ms(160));
    assert_eq!(c.flush(), 1);
    assert_eq!(c.next_deadline(), None);

    clock.set_elapsed(ms(200));
    c.publish("d");
    clock.set_elapsed(ms(299));
    assert_eq!(c.flush(), 0);
    clock.set_elapsed(ms(300));
    assert_eq!(c.flush(), 1);
    assert_eq!(*seen.borrow(), ["c", "d"]);
    assert_eq!(
        c.stats(),
        CompressionStats {
            offered: 4,
            delivered: 2,
            superseded: 2
        }
    );
}

#[test]
fn debounce_with_max_wait_cannot_be_starved_by_a_steady_stream() {
    let clock = ManualClock::default();
    let c = Compressor::new(Debounce::new(ms(100)).max_wait(ms(150)), clock.clone());
    let delivered_at = Rc::new(RefCell::new(Vec::new()));
    let (log, clk) = (Rc::clone(&delivered_at), clock.clone());
    let _sub = c.subscribe(move |v: &u64| log.borrow_mut().push((*v, clk.elapsed().as_millis())));

    // A reading every 50 ms: never 100 ms of quiet.
    for i in 0..=8 {
        clock.set_elapsed(ms(i * 50));
        c.publish(i);
        c.flush();
    }
    clock.set_elapsed(ms(500));
    c.flush();
    assert_eq!(*delivered_at.borrow(), [(3, 150), (7, 350), (8, 500)]);
}

#[test]
fn an_event_loop_can_sleep_until_next_deadline() {
    let clock = ManualClock::default();
    let c = Compressor::new(Debounce::new(ms(40)), clock.clone());
    let (_sub, seen) = record(&c);
    c.publish(1);
    clock.advance(ms(10));
    c.publish(2);
    // The loop: jump to the deadline, flush, repeat while anything is pending.
    let mut wakeups = 0;
    while let Some(deadline) = c.next_deadline() {
        clock.set_elapsed(deadline - clock.origin());
        wakeups += c.flush();
    }
    assert_eq!(wakeups, 1);
    assert_eq!(clock.elapsed(), ms(50));
    assert_eq!(*seen.borrow(), [2]);
}

#[test]
fn flush_all_delivers_what_is_not_yet_due() {
    let clock = ManualClock::default();
    let c = Compressor::new(Debounce::new(Duration::from_secs(60)), clock);
    let (_sub, seen) = record(&c);
    c.publish('x');
    assert_eq!(c.flush(), 0);
    assert_eq!(c.flush_all(), 1);
    assert_eq!(*seen.borrow(), ['x']);
    assert_eq!(c.pending(), 0);
}

#[test]
fn an_observer_may_publish_into_the_compressor_during_a_flush() {
    let c = Rc::new(Compressor::new(
        LatestWins::default(),
        ManualClock::default(),
    ));
    let seen = Rc::new(RefCell::new(Vec::new()));
    let (log, weak) = (Rc::clone(&seen), Rc::downgrade(&c));
    let _sub = c.subscribe(move |e: &u32| {
        log.borrow_mut().push(*e);
        if *e < 3 {
            weak.upgrade().unwrap().publish(e + 1);
        }
    });
    c.publish(1);
    assert_eq!(c.flush(), 1);
    assert_eq!(
        c.pending(),
        1,
        "published during the flush, due at the next"
    );
    assert_eq!(c.flush(), 1);
    assert_eq!(c.flush(), 1);
    assert_eq!(c.flush(), 0);
    assert_eq!(*seen.borrow(), [1, 2, 3]);
}

#[test]
fn stats_balance_at_every_step() {
    let clock = ManualClock::default();
    let c = Compressor::new(CoalesceByKey::new(|e: &u32| e % 3), clock);
    let (_sub, _seen) = record(&c);
    for e in 0..50u32 {
        c.publish(e);
        if e % 7 == 0 {
            c.flush();
        }
        let s = c.stats();
        assert_eq!(s.offered, s.delivered + s.superseded + c.pending() as u64);
    }
}

#[test]
fn compressed_streams_feed_channel_observers() {
    let c = Compressor::new(
        CoalesceByKey::new(|e: &(u8, u8)| e.0),
        ManualClock::default(),
    );
    let (_sub, rx) = c.subject().subscribe_channel();
    c.publish((1, 1));
    c.publish((1, 2));
    c.flush();
    assert_eq!(rx.try_iter().collect::<Vec<_>>(), [(1, 2)]);
}
