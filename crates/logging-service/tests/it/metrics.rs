//! Prometheus metrics over HTTP: exact counters after known traffic, scraped with a real
//! HTTP client; hostile requests; `promtool check metrics` on the scraped text; `--metrics`
//! on the binary.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use logging_service::logd::{Logd, LogdConfig};
use logging_service::store::StoreConfig;

use crate::support::{TempDir, ace_frame, send_and_wait};

/// How long a test waits for logd before it fails instead of hanging.
const PATIENCE: Duration = Duration::from_secs(30);

fn scrape(addr: SocketAddr) -> String {
    let mut resp = ureq::get(&format!("http://{addr}/metrics"))
        .call()
        .expect("scrape");
    assert_eq!(resp.status(), 200);
    let ct = resp
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap();
    assert_eq!(ct, logging_service::metrics::TEXT_CONTENT_TYPE);
    resp.body_mut().read_to_string().expect("body")
}

/// The value of the sample `series` (name with labels) in `text`.
fn value(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
        .parse()
        .unwrap()
}

fn poll(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::park_timeout(Duration::from_millis(5));
    }
}

fn svc_conf(dir: &TempDir, text: &str) -> std::path::PathBuf {
    std::fs::create_dir_all(&dir.0).unwrap();
    let path = dir.0.join("svc.conf");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_scrape_shows_exact_counters_by_input_and_reason() {
    let dir = TempDir::new("metrics");
    let conf = TempDir::new("metrics-conf");
    let path = svc_conf(
        &conf,
        "static ACE_Logging \"-p 0\"\nstatic Syslog_Logging \"-p 0\"\nstatic Metrics \"-a 127.0.0.1:0\"\n",
    );
    let mut logd = Logd::start(LogdConfig {
        svc_conf: Some(path.clone()),
        store: StoreConfig::new(&dir.0),
        max_frame: 1024,
        ..LogdConfig::default()
    })
    .unwrap();
    let at = logd.listening();
    let metrics = at.metrics.expect("the Metrics service listens");

    let before = scrape(metrics);
    assert_eq!(
        value(&before, "logd_records_received_total{input=\"ace\"}"),
        0
    );

    let mut ace = Vec::new();
    for i in 0..3 {
        ace.extend(ace_frame(&format!("ace {i}")));
    }
    send_and_wait(at.ace.unwrap(), &ace);
    send_and_wait(
        at.syslog_tcp.unwrap(),
        b"<14>1 2024-01-01T00:00:00Z h1 app - - - one\n<14>1 2024-01-01T00:00:00Z h1 app - - - two\n<999>bad\n",
    );
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    for m in ["three", "four"] {
        let msg = format!("<14>1 2024-01-01T00:00:00Z h1 app - - - {m}");
        udp.send_to(msg.as_bytes(), at.syslog_udp.unwrap()).unwrap();
    }
    udp.send_to(&[b'x'; 2000], at.syslog_udp.unwrap()).unwrap();
    poll("the UDP datagrams", || {
        let s = logd.stats();
        s.syslog_udp == 2 && s.udp_oversized == 1
    });

    // Two host files are open (127.0.0.1 for ACE, h1 for syslog) until a reload closes them.
    let open = scrape(metrics);
    assert_eq!(value(&open, "logd_open_files"), 2, "{open}");

    // An unchanged svc.conf reconfigures fine; a bad one is refused.
    assert!(logd.reconfigure().unwrap().is_ok());
    std::fs::write(&path, "static Nonesuch \"\"\n").unwrap();
    assert!(logd.reconfigure().is_err());

    let text = scrape(logd.listening().metrics.unwrap());
    let expect = [
        ("logd_records_received_total{input=\"ace\"}", 3),
        ("logd_records_received_total{input=\"syslog_tcp\"}", 2),
        ("logd_records_received_total{input=\"syslog_udp\"}", 2),
        ("logd_records_stored_total", 7),
        (
            "logd_records_dropped_total{reason=\"dropped_pending_full\"}",
            0,
        ),
        (
            "logd_records_dropped_total{reason=\"dropped_write_failed\"}",
            0,
        ),
        ("logd_messages_refused_total{reason=\"rejected\"}", 1),
        ("logd_messages_refused_total{reason=\"udp_oversized\"}", 1),
        ("logd_connections_accepted_total", 2),
        ("logd_connections_closed_total{reason=\"idle_partial\"}", 0),
        (
            "logd_connections_closed_total{reason=\"oversized_closed\"}",
            0,
        ),
        (
            "logd_connections_closed_total{reason=\"buffer_cap_closed\"}",
            0,
        ),
        ("logd_records_held", 0),
        ("logd_open_files", 0),
        ("logd_buffered_bytes", 0),
        ("logd_write_errors_total", 0),
        ("logd_accept_backoffs_total", 0),
        ("logd_reconfigurations_total{result=\"ok\"}", 1),
        ("logd_reconfigurations_total{result=\"failed\"}", 1),
    ];
    for (series, want) in expect {
        assert_eq!(value(&text, series), want, "{series} in\n{text}");
    }
    let stats = logd.stop().unwrap();
    assert_eq!((stats.stored, stats.reconfigurations), (7, 2));
    assert!(stats.store_balances());
}

/// Sends `request` and returns the whole answer (the server closes after one response).
fn exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    // The server may answer and close before all of an oversized request is written.
    let _ = s.write_all(request);
    let _ = s.shutdown(Shutdown::Write);
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn hostile_requests_cost_only_their_own_connection() {
    let dir = TempDir::new("metrics-hostile");
    let logd = Logd::start(LogdConfig {
        ace_port: Some(0),
        syslog_port: None,
        store: StoreConfig::new(&dir.0),
        metrics: Some("127.0.0.1:0".parse().unwrap()),
        ..LogdConfig::default()
    })
    .unwrap();
    let addr = logd.listening().metrics.unwrap();

    // A slowloris client: half a request line, then nothing, held open throughout.
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.write_all(b"GET /met").unwrap();

    let status = |request: &[u8]| {
        let answer = exchange(addr, request);
        assert!(answer.contains("\r\nConnection: close\r\n"), "{answer}");
        answer.lines().next().unwrap_or("").to_owned()
    };
    let mut huge = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 64 * 1024));
    assert_eq!(
        status(&huge),
        "HTTP/1.1 431 Request Header Fields Too Large"
    );
    assert_eq!(
        status(b"\x00\x01\xff garbage\r\n\r\n"),
        "HTTP/1.1 400 Bad Request"
    );
    assert_eq!(status(b"GET / HTTP/1.1\r\n\r\n"), "HTTP/1.1 404 Not Found");
    assert_eq!(
        status(b"DELETE /metrics HTTP/1.1\r\n\r\n"),
        "HTTP/1.1 405 Method Not Allowed"
    );

    // Meanwhile records and scrapes go on.
    send_and_wait(logd.listening().ace.unwrap(), &ace_frame("still here"));
    let text = scrape(addr);
    assert_eq!(value(&text, "logd_records_stored_total"), 1);

    // The slowloris client got nothing (its deadline, REQUEST_TIMEOUT, will close it).
    slow.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(
        slow.read(&mut buf).unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock
    );
    assert_eq!(logd.stop().unwrap().stored, 1);
}

/// A `logd` child process, killed when the test ends before it exited.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[test]
fn the_binary_serves_metrics_that_promtool_accepts() {
    let dir = TempDir::new("metrics-binary");
    let mut child = Child(
        crate::support::spawn(
            Command::new(env!("CARGO_BIN_EXE_logd"))
                .args([
                    "--ace-port",
                    "0",
                    "--syslog-port",
                    "0",
                    "--metrics",
                    "127.0.0.1:0",
                ])
                .arg("--data-dir")
                .arg(&dir.0)
                .stdout(Stdio::piped())
                .stderr(Stdio::null()),
        )
        .unwrap(),
    );
    let out = BufReader::new(child.0.stdout.take().unwrap());
    let mut ace = None;
    let mut metrics = None;
    for line in out.lines() {
        let line = line.unwrap();
        let addr = || {
            line.rsplit(' ')
                .next()
                .unwrap()
                .parse::<SocketAddr>()
                .unwrap()
        };
        if line.starts_with("logd: ACE logging (tcp) listening on ") {
            ace = Some(addr());
        }
        if line.starts_with("logd: metrics (http) listening on 127.0.0.1:") {
            metrics = Some(addr());
            break;
        }
    }
    let (ace, metrics) = (ace.expect("ACE line"), metrics.expect("metrics line"));
    send_and_wait(ace, &[ace_frame("a"), ace_frame("b")].concat());
    let text = scrape(metrics);
    assert_eq!(
        value(&text, "logd_records_received_total{input=\"ace\"}"),
        2
    );
    assert_eq!(value(&text, "logd_records_stored_total"), 2);

    // The scrape an operator types.
    if let Some(curl) = pattern_core::peer::program("curl", "curl") {
        let out = crate::support::output(
            Command::new(curl)
                .args(["--silent", "--show-error", "--fail"])
                .arg(format!("http://{metrics}/metrics")),
        )
        .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let by_curl = String::from_utf8(out.stdout).unwrap();
        assert_eq!(by_curl.lines().count(), text.lines().count(), "{by_curl}");
        assert_eq!(value(&by_curl, "logd_records_stored_total"), 2);
        assert_eq!(value(&by_curl, "logd_udp_kernel_drops_total"), 0);
    }

    let Some(promtool) = pattern_core::peer::program("promtool", "prometheus") else {
        return;
    };
    let file = dir.0.join("scraped.prom");
    std::fs::write(&file, &text).unwrap();
    let checked = crate::support::spawn(
        Command::new(promtool)
            .args(["check", "metrics"])
            .stdin(std::fs::File::open(&file).unwrap())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )
    .unwrap()
    .wait_with_output()
    .unwrap();
    assert!(
        checked.status.success(),
        "promtool: {}{}\n{text}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
}

fn signal(child: &std::process::Child, sig: &str) {
    let st =
        crate::support::status(Command::new("kill").args([sig, &child.id().to_string()])).unwrap();
    assert!(st.success(), "kill {sig}");
}

/// A flood of syslog datagrams at a logd that cannot read (the process stopped with SIGSTOP)
/// and a small `--udp-rcvbuf`: the kernel drops most of it, and logd counts those drops from
/// the socket's `SO_RXQ_OVFL` counter, in the metrics and in its summary at the stop, so that
/// every datagram sent is received or counted, exactly.
#[test]
fn kernel_drops_of_a_udp_flood_are_counted_and_exposed() {
    let dir = TempDir::new("kernel-drops");
    let mut child = Child(
        crate::support::spawn(
            Command::new(env!("CARGO_BIN_EXE_logd"))
                .args([
                    "--ace-port=off",
                    "--syslog-port=0",
                    "--udp-rcvbuf=4K",
                    "--metrics=127.0.0.1:0",
                ])
                .arg("--data-dir")
                .arg(&dir.0)
                .env_remove("RUST_LOG")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped()),
        )
        .unwrap(),
    );
    let mut out = BufReader::new(child.0.stdout.take().unwrap());
    let mut stderr = child.0.stderr.take().unwrap();
    let log = std::thread::spawn(move || {
        let mut text = String::new();
        stderr.read_to_string(&mut text).unwrap();
        text
    });
    let (mut udp, mut metrics) = (None, None);
    let mut line = String::new();
    while metrics.is_none() {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "logd ended early");
        let addr = || {
            line.trim_end()
                .rsplit(' ')
                .next()
                .unwrap()
                .parse::<SocketAddr>()
                .unwrap()
        };
        if line.starts_with("logd: syslog (udp) listening on ") {
            udp = Some(addr());
        }
        if line.starts_with("logd: metrics (http) listening on ") {
            metrics = Some(addr());
        }
    }
    let (udp, metrics) = (udp.expect("UDP line"), metrics.unwrap());

    signal(&child.0, "-STOP");
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    let flood = 2000u64;
    for i in 0..flood {
        let msg = format!("<14>1 - flood app - - - datagram {i} {}", "x".repeat(150));
        sender.send_to(msg.as_bytes(), udp).unwrap();
    }
    signal(&child.0, "-CONT");

    // The counter comes with the next datagram queued after the drops: when logd makes no
    // progress between two scrapes, a marker goes out (and is counted as sent).
    let mut sent = flood;
    let deadline = Instant::now() + PATIENCE;
    let mut last = (u64::MAX, u64::MAX);
    let (received, drops) = loop {
        let text = scrape(metrics);
        let now = (
            value(&text, "logd_records_received_total{input=\"syslog_udp\"}"),
            value(&text, "logd_udp_kernel_drops_total"),
        );
        if now.0 + now.1 == sent {
            break now;
        }
        assert!(
            Instant::now() < deadline,
            "sent {sent}, received and dropped {now:?}"
        );
        if now == last {
            sender
                .send_to(b"<14>1 - flood app - - - marker", udp)
                .unwrap();
            sent += 1;
        }
        last = now;
        std::thread::park_timeout(Duration::from_millis(5));
    };
    assert!(drops > 0, "an 8 KiB buffer cannot hold {flood} datagrams");
    assert!(received > 0);

    signal(&child.0, "-TERM");
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert!(child.0.wait().unwrap().success(), "{rest}");
    assert!(
        rest.contains(&format!(
            " {drops} UDP datagrams dropped by the kernel (receive buffer full)"
        )),
        "the summary at the stop: {rest}"
    );
    assert!(
        rest.contains(&format!("logd: {received} received, {received} stored")),
        "{rest}"
    );
    let log = log.join().unwrap();
    assert!(
        log.lines()
            .any(|l| l.contains(" WARN ") && l.contains("the kernel dropped syslog UDP datagrams")),
        "the drops are logged: {log}"
    );
}

/// Starts the `logd` binary with `args` and reads its listening lines: the child and the
/// address of each listener by name (`ACE logging (tcp)`, `metrics (http)`, ...).
fn start_logd(args: &[&str], data: &std::path::Path) -> (Child, Vec<(String, SocketAddr)>) {
    let mut child = Child(
        crate::support::spawn(
            Command::new(env!("CARGO_BIN_EXE_logd"))
                .args(args)
                .arg("--data-dir")
                .arg(data)
                .stdout(Stdio::piped())
                .stderr(Stdio::null()),
        )
        .unwrap(),
    );
    let mut out = BufReader::new(child.0.stdout.take().unwrap());
    let mut listening = Vec::new();
    loop {
        let mut line = String::new();
        assert!(out.read_line(&mut line).unwrap() > 0, "logd exited");
        if line.starts_with("logd: storing under") {
            break;
        }
        if let Some((name, addr)) = line
            .trim()
            .trim_start_matches("logd: ")
            .rsplit_once(" listening on ")
        {
            listening.push((name.to_owned(), addr.parse().unwrap()));
        }
    }
    // The rest of stdout (the stop summary) is not read: a pipe closed early costs nothing.
    (child, listening)
}

fn listener(listening: &[(String, SocketAddr)], name: &str) -> SocketAddr {
    listening.iter().find(|(n, _)| n == name).unwrap().1
}

/// The forwarder's metrics (issue 16): forwarded, spooled and dropped records and whether
/// the upstream is up, scraped from the binary while records flow to a second logd, while
/// that upstream is down (records spill to the spool, a full spool drops the newest, counted)
/// and after it came back (the spool is replayed). At every scrape the records received are
/// queued, forwarded or dropped; promtool accepts the exposition with the forwarder's series.
#[test]
fn forwarder_metrics_follow_the_records_and_the_upstream() {
    let up_dir = TempDir::new("fwd-metrics-upstream");
    let dir = TempDir::new("fwd-metrics");
    let upstream_args = [
        "--ace-port",
        "off",
        "--syslog-port",
        "0",
        "--bind",
        "127.0.0.1",
    ];
    let (upstream, at) = start_logd(&upstream_args, &up_dir.0);
    let up_port = listener(&at, "syslog (tcp)").port().to_string();
    let upstream_stored = |n: usize| {
        logging_service::store::read_records(&up_dir.0)
            .map(|s| crate::support::count_lines(&s) == n)
            .unwrap_or(false)
    };
    let forward = format!("127.0.0.1:{up_port}");
    let (_logd, at) = start_logd(
        &[
            "--ace-port",
            "0",
            "--syslog-port",
            "off",
            "--metrics",
            "127.0.0.1:0",
            "--forward",
            &forward,
            "--forward-backoff",
            "10ms:100ms",
            // Every record past the first few bytes goes to the spool on disk, which holds
            // a few records: a long outage fills it, and the newest are dropped.
            "--forward-queue",
            "1",
            "--spool-max",
            "1K",
            "--spool-full",
            "drop-newest",
        ],
        &dir.0,
    );
    let (ace, metrics) = (
        listener(&at, "ACE logging (tcp)"),
        listener(&at, "metrics (http)"),
    );
    let get = |series: &str| value(&scrape(metrics), series);
    let received = || get("logd_records_received_total{input=\"ace\"}");
    let forwarded = || get("logd_records_forwarded_total");
    let queued = || get("logd_forward_queued");
    let spooled = || get("logd_records_spooled_total");
    let up = || get("logd_forward_upstream_up");
    let dropped_newest =
        || get("logd_records_forward_dropped_total{reason=\"spool_full_drop_newest\"}");
    let balanced = || {
        let t = scrape(metrics);
        let dropped: u64 = [
            "spool_full_block",
            "spool_full_drop_oldest",
            "spool_full_drop_newest",
            "spool_write_error",
        ]
        .iter()
        .map(|r| {
            value(
                &t,
                &format!("logd_records_forward_dropped_total{{reason=\"{r}\"}}"),
            )
        })
        .sum();
        value(&t, "logd_records_received_total{input=\"ace\"}")
            == value(&t, "logd_forward_queued")
                + value(&t, "logd_records_forwarded_total")
                + dropped
    };
    let frames = |from: usize, to: usize| -> Vec<u8> {
        (from..to)
            .flat_map(|i| ace_frame(&format!("forwarded {i}")))
            .collect()
    };

    // Up: records flow through.
    let text = scrape(metrics);
    assert_eq!(value(&text, "logd_records_forwarded_total"), 0, "{text}");
    assert_eq!(value(&text, "logd_forward_outages_total"), 0, "{text}");
    send_and_wait(ace, &frames(0, 3));
    poll("3 records forwarded", || forwarded() == 3);
    poll("the upstream stored 3 records", || upstream_stored(3));
    assert_eq!((up(), queued(), dropped_newest()), (1, 0, 0));
    assert!(balanced());
    let spooled_while_up = spooled();

    // Down: the forwarder notices at its next send, and records wait in the spool.
    drop(upstream);
    send_and_wait(ace, &frames(3, 4));
    poll("the upstream counted down", || up() == 0);
    assert_eq!(get("logd_forward_outages_total"), 1);
    poll("failed connection attempts", || {
        get("logd_forward_connect_failures_total") > 0
    });
    send_and_wait(ace, &frames(4, 40));
    poll("40 records received", || received() == 40);
    assert!(
        spooled() > spooled_while_up,
        "records spilled to the spool while the upstream was down"
    );
    let dropped = dropped_newest();
    assert!(dropped > 0, "a full spool dropped the newest records");
    let waiting = queued();
    assert!(waiting > 0);
    assert_eq!(forwarded() + waiting + dropped, 40);
    assert!(balanced());

    // Up again on the same port: the spool is replayed, and nothing more is dropped.
    let upstream_args = [
        "--ace-port",
        "off",
        "--syslog-port",
        &up_port,
        "--bind",
        "127.0.0.1",
    ];
    let (_upstream, _) = start_logd(&upstream_args, &up_dir.0);
    poll("the spool replayed", || queued() == 0);
    let text = scrape(metrics);
    assert_eq!(value(&text, "logd_forward_upstream_up"), 1, "{text}");
    assert_eq!(value(&text, "logd_forward_reconnects_total"), 1, "{text}");
    assert_eq!(
        value(&text, "logd_records_forwarded_total"),
        40 - dropped,
        "{text}"
    );
    assert_eq!(dropped_newest(), dropped);
    assert!(balanced());
    poll("the upstream stored every forwarded record", || {
        upstream_stored((40 - dropped) as usize)
    });

    let Some(promtool) = pattern_core::peer::program("promtool", "prometheus") else {
        return;
    };
    let file = dir.0.join("scraped.prom");
    std::fs::write(&file, &text).unwrap();
    let checked = crate::support::spawn(
        Command::new(promtool)
            .args(["check", "metrics"])
            .stdin(std::fs::File::open(&file).unwrap())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )
    .unwrap()
    .wait_with_output()
    .unwrap();
    assert!(
        checked.status.success(),
        "promtool: {}{}\n{text}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
}
