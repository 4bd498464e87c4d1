//! The interceptor chain in a live logd, configured from a svc.conf: filter, redact, route,
//! rate-limit, refuse connections; a bad chain refused at reload with its file and line
//! while the running chain goes on.

use std::io::{Read, Write};

use logging_service::logd::{Logd, LogdConfig};
use logging_service::store::{Stats, StoreConfig, read_records};

use crate::support::{TempDir, count_lines, send_and_wait, status};

/// A logd with a syslog listener and the given `Interceptors` argument string.
fn start(dir: &TempDir, chain: &str) -> Logd {
    std::fs::create_dir_all(&dir.0).unwrap();
    write_conf(dir, chain);
    Logd::start(LogdConfig {
        svc_conf: Some(dir.0.join("svc.conf")),
        store: StoreConfig::new(dir.0.join("data")),
        ..LogdConfig::default()
    })
    .expect("logd starts")
}

fn write_conf(dir: &TempDir, chain: &str) {
    let conf = format!("static Syslog_Logging \"-p 0\"\nstatic Interceptors \"{chain}\"\n");
    std::fs::write(dir.0.join("svc.conf"), conf).unwrap();
}

/// RFC 5424 lines, newline-framed: (host, app, severity, message).
fn syslog(records: &[(&str, &str, u8, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (host, app, sev, msg) in records {
        out.extend_from_slice(format!("<{}>1 - {host} {app} - - - {msg}\n", 8 + sev).as_bytes());
    }
    out
}

fn send(logd: &Logd, records: &[(&str, &str, u8, &str)]) {
    send_and_wait(logd.listening().syslog_tcp.unwrap(), &syslog(records));
}

/// Every stored message, sorted (read with the store's parser).
fn messages(dir: &std::path::Path) -> Vec<String> {
    let mut m: Vec<String> = read_records(dir)
        .unwrap_or_default()
        .into_iter()
        .flat_map(|(_, records)| records)
        .map(|r| r.message)
        .collect();
    m.sort();
    m
}

fn stop(logd: Logd) -> Stats {
    let s = logd.stop().expect("clean stop");
    assert!(s.store_balances(), "every record accounted for: {s:?}");
    s
}

#[test]
fn drop_and_keep_filter_by_host_app_and_severity() {
    let dir = TempDir::new("icpt-filter");
    let logd = start(
        &dir,
        "drop severity=debug ; keep host=^web ; drop app=^cron$",
    );
    send(
        &logd,
        &[
            ("web1", "nginx", 6, "kept"),
            ("web1", "nginx", 7, "debug chatter"),
            ("db1", "postgres", 3, "other host"),
            ("web2", "cron", 6, "cron noise"),
            ("web2", "app", 4, "kept too"),
        ],
    );
    let s = stop(logd);
    assert_eq!(messages(&dir.0.join("data")), ["kept", "kept too"]);
    assert_eq!((s.records, s.stored, s.intercepted), (5, 2, 3), "{s:?}");
    let metrics = logging_service::metrics::encode_text(&s);
    assert!(
        metrics.contains("logd_records_intercepted_total{fate=\"dropped\"} 3\n"),
        "{metrics}"
    );
}

#[test]
fn redact_rewrites_the_message_text_by_pattern() {
    let dir = TempDir::new("icpt-redact");
    let logd = start(
        &dir,
        r"redact 'pattern=password=\S+' with=password=<redacted> ; redact 'pattern=(\d{4})-\d{4}-\d{4}-(\d{4})' 'with=$1-****-****-$2' at=store",
    );
    send(
        &logd,
        &[
            ("h", "login", 5, "user bob password=hunter2 ok"),
            ("h", "shop", 5, "card 4111-1111-1111-1234 charged"),
            ("h", "shop", 5, "nothing to hide"),
        ],
    );
    let s = stop(logd);
    assert_eq!(
        messages(&dir.0.join("data")),
        [
            "card 4111-****-****-1234 charged",
            "nothing to hide",
            "user bob password=<redacted> ok"
        ]
    );
    assert_eq!((s.stored, s.intercepted), (3, 0));
}

#[test]
fn route_takes_records_to_a_named_store_of_their_own() {
    let dir = TempDir::new("icpt-route");
    let audit = dir.0.join("audit");
    let logd = start(&dir, &format!("route app=^audit$ dir={}", audit.display()));
    send(
        &logd,
        &[
            ("h1", "audit", 5, "login bob"),
            ("h1", "nginx", 6, "GET /"),
            ("h2", "audit", 5, "logout bob"),
        ],
    );
    assert!(
        logd.services()
            .iter()
            .any(|l| l.contains("route stores: 2 stored")),
        "{:?}",
        logd.services()
    );
    let s = stop(logd);
    assert_eq!(messages(&dir.0.join("data")), ["GET /"]);
    assert_eq!(messages(&audit), ["login bob", "logout bob"]);
    let per_host: Vec<String> = read_records(&audit)
        .unwrap()
        .into_iter()
        .map(|(h, _)| h)
        .collect();
    assert_eq!(
        per_host,
        ["h1", "h2"],
        "the route store keeps a file per host too"
    );
    assert_eq!((s.records, s.stored, s.routed), (3, 1, 2), "{s:?}");
}

#[test]
fn rate_limit_drops_and_counts_per_host() {
    let dir = TempDir::new("icpt-rate");
    // No refill: the test does not depend on how fast it runs.
    let logd = start(&dir, "rate-limit burst=5");
    let noisy: Vec<(&str, &str, u8, &str)> = (0..20).map(|_| ("noisy", "a", 6, "m")).collect();
    send(&logd, &noisy);
    send(&logd, &[("quiet", "a", 6, "q1"), ("quiet", "a", 6, "q2")]);
    let s = stop(logd);
    let stored = read_records(&dir.0.join("data")).unwrap();
    let lines: Vec<(String, usize)> = stored.iter().map(|(h, l)| (h.clone(), l.len())).collect();
    assert_eq!(lines, [("noisy".to_owned(), 5), ("quiet".to_owned(), 2)]);
    assert_eq!(
        (s.records, s.stored, s.rate_limited, s.intercepted),
        (22, 7, 15, 15),
        "{s:?}"
    );
    let metrics = logging_service::metrics::encode_text(&s);
    assert!(
        metrics.contains("logd_records_intercepted_total{fate=\"rate_limited\"} 15\n"),
        "{metrics}"
    );
}

#[test]
fn deny_refuses_connections_when_they_open() {
    let dir = TempDir::new("icpt-deny");
    let logd = start(&dir, r"deny 'host=^127\.0\.0\.1$'");
    // The server closes the connection before reading anything: the client sees the end
    // of the stream (or a reset, if its bytes arrived first).
    let mut c = std::net::TcpStream::connect(logd.listening().syslog_tcp.unwrap()).unwrap();
    let _ = c.write_all(&syslog(&[("h", "a", 6, "refused")]));
    c.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let mut rest = Vec::new();
    match c.read_to_end(&mut rest) {
        Ok(n) => assert_eq!(n, 0),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
    }
    let s = stop(logd);
    assert_eq!((s.connections, s.connections_vetoed, s.records), (1, 1, 0));
    assert_eq!(
        count_lines(&read_records(&dir.0.join("data")).unwrap_or_default()),
        0
    );
}

#[test]
fn a_bad_chain_is_refused_at_reload_with_file_and_line_and_the_running_chain_goes_on() {
    let dir = TempDir::new("icpt-reload");
    let mut logd = start(&dir, "redact pattern=secret with=***");
    send(&logd, &[("h", "a", 6, "a secret")]);
    write_conf(
        &dir,
        "redact pattern=secret with=*** ; redact 'pattern=(unclosed'",
    );
    let err = logd
        .reconfigure()
        .expect_err("a bad pattern is refused")
        .to_string();
    let conf = dir.0.join("svc.conf");
    assert!(
        err.contains(&format!("{}:2:", conf.display())) && err.contains("bad pattern `(unclosed`"),
        "{err}"
    );
    // The old chain still runs.
    send(&logd, &[("h", "a", 6, "another secret")]);
    // A good chain applies.
    write_conf(&dir, "drop app=^a$");
    logd.reconfigure().expect("a good chain applies");
    send(
        &logd,
        &[("h", "a", 6, "dropped secret"), ("h", "b", 6, "b secret")],
    );
    let s = stop(logd);
    assert_eq!(
        messages(&dir.0.join("data")),
        ["a ***", "another ***", "b secret"]
    );
    assert_eq!((s.reconfigurations_failed, s.intercepted), (1, 1));
}

/// An upstream syslog receiver: collects the MSG part of each RFC 6587 octet-counted frame
/// until logd closes the connection at its stop.
/// What the test sends the upstream, on a connection of its own, once logd has stopped.
const END: &[u8] = b"end of test";

/// A plain-TCP upstream: every connection's frames, until a connection sends [`END`].
/// Every connection counts: a stop that catches the forwarder's connection half-made closes
/// it unused, and the stop's drain sends on a new one.
fn upstream() -> (std::net::SocketAddr, std::thread::JoinHandle<Vec<String>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        loop {
            let (mut s, _) = listener.accept().unwrap();
            s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
                .unwrap();
            let mut bytes = Vec::new();
            s.read_to_end(&mut bytes).unwrap();
            if bytes == END {
                return out;
            }
            let mut rest = &bytes[..];
            while let Some(sp) = rest.iter().position(|&b| b == b' ') {
                let len: usize = std::str::from_utf8(&rest[..sp]).unwrap().parse().unwrap();
                let frame = std::str::from_utf8(&rest[sp + 1..sp + 1 + len]).unwrap();
                out.push(frame.splitn(8, ' ').nth(7).unwrap().to_owned());
                rest = &rest[sp + 1 + len..];
            }
        }
    });
    (addr, reader)
}

/// Ends the [`upstream`] (after logd stopped) and returns what it received.
fn upstream_received(
    addr: std::net::SocketAddr,
    reader: std::thread::JoinHandle<Vec<String>>,
) -> Vec<String> {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    std::io::Write::write_all(&mut s, END).unwrap();
    drop(s);
    reader.join().unwrap()
}

#[test]
fn before_forward_filters_and_redacts_what_goes_upstream_only() {
    let dir = TempDir::new("icpt-forward");
    std::fs::create_dir_all(&dir.0).unwrap();
    write_conf(
        &dir,
        r"drop app=^local$ at=forward ; redact 'pattern=pw=\S+' with=pw=*** at=forward",
    );
    let (addr, reader) = upstream();
    let logd = Logd::start(LogdConfig {
        svc_conf: Some(dir.0.join("svc.conf")),
        store: StoreConfig::new(dir.0.join("data")),
        forward: Some(addr),
        ..LogdConfig::default()
    })
    .expect("logd starts");
    send(
        &logd,
        &[
            ("h", "local", 6, "stays here"),
            ("h", "web", 6, "login pw=abc"),
        ],
    );
    let s = stop(logd);
    assert_eq!(upstream_received(addr, reader), ["login pw=***"]);
    // The store is not behind the forward point: it keeps both, unchanged.
    assert_eq!(
        messages(&dir.0.join("data")),
        ["login pw=abc", "stays here"]
    );
    assert_eq!((s.stored, s.intercepted, s.forward_intercepted), (2, 0, 1));
}

/// The `cc-gate` plugin library (component-configurator's example of an Extension
/// Interface), built into this test's target directory on first use.
fn gate_plugin() -> std::path::PathBuf {
    static BUILT: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            // The test executable lives in target/<profile>/deps/.
            let exe = std::env::current_exe().unwrap();
            let profile_dir = exe.parent().and_then(std::path::Path::parent).unwrap();
            let mut cmd = std::process::Command::new(env!("CARGO"));
            cmd.args(["build", "--quiet", "-p", "cc-gate"]);
            if profile_dir.file_name().is_some_and(|n| n == "release") {
                cmd.arg("--release");
            }
            cmd.env("CARGO_TARGET_DIR", profile_dir.parent().unwrap())
                .current_dir(env!("CARGO_MANIFEST_DIR"));
            assert!(
                status(&mut cmd).unwrap().success(),
                "building cc-gate failed"
            );
            profile_dir.join("libcc_gate.so")
        })
        .clone()
}

#[test]
fn a_plugin_component_filters_through_its_record_filter_interface() {
    let dir = TempDir::new("icpt-plugin");
    let logd = start(
        &dir,
        &format!(
            "plugin library={} factory=_make_gate 'args=-s 5'",
            gate_plugin().display()
        ),
    );
    assert!(
        logd.services()
            .iter()
            .any(|l| l.contains("interceptors: [plugin#1]")),
        "{:?}",
        logd.services()
    );
    send(
        &logd,
        &[
            ("pos", "till", 3, "paid with 4111-1111-1111-1234"),
            ("pos", "till", 7, "polling the scanner"),
            ("pos", "till", 5, "drawer opened"),
        ],
    );
    let s = stop(logd);
    assert_eq!(
        messages(&dir.0.join("data")),
        ["drawer opened", "paid with ****-****-****-1234"]
    );
    assert_eq!((s.stored, s.intercepted), (2, 1));
}

#[test]
fn a_plugin_without_the_record_filter_interface_is_refused_and_nothing_changes() {
    let dir = TempDir::new("icpt-plugin-none");
    std::fs::create_dir_all(&dir.0).unwrap();
    let gate = gate_plugin();
    write_conf(&dir, "drop app=^noise$");
    let mut logd = Logd::start(LogdConfig {
        svc_conf: Some(dir.0.join("svc.conf")),
        store: StoreConfig::new(dir.0.join("data")),
        ..LogdConfig::default()
    })
    .unwrap();
    // cc-echo exports no interface (it has no query at all).
    let echo = gate.with_file_name("libcc_echo.so");
    let mut cmd = std::process::Command::new(env!("CARGO"));
    cmd.args(["build", "--quiet", "-p", "cc-echo"])
        .env("CARGO_TARGET_DIR", gate.parent().unwrap().parent().unwrap())
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if gate.parent().unwrap().ends_with("release") {
        cmd.arg("--release");
    }
    assert!(status(&mut cmd).unwrap().success());
    write_conf(
        &dir,
        &format!("plugin library={} factory=_make_echo", echo.display()),
    );
    let report = logd.reconfigure();
    let text = format!("{report:?}");
    assert!(
        text.contains("does not export posa.record-filter/1"),
        "{text}"
    );
    // The component's old arguments were restored: the old chain runs.
    send(&logd, &[("h", "noise", 6, "n"), ("h", "app", 6, "kept")]);
    let s = stop(logd);
    assert_eq!(messages(&dir.0.join("data")), ["kept"]);
    assert_eq!(s.intercepted, 1);
}
