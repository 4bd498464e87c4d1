//! Stress: 4 threads, 200 TCP connections × 1,000 messages; order, completeness, no overlap.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::thread;

use leader_followers::{HalfSyncHalfAsync, LeaderFollowers};
use pattern_core::{Dispatcher, Interest};

use crate::support::{Acceptor, PATIENCE, Report, Tally, messages};

const CONNECTIONS: usize = 200;
const MESSAGES: u64 = 1_000;
const CLIENT_THREADS: usize = 8;
const CHUNK: u64 = 100;

fn stress(mut dispatcher: Box<dyn Dispatcher>) {
    let tally = Arc::new(Tally::default());
    let (tx, reports) = mpsc::channel();
    let acceptor = Acceptor::bind(tally.clone(), tx, true);
    let addr = acceptor.listener.local_addr().expect("local addr");
    dispatcher
        .register(Box::new(acceptor), Interest::READ)
        .expect("register acceptor");
    let remote = dispatcher.remote();
    let pool = thread::spawn(move || dispatcher.run());

    let clients: Vec<_> = (0..CLIENT_THREADS)
        .map(|_| {
            thread::spawn(move || {
                let mut conns: Vec<TcpStream> = (0..CONNECTIONS / CLIENT_THREADS)
                    .map(|_| TcpStream::connect(addr).expect("connect"))
                    .collect();
                // Interleave the connections, a chunk at a time.
                for start in (0..MESSAGES).step_by(CHUNK as usize) {
                    for c in &mut conns {
                        c.write_all(&messages(start, start + CHUNK)).expect("write");
                    }
                }
                let mut in_order = 0;
                for mut c in conns {
                    c.shutdown(Shutdown::Write).expect("half close");
                    let mut back = Vec::new();
                    c.read_to_end(&mut back).expect("read echoes");
                    if back == messages(0, MESSAGES) {
                        in_order += 1;
                    }
                }
                in_order
            })
        })
        .collect();

    let mut got = Vec::new();
    for _ in 0..CONNECTIONS {
        got.push(
            reports
                .recv_timeout(PATIENCE)
                .expect("every connection reports"),
        );
    }
    let echoed_in_order: usize = clients.into_iter().map(|c| c.join().expect("client")).sum();
    remote.end();
    pool.join().expect("pool thread").expect("run");

    assert!(
        got.iter().all(|r| *r
            == Report {
                messages: MESSAGES,
                in_order: true
            }),
        "a connection lost or reordered messages: {got:?}"
    );
    assert_eq!(echoed_in_order, CONNECTIONS, "echoes lost or reordered");
    assert_eq!(
        tally.messages.load(Ordering::SeqCst),
        CONNECTIONS * MESSAGES as usize
    );
    assert_eq!(
        tally.overlaps.load(Ordering::SeqCst),
        0,
        "concurrent upcalls"
    );
    assert_eq!(tally.accepted.load(Ordering::SeqCst), CONNECTIONS);
    // 200 connections closed at their peer's end, and the acceptor at shutdown.
    assert_eq!(tally.closes.load(Ordering::SeqCst), CONNECTIONS + 1);
    assert_eq!(tally.double_closes.load(Ordering::SeqCst), 0);
}

#[test]
fn leader_followers_four_threads_keep_order_and_lose_nothing() {
    stress(Box::new(LeaderFollowers::new(4).expect("pool")));
}

#[test]
fn half_sync_half_async_four_workers_keep_order_and_lose_nothing() {
    stress(Box::new(HalfSyncHalfAsync::new(4, 64).expect("pool")));
}
