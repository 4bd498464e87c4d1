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
