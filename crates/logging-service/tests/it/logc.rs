//! `logc`, the client binary, against a running logd: every format and transport, standard input,
//! `check`, `bench`, and the errors an operator meets.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use crate::support::{Server, count_lines};

fn logc(args: &[&str]) -> Output {
    crate::support::output(Command::new(env!("CARGO_BIN_EXE_logc")).args(args)).expect("run logc")
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

#[test]
fn send_reaches_logd_in_every_format_and_transport() {
    let server = Server::start("logc-send", |_| {});
    let ace = server.at.ace.unwrap().to_string();
    let syslog = server.at.syslog_tcp.unwrap().to_string();
    let udp = server.at.syslog_udp.unwrap().to_string();
    let cases: [(&str, &str, &str); 6] = [
        (&ace, "ace", "tcp"),
        (&syslog, "rfc5424", "tcp"),
        (&syslog, "rfc5424", "tcp-newline"),
        (&syslog, "rfc3164", "tcp"),
        (&syslog, "rfc3164", "tcp-newline"),
        (&udp, "rfc5424", "udp"),
    ];
    for (i, (addr, format, transport)) in cases.iter().enumerate() {
        let msg = format!("case {i} {format} over {transport}");
        let out = logc(&[
            "send",
            "--server",
            addr,
            "--format",
            format,
            "--transport",
            transport,
            "--host",
            "dev-7",
            "--app",
            "pump",
            "--pid",
            "42",
            "--severity",
            "err",
            &msg,
        ]);
        assert!(out.status.success(), "{msg}: {}", text(&out.stderr));
    }
    server.wait_for_records(cases.len() as u64);
    let (stats, stored) = server.stop();
    assert_eq!(stats.rejected, 0, "{stats:?}");
    let records: Vec<_> = stored.iter().flat_map(|(_, l)| l).collect();
    assert_eq!(records.len(), cases.len());
    for (i, (_, format, transport)) in cases.iter().enumerate() {
        let msg = format!("case {i} {format} over {transport}");
        let r = records
            .iter()
            .find(|r| r.message == msg)
            .unwrap_or_else(|| panic!("{msg} not stored: {records:?}"));
        assert_eq!(r.priority(), "user.err", "{r:?}");
        if *format != "ace" {
            // ACE's records carry no host or application name; syslog's do.
            assert_eq!(
                (r.host.as_str(), r.app.as_deref(), r.pid.as_deref()),
                ("dev-7", Some("pump"), Some("42")),
                "{r:?}"
            );
        }
    }
}

/// What logc puts on the wire, read by a listener of the test's own: facility, severity,
/// MSGID and STRUCTURED-DATA as asked, octet-counted.
#[test]
fn send_puts_facility_msgid_and_structured_data_on_the_wire() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let reader = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut s, &mut bytes).unwrap();
        bytes // the close tells logc everything was read
    });
    let out = logc(&[
        "send",
        "--server",
        &addr,
        "--facility",
        "local3",
        "--severity",
        "warning",
        "--host",
        "gw-2",
        "--app",
        "mqttd",
        "--pid",
        "812",
        "--msgid",
        "CONN",
        "--sd",
        "[meta@32473 client=\"s-17\"]",
        "client",
        "s-17",
        "dropped",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let wire = String::from_utf8(reader.join().unwrap()).unwrap();
    let (len, msg) = wire.split_once(' ').unwrap();
    assert_eq!(len.parse::<usize>().unwrap(), msg.len(), "{wire}");
    // PRI: local3 (19) * 8 + warning (4).
    assert!(msg.starts_with("<156>1 "), "{msg}");
    assert!(
        msg.ends_with(" gw-2 mqttd 812 CONN [meta@32473 client=\"s-17\"] client s-17 dropped"),
        "{msg}"
    );

    // A MSGID RFC 5424 cannot carry is refused before anything is sent (EX_DATAERR).
    let out = logc(&["send", "--server", &addr, "--msgid", "two words", "x"]);
    assert_eq!(out.status.code(), Some(65), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("msgid \"two words\""),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn send_reads_one_message_per_line_of_standard_input() {
    let server = Server::start("logc-stdin", |_| {});
    let addr = server.at.syslog_tcp.unwrap().to_string();
    let mut child = crate::support::spawn(
        Command::new(env!("CARGO_BIN_EXE_logc"))
            .args(["send", "--server", &addr, "--host", "stdin-host"])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped()),
    )
    .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for i in 0..50 {
        writeln!(stdin, "line {i}").unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    // TCP: logc returns only after logd closed the connection, so everything is stored.
    let (_, stored) = server.stop();
    let lines = &stored.iter().find(|(h, _)| h == "stdin-host").unwrap().1;
    assert_eq!(lines.len(), 50);
    assert_eq!(lines[49].message, "line 49", "{:?}", lines[49]);
}

#[test]
fn check_finds_its_marker_in_the_data_dir_and_fails_where_it_is_not() {
    let server = Server::start("logc-check", |_| {});
    let addr = server.at.syslog_tcp.unwrap().to_string();
    let dir = server.dir.0.to_str().unwrap().to_string();
    let out = logc(&["check", &addr, "--data-dir", &dir]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("ok: a marker sent to"),
        "{}",
        text(&out.stdout)
    );

    let elsewhere = crate::support::TempDir::new("logc-check-elsewhere");
    std::fs::create_dir_all(&elsewhere.0).unwrap();
    let out = logc(&[
        "check",
        &addr,
        "--data-dir",
        elsewhere.0.to_str().unwrap(),
        "--timeout",
        "1s",
    ]);
    assert_eq!(out.status.code(), Some(69), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("not found under"),
        "{}",
        text(&out.stderr)
    );
    let (stats, _) = server.stop();
    assert_eq!(stats.syslog, 2, "both markers were received: {stats:?}");
}

#[test]
fn bench_sends_every_record_over_several_connections() {
    let server = Server::start("logc-bench", |_| {});
    let addr = server.at.syslog_tcp.unwrap().to_string();
    let out = logc(&[
        "bench", "--server", &addr, "--count", "2000", "--conns", "4", "--size", "40",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary = text(&out.stdout);
    assert!(summary.starts_with("sent 2000 records in "), "{summary}");
    assert!(summary.contains(" 0 errors"), "{summary}");
    assert!(
        summary.contains("records/s") && summary.contains("latency: not measured (tcp"),
        "{summary}"
    );
    let progress = text(&out.stderr);
    assert!(
        progress.lines().last() == Some("logc bench: 2000 of 2000 sent"),
        "the progress line ends with the total: {progress}"
    );

    // Paced: 2 connections at 1000 records/s in all send their 100th record no earlier
    // than 99 / 500 s after the start (pacing waits for each record's due time), over UDP.
    let udp = server.at.syslog_udp.unwrap().to_string();
    let out = logc(&[
        "bench",
        "--server",
        &udp,
        "--transport",
        "udp",
        "--count",
        "200",
        "--rate",
        "1000",
        "--conns",
        "2",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary = text(&out.stdout);
    let secs: f64 = summary
        .strip_prefix("sent 200 records in ")
        .and_then(|r| r.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{summary}"));
    assert!(secs >= 0.198, "--rate paces the senders: {summary}");
    server.wait_for_records(2200);
    let (stats, stored) = server.stop();
    assert_eq!(
        stats.syslog, 2200,
        "UDP on loopback, a slow rate: {stats:?}"
    );
    assert_eq!(count_lines(&stored), 2200);
    assert_eq!(stored.len(), 4, "one host per connection");
}

#[test]
fn operator_errors_are_clear_and_exit_by_kind() {
    // Nothing listens on port 1 of loopback.
    let out = logc(&["send", "--server", "127.0.0.1:1", "hello"]);
    assert_eq!(out.status.code(), Some(69));
    let err = text(&out.stderr);
    assert!(
        err.starts_with("logc: cannot connect to 127.0.0.1:1: "),
        "{err}"
    );

    let out = logc(&["bench", "--server", "127.0.0.1:1", "--count", "10"]);
    assert_eq!(out.status.code(), Some(69));
    assert!(
        text(&out.stderr).starts_with("logc: cannot connect to 127.0.0.1:1: "),
        "{}",
        text(&out.stderr)
    );

    let out = logc(&["send", "--format", "ace", "--transport", "udp", "hello"]);
    assert_eq!(out.status.code(), Some(65), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("cannot be sent over"),
        "{}",
        text(&out.stderr)
    );

    let out = logc(&["send", "--severity", "loud", "hello"]);
    assert_eq!(out.status.code(), Some(64), "EX_USAGE, as logd's");
    assert!(
        text(&out.stderr).contains("unknown severity \"loud\""),
        "{}",
        text(&out.stderr)
    );

    let out = logc(&["--help"]);
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("check"), "help on stdout");
    let out = logc(&["--version"]);
    assert!(out.status.success());
    assert!(
        text(&out.stdout).starts_with("logc "),
        "{}",
        text(&out.stdout)
    );
}

/// `logc read` merges host files (and with `--rotated` rotated ones) in TIME order, and
/// refuses a store line that breaks the grammar with the file and line, exit 65; a data
/// directory that cannot be read exits 66.
#[test]
fn read_merges_in_time_order_and_refuses_broken_lines() {
    let dir = crate::support::TempDir::new("logc-read");
    std::fs::create_dir_all(&dir.0).unwrap();
    let line = |t: &str, h: &str, m: &str| {
        format!("2026-01-01T00:00:0{t}.000000Z {h} a[-] user.info - - - {m}\n")
    };
    std::fs::write(
        dir.0.join("b.log"),
        line("3", "b", "third") + &line("4", "b", "fourth"),
    )
    .unwrap();
    std::fs::write(dir.0.join("a.log"), line("2", "a", "second")).unwrap();
    std::fs::write(dir.0.join("a.log.1"), line("1", "a", "first")).unwrap();
    std::fs::write(dir.0.join("notes.txt"), "not a store file\n").unwrap();
    let read = |args: &[&str]| {
        crate::support::output(
            Command::new(env!("CARGO_BIN_EXE_logc"))
                .arg("read")
                .arg("--data-dir")
                .arg(&dir.0)
                .args(args),
        )
        .unwrap()
    };
    let out = read(&["--output", "message"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "second\nthird\nfourth\n");
    let out = read(&[
        "--output",
        "message",
        "--rotated",
        "--since",
        "2026-01-01T05:30:02+05:30",
    ]);
    assert_eq!(text(&out.stdout), "second\nthird\nfourth\n");
    let out = read(&["--output", "message", "--rotated"]);
    assert_eq!(text(&out.stdout), "first\nsecond\nthird\nfourth\n");
    std::fs::write(
        dir.0.join("c.log"),
        line("5", "c", "ok") + "2026-01-01T00:00:06.000000Z c a[-] <1.6> old format\n",
    )
    .unwrap();
    let out = read(&[]);
    assert_eq!(out.status.code(), Some(65));
    let err = text(&out.stderr);
    assert!(err.contains("c.log:2: FACILITY"), "{err}");
    let out = crate::support::output(Command::new(env!("CARGO_BIN_EXE_logc")).args([
        "read",
        "--data-dir",
        "/nonexistent/logd-data",
    ]))
    .unwrap();
    assert_eq!(out.status.code(), Some(66), "{}", text(&out.stderr));
}
