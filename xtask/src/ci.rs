//! `cargo xtask ci`: the checks of `.ci/run`, run locally in the same order.
//!
//! `.ci/run` additionally installs system packages; this command assumes they are there.
//! A unit test keeps [`STEPS`] and the script's `step cargo ...` lines in sync.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::demo::cargo_program;

/// The long help of `cargo xtask ci`.
pub(crate) const USAGE: &str = "\
Runs the checks of .ci/run from the workspace root, stopping at the first failure:
  cargo fmt --all --check
  cargo clippy --workspace --all-targets -- -D warnings
  cargo test --workspace
  cargo xtask fresh
  cargo xtask loom
  cargo xtask backends
  cargo xtask demo
  cargo xtask chaos --seconds 20
";

/// The cargo invocations of `.ci/run`, in order.
pub(crate) const STEPS: &[&[&str]] = &[
    &["fmt", "--all", "--check"],
    &[
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ],
    &["test", "--workspace"],
    &["xtask", "fresh"],
    &["xtask", "loom"],
    &["xtask", "backends"],
    &["xtask", "demo"],
    &["xtask", "chaos", "--seconds", "20"],
];

/// Runs every step from the workspace root; `Ok(false)` at the first step that fails.
pub(crate) fn run() -> Result<bool, String> {
    let cargo = cargo_program();
    let root = crate::workspace_root()?;
    let total = STEPS.len();
    let mut times: Vec<(String, Duration)> = Vec::new();
    for (index, step) in STEPS.iter().enumerate() {
        let shown = format!("cargo {}", step.join(" "));
        eprintln!("==> [{}/{total}] {shown}", index + 1);
        let start = Instant::now();
        let status = Command::new(&cargo)
            .args(*step)
            .current_dir(&root)
            .status()
            .map_err(|e| format!("cannot run `{shown}`: {e}"))?;
        let elapsed = start.elapsed();
        if !status.success() {
            eprintln!(
                "==> FAILED after {:.1}s ({status}): {shown}",
                elapsed.as_secs_f64()
            );
            return Ok(false);
        }
        eprintln!("==> ok in {:.1}s: {shown}", elapsed.as_secs_f64());
        times.push((shown, elapsed));
    }
    eprintln!("\nci: all {total} steps passed");
    for (shown, elapsed) in &times {
        eprintln!("  {:>7.1}s  {shown}", elapsed.as_secs_f64());
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn steps_match_the_ci_script() {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.ci/run");
        let script = std::fs::read_to_string(&script).expect("read .ci/run");
        let in_script: Vec<Vec<&str>> = script
            .lines()
            .filter_map(|line| line.trim().strip_prefix("step cargo "))
            .map(|rest| rest.split_whitespace().collect())
            .collect();
        let here: Vec<Vec<&str>> = STEPS.iter().map(|s| s.to_vec()).collect();
        assert_eq!(in_script, here, "`.ci/run` and `cargo xtask ci` disagree");
    }

    #[test]
    fn usage_lists_every_step() {
        for step in STEPS {
            let shown = format!("cargo {}", step.join(" "));
            assert!(USAGE.contains(&shown), "usage lacks `{shown}`");
        }
    }
}
