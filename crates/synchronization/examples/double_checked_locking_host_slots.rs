//! Double-Checked Locking Optimization: worker threads of a gateway look up the state slot of
//! a host that connects; the first one allocates it under the lock, every later lookup is one
//! acquire load. Then the same thing the idiomatic way, with `OnceLock`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Barrier, OnceLock};
use std::thread;
use std::time::Duration;

use pattern_core::diagram::Step;
use synchronization::DoubleChecked;

/// The slot of sensor-7's per-host state, allocated on first use.
static SENSOR_7_SLOT: DoubleChecked = DoubleChecked::new();
/// How many times a slot was allocated.
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
/// Sensor-9's slot, raced for by six threads (not drawn).
static SENSOR_9_SLOT: DoubleChecked = DoubleChecked::new();
static ALLOCATIONS_9: AtomicUsize = AtomicUsize::new(0);
/// The idiomatic form for any type: the gateway's host table.
static HOST_TABLE: OnceLock<HashMap<&'static str, u64>> = OnceLock::new();
static TABLE_BUILDS: AtomicUsize = AtomicUsize::new(0);

fn main() -> std::io::Result<()> {
    // `cargo xtask demo --diagrams` draws the Double-Checked Locking page's sequence diagram
    // from this run. Two first callers race, and every run takes the same interleaving: the
    // recorder holds worker B at its first check until worker A holds the lock
    // (`Diagram::hold`), and A's init lasts until B has found the flag unset and asks for the
    // lock; so B waits for the lock, and its second check finds the slot A made.
    let diagram = pattern_core::diagram::Diagram::from_env("double_checked_locking_host_slots");
    let by = |thread: &'static str, message: &'static str| {
        move |s: &Step| s.thread == thread && s.message.starts_with(message)
    };
    // B's first check waits until A holds the lock and is about to run init ...
    let a_inside = by("worker A", "second check: not ready");
    diagram.hold(by("worker B", "get_or_init"), move |steps| {
        steps.iter().any(&a_inside)
    });
    // ... and A's init (the slot's allocation) takes until B has found the flag unset and
    // asks for the lock.
    let b_waits = by("worker B", "false: lock the mutex");
    println!(
        "gateway: sensor-7 connects; its slot is allocated: {:?}",
        SENSOR_7_SLOT.get()
    );
    let slots: Vec<u64> = thread::scope(|s| {
        let workers: Vec<_> = ["worker A", "worker B"]
            .into_iter()
            .map(|name| {
                thread::Builder::new()
                    .name(name.into())
                    .spawn_scoped(s, || {
                        SENSOR_7_SLOT.get_or_init(|| {
                            diagram.wait_for(Duration::from_secs(10), |steps| {
                                steps.iter().any(&b_waits)
                            });
                            ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
                            7
                        })
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok::<_, std::io::Error>(workers.into_iter().map(|w| w.join().unwrap()).collect())
    })?;
    println!(
        "workers A and B asked at once: got slots {slots:?}, the allocation ran {} time(s)",
        ALLOCATIONS.load(Ordering::SeqCst)
    );
    SENSOR_7_SLOT.get_or_init(|| unreachable!("initialised by the race above"));
    println!(
        "later lookups: {:?} (first check only, no lock)",
        SENSOR_7_SLOT.get()
    );

    // The same with six threads at once, not drawn: which one wins varies.
    diagram.pause();
    let start = Barrier::new(6);
    let slots: Vec<u64> = thread::scope(|s| {
        let workers: Vec<_> = (0..6)
            .map(|_| {
                s.spawn(|| {
                    start.wait();
                    SENSOR_9_SLOT.get_or_init(|| {
                        ALLOCATIONS_9.fetch_add(1, Ordering::SeqCst);
                        9
                    })
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    println!(
        "sensor-9: 6 threads asked at once, all got slot {:?}: {}; the allocation ran {} time(s)",
        slots[0],
        slots.iter().all(|s| *s == slots[0]),
        ALLOCATIONS_9.load(Ordering::SeqCst)
    );

    let sizes: Vec<usize> = thread::scope(|s| {
        let workers: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    HOST_TABLE
                        .get_or_init(|| {
                            TABLE_BUILDS.fetch_add(1, Ordering::SeqCst);
                            HashMap::from([("sensor-1", 1), ("sensor-7", 7)])
                        })
                        .len()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    println!(
        "OnceLock: 4 threads saw a table of {:?} hosts, built {} time(s)",
        sizes[0],
        TABLE_BUILDS.load(Ordering::SeqCst)
    );
    diagram.finish()
}
