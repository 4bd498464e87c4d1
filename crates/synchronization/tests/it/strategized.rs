//! Strategized Locking: one component, written once, under every lock strategy.

use std::panic::{self, AssertUnwindSafe};
use std::sync::Barrier;
use std::thread;

use synchronization::{Counting, Guarded, LockStrategy, MutexLock, NullLock, ReadWriteLock};

/// A component's critical sections, written once: a gateway's reading buffer.
fn exercise<L: LockStrategy>() -> (Vec<u32>, u32) {
    let buffer: Guarded<Vec<u32>, L> = Guarded::new(Vec::new());
    for v in [21, 22, 23] {
        buffer.write().push(v);
    }
    let sum = buffer.read().iter().sum();
    buffer.with(|b| b.retain(|v| v % 2 == 1));
    (buffer.into_inner(), sum)
}

#[test]
fn the_same_component_code_gives_the_same_results_under_every_strategy() {
    let expected = (vec![21, 23], 66);
    assert_eq!(exercise::<NullLock>(), expected);
    assert_eq!(exercise::<MutexLock>(), expected);
    assert_eq!(exercise::<ReadWriteLock>(), expected);
    assert_eq!(exercise::<Counting<NullLock>>(), expected);
    assert_eq!(exercise::<Counting<ReadWriteLock>>(), expected);
}

fn count_under_a_pool<L: LockStrategy>() -> u64
where
    Guarded<u64, L>: Sync,
{
    let counter: Guarded<u64, L> = Guarded::default();
    thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..10_000 {
                    *counter.write() += 1;
                }
            });
        }
    });
    counter.into_inner()
}

#[test]
fn the_thread_safe_strategies_lose_no_update_under_a_pool() {
    assert_eq!(count_under_a_pool::<MutexLock>(), 40_000);
    assert_eq!(count_under_a_pool::<ReadWriteLock>(), 40_000);
    assert_eq!(count_under_a_pool::<Counting<MutexLock>>(), 40_000);
}

#[test]
fn readers_hold_a_readers_writer_lock_together_and_a_writer_waits() {
    let table: Guarded<Vec<&str>, ReadWriteLock> = Guarded::new(vec!["sensor-1"]);
    // Both readers are inside their read sections at once: each waits at the barrier holding
    // its guard, which only works if neither excludes the other.
    let both_inside = Barrier::new(2);
    thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                let guard = table.read();
                both_inside.wait();
                assert!(
                    table.try_write().is_none(),
                    "a writer must wait for readers"
                );
                guard.len()
            });
        }
    });
    assert!(table.try_write().is_some());
}

#[test]
fn a_mutex_strategy_makes_readers_exclude_each_other() {
    let table: Guarded<u8, MutexLock> = Guarded::new(0);
    let _reading = table.read();
    assert!(table.try_write().is_none());
}

#[test]
fn the_null_lock_turns_a_nested_write_into_a_panic_instead_of_a_hang() {
    let state: Guarded<u8, NullLock> = Guarded::new(0);
    let held = state.write();
    assert!(state.try_write().is_none());
    let nested = panic::catch_unwind(AssertUnwindSafe(|| *state.write() += 1));
    assert!(nested.is_err());
    drop(held);
    *state.write() += 1;
    assert_eq!(*state.read(), 1);
}

#[test]
fn the_counting_strategy_counts_every_acquisition() {
    let mut g: Guarded<u8, Counting<MutexLock>> = Guarded::new(0);
    *g.write() += 1;
    let _ = *g.read();
    g.with(|v| *v += 1);
    let held = g.write();
    assert!(g.try_write().is_none()); // a failed try is not an acquisition
    drop(held);
    assert_eq!(g.acquisitions(), 4);
    *g.get_mut() += 1; // exclusive borrow: no lock
    assert_eq!(g.acquisitions(), 4);
    assert_eq!(g.into_inner(), 3);
}

#[test]
fn guarded_debug_names_the_strategy_without_locking() {
    let g: Guarded<u8, MutexLock> = Guarded::new(0);
    let _held = g.write();
    assert_eq!(format!("{g:?}"), "Guarded { strategy: \"mutex\", .. }");
}

/// A gateway's report, written and tested under the readers/writer lock: while it reads the
/// buffer for the sum, a helper it calls reads it again for the count (a nested read).
/// It probes with `try_read` where the real code would call `read`: on one thread, a lock that
/// would make the nested read wait can only be held by this very call chain.
fn mean_with_nested_read<L: LockStrategy>(buffer: &Guarded<Vec<u32>, L>) -> Option<u32> {
    let readings = buffer.read();
    let sum: u32 = readings.iter().sum();
    let count = buffer.try_read()?.len() as u32; // the helper's own read
    Some(sum / count)
}

/// The liability "over-engineering": the lock is the user's choice, and the flexibility lets a
/// wrong one in. The report above is right under the strategies it was written for (readers
/// share), compiles unchanged under `MutexLock`, and there self-deadlocks (readers exclude each
/// other). The compiler catches only the other wrong choice, a null lock shared between
/// threads (the `compile_fail` doctest on `Guarded`).
#[test]
fn over_engineering_a_wrongly_chosen_strategy_compiles_and_self_deadlocks() {
    fn report_under<L: LockStrategy>() -> Option<u32> {
        mean_with_nested_read(&Guarded::<_, L>::new(vec![20, 22, 24]))
    }
    assert_eq!(report_under::<ReadWriteLock>(), Some(22));
    assert_eq!(report_under::<NullLock>(), Some(22));
    assert_eq!(
        report_under::<MutexLock>(),
        None,
        "the nested read would wait for itself"
    );
    assert_eq!(report_under::<Counting<MutexLock>>(), None);
}
