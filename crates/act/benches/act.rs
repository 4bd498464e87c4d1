//! Criterion benchmarks of the ACT crate.
//!
//! - `issue_complete`: one issue plus one completion (the handler runs) with 1,024 tokens
//!   outstanding, for the token table, the thread-safe `Callbacks`, and the baseline a
//!   hand-written initiator would use: `HashMap<u64, Box<dyn FnOnce>>` with a counter as key.
//! - `client`: requests per second of the pipelined client against the one-request-at-a-time
//!   client, both on the reactor, against the same in-order server on loopback.
//!
//! After criterion's own report, the binary measures each pair again in one run and prints
//! the ratio.

#[path = "../examples/support/pipeline.rs"]
#[allow(dead_code)]
mod pipeline;

use std::collections::{HashMap, VecDeque};
use std::hint::black_box;
use std::time::{Duration, Instant};

use act::{Callbacks, CompletionToken, TokenTable};
use criterion::{Criterion, Throughput};
use pipeline::{Mode, PipelinedClient, Request, spawn_server};
use reactor::{Interest, Reactor};

const OUTSTANDING: usize = 1024;

type Handler = Box<dyn FnOnce(u64)>;

/// The steady state of an initiator: `OUTSTANDING` tokens in flight; each step issues one and
/// completes the oldest.
struct TableBench {
    table: TokenTable<Handler>,
    ring: VecDeque<CompletionToken>,
}

impl TableBench {
    fn new() -> Self {
        let mut b = TableBench {
            table: TokenTable::with_limit(OUTSTANDING * 2),
            ring: VecDeque::with_capacity(OUTSTANDING + 1),
        };
        for _ in 0..OUTSTANDING {
            let t = b.table.issue(Box::new(|r| {
                black_box(r);
            }));
            b.ring.push_back(t.unwrap());
        }
        b
    }

    fn step(&mut self, i: u64) {
        let t = self
            .table
            .issue(Box::new(move |r| {
                black_box(r + i);
            }))
            .unwrap();
        self.ring.push_back(t);
        let oldest = self.ring.pop_front().unwrap();
        let handler = self.table.complete(oldest).unwrap();
        handler(i);
    }
}

struct MapBench {
    map: HashMap<u64, Handler>,
    ring: VecDeque<u64>,
    next: u64,
}

impl MapBench {
    fn new() -> Self {
        let mut b = MapBench {
            map: HashMap::with_capacity(OUTSTANDING * 2),
            ring: VecDeque::with_capacity(OUTSTANDING + 1),
            next: 0,
        };
        for _ in 0..OUTSTANDING {
            b.insert(Box::new(|r| {
                black_box(r);
            }));
        }
        b
    }

    fn insert(&mut self, h: Handler) {
        self.next += 1;
        self.map.insert(self.next, h);
        self.ring.push_back(self.next);
    }

    fn step(&mut self, i: u64) {
        self.insert(Box::new(move |r| {
            black_box(r + i);
        }));
        let oldest = self.ring.pop_front().unwrap();
        let handler = self.map.remove(&oldest).unwrap();
        handler(i);
    }
}

struct CallbacksBench {
    callbacks: Callbacks<u64>,
    ring: VecDeque<CompletionToken>,
}

impl CallbacksBench {
    fn new() -> Self {
        let callbacks = Callbacks::with_limit(OUTSTANDING * 2);
        let ring = (0..OUTSTANDING)
            .map(|_| {
                callbacks
                    .issue(|r| {
                        black_box(r);
                    })
                    .unwrap()
            })
            .collect();
        CallbacksBench { callbacks, ring }
    }

    fn step(&mut self, i: u64) {
        let t = self
            .callbacks
            .issue(move |r| {
                black_box(r.ok());
                black_box(i);
            })
            .unwrap();
        self.ring.push_back(t);
        let oldest = self.ring.pop_front().unwrap();
        self.callbacks.complete(oldest, i).unwrap();
    }
}

fn issue_complete(c: &mut Criterion) {
    let mut group = c.benchmark_group("issue_complete");
    group.throughput(Throughput::Elements(1));
    group.bench_function("token_table", |b| {
        let mut bench = TableBench::new();
        let mut i = 0;
        b.iter(|| {
            i += 1;
            bench.step(i)
        })
    });
    group.bench_function("hashmap_baseline", |b| {
        let mut bench = MapBench::new();
        let mut i = 0;
        b.iter(|| {
            i += 1;
            bench.step(i)
        })
    });
    group.bench_function("callbacks_locked", |b| {
        let mut bench = CallbacksBench::new();
        let mut i = 0;
        b.iter(|| {
            i += 1;
            bench.step(i)
        })
    });
    group.finish();
}

/// Runs `n` requests through a fresh client and server; returns the time from the first
/// request to the last response (connection setup excluded).
fn run_client(mode: Mode, n: u64) -> Duration {
    let (addr, server) = spawn_server(1).expect("server");
    let mut client = PipelinedClient::connect(addr, mode, 128).expect("connect");
    for i in 0..n {
        client.submit(Request::new(i.to_be_bytes().to_vec(), |c| {
            black_box(c);
        }));
    }
    let mut reactor = Reactor::new().expect("reactor");
    let start = Instant::now();
    reactor
        .register(Box::new(client), Interest::READ | Interest::WRITE)
        .expect("register");
    reactor.serve().expect("run");
    let elapsed = start.elapsed();
    drop(reactor);
    server.join().expect("server thread").expect("server");
    elapsed
}

fn client(c: &mut Criterion) {
    let mut group = c.benchmark_group("client");
    group.throughput(Throughput::Elements(1));
    group.bench_function("pipelined_window_128", |b| {
        b.iter_custom(|iters| run_client(Mode::Pipelined, iters))
    });
    group.bench_function("one_at_a_time", |b| {
        b.iter_custom(|iters| run_client(Mode::OneAtATime, iters))
    });
    group.finish();
}

/// Best-of-`rounds` nanoseconds per step of `step`, run `n` times per round.
fn best_ns(rounds: usize, n: u64, mut step: impl FnMut(u64)) -> f64 {
    (0..rounds)
        .map(|_| {
            let start = Instant::now();
            for i in 0..n {
                step(i);
            }
            start.elapsed().as_nanos() as f64 / n as f64
        })
        .fold(f64::INFINITY, f64::min)
}

fn ratios() {
    let mut table = TableBench::new();
    let mut map = MapBench::new();
    let mut callbacks = CallbacksBench::new();
    let t = best_ns(7, 500_000, |i| table.step(i));
    let m = best_ns(7, 500_000, |i| map.step(i));
    let c = best_ns(7, 500_000, |i| callbacks.step(i));
    println!(
        "ratio issue+complete: token_table {t:.1} ns / hashmap_baseline {m:.1} ns = {:.2}",
        t / m
    );
    println!(
        "ratio issue+complete: callbacks_locked {c:.1} ns / hashmap_baseline {m:.1} ns = {:.2}",
        c / m
    );

    let n = 20_000;
    let p = (0..3)
        .map(|_| run_client(Mode::Pipelined, n))
        .min()
        .unwrap();
    let o = (0..3)
        .map(|_| run_client(Mode::OneAtATime, n))
        .min()
        .unwrap();
    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    println!(
        "ratio client: pipelined {:.0} req/s / one_at_a_time {:.0} req/s = {:.1}",
        rate(p),
        rate(o),
        rate(p) / rate(o)
    );
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    issue_complete(&mut c);
    client(&mut c);
    c.final_summary();
    if !std::env::args().any(|a| a == "--list" || a == "--test") {
        ratios();
    }
}
