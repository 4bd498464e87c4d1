//! What slow or hostile clients may cost: idle partial frames, the global buffer cap,
//! oversized octet counts and datagrams, range-checked options, the listen backlog.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

use logging_service::logd::{Logd, LogdConfig};
use logging_service::store::{InputCounts, StoreConfig};

use crate::support::{Server, TempDir};

const PATIENCE: Duration = Duration::from_secs(30);

/// Polls `cond` until it holds; fails after [`PATIENCE`].
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::park_timeout(Duration::from_millis(5));
    }
}

#[test]
fn an_octet_count_past_max_frame_closes_the_connection_instead_of_swallowing_it() {
    let server = Server::start("huge-count", |c| c.max_frame = 1024);
    let addr = server.at.syslog_tcp.unwrap();
    for count in ["2147483648", "1025"] {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        s.write_all(format!("<13>ok {count}\n{count} <13>never\n<13>after\n").as_bytes())
            .unwrap();
        // No half-close: the server itself must close.
        assert_eq!(s.read(&mut [0u8; 8]).unwrap(), 0, "closed by the server");
    }
    crate::support::send_and_wait(addr, b"<13>other client\n");
    let (stats, stored) = server.stop();
    assert_eq!(stats.oversized_closed, 2);
    assert_eq!(stats.syslog, 3);
    // Per input: both oversized frames are accounted for, as `oversized`, not malformed.
    assert_eq!(
        stats.syslog_tcp_input,
        InputCounts {
            read: 5,
            records: 3,
            rejected: 0,
            oversized: 2,
            unfinished: 0
        }
    );
    let lines = &stored[0].1;
    assert!(lines.iter().any(|r| r.message == "ok 2147483648"));
    assert!(lines.iter().any(|r| r.message == "other client"));
    assert!(
        !lines
            .iter()
            .any(|r| r.message == "after" || r.message == "never")
    );
}

#[test]
fn a_frame_cut_off_by_the_close_is_counted_as_unfinished() {
    let server = Server::start("cut-frame", |_| {});
    let whole = crate::support::ace_frame("whole");
    let cut = crate::support::ace_frame("cut off by the close");
    let mut bytes = whole.clone();
    bytes.extend(&cut[..cut.len() / 2]);
    crate::support::send_and_wait(server.at.ace.unwrap(), &bytes);
    let (stats, stored) = server.stop();
    // It used to vanish: read, never stored, in no counter.
    assert_eq!(
        stats.ace_input,
        InputCounts {
            read: 2,
            records: 1,
            rejected: 0,
            oversized: 0,
            unfinished: 1
        }
    );
    assert_eq!(crate::support::count_lines(&stored), 1);
}

#[test]
fn udp_datagrams_past_max_frame_are_dropped_and_counted() {
    let server = Server::start("udp-max", |c| c.max_frame = 1024);
    let to = server.at.syslog_udp.unwrap();
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.send_to(format!("<13>{}", "x".repeat(2000)).as_bytes(), to)
        .unwrap();
    s.send_to(format!("<13>{}", "y".repeat(1020)).as_bytes(), to)
        .unwrap();
    s.send_to(b"<13>small", to).unwrap();
    server.wait_for_records(2);
    let (stats, stored) = server.stop();
    assert_eq!(stats.udp_oversized, 1);
    assert_eq!(stats.syslog, 2);
    assert_eq!(
        stats.syslog_udp_input,
        InputCounts {
            read: 3,
            records: 2,
            rejected: 0,
            oversized: 1,
            unfinished: 0
        }
    );
    assert!(!stored[0].1.iter().any(|r| r.message.contains("xxxx")));
}

#[test]
fn a_trickled_frame_is_closed_after_the_idle_timeout() {
    let idle = Duration::from_millis(200);
    let server = Server::start("slowloris", |c| c.idle = idle);
    let mut s = TcpStream::connect(server.at.syslog_tcp.unwrap()).unwrap();
    s.write_all(b"<13>complete\n<13>never finished").unwrap();
    s.set_nonblocking(true).unwrap();
    // One byte at a time, far more often than the idle timeout: every byte used to restart
    // the idle clock, so this connection was never closed.
    let deadline = Instant::now() + PATIENCE;
    let closed = loop {
        assert!(
            Instant::now() < deadline,
            "the trickling client was never closed"
        );
        match s.read(&mut [0u8; 1]) {
            Ok(0) => break true,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => break true,
            Ok(_) => panic!("the server sent data"),
        }
        if s.write_all(b"x").is_err() {
            break true;
        }
        std::thread::sleep(idle / 8); // the trickle's pace, not a synchronisation
    };
    assert!(closed);
    let quiet = TcpStream::connect(server.at.syslog_tcp.unwrap()).unwrap();
    quiet.set_read_timeout(Some(PATIENCE)).unwrap();
    assert_eq!((&quiet).read(&mut [0u8; 1]).unwrap(), 0);
    let (stats, stored) = server.stop();
    assert_eq!(stats.idle_partial, 1);
    assert_eq!(stats.idle_closed, 1, "a quiet client is idle, not partial");
    assert_eq!(stats.syslog, 1);
    // The frame that never ended is read, and dropped as `unfinished`.
    assert_eq!(
        (
            stats.syslog_tcp_input.read,
            stats.syslog_tcp_input.unfinished
        ),
        (2, 1)
    );
    assert_eq!(stored[0].1[0].message, "complete");
}

#[test]
fn unfinished_frames_of_all_connections_stay_under_max_buffered() {
    const CLIENTS: usize = 10;
    const PARKED: usize = 10 * 1024;
    const CAP: usize = 64 * 1024;
    let server = Server::start("cap", |c| {
        c.max_frame = 16 * 1024;
        c.max_buffered = CAP;
    });
    let addr = server.at.syslog_tcp.unwrap();
    let body = format!("<13>{}", "z".repeat(12_000 - 4));
    let frame = format!("{} {body}", body.len()).into_bytes();
    let mut clients: Vec<TcpStream> = (0..CLIENTS)
        .map(|_| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(&frame[..PARKED]).unwrap();
            s
        })
        .collect();
    // Every connection has either all its bytes reserved or was closed for the cap.
    wait_until("every parked frame to be read or refused", || {
        let st = server.output.stats();
        st.buffered_bytes as usize == PARKED * (CLIENTS - st.buffer_cap_closed as usize)
    });
    let st = server.output.stats();
    assert!(
        st.buffer_cap_closed as usize >= CLIENTS - CAP / PARKED,
        "{st:?}"
    );
    assert!(st.buffered_peak as usize <= CAP, "{st:?}");
    let survivors = CLIENTS - st.buffer_cap_closed as usize;
    assert!(survivors >= 1);
    // The survivors finish their frames; the refused ones find their connection closed.
    for s in &mut clients {
        let _ = s.write_all(&frame[PARKED..]);
        let _ = s.shutdown(Shutdown::Write);
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        let _ = s.read_to_end(&mut Vec::new());
    }
    wait_until("every survivor's record", || {
        server.output.stats().syslog as usize == survivors
    });
    let (stats, _) = server.stop();
    assert_eq!(stats.buffered_bytes, 0, "{stats:?}");
    assert!(stats.buffered_peak as usize <= CAP);
}

#[test]
fn out_of_range_settings_are_refused_before_anything_starts() {
    let dir = TempDir::new("ranges");
    let base = || LogdConfig {
        ace_port: Some(0),
        syslog_port: None,
        store: StoreConfig::new(&dir.0),
        ..LogdConfig::default()
    };
    let cases: Vec<(LogdConfig, &str)> = vec![
        (
            LogdConfig {
                idle: Duration::from_secs(u64::MAX),
                ..base()
            },
            "idle timeout",
        ),
        (
            LogdConfig {
                max_frame: 0,
                ..base()
            },
            "max frame",
        ),
        (
            LogdConfig {
                max_buffered: 10,
                ..base()
            },
            "max buffered",
        ),
        (
            LogdConfig {
                backlog: 0,
                ..base()
            },
            "backlog",
        ),
        (
            LogdConfig {
                concurrency: leader_followers::Concurrency::LeaderFollowers { threads: 100_000 },
                ..base()
            },
            "threads",
        ),
    ];
    for (cfg, what) in cases {
        let err = Logd::start(cfg).unwrap_err().to_string();
        assert!(err.contains(what) && err.contains("out of range"), "{err}");
    }
}

#[test]
fn the_binary_refuses_out_of_range_numbers_with_a_message() {
    let dir = TempDir::new("binary-ranges");
    for (args, says) in [
        (
            &["--idle-timeout", "18446744073709551615"][..],
            "--idle-timeout",
        ),
        (
            &["--concurrency", "leader-followers", "--threads", "100000"],
            "--threads",
        ),
        (&["--threads", "0"], "--threads"),
        (&["--max-frame", "0"], "--max-frame"),
        (&["--max-frame", "99999999999"], "--max-frame"),
        (
            &["--max-frame", "4096", "--max-buffered", "100"],
            "--max-buffered",
        ),
        (&["--backlog", "0"], "--backlog"),
        (&["--backlog", "70000"], "--backlog"),
        (&["--keep", "1000000"], "--keep"),
        (&["--rotate-bytes", "0"], "--rotate-bytes"),
        (&["--fsync", "18446744073709551615ms"], "--fsync"),
        (&["--syslog-port", "65536"], "--syslog-port"),
    ] {
        let mut child = crate::support::spawn(
            Command::new(env!("CARGO_BIN_EXE_logd"))
                .args(["--ace-port", "0", "--syslog-port", "off"])
                .args(args)
                .arg("--data-dir")
                .arg(&dir.0)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped()),
        )
        .unwrap();
        // Accepting the value would start a server: fail instead of waiting for it.
        let deadline = Instant::now() + PATIENCE;
        let status = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break st;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{args:?} was accepted");
            }
            std::thread::park_timeout(Duration::from_millis(5));
        };
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        assert_eq!(status.code(), Some(64), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

#[test]
fn the_listen_backlog_is_the_configured_one() {
    let Some(ss) = pattern_core::peer::program("ss", "iproute2") else {
        return;
    };
    let server = Server::start("backlog", |c| c.backlog = 777);
    let port = server.at.ace.unwrap().port();
    let out = crate::support::output(Command::new(ss).args(["-ltnH", &format!("sport = :{port}")]))
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    // LISTEN Recv-Q Send-Q ...: for a listener Send-Q is the backlog.
    let send_q: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    assert_eq!(send_q, ["777"], "{text}");
    drop(server);
    // The default is the kernel's maximum.
    assert_eq!(
        LogdConfig::default().backlog,
        logging_service::limits::default_backlog()
    );
}

/// logd in a child process whose descriptor table (`RLIMIT_NOFILE`, set by util-linux
/// `prlimit`) holds only a few dozen: clients fill it, some leave, and the acceptor must
/// resume by itself and serve the ones waiting in the backlog and a new one.
#[test]
fn running_out_of_descriptors_pauses_accepting_and_resumes_by_itself() {
    for model in [
        "reactor",
        "leader-followers",
        "half-sync-half-async",
        "proactor",
    ] {
        out_of_descriptors_under(model);
    }
}

fn out_of_descriptors_under(model: &str) {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let Some(prlimit) = pattern_core::peer::program("prlimit", "util-linux") else {
        return;
    };
    let dir = TempDir::new("emfile");
    let mut child = crate::support::spawn(
        Command::new(prlimit)
            .args(["--nofile=48:48", "--"])
            .arg(env!("CARGO_BIN_EXE_logd"))
            .args([
                "--ace-port",
                "0",
                "--syslog-port",
                "off",
                "--idle-timeout",
                "0",
            ])
            .arg("--data-dir")
            .arg(&dir.0)
            .stdin(Stdio::null())
            .args(["--concurrency", model])
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
    )
    .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            if matches!(self.0.try_wait(), Ok(None)) {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
    }
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut child = Kill(child);
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let addr: std::net::SocketAddr = line
        .trim()
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .expect(&line);
    // More clients than descriptors: each sends a record and stays connected.
    let mut clients: Vec<TcpStream> = (0..60)
        .map(|i| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(&crate::support::ace_frame(&format!("crowd {i}")))
                .unwrap();
            s
        })
        .collect();
    // Half of them leave; the server closes those it had accepted, and must then accept
    // the ones still waiting in the backlog, and a newcomer.
    for mut s in clients.drain(..30) {
        s.shutdown(Shutdown::Write).unwrap();
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        let _ = s.read_to_end(&mut Vec::new());
    }
    let mut late = TcpStream::connect(addr).unwrap();
    late.write_all(&crate::support::ace_frame("newcomer"))
        .unwrap();
    late.shutdown(Shutdown::Write).unwrap();
    late.set_read_timeout(Some(PATIENCE)).unwrap();
    assert_eq!(
        late.read(&mut [0u8; 8]).unwrap(),
        0,
        "{model}: the newcomer was served and closed"
    );
    for mut s in clients.drain(..) {
        s.shutdown(Shutdown::Write).unwrap();
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        let _ = s.read_to_end(&mut Vec::new());
    }
    assert!(
        crate::support::status(Command::new("kill").args(["-TERM", &child.0.id().to_string()]))
            .unwrap()
            .success()
    );
    assert!(child.0.wait().unwrap().success());
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert!(
        rest.contains("61 records stored (61 ACE, 0 syslog, 0 RELP)"),
        "{model}: {rest}"
    );
    let backoffs: u64 = rest
        .lines()
        .find(|l| l.starts_with("logd: limits: "))
        .into_iter()
        .flat_map(|l| l.split(", "))
        .find_map(|p| p.strip_suffix(" accept back-offs"))
        .and_then(|n| n.parse().ok())
        .expect(&rest);
    assert!(backoffs >= 1, "{model}: {rest}");
}
