//! The proactor's contract, one test per promise (the completion-side counterpart of
//! `pattern_core::conformance`). Everything runs on the test thread: the test is the
//! dispatcher's owner and drives it with `turn`/`run`; nothing sleeps.

mod common;

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::Duration;

use act::CompletionToken;
use common::{Ev, FOREVER, Log, Recorder, Res, of, read, terminal_ops};
use proactor::{
    Acceptor, CloseReason, CompletionHandler, Config, Connector, Error, Initiator, OpId, Outcome,
    Proactor, SetupError,
};

fn log() -> Log {
    Rc::new(RefCell::new(Vec::new()))
}

fn proactor() -> Proactor {
    Proactor::new().unwrap()
}

#[test]
fn a_read_completes_with_the_data_in_the_buffer() {
    let (log, mut p) = (log(), proactor());
    let (mut peer, sock) = UnixStream::pair().unwrap();
    p.register(Recorder::new(1, sock, &log).on_open(|cx, s| {
        read(cx, s, 16);
    }));
    peer.write_all(b"hello").unwrap();
    p.run().unwrap();
    let evs = of(&log, 1);
    assert!(
        matches!(&evs[1], Ev::Read(1, _, Res::Done(5), data) if data == b"hello"),
        "{evs:?}"
    );
    assert_eq!(evs[2], Ev::Close(1, CloseReason::Finished));
    assert_eq!((p.in_flight(), p.handlers()), (0, 0));
}

#[test]
fn a_write_hands_its_buffer_back_with_the_count() {
    let (log, mut p) = (log(), proactor());
    let (mut peer, sock) = UnixStream::pair().unwrap();
    p.register(Recorder::new(1, sock, &log).on_open(|cx, s| {
        cx.write(s.as_fd(), b"pong!".to_vec()).unwrap();
    }));
    p.run().unwrap();
    assert!(matches!(of(&log, 1)[1], Ev::Write(1, _, Res::Done(5), 5)));
    let mut got = [0; 5];
    peer.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"pong!");
}

#[test]
fn a_timeout_fires_once() {
    let (log, mut p) = (log(), proactor());
    let (_peer, sock) = UnixStream::pair().unwrap();
    p.register(Recorder::new(1, sock, &log).on_open(|cx, _| {
        cx.timeout(Duration::from_millis(1)).unwrap();
    }));
    p.run().unwrap();
    let evs = of(&log, 1);
    assert_eq!(evs.len(), 3, "{evs:?}");
    assert!(matches!(evs[1], Ev::Timeout(1, _, Res::Done(0))));
}

#[test]
fn a_cancelled_operation_completes_exactly_once_as_cancelled() {
    let (log, mut p) = (log(), proactor());
    let (_peer, sock) = UnixStream::pair().unwrap();
    p.register(Recorder::new(1, sock, &log).on_open(|cx, s| {
        let op = read(cx, s, 8);
        cx.cancel(op).unwrap();
        // A second cancel of the same operation is absorbed: still one completion.
        cx.cancel(op).unwrap();
        let t = cx.timeout(FOREVER).unwrap();
        cx.cancel(t).unwrap();
    }));
    p.run().unwrap();
    let evs = of(&log, 1);
    assert_eq!(evs.len(), 4, "{evs:?}");
    assert!(
        evs.iter()
            .any(|e| matches!(e, Ev::Read(1, _, Res::Cancelled, _)))
    );
    assert!(
        evs.iter()
            .any(|e| matches!(e, Ev::Timeout(1, _, Res::Cancelled)))
    );
    assert_eq!(evs[3], Ev::Close(1, CloseReason::Finished));
}

#[test]
fn cancel_racing_a_completion_yields_done_or_cancelled_never_both() {
    for _ in 0..20 {
        let (log, mut p) = (log(), proactor());
        let (mut peer, sock) = UnixStream::pair().unwrap();
        peer.write_all(b"ready").unwrap();
        p.register(Recorder::new(1, sock, &log).on_open(|cx, s| {
            let op = read(cx, s, 8);
            cx.cancel(op).unwrap();
        }));
        p.run().unwrap();
        let evs = of(&log, 1);
        let reads: Vec<_> = evs.iter().filter(|e| matches!(e, Ev::Read(..))).collect();
        assert_eq!(reads.len(), 1, "{evs:?}");
        assert!(
            matches!(reads[0], Ev::Read(1, _, Res::Cancelled, d) if d.is_empty())
                || matches!(reads[0], Ev::Read(1, _, Res::Done(5), d) if d == b"ready"),
            "{evs:?}"
        );
    }
}

#[test]
fn cancelling_an_ended_operation_is_refused() {
    let (log, mut p) = (log(), proactor());
    let (mut peer, sock) = UnixStream::pair().unwrap();
    let ops = Rc::new(RefCell::new(Vec::new()));
    let seen = ops.clone();
    let id = p.register(Recorder::new(1, sock, &log).on_open(move |cx, s| {
        seen.borrow_mut().push(read(cx, s, 8));
        cx.timeout(FOREVER).unwrap();
    }));
    peer.write_all(b"x").unwrap();
    p.turn().unwrap();
    let done = ops.borrow()[0];
    let refused = p.initiate(id, |cx| cx.cancel(done)).unwrap();
    assert!(matches!(refused, Err(Error::NotInFlight { op }) if op == done));
    p.shutdown().unwrap();
}

#[test]
fn closing_a_handler_cancels_its_operations_and_closes_once_after_the_last() {
    let (log, mut p) = (log(), proactor());
    let (_peer, sock) = UnixStream::pair().unwrap();
    let id = p.register(Recorder::new(1, sock, &log).on_open(|cx, s| {
        for _ in 0..3 {
            read(cx, s, 8);
        }
        cx.timeout(FOREVER).unwrap();
    }));
    assert_eq!(p.in_flight(), 4);
    p.close(id).unwrap();
    assert!(
        matches!(p.close(id), Err(Error::Closed)),
        "closing twice is refused"
    );
    // A closing handler may start nothing.
    let refused = p.initiate(id, |cx| cx.timeout(FOREVER)).unwrap();
    assert!(matches!(refused, Err(Error::Closed)));
    p.run().unwrap();
    let evs = of(&log, 1);
    assert_eq!(evs.len(), 6, "{evs:?}");
    assert!(evs[1..5].iter().all(|e| matches!(
        e,
        Ev::Read(1, _, Res::Cancelled, _) | Ev::Timeout(1, _, Res::Cancelled)
    )));
    assert_eq!(evs[5], Ev::Close(1, CloseReason::Removed));
    assert!(
        p.initiate(id, |_| ()).is_none(),
        "a closed handler's id is dead"
    );
}

#[test]
fn a_handler_closing_itself_is_closed_once_with_requested() {
    let (log, mut p) = (log(), proactor());
    let (_peer, sock) = UnixStream::pair().unwrap();
    p.register(Recorder::new(1, sock, &log).on_open(|cx, s| {
        read(cx, s, 8);
        cx.close();
        assert!(matches!(cx.timeout(FOREVER), Err(Error::Closed)));
    }));
    p.run().unwrap();
    let evs = of(&log, 1);
    assert!(
        matches!(evs[1], Ev::Read(1, _, Res::Cancelled, _)),
        "{evs:?}"
    );
    assert_eq!(evs[2..], [Ev::Close(1, CloseReason::Requested)]);
}

#[test]
fn a_panicking_handler_is_closed_as_panicked_and_the_loop_goes_on() {
    let (log, mut p) = (log(), proactor());
    let (mut peer1, sock1) = UnixStream::pair().unwrap();
    let (mut peer2, sock2) = UnixStream::pair().unwrap();
    let mut bad = Recorder::new(1, sock1, &log).on_open(|cx, s| {
        read(cx, s, 8);
        cx.timeout(FOREVER).unwrap();
    });
    bad.panic_on_read = true;
    p.register(bad);
    p.register(Recorder::new(2, sock2, &log).on_open(|cx, s| {
        read(cx, s, 8);
    }));
    peer1.write_all(b"boom").unwrap();
    while p.stats().panics == 0 {
        p.turn().unwrap();
    }
    peer2.write_all(b"fine").unwrap();
    p.run().unwrap();
    let bad = of(&log, 1);
    assert_eq!(
        bad.last(),
        Some(&Ev::Close(1, CloseReason::Panicked)),
        "{bad:?}"
    );
    assert_eq!(bad.iter().filter(|e| matches!(e, Ev::Close(..))).count(), 1);
    // The panicked handler's timeout was cancelled and not upcalled.
    assert!(!bad.iter().any(|e| matches!(e, Ev::Timeout(..))));
    let good = of(&log, 2);
    assert!(
        matches!(&good[1], Ev::Read(2, _, Res::Done(4), d) if d == b"fine"),
        "{good:?}"
    );
    assert_eq!(p.stats().panics, 1);
}

#[test]
fn operations_beyond_the_cap_are_refused_with_the_buffer_back() {
    let (log, mut p) = (
        log(),
        Proactor::with_config(Config {
            max_in_flight: 2,
            ..Config::default()
        })
        .unwrap(),
    );
    let (mut peer, sock) = UnixStream::pair().unwrap();
    let refused = Rc::new(RefCell::new(None));
    let r = refused.clone();
    let id = p.register(Recorder::new(1, sock, &log).on_open(move |cx, s| {
        read(cx, s, 8);
        read(cx, s, 8);
        let e = cx.read(s.as_fd(), vec![7; 3]).unwrap_err();
        *r.borrow_mut() = Some(e);
    }));
    let e = refused.borrow_mut().take().unwrap();
    assert!(matches!(e.error, Error::TooManyInFlight { limit: 2 }));
    assert_eq!(e.buf, vec![7; 3]);
    assert_eq!(p.in_flight(), 2);
    peer.write_all(b"a").unwrap();
    p.turn().unwrap();
    assert_eq!(p.in_flight(), 1);
    let again = p.initiate(id, |cx| cx.timeout(FOREVER)).unwrap();
    assert!(again.is_ok(), "room again after a completion");
    p.shutdown().unwrap();
}

#[test]
fn forged_and_stale_completions_are_counted_and_dropped() {
    let (log, mut p) = (log(), proactor());
    let (mut peer, sock) = UnixStream::pair().unwrap();
    let id = p.register(Recorder::new(1, sock, &log).on_open(|cx, s| {
        read(cx, s, 8);
        cx.timeout(FOREVER).unwrap();
    }));
    peer.write_all(b"1").unwrap();
    p.turn().unwrap();
    let stale = terminal_ops(&log)[0];
    let before = log.borrow().len();
    p.inject_completion(stale.to_raw()).unwrap();
    p.inject_completion(CompletionToken::from_raw(0x0bad_f00d_dead_beef).to_raw())
        .unwrap();
    while p.stats().refused < 2 {
        p.turn().unwrap();
    }
    assert_eq!(log.borrow().len(), before, "no handler saw them");
    assert_eq!(p.stats().refused, 2);
    p.close(id).unwrap();
    p.run().unwrap();
    assert_eq!(
        of(&log, 1).last(),
        Some(&Ev::Close(1, CloseReason::Removed))
    );
}

#[test]
fn upcalls_never_overlap_even_when_handlers_register_and_close_others() {
    let (log, mut p) = (log(), proactor());
    let busy = Rc::new(RefCell::new(false));
    let mut peers = Vec::new();
    for name in 0..4 {
        let (peer, sock) = UnixStream::pair().unwrap();
        peers.push(peer);
        let (inner_log, inner_busy) = (log.clone(), busy.clone());
        let mut r = Recorder::new(name, sock, &log).on_open(move |cx, s| {
            read(cx, s, 8);
            // Registered from inside an upcall: its on_open must wait for this one to end.
            let (_p, s2) = UnixStream::pair().unwrap();
            let mut child = Recorder::new(100 + name, s2, &inner_log);
            child.busy = inner_busy.clone();
            let child = cx.register(child);
            cx.close_handler(child).unwrap();
        });
        r.busy = busy.clone();
        p.register(r);
    }
    for peer in &mut peers {
        peer.write_all(b"x").unwrap();
    }
    p.run().unwrap();
    for name in 0..4 {
        assert_eq!(
            of(&log, name).last(),
            Some(&Ev::Close(name, CloseReason::Finished))
        );
        assert_eq!(
            of(&log, 100 + name),
            [
                Ev::Open(100 + name),
                Ev::Close(100 + name, CloseReason::Removed)
            ]
        );
    }
}

#[test]
fn a_continuous_read_delivers_chunks_until_end_of_stream() {
    let (log, mut p) = (log(), proactor());
    let (mut peer, sock) = UnixStream::pair().unwrap();
    p.register(Recorder::new(1, sock, &log).on_open(|cx, s| {
        cx.read_continuous(s.as_fd(), vec![0; 64]).unwrap();
    }));
    for chunk in [&b"one"[..], b"two", b"three"] {
        peer.write_all(chunk).unwrap();
        let n = log.borrow().len();
        while log.borrow().len() == n {
            p.turn().unwrap();
        }
    }
    drop(peer);
    p.run().unwrap();
    let evs = of(&log, 1);
    let op = match &evs[1] {
        Ev::Received(1, op, d) if d == b"one" => *op,
        other => panic!("{other:?}"),
    };
    assert_eq!(evs[2], Ev::Received(1, op, b"two".to_vec()));
    assert_eq!(evs[3], Ev::Received(1, op, b"three".to_vec()));
    assert_eq!(evs[4], Ev::Read(1, op, Res::Done(0), Vec::new()));
    assert_eq!(evs[5], Ev::Close(1, CloseReason::Finished));
}

#[test]
fn a_cancelled_continuous_read_ends_once() {
    let (log, mut p) = (log(), proactor());
    let (mut peer, sock) = UnixStream::pair().unwrap();
    let id = p.register(Recorder::new(1, sock, &log).on_open(|cx, s| {
        cx.read_continuous(s.as_fd(), vec![0; 64]).unwrap();
    }));
    peer.write_all(b"one").unwrap();
    p.turn().unwrap();
    p.close(id).unwrap();
    p.run().unwrap();
    let evs = of(&log, 1);
    assert_eq!(
        evs.iter().filter(|e| matches!(e, Ev::Read(..))).count(),
        1,
        "{evs:?}"
    );
    assert!(matches!(
        evs[evs.len() - 2],
        Ev::Read(1, _, Res::Cancelled, _)
    ));
    assert_eq!(evs.last(), Some(&Ev::Close(1, CloseReason::Removed)));
}

#[test]
fn shutdown_closes_every_handler_once() {
    let (log, mut p) = (log(), proactor());
    let mut peers = Vec::new();
    for name in 0..3 {
        let (peer, sock) = UnixStream::pair().unwrap();
        peers.push(peer);
        p.register(Recorder::new(name, sock, &log).on_open(|cx, s| {
            read(cx, s, 8);
            cx.timeout(FOREVER).unwrap();
        }));
    }
    p.shutdown().unwrap();
    for name in 0..3 {
        let evs = of(&log, name);
        assert_eq!(evs.len(), 4, "{evs:?}");
        assert_eq!(evs[3], Ev::Close(name, CloseReason::Shutdown));
    }
    assert_eq!((p.handlers(), p.in_flight(), p.stats().closed), (0, 0, 3));
}

#[test]
fn an_unacceptable_ring_is_refused_with_the_errno() {
    let err = Proactor::with_config(Config {
        entries: u32::MAX,
        defer_taskrun: false,
        ..Config::default()
    })
    .unwrap_err();
    match err {
        Error::Setup(SetupError::Refused { errno, name, .. }) => {
            assert_eq!((errno, name), (22, "EINVAL"));
        }
        other => panic!("{other:?}"),
    }
}

/// Sends its bytes once and reports the outcome with the buffer that came back.
struct SendOnce(
    UnixStream,
    Vec<u8>,
    std::sync::mpsc::Sender<(Option<usize>, Vec<u8>)>,
);

impl CompletionHandler for SendOnce {
    fn on_open(&mut self, cx: &mut Initiator<'_>) {
        let buf = std::mem::take(&mut self.1);
        cx.send(self.0.as_fd(), buf).unwrap();
    }
    fn on_write(&mut self, _: &mut Initiator<'_>, _: OpId, o: Outcome<usize>, buf: Vec<u8>) {
        let n = match o {
            Outcome::Done(n) => Some(n),
            Outcome::Failed(e) => {
                assert_eq!(e.raw_os_error(), Some(32), "EPIPE: {e}");
                None
            }
            Outcome::Cancelled => panic!("nobody cancelled"),
        };
        self.2.send((n, buf)).unwrap();
    }
}

#[test]
fn a_send_completes_with_the_count_and_the_buffer_back_or_epipe_on_a_closed_peer() {
    let mut p = proactor();
    let (a, mut b) = UnixStream::pair().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    p.register(SendOnce(a, b"ping".to_vec(), tx.clone()));
    p.run().unwrap();
    assert_eq!(rx.recv().unwrap(), (Some(4), b"ping".to_vec()));
    let mut got = [0u8; 4];
    b.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"ping");

    let (a, b) = UnixStream::pair().unwrap();
    drop(b);
    p.register(SendOnce(a, b"lost".to_vec(), tx));
    p.run().unwrap();
    assert_eq!(rx.recv().unwrap(), (None, b"lost".to_vec()));
}

#[test]
fn io_uring_refused_by_seccomp_is_a_setup_error_naming_eperm() {
    // A seccomp filter (as a container's default profile has) on a thread of our own: the
    // proactor built there cannot set up its ring; this thread's still can.
    let message = std::thread::spawn(|| {
        wrapper_facade::uring::refuse_in_this_thread().expect("seccomp filter");
        match Proactor::new() {
            Err(Error::Setup(e @ SetupError::Unsupported { errno: 1, .. })) => e.to_string(),
            other => panic!("{other:?}"),
        }
    })
    .join()
    .unwrap();
    assert!(
        message.starts_with("io_uring is unavailable here (errno 1: EPERM"),
        "{message}"
    );
    let err = Proactor::new().err();
    assert!(err.is_none(), "{err:?}");
}

/// Echoes what it reads, then finishes at end of stream.
struct Echo(TcpStream);

impl CompletionHandler for Echo {
    fn on_open(&mut self, cx: &mut Initiator<'_>) {
        cx.read(self.0.as_fd(), vec![0; 64]).unwrap();
    }
    fn on_read(&mut self, cx: &mut Initiator<'_>, _: OpId, o: Outcome<usize>, mut buf: Vec<u8>) {
        if let Outcome::Done(n @ 1..) = o {
            buf.truncate(n);
            cx.write(self.0.as_fd(), buf).unwrap();
        }
    }
    fn on_write(&mut self, cx: &mut Initiator<'_>, _: OpId, _: Outcome<usize>, mut buf: Vec<u8>) {
        buf.resize(64, 0);
        cx.read(self.0.as_fd(), buf).unwrap();
    }
}

#[test]
fn acceptor_and_connector_set_up_service_handlers() {
    let mut p = proactor();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    p.register(Acceptor::with_limit(listener, 1, |s| Box::new(Echo(s))));
    let got = Rc::new(RefCell::new(None));
    let g = got.clone();
    p.register(Connector::new(
        addr,
        move |r: std::io::Result<TcpStream>| {
            *g.borrow_mut() = Some(r.unwrap());
            None
        },
    ));
    while got.borrow().is_none() {
        p.turn().unwrap();
    }
    let mut client = got.borrow_mut().take().unwrap();
    client.write_all(b"echo me").unwrap();
    // The echo handler lives on the dispatcher; drive it until the reply can be read.
    let mut reply = [0; 7];
    client.set_nonblocking(true).unwrap();
    let mut have = 0;
    while have < 7 {
        p.turn().unwrap();
        if let Ok(n) = client.read(&mut reply[have..]) {
            have += n;
        }
    }
    assert_eq!(&reply, b"echo me");
    drop(client);
    p.run().unwrap();
    assert_eq!(p.handlers(), 0);
}

#[test]
fn a_refused_connect_is_reported_to_the_connector() {
    let mut p = proactor();
    let addr = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let got = Rc::new(RefCell::new(None));
    let g = got.clone();
    p.register(Connector::new(
        addr,
        move |r: std::io::Result<TcpStream>| {
            *g.borrow_mut() = Some(r.map(|_| ()).map_err(|e| e.kind()));
            None
        },
    ));
    p.run().unwrap();
    assert_eq!(
        got.borrow_mut().take(),
        Some(Err(std::io::ErrorKind::ConnectionRefused))
    );
}

/// Counts connections from a multishot accept and closes after `want`.
struct MultiAcceptor {
    listener: TcpListener,
    want: usize,
    got: Rc<RefCell<Vec<String>>>,
}

impl CompletionHandler for MultiAcceptor {
    fn on_open(&mut self, cx: &mut Initiator<'_>) {
        cx.accept_multishot(self.listener.as_fd()).unwrap();
    }
    fn on_accepted(&mut self, cx: &mut Initiator<'_>, _: OpId, s: TcpStream) {
        self.got
            .borrow_mut()
            .push(format!("conn {}", s.peer_addr().unwrap()));
        if self.got.borrow().len() == self.want {
            cx.close();
        }
    }
    fn on_accept(&mut self, _: &mut Initiator<'_>, _: OpId, o: Outcome<TcpStream>) {
        self.got
            .borrow_mut()
            .push(format!("ended cancelled={}", o.is_cancelled()));
    }
    fn on_close(&mut self, reason: CloseReason) {
        self.got.borrow_mut().push(format!("closed {reason:?}"));
    }
}

#[test]
fn a_multishot_accept_delivers_each_connection_and_ends_once() {
    let mut p = proactor();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let got = Rc::new(RefCell::new(Vec::new()));
    p.register(MultiAcceptor {
        listener,
        want: 3,
        got: got.clone(),
    });
    let clients: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
    p.run().unwrap();
    let got = got.borrow();
    assert_eq!(got.len(), 5, "{got:?}");
    for c in &clients {
        assert!(
            got.contains(&format!("conn {}", c.local_addr().unwrap())),
            "{got:?}"
        );
    }
    assert_eq!(got[3..], ["ended cancelled=true", "closed Requested"]);
}

/// The kernel ends a multishot accept by itself when the completion queue is full (the last
/// connection comes with the end, without `IORING_CQE_F_MORE`): the proactor hands that
/// connection over and goes on accepting under the same operation, so a burst of clients
/// larger than the queue loses none and does not end the accept.
#[test]
fn a_multishot_accept_outlives_a_burst_that_fills_the_completion_queue() {
    // Four submission entries: a completion queue of eight.
    let mut p = Proactor::with_config(Config {
        entries: 4,
        ..Config::default()
    })
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let got = Rc::new(RefCell::new(Vec::new()));
    const BURST: usize = 40;
    // Every client is in the listen queue before the accept is submitted.
    let clients: Vec<TcpStream> = (0..BURST)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    p.register(MultiAcceptor {
        listener,
        want: BURST + 1,
        got: got.clone(),
    });
    // Until every client is in, or the accept ends (the failure this test looks for).
    while got.borrow().len() < BURST && !got.borrow().iter().any(|g| g.starts_with("ended")) {
        p.turn().unwrap();
    }
    assert!(
        got.borrow().iter().all(|g| g.starts_with("conn ")),
        "the accept ended during the burst: {:?}",
        got.borrow()
    );
    // Still accepting after the burst.
    let late = TcpStream::connect(addr).unwrap();
    p.run().unwrap();
    let got = got.borrow();
    for c in clients.iter().chain([&late]) {
        assert!(
            got.contains(&format!("conn {}", c.local_addr().unwrap())),
            "{got:?}"
        );
    }
    assert_eq!(got.len(), BURST + 3, "{got:?}");
    assert_eq!(
        got[BURST + 1..],
        ["ended cancelled=true", "closed Requested"]
    );
}

/// Per ended read: the bytes received, the operations they came under, and the outcome.
type ReadLog = Rc<RefCell<Vec<(Vec<u8>, BTreeSet<OpId>, String)>>>;

/// One connection's multishot read, for the burst test below: what it received, in order,
/// under which operations, and how it ended.
struct Sink {
    sock: UnixStream,
    got: Vec<u8>,
    ops: BTreeSet<OpId>,
    log: ReadLog,
}

impl CompletionHandler for Sink {
    fn on_open(&mut self, cx: &mut Initiator<'_>) {
        cx.read_multishot(self.sock.as_fd()).unwrap();
    }
    fn on_received(&mut self, _: &mut Initiator<'_>, op: OpId, data: &[u8]) {
        self.ops.insert(op);
        self.got.extend_from_slice(data);
    }
    fn on_read(&mut self, _: &mut Initiator<'_>, _: OpId, o: Outcome<usize>, _: Vec<u8>) {
        let end = format!("{o:?}");
        let got = std::mem::take(&mut self.got);
        let ops = std::mem::take(&mut self.ops);
        self.log.borrow_mut().push((got, ops, end));
    }
}

/// The kernel ends a multishot read by itself when it cannot post a completion (a full
/// completion queue), with the chunk it had in that last completion: every chunk still
/// arrives, in order, under one operation per connection that ends only at end of stream.
#[test]
fn multishot_reads_outlive_a_burst_that_fills_the_completion_queue() {
    let mut p = Proactor::with_config(Config {
        entries: 4,
        provided_buffers: Some((64, 16)),
        ..Config::default()
    })
    .unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    let mut peers = Vec::new();
    for _ in 0..24 {
        let (peer, sock) = UnixStream::pair().unwrap();
        peers.push(peer);
        p.register(Sink {
            sock,
            got: Vec::new(),
            ops: BTreeSet::new(),
            log: log.clone(),
        });
    }
    // Three rounds of a chunk from every peer, each round written before the proactor
    // turns, so two dozen completions meet a queue of eight.
    let mut sent = vec![Vec::new(); peers.len()];
    for round in 0..3 {
        for (i, peer) in peers.iter_mut().enumerate() {
            let chunk = format!("{i}:{round};");
            peer.write_all(chunk.as_bytes()).unwrap();
            sent[i].extend_from_slice(chunk.as_bytes());
        }
        p.turn().unwrap();
    }
    drop(peers);
    p.run().unwrap();
    let log = log.borrow();
    assert_eq!(log.len(), sent.len(), "every read ended once");
    let mut got: Vec<Vec<u8>> = Vec::new();
    for (data, ops, end) in log.iter() {
        assert_eq!(ops.len(), 1, "one operation throughout: {ops:?}");
        assert_eq!(end, "Done(0)", "ended by end of stream only");
        got.push(data.clone());
    }
    got.sort();
    sent.sort();
    assert_eq!(got, sent);
}

fn with_buffers(count: u16, size: usize) -> Proactor {
    Proactor::with_config(Config {
        provided_buffers: Some((count, size)),
        ..Config::default()
    })
    .unwrap()
}

#[test]
fn a_multishot_read_delivers_chunks_from_provided_buffers_until_end_of_stream() {
    let (log, mut p) = (log(), with_buffers(2, 4));
    let (mut peer, sock) = UnixStream::pair().unwrap();
    p.register(Recorder::new(1, sock, &log).on_open(|cx, s| {
        cx.read_multishot(s.as_fd()).unwrap();
    }));
    // More chunks than buffers: each buffer goes back to the kernel before the upcall.
    let mut sent = Vec::new();
    for chunk in [&b"one"[..], b"two", b"thre", b"e", b"four", b"five"] {
        peer.write_all(chunk).unwrap();
        sent.extend_from_slice(chunk);
        let n = log.borrow().len();
        while log.borrow().len() == n {
            p.turn().unwrap();
        }
    }
    drop(peer);
    p.run().unwrap();
    let evs = of(&log, 1);
    let mut got = Vec::new();
    let mut ops = std::collections::BTreeSet::new();
    for e in &evs[1..evs.len() - 2] {
        match e {
            Ev::Received(1, op, d) => {
                ops.insert(*op);
                got.extend_from_slice(d);
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(got, sent);
    assert_eq!(ops.len(), 1, "one operation throughout");
    let op = *ops.iter().next().unwrap();
    assert_eq!(
        evs[evs.len() - 2],
        Ev::Read(1, op, Res::Done(0), Vec::new())
    );
    assert_eq!(evs[evs.len() - 1], Ev::Close(1, CloseReason::Finished));
}

#[test]
fn a_cancelled_multishot_read_ends_once() {
    let (log, mut p) = (log(), with_buffers(4, 16));
    let (mut peer, sock) = UnixStream::pair().unwrap();
    let id = p.register(Recorder::new(1, sock, &log).on_open(|cx, s| {
        cx.read_multishot(s.as_fd()).unwrap();
    }));
    peer.write_all(b"data").unwrap();
    while log.borrow().len() < 2 {
        p.turn().unwrap();
    }
    p.close(id).unwrap();
    p.run().unwrap();
    let evs = of(&log, 1);
    assert_eq!(
        evs[1],
        Ev::Received(1, terminal_ops(&log)[0], b"data".to_vec())
    );
    assert!(
        matches!(evs[2], Ev::Read(1, _, Res::Cancelled, _)),
        "{evs:?}"
    );
    assert_eq!(evs[3..], [Ev::Close(1, CloseReason::Removed)]);
}

#[test]
fn a_multishot_read_without_provided_buffers_is_refused() {
    let (log, mut p) = (log(), proactor());
    let (_peer, sock) = UnixStream::pair().unwrap();
    let refused = Rc::new(RefCell::new(None));
    let r = refused.clone();
    p.register(Recorder::new(1, sock, &log).on_open(move |cx, s| {
        *r.borrow_mut() = Some(cx.read_multishot(s.as_fd()));
    }));
    assert!(matches!(
        refused.borrow_mut().take(),
        Some(Err(Error::NoProvidedBuffers))
    ));
    let bad = Proactor::with_config(Config {
        provided_buffers: Some((3, 16)),
        ..Config::default()
    });
    assert!(matches!(bad, Err(Error::ProvidedBuffers(_))));
}

/// Keeps every lent buffer it is given, up to `keep`, then starts a timeout and gives them
/// all back when it fires (`keep == usize::MAX`: never gives any back, starts nothing).
struct Keeper {
    sock: UnixStream,
    keep: usize,
    held: Vec<proactor::ProvidedBuf>,
    /// Bytes in the order received, and what each read ended with.
    got: Rc<RefCell<(Vec<u8>, Vec<String>)>>,
    ops: Rc<RefCell<std::collections::BTreeSet<OpId>>>,
}

impl Keeper {
    fn new(sock: UnixStream, keep: usize) -> Self {
        Keeper {
            sock,
            keep,
            held: Vec::new(),
            got: Rc::default(),
            ops: Rc::default(),
        }
    }
}

impl CompletionHandler for Keeper {
    fn on_open(&mut self, cx: &mut Initiator<'_>) {
        cx.read_multishot(self.sock.as_fd()).unwrap();
    }

    fn on_received_buf(&mut self, cx: &mut Initiator<'_>, op: OpId, buf: proactor::ProvidedBuf) {
        self.ops.borrow_mut().insert(op);
        self.got.borrow_mut().0.extend_from_slice(&buf);
        self.held.push(buf);
        if self.held.len() == self.keep {
            cx.timeout(Duration::from_millis(5)).unwrap();
        }
    }

    fn on_timeout(&mut self, _: &mut Initiator<'_>, _: OpId, _: Outcome<()>) {
        self.held.clear();
    }

    fn on_read(&mut self, _: &mut Initiator<'_>, op: OpId, o: Outcome<usize>, _: Vec<u8>) {
        self.ops.borrow_mut().insert(op);
        let end = match o {
            Outcome::Done(n) => format!("done {n}"),
            Outcome::Cancelled => "cancelled".into(),
            Outcome::Failed(e) => format!("failed {:?}", e.raw_os_error()),
        };
        self.got.borrow_mut().1.push(end);
    }

    fn on_close(&mut self, reason: CloseReason) {
        self.got.borrow_mut().1.push(format!("closed {reason:?}"));
    }
}

#[test]
fn a_read_whose_buffers_are_all_lent_waits_for_one_and_goes_on_losing_nothing() {
    let mut p = with_buffers(2, 4);
    let (mut peer, sock) = UnixStream::pair().unwrap();
    let keeper = Keeper::new(sock, 2);
    let (got, ops) = (keeper.got.clone(), keeper.ops.clone());
    p.register(keeper);
    // Three buffers' worth with two buffers, both kept until a timeout: the kernel runs dry.
    let sent = b"abcdefghijklmnopqrstuvwxyz".to_vec();
    peer.write_all(&sent).unwrap();
    drop(peer);
    p.run().unwrap();
    let got = got.borrow();
    assert_eq!(got.0, sent);
    assert_eq!(got.1, ["done 0", "closed Finished"]);
    assert_eq!(ops.borrow().len(), 1, "one operation throughout");
    assert!(p.stats().buffer_waits >= 1, "{:?}", p.stats());
    assert_eq!(p.provided_buffers_free(), Some(2));
}

#[test]
fn a_read_waiting_for_buffers_that_cannot_come_back_ends_with_enobufs() {
    let mut p = with_buffers(2, 4);
    let (mut peer, sock) = UnixStream::pair().unwrap();
    let keeper = Keeper::new(sock, usize::MAX);
    let got = keeper.got.clone();
    p.register(keeper);
    peer.write_all(b"0123456789").unwrap();
    // The handler keeps both buffers and has nothing else in flight: nothing can give one
    // back, so the read ends instead of waiting for ever, and the handler is done.
    p.run().unwrap();
    let got = got.borrow();
    assert_eq!(got.0, b"01234567");
    assert_eq!(
        got.1,
        [
            format!("failed {:?}", Some(libc_enobufs())),
            "closed Finished".into()
        ]
    );
    assert_eq!(
        p.provided_buffers_free(),
        Some(2),
        "given back with the handler"
    );
}

fn libc_enobufs() -> i32 {
    wrapper_facade::uring::ENOBUFS
}

#[test]
fn a_read_waiting_for_a_buffer_is_cancelled_exactly_once_by_a_close() {
    let mut p = with_buffers(2, 4);
    let (mut peer, sock) = UnixStream::pair().unwrap();
    let mut keeper = Keeper::new(sock, usize::MAX);
    let got = keeper.got.clone();
    keeper.keep = 2;
    let id = p.register(keeper);
    peer.write_all(b"0123456789").unwrap();
    // Both buffers kept; the read waits (the timeout is in flight, so a buffer may come back).
    while p.stats().buffer_waits == 0 {
        p.turn().unwrap();
    }
    p.close(id).unwrap();
    p.run().unwrap();
    let got = got.borrow();
    assert_eq!(got.0, b"01234567");
    assert_eq!(got.1, ["cancelled", "closed Removed"]);
    assert_eq!(p.handlers(), 0);
    assert_eq!(p.provided_buffers_free(), Some(2));
}

/// Echoes every lent buffer back from where the kernel received it, with no copy.
struct LentEcho {
    sock: UnixStream,
    sent: Rc<RefCell<Vec<usize>>>,
}

impl CompletionHandler for LentEcho {
    fn on_open(&mut self, cx: &mut Initiator<'_>) {
        cx.read_multishot(self.sock.as_fd()).unwrap();
    }

    fn on_received_buf(&mut self, cx: &mut Initiator<'_>, _: OpId, buf: proactor::ProvidedBuf) {
        if let Err(refused) = cx.send_provided(self.sock.as_fd(), buf) {
            panic!("refused with {} bytes back", refused.buf.len());
        }
    }

    fn on_sent(
        &mut self,
        cx: &mut Initiator<'_>,
        _: OpId,
        o: Outcome<usize>,
        mut buf: proactor::ProvidedBuf,
    ) {
        let n = o.ok().unwrap();
        self.sent.borrow_mut().push(n);
        buf.advance(n);
        if !buf.is_empty() {
            cx.send_provided(self.sock.as_fd(), buf).unwrap();
        }
    }
}

#[test]
fn a_lent_buffer_is_sent_in_place_and_given_back_after_its_send() {
    let mut p = with_buffers(2, 8);
    let (mut peer, sock) = UnixStream::pair().unwrap();
    let sent = Rc::new(RefCell::new(Vec::new()));
    p.register(LentEcho {
        sock,
        sent: sent.clone(),
    });
    let mut echoed = Vec::new();
    for chunk in [&b"hello"[..], b"proactor", b"!"] {
        peer.write_all(chunk).unwrap();
        let mut back = vec![0; chunk.len()];
        let n = sent.borrow().len();
        while sent.borrow().len() == n {
            p.turn().unwrap();
        }
        peer.read_exact(&mut back).unwrap();
        echoed.extend_from_slice(&back);
    }
    assert_eq!(echoed, b"helloproactor!");
    assert_eq!(*sent.borrow(), [5, 8, 1]);
    assert_eq!(
        p.provided_buffers_free(),
        Some(2),
        "each given back after its send"
    );
    drop(peer);
    p.run().unwrap();
    assert_eq!(p.handlers(), 0);
}

/// The datagrams received, with what the kernel said of each.
type Got = Rc<RefCell<Vec<(Vec<u8>, proactor::Received)>>>;

/// Receives datagrams with `depth` receives in flight, re-arming each, until `want` arrived.
struct Datagrams {
    socket: wrapper_facade::SockDgram,
    depth: usize,
    want: usize,
    got: Got,
}

impl CompletionHandler for Datagrams {
    fn on_open(&mut self, cx: &mut Initiator<'_>) {
        for _ in 0..self.depth {
            cx.recv_msg(self.socket.as_fd(), vec![0; 16]).unwrap();
        }
    }

    fn on_datagram(
        &mut self,
        cx: &mut Initiator<'_>,
        _: OpId,
        o: Outcome<proactor::Received>,
        mut buf: Vec<u8>,
    ) {
        let Outcome::Done(r) = o else { return };
        let mut got = self.got.borrow_mut();
        got.push((buf[..r.len].to_vec(), r));
        if got.len() == self.want {
            cx.close();
        } else {
            buf.resize(16, 0);
            cx.recv_msg(self.socket.as_fd(), buf).unwrap();
        }
    }
}

#[test]
fn datagrams_arrive_in_order_with_their_sender_and_a_cut_one_says_so() {
    use wrapper_facade::{InetAddr, SockDgram};
    let socket = SockDgram::bind(&InetAddr::loopback_v4(0)).unwrap();
    // Nonblocking, as a reactor's socket is: the receives still wait in the kernel.
    socket.set_nonblocking(true).unwrap();
    let to = socket.local_addr().unwrap();
    let client = SockDgram::bind(&InetAddr::loopback_v4(0)).unwrap();
    let got = Rc::new(RefCell::new(Vec::new()));
    let mut p = proactor();
    p.register(Datagrams {
        socket,
        depth: 4,
        want: 10,
        got: got.clone(),
    });
    // The receives are in the kernel before anything is sent.
    // (A zero timeout's completion ends the turn that submits them.)
    let (spare, _) = UnixStream::pair().unwrap();
    p.register(Recorder::new(9, spare, &log()).on_open(|cx, _| {
        cx.timeout(Duration::ZERO).unwrap();
    }));
    p.turn().unwrap();
    for i in 0..9u8 {
        client.send_to(&[b'a' + i; 3], &to).unwrap();
    }
    client.send_to(b"longer than sixteen bytes", &to).unwrap();
    p.run().unwrap();
    let got = got.borrow();
    let from = client.local_addr().unwrap();
    for (i, (bytes, r)) in got[..9].iter().enumerate() {
        assert_eq!(
            (bytes.as_slice(), r.from, r.truncated),
            (&[b'a' + i as u8; 3][..], from, false)
        );
    }
    assert_eq!(
        (got[9].0.as_slice(), got[9].1.truncated),
        (&b"longer than sixt"[..], true)
    );
    assert_eq!(
        p.handlers(),
        0,
        "closing cancelled the receives still in flight"
    );
}
