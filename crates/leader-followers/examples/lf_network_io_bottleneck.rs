//! Leader/Followers' "network I/O bottleneck", in the IoT logging scenario: a pool serialises
//! on its handles. Only one thread at a time waits on the handle set, and a handle is
//! deactivated while a thread processes it, so all the traffic of one handle is served by one
//! thread at a time however many the pool has.
//!
//! First, eight sensors reach the logging server through one concentrator, over one uplink
//! (one socket): a pool of four threads stores their records one at a time. Then the same
//! eight sensors connect directly, one socket each: the four threads store four records at
//! once. The storing handler measures how many records are being stored at once; the second
//! run waits (bounded) until four are, which only a pool that really spreads the handles
//! across its threads reaches. The pool's counters (waits on the handle set, promotions) go to
//! stderr, as they vary from run to run.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use leader_followers::LeaderFollowers;
use pattern_core::{Context, Dispatcher, Disposition, EventHandler, Interest};

const THREADS: usize = 4;
const SENSORS: usize = 8;

/// How many records are being stored at once, and the most ever.
#[derive(Default)]
struct Gauge {
    state: Mutex<GaugeState>,
    changed: Condvar,
}

#[derive(Default)]
struct GaugeState {
    inside: usize,
    peak: usize,
    /// Bumped each time `meet` storers are inside together.
    meetings: u64,
}

impl Gauge {
    /// Starts storing a record. With `meet > 1`, waits (at most two seconds) until `meet`
    /// records are being stored together: what a pool that spreads handles over its threads
    /// reaches, and one that serialises on a handle never does.
    fn enter(&self, meet: usize) {
        let mut st = self.state.lock().expect("gauge");
        st.inside += 1;
        st.peak = st.peak.max(st.inside);
        if meet <= 1 {
            return;
        }
        if st.inside >= meet {
            st.meetings += 1;
            self.changed.notify_all();
            return;
        }
        let seen = st.meetings;
        let _ = self
            .changed
            .wait_timeout_while(st, Duration::from_secs(2), |st| st.meetings == seen)
            .expect("gauge");
    }

    fn leave(&self) {
        self.state.lock().expect("gauge").inside -= 1;
    }

    fn peak(&self) -> usize {
        self.state.lock().expect("gauge").peak
    }
}

/// The logging server's side of one socket: stores one record per upcall and answers
/// `Again` while more are buffered, so a free thread could take the next one if the pool let
/// it.
struct Store {
    stream: UnixStream,
    buffered: Vec<u8>,
    gauge: Arc<Gauge>,
    meet: usize,
    stored: Sender<String>,
}

impl EventHandler for Store {
    fn handle(&self) -> Option<BorrowedFd<'_>> {
        Some(self.stream.as_fd())
    }

    fn handle_input(&mut self, _ctx: &mut dyn Context) -> Disposition {
        let mut buf = [0u8; 1024];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return Disposition::Close,
                Ok(n) => self.buffered.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => return Disposition::Close,
            }
        }
        let Some(end) = self.buffered.iter().position(|&b| b == b'\n') else {
            return Disposition::Continue;
        };
        let record: Vec<u8> = self.buffered.drain(..=end).collect();
        self.gauge.enter(self.meet);
        // Storing takes a moment (a write and an fsync on a real store).
        thread::sleep(Duration::from_millis(5));
        self.gauge.leave();
        let _ = self
            .stored
            .send(String::from_utf8_lossy(&record).trim_end().to_owned());
        if self.buffered.contains(&b'\n') {
            Disposition::Again
        } else {
            Disposition::Continue
        }
    }
}

/// Runs a pool of [`THREADS`] over `uplinks` sockets carrying the records of [`SENSORS`]
/// sensors; returns the most records stored at once.
fn scenario(uplinks: usize, meet: usize) -> io::Result<usize> {
    let mut pool = LeaderFollowers::new(THREADS)?;
    let monitor = pool.monitor();
    let gauge = Arc::new(Gauge::default());
    let (stored_tx, stored) = mpsc::channel();
    let mut peers = Vec::new();
    for _ in 0..uplinks {
        let (ours, peer) = UnixStream::pair()?;
        ours.set_nonblocking(true)?;
        let store = Store {
            stream: ours,
            buffered: Vec::new(),
            gauge: gauge.clone(),
            meet,
            stored: stored_tx.clone(),
        };
        Dispatcher::register(&mut pool, Box::new(store), Interest::READ)
            .map_err(io::Error::other)?;
        peers.push(peer);
    }
    let remote = Dispatcher::remote(&pool);
    let running = thread::spawn(move || Dispatcher::run(&mut pool));
    for sensor in 0..SENSORS {
        let record = format!("sensor-{} t=2{}.5\n", sensor + 1, sensor);
        peers[sensor % uplinks].write_all(record.as_bytes())?;
    }
    let mut got: Vec<String> = (0..SENSORS)
        .map(|_| stored.recv_timeout(Duration::from_secs(30)))
        .collect::<Result<_, _>>()
        .map_err(io::Error::other)?;
    got.sort();
    remote.end();
    running.join().expect("pool thread")?;
    println!(
        "  {} records stored ({} .. {})",
        got.len(),
        got[0],
        got[got.len() - 1]
    );
    eprintln!(
        "  (pool: {} waits on the handle set, {} promotions, {} upcalls)",
        monitor.polls(),
        monitor.promotions(),
        monitor.upcalls()
    );
    Ok(gauge.peak())
}

fn main() -> io::Result<()> {
    println!("== {SENSORS} sensors behind one concentrator: one uplink, a pool of {THREADS} ==");
    let peak = scenario(1, 1)?;
    println!("  records stored at once, at most: {peak} of {THREADS} threads");
    println!("== the same {SENSORS} sensors, one socket each, a pool of {THREADS} ==");
    let peak = scenario(SENSORS, THREADS)?;
    println!("  records stored at once, at most: {peak} of {THREADS} threads");
    println!(
        "verdict: a pool serialises on each handle (and waits on its handle set one thread at a time); traffic funnelled into one handle gets one thread"
    );
    Ok(())
}
