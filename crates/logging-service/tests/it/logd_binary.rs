//! The `logd` binary: command line, the LISTENING lines, SIGHUP and a graceful SIGTERM.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{TempDir, ace_frame};

/// How long a test waits for logd to answer before it fails instead of hanging.
const PATIENCE: Duration = Duration::from_secs(60);

/// A `logd` child process, killed when the test ends before it exited (a failing test must
/// not leave a server behind).
struct Logd(std::process::Child);

impl Drop for Logd {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[test]
fn bad_options_are_refused_with_usage() {
    for args in [
        &["--concurrency", "threads-galore"][..],
        &["--ace-port", "99999"],
        &["--bogus", "1"],
        &["--bind"],
    ] {
        let out =
            crate::support::output(Command::new(env!("CARGO_BIN_EXE_logd")).args(args)).unwrap();
        assert_eq!(out.status.code(), Some(64), "{args:?}");
        assert!(!out.stderr.is_empty());
    }
}

#[test]
fn sighup_reopens_and_sigterm_stops_after_writing_everything() {
    let dir = TempDir::new("binary");
    let mut child = Logd(
        crate::support::spawn(
            Command::new(env!("CARGO_BIN_EXE_logd"))
                .args([
                    "--ace-port",
                    "0",
                    "--syslog-port",
                    "off",
                    "--concurrency",
                    "leader-followers",
                    "--threads",
                    "2",
                ])
                .arg("--data-dir")
                .arg(&dir.0)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped()),
        )
        .unwrap(),
    );
    let pid = child.0.id();
    let mut out = BufReader::new(child.0.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let addr: SocketAddr = line
        .trim()
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .expect(&line);
    assert!(
        line.starts_with("logd: ACE logging (tcp) listening on 127.0.0.1:"),
        "{line}"
    );
    let send = |n: usize, tag: &str| {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        for i in 0..n {
            s.write_all(&ace_frame(&format!("{tag} {i}"))).unwrap();
        }
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut sink = Vec::new();
        std::io::Read::read_to_end(&mut s, &mut sink).unwrap();
    };
    send(100, "first");
    // An external rotation: move the file away, then SIGHUP makes logd open a new one.
    let current = dir.0.join("127.0.0.1.log");
    std::fs::rename(&current, dir.0.join("moved.log.old")).unwrap();
    let signal = |name: &str| {
        let st = crate::support::status(
            Command::new("kill").args([&format!("-{name}"), &pid.to_string()]),
        )
        .unwrap();
        assert!(st.success());
    };
    signal("HUP");
    let mut err = BufReader::new(child.0.stderr.take().unwrap());
    let mut eline = String::new();
    while !eline.contains("files reopened") {
        eline.clear();
        assert!(
            err.read_line(&mut eline).unwrap() > 0,
            "logd exited before reopening"
        );
    }
    send(50, "second");
    signal("TERM");
    let status = child.0.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    assert!(
        rest.contains("150 records stored (150 ACE, 0 syslog)"),
        "{rest}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.0.join("moved.log.old"))
            .unwrap()
            .lines()
            .count(),
        100
    );
    assert_eq!(
        std::fs::read_to_string(&current).unwrap().lines().count(),
        50
    );
}

#[test]
fn with_a_svc_conf_sighup_reconfigures_live() {
    let dir = TempDir::new("binary-svc");
    std::fs::create_dir_all(&dir.0).unwrap();
    let conf = dir.0.join("svc.conf");
    std::fs::write(&conf, "static ACE_Logging \"-p 0\"\n").unwrap();
    let mut child = Logd(
        crate::support::spawn(
            Command::new(env!("CARGO_BIN_EXE_logd"))
                .arg("-f")
                .arg(&conf)
                .arg("--data-dir")
                .arg(dir.0.join("data"))
                .stdout(Stdio::piped())
                .stderr(Stdio::null()),
        )
        .unwrap(),
    );
    let pid = child.0.id().to_string();
    let mut out = BufReader::new(child.0.stdout.take().unwrap());
    let mut next_line = || {
        let mut line = String::new();
        assert!(out.read_line(&mut line).unwrap() > 0, "logd exited");
        line
    };
    let first = next_line();
    assert!(
        first.starts_with("logd: ACE logging (tcp) listening on"),
        "{first}"
    );
    assert!(
        !next_line().contains("syslog"),
        "only what the svc.conf names runs"
    );
    std::fs::write(
        &conf,
        "static ACE_Logging \"-p 0\"\nstatic Syslog_Logging \"-p 0\"\n",
    )
    .unwrap();
    assert!(
        crate::support::status(Command::new("kill").args(["-HUP", &pid]))
            .unwrap()
            .success()
    );
    let syslog: SocketAddr = loop {
        let line = next_line();
        if let Some(addr) = line.strip_prefix("logd: syslog (tcp) listening on ") {
            break addr.trim().parse().unwrap();
        }
    };
    let mut s = TcpStream::connect(syslog).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.write_all(b"<13>1 - edge-7 app - - - after reconfiguration\n")
        .unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut sink = Vec::new();
    std::io::Read::read_to_end(&mut s, &mut sink).unwrap();
    assert!(
        crate::support::status(Command::new("kill").args(["-TERM", &pid]))
            .unwrap()
            .success()
    );
    assert!(child.0.wait().unwrap().success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    assert!(
        rest.contains("1 records stored (0 ACE, 1 syslog)"),
        "{rest}"
    );
    let stored = logging_service::store::read_file(&dir.0.join("data/edge-7.log")).unwrap();
    let last = stored.last().unwrap();
    assert_eq!(
        (
            last.host.as_str(),
            last.priority().as_str(),
            last.message.as_str()
        ),
        ("edge-7", "user.notice", "after reconfiguration"),
        "{stored:?}"
    );
}

#[test]
fn check_config_validates_like_a_reload_and_starts_nothing() {
    let dir = TempDir::new("binary-check");
    std::fs::create_dir_all(&dir.0).unwrap();
    let conf = dir.0.join("svc.conf");
    let check = |text: &str| {
        std::fs::write(&conf, text).unwrap();
        crate::support::output(
            Command::new(env!("CARGO_BIN_EXE_logd"))
                .arg("--check-config")
                .arg("-f")
                .arg(&conf)
                .arg("--data-dir")
                .arg(dir.0.join("data")),
        )
        .unwrap()
    };
    let ok = check("static ACE_Logging \"-p 0\"\nstatic Syslog_Logging \"-p 0\"\n");
    assert!(ok.status.success(), "{ok:?}");
    assert!(String::from_utf8_lossy(&ok.stdout).contains("configuration OK"));
    assert!(!dir.0.join("data").exists(), "checking opened the store");
    let bad = check("static ACE_Logging \"-p 0\"\nstatic Syslog_Logging \"-p notaport\"\n");
    assert_eq!(bad.status.code(), Some(78), "EX_CONFIG");
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("svc.conf:2:1: Syslog_Logging: bad arguments: -p: bad port `notaport`"),
        "{err}"
    );
}

#[test]
fn sighup_with_a_bad_argument_keeps_the_listener_and_says_so() {
    let dir = TempDir::new("binary-bad-hup");
    std::fs::create_dir_all(&dir.0).unwrap();
    let conf = dir.0.join("svc.conf");
    std::fs::write(&conf, "static Syslog_Logging \"-p 0\"\n").unwrap();
    let mut child = Logd(
        crate::support::spawn(
            Command::new(env!("CARGO_BIN_EXE_logd"))
                .arg("-f")
                .arg(&conf)
                .arg("--data-dir")
                .arg(dir.0.join("data"))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped()),
        )
        .unwrap(),
    );
    let pid = child.0.id().to_string();
    let mut out = BufReader::new(child.0.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let addr: SocketAddr = line
        .strip_prefix("logd: syslog (tcp) listening on ")
        .expect(&line)
        .trim()
        .parse()
        .unwrap();
    std::fs::write(&conf, "static Syslog_Logging \"-p notaport\"\n").unwrap();
    assert!(
        crate::support::status(Command::new("kill").args(["-HUP", &pid]))
            .unwrap()
            .success()
    );
    let mut err = BufReader::new(child.0.stderr.take().unwrap());
    let mut seen = Vec::new();
    loop {
        let mut l = String::new();
        assert!(err.read_line(&mut l).unwrap() > 0, "logd exited: {seen:?}");
        if l.contains("reconfigur") {
            seen.push(l);
            break;
        }
    }
    assert!(
        seen[0].contains("reconfiguration refused, nothing changed")
            && seen[0].contains("svc.conf:1:1: Syslog_Logging: bad arguments"),
        "{seen:?}"
    );
    // Still accepting on the old port, and storing.
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.write_all(b"<13>1 - edge-8 app - - - after a bad reload\n")
        .unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    std::io::Read::read_to_end(&mut s, &mut Vec::new()).unwrap();
    assert!(
        crate::support::status(Command::new("kill").args(["-TERM", &pid]))
            .unwrap()
            .success()
    );
    assert!(child.0.wait().unwrap().success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    assert!(
        rest.contains("1 records stored (0 ACE, 1 syslog)"),
        "{rest}"
    );
}

/// Starts `logd` forwarding to a port nobody listens on, sends `n` records, and sends it
/// SIGTERM; returns the child, its data directory and its stderr.
fn stopping_with_a_dead_upstream(
    tag: &str,
    stop_timeout: &str,
    n: usize,
) -> (Logd, TempDir, BufReader<std::process::ChildStderr>) {
    let dir = TempDir::new(tag);
    let dead = std::net::TcpListener::bind("127.0.0.80:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut child = Logd(
        crate::support::spawn(
            Command::new(env!("CARGO_BIN_EXE_logd"))
                .args([
                    "--ace-port",
                    "0",
                    "--syslog-port",
                    "off",
                    "--forward-backoff",
                    "5ms:50ms",
                ])
                .args([
                    "--forward",
                    &dead.to_string(),
                    "--stop-timeout",
                    stop_timeout,
                ])
                .arg("--data-dir")
                .arg(&dir.0)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped()),
        )
        .unwrap(),
    );
    let mut out = BufReader::new(child.0.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let addr: SocketAddr = line
        .trim()
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .expect(&line);
    // Keep reading stdout so that logd never blocks on a full pipe; the summary is checked
    // through the spool instead.
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    let bytes: Vec<u8> = (0..n)
        .flat_map(|i| ace_frame(&format!("queued {i}")))
        .collect();
    crate::support::send_and_wait(addr, &bytes);
    kill(child.0.id(), "TERM");
    let err = BufReader::new(child.0.stderr.take().unwrap());
    (child, dir, err)
}

fn kill(pid: u32, signal: &str) {
    let st = crate::support::status(
        Command::new("kill").args([&format!("-{signal}"), &pid.to_string()]),
    )
    .unwrap();
    assert!(st.success());
}

/// Waits (bounded, so that a hang fails the test instead of hanging it) for the child to exit.
fn exits_within(child: &mut Logd, bound: Duration) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + bound;
    loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            return status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "logd is still running"
        );
        std::thread::park_timeout(Duration::from_millis(10));
    }
}

fn spooled_segments(dir: &TempDir) -> usize {
    std::fs::read_dir(dir.0.join("spool"))
        .map(|d| {
            d.filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "seg")
            })
            .count()
        })
        .unwrap_or(0)
}

/// Regression: SIGTERM with records queued for a dead upstream never returned. Now the
/// drain ends at `--stop-timeout` (1 s here; the bound below only keeps a hang from hanging
/// the test) and the records are in the spool.
#[test]
fn sigterm_with_a_dead_upstream_stops_after_the_stop_timeout_and_spools() {
    let (mut child, dir, _err) = stopping_with_a_dead_upstream("binary-dead-up", "1s", 20);
    let status = exits_within(&mut child, Duration::from_secs(1 + 10));
    assert!(status.success(), "{status:?}");
    assert!(
        spooled_segments(&dir) > 0,
        "the queued records were spooled"
    );
}

/// A second SIGTERM ends a drain that would otherwise last an hour.
#[test]
fn a_second_sigterm_stops_at_once() {
    let (mut child, dir, mut err) = stopping_with_a_dead_upstream("binary-second", "3600s", 20);
    let mut line = String::new();
    while !line.contains("stopping on") {
        line.clear();
        assert!(err.read_line(&mut line).unwrap() > 0, "logd exited early");
    }
    kill(child.0.id(), "TERM");
    let status = exits_within(&mut child, Duration::from_secs(60));
    assert!(status.success(), "{status:?}");
    assert!(
        spooled_segments(&dir) > 0,
        "the queued records were spooled"
    );
}

/// The records stored under `dir`, as message texts.
fn stored_messages(dir: &TempDir) -> Vec<String> {
    logging_service::store::read_records(&dir.0)
        .unwrap()
        .into_iter()
        .flat_map(|(_, records)| records)
        .map(|r| r.message)
        .collect()
}

/// systemd's socket activation, through systemd's own `systemd-socket-activate`: it binds the
/// port, and on the first connection starts logd with the socket as descriptor 3
/// (`LISTEN_FDS`); logd listens on it instead of binding, and the waiting connection's
/// records are stored.
#[test]
fn socket_activation_hands_logd_its_listening_socket() {
    let Some(activate) = pattern_core::peer::program("systemd-socket-activate", "systemd") else {
        return;
    };
    let dir = TempDir::new("binary-activation");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut child = Logd(
        crate::support::spawn(
            Command::new(activate)
                .arg("-l")
                .arg(addr.to_string())
                .arg("--")
                .arg(env!("CARGO_BIN_EXE_logd"))
                .args(["--ace-port", &port.to_string(), "--syslog-port", "off"])
                .arg("--data-dir")
                .arg(&dir.0)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped()),
        )
        .unwrap(),
    );
    let mut err = BufReader::new(child.0.stderr.take().unwrap());
    let mut line = String::new();
    while !line.starts_with("Listening on") {
        line.clear();
        assert!(
            err.read_line(&mut line).unwrap() > 0,
            "socket-activate ended"
        );
    }
    // This connection starts logd; logd accepts it on the socket it was given.
    let bytes: Vec<u8> = (0..5)
        .flat_map(|i| ace_frame(&format!("activated {i}")))
        .collect();
    crate::support::send_and_wait(addr, &bytes);
    let mut out = BufReader::new(child.0.stdout.take().unwrap());
    line.clear();
    out.read_line(&mut line).unwrap();
    assert_eq!(
        line.trim(),
        format!("logd: ACE logging (tcp) listening on {addr}")
    );
    let mut log = String::new();
    while !log.contains("socket activation:") {
        log.clear();
        assert!(err.read_line(&mut log).unwrap() > 0, "logd ended");
    }
    assert!(log.contains(&format!("stream socket on {addr}")), "{log}");
    kill(child.0.id(), "TERM");
    assert!(exits_within(&mut child, PATIENCE).success());
    let stored = stored_messages(&dir);
    assert_eq!(stored.len(), 5, "{stored:?}");
    assert!(stored.iter().all(|l| l.contains("activated")), "{stored:?}");
}

#[test]
fn an_unknown_user_is_a_usage_error() {
    let out = crate::support::output(
        Command::new(env!("CARGO_BIN_EXE_logd")).args(["--user", "no-such-user-here"]),
    )
    .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--user no-such-user-here: no user named `no-such-user-here`"),
        "{err}"
    );
}

/// Started as root with `--user`, logd binds its port while root, then runs as that user
/// and group (all of its ids, supplementary groups included) before it reads any input.
#[test]
fn started_as_root_logd_binds_then_runs_as_the_user() {
    use std::os::unix::fs::MetadataExt;
    if std::fs::metadata("/proc/self").unwrap().uid() != 0 {
        println!("skipped: dropping privileges needs a test run as root");
        return;
    }
    let dir = TempDir::new("binary-user");
    std::fs::create_dir_all(&dir.0).unwrap();
    std::os::unix::fs::chown(&dir.0, Some(65534), Some(65534)).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Logd(
        crate::support::spawn(
            Command::new(env!("CARGO_BIN_EXE_logd"))
                .args(["--ace-port", &port.to_string(), "--syslog-port", "off"])
                .args(["--user", "65534", "--group", "65534"])
                .arg("--data-dir")
                .arg(&dir.0)
                .stdout(Stdio::piped())
                .stderr(Stdio::null()),
        )
        .unwrap(),
    );
    let mut out = BufReader::new(child.0.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(
        line.contains(&format!("listening on 127.0.0.1:{port}")),
        "{line}"
    );
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.0.id())).unwrap();
    for (key, want) in [
        ("Uid:", "65534\t65534\t65534\t65534"),
        ("Gid:", "65534\t65534\t65534\t65534"),
        ("Groups:", "65534"),
    ] {
        let got = status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap()
            .trim();
        assert_eq!(got, want, "{key}");
    }
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    crate::support::send_and_wait(addr, &ace_frame("as nobody"));
    kill(child.0.id(), "TERM");
    assert!(exits_within(&mut child, PATIENCE).success());
    assert_eq!(stored_messages(&dir).len(), 1);
    let files: Vec<_> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap())
        .filter(|m| m.is_file())
        .collect();
    assert!(!files.is_empty() && files.iter().all(|m| m.uid() == 65534));
}
