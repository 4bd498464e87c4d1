//! Pool behaviour: growth past a blocking upcall, registration while the leader waits, and the
//! three dispatchers chosen at run time behind one trait.

use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;

use leader_followers::{Concurrency, LeaderFollowers};
use pattern_core::{
    CloseReason, Context, Dispatcher, Disposition, EventHandler, Interest, Message,
};

use crate::support::PATIENCE;

/// Blocks in its notify upcall until released.
struct Blocker {
    entered: Sender<()>,
    release: Receiver<()>,
}

impl EventHandler for Blocker {
    fn handle_notify(&mut self, _ctx: &mut dyn Context, _m: Message) -> Disposition {
        let _ = self.entered.send(());
        self.release.recv_timeout(PATIENCE).expect("released");
        Disposition::Continue
    }
}

/// Echoes notifications into a channel.
struct Echo(Sender<u32>);

impl EventHandler for Echo {
    fn handle_notify(&mut self, _ctx: &mut dyn Context, m: Message) -> Disposition {
        let _ = self.0.send(*m.downcast::<u32>().expect("u32"));
        Disposition::Continue
    }

    fn handle_close(&mut self, _ctx: &mut dyn Context, reason: CloseReason) {
        assert_eq!(reason, CloseReason::Shutdown);
        let _ = self.0.send(u32::MAX);
    }
}

#[test]
fn growth_generates_a_leader_when_the_only_thread_blocks() {
    let mut pool = LeaderFollowers::builder()
        .threads(1)
        .grow_up_to(2)
        .build()
        .expect("pool");
    let monitor = pool.monitor();
    let (entered_tx, entered) = mpsc::channel();
    let (release_tx, release) = mpsc::channel();
    let blocker = pool
        .register(
            Box::new(Blocker {
                entered: entered_tx,
                release,
            }),
            Interest::NONE,
        )
        .expect("register");
    let (echo_tx, echoes) = mpsc::channel();
    let echo = pool
        .register(Box::new(Echo(echo_tx)), Interest::NONE)
        .expect("register");
    let remote = pool.remote();
    let running = thread::spawn(move || pool.run());
    remote.notify(blocker, Box::new(())).expect("notify");
    entered.recv_timeout(PATIENCE).expect("blocker entered");
    // The only thread is stuck in an upcall; a generated leader serves the echo.
    for n in 0..10 {
        remote.notify(echo, Box::new(n)).expect("notify");
        assert_eq!(
            echoes.recv_timeout(PATIENCE).expect("echo while blocked"),
            n
        );
    }
    release_tx.send(()).expect("release");
    remote.end();
    running.join().expect("pool").expect("run");
    assert_eq!(echoes.recv().expect("close"), u32::MAX);
    assert_eq!(monitor.threads_started(), 2);
    assert_eq!(monitor.handlers(), 0);
}

/// Reports the bytes it reads.
struct Reader(UnixStream, Sender<Vec<u8>>);

impl EventHandler for Reader {
    fn handle(&self) -> Option<BorrowedFd<'_>> {
        Some(self.0.as_fd())
    }

    fn handle_input(&mut self, ctx: &mut dyn Context) -> Disposition {
        let mut buf = [0u8; 64];
        loop {
            match self.0.read(&mut buf) {
                Ok(0) => return Disposition::Close,
                Ok(n) => {
                    let _ = self.1.send(buf[..n].to_vec());
                    ctx.end();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Disposition::Continue,
                Err(_) => return Disposition::Close,
            }
        }
    }
}

/// Registers a socket handler from another thread while the pool waits with nothing to do,
/// under each model chosen by name.
#[test]
fn every_model_registers_from_another_thread_while_the_leader_waits() {
    for name in [
        "reactor",
        "leader-followers:3",
        "leader-followers-strict:3",
        "half-sync-half-async:2:4",
    ] {
        let model: Concurrency = name.parse().expect("model");
        let mut d = model.build().expect("build");
        let remote = d.remote();
        let running = thread::spawn(move || d.run());
        let (ours, theirs) = UnixStream::pair().expect("socketpair");
        ours.set_nonblocking(true).expect("nonblocking");
        let (tx, rx) = mpsc::channel();
        let (ack_tx, ack) = mpsc::channel();
        remote
            .post(Box::new(move |ctx| {
                let t = ctx.register(Box::new(Reader(ours, tx)), Interest::READ);
                let _ = ack_tx.send(t.is_ok());
            }))
            .expect("post");
        assert!(ack.recv_timeout(PATIENCE).expect("registered"), "{name}");
        std::io::Write::write_all(&mut &theirs, b"ping").expect("write");
        assert_eq!(rx.recv_timeout(PATIENCE).expect("input"), b"ping", "{name}");
        running.join().expect("loop").expect("run");
    }
}

#[test]
fn a_lone_thread_runs_jobs_with_nothing_ready() {
    // One thread, no registration ready: the jobs are the only work, and the thread must take
    // them rather than keep asking the kernel for events (the strict protocol too).
    for strict in [false, true] {
        let mut pool = LeaderFollowers::builder()
            .threads(1)
            .strict(strict)
            .build()
            .expect("pool");
        let remote = pool.remote();
        let (tx, rx) = mpsc::channel();
        remote
            .post(Box::new(move |ctx| {
                let tx = tx.clone();
                ctx.remote()
                    .post(Box::new(move |_ctx| tx.send("second").unwrap()))
                    .unwrap();
            }))
            .expect("post");
        let running = thread::spawn(move || pool.run());
        let got = rx.recv_timeout(PATIENCE);
        remote.end();
        running.join().expect("pool thread").expect("run");
        assert_eq!(got, Ok("second"), "both jobs ran (strict: {strict})");
    }
}
