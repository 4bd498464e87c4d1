//! Double-Checked Locking Optimization: worker threads of a gateway look up the state slot of
//! a host that connects; the first one allocates it under the lock, every later lookup is one
//! acquire load. Then the same thing the idiomatic way, with `OnceLock`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Barrier, OnceLock};
use std::thread;

use synchronization::DoubleChecked;

/// The slot of sensor-7's per-host state, allocated on first use.
static SENSOR_7_SLOT: DoubleChecked = DoubleChecked::new();
/// How many times a slot was allocated.
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
/// The idiomatic form for any type: the gateway's host table.
static HOST_TABLE: OnceLock<HashMap<&'static str, u64>> = OnceLock::new();
static TABLE_BUILDS: AtomicUsize = AtomicUsize::new(0);

fn main() -> std::io::Result<()> {
    // `cargo xtask demo --diagrams` draws the Double-Checked Locking page's sequence diagram
    // from this run; the threads are named so that each is drawn as itself, grouped by thread
    // (which of them wins the race varies, so the race itself is noted, not drawn).
    let mut diagram = pattern_core::diagram::Diagram::from_env("double_checked_locking_host_slots");
    diagram.group_by_thread();
    println!(
        "gateway: sensor-7 connects; its slot is allocated: {:?}",
        SENSOR_7_SLOT.get()
    );
    diagram.note("main", "6 threads call get_or_init at once: one runs init under the lock, the others wait for it and find it ready (not drawn: which one wins varies)");
    diagram.pause();
    let start = Barrier::new(6);
    let slots: Vec<u64> = thread::scope(|s| {
        let workers: Vec<_> = (0..6)
            .map(|_| {
                s.spawn(|| {
                    start.wait();
                    SENSOR_7_SLOT.get_or_init(|| {
                        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
                        7
                    })
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    println!(
        "workers: 6 threads asked at once, all got slot {:?}",
        slots[0]
    );
    println!(
        "workers: same slot everywhere: {}",
        slots.iter().all(|s| *s == slots[0])
    );
    println!(
        "critical section: the allocation ran {} time(s)",
        ALLOCATIONS.load(Ordering::SeqCst)
    );
    diagram.resume();
    SENSOR_7_SLOT.get_or_init(|| unreachable!("initialised by the race above"));
    println!(
        "later lookups: {:?} (first check only, no lock)",
        SENSOR_7_SLOT.get()
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
