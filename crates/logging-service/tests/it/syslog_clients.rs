//! util-linux `logger`, a real syslog client, over TCP (octet counting and newline framing)
//! and UDP, in both RFC 5424 and RFC 3164.

use std::io::Write;
use std::process::{Command, Stdio};

use logging_service::store::StoredRecord;

use crate::support::{Server, count_lines, send_and_wait};

/// util-linux's `logger`, or `None` (after the skip line) on a machine without it.
fn logger_program() -> Option<std::path::PathBuf> {
    pattern_core::peer::program("logger", "bsdutils")
}

fn logger(program: &std::path::Path, args: &[&str], lines: usize, tag: &str) {
    let mut child = crate::support::spawn(
        Command::new(program)
            .args(args)
            .args(["-t", tag])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped()),
    )
    .expect("start logger");
    let mut stdin = child.stdin.take().unwrap();
    for i in 0..lines {
        writeln!(stdin, "{tag} line {i}").unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "logger failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Sends `lines` lines through logger in `mode`; `None` when logger is not installed.
fn run(mode: &[&str], tag: &str, lines: usize) -> Option<Vec<StoredRecord>> {
    let program = logger_program()?;
    let server = Server::start(tag, |c| c.ace_port = None);
    let port = server.at.syslog_tcp.unwrap().port().to_string();
    let mut args = vec!["--server", "127.0.0.1", "--port", &port];
    args.extend_from_slice(mode);
    logger(&program, &args, lines, tag);
    server.wait_for_records(lines as u64);
    let (stats, stored) = server.stop();
    assert_eq!(stats.rejected, 0, "{stats:?}");
    assert_eq!(count_lines(&stored), lines);
    Some(stored.into_iter().flat_map(|(_, l)| l).collect())
}

fn check(records: &[StoredRecord], tag: &str, n: usize) {
    assert_eq!(records.len(), n);
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.app.as_deref(), Some(tag), "app name kept: {r:?}");
        assert_eq!(r.message, format!("{tag} line {i}"), "{r:?}");
        assert_eq!(r.priority(), "user.notice", "logger's default: {r:?}");
        // logger stamps its messages: the stamp as sent is kept, TIME is UTC.
        assert!(r.sent.is_some(), "{r:?}");
        assert!(r.time.ends_with('Z') && r.time.len() == 27, "{r:?}");
    }
}

/// RFC 3164 §4.3.3: a message without `<PRI>` is user.notice, logger's own default, over
/// TCP (newline framing, and at the end of the stream) and UDP; the same text through logger
/// is stored with the same priority and message.
#[test]
fn messages_without_pri_are_user_notice_like_loggers_default() {
    let server = Server::start("no-pri", |c| c.ace_port = None);
    let tcp = server.at.syslog_tcp.unwrap();
    send_and_wait(
        tcp,
        b"no pri over tcp\nNov 14 22:13:20 gw-1 cron[7]: no pri, bsd header\nlast without newline",
    );
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(b"no pri over udp", server.at.syslog_udp.unwrap())
        .unwrap();
    let mut expected = 4;
    if let Some(program) = logger_program() {
        let port = tcp.port().to_string();
        let args = [
            "--server",
            "127.0.0.1",
            "--port",
            &port,
            "--tcp",
            "--rfc3164",
        ];
        logger(&program, &args, 1, "viaLogger");
        expected += 1;
    }
    server.wait_for_records(expected);
    let (stats, stored) = server.stop();
    assert_eq!((stats.records, stats.rejected), (expected, 0), "{stats:?}");
    let all: Vec<&StoredRecord> = stored.iter().flat_map(|(_, l)| l).collect();
    let find = |m: &str| {
        *all.iter()
            .find(|r| r.message == m)
            .unwrap_or_else(|| panic!("{m} not stored: {all:?}"))
    };
    for m in ["no pri over tcp", "last without newline", "no pri over udp"] {
        let r = find(m);
        assert_eq!(
            (r.priority().as_str(), r.host.as_str()),
            ("user.notice", "127.0.0.1"),
            "{r:?}"
        );
        assert_eq!((r.app.as_deref(), r.sent.as_deref()), (None, None), "{r:?}");
    }
    let r = find("no pri, bsd header");
    assert_eq!(r.priority(), "user.notice");
    assert_eq!(
        (r.host.as_str(), r.app.as_deref(), r.pid.as_deref()),
        ("gw-1", Some("cron"), Some("7"))
    );
    assert_eq!(r.sent.as_deref(), Some("--11-14T22:13:20"));
    if expected == 5 {
        assert_eq!(find("viaLogger line 0").priority(), "user.notice");
    }
}

#[test]
fn logger_tcp_octet_counting_rfc5424() {
    let Some(lines) = run(&["--tcp", "--octet-count", "--rfc5424"], "oc5424", 200) else {
        return;
    };
    check(&lines, "oc5424", 200);
}

#[test]
fn logger_tcp_newline_rfc3164() {
    let Some(lines) = run(&["--tcp", "--rfc3164"], "nl3164", 200) else {
        return;
    };
    check(&lines, "nl3164", 200);
}

#[test]
fn logger_tcp_newline_rfc5424() {
    let Some(lines) = run(&["--tcp", "--rfc5424"], "nl5424", 200) else {
        return;
    };
    check(&lines, "nl5424", 200);
}

#[test]
fn logger_udp_rfc5424_and_rfc3164() {
    // Loopback UDP with a receiver keeping up does not drop 50 datagrams.
    let Some(lines) = run(&["--udp", "--rfc5424"], "udp5424", 50) else {
        return;
    };
    check(&lines, "udp5424", 50);
    let Some(lines) = run(&["--udp", "--rfc3164"], "udp3164", 50) else {
        return;
    };
    check(&lines, "udp3164", 50);
}
