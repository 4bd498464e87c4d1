//! The pipelined client on the reactor against an out-of-order server: every response
//! reaches its initiator; forged, duplicate and malformed responses do not.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use act::Completion;
use act::frame::{FrameDecoder, encode};
use crossbeam_channel::unbounded;
use parking_lot::Mutex;
use reactor::{Interest, Reactor, Remote};

use crate::pipeline::{Mode, PipelinedClient, Request, spawn_server};

#[test]
fn out_of_order_responses_reach_their_initiators() {
    const N: usize = 210; // a multiple of the server's batch
    let (addr, server) = spawn_server(7).unwrap();
    let mut client = PipelinedClient::connect(addr, Mode::Pipelined, 49).unwrap();
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    for i in 0..N {
        let arrivals = arrivals.clone();
        let payload = format!("request-{i}-{}", "x".repeat(i % 13));
        let want = payload.to_ascii_uppercase().into_bytes();
        client.submit(Request::new(payload, move |c: Completion<Vec<u8>>| {
            assert_eq!(
                c,
                Completion::Done(want),
                "response {i} reached its own handler"
            );
            arrivals.lock().push(i);
        }));
    }
    let stats = client.stats();
    let mut reactor = Reactor::new().unwrap();
    reactor
        .register(Box::new(client), Interest::READ | Interest::WRITE)
        .unwrap();
    reactor.serve().unwrap();
    drop(reactor);
    assert_eq!(server.join().unwrap().unwrap(), N);

    let arrivals = arrivals.lock().clone();
    assert_eq!(stats.completed.load(Ordering::Relaxed), N);
    assert_eq!(stats.rejected.load(Ordering::Relaxed), 0);
    let mut sorted = arrivals.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        (0..N).collect::<Vec<_>>(),
        "every request answered once"
    );
    assert_eq!(
        &arrivals[..7],
        &[6, 5, 4, 3, 2, 1, 0],
        "the server answered out of order"
    );
}

#[test]
fn requests_posted_from_other_threads_while_the_loop_runs() {
    let (addr, server) = spawn_server(1).unwrap();
    let client = PipelinedClient::connect(addr, Mode::Pipelined, 16)
        .unwrap()
        .end_when_idle(false);
    let mut reactor = Reactor::new().unwrap();
    let token = reactor.register(Box::new(client), Interest::READ).unwrap();
    let remote = reactor.remote();
    let (done, done_rx) = unbounded();
    let posters: Vec<_> = (0..4)
        .map(|t| {
            let (remote, done) = (remote.clone(), done.clone());
            std::thread::spawn(move || {
                for i in 0..25 {
                    let word = format!("t{t}-{i}");
                    let want = word.to_ascii_uppercase().into_bytes();
                    let done = done.clone();
                    let request = Request::new(word, move |c: Completion<Vec<u8>>| {
                        done.send(c == Completion::Done(want)).unwrap();
                    });
                    remote.notify(token, Box::new(request)).unwrap();
                }
            })
        })
        .collect();
    drop(done);
    let ender = {
        let remote = remote.clone();
        std::thread::spawn(move || {
            let results: Vec<bool> = done_rx.iter().take(100).collect();
            remote.end();
            results
        })
    };
    reactor.serve().unwrap();
    for p in posters {
        p.join().unwrap();
    }
    let results = ender.join().unwrap();
    assert_eq!(results.len(), 100);
    assert!(
        results.iter().all(|ok| *ok),
        "each response matched its request"
    );
    drop(reactor);
    assert_eq!(server.join().unwrap().unwrap(), 100);
}

/// A server that answers the first request with a forged ACT, the right one, a duplicate of
/// the right one, and then `tail` (raw bytes), and closes.
fn rogue_server(tail: Vec<u8>) -> (std::net::SocketAddr, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut decoder = FrameDecoder::default();
        let mut buf = [0u8; 1024];
        let frame = loop {
            let n = stream.read(&mut buf).unwrap();
            decoder.push(&buf[..n]);
            if let Some(f) = decoder.decode().unwrap() {
                break f;
            }
        };
        let mut out = Vec::new();
        encode(frame.act ^ (1 << 50), b"FORGED", &mut out).unwrap();
        encode(frame.act, b"RIGHT", &mut out).unwrap();
        encode(frame.act, b"AGAIN", &mut out).unwrap();
        out.extend_from_slice(&tail);
        stream.write_all(&out).unwrap();
        // Half-close, then wait for the client to close: closing with unread input would
        // send a reset, which may discard what the client has not read yet.
        stream.shutdown(std::net::Shutdown::Write).unwrap();
        let _ = std::io::copy(&mut stream, &mut std::io::sink());
    });
    (addr, handle)
}

fn run_against_rogue(tail: Vec<u8>, requests: usize) -> (Vec<Completion<Vec<u8>>>, usize, usize) {
    let (addr, server) = rogue_server(tail);
    let mut client = PipelinedClient::connect(addr, Mode::Pipelined, 8)
        .unwrap()
        .end_when_idle(false);
    let seen = Arc::new(Mutex::new(Vec::new()));
    for i in 0..requests {
        let seen = seen.clone();
        client.submit(Request::new(format!("r{i}"), move |c| seen.lock().push(c)));
    }
    let stats = client.stats();
    let mut reactor = Reactor::new().unwrap();
    reactor
        .register(Box::new(client), Interest::READ | Interest::WRITE)
        .unwrap();
    reactor.serve().unwrap();
    server.join().unwrap();
    let seen = seen.lock().clone();
    (
        seen,
        stats.completed.load(Ordering::Relaxed),
        stats.rejected.load(Ordering::Relaxed),
    )
}

#[test]
fn forged_and_duplicate_responses_are_refused() {
    let (seen, completed, rejected) = run_against_rogue(Vec::new(), 1);
    assert_eq!(seen, vec![Completion::Done(b"RIGHT".to_vec())]);
    assert_eq!((completed, rejected), (1, 2));
}

#[test]
fn a_malformed_stream_closes_the_client_and_abandons_the_rest() {
    // An oversized header after the good frames: the client closes the connection and the
    // second request, never answered, learns it once.
    let mut tail = vec![0xff; 4];
    tail.extend_from_slice(&[0; 8]);
    let (seen, completed, rejected) = run_against_rogue(tail, 2);
    assert_eq!(
        seen,
        vec![Completion::Done(b"RIGHT".to_vec()), Completion::Abandoned]
    );
    assert_eq!((completed, rejected), (1, 2));
}

#[test]
fn one_at_a_time_the_act_is_implicit() {
    let (addr, server) = spawn_server(1).unwrap();
    let mut client = PipelinedClient::connect(addr, Mode::OneAtATime, 8).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    for word in ["one", "two", "three"] {
        let seen = seen.clone();
        client.submit(Request::new(word, move |c: Completion<Vec<u8>>| {
            seen.lock()
                .push(String::from_utf8(c.ok().unwrap()).unwrap())
        }));
    }
    let mut reactor = Reactor::new().unwrap();
    reactor
        .register(Box::new(client), Interest::READ | Interest::WRITE)
        .unwrap();
    reactor.serve().unwrap();
    drop(reactor);
    assert_eq!(server.join().unwrap().unwrap(), 3);
    assert_eq!(*seen.lock(), vec!["ONE", "TWO", "THREE"]);
}
