//! The course's consequence "performance overhead" of the Active Object, measured: one method
//! call on a log store's statistics, made four ways in one run.
//!
//! Run with `cargo bench -p concurrency --bench active_object_overhead`.
//!
//! - `direct`: the method called on the servant by the client's own thread;
//! - `mutex`: the same behind a `Mutex` (the synchronous alternative, a monitor);
//! - `active_wait`: `invoke` and wait on the future at once, each call (a boxed request, a queue
//!   hand-off, a future, and two thread switches: to the scheduler and back);
//! - `active_batch`: 1,000 `invoke`s, then the waits (the hand-off amortised, as a client that
//!   does not need each result at once pays it).
//!
//! Each round runs the four back to back, their order rotating between rounds; the program
//! prints the median nanoseconds per call of each and the median of the per-round ratios to
//! `direct`. With `--test` (as `cargo test --all-targets` passes) it runs one short round.

use std::hint::black_box;
use std::sync::Mutex;
use std::time::Instant;

use concurrency::{ActiveObject, Shutdown};

/// The servant: what a log store counts.
#[derive(Default)]
struct Counts {
    records: u64,
    bytes: u64,
}

impl Counts {
    fn append(&mut self, bytes: u64) -> u64 {
        self.records += 1;
        self.bytes += bytes;
        self.records
    }
}

const BATCH: u64 = 1_000;

/// One way of making the call, by name; its argument is the step number.
type Way<'a> = (&'static str, Box<dyn FnMut(u64) + 'a>);

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let smoke = std::env::args().any(|a| a == "--test" || a == "--list");
    let (rounds, calls) = if smoke {
        (1, 2 * BATCH)
    } else {
        (21, 100 * BATCH)
    };

    let mut direct = Counts::default();
    let locked = Mutex::new(Counts::default());
    let active = ActiveObject::new(Counts::default(), BATCH as usize);

    let mut ways: Vec<Way<'_>> = vec![
        (
            "direct",
            Box::new(|i| {
                black_box(direct.append(black_box(i)));
            }),
        ),
        (
            "mutex",
            Box::new(|i| {
                black_box(locked.lock().expect("not poisoned").append(black_box(i)));
            }),
        ),
        (
            "active_wait",
            Box::new(|i| {
                let done = active.invoke("append", move |s: &mut Counts| s.append(i));
                black_box(done.wait().expect("served"));
            }),
        ),
        (
            "active_batch",
            Box::new(|i| {
                // One step of this way is a whole batch; its time is divided by BATCH below.
                let futures: Vec<_> = (0..BATCH)
                    .map(|k| active.invoke("append", move |s: &mut Counts| s.append(i + k)))
                    .collect();
                for f in futures {
                    black_box(f.wait().expect("served"));
                }
            }),
        ),
    ];

    let mut times: Vec<Vec<f64>> = vec![Vec::new(); ways.len()];
    for round in 0..=rounds {
        for k in 0..ways.len() {
            let w = (k + round) % ways.len();
            let (name, call) = &mut ways[w];
            let steps = if *name == "active_batch" {
                calls / BATCH
            } else {
                calls
            };
            let start = Instant::now();
            for i in 0..steps {
                call(i);
            }
            let ns = start.elapsed().as_nanos() as f64 / calls as f64;
            if round > 0 {
                // Round 0 only warms up.
                times[w].push(ns);
            }
        }
    }
    let direct_ns = times[0].clone();
    for ((name, _), t) in ways.iter().zip(&times) {
        let ratios: Vec<f64> = t.iter().zip(&direct_ns).map(|(a, d)| a / d).collect();
        println!(
            "{name:<13} {:>9.1} ns per call  {:>8.1}x direct  (medians of {rounds} interleaved rounds of {calls} calls)",
            median(t.clone()),
            median(ratios)
        );
    }
    drop(ways);
    let report = active.shutdown(Shutdown::Drain);
    black_box(report);
}
