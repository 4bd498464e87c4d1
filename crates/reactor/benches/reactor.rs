//! Criterion benchmarks of the reactor.
//!
//! - `dispatch/notify`: 1,024 notifications queued from the loop thread, then one
//!   `handle_events` dispatching them all (the cost of one notification upcall).
//! - `dispatch/readiness`: 64 socketpairs made readable, then one `handle_events` that upcalls
//!   each handler, which reads its byte and drains to `WouldBlock`; beside it the same work on
//!   a hand-written mio loop, the ceiling.
//! - `timers/schedule_cancel`: one schedule plus one cancel with 1,000,000 timers pending
//!   (and with none, for contrast); `timers/clock_now` is the clock read each schedule includes.
//! - `notify/throughput`: messages per second posted through `ReactorRemote` from 1 and from 4
//!   threads to a handler on a loop running on its own thread.
//!
//! After criterion's own report, the binary times the readiness pair again in one run and
//! prints the ratio of the reactor to raw mio.

use std::any::Any;
use std::hint::black_box;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use reactor::{
    Context, Disposition, EventHandler, Interest, Message, Reactor, Remote, TimerId, Token,
};

const NOTICES: usize = 1024;
const PAIRS: usize = 64;
const PENDING: usize = 1_000_000;
const MESSAGES: u64 = 100_000;

/// Counts notifications; reports every `every`th on a channel (for the throughput bench).
struct Counter {
    seen: u64,
    every: u64,
    done: Option<mpsc::Sender<()>>,
}

impl EventHandler for Counter {
    fn handle_notify(&mut self, _ctx: &mut dyn Context, message: Message) -> Disposition {
        black_box(message);
        self.seen += 1;
        if let Some(done) = &self.done
            && self.seen % self.every == 0
        {
            let _ = done.send(());
        }
        Disposition::Continue
    }

    fn handle_timeout(
        &mut self,
        _ctx: &mut dyn Context,
        _timer: TimerId,
        _act: &mut (dyn Any + Send),
    ) -> Disposition {
        Disposition::Continue
    }
}

/// Reads whatever is there, to `WouldBlock`.
struct Drain {
    stream: UnixStream,
}

fn drain(stream: &mut UnixStream) -> io::Result<()> {
    let mut buf = [0u8; 64];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

impl EventHandler for Drain {
    fn handle(&self) -> Option<BorrowedFd<'_>> {
        Some(self.stream.as_fd())
    }

    fn handle_input(&mut self, _ctx: &mut dyn Context) -> Disposition {
        match drain(&mut self.stream) {
            Ok(()) => Disposition::Continue,
            Err(_) => Disposition::Close,
        }
    }
}

fn pairs() -> (Vec<UnixStream>, Vec<UnixStream>) {
    (0..PAIRS)
        .map(|_| {
            let (ours, theirs) = UnixStream::pair().expect("socketpair");
            ours.set_nonblocking(true).expect("nonblocking");
            (ours, theirs)
        })
        .unzip()
}

/// The reactor side of `dispatch/readiness`.
struct ReactorReadiness {
    reactor: Reactor,
    peers: Vec<UnixStream>,
}

impl ReactorReadiness {
    fn new() -> Self {
        let mut reactor = Reactor::new().expect("reactor");
        let (ours, peers) = pairs();
        for stream in ours {
            reactor
                .register(Box::new(Drain { stream }), Interest::READ)
                .expect("register");
        }
        ReactorReadiness { reactor, peers }
    }

    fn round(&mut self) {
        for p in &mut self.peers {
            p.write_all(b"x").expect("write");
        }
        let mut upcalls = 0;
        while upcalls < PAIRS {
            upcalls += self.reactor.handle_events(None).expect("handle_events");
        }
    }
}

/// The same work on a hand-written mio loop: the ceiling.
struct MioReadiness {
    poll: mio::Poll,
    events: mio::Events,
    ours: Vec<UnixStream>,
    peers: Vec<UnixStream>,
}

impl MioReadiness {
    fn new() -> Self {
        let poll = mio::Poll::new().expect("poll");
        let (ours, peers) = pairs();
        for (i, s) in ours.iter().enumerate() {
            poll.registry()
                .register(
                    &mut mio::unix::SourceFd(&s.as_raw_fd()),
                    mio::Token(i),
                    mio::Interest::READABLE,
                )
                .expect("register");
        }
        MioReadiness {
            poll,
            events: mio::Events::with_capacity(1024),
            ours,
            peers,
        }
    }

    fn round(&mut self) {
        for p in &mut self.peers {
            p.write_all(b"x").expect("write");
        }
        let mut seen = 0;
        while seen < PAIRS {
            self.poll.poll(&mut self.events, None).expect("poll");
            for e in self.events.iter() {
                drain(&mut self.ours[e.token().0]).expect("read");
                seen += 1;
            }
        }
    }
}

fn dispatch(c: &mut Criterion) {
    let mut g = c.benchmark_group("dispatch");

    let mut reactor = Reactor::builder()
        .notify_cap(NOTICES)
        .build()
        .expect("reactor");
    let token = reactor
        .register(
            Box::new(Counter {
                seen: 0,
                every: u64::MAX,
                done: None,
            }),
            Interest::NONE,
        )
        .expect("register");
    g.throughput(Throughput::Elements(NOTICES as u64));
    g.bench_function("notify/1024_per_handle_events", |b| {
        b.iter(|| {
            for _ in 0..NOTICES {
                // A zero-sized message: the box does not allocate.
                reactor.notify(token, Box::new(())).expect("notify");
            }
            let n = reactor
                .handle_events(Some(Duration::ZERO))
                .expect("handle_events");
            assert_eq!(n, NOTICES);
        })
    });

    g.throughput(Throughput::Elements(PAIRS as u64));
    let mut ours = ReactorReadiness::new();
    g.bench_function("readiness/reactor_64_socketpairs", |b| {
        b.iter(|| ours.round())
    });
    let mut raw = MioReadiness::new();
    g.bench_function("readiness/raw_mio_64_socketpairs", |b| {
        b.iter(|| raw.round())
    });
    g.finish();
}

/// A deterministic spread of delays (an LCG), hours ahead so none expires during the run.
fn delays() -> impl FnMut() -> Duration {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    move || {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        Duration::from_secs(3600) + Duration::from_micros((x >> 33) % 3_600_000_000)
    }
}

fn timers_with(pending: usize) -> (Reactor, Token) {
    let mut reactor = Reactor::builder()
        .max_timers(pending + 1024)
        .build()
        .expect("reactor");
    let token = reactor
        .register(
            Box::new(Counter {
                seen: 0,
                every: u64::MAX,
                done: None,
            }),
            Interest::NONE,
        )
        .expect("register");
    let mut next = delays();
    for _ in 0..pending {
        reactor
            .schedule_timer(token, next(), None, Box::new(()))
            .expect("schedule");
    }
    (reactor, token)
}

fn timers(c: &mut Criterion) {
    let mut g = c.benchmark_group("timers");
    g.throughput(Throughput::Elements(1));
    for (name, pending) in [
        ("schedule_cancel/1M_pending", PENDING),
        ("schedule_cancel/0_pending", 0),
    ] {
        let (mut reactor, token) = timers_with(pending);
        let mut next = delays();
        g.bench_function(name, |b| {
            b.iter(|| {
                let id = reactor
                    .schedule_timer(token, next(), None, Box::new(()))
                    .expect("schedule");
                black_box(reactor.cancel_timer(id));
            })
        });
        assert_eq!(reactor.timers(), pending);
    }
    // What scheduling pays for reading the monotonic clock, included in the figures above.
    g.bench_function("clock_now", |b| b.iter(|| black_box(Instant::now())));
    g.finish();
}

/// A loop on its own thread with a counting handler that reports every `MESSAGES`.
fn notify_loop() -> (
    reactor::ReactorRemote,
    Token,
    mpsc::Receiver<()>,
    thread::JoinHandle<()>,
) {
    let (tx, rx) = mpsc::channel();
    let (done_tx, done) = mpsc::channel();
    let looping = thread::spawn(move || {
        let mut reactor = Reactor::new().expect("reactor");
        let token = reactor
            .register(
                Box::new(Counter {
                    seen: 0,
                    every: MESSAGES,
                    done: Some(done_tx),
                }),
                Interest::NONE,
            )
            .expect("register");
        tx.send((reactor.remote(), token)).expect("hand over");
        reactor.serve().expect("run");
    });
    let (remote, token) = rx.recv().expect("loop started");
    (remote, token, done, looping)
}

fn notify(c: &mut Criterion) {
    let mut g = c.benchmark_group("notify");
    g.throughput(Throughput::Elements(MESSAGES));
    g.sample_size(20);
    for threads in [1u64, 4] {
        let (remote, token, done, looping) = notify_loop();
        g.bench_function(format!("throughput/{threads}_threads"), |b| {
            b.iter_custom(|rounds| {
                let start = Instant::now();
                for _ in 0..rounds {
                    let producers: Vec<_> = (0..threads)
                        .map(|_| {
                            let remote = remote.clone();
                            thread::spawn(move || {
                                for i in 0..MESSAGES / threads {
                                    remote.notify(token, Box::new(i)).expect("notify");
                                }
                            })
                        })
                        .collect();
                    for p in producers {
                        p.join().expect("producer");
                    }
                    done.recv().expect("all dispatched");
                }
                start.elapsed()
            })
        });
        remote.end();
        looping.join().expect("loop thread");
    }
    g.finish();
}

/// Times `f` over `rounds` after a warm-up; the median of five runs, per round.
fn per_round(rounds: u32, mut f: impl FnMut()) -> Duration {
    for _ in 0..rounds / 10 {
        f();
    }
    let mut runs: Vec<Duration> = (0..5)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..rounds {
                f();
            }
            start.elapsed() / rounds
        })
        .collect();
    runs.sort();
    runs[2]
}

fn ratios() {
    let mut ours = ReactorReadiness::new();
    let mut raw = MioReadiness::new();
    let (mut r, mut m) = (Vec::new(), Vec::new());
    // Interleaved, so that both see the same machine.
    for _ in 0..3 {
        r.push(per_round(2_000, || ours.round()));
        m.push(per_round(2_000, || raw.round()));
    }
    r.sort();
    m.sort();
    let (r, m) = (r[1], m[1]);
    println!(
        "same-run ratio, 64 ready socketpairs per round: reactor {:.1} ns/event, raw mio {:.1} ns/event, reactor/raw = {:.2}",
        r.as_nanos() as f64 / PAIRS as f64,
        m.as_nanos() as f64 / PAIRS as f64,
        r.as_secs_f64() / m.as_secs_f64()
    );
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    dispatch(&mut c);
    timers(&mut c);
    notify(&mut c);
    c.final_summary();
    if !std::env::args().any(|a| a == "--list" || a == "--test") {
        ratios();
    }
}
