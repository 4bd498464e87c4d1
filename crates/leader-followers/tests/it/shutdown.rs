//! Shutdown under load: every thread joins and every handler is closed exactly once.

use std::io::Write;
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::thread;

use leader_followers::{HalfSyncHalfAsync, LeaderFollowers};
use pattern_core::{Context, Dispatcher, Disposition, EventHandler, Interest, Message};

use crate::support::{Acceptor, PATIENCE, Tally, messages};

const CLIENTS: usize = 50;

/// Ends the dispatcher when told to, from inside an upcall.
struct Stopper;

impl EventHandler for Stopper {
    fn handle_notify(&mut self, ctx: &mut dyn Context, _m: Message) -> Disposition {
        ctx.end();
        Disposition::Continue
    }
}

fn shutdown_under_load(mut d: Box<dyn Dispatcher>, from_inside: bool) {
    let tally = Arc::new(Tally::default());
    let (tx, _reports) = mpsc::channel();
    let acceptor = Acceptor::bind(tally.clone(), tx, false);
    let addr = acceptor.listener.local_addr().expect("addr");
    d.register(Box::new(acceptor), Interest::READ)
        .expect("register");
    let stopper = d
        .register(Box::new(Stopper), Interest::NONE)
        .expect("register");
    let remote = d.remote();
    let pool = thread::spawn(move || d.run());
    let (connected_tx, connected) = mpsc::channel();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let connected_tx = connected_tx.clone();
            thread::spawn(move || {
                let mut c = TcpStream::connect(addr).expect("connect");
                let _ = connected_tx.send(());
                let burst = messages(0, 512);
                // Write until the server goes away.
                while c.write_all(&burst).is_ok() {}
            })
        })
        .collect();
    for _ in 0..CLIENTS {
        connected.recv_timeout(PATIENCE).expect("client connected");
    }
    // Wait until the pool is busy with the load.
    let (seen_tx, seen) = mpsc::channel();
    *tally.milestone.lock().expect("milestone") = Some((CLIENTS, CLIENTS * 2048, seen_tx));
    seen.recv_timeout(PATIENCE)
        .unwrap_or_else(|_| panic!("load not reached: {tally:?}"));
    if from_inside {
        remote.notify(stopper, Box::new(())).expect("notify");
    } else {
        remote.end();
    }
    pool.join().expect("pool thread").expect("run");
    for c in clients {
        c.join().expect("client");
    }
    assert_eq!(tally.accepted.load(Ordering::SeqCst), CLIENTS);
    // Every connection and the acceptor closed, once each (the stopper reports nothing).
    assert_eq!(tally.closes.load(Ordering::SeqCst), CLIENTS + 1);
    assert_eq!(tally.double_closes.load(Ordering::SeqCst), 0);
    assert_eq!(tally.overlaps.load(Ordering::SeqCst), 0);
    assert!(
        matches!(
            remote.post(Box::new(|_| {})),
            Err(pattern_core::DispatchError::ShutDown)
        ),
        "a finished pool refuses work"
    );
}

#[test]
fn leader_followers_ended_by_remote_under_load() {
    shutdown_under_load(Box::new(LeaderFollowers::new(4).expect("pool")), false);
}

#[test]
fn leader_followers_ended_from_an_upcall_under_load() {
    shutdown_under_load(Box::new(LeaderFollowers::new(4).expect("pool")), true);
}

#[test]
fn half_sync_half_async_ended_under_load() {
    shutdown_under_load(
        Box::new(HalfSyncHalfAsync::new(4, 16).expect("pool")),
        false,
    );
}
