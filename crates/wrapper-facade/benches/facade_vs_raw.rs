//! The course's consequence "performance degradation", measured: the same operations through the
//! wrapper facade and as bare libc calls, interleaved in one run.
//!
//! Run with `cargo bench -p wrapper-facade --bench facade_vs_raw`.
//!
//! - `tcp_64B`: 64 bytes sent on one end of a loopback TCP connection and received on the other
//!   (`SockStream::send_n` and `recv_n` against `send(2)` and `recv(2)` loops on the same
//!   descriptors);
//! - `eventfd`: one wake-up posted and drained (`EventFd::notify` and `drain` against `write(2)`
//!   and `read(2)` of 8 bytes on the same descriptor);
//! - `udp_socket`: a UDP socket opened, bound to an ephemeral loopback port and closed
//!   (`SockDgram::bind` and its drop against `socket`, `bind`, `close`).
//!
//! Each round runs both sides of an operation back to back, the order alternating between rounds;
//! the program prints the median nanoseconds per operation of each side and the median of the
//! per-round ratios facade ÷ raw. With `--test` (as `cargo test --all-targets` passes) it runs one
//! short round as a smoke test.

use std::hint::black_box;
use std::os::fd::AsRawFd;
use std::time::Instant;

use wrapper_facade::notify::EventFd;
use wrapper_facade::{InetAddr, SockAcceptor, SockConnector, SockDgram, SockStream};

/// A connected loopback pair: (client end, server end).
fn tcp_pair() -> (SockStream, SockStream) {
    let acceptor = SockAcceptor::bind(&InetAddr::loopback_v4(0)).expect("bind");
    let addr = acceptor.local_addr().expect("local address");
    let client = SockConnector::default().connect(&addr).expect("connect");
    let (server, _) = acceptor.accept().expect("accept");
    client.set_nodelay(true).expect("nodelay");
    (client, server)
}

fn facade_tcp(a: &SockStream, b: &SockStream, buf: &mut [u8; 64]) {
    a.send_n(buf).expect("send");
    b.recv_n(buf).expect("recv");
}

fn raw_tcp(a: i32, b: i32, buf: &mut [u8; 64]) {
    let mut done = 0;
    while done < buf.len() {
        // SAFETY: `buf[done..]` is readable for its length for the whole call.
        let n = unsafe {
            libc::send(
                a,
                buf[done..].as_ptr().cast(),
                buf.len() - done,
                libc::MSG_NOSIGNAL,
            )
        };
        assert!(n > 0, "send failed");
        done += n as usize;
    }
    done = 0;
    while done < buf.len() {
        // SAFETY: `buf[done..]` is writable for its length for the whole call.
        let n = unsafe { libc::recv(b, buf[done..].as_mut_ptr().cast(), buf.len() - done, 0) };
        assert!(n > 0, "recv failed");
        done += n as usize;
    }
}

fn facade_eventfd(e: &EventFd) {
    e.notify().expect("notify");
    black_box(e.drain().expect("drain"));
}

fn raw_eventfd(fd: i32) {
    let one = 1u64.to_ne_bytes();
    // SAFETY: `one` is readable for 8 bytes.
    let n = unsafe { libc::write(fd, one.as_ptr().cast(), 8) };
    assert_eq!(n, 8, "eventfd write");
    let mut got = [0u8; 8];
    // SAFETY: `got` is writable for 8 bytes.
    let n = unsafe { libc::read(fd, got.as_mut_ptr().cast(), 8) };
    assert_eq!(n, 8, "eventfd read");
    black_box(got);
}

fn facade_udp_socket() {
    black_box(SockDgram::bind(&InetAddr::loopback_v4(0)).expect("bind"));
}

fn raw_udp_socket() {
    // SAFETY: plain C calls on a descriptor this function creates and closes; `sa` is an
    // initialised sockaddr_in whose length is passed with it.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket");
        let mut sa: libc::sockaddr_in = std::mem::zeroed();
        sa.sin_family = libc::AF_INET as libc::sa_family_t;
        sa.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        assert_eq!(libc::bind(fd, (&raw const sa).cast(), len), 0, "bind");
        libc::close(fd);
    }
}

/// Nanoseconds per call of `op`, run `n` times.
fn ns_per_op(n: u32, mut op: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        op();
    }
    start.elapsed().as_nanos() as f64 / f64::from(n)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Interleaved rounds of both sides; prints medians and the median per-round ratio.
fn compare(name: &str, rounds: usize, n: u32, mut facade: impl FnMut(), mut raw: impl FnMut()) {
    // Warm both paths (page faults, caches, the socket buffers) before measuring.
    ns_per_op(n / 10 + 1, &mut facade);
    ns_per_op(n / 10 + 1, &mut raw);
    let (mut f, mut r, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let (fa, ra) = if round % 2 == 0 {
            let fa = ns_per_op(n, &mut facade);
            (fa, ns_per_op(n, &mut raw))
        } else {
            let ra = ns_per_op(n, &mut raw);
            (ns_per_op(n, &mut facade), ra)
        };
        f.push(fa);
        r.push(ra);
        ratio.push(fa / ra);
    }
    println!(
        "{name:<11} facade {:>8.1} ns  raw libc {:>8.1} ns  facade/raw = {:.3}  (medians of {rounds} interleaved rounds of {n})",
        median(f),
        median(r),
        median(ratio)
    );
}

fn main() {
    let smoke = std::env::args().any(|a| a == "--test" || a == "--list");
    let (rounds, scale) = if smoke { (1, 100) } else { (21, 1) };

    let (a, b) = tcp_pair();
    let (ra, rb) = (a.as_raw_fd(), b.as_raw_fd());
    let mut buf = [7u8; 64];
    let mut raw_buf = [7u8; 64];
    compare(
        "tcp_64B",
        rounds,
        20_000 / scale,
        || facade_tcp(&a, &b, &mut buf),
        || raw_tcp(ra, rb, &mut raw_buf),
    );

    let e = EventFd::new().expect("eventfd");
    let fd = e.as_raw_fd();
    compare(
        "eventfd",
        rounds,
        200_000 / scale,
        || facade_eventfd(&e),
        || raw_eventfd(fd),
    );

    compare(
        "udp_socket",
        rounds,
        20_000 / scale,
        facade_udp_socket,
        raw_udp_socket,
    );
}
