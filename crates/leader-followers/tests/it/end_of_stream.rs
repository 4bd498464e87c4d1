//! End of stream is never missed when the peer's close is reported while the handler is busy
//! in an input upcall that stopped at a short read (the pattern-core contract allows it).
//!
//! The first input upcall reads the first part, then, still inside the upcall, makes the peer
//! send a second part and close, and waits until another pool thread has demultiplexed that
//! close: it pokes a probe registration after the close, and readiness is recorded in the
//! order the kernel reports it, so the probe's upcall proves the close was recorded first.
//! The second part then needs an upcall of its own, and end of stream one more.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;

use leader_followers::{HalfSyncHalfAsync, LeaderFollowers};
use pattern_core::{CloseReason, Context, Dispatcher, Disposition, EventHandler, Interest};

use crate::support::PATIENCE;

#[derive(Debug, PartialEq, Eq)]
enum Ev {
    Input(Vec<u8>),
    Eof,
    Close(CloseReason),
}

struct ShortReader {
    stream: UnixStream,
    /// The peer's end, written to and closed from inside the first upcall.
    peer: Option<UnixStream>,
    probe: UnixStream,
    probed: Receiver<()>,
    tx: Sender<Ev>,
}

impl EventHandler for ShortReader {
    fn handle(&self) -> Option<BorrowedFd<'_>> {
        Some(self.stream.as_fd())
    }

    fn handle_input(&mut self, _ctx: &mut dyn Context) -> Disposition {
        let mut buf = [0u8; 4096];
        let n = match self.stream.read(&mut buf) {
            Ok(0) => {
                let _ = self.tx.send(Ev::Eof);
                return Disposition::Close;
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Disposition::Continue,
            Err(e) => panic!("read: {e}"),
        };
        assert!(n < buf.len(), "every part fits in one read");
        let _ = self.tx.send(Ev::Input(buf[..n].to_vec()));
        if let Some(mut peer) = self.peer.take() {
            peer.write_all(b"second part").expect("write");
            drop(peer);
            self.probe.write_all(b"!").expect("poke the probe");
            self.probed
                .recv_timeout(PATIENCE)
                .expect("another thread demultiplexed the probe");
        }
        // A short read: drained for now.
        Disposition::Continue
    }

    fn handle_close(&mut self, _ctx: &mut dyn Context, reason: CloseReason) {
        let _ = self.tx.send(Ev::Close(reason));
    }
}

struct Probe {
    stream: UnixStream,
    probed: Sender<()>,
}

impl EventHandler for Probe {
    fn handle(&self) -> Option<BorrowedFd<'_>> {
        Some(self.stream.as_fd())
    }

    fn handle_input(&mut self, _ctx: &mut dyn Context) -> Disposition {
        let mut buf = [0u8; 16];
        while self.stream.read(&mut buf).is_ok_and(|n| n > 0) {}
        let _ = self.probed.send(());
        Disposition::Continue
    }
}

fn close_reported_during_a_short_read(mut d: Box<dyn Dispatcher>) {
    let (ours, mut theirs) = UnixStream::pair().expect("socketpair");
    let (probe_ours, probe_theirs) = UnixStream::pair().expect("socketpair");
    ours.set_nonblocking(true).expect("nonblocking");
    probe_ours.set_nonblocking(true).expect("nonblocking");
    let (probed_tx, probed_rx) = mpsc::channel();
    d.register(
        Box::new(Probe {
            stream: probe_ours,
            probed: probed_tx,
        }),
        Interest::READ,
    )
    .expect("register the probe");
    theirs.write_all(b"first part").expect("write");
    let (tx, rx) = mpsc::channel();
    d.register(
        Box::new(ShortReader {
            stream: ours,
            peer: Some(theirs),
            probe: probe_theirs,
            probed: probed_rx,
            tx,
        }),
        Interest::READ,
    )
    .expect("register");
    let remote = d.remote();
    let pool = thread::spawn(move || d.run());
    let next = |what: &str| {
        rx.recv_timeout(PATIENCE)
            .unwrap_or_else(|_| panic!("{what}"))
    };
    assert_eq!(next("first part"), Ev::Input(b"first part".to_vec()));
    assert_eq!(next("second part"), Ev::Input(b"second part".to_vec()));
    assert_eq!(next("end of stream"), Ev::Eof);
    assert_eq!(next("close"), Ev::Close(CloseReason::Requested));
    remote.end();
    pool.join().expect("pool").expect("run");
}

#[test]
fn leader_followers_sees_a_close_reported_during_a_short_read() {
    close_reported_during_a_short_read(Box::new(LeaderFollowers::new(2).expect("pool")));
}

#[test]
fn half_sync_half_async_sees_a_close_reported_during_a_short_read() {
    close_reported_during_a_short_read(Box::new(HalfSyncHalfAsync::new(2, 8).expect("pool")));
}
