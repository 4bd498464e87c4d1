//! docs/logging-service.md's "Reading the store" walkthrough against a live `logd`: every
//! command of its marked block runs (with `sh`, `logc` on the `PATH`, the syslog address
//! replaced by the test logd's), succeeds, and prints exactly the `#>` lines under it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::support::TempDir;

/// The marker before the block of commands.
const MARKER: &str = "<!-- walkthrough:";
/// The address the page's commands use, replaced by the test logd's.
const DOC_ADDR: &str = "127.0.0.1:20514";

#[derive(Debug)]
struct Step {
    command: String,
    expected: Vec<String>,
}

/// The commands of the marked `sh` block, each with the `#>` lines that follow it.
fn steps(doc: &str) -> Vec<Step> {
    let at = doc.find(MARKER).expect("the page marks its walkthrough");
    let rest = &doc[at..];
    let start = rest.find("```sh\n").expect("an sh block after the marker") + "```sh\n".len();
    let len = rest[start..].find("```").expect("the block ends");
    let mut steps: Vec<Step> = Vec::new();
    for line in rest[start..start + len].lines() {
        if let Some(out) = line.strip_prefix("#>") {
            let step = steps.last_mut().expect("output follows a command");
            step.expected
                .push(out.strip_prefix(' ').unwrap_or(out).to_string());
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            steps.push(Step {
                command: line.to_string(),
                expected: Vec::new(),
            });
        }
    }
    steps
}

/// A `logd` child, stopped with SIGKILL if the test ends before it exited.
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
fn the_walkthrough_parser_finds_commands_and_their_output() {
    let doc = "x\n<!-- walkthrough: y -->\n```sh\n# note\na 1\n#> out 1\n#>\nb\n\n```\n";
    let s = steps(doc);
    assert_eq!(s.len(), 2);
    assert_eq!(
        (s[0].command.as_str(), &s[0].expected[..]),
        ("a 1", &["out 1".to_string(), String::new()][..])
    );
    assert!(s[1].expected.is_empty());
}

#[test]
fn reading_the_store_runs_as_documented() {
    let page = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/logging-service.md");
    let doc = std::fs::read_to_string(page).unwrap();
    let steps = steps(&doc);
    assert!(steps.len() >= 10, "{steps:#?}");
    let has_jq = steps.iter().any(|s| s.command.contains("jq "));
    let jq = if has_jq {
        pattern_core::peer::program("jq", "jq")
    } else {
        None
    };
    let work = TempDir::new("walkthrough");
    std::fs::create_dir_all(&work.0).unwrap();
    let mut logd = Child(
        crate::support::spawn(
            Command::new(env!("CARGO_BIN_EXE_logd"))
                .args([
                    "--ace-port",
                    "off",
                    "--syslog-port",
                    "0",
                    "--data-dir",
                    "logd-data",
                ])
                .current_dir(&work.0)
                .stdout(Stdio::piped())
                .stderr(Stdio::null()),
        )
        .unwrap(),
    );
    let mut out = BufReader::new(logd.0.stdout.take().unwrap());
    let addr = loop {
        let mut line = String::new();
        assert!(out.read_line(&mut line).unwrap() > 0, "logd exited early");
        if let Some(a) = line.trim().strip_prefix("logd: syslog (tcp) listening on ") {
            break a.to_string();
        }
    };
    let logc_dir = std::path::Path::new(env!("CARGO_BIN_EXE_logc"))
        .parent()
        .unwrap();
    let path = std::env::join_paths(std::iter::once(logc_dir.to_path_buf()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .unwrap();
    let mut ran = 0;
    for step in &steps {
        if step.command.contains("jq ") && jq.is_none() {
            continue;
        }
        let command = step.command.replace(DOC_ADDR, &addr);
        let run = crate::support::output(
            Command::new("sh")
                .args(["-c", &command])
                .current_dir(&work.0)
                .env("PATH", &path),
        )
        .unwrap();
        let stdout = String::from_utf8_lossy(&run.stdout);
        assert!(
            run.status.success(),
            "`{command}` failed ({}): {}{}",
            run.status,
            stdout,
            String::from_utf8_lossy(&run.stderr)
        );
        if !step.expected.is_empty() {
            let got: Vec<&str> = stdout.lines().map(str::trim_end).collect();
            assert_eq!(got, step.expected, "`{command}`");
        }
        ran += 1;
    }
    assert!(ran >= 8, "only {ran} commands ran");
    let term =
        crate::support::status(Command::new("kill").args(["-TERM", &logd.0.id().to_string()]))
            .unwrap();
    assert!(term.success());
    assert!(logd.0.wait().unwrap().success());
}
