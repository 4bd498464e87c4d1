//! Loopback round trips over the socket facades, their options, and their use with mio.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::Shutdown;
use std::time::Duration;

use mio::{Events, Interest, Poll, Token};
use wrapper_facade::notify::{EventFd, Pipe};
use wrapper_facade::{
    AcceptorOptions, ConnectProgress, InetAddr, SockAcceptor, SockConnector, SockDgram,
};

use super::tcp_pair;

#[test]
fn stream_round_trip_both_ways() {
    let (client, server) = tcp_pair();
    client.send_n(b"request").unwrap();
    let mut buf = [0u8; 7];
    server.recv_n(&mut buf).unwrap();
    assert_eq!(&buf, b"request");
    server.send_n(b"reply").unwrap();
    let mut buf = [0u8; 5];
    client.recv_n(&mut buf).unwrap();
    assert_eq!(&buf, b"reply");
}

#[test]
fn large_transfer_with_send_n_and_recv_n() {
    let (client, server) = tcp_pair();
    let data: Vec<u8> = (0..4_000_000u32).map(|i| (i % 251) as u8).collect();
    let expected = data.clone();
    let sender = std::thread::spawn(move || client.send_n(&data).unwrap());
    let mut got = vec![0u8; expected.len()];
    server.recv_n(&mut got).unwrap();
    sender.join().unwrap();
    assert!(got == expected);
}

#[test]
fn vectored_send_and_recv_keep_order() {
    let (client, server) = tcp_pair();
    let n = client
        .send_vectored(&[
            IoSlice::new(b"head:"),
            IoSlice::new(b"body"),
            IoSlice::new(b";"),
        ])
        .unwrap();
    assert_eq!(n, 10);
    let (mut a, mut b) = ([0u8; 5], [0u8; 5]);
    let mut got = 0;
    while got < 10 {
        let (first, second) = (&mut a[got.min(5)..], &mut b[got.saturating_sub(5)..]);
        got += server
            .recv_vectored(&mut [IoSliceMut::new(first), IoSliceMut::new(second)])
            .unwrap();
    }
    assert_eq!((&a, &b), (b"head:", b"body;"));
}

#[test]
fn half_close_delivers_eof_but_keeps_the_other_direction() {
    let (client, server) = tcp_pair();
    client.send_n(b"last words").unwrap();
    client.shutdown(Shutdown::Write).unwrap();
    let mut all = Vec::new();
    let mut buf = [0u8; 4];
    loop {
        match server.recv(&mut buf).unwrap() {
            0 => break,
            n => all.extend_from_slice(&buf[..n]),
        }
    }
    assert_eq!(all, b"last words");
    server.send_n(b"ack").unwrap();
    let mut ack = [0u8; 3];
    client.recv_n(&mut ack).unwrap();
    assert_eq!(&ack, b"ack");
}

#[test]
fn stream_options_read_back() {
    let (client, _server) = tcp_pair();
    client.set_nodelay(true).unwrap();
    assert!(client.nodelay().unwrap());
    client.set_keepalive(true).unwrap();
    assert!(client.keepalive().unwrap());
    client.set_linger(Some(Duration::from_secs(3))).unwrap();
    assert_eq!(client.linger().unwrap(), Some(Duration::from_secs(3)));
    client.set_linger(None).unwrap();
    assert_eq!(client.linger().unwrap(), None);
    client.set_send_buffer_size(64 * 1024).unwrap();
    assert!(client.send_buffer_size().unwrap() >= 64 * 1024);
    client.set_recv_buffer_size(32 * 1024).unwrap();
    assert!(client.recv_buffer_size().unwrap() >= 32 * 1024);
    client
        .set_write_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    assert!(client.write_timeout().unwrap() >= Some(Duration::from_secs(2)));
    assert_eq!(
        client
            .set_read_timeout(Some(Duration::ZERO))
            .unwrap_err()
            .kind(),
        io::ErrorKind::InvalidInput
    );
    assert_eq!(client.take_error().unwrap().map(|e| e.kind()), None);
}

#[test]
fn accepted_and_connected_descriptors_are_close_on_exec() {
    let (client, server) = tcp_pair();
    for fd in [&client as &dyn std::os::fd::AsRawFd, &server] {
        // SAFETY: F_GETFD on a descriptor we own reads its flags only.
        let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFD) };
        assert_eq!(flags & libc::FD_CLOEXEC, libc::FD_CLOEXEC);
    }
}

#[test]
fn reuse_port_lets_two_acceptors_share_a_port() {
    let opts = AcceptorOptions::default().reuse_port(true);
    let a = SockAcceptor::open(&InetAddr::loopback_v4(0), &opts).unwrap();
    let addr = a.local_addr().unwrap();
    let b = SockAcceptor::open(&addr, &opts).unwrap();
    assert_eq!(b.local_addr().unwrap(), addr);
    // Without SO_REUSEPORT the second bind fails, errno kept.
    let err = SockAcceptor::bind(&addr).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EADDRINUSE));
}

#[test]
fn connect_to_a_closed_port_is_refused() {
    // On a loopback address of its own, where the other tests' binds to 127.0.0.1 port 0
    // cannot take the freed port meanwhile.
    let quiet = std::net::Ipv4Addr::new(127, 0, 0, 77);
    // No other test's child may hold a copy of the freed listener meanwhile.
    let _settled = wrapper_facade::process::without_spawns();
    let port = SockAcceptor::bind(&InetAddr::new_v4(quiet, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port(); // dropped: nobody listens there now
    let err = SockConnector::default()
        .connect(&InetAddr::new_v4(quiet, port))
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
    assert_eq!(err.raw_os_error(), Some(libc::ECONNREFUSED));
}

#[test]
fn ipv6_loopback_round_trip_when_available() {
    let acceptor = match SockAcceptor::bind(&InetAddr::loopback_v6(0)) {
        Ok(a) => a,
        // A host without IPv6 cannot run this; the error must then be the address family's.
        Err(e) => {
            assert!(
                matches!(
                    e.raw_os_error(),
                    Some(libc::EAFNOSUPPORT | libc::EADDRNOTAVAIL)
                ),
                "{e}"
            );
            return;
        }
    };
    let addr = acceptor.local_addr().unwrap();
    assert!(addr.is_ipv6());
    let client = SockConnector::default().connect(&addr).unwrap();
    let (server, peer) = acceptor.accept().unwrap();
    assert!(peer.is_ipv6());
    client.send_n(b"v6").unwrap();
    let mut buf = [0u8; 2];
    server.recv_n(&mut buf).unwrap();
    assert_eq!(&buf, b"v6");
}

#[test]
fn datagram_round_trip_and_connected_peer() {
    let a = SockDgram::bind(&InetAddr::loopback_v4(0)).unwrap();
    let b = SockDgram::bind(&InetAddr::loopback_v4(0)).unwrap();
    let (a_addr, b_addr) = (a.local_addr().unwrap(), b.local_addr().unwrap());
    a.send_to(b"one", &b_addr).unwrap();
    let mut buf = [0u8; 8];
    let (n, from) = b.recv_from(&mut buf).unwrap();
    assert_eq!((&buf[..n], from), (&b"one"[..], a_addr));
    b.connect(&a_addr).unwrap();
    b.send(b"two").unwrap();
    assert_eq!(a.recv_from(&mut buf).unwrap(), (3, b_addr));
    a.connect(&b_addr).unwrap();
    a.send(b"three").unwrap();
    assert_eq!(b.recv(&mut buf).unwrap(), 5);
    b.set_nonblocking(true).unwrap();
    assert_eq!(
        b.recv(&mut buf).unwrap_err().kind(),
        io::ErrorKind::WouldBlock
    );
}

#[test]
fn nonblocking_connect_completes_through_mio() {
    let acceptor = SockAcceptor::open(
        &InetAddr::loopback_v4(0),
        &AcceptorOptions::default()
            .nonblocking(true)
            .accept_nonblocking(true),
    )
    .unwrap();
    let mut acceptor = acceptor;
    let addr = acceptor.local_addr().unwrap();
    let mut poll = Poll::new().unwrap();
    let mut events = Events::with_capacity(8);
    poll.registry()
        .register(&mut acceptor, Token(1), Interest::READABLE)
        .unwrap();

    let mut stream = match SockConnector::default().connect_nonblocking(&addr).unwrap() {
        ConnectProgress::Connected(s) => s,
        ConnectProgress::InProgress(mut s) => {
            poll.registry()
                .register(&mut s, Token(2), Interest::WRITABLE)
                .unwrap();
            loop {
                poll.poll(&mut events, Some(Duration::from_secs(30)))
                    .unwrap();
                if events.iter().any(|e| e.token() == Token(2)) {
                    break;
                }
            }
            SockConnector::complete(&s).unwrap();
            poll.registry().deregister(&mut s).unwrap();
            s
        }
    };
    assert!(stream.is_nonblocking().unwrap());

    // The acceptor becomes readable; the accepted stream is nonblocking as configured.
    let server = loop {
        match acceptor.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                poll.poll(&mut events, Some(Duration::from_secs(30)))
                    .unwrap();
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert!(server.is_nonblocking().unwrap());
    poll.registry()
        .register(&mut stream, Token(3), Interest::READABLE)
        .unwrap();
    server.send_n(b"hi").unwrap();
    let mut got = Vec::new();
    while got.len() < 2 {
        poll.poll(&mut events, Some(Duration::from_secs(30)))
            .unwrap();
        let mut buf = [0u8; 8];
        match stream.recv(&mut buf) {
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(got, b"hi");
}

#[test]
fn nonblocking_connect_to_a_closed_port_reports_refused() {
    // On a loopback address of its own, where the other tests' binds to 127.0.0.1 port 0
    // cannot take the freed port meanwhile.
    let quiet = std::net::Ipv4Addr::new(127, 0, 0, 77);
    // No other test's child may hold a copy of the freed listener meanwhile.
    let _settled = wrapper_facade::process::without_spawns();
    let port = SockAcceptor::bind(&InetAddr::new_v4(quiet, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = InetAddr::new_v4(quiet, port);
    match SockConnector::default().connect_nonblocking(&addr) {
        Err(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused),
        Ok(ConnectProgress::Connected(_)) => panic!("nobody listens there"),
        Ok(ConnectProgress::InProgress(mut s)) => {
            let mut poll = Poll::new().unwrap();
            let mut events = Events::with_capacity(4);
            poll.registry()
                .register(&mut s, Token(0), Interest::WRITABLE)
                .unwrap();
            poll.poll(&mut events, Some(Duration::from_secs(30)))
                .unwrap();
            let err = SockConnector::complete(&s).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
        }
    }
}

#[test]
fn eventfd_and_pipe_wake_a_mio_loop_from_another_thread() {
    let mut efd = EventFd::new().unwrap();
    let pipe = Pipe::nonblocking().unwrap();
    let (mut reader, writer) = pipe.into_parts();
    let mut poll = Poll::new().unwrap();
    let mut events = Events::with_capacity(4);
    poll.registry()
        .register(&mut efd, Token(10), Interest::READABLE)
        .unwrap();
    poll.registry()
        .register(&mut reader, Token(11), Interest::READABLE)
        .unwrap();
    let efd = std::sync::Arc::new(efd);
    let notifier = efd.clone();
    std::thread::spawn(move || {
        notifier.notify().unwrap();
        notifier.notify().unwrap();
        writer.write(b"x").unwrap();
    })
    .join()
    .unwrap();
    let mut seen = std::collections::BTreeSet::new();
    while seen.len() < 2 {
        poll.poll(&mut events, Some(Duration::from_secs(30)))
            .unwrap();
        seen.extend(events.iter().map(|e| e.token().0));
    }
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), [10, 11]);
    assert_eq!(efd.drain().unwrap(), 2);
    assert_eq!(efd.drain().unwrap(), 0);
    let mut buf = [0u8; 4];
    assert_eq!(reader.read(&mut buf).unwrap(), 1);
}

#[test]
fn a_datagram_socket_takes_the_receive_buffer_size_asked_for() {
    let s = SockDgram::bind(&InetAddr::loopback_v4(0)).unwrap();
    s.set_recv_buffer_size(8192).unwrap();
    // Linux doubles the request for its bookkeeping; far below rmem_max, nothing caps it.
    assert_eq!(s.recv_buffer_size().unwrap(), 16384);
    s.set_recv_buffer_size(12288).unwrap();
    assert_eq!(s.recv_buffer_size().unwrap(), 24576);
}

/// A flood at a small receive buffer nobody reads: the kernel drops datagrams and, with
/// `SO_RXQ_OVFL`, says how many with the next datagram it queues. Every datagram sent is
/// then received or counted, exactly.
#[test]
fn the_kernel_s_drop_counter_accounts_for_every_datagram_sent() {
    let tx = SockDgram::bind(&InetAddr::loopback_v4(0)).unwrap();
    let rx = SockDgram::bind(&InetAddr::loopback_v4(0)).unwrap();
    assert!(!rx.drop_counting().unwrap());
    rx.set_drop_counting(true).unwrap();
    assert!(rx.drop_counting().unwrap());
    rx.set_recv_buffer_size(4096).unwrap();
    let to = rx.local_addr().unwrap();
    let flood = 500u32;
    let payload = [b'x'; 200];
    for _ in 0..flood {
        tx.send_to(&payload, &to).unwrap();
    }
    // Read what was queued. A datagram's counter is the count when it was queued, so the
    // drops after the last queued one show with a later datagram: a marker sent now, into
    // an emptied buffer (sent again if the kernel still had flood in flight and dropped it).
    rx.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let (mut sent, mut received, mut drops) = (flood, 0u32, 0u32);
    let mut buf = [0u8; 512];
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while received + drops != sent {
        assert!(
            std::time::Instant::now() < deadline,
            "sent {sent}, received {received}, dropped {drops}"
        );
        match rx.recv_counting_drops(&mut buf) {
            Ok(r) => {
                assert_eq!((r.from, r.truncated), (tx.local_addr().unwrap(), false));
                received += 1;
                drops = drops.max(r.drops.unwrap_or(0));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                tx.send_to(b"marker", &to).unwrap();
                sent += 1;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(drops > 0, "a 4 KiB buffer cannot hold {flood} datagrams");
    assert!(received > 0);

    // A datagram longer than the buffer is cut and says so; without the option, no counter.
    rx.set_drop_counting(false).unwrap();
    tx.send_to(&payload, &to).unwrap();
    let mut small = [0u8; 16];
    let r = rx.recv_counting_drops(&mut small).unwrap();
    assert_eq!((r.len, r.truncated, r.drops), (16, true, None));
}
