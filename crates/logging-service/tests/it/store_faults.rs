//! The store under faults, through the server: write failures are held and retried from the
//! timer, TCP pauses while the store is backlogged, UDP's excess is counted, the data
//! directory is locked and made again, interval syncs come without a later write, and the
//! binary says so and exits non-zero when records were lost.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use logging_service::Error;
use logging_service::logd::{Logd, LogdConfig};
use logging_service::store::{Durability, Stats, StoreConfig, StoredRecord, file_stem};

use crate::support::{Server, TempDir, ace_frame, send_and_wait};

/// Polls the server's counters until `cond` holds; fails after a generous deadline.
fn wait_until(server: &Server, what: &str, cond: impl Fn(&Stats) -> bool) -> Stats {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = server.output.stats();
        if cond(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "{what}: {s:?}");
        std::thread::park_timeout(Duration::from_millis(2));
    }
}

/// Makes `DIR/NAME.log` a (non-empty) directory: writing it fails with EISDIR, even as root.
fn block(dir: &std::path::Path, stem: &str) {
    std::fs::create_dir_all(dir.join(format!("{stem}.log")).join("x")).unwrap();
}

fn unblock(dir: &std::path::Path, stem: &str) {
    std::fs::remove_dir_all(dir.join(format!("{stem}.log"))).unwrap();
}

fn syslog_line(host: &str, msg: &str) -> String {
    format!("<13>1 2026-01-01T00:00:00Z {host} app - - - {msg}\n")
}

/// The records of `stem`'s current file, read with the store's parser.
fn lines_of(dir: &std::path::Path, stem: &str) -> Vec<StoredRecord> {
    let path = dir.join(format!("{stem}.log"));
    if !path.exists() {
        return Vec::new();
    }
    logging_service::store::read_file(&path).unwrap()
}

/// `HOST MESSAGE` of each record of `stem`'s current file among what [`Server::stop`] read.
fn stored_of(stored: &[(String, Vec<StoredRecord>)], stem: &str) -> Vec<String> {
    stored
        .iter()
        .find(|(s, _)| s == stem)
        .map(|(_, l)| {
            l.iter()
                .map(|r| format!("{} {}", r.host, r.message))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_bad_host_costs_only_itself_and_recovers_from_the_timer() {
    let server = Server::start("bad-host", |c| {
        c.store.retry_max = Duration::from_millis(50);
        block(&c.store.dir, "bad");
    });
    let mut text = String::new();
    for i in 0..10 {
        text.push_str(&syslog_line("good", &format!("g{i}")));
        text.push_str(&syslog_line("bad", &format!("b{i}")));
    }
    send_and_wait(server.at.syslog_tcp.unwrap(), text.as_bytes());
    let s = wait_until(&server, "records read", |s| s.records == 20);
    assert_eq!((s.stored, s.held, s.dropped()), (10, 10, 0), "{s:?}");
    assert!(s.write_errors >= 1 && s.store_balances(), "{s:?}");
    assert_eq!(lines_of(&server.dir.0, "good").len(), 10);
    // The fault goes away; no record arrives; the timer's retry stores the held ones.
    unblock(&server.dir.0, "bad");
    wait_until(&server, "held records stored", |s| s.held == 0);
    let (s, stored) = server.stop();
    assert_eq!((s.records, s.stored, s.dropped()), (20, 20, 0), "{s:?}");
    let bad: Vec<String> = (0..10).map(|i| format!("bad b{i}")).collect();
    assert_eq!(stored_of(&stored, "bad"), bad);
}

#[test]
fn tcp_readers_pause_while_the_store_is_backlogged_and_nothing_is_lost() {
    for model in [
        "reactor",
        "leader-followers:2",
        "half-sync-half-async:2",
        "proactor",
    ] {
        backpressure_under(model);
    }
}

fn backpressure_under(model: &str) {
    let (server, mut client) = backlogged_after_60(model);
    client.write_all(&ace_frames(60, 120)).unwrap();
    let s = wait_until(&server, model, |s| s.pauses >= 1);
    // Paused before storing: the second 60 wait in the socket (or, under the proactor, in
    // the buffers they were received into), not in the store (they would not fit: 120 >
    // max_pending).
    assert_eq!(
        (s.records, s.held, s.dropped()),
        (60, 60, 0),
        "{model}: {s:?}"
    );
    unblock(&server.dir.0, "127.0.0.1");
    client.shutdown(Shutdown::Write).unwrap();
    stored_whole_after_close(model, server, client);
}

/// Waits for logd to close `client` (which half-closed), stops it, and checks that the 120
/// records are stored, in order, none held or dropped.
fn stored_whole_after_close(model: &str, server: Server, mut client: TcpStream) {
    client
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    client.read_to_end(&mut Vec::new()).unwrap();
    let (s, stored) = server.stop();
    assert_eq!(
        (s.records, s.stored, s.held, s.dropped()),
        (120, 120, 0, 0),
        "{model}: {s:?}"
    );
    let expected: Vec<String> = (0..120).map(|i| format!("m{i:03}")).collect();
    assert_eq!(messages_of(&stored), expected, "{model}");
}

/// The client sends the rest of its records and closes its side while the store is still
/// backlogged: under every model the end of the stream waits for the backlog, and every
/// record is stored in order (under the proactor, the chunks received while backlogged are
/// kept in their buffers, and the stream's end with them, until the store takes them).
#[test]
fn a_stream_that_ends_while_the_store_is_backlogged_is_stored_whole() {
    for model in [
        "reactor",
        "leader-followers:2",
        "half-sync-half-async:2",
        "proactor",
    ] {
        let (server, mut client) = backlogged_after_60(model);
        client.write_all(&ace_frames(60, 120)).unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        wait_until(&server, model, |s| s.pauses >= 1);
        unblock(&server.dir.0, "127.0.0.1");
        stored_whole_after_close(model, server, client);
    }
}

/// logd stops while the proactor keeps chunks it received during a backlog: they were read,
/// so they reach the store at the close, which holds what it can and counts the rest; the
/// ledger balances and nothing read goes uncounted.
#[test]
fn chunks_kept_during_a_backlog_are_stored_or_counted_when_logd_stops() {
    let (server, mut client) = backlogged_after_60("proactor");
    // Not paused yet (the usual case): the receive is still running, so the next 60 are
    // received and kept. Paused already: they wait in the socket and are never read.
    let received = if server.output.stats().pauses == 0 {
        120
    } else {
        60
    };
    client.write_all(&ace_frames(60, 120)).unwrap();
    wait_until(&server, "paused", |s| s.pauses >= 1);
    let (s, _) = server.stop();
    assert_eq!((s.records, s.ace_input.read), (received, received), "{s:?}");
    assert!(s.store_balances(), "{s:?}");
    assert_eq!(s.stored, 0, "the directory stayed blocked: {s:?}");
}

/// A server under `model` whose store is blocked and holds 60 ACE records from `client`
/// (past half of `max_pending`: backlogged).
fn backlogged_after_60(model: &str) -> (Server, TcpStream) {
    let server = Server::start("backlog-end", |c| {
        crate::support::set_model(c, model);
        c.syslog_port = None;
        c.store.max_pending = 100;
        c.store.retry_max = Duration::from_millis(50);
        block(&c.store.dir, "127.0.0.1");
    });
    let mut client = TcpStream::connect(server.at.ace.unwrap()).unwrap();
    client.write_all(&ace_frames(0, 60)).unwrap();
    wait_until(&server, "first records held", |s| s.held == 60);
    (server, client)
}

fn ace_frames(from: usize, to: usize) -> Vec<u8> {
    (from..to)
        .flat_map(|i| ace_frame(&format!("m{i:03}")))
        .collect()
}

/// The messages of the records stored for 127.0.0.1, in order.
fn messages_of(stored: &crate::support::Stored) -> Vec<String> {
    stored_of(stored, "127.0.0.1")
        .iter()
        .map(|l| l.rsplit(' ').next().unwrap().to_string())
        .collect()
}

#[test]
fn udp_records_the_store_cannot_hold_are_dropped_and_counted() {
    // Under the proactor the datagrams stay on the reactor beside it: the same books.
    for model in ["reactor", "proactor"] {
        udp_overflow_under(model);
    }
}

fn udp_overflow_under(model: &str) {
    let server = Server::start("udp-full", |c| {
        crate::support::set_model(c, model);
        c.store.max_pending = 5;
        block(&c.store.dir, "bad");
    });
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..10 {
        sock.send_to(
            syslog_line("bad", &format!("u{i}")).as_bytes(),
            server.at.syslog_udp.unwrap(),
        )
        .unwrap();
    }
    let s = wait_until(&server, "datagrams read", |s| s.records == 10);
    assert_eq!((s.held, s.dropped_pending_full), (5, 5), "{model}: {s:?}");
    // Still unwritable at the stop: the held ones are lost too, and counted.
    let (s, _) = server.stop();
    assert_eq!(
        (
            s.stored,
            s.held,
            s.dropped_pending_full,
            s.dropped_write_failed
        ),
        (0, 0, 5, 5),
        "{model}: {s:?}"
    );
    assert!(s.store_balances(), "{model}");
}

#[test]
fn interval_fsync_syncs_the_last_write_before_a_quiet_spell() {
    let server = Server::start("interval", |c| {
        c.store.durability = Durability::Interval(Duration::from_millis(20));
    });
    send_and_wait(server.at.ace.unwrap(), &ace_frame("the last for a while"));
    // No further write comes: the timer syncs it.
    wait_until(&server, "synced", |s| s.syncs >= 1);
    let (s, stored) = server.stop();
    assert_eq!((s.stored, stored[0].1.len()), (1, 1));
}

#[test]
fn a_second_logd_on_the_same_data_directory_is_refused() {
    let server = Server::start("locked", |_| {});
    let err = Logd::start(LogdConfig {
        ace_port: Some(0),
        syslog_port: None,
        store: StoreConfig::new(&server.dir.0),
        ..LogdConfig::default()
    })
    .unwrap_err();
    assert!(matches!(err, Error::Store { .. }), "{err:?}");
    let err = pattern_core::ErrorChain(&err).to_string();
    assert!(
        err.contains(&server.dir.0.display().to_string()) && err.contains("in use"),
        "{err}"
    );
    send_and_wait(server.at.ace.unwrap(), &ace_frame("the first one goes on"));
    assert_eq!(server.stop().0.stored, 1);
}

#[test]
fn a_removed_data_directory_is_made_again_and_written() {
    let server = Server::start("dir-gone", |_| {});
    let ace = server.at.ace.unwrap();
    send_and_wait(ace, &ace_frame("before"));
    std::fs::remove_dir_all(&server.dir.0).unwrap();
    wait_until(&server, "directory made again", |s| s.dir_recreated == 1);
    send_and_wait(ace, &ace_frame("after"));
    let (s, stored) = server.stop();
    assert_eq!(s.stored, 2);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].1.len(), 1);
    assert_eq!(stored[0].1[0].message, "after", "{stored:?}");
}

/// The longest host names, and names that would make hidden, special or option-like files
/// (`.x`, `..`, `.`, `/`, `a/b`, `-rf`, NUL, `~`), through a live logd: each gets a plain file
/// of its own inside the data directory, and its lines keep the whole claimed name.
#[test]
fn host_names_are_stored_whole_in_files_of_their_own() {
    let server = Server::start("long-hosts", |_| {});
    let hosts = [
        "h".repeat(255),
        "i".repeat(251),
        ".x".to_string(),
        "..".to_string(),
        ".".to_string(),
        "/".to_string(),
        "a/b".to_string(),
        "../../etc/passwd".to_string(),
        "-rf".to_string(),
        "nul\0byte".to_string(),
        "~".to_string(),
        "_overflow".to_string(),
    ];
    let text: String = hosts.iter().map(|h| syslog_line(h, "hello")).collect();
    send_and_wait(server.at.syslog_tcp.unwrap(), text.as_bytes());
    // Every record is stored once the connection is closed: look before the stop removes the
    // directory.
    let dir = &server.dir.0;
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), hosts.len(), "{names:?}");
    for name in &names {
        assert!(
            !name.starts_with(['.', '-']) && !name.contains(['/', '\0']),
            "{name:?}"
        );
        assert!(dir.join(name).is_file(), "{name:?}");
    }
    let (s, stored) = server.stop();
    assert_eq!(s.stored, hosts.len() as u64);
    for h in &hosts {
        assert_eq!(stored_of(&stored, &file_stem(h)), [format!("{h} hello")]);
    }
}

/// The binary: records that could not be stored by the stop are reported, with host, path
/// and errno when it began, in the final summary, and make logd exit non-zero.
#[test]
fn logd_reports_lost_records_and_exits_non_zero() {
    let dir = TempDir::new("binary-loss");
    block(&dir.0, "127.0.0.1");
    let mut child = crate::support::spawn(
        Command::new(env!("CARGO_BIN_EXE_logd"))
            .args(["--ace-port", "0", "--syslog-port", "off", "--data-dir"])
            .arg(&dir.0)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )
    .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let addr: SocketAddr = line
        .trim()
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .expect(&line);
    let frames: Vec<u8> = (0..3).flat_map(|i| ace_frame(&format!("r{i}"))).collect();
    send_and_wait(addr, &frames);
    let killed =
        crate::support::status(Command::new("kill").args(["-TERM", &child.id().to_string()]))
            .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    let mut stdout = String::new();
    out.read_to_string(&mut stdout).unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(1), "{stdout}\n{stderr}");
    let path = dir.0.join("127.0.0.1.log").display().to_string();
    assert!(
        stderr.contains("storing records failed")
            && stderr.contains("127.0.0.1")
            && stderr.contains(&path)
            && stderr.contains("errno=21"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "LOST 3 records that could not be stored under {}",
            dir.0.display()
        )),
        "{stderr}"
    );
    assert!(stdout.contains("3 received, 0 stored"), "{stdout}");
    assert!(stdout.contains("3 dropped"), "{stdout}");
}

#[test]
fn bad_store_limits_are_refused() {
    for args in [
        ["--max-open-files", "0"],
        ["--max-hosts", "many"],
        ["--max-pending", "1.5"],
    ] {
        let out =
            crate::support::output(Command::new(env!("CARGO_BIN_EXE_logd")).args(args)).unwrap();
        assert_eq!(out.status.code(), Some(64), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(args[0]) && err.contains("invalid value"),
            "{err}"
        );
    }
}

/// A file size limit lowered under a running logd (`prlimit --fsize`, as `ulimit -f` or
/// systemd's LimitFSIZE= would set it) makes its appends fail with EFBIG: logd is not killed
/// by SIGXFSZ nor by its log (a file under the same limit) failing, holds the records, cuts
/// off any partial line, and stores everything once the limit is raised again.
#[test]
fn a_file_size_limit_holds_records_until_it_is_raised() {
    let Some(prlimit) = pattern_core::peer::program("prlimit", "util-linux") else {
        return;
    };
    let dir = TempDir::new("binary-fsize");
    let logs = TempDir::new("binary-fsize-stderr");
    std::fs::create_dir_all(&logs.0).unwrap();
    // logd's own log goes to a file, which the limit catches too: the warning about the
    // failed write cannot be written either, and must not take logd down with it.
    let stderr = std::fs::File::create(logs.0.join("stderr")).unwrap();
    let mut child = crate::support::spawn(
        Command::new(env!("CARGO_BIN_EXE_logd"))
            .args(["--ace-port", "0", "--syslog-port", "off", "--data-dir"])
            .arg(&dir.0)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(stderr),
    )
    .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let addr: SocketAddr = line
        .trim()
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .expect(&line);
    let pid = child.id().to_string();
    let file = dir.0.join("127.0.0.1.log");
    send_and_wait(addr, &ace_frame("before the limit"));
    let size = std::fs::metadata(&file).unwrap().len();
    let limit = |value: String| {
        let st = crate::support::status(
            // `SOFT:` sets the soft limit only: raising it again needs no privilege.
            Command::new(&prlimit).args(["--pid", &pid, &format!("--fsize={value}:")]),
        )
        .unwrap();
        assert!(st.success(), "prlimit --fsize={value}");
    };
    // Room for part of a line: the append is cut short, and must leave no partial line.
    limit(format!("{}", size + 10));
    send_and_wait(
        addr,
        &(0..3)
            .flat_map(|i| ace_frame(&format!("held {i}")))
            .collect::<Vec<u8>>(),
    );
    assert!(
        matches!(child.try_wait(), Ok(None)),
        "logd survived SIGXFSZ"
    );
    assert_eq!(
        std::fs::metadata(&file).unwrap().len(),
        size,
        "no partial line"
    );
    limit("unlimited".into());
    crate::support::wait_until("the held records are written", || {
        lines_of(&dir.0, "127.0.0.1").len() == 4
    });
    let messages: Vec<String> = lines_of(&dir.0, "127.0.0.1")
        .into_iter()
        .map(|r| r.message)
        .collect();
    assert_eq!(messages, ["before the limit", "held 0", "held 1", "held 2"]);
    let st = crate::support::status(Command::new("kill").args(["-TERM", &pid])).unwrap();
    assert!(st.success());
    let mut stdout = String::new();
    out.read_to_string(&mut stdout).unwrap();
    assert!(child.wait().unwrap().success(), "{stdout}");
    assert!(stdout.contains("4 received, 4 stored"), "{stdout}");
    assert!(
        !stdout.contains(" 0 failed writes"),
        "the limit was hit: {stdout}"
    );
    assert!(stdout.contains("balanced=yes"), "{stdout}");
}
