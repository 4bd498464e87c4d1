//! Monitor Object: the bounded blocking queue's synchronised methods and conditions.

use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use concurrency::{MonitorQueue, PopError, PushError};

/// Long enough never to be reached on a working queue; only a broken one waits this long.
const GENEROUS: Duration = Duration::from_secs(60);

#[test]
fn items_leave_in_the_order_they_came_and_a_full_queue_hands_the_value_back() {
    let q = MonitorQueue::new(3);
    for i in 0..3 {
        q.try_push(i).unwrap();
    }
    assert_eq!(q.len(), 3);
    assert_eq!(q.try_push(9), Err(PushError::Full(9)));
    assert_eq!((q.pop(), q.pop(), q.pop()), (Some(0), Some(1), Some(2)));
    assert_eq!(q.try_pop(), Err(PopError::Empty));
    assert!(q.is_empty());
}

#[test]
fn a_push_on_a_full_queue_waits_for_a_pop_to_make_room() {
    let q = Arc::new(MonitorQueue::new(1));
    q.push("first").unwrap();
    let (done_tx, done_rx) = mpsc::channel();
    let pusher = {
        let q = q.clone();
        thread::spawn(move || {
            q.push("second").unwrap();
            done_tx.send(()).unwrap();
        })
    };
    // The pusher cannot have finished: the queue is full and nobody popped.
    assert_eq!(done_rx.try_recv(), Err(mpsc::TryRecvError::Empty));
    assert_eq!(q.pop(), Some("first"));
    done_rx
        .recv_timeout(GENEROUS)
        .expect("the pop woke the pusher");
    pusher.join().unwrap();
    assert_eq!(q.pop(), Some("second"));
}

#[test]
fn a_pop_on_an_empty_queue_waits_for_a_push() {
    let q = Arc::new(MonitorQueue::new(2));
    let popper = {
        let q = q.clone();
        thread::spawn(move || q.pop_timeout(GENEROUS))
    };
    q.push(42).unwrap();
    assert_eq!(popper.join().unwrap(), Ok(42));
}

#[test]
fn close_wakes_every_waiting_popper_and_pusher() {
    let empty = Arc::new(MonitorQueue::<u32>::new(1));
    let full = Arc::new(MonitorQueue::new(1));
    full.push(0).unwrap();
    let start = Arc::new(Barrier::new(6));
    let poppers: Vec<_> = (0..3)
        .map(|_| {
            let (q, start) = (empty.clone(), start.clone());
            thread::spawn(move || {
                start.wait();
                q.pop()
            })
        })
        .collect();
    let pushers: Vec<_> = (1..3)
        .map(|i| {
            let (q, start) = (full.clone(), start.clone());
            thread::spawn(move || {
                start.wait();
                q.push(i)
            })
        })
        .collect();
    start.wait();
    empty.close();
    full.close();
    for p in poppers {
        assert_eq!(p.join().unwrap(), None);
    }
    let mut handed_back: Vec<u32> = pushers
        .into_iter()
        .map(|p| match p.join().unwrap() {
            Err(PushError::Closed(v)) => v,
            other => panic!("a pusher on a closed, full queue got {other:?}"),
        })
        .collect();
    handed_back.sort();
    assert_eq!(handed_back, [1, 2]);
    // What was queued before the close is still delivered, then the close is reported.
    assert_eq!(full.pop(), Some(0));
    assert_eq!(full.try_pop(), Err(PopError::Closed));
    assert_eq!(full.pop_timeout(GENEROUS), Err(PopError::Closed));
    assert!(matches!(
        full.push_timeout(5, GENEROUS),
        Err(PushError::Closed(5))
    ));
}

#[test]
fn timed_methods_report_a_timeout_and_hand_the_value_back() {
    let q = MonitorQueue::new(1);
    assert_eq!(
        q.pop_timeout(Duration::from_millis(5)),
        Err(PopError::Timeout)
    );
    q.push_timeout(1, Duration::from_millis(5)).unwrap();
    let refused = q.push_timeout(2, Duration::from_millis(5)).unwrap_err();
    assert_eq!(refused, PushError::Timeout(2));
    assert_eq!(refused.into_inner(), 2);
    assert_eq!(q.pop_timeout(Duration::from_millis(5)), Ok(1));
}

#[test]
fn drain_takes_everything_and_wakes_a_waiting_pusher() {
    let q = Arc::new(MonitorQueue::new(2));
    q.push(1).unwrap();
    q.push(2).unwrap();
    let pusher = {
        let q = q.clone();
        thread::spawn(move || q.push(3))
    };
    let mut seen = q.drain();
    pusher.join().unwrap().unwrap();
    seen.extend(q.drain());
    assert_eq!(seen, [1, 2, 3]);
}

#[test]
fn many_producers_and_consumers_deliver_every_item_exactly_once() {
    const PRODUCERS: u32 = 4;
    const EACH: u32 = 2_000;
    let q = Arc::new(MonitorQueue::new(8));
    let consumers: Vec<_> = (0..2)
        .map(|_| {
            let q = q.clone();
            thread::spawn(move || {
                let mut got = Vec::new();
                while let Some(v) = q.pop() {
                    got.push(v);
                }
                got
            })
        })
        .collect();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let q = q.clone();
            thread::spawn(move || {
                for i in 0..EACH {
                    q.push(p * EACH + i).unwrap();
                }
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    q.close();
    let mut all: Vec<u32> = consumers
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    all.sort();
    assert_eq!(all, (0..PRODUCERS * EACH).collect::<Vec<_>>());
}

/// A group consumer (logd's store) takes what queued up in one entry, in order, and the room it
/// makes wakes every pusher that waited on `not_full`.
#[test]
fn a_group_pop_takes_what_queued_up_in_order_and_wakes_every_waiting_pusher() {
    let q = Arc::new(MonitorQueue::new(2));
    q.push(0).unwrap();
    q.push(1).unwrap();
    let pushers: Vec<_> = [2, 3]
        .into_iter()
        .map(|v| {
            let q = q.clone();
            thread::spawn(move || q.push(v))
        })
        .collect();
    let mut group = Vec::new();
    assert!(q.pop_into(&mut group, 8));
    assert_eq!(group, [0, 1], "at most what was queued, oldest first");
    for p in pushers {
        p.join().unwrap().unwrap();
    }
    group.clear();
    assert!(q.pop_into(&mut group, 1));
    assert_eq!(group.len(), 1, "never more than `max`");
    q.close();
    assert!(q.pop_into(&mut group, 8));
    group.sort();
    assert_eq!(group, [2, 3]);
    assert!(!q.pop_into(&mut group, 8), "closed and drained");
}

#[test]
#[should_panic(expected = "capacity of at least 1")]
fn a_queue_of_capacity_zero_is_refused() {
    let _ = MonitorQueue::<u8>::new(0);
}

/// The liability "limited scalability", counted: every call of every thread is one entry into
/// the one monitor lock, queries included, however many threads call; a queue per pair of
/// threads splits the same calls over as many locks. (That two entries never overlap, and
/// that a query does wait for another, is the loom model
/// `loom_limited_scalability_two_queries_that_change_nothing_still_wait_for_each_other`.)
#[test]
fn limited_scalability_every_call_of_every_thread_is_one_entry_into_the_one_lock() {
    const THREADS: u64 = 4;
    const CALLS: u64 = 1_000;
    let calls = |q: &MonitorQueue<u64>| {
        for i in 0..CALLS {
            let _ = q.try_push(i);
            let _ = q.len();
            let _ = q.try_pop();
        }
    };
    let shared = MonitorQueue::new(8);
    let own: Vec<MonitorQueue<u64>> = (0..THREADS).map(|_| MonitorQueue::new(8)).collect();
    thread::scope(|s| {
        for q in &own {
            let shared = &shared;
            s.spawn(move || {
                calls(shared);
                calls(q);
            });
        }
    });
    let stats = shared.stats();
    assert_eq!(stats.entries, THREADS * CALLS * 3, "one lock for all");
    assert!(stats.contended <= stats.entries);
    assert_eq!(stats.waits, 0, "no call here waits on a condition");
    for q in &own {
        let mine = q.stats();
        assert_eq!(mine.entries, CALLS * 3);
        assert_eq!(mine.contended, 0, "a queue of one's own is never contended");
    }
}

#[test]
fn the_stats_count_entries_and_sleeps_on_a_condition_and_debug_reads_without_formatting_under_the_lock()
 {
    let q = MonitorQueue::<u8>::new(1);
    assert_eq!(q.pop_timeout(Duration::ZERO), Err(PopError::Timeout));
    assert_eq!(q.stats().waits, 0, "a zero timeout never sleeps");
    assert_eq!(
        q.pop_timeout(Duration::from_millis(1)),
        Err(PopError::Timeout)
    );
    let stats = q.stats();
    assert_eq!((stats.entries, stats.contended), (2, 0));
    // At least the one sleep on `not_empty` (a spurious wake-up would add one).
    assert!(stats.waits >= 1, "{stats:?}");
    assert_eq!(
        format!("{q:?}"),
        "MonitorQueue { len: 0, capacity: 1, closed: false }"
    );
    assert_eq!(q.stats().entries, 2, "neither stats nor Debug counts");
}
