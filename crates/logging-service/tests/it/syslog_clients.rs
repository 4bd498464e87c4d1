//! util-linux `logger`, a real syslog client, over TCP (octet counting and newline framing)
//! and UDP, in both RFC 5424 and RFC 3164.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::support::{Server, count_lines};

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
fn run(mode: &[&str], tag: &str, lines: usize) -> Option<Vec<String>> {
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

fn check(lines: &[String], tag: &str, n: usize) {
    for (i, line) in lines.iter().enumerate().take(n) {
        assert!(line.contains(&format!(" {tag}[")), "app name kept: {line}");
        assert!(line.ends_with(&format!("> {tag} line {i}")), "{line}");
        assert!(
            line.contains("<1.5>"),
            "user.notice is logger's default: {line}"
        );
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
