//! Descriptor-leak checks: count `/proc/self/fd` before and after each error path.
//!
//! Other tests of this binary open descriptors concurrently, so counting in this process would be
//! racy. The test therefore re-runs this very test binary as a child process, filtered to this one
//! test with one test thread, and the child does the counting where nothing else runs.

use std::io::{self, Read};
use std::time::Duration;

use wrapper_facade::file::AppendFile;
use wrapper_facade::mmap::{MappedFile, MappedFileMut};
use wrapper_facade::notify::Pipe;
use wrapper_facade::process::{ExitStatus, Process, ProcessOptions, Redirect};
use wrapper_facade::{AcceptorOptions, InetAddr, SockAcceptor, SockConnector, SockDgram};

const CHILD_ENV: &str = "WF_LEAK_CHECK_CHILD";
const TEST_NAME: &str = "leaks::no_descriptor_leaks_on_error_paths";

fn open_fds() -> usize {
    // The directory handle of read_dir is itself counted, equally before and after.
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Runs `op`, which must fail, and asserts that it left the descriptor count unchanged.
fn check<T: std::fmt::Debug>(what: &str, op: impl FnOnce() -> io::Result<T>) -> io::Error {
    let before = open_fds();
    let err = op().expect_err(what);
    let after = open_fds();
    assert_eq!(
        before,
        after,
        "{what}: {} descriptor(s) leaked ({err})",
        after as isize - before as isize
    );
    println!("no leak: {what}: {err}");
    err
}

/// A loopback address of its own, where the other tests' binds to 127.0.0.1 port 0 cannot
/// take a port freed there.
const QUIET_LOOPBACK: std::net::Ipv4Addr = std::net::Ipv4Addr::new(127, 0, 0, 77);

/// An address nobody listens on: bound, then freed.
fn closed_addr() -> InetAddr {
    let port = SockAcceptor::bind(&InetAddr::new_v4(QUIET_LOOPBACK, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    InetAddr::new_v4(QUIET_LOOPBACK, port)
}

fn run_checks() {
    let listener = SockAcceptor::bind(&InetAddr::loopback_v4(0)).unwrap();
    let busy = listener.local_addr().unwrap();
    let e = check("bind an acceptor to a busy port", || {
        SockAcceptor::bind(&busy)
    });
    assert_eq!(e.raw_os_error(), Some(libc::EADDRINUSE));

    let e = check("connect to a closed port", || {
        SockConnector::default().connect(&closed_addr())
    });
    assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);

    let e = check("connect from a busy local address", || {
        SockConnector::default().bind_local(busy).connect(&busy)
    });
    assert_eq!(e.raw_os_error(), Some(libc::EADDRINUSE));

    let full = SockAcceptor::open(
        &InetAddr::loopback_v4(0),
        &AcceptorOptions::default().backlog(0),
    )
    .unwrap();
    let full_addr = full.local_addr().unwrap();
    let _held = super::deadline::fill_backlog(&full_addr);
    let e = check("connect with a deadline that passes", || {
        SockConnector::default().connect_timeout(&full_addr, Duration::from_millis(50))
    });
    assert_eq!(e.kind(), io::ErrorKind::TimedOut);

    let idle = SockAcceptor::open(
        &InetAddr::loopback_v4(0),
        &AcceptorOptions::default().nonblocking(true),
    )
    .unwrap();
    let e = check("accept with nobody waiting", || idle.accept());
    assert_eq!(e.kind(), io::ErrorKind::WouldBlock);

    let udp = SockDgram::bind(&InetAddr::loopback_v4(0)).unwrap();
    let udp_addr = udp.local_addr().unwrap();
    check("bind a datagram socket to a busy port", || {
        SockDgram::bind(&udp_addr)
    });

    let e = check("spawn a missing program with a pipe handed over", || {
        let (reader, writer) = Pipe::new()?.into_parts();
        let r = Process::spawn(
            ProcessOptions::new("/no/such/program").stdout(Redirect::Fd(writer.into())),
        );
        drop(reader);
        r
    });
    assert_eq!(e.kind(), io::ErrorKind::NotFound);

    let path = super::temp_path("leak-mmap");
    std::fs::write(&path, b"data").unwrap();
    let reader_map = MappedFile::open(&path).unwrap();
    let e = check("map read-write a file mapped by a reader", || {
        MappedFileMut::open(&path)
    });
    assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
    drop(reader_map);
    std::fs::remove_file(&path).unwrap();

    let dir = std::env::temp_dir();
    check("map a directory (open succeeds, mmap fails)", || {
        MappedFile::open(&dir)
    });
    check("open a directory for appending", || {
        AppendFile::open(&dir, wrapper_facade::file::FsyncPolicy::Never)
    });

    check("resolve a reserved invalid name", || {
        InetAddr::resolve("no-such-host.invalid", 1).map_err(io::Error::from)
    });

    // Success paths give everything back too.
    let before = open_fds();
    {
        let (client, server) = super::tcp_pair();
        client.send_n(b"x").unwrap();
        let mut b = [0u8; 1];
        server.recv_n(&mut b).unwrap();
        let mut child = Process::spawn(ProcessOptions::new("true")).unwrap();
        assert_eq!(child.wait().unwrap(), ExitStatus::Exited(0));
    }
    assert_eq!(before, open_fds(), "success paths leaked");
}

#[test]
fn no_descriptor_leaks_on_error_paths() {
    if std::env::var_os(CHILD_ENV).is_some() {
        run_checks();
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let (mut out, writer) = Pipe::new().unwrap().into_parts();
    let mut child = Process::spawn(
        ProcessOptions::new(exe.to_str().unwrap())
            .args([TEST_NAME, "--exact", "--test-threads=1", "--nocapture"])
            .env(CHILD_ENV, "1")
            .stdout(Redirect::Fd(writer.into())),
    )
    .unwrap();
    let mut text = String::new();
    out.read_to_string(&mut text).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "leak checks failed ({status}):\n{text}");
    assert!(text.contains("1 passed"), "the child ran no test:\n{text}");
    assert_eq!(text.matches("no leak:").count(), 11, "{text}");
}
