//! The same echo handlers under the reactor, Leader/Followers and Half-Sync/Half-Async, chosen
//! at run time by name. Deterministic verdicts go to stdout; timings and context switches,
//! which vary from run to run, go to stderr.

mod common;

use std::sync::mpsc;
use std::thread;
use std::time::Instant;

use common::{EchoAcceptor, Event, context_switches, ping_pong};
use leader_followers::Concurrency;
use pattern_core::{CloseReason, Interest};

const CONNECTIONS: usize = 64;
const ROUND_TRIPS: usize = 1000;

/// Threads that belong to a dispatcher (the examples name them so).
const POOL_THREADS: &[&str] = &["dispatcher", "lf-", "hsha-"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!(
        "workload: {CONNECTIONS} connections x {ROUND_TRIPS} request/response round trips, on loopback"
    );
    for name in ["reactor", "leader-followers:2", "half-sync-half-async:2:64"] {
        let model: Concurrency = name.parse()?;
        let mut d = model.build()?;
        let (events_tx, events) = mpsc::channel();
        let (acceptor, addr) = EchoAcceptor::bind(events_tx)?;
        d.register(Box::new(acceptor), Interest::READ)?;
        let remote = d.remote();
        let running = thread::Builder::new()
            .name("dispatcher".into())
            .spawn(move || d.run())?;
        // One round trip first, so that every pool thread is up before counting.
        ping_pong(addr, usize::MAX, 1)?;
        let before = context_switches(POOL_THREADS);
        let start = Instant::now();
        let clients: Vec<_> = (0..CONNECTIONS)
            .map(|c| thread::spawn(move || ping_pong(addr, c, ROUND_TRIPS)))
            .collect();
        let mut good = 0;
        for c in clients {
            good += c.join().expect("client")?;
        }
        let elapsed = start.elapsed();
        let after = context_switches(POOL_THREADS);
        let mut closed = 0;
        while closed < CONNECTIONS + 1 {
            if let Event::Closed(CloseReason::Requested) = events.recv()? {
                closed += 1;
            }
        }
        remote.end();
        running.join().expect("dispatcher thread")?;
        let shutdown_closes = events
            .try_iter()
            .filter(|e| *e == Event::Closed(CloseReason::Shutdown))
            .count();
        println!(
            "{model}: {good} of {} echoes in order; {closed} connections (one a warm-up) closed by their peers, {shutdown_closes} handler closed at shutdown",
            CONNECTIONS * ROUND_TRIPS
        );
        let total = (CONNECTIONS * ROUND_TRIPS) as f64;
        eprintln!(
            "{model}: {:.0} round trips/s, {:.1} µs mean; dispatcher threads: {} voluntary, {} involuntary context switches ({:.2} per round trip)",
            total / elapsed.as_secs_f64(),
            elapsed.as_secs_f64() * 1e6 / total * CONNECTIONS as f64,
            after.0.saturating_sub(before.0),
            after.1.saturating_sub(before.1),
            (after.0 + after.1).saturating_sub(before.0 + before.1) as f64 / total,
        );
    }
    println!(
        "verdict: one set of handlers, three dispatchers, the same results; compare the timings on stderr"
    );
    Ok(())
}
