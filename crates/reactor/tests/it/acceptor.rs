//! Acceptor-Connector: many concurrent echo clients, EMFILE, connect outcomes, backpressure.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener as StdListener, TcpStream as StdStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Sender};
use std::thread;
use std::time::Duration;

use reactor::{
    Acceptor, Connector, Context, Disposition, EventHandler, InetAddr, Interest, ManualClock,
    OutBuffer, Reactor, Remote, SockAcceptor, SockStream,
};

use crate::support::in_child_with_nofile;

/// Echoes what it reads, through a bounded [`OutBuffer`].
struct Echo {
    stream: SockStream,
    out: OutBuffer,
    max_buffered: Arc<AtomicUsize>,
    paused: Option<Sender<()>>,
}

impl Echo {
    fn new(stream: SockStream, limit: usize) -> Self {
        Echo {
            stream,
            out: OutBuffer::with_limit(limit),
            max_buffered: Arc::new(AtomicUsize::new(0)),
            paused: None,
        }
    }

    /// Records the high-water mark and reports the first pause, then lets the buffer settle.
    fn settle(&mut self, ctx: &mut dyn Context, more_input: bool) -> Disposition {
        self.max_buffered
            .fetch_max(self.out.len(), Ordering::SeqCst);
        let d = self.out.settle(&mut self.stream, ctx, more_input);
        if !self.out.interest().wants_read()
            && let Some(tx) = self.paused.take()
        {
            let _ = tx.send(());
        }
        d
    }
}

impl EventHandler for Echo {
    fn handle(&self) -> Option<BorrowedFd<'_>> {
        Some(self.stream.as_fd())
    }

    fn handle_input(&mut self, ctx: &mut dyn Context) -> Disposition {
        let mut buf = [0u8; 16 * 1024];
        // Read while under the limit; stop (and keep the readiness) when over it.
        while !self.out.is_over_limit() {
            match self.stream.read(&mut buf) {
                Ok(0) => return Disposition::Close,
                Ok(n) => self.out.push(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return self.settle(ctx, false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Disposition::Close,
            }
        }
        self.settle(ctx, true)
    }

    fn handle_output(&mut self, ctx: &mut dyn Context) -> Disposition {
        // Turning reading back on re-arms the descriptor, which reports data already waiting.
        self.settle(ctx, false)
    }
}

fn echo_factory(
    limit: usize,
) -> impl FnMut(SockStream, SocketAddr) -> Option<(Echo, Interest)> + Send {
    move |stream, _peer| Some((Echo::new(stream, limit), Interest::READ))
}

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn pattern(seed: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 31 + seed * 7) % 251) as u8)
        .collect()
}

/// Starts a reactor with an echo acceptor on its own thread.
fn echo_server(limit: usize) -> (SocketAddr, reactor::ReactorRemote, thread::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel();
    let handle = thread::spawn(move || {
        let mut reactor = Reactor::new().unwrap();
        let acceptor = Acceptor::bind(loopback(), echo_factory(limit)).unwrap();
        tx.send((acceptor.local_addr().unwrap(), reactor.remote()))
            .unwrap();
        acceptor.open(&mut reactor).unwrap();
        reactor.serve().unwrap();
    });
    let (addr, remote) = rx.recv().unwrap();
    (addr, remote, handle)
}

#[test]
fn thousand_concurrent_echo_connections_every_byte_verified() {
    // Server and clients share this process: 2,000 sockets plus the harness's own.
    if !in_child_with_nofile(
        "acceptor::thousand_concurrent_echo_connections_every_byte_verified",
        4096,
    ) {
        return;
    }
    let (addr, remote, server) = echo_server(1 << 20);
    let clients: Vec<_> = (0..8)
        .map(|c| {
            thread::spawn(move || {
                let mut streams: Vec<StdStream> = (0..125)
                    .map(|_| StdStream::connect(addr).unwrap())
                    .collect();
                for (i, s) in streams.iter_mut().enumerate() {
                    s.write_all(&pattern(c * 1000 + i, 4096)).unwrap();
                }
                for (i, s) in streams.iter_mut().enumerate() {
                    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                    let mut got = vec![0u8; 4096];
                    s.read_exact(&mut got).unwrap();
                    assert_eq!(
                        got,
                        pattern(c * 1000 + i, 4096),
                        "client {c}/{i} got other bytes"
                    );
                }
                streams.len()
            })
        })
        .collect();
    let total: usize = clients.into_iter().map(|c| c.join().unwrap()).sum();
    assert_eq!(total, 1000);
    remote.end();
    server.join().unwrap();
}

#[test]
fn acceptor_backs_off_at_emfile_keeps_serving_and_recovers() {
    if !in_child_with_nofile(
        "acceptor::acceptor_backs_off_at_emfile_keeps_serving_and_recovers",
        64,
    ) {
        return;
    }
    let clock = ManualClock::default();
    let mut reactor = Reactor::builder()
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    let acceptor = Acceptor::bind(loopback(), echo_factory(1 << 16))
        .unwrap()
        .backoff(Duration::from_millis(250));
    let addr = acceptor.local_addr().unwrap();
    let counters = acceptor.counters();
    acceptor.open(&mut reactor).unwrap();

    let echo_once = |reactor: &mut Reactor, s: &mut StdStream, msg: &[u8]| {
        s.write_all(msg).unwrap();
        s.set_nonblocking(true).unwrap();
        let mut got = Vec::new();
        for _ in 0..200 {
            reactor
                .handle_events(Some(Duration::from_millis(50)))
                .unwrap();
            let mut buf = [0u8; 64];
            match s.read(&mut buf) {
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("{e}"),
            }
            if got.len() >= msg.len() {
                break;
            }
        }
        s.set_nonblocking(false).unwrap();
        assert_eq!(got, msg);
    };

    let mut first = StdStream::connect(addr).unwrap();
    echo_once(&mut reactor, &mut first, b"before");
    // Three clients wait in the backlog; then the descriptor table is filled.
    let mut waiting: Vec<StdStream> = (0..3).map(|_| StdStream::connect(addr).unwrap()).collect();
    let mut filler = Vec::new();
    loop {
        match std::fs::File::open("/dev/null") {
            Ok(f) => filler.push(f),
            Err(e) if e.raw_os_error() == Some(libc::EMFILE) => break,
            Err(e) => panic!("{e}"),
        }
    }
    reactor
        .handle_events(Some(Duration::from_millis(50)))
        .unwrap();
    assert_eq!(
        counters.snapshot().backoffs,
        1,
        "accept hit EMFILE and paused"
    );
    // Paused: no spinning on the listener, and the open connection is still served.
    for _ in 0..5 {
        assert_eq!(
            reactor
                .handle_events(Some(Duration::from_millis(10)))
                .unwrap(),
            0
        );
    }
    assert_eq!(counters.snapshot().backoffs, 1);
    echo_once(&mut reactor, &mut first, b"while paused");
    // Descriptors come back; after the back-off the backlog is accepted.
    filler.clear();
    clock.advance(Duration::from_millis(250));
    for (i, s) in waiting.iter_mut().enumerate() {
        echo_once(&mut reactor, s, format!("after {i}").as_bytes());
    }
    assert_eq!(counters.snapshot().accepted, 4);
}

#[test]
fn connector_reports_success_refusal_and_timeout() {
    let clock = ManualClock::default();
    let mut reactor = Reactor::builder()
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    let (tx, rx) = mpsc::channel::<(String, io::Result<SocketAddr>)>();
    let listener = StdListener::bind(loopback()).unwrap();
    let open = listener.local_addr().unwrap();
    // A port nobody listens on: bound, then freed, on a loopback address of its own, where the
    // other tests' binds to 127.0.0.1 port 0 cannot take it meanwhile, and with no other test's
    // child holding a copy of the listener (wrapper_facade::process::without_spawns).
    let _settled = wrapper_facade::process::without_spawns();
    let closed = {
        let l = StdListener::bind("127.0.0.77:0").unwrap();
        l.local_addr().unwrap()
    };
    for (name, addr) in [("open", open), ("closed", closed)] {
        let tx = tx.clone();
        Connector::connect(
            &mut reactor,
            addr,
            Duration::from_secs(5),
            move |_ctx, r| {
                tx.send((
                    name.to_string(),
                    r.and_then(|s| s.peer_addr()).map(SocketAddr::from),
                ))
                .unwrap();
            },
        )
        .unwrap();
    }
    let mut results = Vec::new();
    for _ in 0..100 {
        reactor
            .handle_events(Some(Duration::from_millis(100)))
            .unwrap();
        results.extend(rx.try_iter());
        if results.len() == 2 {
            break;
        }
    }
    results.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(results[0].0, "closed");
    assert_eq!(
        results[0].1.as_ref().unwrap_err().kind(),
        io::ErrorKind::ConnectionRefused
    );
    assert_eq!(results[1].0, "open");
    assert_eq!(*results[1].1.as_ref().unwrap(), open);
    assert_eq!(reactor.handlers(), 0, "connectors close after completing");
    assert_eq!(reactor.timers(), 0, "and their timers go with them");

    // The deadline passes before the loop looks at the socket: timers run first.
    let tx2 = tx.clone();
    Connector::connect(
        &mut reactor,
        open,
        Duration::from_millis(10),
        move |_ctx, r| {
            tx2.send((
                "late".into(),
                r.and_then(|s| s.peer_addr()).map(SocketAddr::from),
            ))
            .unwrap();
        },
    )
    .unwrap();
    clock.advance(Duration::from_millis(10));
    reactor.handle_events(Some(Duration::from_secs(1))).unwrap();
    let (name, r) = rx.try_recv().expect("completion ran");
    assert_eq!(name, "late");
    assert_eq!(r.unwrap_err().kind(), io::ErrorKind::TimedOut);
    assert!(rx.try_recv().is_err(), "completion runs once");
    assert_eq!(reactor.handlers(), 0);
}

#[test]
fn write_backpressure_stops_reading_until_the_peer_drains() {
    const LIMIT: usize = 64 * 1024;
    const TOTAL: usize = 64 * 1024 * 1024;
    let (paused_tx, paused_rx) = mpsc::channel();
    let max_buffered = Arc::new(AtomicUsize::new(0));
    let (addr_tx, addr_rx) = mpsc::channel();
    let max = max_buffered.clone();
    let server = thread::spawn(move || {
        let mut reactor = Reactor::new().unwrap();
        let mut paused_tx = Some(paused_tx);
        let acceptor = Acceptor::bind(loopback(), move |stream, _peer| {
            let mut echo = Echo::new(stream, LIMIT);
            echo.max_buffered = max.clone();
            echo.paused = paused_tx.take();
            Some((echo, Interest::READ))
        })
        .unwrap();
        addr_tx
            .send((acceptor.local_addr().unwrap(), reactor.remote()))
            .unwrap();
        acceptor.open(&mut reactor).unwrap();
        reactor.serve().unwrap();
    });
    let (addr, remote) = addr_rx.recv().unwrap();
    let client = StdStream::connect(addr).unwrap();
    let mut writer_side = client.try_clone().unwrap();
    let writer = thread::spawn(move || {
        let data = pattern(1, TOTAL);
        writer_side.write_all(&data).unwrap();
    });
    paused_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the server stopped reading");
    let mut reader = client;
    let mut got = vec![0u8; TOTAL];
    reader.read_exact(&mut got).unwrap();
    writer.join().unwrap();
    assert!(got == pattern(1, TOTAL), "echoed bytes differ");
    let peak = max_buffered.load(Ordering::SeqCst);
    assert!(
        peak <= LIMIT + 16 * 1024,
        "buffered {peak} bytes, limit {LIMIT} + one read"
    );
    remote.end();
    server.join().unwrap();
}

#[test]
fn from_listener_serves_a_blocking_facade_listener_without_blocking_the_loop() {
    // Default options: a blocking listener whose `accept` would hand out blocking streams.
    let listener = SockAcceptor::bind(&InetAddr::loopback_v4(0)).unwrap();
    let addr = SocketAddr::from(listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    let server = thread::spawn(move || {
        let mut reactor = Reactor::new().unwrap();
        tx.send(reactor.remote()).unwrap();
        Acceptor::from_listener(listener, echo_factory(1 << 16))
            .open(&mut reactor)
            .unwrap();
        reactor.serve().unwrap();
    });
    let remote = rx.recv().unwrap();
    // Two clients, the second connecting while the first is open: had the listener or the
    // first stream stayed blocking, the loop would hang in `accept` or `read` and the second
    // echo would never come.
    let mut first = StdStream::connect(addr).unwrap();
    let mut second = StdStream::connect(addr).unwrap();
    for (i, s) in [&mut first, &mut second].into_iter().enumerate() {
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s.write_all(&pattern(i, 1000)).unwrap();
        let mut got = vec![0u8; 1000];
        s.read_exact(&mut got).unwrap();
        assert_eq!(got, pattern(i, 1000));
    }
    remote.end();
    server.join().unwrap();
}
