//! A slow upcall under three dispatchers: the reactor stalls every other connection behind it;
//! Leader/Followers serves them on another thread, and with growth on even a one-thread pool
//! does, by generating a new leader.

mod common;

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;

use leader_followers::{LeaderFollowers, PoolMonitor};
use pattern_core::{Context, Dispatcher, Disposition, EventHandler, Interest};

/// A request whose processing blocks (think of a slow disk) until the demo releases it.
struct Slow {
    stream: UnixStream,
    release: Receiver<()>,
    log: Sender<String>,
}

impl EventHandler for Slow {
    fn handle(&self) -> Option<BorrowedFd<'_>> {
        Some(self.stream.as_fd())
    }

    fn handle_input(&mut self, _ctx: &mut dyn Context) -> Disposition {
        let mut buf = [0u8; 64];
        match self.stream.read(&mut buf) {
            Ok(0) => return Disposition::Close,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Disposition::Continue,
            Err(_) => return Disposition::Close,
        }
        let _ = self.log.send("A: upcall blocks".into());
        let _ = self.release.recv();
        let _ = self.log.send("A: upcall returns".into());
        Disposition::Continue
    }
}

/// Answers each `ping N` line with `pong N`.
struct Quick {
    stream: UnixStream,
    log: Sender<String>,
}

impl EventHandler for Quick {
    fn handle(&self) -> Option<BorrowedFd<'_>> {
        Some(self.stream.as_fd())
    }

    fn handle_input(&mut self, _ctx: &mut dyn Context) -> Disposition {
        let mut buf = [0u8; 256];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return Disposition::Close,
                Ok(n) => {
                    for line in String::from_utf8_lossy(&buf[..n]).lines() {
                        let reply = line.replace("ping", "pong");
                        let _ = self.log.send(format!("B: {line} answered"));
                        if (&self.stream)
                            .write_all(format!("{reply}\n").as_bytes())
                            .is_err()
                        {
                            return Disposition::Close;
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Disposition::Continue,
                Err(_) => return Disposition::Close,
            }
        }
    }
}

const PINGS: usize = 3;

/// Runs the scenario; `wait_for_pongs` says whether B's answers are expected while A blocks.
fn scenario(
    title: &str,
    mut d: Box<dyn Dispatcher>,
    wait_for_pongs: bool,
    monitor: Option<PoolMonitor>,
) -> io::Result<()> {
    println!("== {title} ==");
    let (a_ours, mut a_peer) = UnixStream::pair()?;
    let (b_ours, b_peer) = UnixStream::pair()?;
    a_ours.set_nonblocking(true)?;
    b_ours.set_nonblocking(true)?;
    let (log_tx, log) = mpsc::channel();
    let (release_tx, release) = mpsc::channel();
    d.register(
        Box::new(Slow {
            stream: a_ours,
            release,
            log: log_tx.clone(),
        }),
        Interest::READ,
    )
    .map_err(io::Error::other)?;
    d.register(
        Box::new(Quick {
            stream: b_ours,
            log: log_tx,
        }),
        Interest::READ,
    )
    .map_err(io::Error::other)?;
    let remote = d.remote();
    let running = thread::spawn(move || d.run());

    a_peer.write_all(b"slow request\n")?;
    println!("{}", log.recv().map_err(io::Error::other)?);
    let mut b_writer = &b_peer;
    for n in 1..=PINGS {
        b_writer.write_all(format!("ping {n}\n").as_bytes())?;
    }
    println!("B: sent {PINGS} pings while A is blocked");
    let mut b_reader = BufReader::new(&b_peer);
    if wait_for_pongs {
        let mut line = String::new();
        for _ in 0..PINGS {
            line.clear();
            b_reader.read_line(&mut line)?;
        }
        println!("B: all {PINGS} pongs back while A is still blocked");
    }
    release_tx.send(()).map_err(io::Error::other)?;
    if !wait_for_pongs {
        let mut line = String::new();
        for _ in 0..PINGS {
            line.clear();
            b_reader.read_line(&mut line)?;
        }
        println!("B: all {PINGS} pongs back, only after A was released");
    }
    remote.end();
    running.join().expect("dispatcher thread")?;
    // The order in which the handlers ran, as they logged it.
    for entry in log.try_iter() {
        println!("  {entry}");
    }
    if let Some(m) = monitor {
        println!("threads started: {}", m.threads_started());
    }
    Ok(())
}

fn main() -> io::Result<()> {
    scenario(
        "reactor: one thread, non-preemptive",
        Box::new(reactor::Reactor::new()?),
        false,
        None,
    )?;
    let lf = LeaderFollowers::new(2)?;
    let m = lf.monitor();
    scenario(
        "leader/followers: a fixed pool of 2 threads",
        Box::new(lf),
        true,
        Some(m),
    )?;
    let lf = LeaderFollowers::builder()
        .threads(1)
        .grow_up_to(2)
        .build()?;
    let m = lf.monitor();
    scenario(
        "leader/followers: 1 thread, growing up to 2 when all are busy",
        Box::new(lf),
        true,
        Some(m),
    )?;
    println!("verdict: a blocking upcall stalls the reactor, not the leader/followers pool");
    Ok(())
}
