//! Pieces the examples share: a line echo server written once against the pattern-core
//! contract, blocking clients, and context-switch counts read from /proc.

#![allow(dead_code)]

use reactor::OutBuffer;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::mpsc::Sender;

use pattern_core::{CloseReason, Context, Disposition, EventHandler, Interest};

/// What the echo server's handlers report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    Accepted,
    Closed(CloseReason),
}

/// Accepts connections and registers an [`EchoConn`] for each.
pub(crate) struct EchoAcceptor {
    listener: TcpListener,
    events: Sender<Event>,
}

impl EchoAcceptor {
    pub(crate) fn bind(events: Sender<Event>) -> io::Result<(EchoAcceptor, SocketAddr)> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        Ok((EchoAcceptor { listener, events }, addr))
    }
}

impl EventHandler for EchoAcceptor {
    fn handle(&self) -> Option<BorrowedFd<'_>> {
        Some(self.listener.as_fd())
    }

    fn handle_input(&mut self, ctx: &mut dyn Context) -> Disposition {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    let _ = stream.set_nonblocking(true);
                    let _ = stream.set_nodelay(true);
                    let conn = EchoConn {
                        stream,
                        out: OutBuffer::with_limit(usize::MAX),
                        events: self.events.clone(),
                    };
                    if ctx.register(Box::new(conn), Interest::READ).is_ok() {
                        let _ = self.events.send(Event::Accepted);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Disposition::Continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Disposition::Continue,
            }
        }
    }

    fn handle_close(&mut self, _ctx: &mut dyn Context, reason: CloseReason) {
        let _ = self.events.send(Event::Closed(reason));
    }
}

/// Echoes every byte back; buffers what the socket does not take and waits for output.
pub(crate) struct EchoConn {
    stream: TcpStream,
    out: OutBuffer,
    events: Sender<Event>,
}

impl EventHandler for EchoConn {
    fn handle(&self) -> Option<BorrowedFd<'_>> {
        Some(self.stream.as_fd())
    }

    fn handle_input(&mut self, ctx: &mut dyn Context) -> Disposition {
        let mut buf = [0u8; 4096];
        for _ in 0..16 {
            match self.stream.read(&mut buf) {
                Ok(0) => return Disposition::Close,
                Ok(n) => {
                    self.out.push(&buf[..n]);
                    // The limit is unbounded here: `settle` only flushes and waits for output.
                    if self.out.settle(&mut self.stream, ctx, false) == Disposition::Close {
                        return Disposition::Close;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Disposition::Continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Disposition::Close,
            }
        }
        // A bounded batch per upcall: let the other connections have their turn.
        Disposition::Again
    }

    fn handle_output(&mut self, ctx: &mut dyn Context) -> Disposition {
        self.out.settle(&mut self.stream, ctx, false)
    }

    fn handle_close(&mut self, _ctx: &mut dyn Context, reason: CloseReason) {
        let _ = self.events.send(Event::Closed(reason));
    }
}

/// A blocking client: sends `lines` lines one at a time, each answered before the next
/// (request/response); returns how many echoes matched, in order.
pub(crate) fn ping_pong(addr: SocketAddr, client: usize, lines: usize) -> io::Result<usize> {
    let stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    let mut good = 0;
    let mut line = String::new();
    for n in 0..lines {
        let sent = format!("client {client} line {n}\n");
        writer.write_all(sent.as_bytes())?;
        line.clear();
        reader.read_line(&mut line)?;
        if line == sent {
            good += 1;
        }
    }
    Ok(good)
}

/// Voluntary and involuntary context switches of this process's threads whose names start
/// with one of `prefixes`, from /proc/self/task/*/status (no unsafe, no libc).
pub(crate) fn context_switches(prefixes: &[&str]) -> (u64, u64) {
    let mut total = (0, 0);
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return total;
    };
    for task in tasks.flatten() {
        let path = task.path();
        let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if !prefixes.iter().any(|p| name.trim_end().starts_with(p)) {
            continue;
        }
        let status = std::fs::read_to_string(path.join("status")).unwrap_or_default();
        for line in status.lines() {
            let value = |l: &str| {
                l.split(':')
                    .nth(1)
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .unwrap_or(0)
            };
            if line.starts_with("voluntary_ctxt_switches") {
                total.0 += value(line);
            } else if line.starts_with("nonvoluntary_ctxt_switches") {
                total.1 += value(line);
            }
        }
    }
    total
}

/// A sensor's connection for the examples that draw their runs: each reading line is answered
/// with `ack`. A gated sensor holds its first upcall, after reading, until the demo opens the
/// gate: a slow upcall that keeps its thread busy for as long as the demo needs.
pub(crate) struct Sensor {
    pub(crate) stream: std::os::unix::net::UnixStream,
    pub(crate) gate: Option<Gate>,
}

/// The two ends of a [`Sensor`]'s gate, as the sensor holds them.
pub(crate) struct Gate {
    entered: Sender<()>,
    open: std::sync::mpsc::Receiver<()>,
}

/// The demo's ends of a gate: it learns that the upcall is held, and opens the gate.
pub(crate) struct GateKeeper {
    entered: std::sync::mpsc::Receiver<()>,
    open: Sender<()>,
}

impl GateKeeper {
    /// Waits until the sensor's upcall is held at the gate.
    pub(crate) fn wait_entered(&self) {
        self.entered.recv().expect("the gated sensor's upcall");
    }

    /// Lets the held upcall go on.
    pub(crate) fn open(&self) {
        self.open.send(()).expect("the gated sensor's upcall");
    }
}

/// A gate and its keeper.
pub(crate) fn gate() -> (Gate, GateKeeper) {
    let (entered_tx, entered_rx) = std::sync::mpsc::channel();
    let (open_tx, open_rx) = std::sync::mpsc::channel();
    (
        Gate {
            entered: entered_tx,
            open: open_rx,
        },
        GateKeeper {
            entered: entered_rx,
            open: open_tx,
        },
    )
}

impl EventHandler for Sensor {
    fn handle(&self) -> Option<BorrowedFd<'_>> {
        Some(self.stream.as_fd())
    }

    fn handle_input(&mut self, _ctx: &mut dyn Context) -> Disposition {
        let mut buf = [0u8; 256];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return Disposition::Close,
                Ok(n) => {
                    let acks = buf[..n].iter().filter(|&&b| b == b'\n').count();
                    if (&self.stream)
                        .write_all("ack\n".repeat(acks).as_bytes())
                        .is_err()
                    {
                        return Disposition::Close;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => return Disposition::Close,
            }
        }
        if let Some(gate) = self.gate.take() {
            let _ = gate.entered.send(());
            let _ = gate.open.recv();
        }
        Disposition::Continue
    }
}

/// Sends one reading line without waiting for the answer.
pub(crate) fn post_reading(peer: &std::os::unix::net::UnixStream, reading: &str) -> io::Result<()> {
    (&*peer).write_all(format!("{reading}\n").as_bytes())
}

/// Reads the `ack` a sensor's reading gets.
pub(crate) fn read_ack(peer: &std::os::unix::net::UnixStream) -> io::Result<()> {
    let mut ack = [0u8; 4];
    (&*peer).read_exact(&mut ack)
}
