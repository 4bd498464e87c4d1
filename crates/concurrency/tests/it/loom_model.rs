//! Loom models of the monitor queue's conditions and of the futures (run with
//! `RUSTFLAGS="--cfg loom" cargo test -p concurrency --release --test it loom`).
//!
//! Under `--cfg loom` the crate builds `MonitorQueue` and `Promise`/`Eventual` from loom's
//! mutex and condition variable, so these are the real types. Loom runs every interleaving
//! (within a preemption bound) and fails on a deadlock: a lost wake-up leaves a thread waiting
//! on a condition forever, and loom reports it.

use std::sync::Arc;

use concurrency::{Cancelled, MonitorQueue, PushError, promise};
use loom::thread;

fn check(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(f);
}

/// Two producers and one consumer through a queue of capacity 1: each producer must wait on
/// `not_full` for the other's item to be taken, and the consumer on `not_empty`.
#[test]
fn loom_two_producers_one_consumer_capacity_one_lose_no_wakeup() {
    check(|| {
        let q = Arc::new(MonitorQueue::new(1));
        let producers: Vec<_> = [1, 2]
            .into_iter()
            .map(|v| {
                let q = q.clone();
                thread::spawn(move || q.push(v).unwrap())
            })
            .collect();
        let mut got = [q.pop().unwrap(), q.pop().unwrap()];
        for p in producers {
            p.join().unwrap();
        }
        got.sort();
        assert_eq!(got, [1, 2]);
    });
}

/// The group pop of logd's store: two producers on a queue of capacity 1, one consumer taking
/// groups until the queue is closed. Every item arrives once, each producer's in order, and
/// neither a producer waiting on `not_full` nor the consumer waiting on `not_empty` (nor
/// the consumer waiting when `close` comes) is left asleep.
#[test]
fn loom_group_pop_with_waiting_producers_loses_nothing_and_ends_at_close() {
    check(|| {
        let q = Arc::new(MonitorQueue::new(1));
        let producers: Vec<_> = [[1, 2], [3, 4]]
            .into_iter()
            .map(|items| {
                let q = q.clone();
                thread::spawn(move || {
                    for v in items {
                        q.push(v).unwrap();
                    }
                })
            })
            .collect();
        let consumer = {
            let q = q.clone();
            thread::spawn(move || {
                let mut got = Vec::new();
                while q.pop_into(&mut got, 4) {}
                got
            })
        };
        for p in producers {
            p.join().unwrap();
        }
        q.close();
        let got = consumer.join().unwrap();
        let pos = |v| got.iter().position(|&g| g == v).unwrap();
        assert_eq!(got.len(), 4);
        assert!(pos(1) < pos(2) && pos(3) < pos(4), "{got:?}");
    });
}

/// Close wakes every waiter: two poppers on an empty queue, and a pusher on a full one.
#[test]
fn loom_close_wakes_every_waiter() {
    check(|| {
        let empty = Arc::new(MonitorQueue::<u8>::new(1));
        let full = Arc::new(MonitorQueue::new(1));
        full.push(0).unwrap();
        let poppers: Vec<_> = (0..2)
            .map(|_| {
                let q = empty.clone();
                thread::spawn(move || q.pop())
            })
            .collect();
        let pusher = {
            let q = full.clone();
            thread::spawn(move || q.push(1))
        };
        empty.close();
        full.close();
        for p in poppers {
            assert_eq!(p.join().unwrap(), None);
        }
        assert!(matches!(pusher.join().unwrap(), Err(PushError::Closed(1))));
        assert_eq!(full.pop(), Some(0));
        assert_eq!(full.pop(), None);
    });
}

/// A future is resolved exactly once: fulfilled in one thread, or abandoned by a dropped
/// promise, the waiting thread always wakes with that outcome.
#[test]
fn loom_a_future_always_wakes_its_waiter() {
    check(|| {
        let (p, e) = promise::<u8>();
        let t = thread::spawn(move || p.fulfil(7));
        assert_eq!(e.wait(), Ok(7));
        t.join().unwrap();

        let (p, e) = promise::<u8>();
        let t = thread::spawn(move || drop(p));
        assert_eq!(e.wait(), Err(Cancelled::Abandoned));
        t.join().unwrap();
    });
}

/// Whether some execution of a model showed what a consequence claims can happen. Loom runs
/// the model's closure once per interleaving; a std atomic outside its reach collects across
/// them.
fn seen_in_some_execution(flag: &'static std::sync::atomic::AtomicBool) -> bool {
    flag.load(std::sync::atomic::Ordering::SeqCst)
}

fn note_seen(flag: &'static std::sync::atomic::AtomicBool) {
    flag.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// The liability "limited scalability": one lock serialises every synchronized method, even
/// two queries that change nothing. Two threads ask `len()` at once: in every interleaving
/// both answer and the monitor counts exactly the three entries (a push and two queries);
/// and in some interleaving one query found the other inside and waited for the lock, which
/// loom finds. (A `len()` that read an atomic instead would never wait, and this model would
/// fail: the serialisation is the monitor's, not the test's.)
#[test]
fn loom_limited_scalability_two_queries_that_change_nothing_still_wait_for_each_other() {
    static WAITED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    check(|| {
        let q = Arc::new(MonitorQueue::new(2));
        q.push(7).unwrap();
        let other = {
            let q = q.clone();
            thread::spawn(move || q.len())
        };
        let mine = q.len();
        assert_eq!((mine, other.join().unwrap()), (1, 1));
        let stats = q.stats();
        assert_eq!(stats.entries, 3);
        assert!(stats.contended <= 1);
        if stats.contended == 1 {
            note_seen(&WAITED);
        }
    });
    assert!(
        seen_in_some_execution(&WAITED),
        "no interleaving in which one query waited for the other"
    );
}

/// The liability "complicated extensibility semantics": a monitor's synchronization is woven
/// into its methods, and a method with a condition of its own cannot be added from outside.
/// (Rust has no implementation inheritance, so the anomaly takes this form: a wrapper cannot
/// reach the lock or the conditions.) Two consumers each want a pair of readings that were
/// queued together, and take it with two `pop`s, written outside the monitor: loom finds the
/// interleaving in which the pairs are split (each consumer gets one item of each pair).
#[test]
fn loom_complicated_extensibility_a_pair_popped_from_outside_the_monitor_can_be_split() {
    static SPLIT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    check(|| {
        let q = Arc::new(MonitorQueue::new(4));
        for reading in [1, 2, 3, 4] {
            q.push(reading).unwrap(); // pairs (1, 2) and (3, 4)
        }
        let pop_pair = |q: &MonitorQueue<u8>| [q.pop().unwrap(), q.pop().unwrap()];
        let other = {
            let q = q.clone();
            thread::spawn(move || pop_pair(&q))
        };
        let mine = pop_pair(&q);
        let theirs = other.join().unwrap();
        let mut all = [mine, theirs].concat();
        all.sort();
        assert_eq!(all, [1, 2, 3, 4], "nothing lost or doubled");
        if ![[1, 2], [3, 4]].contains(&mine) {
            note_seen(&SPLIT);
        }
    });
    assert!(
        seen_in_some_execution(&SPLIT),
        "no interleaving split a pair"
    );
}

/// The other half of the same consequence: the pair taken inside the monitor, by a method that
/// holds the lock for the whole take (the group pop, `pop_into`, which came into the monitor
/// with a notification policy of its own), is never split in any interleaving.
#[test]
fn loom_a_pair_popped_inside_the_monitor_is_never_split() {
    check(|| {
        let q = Arc::new(MonitorQueue::new(4));
        for reading in [1, 2, 3, 4] {
            q.push(reading).unwrap();
        }
        let pop_pair = |q: &MonitorQueue<u8>| {
            let mut pair = Vec::new();
            assert!(q.pop_into(&mut pair, 2));
            pair
        };
        let other = {
            let q = q.clone();
            thread::spawn(move || pop_pair(&q))
        };
        let mine = pop_pair(&q);
        let theirs = other.join().unwrap();
        let mut pairs = [mine, theirs];
        pairs.sort();
        assert_eq!(pairs, [vec![1, 2], vec![3, 4]]);
    });
}
