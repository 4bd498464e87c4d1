//! Handlers and helpers the integration tests share: a TCP echo server that checks message order
//! and watches for overlapping upcalls.

use reactor::OutBuffer;
use std::io::{self, Read};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pattern_core::{CloseReason, Context, Disposition, EventHandler, Interest};

/// How long a test waits for an expected event before declaring the dispatcher broken.
pub(crate) const PATIENCE: Duration = Duration::from_secs(60);

/// Reads one upcall makes before it answers `Again`.
const READS_PER_UPCALL: usize = 16;

/// Counters every handler of one server shares.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    /// Upcalls that found their handler already in an upcall.
    pub(crate) overlaps: AtomicUsize,
    /// Connections registered by the acceptor.
    pub(crate) accepted: AtomicUsize,
    /// Close upcalls, all handlers.
    pub(crate) closes: AtomicUsize,
    /// Close upcalls that were not the first of their handler.
    pub(crate) double_closes: AtomicUsize,
    /// Messages read, all connections.
    pub(crate) messages: AtomicUsize,
    /// Told once when `accepted` and `messages` reach the numbers.
    pub(crate) milestone: Mutex<Option<(usize, usize, Sender<()>)>>,
}

impl Tally {
    fn count(&self, n: usize) {
        self.messages.fetch_add(n, Ordering::SeqCst);
        self.check_milestone();
    }

    fn check_milestone(&self) {
        let accepted = self.accepted.load(Ordering::SeqCst);
        let messages = self.messages.load(Ordering::SeqCst);
        let mut milestone = self.milestone.lock().expect("milestone lock");
        if milestone
            .as_ref()
            .is_some_and(|(a, m, _)| accepted >= *a && messages >= *m)
        {
            let (_, _, tx) = milestone.take().expect("checked");
            let _ = tx.send(());
        }
    }
}

/// The in-handler flag: set on entry, cleared on exit; finding it set means two upcalls overlap.
#[derive(Debug, Default)]
pub(crate) struct Flag(AtomicBool);

impl Flag {
    pub(crate) fn enter(&self, tally: &Tally) {
        if self.0.swap(true, Ordering::SeqCst) {
            tally.overlaps.fetch_add(1, Ordering::SeqCst);
        }
    }

    pub(crate) fn leave(&self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// What a connection handler reports when its peer finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Report {
    pub(crate) messages: u64,
    pub(crate) in_order: bool,
}

/// Accepts connections and registers a [`Conn`] for each.
pub(crate) struct Acceptor {
    pub(crate) listener: TcpListener,
    pub(crate) tally: Arc<Tally>,
    pub(crate) reports: Sender<Report>,
    /// Echo what is read (otherwise only count it).
    pub(crate) echo: bool,
}

impl Acceptor {
    pub(crate) fn bind(tally: Arc<Tally>, reports: Sender<Report>, echo: bool) -> Acceptor {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener.set_nonblocking(true).expect("nonblocking");
        Acceptor {
            listener,
            tally,
            reports,
            echo,
        }
    }
}

impl EventHandler for Acceptor {
    fn handle(&self) -> Option<BorrowedFd<'_>> {
        Some(self.listener.as_fd())
    }

    fn handle_input(&mut self, ctx: &mut dyn Context) -> Disposition {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    stream.set_nonblocking(true).expect("nonblocking");
                    let _ = stream.set_nodelay(true);
                    let conn = Conn {
                        stream,
                        inbuf: Vec::new(),
                        out: OutBuffer::with_limit(usize::MAX),
                        expected: 0,
                        in_order: true,
                        eof: false,
                        writing: false,
                        echo: self.echo,
                        flag: Flag::default(),
                        closed: false,
                        tally: self.tally.clone(),
                        reports: self.reports.clone(),
                    };
                    ctx.register(Box::new(conn), Interest::READ)
                        .expect("register a connection");
                    self.tally.accepted.fetch_add(1, Ordering::SeqCst);
                    self.tally.check_milestone();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Disposition::Continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Disposition::Continue,
            }
        }
    }

    fn handle_close(&mut self, _ctx: &mut dyn Context, _reason: CloseReason) {
        self.tally.closes.fetch_add(1, Ordering::SeqCst);
    }
}

/// One connection: reads 8-byte sequence numbers, checks they count up from 0, echoes them.
pub(crate) struct Conn {
    stream: TcpStream,
    inbuf: Vec<u8>,
    out: OutBuffer,
    expected: u64,
    in_order: bool,
    eof: bool,
    writing: bool,
    echo: bool,
    flag: Flag,
    closed: bool,
    tally: Arc<Tally>,
    reports: Sender<Report>,
}

impl Conn {
    /// Writes what it can; asks for output readiness while something is left.
    fn flush(&mut self, ctx: &mut dyn Context) -> io::Result<()> {
        self.out.flush(&mut self.stream)?;
        let want = !self.out.is_empty();
        if want != self.writing {
            self.writing = want;
            let interest = if want {
                Interest::READ | Interest::WRITE
            } else {
                Interest::READ
            };
            let me = ctx.current().expect("inside an upcall");
            ctx.set_interest(me, interest).expect("set interest");
        }
        Ok(())
    }

    fn finish_if_done(&mut self) -> Disposition {
        if self.eof && self.out.is_empty() {
            let _ = self.reports.send(Report {
                messages: self.expected,
                in_order: self.in_order,
            });
            Disposition::Close
        } else {
            Disposition::Continue
        }
    }

    fn upcall(&mut self, ctx: &mut dyn Context, input: bool) -> Disposition {
        let mut buf = [0u8; 4096];
        let mut reads = 0;
        let mut more = false;
        while input && !self.eof {
            if reads == READS_PER_UPCALL {
                // A fast peer could keep this upcall busy forever: stop after a bounded batch
                // and ask to be called again, so that other connections get their turn.
                more = true;
                break;
            }
            reads += 1;
            match self.stream.read(&mut buf) {
                Ok(0) => self.eof = true,
                Ok(n) => {
                    self.inbuf.extend_from_slice(&buf[..n]);
                    let whole = self.inbuf.len() / 8 * 8;
                    for chunk in self.inbuf[..whole].chunks_exact(8) {
                        let n = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
                        if n != self.expected {
                            self.in_order = false;
                        }
                        self.expected += 1;
                    }
                    self.tally.count(whole / 8);
                    if self.echo {
                        self.out.push(&self.inbuf[..whole]);
                    }
                    self.inbuf.drain(..whole);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Disposition::Close,
            }
        }
        if self.flush(ctx).is_err() {
            return Disposition::Close;
        }
        if more {
            return Disposition::Again;
        }
        self.finish_if_done()
    }
}

impl EventHandler for Conn {
    fn handle(&self) -> Option<BorrowedFd<'_>> {
        Some(self.stream.as_fd())
    }

    fn handle_input(&mut self, ctx: &mut dyn Context) -> Disposition {
        self.flag.enter(&self.tally);
        let d = self.upcall(ctx, true);
        self.flag.leave();
        d
    }

    fn handle_output(&mut self, ctx: &mut dyn Context) -> Disposition {
        self.flag.enter(&self.tally);
        let d = self.upcall(ctx, false);
        self.flag.leave();
        d
    }

    fn handle_close(&mut self, _ctx: &mut dyn Context, _reason: CloseReason) {
        self.flag.enter(&self.tally);
        if std::mem::replace(&mut self.closed, true) {
            self.tally.double_closes.fetch_add(1, Ordering::SeqCst);
        }
        self.tally.closes.fetch_add(1, Ordering::SeqCst);
        self.flag.leave();
    }
}

/// The 8-byte messages `from..to`, as a client sends them.
pub(crate) fn messages(from: u64, to: u64) -> Vec<u8> {
    (from..to).flat_map(|n| n.to_le_bytes()).collect()
}
