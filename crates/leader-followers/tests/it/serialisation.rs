//! A timer and I/O firing together on one handler never overlap.

use std::any::Any;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Sender};
use std::thread;
use std::time::Duration;

use leader_followers::{HalfSyncHalfAsync, LeaderFollowers};
use pattern_core::{Context, Dispatcher, Disposition, EventHandler, Interest, TimerId};

use crate::support::{Flag, PATIENCE, Tally};

const BYTES: usize = 4000 * 64;
const TIMEOUTS: usize = 200;

struct Both {
    stream: UnixStream,
    flag: Flag,
    tally: Arc<Tally>,
    bytes: usize,
    timeouts: usize,
    done: Sender<&'static str>,
}

fn work() {
    // Long enough that a timer expiring mid-upcall is likely.
    std::hint::black_box((0..2_000u64).fold(0u64, |a, b| a.wrapping_mul(31).wrapping_add(b)));
}

impl EventHandler for Both {
    fn handle(&self) -> Option<BorrowedFd<'_>> {
        Some(self.stream.as_fd())
    }

    fn handle_input(&mut self, _ctx: &mut dyn Context) -> Disposition {
        self.flag.enter(&self.tally);
        let mut buf = [0u8; 256];
        let d = loop {
            work();
            match self.stream.read(&mut buf) {
                Ok(0) => break Disposition::Continue,
                Ok(n) => {
                    self.bytes += n;
                    if self.bytes == BYTES {
                        let _ = self.done.send("input");
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Disposition::Continue,
                Err(e) => panic!("read: {e}"),
            }
        };
        self.flag.leave();
        d
    }

    fn handle_timeout(
        &mut self,
        _ctx: &mut dyn Context,
        _timer: TimerId,
        _act: &mut (dyn Any + Send),
    ) -> Disposition {
        self.flag.enter(&self.tally);
        work();
        self.timeouts += 1;
        if self.timeouts == TIMEOUTS {
            let _ = self.done.send("timeouts");
        }
        self.flag.leave();
        Disposition::Continue
    }
}

fn timer_and_io(mut d: Box<dyn Dispatcher>) {
    let (ours, mut theirs) = UnixStream::pair().expect("socketpair");
    ours.set_nonblocking(true).expect("nonblocking");
    let tally = Arc::new(Tally::default());
    let (tx, rx) = mpsc::channel();
    let token = d
        .register(
            Box::new(Both {
                stream: ours,
                flag: Flag::default(),
                tally: tally.clone(),
                bytes: 0,
                timeouts: 0,
                done: tx,
            }),
            Interest::READ,
        )
        .expect("register");
    let remote = d.remote();
    let pool = thread::spawn(move || d.run());
    let (ack, acked) = mpsc::channel();
    remote
        .post(Box::new(move |ctx| {
            let id = ctx.schedule_timer(
                token,
                Duration::ZERO,
                Some(Duration::from_micros(50)),
                Box::new(()),
            );
            let _ = ack.send(id.is_ok());
        }))
        .expect("post");
    assert!(acked.recv_timeout(PATIENCE).expect("job ran"));
    let writer = thread::spawn(move || {
        for _ in 0..4000 {
            theirs.write_all(&[1u8; 64]).expect("write");
        }
        theirs
    });
    let mut seen = vec![
        rx.recv_timeout(PATIENCE).expect("first milestone"),
        rx.recv_timeout(PATIENCE).expect("second milestone"),
    ];
    seen.sort();
    let _theirs = writer.join().expect("writer");
    remote.end();
    pool.join().expect("pool").expect("run");
    assert_eq!(seen, ["input", "timeouts"]);
    assert_eq!(
        tally.overlaps.load(Ordering::SeqCst),
        0,
        "timer and I/O overlapped"
    );
}

#[test]
fn leader_followers_never_overlaps_timer_and_io() {
    timer_and_io(Box::new(LeaderFollowers::new(4).expect("pool")));
}

#[test]
fn half_sync_half_async_never_overlaps_timer_and_io() {
    timer_and_io(Box::new(HalfSyncHalfAsync::new(4, 8).expect("pool")));
}
