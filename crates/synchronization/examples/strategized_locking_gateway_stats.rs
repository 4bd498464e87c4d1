//! Strategized Locking: one statistics component, written once, configured with the lock that
//! fits where it runs: the null lock inside a single-threaded reactor, a mutex or a
//! readers/writer lock under a pool of threads, and a counting decorator to see the locking.
//! Only the main thread prints, and only totals, so the narrative is the same on every run.

use std::thread;

use synchronization::{Counting, LockStrategy, MutexLock, NullLock, ReadWriteLock, Statistics};

/// The gateway's traffic: (sensor, record sizes in one read).
const TRAFFIC: [(&str, &[u64]); 4] = [
    ("sensor-1", &[120, 80]),
    ("sensor-2", &[64]),
    ("sensor-1", &[95, 101, 99]),
    ("sensor-3", &[300]),
];

/// One reactor thread feeds the component.
fn reactor<L: LockStrategy>(stats: &Statistics<L>) {
    for (host, sizes) in TRAFFIC {
        stats.record_batch(host, sizes);
    }
}

/// Four pool threads feed the component at once, each the whole traffic.
fn pool<L: LockStrategy>(stats: &Statistics<L>)
where
    Statistics<L>: Sync,
{
    thread::scope(|s| {
        for n in 0..4 {
            thread::Builder::new()
                .name(format!("pool-{n}"))
                .spawn_scoped(s, || reactor(stats))
                .expect("spawn a pool thread");
        }
    });
}

fn report<L: LockStrategy>(setting: &str, stats: &Statistics<L>) {
    let t = stats.totals();
    println!(
        "{setting:<22} strategy {:<20} {} records, {} bytes",
        L::NAME,
        t.records,
        t.bytes
    );
}

fn main() -> std::io::Result<()> {
    // `cargo xtask demo --diagrams` draws the Strategized Locking page's sequence diagram from
    // the reactor's run and the first pool thread's, each thread's steps together (the pool's
    // threads do the same work; how they interleave is the scheduler's business).
    let mut diagram =
        pattern_core::diagram::Diagram::from_env_limited("strategized_locking_gateway_stats", 32);
    diagram.group_by_thread();
    println!("component: Statistics<L>, per-host record and byte counts, written once");

    let single: Statistics<NullLock> = Statistics::default();
    reactor(&single);
    report("reactor (1 thread)", &single);

    let mutex: Statistics<MutexLock> = Statistics::default();
    pool(&mutex);
    report("pool (4 threads)", &mutex);

    diagram.pause();
    let rw: Statistics<ReadWriteLock> = Statistics::default();
    pool(&rw);
    report("pool (4 threads)", &rw);

    let counted: Statistics<Counting<MutexLock>> = Statistics::default();
    pool(&counted);
    let acquisitions = counted.lock_acquisitions();
    report("pool (4 threads)", &counted);
    println!(
        "counting: {acquisitions} lock acquisitions for {} batches (one per interface call)",
        4 * TRAFFIC.len()
    );

    for (host, c) in single.hosts() {
        println!("reactor: {host}: {} records, {} bytes", c.records, c.bytes);
    }
    println!(
        "compiler: Statistics<NullLock> is not Sync, so sharing it with the pool does not compile"
    );
    diagram.finish()
}
