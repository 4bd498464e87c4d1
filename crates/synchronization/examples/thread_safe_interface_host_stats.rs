//! Thread-Safe Interface: the gateway's per-host statistics take their lock once per public
//! call; a batch runs its internal per-record method under that one lock. Beside it, a
//! component written without the pattern calls its own public method from inside and would
//! wait for the lock it already holds: the example detects that with `try_write` instead of
//! hanging.

use synchronization::{Counting, Guarded, MutexLock, Statistics};

/// A component written without the pattern: public methods calling public methods.
struct NaiveStatistics {
    records: Guarded<u64, MutexLock>,
}

impl NaiveStatistics {
    /// Probes with `try_write` where naive code would call `write`: on this single thread, a
    /// held lock can only be held by our own caller, so `write` would never return.
    fn record(&self) -> Result<(), &'static str> {
        let mut records = self
            .records
            .try_write()
            .ok_or("would self-deadlock: the lock is held by this thread's own caller")?;
        *records += 1;
        Ok(())
    }

    fn record_batch(&self, n: usize) -> Result<(), &'static str> {
        let _held = self.records.write();
        for _ in 0..n {
            self.record()?;
        }
        Ok(())
    }
}

fn main() -> std::io::Result<()> {
    // `cargo xtask demo --diagrams` draws the Thread-Safe Interface page's sequence diagram from this run.
    let diagram = pattern_core::diagram::Diagram::from_env("thread_safe_interface_host_stats");
    let stats: Statistics<Counting<MutexLock>> = Statistics::default();
    stats.record_batch("sensor-1", &[120, 80, 95, 101, 99]);
    println!(
        "interface: record_batch(sensor-1, 5 records) took the lock {} time(s)",
        stats.lock_acquisitions()
    );
    for bytes in [120, 80, 95, 101, 99] {
        stats.record("sensor-2", bytes);
    }
    println!(
        "interface: 5 calls of record(sensor-2) took the lock {} more time(s)",
        stats.lock_acquisitions() - 1
    );
    let s1 = stats.host("sensor-1").unwrap();
    println!(
        "interface: sensor-1 has {} records, {} bytes",
        s1.records, s1.bytes
    );
    println!("implementation: record_batch calls record on &mut state: no lock, no way back to it");

    let naive = NaiveStatistics {
        records: Guarded::new(0),
    };
    println!("naive: record() alone: {:?}", naive.record());
    println!(
        "naive: record_batch(3), calling the public record() inside: {:?}",
        naive.record_batch(3)
    );
    println!("naive: records counted: {}", naive.records.into_inner());
    diagram.finish()
}
