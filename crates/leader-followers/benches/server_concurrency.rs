//! ACE's Server_Concurrency performance test, ported: bursts of messages, each needing some work,
//! served by Leader/Followers against Half-Sync/Half-Async (queue-based workers), with the
//! single-threaded reactor as the baseline.
//!
//! Eight sources (socket pairs) feed one handler each. A burst writes `BURST` 8-byte messages
//! spread over the sources; each handler spins `work` iterations per message; the burst ends when
//! the last message is processed. Before the criterion timings, a fixed run of bursts prints a
//! table: throughput, mean latency from burst start to each message's processing, and voluntary
//! and involuntary context switches of the dispatcher threads per message (read from
//! /proc/self/task/*/status, since getrusage would need unsafe code here).
//!
//! Run with `cargo bench -p leader-followers --bench server_concurrency`.

use std::hint::black_box;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use leader_followers::Concurrency;
use pattern_core::{Context, Disposition, EventHandler, Interest, Remote};

const SOURCES: usize = 8;
const BURST: usize = 64;
const WORKS: [u64; 2] = [0, 5_000];
const MODELS: [&str; 4] = [
    "reactor",
    "leader-followers:2",
    "half-sync-half-async:2:64",
    "leader-followers:4",
];

/// Shared by the handlers of one server.
struct Progress {
    processed: AtomicUsize,
    target: AtomicUsize,
    base: Instant,
    burst_start: AtomicU64,
    latency_ns: AtomicU64,
    done: parking_lot::Mutex<Sender<()>>,
}

struct Worker {
    stream: UnixStream,
    work: u64,
    progress: Arc<Progress>,
    partial: Vec<u8>,
}

impl EventHandler for Worker {
    fn handle(&self) -> Option<BorrowedFd<'_>> {
        Some(self.stream.as_fd())
    }

    fn handle_input(&mut self, _ctx: &mut dyn Context) -> Disposition {
        let mut buf = [0u8; 512];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return Disposition::Close,
                Ok(n) => {
                    self.partial.extend_from_slice(&buf[..n]);
                    let whole = self.partial.len() / 8;
                    for _ in 0..whole {
                        // The work per message.
                        let mut x = 0u64;
                        for i in 0..self.work {
                            x = black_box(x.wrapping_mul(31).wrapping_add(i));
                        }
                        black_box(x);
                        let p = &self.progress;
                        let now = p.base.elapsed().as_nanos() as u64;
                        let start = p.burst_start.load(Ordering::Relaxed);
                        p.latency_ns
                            .fetch_add(now.saturating_sub(start), Ordering::Relaxed);
                        let done = p.processed.fetch_add(1, Ordering::AcqRel) + 1;
                        if done == p.target.load(Ordering::Acquire) {
                            let _ = p.done.lock().send(());
                        }
                    }
                    self.partial.drain(..whole * 8);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Disposition::Continue,
                Err(_) => return Disposition::Close,
            }
        }
    }
}

struct Server {
    remote: Arc<dyn Remote>,
    sources: Vec<UnixStream>,
    progress: Arc<Progress>,
    done: Receiver<()>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl Server {
    fn start(model: &str, work: u64) -> Server {
        let mut d = model
            .parse::<Concurrency>()
            .expect("model")
            .build()
            .expect("build");
        let (tx, done) = mpsc::channel();
        let progress = Arc::new(Progress {
            processed: AtomicUsize::new(0),
            target: AtomicUsize::new(usize::MAX),
            base: Instant::now(),
            burst_start: AtomicU64::new(0),
            latency_ns: AtomicU64::new(0),
            done: parking_lot::Mutex::new(tx),
        });
        let sources = (0..SOURCES)
            .map(|_| {
                let (ours, theirs) = UnixStream::pair().expect("socketpair");
                ours.set_nonblocking(true).expect("nonblocking");
                d.register(
                    Box::new(Worker {
                        stream: ours,
                        work,
                        progress: progress.clone(),
                        partial: Vec::new(),
                    }),
                    Interest::READ,
                )
                .expect("register");
                theirs
            })
            .collect();
        let remote = d.remote();
        let thread = thread::Builder::new()
            .name("dispatcher".into())
            .spawn(move || d.run())
            .expect("spawn");
        let mut server = Server {
            remote,
            sources,
            progress,
            done,
            thread: Some(thread),
        };
        // Warm up: every pool thread is running before anything is measured.
        server.burst();
        server
    }

    /// One burst: `BURST` messages over the sources; returns when the last is processed.
    fn burst(&mut self) -> Duration {
        let p = &self.progress;
        let target = p.processed.load(Ordering::Acquire) + BURST;
        p.target.store(target, Ordering::Release);
        let start = Instant::now();
        p.burst_start
            .store(p.base.elapsed().as_nanos() as u64, Ordering::Relaxed);
        for i in 0..BURST {
            let msg = (i as u64).to_le_bytes();
            self.sources[i % SOURCES].write_all(&msg).expect("write");
        }
        self.done
            .recv_timeout(Duration::from_secs(30))
            .expect("burst processed");
        start.elapsed()
    }

    fn stop(mut self) {
        self.remote.end();
        if let Some(t) = self.thread.take() {
            t.join().expect("dispatcher thread").expect("run");
        }
    }
}

/// Voluntary and involuntary context switches of the dispatcher threads.
fn context_switches() -> (u64, u64) {
    let mut total = (0, 0);
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return total;
    };
    for task in tasks.flatten() {
        let name = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        let name = name.trim_end();
        if !(name == "dispatcher" || name.starts_with("lf-") || name.starts_with("hsha-")) {
            continue;
        }
        let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
        for line in status.lines() {
            let value = || {
                line.split(':')
                    .nth(1)
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .unwrap_or(0)
            };
            if line.starts_with("voluntary_ctxt_switches") {
                total.0 += value();
            } else if line.starts_with("nonvoluntary_ctxt_switches") {
                total.1 += value();
            }
        }
    }
    total
}

/// The fixed run: a table of throughput, latency and context switches per model and work,
/// each the median of `TRIALS` runs (the machine is shared; one run is noise).
fn report() {
    const BURSTS: usize = 300;
    const TRIALS: usize = 5;
    println!(
        "Server_Concurrency port: {BURSTS} bursts of {BURST} messages over {SOURCES} sources, median of {TRIALS} runs"
    );
    println!(
        "{:<28} {:>6} {:>12} {:>14} {:>10} {:>10}",
        "model", "work", "msgs/s", "latency µs", "vcsw/msg", "ivcsw/msg"
    );
    for work in WORKS {
        for model in MODELS {
            let mut trials: Vec<(f64, f64, f64, f64)> = (0..TRIALS)
                .map(|_| {
                    let mut server = Server::start(model, work);
                    let lat0 = server.progress.latency_ns.load(Ordering::Relaxed);
                    let (v0, i0) = context_switches();
                    let mut busy = Duration::ZERO;
                    for _ in 0..BURSTS {
                        busy += server.burst();
                    }
                    let (v1, i1) = context_switches();
                    let lat = server.progress.latency_ns.load(Ordering::Relaxed) - lat0;
                    server.stop();
                    let msgs = (BURSTS * BURST) as f64;
                    (
                        msgs / busy.as_secs_f64(),
                        lat as f64 / msgs / 1e3,
                        (v1 - v0) as f64 / msgs,
                        (i1 - i0) as f64 / msgs,
                    )
                })
                .collect();
            trials.sort_by(|a, b| a.0.total_cmp(&b.0));
            let (rate, latency, vcsw, ivcsw) = trials[TRIALS / 2];
            println!(
                "{model:<28} {work:>6} {rate:>12.0} {latency:>14.1} {vcsw:>10.3} {ivcsw:>10.3}"
            );
        }
    }
}

fn bench(c: &mut Criterion) {
    for work in WORKS {
        let mut group = c.benchmark_group(format!("server_concurrency/work_{work}"));
        group.throughput(Throughput::Elements(BURST as u64));
        group.sample_size(20);
        group.warm_up_time(Duration::from_millis(500));
        group.measurement_time(Duration::from_secs(2));
        for model in MODELS {
            let mut server = Server::start(model, work);
            group.bench_function(BenchmarkId::from_parameter(model), |b| {
                b.iter_custom(|iters| (0..iters).map(|_| server.burst()).sum());
            });
            server.stop();
        }
        group.finish();
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    report();
    bench(&mut c);
    c.final_summary();
}
