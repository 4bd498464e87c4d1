//! `--concurrency proactor`: the TCP and UDP ingest on io_uring, and the fallback to the reactor where
//! io_uring is refused (a seccomp filter, as a container's default profile has, makes
//! `io_uring_setup` fail with `EPERM` in the refusing thread and everything it starts).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{Server, TempDir, ace_frame, count_lines, send_and_wait};

fn frames(tag: &str, n: usize) -> Vec<u8> {
    (0..n)
        .flat_map(|i| ace_frame(&format!("{tag} {i}")))
        .collect()
}

#[test]
fn the_proactor_serves_ace_and_syslog_over_tcp() {
    let server = Server::start("proactor", |c| c.proactor = true);
    assert!(server.proactor(), "io_uring works on this kernel");
    send_and_wait(server.at.ace.unwrap(), &frames("ace", 300));
    send_and_wait(
        server.at.syslog_tcp.unwrap(),
        b"<14>1 2026-11-26T00:00:00Z h app 1 - - one\n<14>1 2026-11-26T00:00:00Z h app 1 - - two",
    );
    let (stats, stored) = server.stop();
    assert_eq!(
        (stats.ace, stats.syslog, stats.rejected),
        (300, 2, 0),
        "{stats:?}"
    );
    assert_eq!(count_lines(&stored), 302);
}

#[test]
fn refused_io_uring_falls_back_to_the_reactor_which_still_ingests() {
    let (proactor, stats) = std::thread::spawn(|| {
        wrapper_facade::uring::refuse_in_this_thread().expect("seccomp filter");
        let server = Server::start("refused", |c| {
            c.proactor = true;
            c.syslog_port = None;
        });
        let on_proactor = server.proactor();
        send_and_wait(server.at.ace.unwrap(), &frames("fallback", 50));
        (on_proactor, server.stop().0)
    })
    .join()
    .unwrap();
    assert!(!proactor, "io_uring was refused: the reactor serves");
    assert_eq!(stats.ace, 50, "{stats:?}");
}

#[test]
fn the_logd_binary_warns_and_falls_back_when_io_uring_is_refused() {
    let dir = TempDir::new("refused-binary");
    let data = dir.0.clone();
    // The child inherits the filter of the thread that starts it.
    let mut child = std::thread::spawn(move || {
        wrapper_facade::uring::refuse_in_this_thread().expect("seccomp filter");
        crate::support::spawn(
            Command::new(env!("CARGO_BIN_EXE_logd"))
                .args(["--ace-port", "0", "--syslog-port", "off"])
                .args(["--concurrency", "proactor", "--log-format", "text"])
                .arg("--data-dir")
                .arg(&data)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped()),
        )
        .unwrap()
    })
    .join()
    .unwrap();
    /// Killed when the test fails before it exited.
    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            if matches!(self.0.try_wait(), Ok(None)) {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
    }
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut err = child.stderr.take().unwrap();
    let mut child = Reap(child);
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let addr: SocketAddr = line
        .trim()
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .expect(&line);
    let mut storing = String::new();
    out.read_line(&mut storing).unwrap();
    assert!(storing.contains("(reactor)"), "{storing}");
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(&frames("binary", 20)).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    s.read_to_end(&mut Vec::new()).unwrap();
    let pid = child.0.id().to_string();
    let term = crate::support::status(Command::new("kill").args(["-TERM", &pid])).unwrap();
    assert!(term.success());
    assert!(child.0.wait().unwrap().success());
    let mut log = String::new();
    err.read_to_string(&mut log).unwrap();
    assert!(
        log.contains("--concurrency proactor: the io_uring ring could not be set up")
            && log.contains("io_uring is unavailable here (errno 1: EPERM")
            && log.contains("falling back to the reactor"),
        "{log}"
    );
    let stored = logging_service::store::read_records(&dir.0).unwrap();
    assert_eq!(count_lines(&stored), 20);
}

#[test]
fn a_listener_removed_from_the_svc_conf_is_closed_on_the_proactor_when_reconfigure_returns() {
    use logging_service::logd::{Logd, LogdConfig};
    use logging_service::store::StoreConfig;
    let dir = TempDir::new("proactor-svc");
    std::fs::create_dir_all(&dir.0).unwrap();
    let conf = dir.0.join("svc.conf");
    std::fs::write(
        &conf,
        "static ACE_Logging \"-p 0\"\nstatic Syslog_Logging \"-p 0\"\n",
    )
    .unwrap();
    let mut logd = Logd::start(LogdConfig {
        svc_conf: Some(conf.clone()),
        proactor: true,
        store: StoreConfig::new(dir.0.join("data")),
        ..LogdConfig::default()
    })
    .unwrap();
    assert!(logd.proactor());
    let (ace_addr, syslog_addr) = (
        logd.listening().ace.unwrap(),
        logd.listening().syslog_tcp.unwrap(),
    );
    send_and_wait(ace_addr, &frames("before", 3));
    // No other test's child may hold a copy of the listener meanwhile.
    let settled = wrapper_facade::process::without_spawns();
    std::fs::write(&conf, "static Syslog_Logging \"-p 0\"\n").unwrap();
    assert!(logd.reconfigure().unwrap().is_ok());
    assert_eq!(
        TcpStream::connect(ace_addr).unwrap_err().kind(),
        std::io::ErrorKind::ConnectionRefused
    );
    drop(settled);
    assert_eq!(logd.listening().syslog_tcp, Some(syslog_addr));
    send_and_wait(syslog_addr, b"<13>1 - host app - - - still served\n");
    let stats = logd.stop().unwrap();
    assert_eq!((stats.ace, stats.syslog), (3, 1), "{stats:?}");
}

#[test]
fn the_proactor_receives_syslog_udp_from_logger_counting_oversized_datagrams() {
    let Some(logger) = pattern_core::peer::program("logger", "bsdutils") else {
        return;
    };
    let server = Server::start("proactor-udp", |c| {
        c.proactor = true;
        c.ace_port = None;
        c.max_frame = 1024;
    });
    assert!(server.proactor());
    let to = server.at.syslog_udp.unwrap();
    // util-linux logger over UDP, RFC 5424, one datagram per line.
    let port = to.port().to_string();
    let mut child = crate::support::spawn(
        Command::new(&logger)
            .args([
                "--udp",
                "--rfc5424",
                "--server",
                "127.0.0.1",
                "--port",
                &port,
            ])
            .args(["-t", "udpro"])
            .stdin(Stdio::piped()),
    )
    .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for i in 0..200 {
        writeln!(stdin, "datagram {i}").unwrap();
    }
    drop(stdin);
    assert!(child.wait().unwrap().success());
    // Past --max-frame: dropped and counted; the receive that got it goes on.
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.send_to(format!("<13>{}", "x".repeat(2000)).as_bytes(), to)
        .unwrap();
    s.send_to(b"<13>1 - h app - - - after the big one", to)
        .unwrap();
    server.wait_for_records(201);
    let (stats, stored) = server.stop();
    assert_eq!(
        (stats.syslog_udp, stats.udp_oversized, stats.rejected),
        (201, 1, 0),
        "{stats:?}"
    );
    assert_eq!(stats.syslog_udp_input.read, 202, "{stats:?}");
    let records: Vec<_> = stored.into_iter().flat_map(|(_, l)| l).collect();
    let (logger_records, other): (Vec<_>, Vec<_>) = records
        .iter()
        .partition(|r| r.app.as_deref() == Some("udpro"));
    // One sender, one socket: in the order sent.
    assert_eq!(logger_records.len(), 200);
    for (i, r) in logger_records.iter().enumerate() {
        assert_eq!(r.message, format!("datagram {i}"), "{r:?}");
    }
    assert_eq!(other.len(), 1);
    assert_eq!(other[0].message, "after the big one");
}

#[test]
fn a_syslog_listener_removed_from_the_svc_conf_closes_its_udp_port_on_the_proactor() {
    use logging_service::logd::{Logd, LogdConfig};
    use logging_service::store::StoreConfig;
    let dir = TempDir::new("proactor-udp-svc");
    std::fs::create_dir_all(&dir.0).unwrap();
    let conf = dir.0.join("svc.conf");
    std::fs::write(&conf, "static Syslog_Logging \"-p 0\"\n").unwrap();
    let mut logd = Logd::start(LogdConfig {
        svc_conf: Some(conf.clone()),
        proactor: true,
        store: StoreConfig::new(dir.0.join("data")),
        ..LogdConfig::default()
    })
    .unwrap();
    assert!(logd.proactor());
    let udp = logd.listening().syslog_udp.unwrap();
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.send_to(b"<13>1 - h app - - - before", udp).unwrap();
    while logd.stats().syslog_udp < 1 {
        std::thread::yield_now();
    }
    let settled = wrapper_facade::process::without_spawns();
    std::fs::write(&conf, "").unwrap();
    assert!(logd.reconfigure().unwrap().is_ok());
    // The port is closed when reconfigure returns: binding it again succeeds.
    std::net::UdpSocket::bind(udp).expect("the UDP port was closed");
    drop(settled);
    let stats = logd.stop().unwrap();
    assert_eq!(stats.syslog_udp, 1, "{stats:?}");
}

/// A proactor whose completion queue holds four entries takes a burst of connections: the
/// kernel ends the multishot accept and receives that cannot post, and the proactor re-arms
/// them, so no client is refused or reset, every record is stored, and the listener still
/// accepts afterwards (before the fix, the accept's end closed the listener: 2,220 of 4,000
/// idle clients of the memory benchmark were stored, the rest refused).
#[test]
fn a_burst_of_connections_larger_than_the_completion_queue_loses_nothing() {
    const CLIENTS: usize = 200;
    let server = Server::start("proactor-burst", |c| {
        c.proactor = true;
        c.ace_port = None;
        c.proactor_ring_entries = 2;
    });
    assert!(server.proactor());
    let addr = server.at.syslog_tcp.unwrap();
    let mut clients: Vec<TcpStream> = (0..CLIENTS)
        .map(|_| TcpStream::connect(addr).expect("connect"))
        .collect();
    for (i, c) in clients.iter_mut().enumerate() {
        c.write_all(format!("<13>1 - burst app - - - record {i}\n").as_bytes())
            .unwrap();
    }
    for c in &mut clients {
        c.shutdown(Shutdown::Write).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut rest = Vec::new();
        c.read_to_end(&mut rest)
            .expect("served to the end, not reset");
    }
    send_and_wait(addr, b"<13>1 - late app - - - after the burst\n");
    let (stats, stored) = server.stop();
    assert_eq!(
        (stats.syslog, stats.rejected),
        (CLIENTS as u64 + 1, 0),
        "{stats:?}"
    );
    let mut messages: Vec<String> = stored
        .into_iter()
        .flat_map(|(_, l)| l)
        .map(|r| r.message)
        .collect();
    messages.sort();
    let mut sent: Vec<String> = (0..CLIENTS).map(|i| format!("record {i}")).collect();
    sent.push("after the burst".into());
    sent.sort();
    assert_eq!(messages, sent);
}

/// A client that half-closes and waits for logd's close knows its records are in the files,
/// under the proactor as under the dispatchers: the connection closes only once the store
/// has done every batch it handed over (read here while logd runs, not after a stop).
#[test]
fn a_connection_closes_only_once_its_records_are_in_the_files() {
    for model in ["reactor", "proactor"] {
        let server = Server::start("close-after-store", |c| {
            crate::support::set_model(c, model);
            c.ace_port = None;
        });
        let mut records = String::new();
        for round in 0..5 {
            for i in 0..200 {
                records.push_str(&format!("<13>1 - closer app - - - {round}.{i}\n"));
            }
            send_and_wait(server.at.syslog_tcp.unwrap(), records.as_bytes());
            assert_eq!(
                crate::support::count_lines(&server.stored()),
                200 * (round + 1) * (round + 2) / 2,
                "{model}, after connection {round}"
            );
        }
        server.stop();
    }
}
