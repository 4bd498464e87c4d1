//! The course's consequence "limited scalability" of the Monitor Object, measured: producer and
//! consumer pairs moving items through one monitor queue, against each pair with a queue of its
//! own, in one run.
//!
//! Run with `cargo bench -p concurrency --bench monitor_scalability`.
//!
//! With 1, 2 and 4 pairs, each producer pushes `ITEMS` readings and its consumer pops as many:
//! `shared` puts every pair on one `MonitorQueue` (one lock serialises every push and pop of
//! every thread), `per_pair` gives each pair its own. Each round runs both, the order alternating;
//! the program prints the median items per second of each and the median per-round ratio
//! shared ÷ per_pair, and the median share of monitor entries that found another thread inside
//! and waited for the lock (`MonitorQueue::stats`), shared and per pair. With `--test` (as
//! `cargo test --all-targets` passes) it runs one short round.

use std::sync::Arc;
use std::thread;
use std::time::Instant;

use concurrency::MonitorQueue;

const CAPACITY: usize = 64;

/// Items per second moved by `pairs` producer/consumer pairs, each pair using the queue that
/// `queue_of` gives it.
fn run(pairs: usize, items: u64, queue_of: impl Fn(usize) -> Arc<MonitorQueue<u64>>) -> f64 {
    let start = Instant::now();
    thread::scope(|s| {
        for p in 0..pairs {
            let queue = queue_of(p);
            let out = queue.clone();
            s.spawn(move || {
                for i in 0..items {
                    queue.push(i).expect("open");
                }
            });
            s.spawn(move || {
                for _ in 0..items {
                    std::hint::black_box(out.pop().expect("open"));
                }
            });
        }
    });
    (pairs as u64 * items) as f64 / start.elapsed().as_secs_f64()
}

/// The share of the entries into `queues` that found another thread inside the monitor.
fn contended_share<'a>(queues: impl IntoIterator<Item = &'a Arc<MonitorQueue<u64>>>) -> f64 {
    let (entries, contended) = queues.into_iter().fold((0, 0), |(e, c), q| {
        let s = q.stats();
        (e + s.entries, c + s.contended)
    });
    contended as f64 / entries as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let smoke = std::env::args().any(|a| a == "--test" || a == "--list");
    let (rounds, items) = if smoke { (1, 1_000) } else { (9, 100_000) };
    println!(
        "cores: {}",
        thread::available_parallelism().map_or(0, |n| n.get())
    );
    for pairs in [1, 2, 4] {
        let (mut shared, mut own, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
        let (mut shared_contended, mut own_contended) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            let one = Arc::new(MonitorQueue::new(CAPACITY));
            let many: Vec<_> = (0..pairs)
                .map(|_| Arc::new(MonitorQueue::new(CAPACITY)))
                .collect();
            let shared_run = || run(pairs, items, |_| one.clone());
            let own_run = || run(pairs, items, |p| many[p].clone());
            let (s, o) = if round % 2 == 0 {
                let s = shared_run();
                (s, own_run())
            } else {
                let o = own_run();
                (shared_run(), o)
            };
            shared.push(s);
            own.push(o);
            ratio.push(s / o);
            shared_contended.push(contended_share([&one]));
            own_contended.push(contended_share(&many));
        }
        println!(
            "{pairs} pair(s): shared {:>6.2} M items/s  per_pair {:>6.2} M items/s  shared/per_pair = {:.2}  contended entries: shared {:>4.1}%  per_pair {:>4.1}%  (medians of {rounds} interleaved rounds)",
            median(shared) / 1e6,
            median(own) / 1e6,
            median(ratio),
            100.0 * median(shared_contended),
            100.0 * median(own_contended)
        );
    }
}
