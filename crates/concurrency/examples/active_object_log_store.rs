//! Active Object: a gateway's log store runs on its own thread. The dispatcher calls the
//! store's proxy, which turns each call into a method request in the activation queue and
//! returns a future at once; the scheduler runs the requests on the servant, holding back an
//! `fsync` until there is something to sync. A second store shows a cancelling shutdown: every
//! pending future gets a defined answer.
//! The servant keeps its own log, printed after the run, so the output is the same every time.

use std::sync::mpsc;

use concurrency::{ActiveObject, Cancelled, Eventual, Shutdown};

/// The servant: per-host records, and how many of them are on disk.
#[derive(Debug, Default)]
struct LogStore {
    records: Vec<(String, String)>,
    synced: usize,
    log: Vec<String>,
}

/// The proxy: the store's interface as clients see it; every method returns a future.
struct LogStoreProxy {
    active: ActiveObject<LogStore>,
}

impl LogStoreProxy {
    fn new(capacity: usize) -> Self {
        LogStoreProxy {
            active: ActiveObject::new(LogStore::default(), capacity),
        }
    }

    /// Appends a record; the future holds its sequence number.
    fn append(&self, host: &str, message: &str) -> Eventual<usize> {
        let (host, message) = (host.to_string(), message.to_string());
        self.active.invoke("append", move |s: &mut LogStore| {
            s.log.push(format!("servant: append {host}: {message}"));
            s.records.push((host, message));
            s.records.len()
        })
    }

    /// Makes every appended record durable; runs only when some record is not yet synced.
    fn fsync(&self) -> Eventual<usize> {
        self.active.invoke_guarded(
            "fsync",
            |s: &LogStore| s.records.len() > s.synced,
            |s: &mut LogStore| {
                let n = s.records.len() - s.synced;
                s.synced = s.records.len();
                s.log.push(format!("servant: fsync wrote {n} record(s)"));
                n
            },
        )
    }

    /// A request that keeps the scheduler busy until `gate` opens (to show a shutdown with
    /// requests pending).
    fn compact(
        &self,
        started: mpsc::Sender<()>,
        gate: mpsc::Receiver<()>,
    ) -> Eventual<&'static str> {
        self.active.invoke("compact", move |s: &mut LogStore| {
            started.send(()).unwrap();
            gate.recv().unwrap();
            s.log.push("servant: compacted".to_string());
            "compacted"
        })
    }
}

fn main() -> std::io::Result<()> {
    // `cargo xtask demo --diagrams` draws the Active Object page's sequence diagram from this
    // run; while it records, the dispatcher waits for the scheduler to block again after each
    // request, so that the two threads' steps come in the same order every run.
    let diagram = pattern_core::diagram::Diagram::from_env("active_object_log_store");
    let idle = |n| diagram.wait_for_count("wait on not_empty", n);
    let store = LogStoreProxy::new(4);
    idle(1);
    println!("dispatcher: store started, activation queue of 4 requests");
    let synced = store.fsync();
    idle(2);
    println!("dispatcher: fsync requested first; its guard (unsynced records) does not hold yet");
    let appends: Vec<_> = [
        ("sensor-1", "t=21.5"),
        ("sensor-2", "h=40%"),
        ("sensor-1", "t=21.7"),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (h, m))| {
        let eventual = store.append(h, m);
        idle(3 + i);
        eventual
    })
    .collect();
    println!("dispatcher: 3 appends queued, 4 futures in hand, nothing waited for");
    for (i, a) in appends.into_iter().enumerate() {
        println!(
            "dispatcher: append {} is record #{}",
            i + 1,
            a.wait().unwrap()
        );
    }
    println!(
        "dispatcher: fsync answered: {} record(s) durable",
        synced.wait().unwrap()
    );
    let report = store.active.shutdown(Shutdown::Drain);
    for line in &report.servant.log {
        println!("{line}");
    }
    println!(
        "scheduler: drained; executed {}, cancelled {}",
        report.executed, report.cancelled
    );

    diagram.pause();
    println!("--- a cancelling shutdown ---");
    let store = LogStoreProxy::new(4);
    let (started_tx, started_rx) = mpsc::channel();
    let (gate_tx, gate_rx) = mpsc::channel();
    let compact = store.compact(started_tx, gate_rx);
    started_rx.recv().unwrap();
    println!("dispatcher: compact is running on the servant");
    let pending = [
        store.append("sensor-3", "v=3.3"),
        store.append("sensor-3", "v=3.2"),
    ];
    let sync = store.fsync();
    store.active.close(Shutdown::Cancel);
    println!("dispatcher: shutdown (cancel) begun with 3 requests pending");
    let late = store.append("sensor-4", "too late");
    gate_tx.send(()).unwrap();
    let report = store.active.shutdown(Shutdown::Cancel);
    println!("dispatcher: compact answered {:?}", compact.wait());
    for p in pending {
        println!("dispatcher: pending append answered {:?}", p.wait());
    }
    println!("dispatcher: pending fsync answered {:?}", sync.wait());
    let late = late.wait();
    assert_eq!(late, Err(Cancelled::Closed));
    println!("dispatcher: append after shutdown answered {late:?}");
    println!(
        "scheduler: stopped; executed {}, cancelled {}, {} record(s) stored",
        report.executed,
        report.cancelled,
        report.servant.records.len()
    );
    diagram.finish()
}
