//! The Reactor is non-preemptive: while one handler's upcall runs, no other handler runs, so
//! one slow handler delays every other one, timers included.
//!
//! Three sensor handlers answer quick requests (1 ms of work each), a report handler answers a
//! long one (80 ms), and a heartbeat timer is due every 10 ms. Work is measured on a manual
//! clock that each handler advances by the time its work takes, so the delays printed on
//! stdout are the same on every run. The work also really takes that long, and what the wall
//! clock saw goes to stderr.
//!
//! Round 1: the report is computed in one upcall. Round 2: the same report is cut into 10 ms
//! slices, one per upcall, answering `Again` so that the reactor serves everyone else between
//! slices: the cooperative way out that the pattern leaves to the handlers.

use std::any::Any;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reactor::{Clock, Context, Disposition, EventHandler, Interest, ManualClock, Reactor, TimerId};

const MS: Duration = Duration::from_millis(1);
const SENSOR_WORK: Duration = Duration::from_millis(1);
const REPORT_WORK: Duration = Duration::from_millis(80);
const SLICE: Duration = Duration::from_millis(10);

/// What every handler shares: the virtual clock, its origin, the upcall count, and the wall
/// clock instant requests were sent at (for stderr only).
#[derive(Clone)]
struct Shared {
    clock: ManualClock,
    t0: Instant,
    upcalls: Arc<AtomicUsize>,
    sent_real: Arc<Mutex<Instant>>,
}

impl Shared {
    fn ms(&self) -> u128 {
        (self.clock.now() - self.t0).as_millis()
    }

    /// Does `d` worth of work: the virtual clock moves by `d`, and the thread really is busy.
    fn work(&self, d: Duration) {
        let start = Instant::now();
        while start.elapsed() < d {
            std::hint::spin_loop();
        }
        self.clock.advance(d);
    }

    fn upcall(&self) -> usize {
        self.upcalls.fetch_add(1, Ordering::SeqCst) + 1
    }

    fn real_wait(&self) -> Duration {
        let sent = *self.sent_real.lock().unwrap_or_else(|e| e.into_inner());
        sent.elapsed()
    }
}

/// Reads newline-terminated requests; returns the next complete one, if any.
fn next_request(stream: &mut UnixStream, pending: &mut Vec<u8>) -> io::Result<Option<String>> {
    let mut buf = [0u8; 256];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => pending.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(pending.iter().position(|&b| b == b'\n').map(|end| {
        let line: Vec<u8> = pending.drain(..=end).collect();
        String::from_utf8_lossy(&line[..end]).into_owned()
    }))
}

/// Requests carry the virtual millisecond they were sent at.
fn sent_at(request: &str) -> u128 {
    request
        .split_whitespace()
        .next()
        .and_then(|t| t.parse().ok())
        .unwrap_or_default()
}

/// A quick handler: 1 ms of work per request.
struct Sensor {
    name: &'static str,
    stream: UnixStream,
    pending: Vec<u8>,
    shared: Shared,
    worst_wait: Arc<AtomicUsize>,
}

impl EventHandler for Sensor {
    fn handle(&self) -> Option<BorrowedFd<'_>> {
        Some(self.stream.as_fd())
    }

    fn handle_input(&mut self, _ctx: &mut dyn Context) -> Disposition {
        let request = match next_request(&mut self.stream, &mut self.pending) {
            Ok(Some(r)) => r,
            Ok(None) => return Disposition::Continue,
            Err(_) => return Disposition::Close,
        };
        self.shared.upcall();
        let now = self.shared.ms();
        let waited = now - sent_at(&request);
        self.worst_wait.fetch_max(waited as usize, Ordering::SeqCst);
        println!(
            "  t={now:>3}ms {}: request served after waiting {waited}ms",
            self.name
        );
        eprintln!(
            "  [wall clock] {} waited {:?}",
            self.name,
            self.shared.real_wait()
        );
        self.shared.work(SENSOR_WORK);
        Disposition::Continue
    }
}

/// The slow handler: 80 ms of work per report, in one upcall or in 10 ms slices.
struct Report {
    stream: UnixStream,
    pending: Vec<u8>,
    shared: Shared,
    /// Work left on a sliced report, and the upcall count when it started.
    left: Duration,
    started: usize,
}

impl EventHandler for Report {
    fn handle(&self) -> Option<BorrowedFd<'_>> {
        Some(self.stream.as_fd())
    }

    fn handle_input(&mut self, _ctx: &mut dyn Context) -> Disposition {
        if self.left.is_zero() {
            let request = match next_request(&mut self.stream, &mut self.pending) {
                Ok(Some(r)) => r,
                Ok(None) => return Disposition::Continue,
                Err(_) => return Disposition::Close,
            };
            let mine = self.shared.upcall();
            let now = self.shared.ms();
            if request.ends_with("whole") {
                println!("  t={now:>3}ms report: computing the whole report in this upcall (80ms)");
                let real = Instant::now();
                self.shared.work(REPORT_WORK);
                let others = self.shared.upcalls.load(Ordering::SeqCst) - mine;
                println!(
                    "  t={:>3}ms report: done; upcalls of other handlers while it ran: {others}",
                    self.shared.ms()
                );
                eprintln!("  [wall clock] the report upcall took {:?}", real.elapsed());
                return Disposition::Continue;
            }
            println!("  t={now:>3}ms report: starting the report in 10ms slices");
            self.left = REPORT_WORK;
            self.started = mine;
        } else {
            self.shared.upcall();
        }
        self.shared.work(SLICE);
        self.left -= SLICE;
        if self.left.is_zero() {
            // Count this handler's own upcalls out: 8 slices, the first counted as `started`.
            let others = self.shared.upcalls.load(Ordering::SeqCst)
                - self.started
                - (REPORT_WORK.as_millis() / SLICE.as_millis()) as usize
                + 1;
            println!(
                "  t={:>3}ms report: last slice done; upcalls of other handlers between its slices: {others}",
                self.shared.ms()
            );
            Disposition::Continue
        } else {
            // Work remains and no new readiness will announce it: ask to be upcalled again.
            Disposition::Again
        }
    }
}

/// A timer-only handler: a heartbeat due every 10 ms.
struct Heartbeat {
    shared: Shared,
    last: Option<u128>,
    worst_gap: Arc<AtomicUsize>,
}

impl EventHandler for Heartbeat {
    fn handle_timeout(
        &mut self,
        _ctx: &mut dyn Context,
        _timer: TimerId,
        _act: &mut (dyn Any + Send),
    ) -> Disposition {
        self.shared.upcall();
        let now = self.shared.ms();
        let gap = self.last.map_or(now, |l| now - l);
        self.worst_gap.fetch_max(gap as usize, Ordering::SeqCst);
        self.last = Some(now);
        println!("  t={now:>3}ms heartbeat ({gap}ms since the previous one)");
        Disposition::Continue
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let clock = ManualClock::default();
    let shared = Shared {
        t0: clock.now(),
        clock: clock.clone(),
        upcalls: Arc::new(AtomicUsize::new(0)),
        sent_real: Arc::new(Mutex::new(Instant::now())),
    };
    let mut reactor = Reactor::builder().clock(Arc::new(clock.clone())).build()?;
    let worst_wait = Arc::new(AtomicUsize::new(0));
    let worst_gap = Arc::new(AtomicUsize::new(0));

    let mut peers = Vec::new();
    for name in ["sensor-1", "report", "sensor-2", "sensor-3"] {
        let (ours, theirs) = UnixStream::pair()?;
        ours.set_nonblocking(true)?;
        let handler: Box<dyn EventHandler> = if name == "report" {
            Box::new(Report {
                stream: ours,
                pending: Vec::new(),
                shared: shared.clone(),
                left: Duration::ZERO,
                started: 0,
            })
        } else {
            Box::new(Sensor {
                name,
                stream: ours,
                pending: Vec::new(),
                shared: shared.clone(),
                worst_wait: worst_wait.clone(),
            })
        };
        reactor.register(handler, Interest::READ)?;
        peers.push(theirs);
    }
    let heartbeat = reactor.register(
        Box::new(Heartbeat {
            shared: shared.clone(),
            last: None,
            worst_gap: worst_gap.clone(),
        }),
        Interest::NONE,
    )?;
    reactor.schedule_timer(heartbeat, 10 * MS, Some(10 * MS), Box::new(()))?;
    println!("reactor: sensor-1, report, sensor-2, sensor-3 on sockets; a heartbeat every 10ms");

    for (round, kind) in [(1, "whole"), (2, "sliced")] {
        worst_wait.store(0, Ordering::SeqCst);
        worst_gap.store(0, Ordering::SeqCst);
        // A quiet stretch first: the heartbeat keeps its pace.
        for _ in 0..2 {
            clock.advance(10 * MS);
            reactor.handle_events(Some(Duration::ZERO))?;
        }
        let now = shared.ms();
        println!("round {round}: at t={now}ms one request reaches each handler (report: {kind})");
        *shared.sent_real.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        for (peer, name) in peers
            .iter_mut()
            .zip(["sensor-1", "report", "sensor-2", "sensor-3"])
        {
            let request = if name == "report" {
                format!("{now} {kind}\n")
            } else {
                format!("{now}\n")
            };
            peer.write_all(request.as_bytes())?;
        }
        // Turn the loop until everything sent has been served.
        while reactor.handle_events(Some(Duration::ZERO))? > 0 {}
        println!(
            "round {round}: worst sensor wait {}ms, worst heartbeat gap {}ms",
            worst_wait.load(Ordering::SeqCst),
            worst_gap.load(Ordering::SeqCst)
        );
    }
    println!(
        "verdict: one 80ms upcall held up every other handler; cut into 10ms slices, nobody waited more than a slice and a bit"
    );
    Ok(())
}
