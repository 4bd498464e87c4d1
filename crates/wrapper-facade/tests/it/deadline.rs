//! Connecting with a deadline against a local listener whose accept queue is full.
//!
//! Linux drops an incoming SYN while the listener's accept queue is full (unless
//! `tcp_abort_on_overflow` is set, which would answer with a reset instead), so the client keeps
//! waiting for a SYN-ACK that will not come before its first retransmission (1 s later).
//! To avoid guessing how many connections the queue holds (Linux queues `backlog + 1`,
//! and `somaxconn` may cap it), we fill it by connecting with a short deadline until one of those
//! connects itself times out; the queue is full from then on because nobody accepts.

use std::io;
use std::time::{Duration, Instant};

use wrapper_facade::{AcceptorOptions, InetAddr, SockAcceptor, SockConnector};

/// Connects until one attempt times out; returns the established streams (kept open).
pub(crate) fn fill_backlog(addr: &InetAddr) -> Vec<wrapper_facade::SockStream> {
    let connector = SockConnector::default();
    let mut held = Vec::new();
    for _ in 0..64 {
        match connector.connect_timeout(addr, Duration::from_millis(200)) {
            Ok(s) => held.push(s),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => return held,
            Err(e) => panic!("unexpected connect error while filling the backlog: {e}"),
        }
    }
    panic!("the accept queue never filled after 64 connections");
}

#[test]
fn connect_deadline_times_out_against_a_full_backlog() {
    let acceptor = SockAcceptor::open(
        &InetAddr::loopback_v4(0),
        &AcceptorOptions::default().backlog(0),
    )
    .unwrap();
    let addr = acceptor.local_addr().unwrap();
    let held = fill_backlog(&addr);
    assert!(
        !held.is_empty(),
        "backlog 0 still queues one connection on Linux"
    );

    let deadline = Instant::now() + Duration::from_millis(100);
    let err = SockConnector::default()
        .connect_deadline(&addr, deadline)
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    // Not a timing threshold: a deadline error must never be reported early.
    assert!(Instant::now() >= deadline);

    // Accepting one frees a slot: the same connect now succeeds well before its deadline.
    let (_first, _) = acceptor.accept().unwrap();
    let stream = SockConnector::default()
        .connect_timeout(&addr, Duration::from_secs(30))
        .unwrap();
    assert!(!stream.is_nonblocking().unwrap());
}

#[test]
fn deadline_already_passed_is_timed_out_without_waiting_for_the_network() {
    let acceptor = SockAcceptor::open(
        &InetAddr::loopback_v4(0),
        &AcceptorOptions::default().backlog(0),
    )
    .unwrap();
    let addr = acceptor.local_addr().unwrap();
    let _held = fill_backlog(&addr);
    let err = SockConnector::default()
        .connect_deadline(&addr, Instant::now())
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
}
