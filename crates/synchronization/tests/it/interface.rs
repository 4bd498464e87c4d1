//! Thread-Safe Interface: interface methods lock once; internal calls never lock again.

use std::thread;

use synchronization::{
    Counting, Guarded, HostCounts, LockStrategy, MutexLock, NullLock, ReadWriteLock, Statistics,
};

#[test]
fn a_batch_is_counted_under_one_lock_acquisition() {
    let stats: Statistics<Counting<MutexLock>> = Statistics::default();
    let sizes: Vec<u64> = (1..=100).collect();
    stats.record_batch("sensor-1", &sizes);
    assert_eq!(stats.lock_acquisitions(), 1);
    assert_eq!(
        stats.host("sensor-1"),
        Some(HostCounts {
            records: 100,
            bytes: 5050
        })
    );
    // Calling the public `record` 100 times instead costs 100 acquisitions.
    for &s in &sizes {
        stats.record("sensor-2", s);
    }
    assert_eq!(stats.lock_acquisitions(), 1 + 1 + 100);
}

/// A component written without the pattern: its public batch method holds the lock and calls
/// its public single-record method, which locks again.
struct NaiveStatistics<L: LockStrategy> {
    records: Guarded<u64, L>,
}

/// What the naive component's inner call would do: wait for a lock its own caller holds.
#[derive(Debug, PartialEq)]
struct WouldSelfDeadlock;

impl<L: LockStrategy> NaiveStatistics<L> {
    /// The public single-record method. It probes with `try_write` where the real code would
    /// call `write`: in this single-threaded test, a held lock can only be held by this very
    /// call chain, so a `write` here would never return (or, with the null lock, panic).
    fn record(&self) -> Result<(), WouldSelfDeadlock> {
        let mut records = self.records.try_write().ok_or(WouldSelfDeadlock)?;
        *records += 1;
        Ok(())
    }

    /// The public batch method, calling the public method through the wrong interface.
    fn record_batch(&self, n: usize) -> Result<(), WouldSelfDeadlock> {
        let _held = self.records.write();
        for _ in 0..n {
            self.record()?;
        }
        Ok(())
    }
}

fn naive_self_deadlocks<L: LockStrategy>() {
    let naive = NaiveStatistics::<L> {
        records: Guarded::new(0),
    };
    // Alone, the public method is fine...
    assert_eq!(naive.record(), Ok(()));
    // ...but called from another public method that holds the lock, it would wait for itself.
    assert_eq!(naive.record_batch(3), Err(WouldSelfDeadlock));
    assert_eq!(naive.records.into_inner(), 1);
    // The component written with the pattern does the same batch.
    let stats: Statistics<L> = Statistics::default();
    stats.record_batch("sensor-1", &[1, 2, 3]);
    assert_eq!(stats.totals().records, 3);
}

#[test]
fn calling_the_public_interface_from_inside_would_self_deadlock_and_the_pattern_does_not() {
    naive_self_deadlocks::<MutexLock>();
    naive_self_deadlocks::<ReadWriteLock>();
    naive_self_deadlocks::<NullLock>();
}

fn pool_counts<L: LockStrategy>() -> (HostCounts, Vec<(String, HostCounts)>)
where
    Statistics<L>: Sync,
{
    let stats: Statistics<L> = Statistics::default();
    thread::scope(|s| {
        for t in 0..4u64 {
            let stats = &stats;
            s.spawn(move || {
                let host = format!("sensor-{}", t % 2);
                for _ in 0..500 {
                    stats.record_batch(&host, &[t, 10]);
                    stats.host(&host);
                }
            });
        }
    });
    (stats.totals(), stats.hosts())
}

#[test]
fn a_pool_of_threads_counts_exactly_under_the_thread_safe_strategies() {
    let expected_totals = HostCounts {
        records: 4_000,
        bytes: 500 * (1 + 2 + 3) + 4 * 500 * 10, // thread t adds t and 10 per batch
    };
    let expected_hosts = vec![
        (
            "sensor-0".to_string(),
            HostCounts {
                records: 2_000,
                bytes: 500 * 2 + 2 * 500 * 10,
            },
        ),
        (
            "sensor-1".to_string(),
            HostCounts {
                records: 2_000,
                bytes: 500 * 4 + 2 * 500 * 10,
            },
        ),
    ];
    for (totals, hosts) in [pool_counts::<MutexLock>(), pool_counts::<ReadWriteLock>()] {
        assert_eq!(totals, expected_totals);
        assert_eq!(hosts, expected_hosts);
    }
}

#[test]
fn forgetting_a_host_hands_back_its_counts_and_adjusts_the_totals() {
    let stats: Statistics<NullLock> = Statistics::default();
    stats.record_batch("sensor-1", &[5, 5]);
    stats.record("sensor-2", 7);
    assert_eq!(
        stats.forget("sensor-1"),
        Some(HostCounts {
            records: 2,
            bytes: 10
        })
    );
    assert_eq!(stats.forget("sensor-1"), None);
    assert_eq!(
        stats.totals(),
        HostCounts {
            records: 1,
            bytes: 7
        }
    );
}

/// The liability "potential for deadlock": the pattern rules out a component waiting for
/// itself, not two components waiting for each other. Each of two components (one lock each)
/// calls the other's public method while its own lock is held, on two threads: each finds the
/// other's lock held (probed with `try_write`, where blocking calls would wait forever).
#[test]
fn two_components_calling_each_others_interface_can_still_deadlock() {
    let (a, b): (Guarded<u64, MutexLock>, Guarded<u64, MutexLock>) =
        (Guarded::new(0), Guarded::new(0));
    let both_hold = std::sync::Barrier::new(2);
    let both_tried = std::sync::Barrier::new(2);
    let call = |own: &Guarded<u64, MutexLock>, other: &Guarded<u64, MutexLock>| {
        let _held = own.write(); // inside the component's own interface method
        both_hold.wait();
        let got = other.try_write().is_some(); // the other's interface method
        both_tried.wait();
        got
    };
    let (a_to_b, b_to_a) = thread::scope(|s| {
        let t1 = s.spawn(|| call(&a, &b));
        let t2 = s.spawn(|| call(&b, &a));
        (t1.join().unwrap(), t2.join().unwrap())
    });
    assert_eq!(
        (a_to_b, b_to_a),
        (false, false),
        "each waits for the other: a deadlock"
    );
    // Either call alone, with no lock held, goes through.
    assert!(a.try_write().is_some() && b.try_write().is_some());
}

/// The `fn` names declared in the block that starts with `header` in `source` (up to the
/// brace that closes it), with whether each is `pub`.
fn methods_of(source: &str, header: &str) -> Vec<(String, bool)> {
    let start = source.find(header).expect("the impl block") + header.len();
    let mut depth = 1;
    let body = source[start..]
        .char_indices()
        .find_map(|(i, c)| {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                _ => {}
            }
            (depth == 0).then(|| &source[start..start + i])
        })
        .expect("the block closes");
    body.lines()
        .filter_map(|l| {
            let l = l.trim_start();
            let (public, rest) = match l.strip_prefix("pub fn ") {
                Some(rest) => (true, rest),
                None => (false, l.strip_prefix("fn ")?),
            };
            Some((rest.split(['(', '<']).next()?.to_owned(), public))
        })
        .collect()
}

/// The liability "additional indirection and extra methods": every operation the component
/// also performs from inside (an intra-component call) is written twice, as a public interface
/// method that locks and a private implementation method that assumes the lock. Read from the
/// component's source: each implementation method is private and has an interface method of
/// its name; the queries, never called from inside, are written once.
#[test]
fn additional_indirection_each_inner_operation_is_written_twice_interface_and_implementation() {
    let source = include_str!("../../src/interface.rs");
    let implementation = methods_of(source, "impl Inner {");
    let interface = methods_of(source, "impl<L: LockStrategy> Statistics<L> {");
    let names = |v: &[(String, bool)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&implementation), ["record", "record_batch", "forget"]);
    assert!(implementation.iter().all(|(_, public)| !public));
    for (name, _) in &implementation {
        assert!(
            interface.contains(&(name.clone(), true)),
            "`{name}` has no interface method"
        );
    }
    let written_once: Vec<String> = names(&interface)
        .into_iter()
        .filter(|n| !names(&implementation).contains(n))
        .collect();
    assert_eq!(written_once, ["host", "totals", "hosts"]);
    // What the indirection buys: a batch (the implementation calling itself per record) takes
    // the lock once (`a_batch_is_counted_under_one_lock_acquisition`).
}
