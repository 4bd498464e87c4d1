//! The load generator: N connections on one thread's epoll (through mio), each in a closed
//! loop of send a message, wait for its whole echo, send the next.
//!
//! Latency is taken per round trip with [`Instant`] and kept in an HDR histogram; each echo is
//! compared byte for byte with what was sent, so a server that corrupts data cannot look fast.

use std::io::{self, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::{Events, Interest, Poll, Token};

use crate::cli::LoadArgs;
use lab_report::LoadReport;

/// The longest latency the histogram records: one minute, in nanoseconds.
const HIGHEST_NS: u64 = 60_000_000_000;

/// One client connection and its request in flight.
#[derive(Debug)]
struct Connection {
    stream: mio::net::TcpStream,
    id: u64,
    seq: u64,
    sent: Vec<u8>,
    written: usize,
    received: Vec<u8>,
    filled: usize,
    sent_at: Instant,
}

/// What a completed round trip leaves for the caller to count.
#[derive(Debug, Default)]
struct Tally {
    completed: u64,
    mismatches: u64,
}

/// Fills `message` with a pattern that changes with every request, so that an echo of an
/// earlier message, or of someone else's, is caught.
pub fn fill_message(message: &mut [u8], connection: u64, seq: u64) {
    let seed = connection.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ seq;
    for (i, byte) in message.iter_mut().enumerate() {
        *byte = (seed.rotate_left((i % 64) as u32) as u8) ^ (i as u8);
    }
}

impl Connection {
    /// Starts the next request: a new message, written as far as the socket takes it.
    fn send_next(&mut self, now: Instant) -> io::Result<()> {
        self.seq += 1;
        fill_message(&mut self.sent, self.id, self.seq);
        self.written = 0;
        self.filled = 0;
        self.sent_at = now;
        self.flush()
    }

    fn flush(&mut self) -> io::Result<()> {
        while self.written < self.sent.len() {
            match self.stream.write(&self.sent[self.written..]) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => self.written += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Makes the progress the socket allows: finishes writing, reads the echo, and once it is
    /// complete records its latency and sends the next request.
    fn drive(
        &mut self,
        histogram: Option<&mut Histogram<u64>>,
        tally: &mut Tally,
    ) -> io::Result<()> {
        let mut histogram = histogram;
        loop {
            self.flush()?;
            let size = self.sent.len();
            match self.stream.read(&mut self.received[self.filled..size]) {
                Ok(0) => return Err(io::Error::new(ErrorKind::UnexpectedEof, "server closed")),
                Ok(n) => self.filled += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            if self.filled == size {
                let now = Instant::now();
                if self.received != self.sent {
                    tally.mismatches += 1;
                }
                if let Some(h) = histogram.as_deref_mut() {
                    let ns = (now - self.sent_at).as_nanos().clamp(1, HIGHEST_NS as u128);
                    h.saturating_record(ns as u64);
                }
                tally.completed += 1;
                // The receive queue is empty now (only one message is ever in flight) and the
                // reply to the next one will raise a new edge, so there is no point in a read
                // that could only fail with `WouldBlock`.
                return self.send_next(now);
            }
        }
    }
}

/// Runs the load described by `args` and reports what the measured part saw.
///
/// Connections are opened one after another with blocking connects before the clock starts.
pub fn run(args: &LoadArgs) -> io::Result<LoadReport> {
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(1024);
    let mut connections = Vec::with_capacity(args.connections);
    for id in 0..args.connections {
        let stream = TcpStream::connect(args.addr)?;
        stream.set_nodelay(true)?;
        stream.set_nonblocking(true)?;
        let mut stream = mio::net::TcpStream::from_std(stream);
        poll.registry().register(
            &mut stream,
            Token(id),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        connections.push(Connection {
            stream,
            id: id as u64,
            seq: 0,
            sent: vec![0; args.size],
            written: 0,
            received: vec![0; args.size],
            filled: 0,
            sent_at: Instant::now(),
        });
    }

    let mut histogram = Histogram::<u64>::new_with_bounds(1, HIGHEST_NS, 3)
        .map_err(|e| io::Error::other(format!("histogram: {e}")))?;
    let mut tally = Tally::default();
    let start = Instant::now();
    for connection in &mut connections {
        connection.send_next(start)?;
    }
    let measure_from = start + args.warmup;
    let mut end = measure_from + args.duration;
    let mut measuring = args.warmup.is_zero();
    let mut measured_since = start;
    let mut warmup_requests = 0;

    loop {
        let now = Instant::now();
        if !measuring && now >= measure_from {
            // Round trips in flight at this instant count when they finish, as they would
            // in a run without warmup.
            measuring = true;
            measured_since = now;
            end = now + args.duration;
            histogram.reset();
            warmup_requests = tally.completed;
            tally = Tally::default();
        }
        if now >= end {
            break;
        }
        let phase_end = if measuring { end } else { measure_from };
        let wait = phase_end
            .saturating_duration_since(now)
            .max(Duration::from_micros(1));
        match poll.poll(&mut events, Some(wait)) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        for event in events.iter() {
            let connection = &mut connections[event.token().0];
            let recorder = if measuring {
                Some(&mut histogram)
            } else {
                None
            };
            connection.drive(recorder, &mut tally)?;
        }
    }
    let seconds = measured_since.elapsed().as_secs_f64();
    let micros = |ns: u64| ns as f64 / 1_000.0;
    Ok(LoadReport {
        connections: args.connections,
        message_bytes: args.size,
        seconds,
        requests: tally.completed,
        total_requests: warmup_requests + tally.completed,
        requests_per_sec: tally.completed as f64 / seconds,
        p50_us: micros(histogram.value_at_quantile(0.50)),
        p99_us: micros(histogram.value_at_quantile(0.99)),
        max_us: micros(histogram.max()),
        mismatches: tally.mismatches,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_differ_between_requests_and_connections() {
        let mut a = [0u8; 64];
        let mut b = [0u8; 64];
        let mut c = [0u8; 64];
        fill_message(&mut a, 1, 1);
        fill_message(&mut b, 1, 2);
        fill_message(&mut c, 2, 1);
        assert_ne!(a, b);
        assert_ne!(a, c);
        let mut again = [0u8; 64];
        fill_message(&mut again, 1, 1);
        assert_eq!(a, again, "the pattern is a function of (connection, seq)");
    }
}
