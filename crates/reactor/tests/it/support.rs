//! Shared test helpers.

use std::process::{Command, Stdio};

/// Runs the test named `name` (its path in this binary) in a child process whose open-file
/// limit is `nofile`, and returns `false`; in that child, returns `true` so the caller runs
/// the body. Descriptor limits are per process, so lowering one must not touch the others.
pub(crate) fn in_child_with_nofile(name: &str, nofile: u64) -> bool {
    if std::env::var("REACTOR_IT_CHILD").as_deref() == Ok(name) {
        return true;
    }
    let exe = std::env::current_exe().expect("test binary path");
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("ulimit -n {nofile} && exec \"$0\" \"$@\""))
        .arg(exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env("REACTOR_IT_CHILD", name)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Spawned under the fork-window lock: the child holds a copy of every descriptor of this
    // process until its exec (see wrapper_facade::process::without_spawns).
    let child = {
        let _forking = wrapper_facade::process::spawning();
        cmd.spawn().expect("spawn child test")
    };
    let out = child.wait_with_output().expect("wait for the child test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child test {name} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("1 passed"),
        "child ran no test named {name}:\n{stdout}"
    );
    false
}
