//! `cargo xtask loom`: the loom models of the crates whose own code switches to loom's
//! primitives under `--cfg loom` (concurrency, synchronization).
//!
//! Those models need the whole crate built with `RUSTFLAGS="--cfg loom"`, which a plain
//! `cargo test` cannot set per crate; they build in `target/loom` so the flag does not
//! invalidate the ordinary build. (leader-followers drives its wake-up model through loom as
//! a dev-dependency, so its model runs in plain `cargo test`.)

use std::process::Command;

use crate::demo::cargo_program;

/// The packages with `cfg(loom)` models, each run as `cargo test -p <pkg> --release --test it loom`.
pub(crate) const PACKAGES: &[&str] = &["concurrency", "synchronization"];

/// The `cargo test` arguments for the loom models.
fn args() -> Vec<String> {
    let mut a: Vec<String> = vec!["test".into(), "--release".into()];
    for p in PACKAGES {
        a.push("-p".into());
        a.push((*p).into());
    }
    a.extend(["--test", "it", "loom"].map(String::from));
    a
}

/// Runs every loom model; `Ok(false)` when one fails.
pub(crate) fn run() -> Result<bool, String> {
    let root = crate::workspace_root()?;
    let args = args();
    let shown = format!("RUSTFLAGS=\"--cfg loom\" cargo {}", args.join(" "));
    eprintln!("loom: {shown}");
    let status = Command::new(cargo_program())
        .args(&args)
        .current_dir(&root)
        .env("RUSTFLAGS", "--cfg loom")
        .env("CARGO_TARGET_DIR", root.join("target").join("loom"))
        .status()
        .map_err(|e| format!("cannot run `{shown}`: {e}"))?;
    if !status.success() {
        eprintln!("loom: `{shown}` failed ({status})");
    }
    Ok(status.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_package_with_cfg_loom_models_is_run() {
        let root = crate::workspace_root().unwrap();
        for p in PACKAGES {
            let manifest =
                std::fs::read_to_string(root.join("crates").join(p).join("Cargo.toml")).unwrap();
            assert!(
                manifest.contains("cfg(loom)"),
                "{p} has no cfg(loom) dependencies"
            );
        }
        let a = args();
        assert_eq!(a[..2], ["test", "--release"]);
        assert!(a.ends_with(&["--test".into(), "it".into(), "loom".into()]));
    }
}
