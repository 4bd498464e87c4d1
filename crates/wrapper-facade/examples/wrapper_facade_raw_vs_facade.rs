//! The same small client written twice, against raw libc and against the wrapper facade.
//!
//! The client connects to a server, sends a request, and reads a fixed-size reply. Both versions are
//! run against the same three situations (a good server, a closed port, a peer that hangs up early),
//! then the program measures its own source text to show the course's consequences:
//! concise (lines, unsafe blocks), robust (explicit `close` calls, EINTR checks, descriptors left
//! behind after failures) and portable (the facade client given an IPv6 address, unchanged).

use std::io;
use std::net::Ipv4Addr;

use wrapper_facade::thread::ThreadRegistry;
use wrapper_facade::{InetAddr, SockAcceptor, SockConnector};

// raw-begin
/// The client against the C API. Careful code: every error path closes the socket, EINTR is
/// retried on send and recv, MSG_NOSIGNAL avoids SIGPIPE, SOCK_CLOEXEC avoids leaking into children.
fn raw_fetch(ip: [u8; 4], port: u16, request: &[u8], reply: &mut [u8]) -> Result<(), String> {
    fn errno() -> i32 {
        io::Error::last_os_error().raw_os_error().unwrap_or(0)
    }
    // SAFETY: plain C calls on a descriptor this function owns, with buffers valid for their lengths.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(format!("socket: errno {}", errno()));
        }
        let mut sa: libc::sockaddr_in = std::mem::zeroed();
        sa.sin_family = libc::AF_INET as libc::sa_family_t;
        sa.sin_port = port.to_be();
        sa.sin_addr.s_addr = u32::from_ne_bytes(ip);
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        if libc::connect(fd, (&raw const sa).cast(), len) < 0 {
            let e = errno(); // EINTR here would need poll + SO_ERROR: not handled
            libc::close(fd);
            return Err(format!("connect: errno {e}"));
        }
        let mut sent = 0;
        while sent < request.len() {
            let rest = &request[sent..];
            let n = libc::send(fd, rest.as_ptr().cast(), rest.len(), libc::MSG_NOSIGNAL);
            if n < 0 {
                let e = errno();
                if e == libc::EINTR {
                    continue;
                }
                libc::close(fd);
                return Err(format!("send: errno {e} after {sent} bytes"));
            }
            sent += n as usize;
        }
        let mut got = 0;
        while got < reply.len() {
            let rest = &mut reply[got..];
            let n = libc::recv(fd, rest.as_mut_ptr().cast(), rest.len(), 0);
            if n < 0 {
                let e = errno();
                if e == libc::EINTR {
                    continue;
                }
                libc::close(fd);
                return Err(format!("recv: errno {e} after {got} bytes"));
            }
            if n == 0 {
                libc::close(fd);
                return Err(format!("recv: peer closed after {got} bytes"));
            }
            got += n as usize;
        }
        libc::close(fd);
        Ok(())
    }
}
// raw-end

// facade-begin
/// The same client against the facade: errors keep their errno, the stream closes itself.
fn facade_fetch(addr: &InetAddr, request: &[u8], reply: &mut [u8]) -> io::Result<()> {
    let stream = SockConnector::default().connect(addr)?;
    stream.send_n(request)?;
    stream.recv_n(reply)?;
    Ok(())
}
// facade-end

/// Serves `clients` connections: reads a 4-byte request, answers with `answer`, closes.
fn serve(registry: &ThreadRegistry, acceptor: SockAcceptor, clients: usize, answer: &'static [u8]) {
    registry
        .spawn("servers", "server", move |_| {
            for _ in 0..clients {
                let (stream, _) = acceptor.accept().expect("accept");
                let mut req = [0u8; 4];
                stream.recv_n(&mut req).expect("request");
                stream.send_n(answer).expect("answer");
            }
        })
        .expect("spawn");
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// Source lines between two markers in this file, without blank lines and comments.
fn code(begin: &str, end: &str) -> Vec<&'static str> {
    let src = include_str!("wrapper_facade_raw_vs_facade.rs");
    let body = &src[src.find(begin).unwrap()..src.find(end).unwrap()];
    body.lines()
        .map(|l| l.split("//").next().unwrap_or("").trim()) // drop comments
        .filter(|l| !l.is_empty())
        .collect()
}

/// Lines, unsafe blocks, `close` calls and EINTR checks between two markers.
fn measure(begin: &str, end: &str) -> (usize, usize, usize, usize) {
    let code = code(begin, end);
    let count = |pat: &str| code.iter().filter(|l| l.contains(pat)).count();
    (
        code.len(),
        count("unsafe {"),
        count("libc::close("),
        count("EINTR"),
    )
}

/// Uses of IPv4-only names between two markers: what an IPv6 version would rewrite.
fn ipv4_only(begin: &str, end: &str) -> usize {
    let names = ["AF_INET", "sockaddr_in", "sin_"];
    code(begin, end)
        .iter()
        .map(|l| names.iter().map(|n| l.matches(n).count()).sum::<usize>())
        .sum()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let registry = ThreadRegistry::default();
    let request = b"PING";

    println!("== 1. a good server answers \"PONG\" ==");
    let acceptor = SockAcceptor::bind(&InetAddr::loopback_v4(0))?;
    let addr = acceptor.local_addr()?;
    serve(&registry, acceptor, 2, b"PONG");
    let mut reply = [0u8; 4];
    raw_fetch([127, 0, 0, 1], addr.port(), request, &mut reply)?;
    println!("raw libc: reply {:?}", String::from_utf8_lossy(&reply));
    let mut reply = [0u8; 4];
    facade_fetch(&addr, request, &mut reply)?;
    println!("facade:   reply {:?}", String::from_utf8_lossy(&reply));
    registry.join_group("servers");

    println!("== 2. nobody listens on the port ==");
    let closed = SockAcceptor::bind(&InetAddr::loopback_v4(0))?.local_addr()?;
    let raw = raw_fetch([127, 0, 0, 1], closed.port(), request, &mut [0u8; 4]).unwrap_err();
    println!("raw libc: {raw}  (a number to look up)");
    let err = facade_fetch(&closed, request, &mut [0u8; 4]).unwrap_err();
    println!(
        "facade:   {err}  (kind {:?}, errno {:?} kept)",
        err.kind(),
        err.raw_os_error()
    );

    println!("== 3. the peer hangs up after 2 of 4 reply bytes ==");
    let acceptor = SockAcceptor::bind(&InetAddr::loopback_v4(0))?;
    let addr = acceptor.local_addr()?;
    serve(&registry, acceptor, 2, b"PO");
    let raw = raw_fetch([127, 0, 0, 1], addr.port(), request, &mut [0u8; 4]).unwrap_err();
    println!("raw libc: {raw}");
    let err = facade_fetch(&addr, request, &mut [0u8; 4]).unwrap_err();
    // The cause is the error's source, not part of its message.
    let cause = std::error::Error::source(&err).map(ToString::to_string);
    println!("facade:   {err}: {}", cause.unwrap_or_default());
    registry.join_group("servers");

    println!("== concise: counted from this file's own source ==");
    let (raw_lines, raw_unsafe, raw_close, raw_eintr) = measure("// raw-begin", "// raw-end");
    let (fac_lines, fac_unsafe, fac_close, fac_eintr) = measure("// facade-begin", "// facade-end");
    println!(
        "raw libc: {raw_lines:>2} lines, {raw_unsafe} unsafe block, {raw_close} close() calls, {raw_eintr} EINTR checks"
    );
    println!(
        "facade:   {fac_lines:>2} lines, {fac_unsafe} unsafe blocks, {fac_close} close() calls, {fac_eintr} EINTR checks"
    );

    println!("== robust: descriptors left open after 50 failed runs of each ==");
    let before = open_fds();
    for _ in 0..50 {
        let _ = raw_fetch([127, 0, 0, 1], closed.port(), request, &mut [0u8; 4]);
    }
    println!(
        "raw libc: {} (correct only because each error path calls close)",
        open_fds() - before
    );
    let before = open_fds();
    for _ in 0..50 {
        let _ = facade_fetch(&closed, request, &mut [0u8; 4]);
    }
    println!(
        "facade:   {} (OwnedFd closes on every path)",
        open_fds() - before
    );
    println!("== portable: the same clients given an IPv6 address ==");
    // An IPv4-mapped IPv6 address: the client uses an AF_INET6 socket and a sockaddr_in6, and
    // reaches the IPv4 server of case 1 through the kernel's dual stack, so this runs on hosts
    // whose interfaces carry no IPv6 address (containers often have none, not even ::1).
    let acceptor = SockAcceptor::bind(&InetAddr::loopback_v4(0))?;
    let port = acceptor.local_addr()?.port();
    serve(&registry, acceptor, 1, b"PONG");
    let v6 = InetAddr::new_v6(Ipv4Addr::LOCALHOST.to_ipv6_mapped(), port);
    let raw_v4 = ipv4_only("// raw-begin", "// raw-end");
    let fac_v4 = ipv4_only("// facade-begin", "// facade-end");
    println!(
        "raw libc: cannot be called: its address is a [u8; 4] put into a sockaddr_in; {raw_v4} IPv4-only names (AF_INET, sockaddr_in, sin_*) to rewrite"
    );
    let mut reply = [0u8; 4];
    facade_fetch(&v6, request, &mut reply)?;
    println!(
        "facade:   unchanged, given [::ffff:127.0.0.1] (ipv6: {}): reply {:?}; {fac_v4} IPv4-only names",
        v6.is_ipv6(),
        String::from_utf8_lossy(&reply)
    );
    registry.join_group("servers");
    Ok(())
}
