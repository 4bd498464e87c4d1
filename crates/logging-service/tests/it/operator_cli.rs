//! logd as an operator meets it: help and version, exit statuses by kind, errors with context,
//! its own log at info without colour codes, JSON logs, and the service manager's notify protocol.

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::TempDir;

fn logd(args: &[&str]) -> std::process::Output {
    crate::support::output(Command::new(env!("CARGO_BIN_EXE_logd")).args(args)).unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn help_and_version_go_to_stdout_and_succeed() {
    let out = logd(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = text(&out.stdout);
    assert!(
        help.contains("--max-frame <SIZE>") && help.contains("[default: 64K]"),
        "{help}"
    );
    assert!(help.contains("Exit status:"), "{help}");
    let out = logd(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        text(&out.stdout),
        format!("logd {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn a_port_in_use_is_unavailable_and_names_the_option_not_a_directive() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port().to_string();
    let dir = TempDir::new("port-in-use");
    let out = logd(&[
        "--ace-port",
        &port,
        "--syslog-port",
        "off",
        "--data-dir",
        dir.0.to_str().unwrap(),
    ]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(69), "EX_UNAVAILABLE: {err}");
    assert!(err.contains("ACE_Logging (--ace-port): "), "{err}");
    assert!(err.contains("in use"), "{err}");
    assert!(!err.contains("<directive"), "{err}");
}

#[test]
fn an_unusable_data_dir_cannot_be_created_and_is_named_absolute() {
    let dir = TempDir::new("not-a-dir");
    std::fs::create_dir_all(&dir.0).unwrap();
    std::fs::write(dir.0.join("file"), b"").unwrap();
    // A path under a regular file: ENOTDIR, whoever runs the test (root included).
    let out = Command::new(env!("CARGO_BIN_EXE_logd"))
        .current_dir(&dir.0)
        .args([
            "--ace-port",
            "0",
            "--syslog-port",
            "off",
            "--data-dir",
            "file/logs",
        ])
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(73), "EX_CANTCREAT: {err}");
    let absolute = dir.0.join("file/logs");
    assert!(
        err.contains(&format!(
            "cannot use the data directory {}",
            absolute.display()
        )),
        "{err}"
    );
    assert!(
        err.contains("Not a directory"),
        "the OS's reason follows: {err}"
    );
}

/// Starts logd with a notify socket of the test's own, reads its readiness, reloads and stops it.
#[test]
fn the_notify_protocol_reports_ready_reloading_and_stopping_and_logs_are_plain_text() {
    let dir = TempDir::new("notify");
    std::fs::create_dir_all(&dir.0).unwrap();
    let sock_path = dir.0.join("notify.sock");
    let manager = UnixDatagram::bind(&sock_path).unwrap();
    manager
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut child = crate::support::spawn(
        Command::new(env!("CARGO_BIN_EXE_logd"))
            .args(["--ace-port", "0", "--syslog-port", "off", "--data-dir"])
            .arg(dir.0.join("data"))
            .env("NOTIFY_SOCKET", &sock_path)
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    )
    .unwrap();
    let recv = || {
        let mut buf = [0u8; 1024];
        let n = manager
            .recv(&mut buf)
            .expect("a notification within the patience");
        String::from_utf8(buf[..n].to_vec()).unwrap()
    };
    let ready = recv();
    assert!(
        ready.starts_with("READY=1\nSTATUS=ACE logging (tcp) on 127.0.0.1:"),
        "{ready}"
    );
    let kill = |sig: &str| {
        let st = crate::support::status(Command::new("kill").args([sig, &child.id().to_string()]))
            .unwrap();
        assert!(st.success());
    };
    kill("-HUP");
    assert!(recv().starts_with("RELOADING=1\nMONOTONIC_USEC="));
    assert!(
        recv().starts_with("READY=1\n"),
        "ready again after the reload"
    );
    kill("-TERM");
    assert_eq!(recv(), "STOPPING=1\nSTATUS=stopping on SIGTERM\n");
    let stderr = child.stderr.take().unwrap();
    let lines: Vec<String> = BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
        .collect();
    assert!(child.wait().unwrap().success());
    let all = lines.join("\n");
    assert!(
        all.contains(" INFO ") && all.contains("listening on 127.0.0.1:"),
        "info by default: {all}"
    );
    assert!(!all.contains('\x1b'), "no colour codes into a pipe: {all}");
    assert!(!all.contains("{ threads"), "Display, not Debug: {all}");
}

#[test]
fn json_logs_are_one_object_per_line() {
    let dir = TempDir::new("json-log");
    // A start that fails logs a warning from the configurator: it must come as JSON.
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_logd"))
        .args([
            "--ace-port",
            &port,
            "--syslog-port",
            "off",
            "--log-format",
            "json",
        ])
        .arg("--data-dir")
        .arg(&dir.0)
        .env("RUST_LOG", "debug")
        .output()
        .unwrap();
    let err = text(&out.stderr);
    let json: Vec<&str> = err.lines().filter(|l| l.starts_with('{')).collect();
    assert!(!json.is_empty(), "{err}");
    for l in json {
        assert!(l.ends_with('}') && l.contains("\"level\":"), "{l}");
    }
}

/// Reads a child's stream line by line on a thread of its own, so a test waits for a line
/// with a deadline instead of blocking for ever.
fn lines_of(stream: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// The lines of `rx` up to and including the first that holds `needle`.
fn until(rx: &std::sync::mpsc::Receiver<String>, needle: &str) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(l) => {
                let done = l.contains(needle);
                seen.push(l);
                if done {
                    return seen;
                }
            }
            Err(e) => panic!("no line with {needle:?} ({e}); seen: {seen:#?}"),
        }
    }
}

/// A child killed when the test ends before it exited.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn kill(child: &std::process::Child, sig: &str) {
    let st =
        crate::support::status(Command::new("kill").args([sig, &child.id().to_string()])).unwrap();
    assert!(st.success());
}

/// Under a thread pool, with a svc.conf whose reload suspends a listener: the lifecycle
/// (listening, services, reconfiguration and its changes, statistics, the stop) is logged at
/// info without `RUST_LOG`, every value in its Display form, and the data directory a
/// relative `--data-dir` names is printed absolute.
#[test]
fn lifecycle_events_are_logged_at_info_in_display_form() {
    let dir = TempDir::new("lifecycle");
    std::fs::create_dir_all(&dir.0).unwrap();
    let conf = dir.0.join("svc.conf");
    let services = "static ACE_Logging \"-p 0\"\nstatic Statistics \"-i 1\"\n";
    std::fs::write(&conf, services).unwrap();
    let mut child = Running(
        crate::support::spawn(
            Command::new(env!("CARGO_BIN_EXE_logd"))
                .current_dir(&dir.0)
                .args([
                    "-f",
                    "svc.conf",
                    "--data-dir",
                    "data",
                    "--concurrency",
                    "leader-followers",
                    "--threads",
                    "2",
                ])
                .env_remove("RUST_LOG")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped()),
        )
        .unwrap(),
    );
    let out = lines_of(child.0.stdout.take().unwrap());
    let err = lines_of(child.0.stderr.take().unwrap());
    let storing = until(&out, "logd: storing under ").pop().unwrap();
    let absolute = std::path::absolute(&dir.0).unwrap().join("data");
    assert_eq!(
        storing,
        format!(
            "logd: storing under {} (leader-followers:2)",
            absolute.display()
        )
    );
    let mut log = until(&err, "service Statistics");
    log.extend(until(&err, "statistics"));
    std::fs::write(&conf, format!("{services}suspend ACE_Logging\n")).unwrap();
    kill(&child.0, "-HUP");
    log.extend(until(&err, "reconfigure: suspended ACE_Logging"));
    log.extend(until(&err, "reconfigured; files reopened"));
    kill(&child.0, "-TERM");
    log.extend(err.iter());
    assert!(child.0.wait().unwrap().success());
    let all = log.join("\n");
    for event in [
        "ACE logging (tcp) listening on 127.0.0.1:",
        "service ACE_Logging: ACE logging (tcp) listening on",
        " statistics records=0 ",
        "ACE logging (tcp) suspended: the listener on 127.0.0.1:",
        "stopping on SIGTERM",
    ] {
        assert!(
            log.iter()
                .any(|l| l.contains(" INFO ") && l.contains(event)),
            "{event:?} at info: {all}"
        );
    }
    for debug in ["{ ", "LeaderFollowers", "Suspended", "\x1b["] {
        assert!(!all.contains(debug), "{debug:?} in {all}");
    }
}

/// `RUST_LOG` decides the level: at `warn`, the info events above are not written.
#[test]
fn rust_log_wins_over_the_default_level() {
    let dir = TempDir::new("rust-log");
    let mut child = Running(
        crate::support::spawn(
            Command::new(env!("CARGO_BIN_EXE_logd"))
                .args(["--ace-port", "0", "--syslog-port", "off", "--data-dir"])
                .arg(&dir.0)
                .env("RUST_LOG", "warn")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped()),
        )
        .unwrap(),
    );
    let out = lines_of(child.0.stdout.take().unwrap());
    let err = lines_of(child.0.stderr.take().unwrap());
    until(&out, "logd: storing under ");
    kill(&child.0, "-TERM");
    until(&out, "logd: stopped;");
    assert!(child.0.wait().unwrap().success());
    let log: Vec<String> = err.iter().collect();
    assert!(
        log.iter().all(|l| !l.contains(" INFO ")),
        "info events at RUST_LOG=warn: {log:#?}"
    );
}

/// A second logd on a data directory another one holds is refused at once, named, with
/// EX_CANTCREAT; the first goes on and stops cleanly.
#[test]
fn a_second_logd_on_the_same_data_dir_is_refused_with_a_clear_message() {
    let dir = TempDir::new("second-logd");
    let mut first = Running(
        crate::support::spawn(
            Command::new(env!("CARGO_BIN_EXE_logd"))
                .args(["--ace-port", "0", "--syslog-port", "off", "--data-dir"])
                .arg(&dir.0)
                .stdout(Stdio::piped())
                .stderr(Stdio::null()),
        )
        .unwrap(),
    );
    let out = lines_of(first.0.stdout.take().unwrap());
    until(&out, "logd: storing under ");
    let second = logd(&[
        "--ace-port",
        "0",
        "--syslog-port",
        "off",
        "--data-dir",
        dir.0.to_str().unwrap(),
    ]);
    let err = text(&second.stderr);
    assert_eq!(second.status.code(), Some(73), "{err}");
    assert!(
        err.contains(&format!(
            "data directory {} is in use by another logd",
            dir.0.display()
        )),
        "{err}"
    );
    kill(&first.0, "-TERM");
    assert!(first.0.wait().unwrap().success());
}
