//! A recording handler shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use std::cell::RefCell;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::Duration;

use proactor::{CloseReason, CompletionHandler, Initiator, OpId, Outcome, ProvidedBuf};

/// What a recorder saw, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ev {
    Open(u32),
    Read(u32, OpId, Res, Vec<u8>),
    Received(u32, OpId, Vec<u8>),
    Write(u32, OpId, Res, usize),
    Timeout(u32, OpId, Res),
    Close(u32, CloseReason),
}

/// An outcome without its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Res {
    Done(usize),
    Cancelled,
    Failed,
}

impl Res {
    pub fn of<T>(o: &Outcome<T>, n: usize) -> Res {
        match o {
            Outcome::Done(_) => Res::Done(n),
            Outcome::Cancelled => Res::Cancelled,
            Outcome::Failed(_) => Res::Failed,
        }
    }
}

pub type Log = Rc<RefCell<Vec<Ev>>>;

/// What the recorder does on open.
pub type OnOpen = Box<dyn FnMut(&mut Initiator<'_>, &UnixStream)>;

/// A handler owning one end of a socket pair, recording every upcall.
pub struct Recorder {
    pub name: u32,
    pub sock: UnixStream,
    pub log: Log,
    pub on_open: Option<OnOpen>,
    pub panic_on_read: bool,
    /// Set while an upcall of any recorder runs: an overlapping upcall panics the test.
    pub busy: Rc<RefCell<bool>>,
    /// While `.0` is set, lent buffers of multishot reads are kept in `.1` (the test gives
    /// them back by emptying it) instead of going back to the kernel after the upcall.
    pub keep: Rc<RefCell<(bool, Vec<ProvidedBuf>)>>,
}

impl Recorder {
    pub fn new(name: u32, sock: UnixStream, log: &Log) -> Self {
        Recorder {
            name,
            sock,
            log: log.clone(),
            on_open: None,
            panic_on_read: false,
            busy: Rc::new(RefCell::new(false)),
            keep: Rc::default(),
        }
    }

    pub fn on_open(mut self, f: impl FnMut(&mut Initiator<'_>, &UnixStream) + 'static) -> Self {
        self.on_open = Some(Box::new(f));
        self
    }

    fn enter(&self) {
        let mut busy = self.busy.borrow_mut();
        assert!(!*busy, "overlapping upcalls");
        *busy = true;
    }

    fn leave(&self) {
        *self.busy.borrow_mut() = false;
    }

    fn push(&self, ev: Ev) {
        self.log.borrow_mut().push(ev);
    }
}

impl CompletionHandler for Recorder {
    fn on_open(&mut self, cx: &mut Initiator<'_>) {
        self.enter();
        self.push(Ev::Open(self.name));
        if let Some(f) = self.on_open.as_mut() {
            f(cx, &self.sock);
        }
        self.leave();
    }

    fn on_read(&mut self, _: &mut Initiator<'_>, op: OpId, o: Outcome<usize>, mut buf: Vec<u8>) {
        self.enter();
        let n = match &o {
            Outcome::Done(n) => *n,
            _ => 0,
        };
        buf.truncate(n);
        self.push(Ev::Read(self.name, op, Res::of(&o, n), buf));
        self.leave();
        if self.panic_on_read {
            panic!("handler {} panics on purpose", self.name);
        }
    }

    fn on_received(&mut self, _: &mut Initiator<'_>, op: OpId, data: &[u8]) {
        self.enter();
        self.push(Ev::Received(self.name, op, data.to_vec()));
        self.leave();
    }

    fn on_received_buf(&mut self, cx: &mut Initiator<'_>, op: OpId, buf: ProvidedBuf) {
        self.on_received(cx, op, &buf);
        let mut keep = self.keep.borrow_mut();
        if keep.0 {
            keep.1.push(buf);
        }
    }

    fn on_write(&mut self, _: &mut Initiator<'_>, op: OpId, o: Outcome<usize>, buf: Vec<u8>) {
        self.enter();
        let n = match &o {
            Outcome::Done(n) => *n,
            _ => 0,
        };
        self.push(Ev::Write(self.name, op, Res::of(&o, n), buf.len()));
        self.leave();
    }

    fn on_timeout(&mut self, _: &mut Initiator<'_>, op: OpId, o: Outcome<()>) {
        self.enter();
        self.push(Ev::Timeout(self.name, op, Res::of(&o, 0)));
        self.leave();
    }

    fn on_close(&mut self, reason: CloseReason) {
        self.enter();
        self.push(Ev::Close(self.name, reason));
        self.leave();
    }
}

/// Starts a read of `n` bytes on the recorder's socket.
pub fn read(cx: &mut Initiator<'_>, sock: &UnixStream, n: usize) -> OpId {
    cx.read(sock.as_fd(), vec![0; n]).unwrap()
}

/// A timeout that will not fire during a test (it is always cancelled).
pub const FOREVER: Duration = Duration::from_secs(3600);

/// The events of handler `name`.
pub fn of(log: &Log, name: u32) -> Vec<Ev> {
    log.borrow()
        .iter()
        .filter(|e| match e {
            Ev::Open(n) | Ev::Close(n, _) => *n == name,
            Ev::Read(n, ..) | Ev::Received(n, ..) | Ev::Write(n, ..) | Ev::Timeout(n, ..) => {
                *n == name
            }
        })
        .cloned()
        .collect()
}

/// The operations that ended (terminal upcalls), in order.
pub fn terminal_ops(log: &Log) -> Vec<OpId> {
    log.borrow()
        .iter()
        .filter_map(|e| match e {
            Ev::Read(_, op, ..) | Ev::Write(_, op, ..) | Ev::Timeout(_, op, ..) => Some(*op),
            _ => None,
        })
        .collect()
}
