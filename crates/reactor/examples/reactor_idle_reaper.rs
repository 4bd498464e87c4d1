//! Reactor idle reaper, after POSA2's logging server: each logging handler keeps an idle timer
//! that it resets whenever a record arrives; a handler whose client stays silent past the
//! limit is closed by its own timeout upcall, and the client sees the connection end.
//!
//! The acceptor's factory opens each handler through the `opened` hook (ACE's `open`): once the
//! handler is registered, the hook starts its first idle timer and tells the handler, by a
//! notification, which timer is its own.
//!
//! Time is a manual clock advanced by the main thread in 5-second steps, so clients go idle at
//! the same virtual instants on every run. The clients are plain blocking sockets on the main
//! thread too: after each action the main thread turns the loop until the server has seen it.

use std::any::Any;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream as StdStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reactor::SockStream;
use reactor::{
    Acceptor, CloseReason, Context, Disposition, EventHandler, Interest, ManualClock, Message,
    Reactor, Removal, ServiceFactory, TimerId, Token,
};

const IDLE: Duration = Duration::from_secs(30);
const STEP: Duration = Duration::from_secs(5);

/// Counts of what the server has done, for the main thread to wait on.
#[derive(Debug, Default)]
struct Progress {
    opened: AtomicUsize,
    records: AtomicUsize,
    /// Connection numbers whose handler has closed, in closing order.
    closed: Mutex<Vec<usize>>,
}

/// What the factory's `opened` hook posts to a fresh handler: the idle timer it started.
struct Opened {
    idle_timer: TimerId,
}

/// The logging handler: receives newline-terminated records and closes itself when idle.
struct LoggingHandler {
    id: usize,
    stream: SockStream,
    t0: Instant,
    idle_timer: Option<TimerId>,
    partial: Vec<u8>,
    progress: Arc<Progress>,
}

impl LoggingHandler {
    fn at(&self, ctx: &dyn Context) -> String {
        format!("t={:>2}s", (ctx.now() - self.t0).as_secs())
    }

    /// (Re)starts the idle timer: cancel the pending one (O(log n)), schedule a fresh one.
    fn restart_idle_timer(&mut self, ctx: &mut dyn Context) -> bool {
        if let Some(old) = self.idle_timer.take() {
            ctx.cancel_timer(old);
        }
        let me = ctx.current().expect("an upcall knows its token");
        match ctx.schedule_timer(me, IDLE, None, Box::new(self.id)) {
            Ok(id) => {
                self.idle_timer = Some(id);
                true
            }
            Err(_) => false,
        }
    }
}

impl EventHandler for LoggingHandler {
    fn handle(&self) -> Option<BorrowedFd<'_>> {
        Some(self.stream.as_fd())
    }

    /// The first upcall: the factory's `opened` hook has started the idle timer and says
    /// which one it is. The message is queued while the acceptor's upcall runs, and the next
    /// loop iteration dispatches notifications before I/O, so it comes before any record.
    fn handle_notify(&mut self, ctx: &mut dyn Context, message: Message) -> Disposition {
        let Ok(opened) = message.downcast::<Opened>() else {
            return Disposition::Continue;
        };
        self.idle_timer = Some(opened.idle_timer);
        println!(
            "{}   handler #{}: opened; idle timer set for {}s",
            self.at(ctx),
            self.id,
            IDLE.as_secs()
        );
        self.progress.opened.fetch_add(1, Ordering::SeqCst);
        Disposition::Continue
    }

    fn handle_input(&mut self, ctx: &mut dyn Context) -> Disposition {
        let mut buf = [0u8; 4096];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => {
                    println!("{}   handler #{}: client hung up", self.at(ctx), self.id);
                    return Disposition::Close;
                }
                Ok(n) => self.partial.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Disposition::Close,
            }
        }
        while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
            let record: Vec<u8> = self.partial.drain(..=end).collect();
            let text = String::from_utf8_lossy(&record[..end]).into_owned();
            if !self.restart_idle_timer(ctx) {
                return Disposition::Close;
            }
            println!(
                "{}   handler #{}: logged {text:?}; idle timer reset to {}s",
                self.at(ctx),
                self.id,
                IDLE.as_secs()
            );
            self.progress.records.fetch_add(1, Ordering::SeqCst);
        }
        Disposition::Continue
    }

    fn handle_timeout(
        &mut self,
        ctx: &mut dyn Context,
        timer: TimerId,
        act: &mut (dyn Any + Send),
    ) -> Disposition {
        if self.idle_timer != Some(timer) {
            return Disposition::Continue;
        }
        self.idle_timer = None;
        println!(
            "{}   handler #{}: idle for {}s (ACT says connection #{}); answering Close",
            self.at(ctx),
            self.id,
            IDLE.as_secs(),
            act.downcast_ref::<usize>().copied().unwrap_or_default()
        );
        Disposition::Close
    }

    fn handle_close(&mut self, ctx: &mut dyn Context, reason: CloseReason) {
        println!(
            "{}   handler #{}: closed ({reason:?}); the socket is closed with it",
            self.at(ctx),
            self.id
        );
        if let Ok(mut closed) = self.progress.closed.lock() {
            closed.push(self.id);
        }
    }
}

/// The acceptor's factory: makes a logging handler for each connection and opens it once it is
/// registered.
struct LoggingFactory {
    t0: Instant,
    /// Connections accepted so far; the last one is the one being opened.
    accepted: usize,
    progress: Arc<Progress>,
}

impl ServiceFactory for LoggingFactory {
    fn make_service(
        &mut self,
        stream: SockStream,
        _peer: SocketAddr,
    ) -> Option<(Box<dyn EventHandler>, Interest)> {
        self.accepted += 1;
        println!("        acceptor: accepted connection #{}", self.accepted);
        let handler = LoggingHandler {
            id: self.accepted,
            stream,
            t0: self.t0,
            idle_timer: None,
            partial: Vec::new(),
            progress: self.progress.clone(),
        };
        Some((Box::new(handler), Interest::READ))
    }

    /// ACE's `open` hook, run right after the handler made last is registered as `token`:
    /// starts its idle timer (the ACT names the connection) and posts the timer's id to it.
    /// A handler that cannot be opened is closed.
    fn opened(&mut self, ctx: &mut dyn Context, token: Token) {
        let opened = ctx
            .schedule_timer(token, IDLE, None, Box::new(self.accepted))
            .and_then(|idle_timer| ctx.notify(token, Box::new(Opened { idle_timer })));
        if opened.is_err() {
            // Closing the registration cancels its timer too.
            let _ = ctx.remove(token, Removal::Close);
        }
    }
}

/// A sensor client: a blocking socket with a name.
struct Client {
    name: &'static str,
    stream: StdStream,
}

impl Client {
    fn log(&mut self, t: u64, record: &str) -> io::Result<()> {
        println!("t={t:>2}s {}: sends {record:?}", self.name);
        self.stream.write_all(format!("{record}\n").as_bytes())
    }

    /// Waits for the server's end of stream; true when the connection ended cleanly.
    fn sees_hang_up(&mut self) -> bool {
        self.stream.read(&mut [0u8; 1]).is_ok_and(|n| n == 0)
    }
}

/// Turns the loop until `done` holds. The real-time wait only bounds each turn; the outcome
/// depends on nothing but what the server has done.
fn pump(reactor: &mut Reactor, done: impl Fn() -> bool) -> io::Result<()> {
    while !done() {
        reactor.handle_events(Some(Duration::from_millis(100)))?;
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let clock = ManualClock::default();
    let t0 = reactor::Clock::now(&clock);
    let mut reactor = Reactor::builder().clock(Arc::new(clock.clone())).build()?;
    let progress = Arc::new(Progress::default());
    let factory = LoggingFactory {
        t0,
        accepted: 0,
        progress: progress.clone(),
    };
    let acceptor = Acceptor::bind("127.0.0.1:0".parse()?, factory)?;
    let addr = acceptor.local_addr()?;
    acceptor.open(&mut reactor)?;
    println!(
        "reactor: logging acceptor registered; clients idle for {}s are dropped",
        IDLE.as_secs()
    );

    let mut clients = Vec::new();
    for name in ["sensor-a", "sensor-b", "sensor-c"] {
        println!("t= 0s {name}: connects");
        clients.push(Client {
            name,
            stream: StdStream::connect(addr)?,
        });
        let want = clients.len();
        pump(&mut reactor, || {
            progress.opened.load(Ordering::SeqCst) == want
        })?;
    }

    // What the clients send, and when (seconds of manual time).
    let script: [(u64, usize, &str); 4] = [
        (10, 0, "boot ok"),
        (20, 1, "temperature 21.5"),
        (25, 0, "temperature 22.0"),
        (45, 1, "temperature 21.7"),
    ];
    let mut sent = 0;
    let mut t = 0;
    while reactor.handlers() > 1 {
        clock.advance(STEP);
        t += STEP.as_secs();
        // Idle timers due now are dispatched here.
        reactor.handle_events(Some(Duration::ZERO))?;
        let closed: Vec<usize> = progress
            .closed
            .lock()
            .map(|mut c| c.drain(..).collect())
            .unwrap_or_default();
        for id in closed {
            let client = &mut clients[id - 1];
            let eof = client.sees_hang_up();
            println!("t={t:>2}s {}: reads end of stream: {eof}", client.name);
        }
        for (_, who, record) in script.iter().filter(|(at, ..)| *at == t) {
            let client = &mut clients[*who];
            client.log(t, record)?;
            sent += 1;
            pump(&mut reactor, || {
                progress.records.load(Ordering::SeqCst) == sent
            })?;
        }
    }
    println!(
        "reactor: at t={t}s every client was reaped; {} records logged; {} handler(s) left (the acceptor), {} timer(s)",
        progress.records.load(Ordering::SeqCst),
        reactor.handlers(),
        reactor.timers()
    );
    Ok(())
}
