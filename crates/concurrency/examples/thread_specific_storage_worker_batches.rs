//! Thread-Specific Storage: gateway worker threads each collect log records in a batch of
//! their own, reached through one shared `ThreadSpecific` access point, with no lock. A second
//! instance counts each worker's malformed records. When a worker exits, its batch is dropped,
//! and the drop flushes it. Only the main thread prints, in worker order, so the narrative is
//! the same on every run.

use std::sync::mpsc;
use std::thread;

use concurrency::ThreadSpecific;

/// A worker's batch of log records; dropping it (at thread exit) flushes it.
struct Batch {
    worker: String,
    records: Vec<String>,
    flush: mpsc::Sender<(String, Vec<String>)>,
}

impl Drop for Batch {
    fn drop(&mut self) {
        let records = std::mem::take(&mut self.records);
        let _ = self.flush.send((self.worker.clone(), records));
    }
}

fn main() -> std::io::Result<()> {
    // `cargo xtask demo --diagrams` draws the Thread-Specific Storage page's sequence diagram
    // from this run, each worker's steps together (they do not interact: that is the point).
    let mut diagram =
        pattern_core::diagram::Diagram::from_env("thread_specific_storage_worker_batches");
    diagram.group_by_thread();
    let (flush_tx, flush_rx) = mpsc::channel();
    let batches = ThreadSpecific::new(move || Batch {
        worker: thread::current().name().unwrap_or("unnamed").to_string(),
        records: Vec::new(),
        flush: flush_tx.clone(),
    });
    let malformed = ThreadSpecific::new(|| 0u32);
    println!(
        "gateway: batches under TSS key {}, malformed-record counters under key {}",
        batches.key().as_u64(),
        malformed.key().as_u64()
    );

    let counts: Vec<(String, u32)> = thread::scope(|s| {
        let workers: Vec<_> = (0..3)
            .map(|w| {
                let (batches, malformed) = (&batches, &malformed);
                thread::Builder::new()
                    .name(format!("worker-{w}"))
                    .spawn_scoped(s, move || {
                        for i in 0..(w + 1) * 3 {
                            if i % 4 == 3 {
                                malformed.with(|m| *m += 1);
                            } else {
                                batches.with(|b| b.records.push(format!("sensor-{w} reading {i}")));
                            }
                        }
                        let name = thread::current().name().unwrap().to_string();
                        (name, malformed.try_with(|m| *m).unwrap_or(0))
                    })
                    .unwrap()
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    for (worker, bad) in &counts {
        println!("{worker}: finished, {bad} malformed record(s) counted in its own counter");
    }

    let mut flushed: Vec<(String, Vec<String>)> = flush_rx.try_iter().collect();
    flushed.sort();
    println!(
        "gateway: {} batches flushed by their threads' exit",
        flushed.len()
    );
    for (worker, records) in &flushed {
        println!(
            "flush {worker}: {} record(s), first {:?}, last {:?}",
            records.len(),
            records.first().unwrap(),
            records.last().unwrap()
        );
    }
    println!(
        "main: has a batch of its own: {}",
        batches.try_with(|_| ()).is_some()
    );
    diagram.finish()
}
