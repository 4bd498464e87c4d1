//! Leader/Followers echo server: a pool of four threads takes turns on one demultiplexer while
//! eight clients talk to it over loopback TCP.

mod common;

use std::sync::mpsc;
use std::thread;

use common::{EchoAcceptor, Event, ping_pong};
use leader_followers::LeaderFollowers;
use pattern_core::{CloseReason, Dispatcher, Interest};

const CLIENTS: usize = 8;
const LINES: usize = 100;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut pool = LeaderFollowers::new(4)?;
    let monitor = pool.monitor();
    println!("pool: 4 threads share one mio Poll; one leads, three follow");
    let (events_tx, events) = mpsc::channel();
    let (acceptor, addr) = EchoAcceptor::bind(events_tx)?;
    pool.register(Box::new(acceptor), Interest::READ)?;
    println!("acceptor registered; the leader waits for connections");
    let remote = pool.remote();
    let running = thread::Builder::new()
        .name("lf-run".into())
        .spawn(move || pool.run())?;

    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| thread::spawn(move || ping_pong(addr, c, LINES)))
        .collect();
    let mut total = 0;
    for (c, client) in clients.into_iter().enumerate() {
        let good = client.join().expect("client thread")?;
        println!("client {c}: {good} of {LINES} lines echoed in order");
        total += good;
    }
    let mut accepted = 0;
    let mut closed_by_peer = 0;
    while closed_by_peer < CLIENTS {
        match events.recv()? {
            Event::Accepted => accepted += 1,
            Event::Closed(CloseReason::Requested) => closed_by_peer += 1,
            Event::Closed(other) => println!("unexpected close: {other:?}"),
        }
    }
    println!(
        "{accepted} connections accepted; {closed_by_peer} closed at their peer's end of stream"
    );
    remote.end();
    running.join().expect("pool thread")?;
    let rest: Vec<Event> = events.try_iter().collect();
    println!("shutdown: every pool thread joined; then {rest:?}");
    println!(
        "verdict: {total} of {} lines echoed in order; {} handlers left registered",
        CLIENTS * LINES,
        monitor.handlers()
    );
    Ok(())
}
