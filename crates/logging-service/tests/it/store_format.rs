//! The store's formats and permissions through a live logd: `--format json` lines read back
//! with the store's parser and with `jq`; files 0640 and directories 0750 by default, and
//! `--file-mode` exact whatever the umask.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use logging_service::store::{StoreFormat, read_file};

use crate::support::{Server, TempDir, ace_frame, send_and_wait};

const SD: &str = r#"[ex@32473 a="x\]y\"z\\" b="h\u{f4}te"]"#;

fn mode_of(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

/// What every format test sends: RFC 5424 with MSGID and STRUCTURED-DATA and an offset, a
/// PRI-less line, and an ACE record ending in a newline.
fn send_mix(server: &Server) {
    let m = format!("<165>1 2026-11-26T08:00:01.5+05:30 gw-1 mqttd 812 ID47 {SD} valve stuck");
    let text = format!("{} {m}no pri here\n", m.len());
    send_and_wait(server.at.syslog_tcp.unwrap(), text.as_bytes());
    send_and_wait(server.at.ace.unwrap(), &ace_frame("ace says hi\n"));
}

#[test]
fn json_lines_have_the_fields_of_the_text_lines_and_jq_reads_them() {
    let text = Server::start("fmt-text", |_| {});
    let json = Server::start("fmt-json", |c| c.store.format = StoreFormat::Json);
    send_mix(&text);
    send_mix(&json);
    // Both stores, parsed: the same records but for the time of receipt of the PRI-less one.
    let (a, b) = (text.stored(), json.stored());
    assert_eq!(a.len(), 2);
    for ((ha, ra), (hb, rb)) in a.iter().zip(&b) {
        assert_eq!(ha, hb);
        assert_eq!(ra.len(), rb.len());
        for (x, y) in ra.iter().zip(rb) {
            assert_eq!(
                (
                    &x.host, &x.app, &x.pid, &x.sent, &x.msgid, &x.sd, &x.message
                ),
                (
                    &y.host, &y.app, &y.pid, &y.sent, &y.msgid, &y.sd, &y.message
                )
            );
            assert_eq!((x.facility, x.severity), (y.facility, y.severity));
        }
    }
    let gw = read_file(&json.dir.0.join("gw-1.log")).unwrap();
    assert_eq!(gw[0].sd.as_deref(), Some(SD));
    assert_eq!(gw[0].time, "2026-11-26T02:30:01.500000Z");
    let raw = std::fs::read_to_string(json.dir.0.join("gw-1.log")).unwrap();
    let v: serde_json::Value = serde_json::from_str(raw.lines().next().unwrap()).unwrap();
    assert_eq!(
        (v["facility"].as_str(), v["severity"].as_str()),
        (Some("local4"), Some("notice"))
    );
    assert_eq!(v["sd"].as_str(), Some(SD));
    assert_eq!(v["pid"].as_str(), Some("812"));
    let local = read_file(&json.dir.0.join("127.0.0.1.log")).unwrap();
    let messages: Vec<&str> = local.iter().map(|r| r.message.as_str()).collect();
    assert_eq!(messages, ["no pri here", "ace says hi"]);
    assert!(local[0].sd.is_none() && local[0].msgid.is_none());
    if let Some(jq) = pattern_core::peer::program("jq", "jq") {
        let run = |filter: &str, file: &str| {
            let out = crate::support::output(
                Command::new(&jq)
                    .args(["-r", filter])
                    .arg(json.dir.0.join(file)),
            )
            .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap()
        };
        // The command of docs/logging-service.md's "JSON lines".
        assert_eq!(
            run(
                r#"select(.msgid != null) | "\(.time) \(.host) \(.msgid) \(.message)""#,
                "gw-1.log"
            ),
            "2026-11-26T02:30:01.500000Z gw-1 ID47 valve stuck\n"
        );
        assert_eq!(run(".sd", "gw-1.log"), format!("{SD}\n"));
        assert_eq!(
            run(
                r#""\(.facility).\(.severity) \(.msgid) \(.sent)""#,
                "gw-1.log"
            ),
            "local4.notice ID47 2026-11-26T08:00:01.5+05:30\n"
        );
        assert_eq!(
            run("select(.app == null) | .message", "127.0.0.1.log"),
            "no pri here\n"
        );
        assert_eq!(run(".pid // \"-\"", "127.0.0.1.log"), "-\n1\n");
    }
    // A directory written in both formats over time reads the same, line by line.
    let mixed = json.dir.0.join("127.0.0.1.log");
    let text_line = std::fs::read_to_string(text.dir.0.join("127.0.0.1.log")).unwrap();
    let mut all = std::fs::read_to_string(&mixed).unwrap();
    all.push_str(&text_line);
    std::fs::write(&mixed, all).unwrap();
    let both = read_file(&mixed).unwrap();
    assert_eq!(both.len(), 4);
    assert_eq!(both[2].message, "no pri here");
    assert_eq!(both[3], local[1]);
    text.stop();
    json.stop();
}

#[test]
fn files_are_0640_and_directories_0750_by_default() {
    let server = Server::start("modes", |c| {
        let nested = c.store.dir.join("a").join("b");
        c.store.dir = nested;
    });
    send_mix(&server);
    let data = server.dir.0.join("a").join("b");
    for d in [&server.dir.0, &server.dir.0.join("a"), &data] {
        assert_eq!(mode_of(d), 0o750, "{}", d.display());
    }
    for f in ["gw-1.log", "127.0.0.1.log"] {
        assert_eq!(mode_of(&data.join(f)), 0o640, "{f}");
    }
    server.stop();
}

/// The binary under a umask that would take every group and other bit: `--file-mode 0644`
/// gives exactly 0644 files and a 0755 data directory; a rotated file keeps its mode; a file
/// that existed keeps its own.
#[test]
fn file_mode_is_exact_whatever_the_umask() {
    let work = TempDir::new("file-mode");
    std::fs::create_dir_all(&work.0).unwrap();
    let data = work.0.join("store");
    let script = format!(
        "umask 077 && exec '{}' --ace-port 0 --syslog-port off --rotate-bytes 200 --file-mode 0644 --data-dir '{}'",
        env!("CARGO_BIN_EXE_logd"),
        data.display()
    );
    let mut child = crate::support::spawn(
        Command::new("sh")
            .args(["-c", &script])
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
    )
    .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let addr: std::net::SocketAddr = line
        .trim()
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .expect(&line);
    assert_eq!(mode_of(&data), 0o755);
    std::fs::write(data.join("10.9.9.9.log"), "").unwrap();
    std::fs::set_permissions(
        data.join("10.9.9.9.log"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    // Two connections, two batches: the second rotates the first's file.
    for batch in 0..2 {
        let frames: Vec<u8> = (0..5)
            .flat_map(|i| ace_frame(&format!("batch {batch} record {i}")))
            .collect();
        send_and_wait(addr, &frames);
    }
    let st = crate::support::status(Command::new("kill").args(["-TERM", &child.id().to_string()]))
        .unwrap();
    assert!(st.success());
    assert!(child.wait().unwrap().success());
    assert_eq!(mode_of(&data.join("127.0.0.1.log")), 0o644);
    assert_eq!(mode_of(&data.join("127.0.0.1.log.1")), 0o644, "rotated");
    assert_eq!(
        mode_of(&data.join("10.9.9.9.log")),
        0o600,
        "an existing file keeps its mode"
    );
}
