//! Leader/Followers in the course's IoT logging scenario: eight sensors send their readings as
//! records over loopback TCP to a logging server whose pool of four threads takes turns on one
//! demultiplexer. Each record is stored, then acknowledged with its sequence number, and a
//! sensor sends its next reading only once the last one is acknowledged (confirmed delivery).
//!
//! The store is the one piece of state the connections share, so it has a lock of its own; a
//! connection's own state (its partial record, its unsent acknowledgements) needs none,
//! because the pool never runs two upcalls of one handler at once.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::{Arc, Mutex};
use std::thread;

use leader_followers::LeaderFollowers;
use pattern_core::{Context, Dispatcher, Disposition, EventHandler, Interest};
use reactor::{Acceptor, OutBuffer, SockStream};

const THREADS: usize = 4;
const SENSORS: usize = 8;
const READINGS: u64 = 100;

/// The logging server's store: each sensor's sequence numbers, in the order they were stored.
type Store = Arc<Mutex<BTreeMap<String, Vec<u64>>>>;

/// One sensor's connection: splits the byte stream into records, stores each, acknowledges it.
struct SensorConnection {
    stream: SockStream,
    partial: Vec<u8>,
    acks: OutBuffer,
    store: Store,
}

impl SensorConnection {
    /// Stores one record (`<sensor> seq=<n> t=<reading>`) and queues its acknowledgement; a
    /// record that does not parse is answered `nak` and stored nowhere.
    fn record(&mut self, line: &[u8]) {
        let text = String::from_utf8_lossy(line);
        let mut fields = text.split_whitespace();
        let parsed = match (
            fields.next(),
            fields.next().and_then(|f| f.strip_prefix("seq=")),
        ) {
            (Some(sensor), Some(seq)) => seq.parse::<u64>().ok().map(|seq| (sensor, seq)),
            _ => None,
        };
        match parsed {
            Some((sensor, seq)) => {
                self.store
                    .lock()
                    .expect("store")
                    .entry(sensor.to_owned())
                    .or_default()
                    .push(seq);
                self.acks.push(format!("ack {sensor} {seq}\n").as_bytes());
            }
            None => self.acks.push(b"nak\n"),
        }
    }
}

impl EventHandler for SensorConnection {
    fn handle(&self) -> Option<BorrowedFd<'_>> {
        Some(self.stream.as_fd())
    }

    fn handle_input(&mut self, ctx: &mut dyn Context) -> Disposition {
        let mut buf = [0u8; 4096];
        for _ in 0..16 {
            match self.stream.read(&mut buf) {
                Ok(0) => return Disposition::Close,
                Ok(n) => {
                    self.partial.extend_from_slice(&buf[..n]);
                    while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
                        let line: Vec<u8> = self.partial.drain(..=end).collect();
                        self.record(&line[..end]);
                    }
                    if self.acks.settle(&mut self.stream, ctx, false) == Disposition::Close {
                        return Disposition::Close;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Disposition::Continue,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return Disposition::Close,
            }
        }
        // A bounded batch per upcall: the other sensors get their turn.
        Disposition::Again
    }

    fn handle_output(&mut self, ctx: &mut dyn Context) -> Disposition {
        self.acks.settle(&mut self.stream, ctx, false)
    }
}

/// A sensor: sends `READINGS` readings, each after the previous one was acknowledged; returns
/// how many acknowledgements named the reading just sent.
fn sensor(addr: SocketAddr, id: usize) -> io::Result<u64> {
    let stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    let mut acks = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    let mut confirmed = 0;
    let mut line = String::new();
    for seq in 0..READINGS {
        let tenths = 200 + (id as u64 * 7 + seq * 3) % 100;
        let reading = format!("sensor-{id} seq={seq} t={}.{}\n", tenths / 10, tenths % 10);
        out.write_all(reading.as_bytes())?;
        line.clear();
        acks.read_line(&mut line)?;
        if line == format!("ack sensor-{id} {seq}\n") {
            confirmed += 1;
        }
    }
    Ok(confirmed)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let store: Store = Arc::default();
    let mut pool = LeaderFollowers::new(THREADS)?;
    let monitor = pool.monitor();
    let for_connections = store.clone();
    let acceptor = Acceptor::bind("127.0.0.1:0".parse()?, move |stream, _peer| {
        let connection = SensorConnection {
            stream,
            partial: Vec::new(),
            acks: OutBuffer::with_limit(64 * 1024),
            store: for_connections.clone(),
        };
        Some((connection, Interest::READ))
    })?;
    let addr = acceptor.local_addr()?;
    let accepted = acceptor.counters();
    pool.register(Box::new(acceptor), Interest::ACCEPT)?;
    println!(
        "logging server: a pool of {THREADS} threads shares one demultiplexer; one leads, the others follow"
    );
    let remote = pool.remote();
    let running = thread::spawn(move || pool.run());

    let sensors: Vec<_> = (0..SENSORS)
        .map(|id| thread::spawn(move || sensor(addr, id)))
        .collect();
    for (id, s) in sensors.into_iter().enumerate() {
        let confirmed = s.join().expect("sensor thread")?;
        println!("sensor-{id}: {confirmed} of {READINGS} readings acknowledged in order");
    }
    remote.end();
    running.join().expect("pool thread")?;

    let store = store.lock().expect("store");
    let in_order = store
        .values()
        .filter(|seqs| seqs.iter().copied().eq(0..READINGS))
        .count();
    println!(
        "store: {} sensors, {} records; {in_order} sensors' records stored in sending order",
        store.len(),
        store.values().map(Vec::len).sum::<usize>()
    );
    println!(
        "server: {} connections accepted; {} handlers left after the pool ended",
        accepted.snapshot().accepted,
        monitor.handlers()
    );
    Ok(())
}
