//! Shared test helpers.

use std::process::Command;

/// Runs the test named `name` (its path in this binary) in a child process whose open-file
/// limit is `nofile`, and returns `false`; in that child, returns `true` so the caller runs
/// the body. Descriptor limits are per process, so lowering one must not touch the others.
pub(crate) fn in_child_with_nofile(name: &str, nofile: u64) -> bool {
    if std::env::var("REACTOR_IT_CHILD").as_deref() == Ok(name) {
        return true;
    }
    let exe = std::env::current_exe().expect("test binary path");
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -n {nofile} && exec \"$0\" \"$@\""))
        .arg(exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env("REACTOR_IT_CHILD", name)
        .output()
        .expect("spawn child test");
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
