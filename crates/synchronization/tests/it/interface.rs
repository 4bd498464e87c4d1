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

/// A component that follows the pattern inside, but whose interface method calls another
/// component's interface method while it holds its own lock (an uplink statistics component
/// forwarding to a gateway's, and the gateway's forwarding back).
struct Forwarding {
    count: Guarded<u64, MutexLock>,
}

impl Forwarding {
    /// The interface method: takes this component's lock, then calls `other`'s interface. It
    /// probes the other lock with `try_write` where real code would call `write`, and reports
    /// whether that call would have had to wait.
    fn record_and_forward(&self, other: &Forwarding, both_hold: &std::sync::Barrier) -> bool {
        let mut own = self.count.write();
        *own += 1;
        both_hold.wait(); // each thread now holds its own component's lock
        let would_wait = other.count.try_write().is_none();
        both_hold.wait(); // neither lets go before both have tried
        would_wait
    }
}

/// Course consequence "potential for deadlock": the pattern rules out a component deadlocking
/// with itself, not two components calling each other. Two threads enter the two components'
/// interfaces at once; each then needs the lock the other holds, so with `write` instead of the
/// probe both would wait forever.
#[test]
fn potential_for_deadlock_two_components_calling_each_other_wait_for_each_other() {
    let uplink = Forwarding {
        count: Guarded::new(0),
    };
    let gateway = Forwarding {
        count: Guarded::new(0),
    };
    let both_hold = std::sync::Barrier::new(2);
    let (a, b) = thread::scope(|s| {
        let a = s.spawn(|| uplink.record_and_forward(&gateway, &both_hold));
        let b = s.spawn(|| gateway.record_and_forward(&uplink, &both_hold));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert!(a && b, "each thread would wait for the other: a deadlock");
    // One at a time, the same calls go through: the deadlock needs both at once.
    let alone = std::sync::Barrier::new(1);
    assert!(!uplink.record_and_forward(&gateway, &alone));
    assert_eq!((*uplink.count.read(), *gateway.count.read()), (2, 1));
}
