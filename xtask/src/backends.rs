//! `cargo xtask backends`: the dispatchers' test suites (reactor, leader/followers,
//! half-sync/half-async, the conformance kit they run) on two of mio's backends: epoll, the
//! default on Linux, and poll(2), which mio uses where neither epoll nor kqueue exists and
//! which `--cfg mio_unsupported_force_poll_poll` forces.
//!
//! The two differ in what the contract has to hide: epoll is edge-triggered and keeps a
//! descriptor armed, poll(2) is level-triggered and mio disarms what it reported until the
//! descriptor is registered again, so the dispatchers re-arm what their handlers drained
//! (`reactor::readiness::Registration`). The poll(2) build goes to `target/pollpoll`, so
//! the flag does not invalidate the ordinary build.

use std::process::Command;

use crate::demo::cargo_program;

/// The packages whose suites run on each backend.
pub(crate) const PACKAGES: &[&str] = &["reactor", "leader-followers"];

/// One backend: its name, the cfg that selects it (none: mio's default) and its target dir.
pub(crate) struct Backend {
    pub(crate) name: &'static str,
    pub(crate) cfg: Option<&'static str>,
    pub(crate) target: Option<&'static str>,
}

/// epoll first (the ordinary build), then poll(2).
pub(crate) const BACKENDS: &[Backend] = &[
    Backend {
        name: "epoll",
        cfg: None,
        target: None,
    },
    Backend {
        name: "poll",
        cfg: Some("mio_unsupported_force_poll_poll"),
        target: Some("pollpoll"),
    },
];

/// The `cargo test` arguments: each package's unit tests, its integration binary and its
/// signal binary (the loom model of the pools' wake-ups has no I/O and runs in `cargo test`).
pub(crate) fn args() -> Vec<String> {
    let mut a: Vec<String> = vec!["test".into()];
    for p in PACKAGES {
        a.push("-p".into());
        a.push((*p).into());
    }
    a.extend(["--lib", "--test", "it", "--test", "signals"].map(String::from));
    a
}

/// Runs the suites on every backend; `Ok(false)` when one fails (the others still run).
pub(crate) fn run() -> Result<bool, String> {
    let root = crate::workspace_root()?;
    let args = args();
    let mut ok = true;
    for backend in BACKENDS {
        let mut cmd = Command::new(cargo_program());
        cmd.args(&args).current_dir(&root);
        let mut shown = format!("cargo {}", args.join(" "));
        if let Some(cfg) = backend.cfg {
            let flags = match std::env::var("RUSTFLAGS") {
                Ok(f) if !f.trim().is_empty() => format!("{f} --cfg {cfg}"),
                _ => format!("--cfg {cfg}"),
            };
            shown = format!("RUSTFLAGS=\"{flags}\" {shown}");
            cmd.env("RUSTFLAGS", flags);
        }
        if let Some(dir) = backend.target {
            cmd.env("CARGO_TARGET_DIR", root.join("target").join(dir));
        }
        eprintln!("backends: {}: {shown}", backend.name);
        let status = cmd
            .status()
            .map_err(|e| format!("cannot run `{shown}`: {e}"))?;
        if status.success() {
            eprintln!("backends: {}: passed", backend.name);
        } else {
            eprintln!("backends: {}: `{shown}` failed ({status})", backend.name);
            ok = false;
        }
    }
    Ok(ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_package_has_the_test_binaries_run() {
        let root = crate::workspace_root().unwrap();
        for p in PACKAGES {
            let dir = root.join("crates").join(p).join("tests");
            assert!(dir.join("it").join("main.rs").is_file(), "{p}: no tests/it");
            assert!(dir.join("signals.rs").is_file(), "{p}: no tests/signals.rs");
        }
        assert_eq!(BACKENDS.len(), 2);
        assert!(BACKENDS[0].cfg.is_none() && BACKENDS[0].target.is_none());
        assert_eq!(BACKENDS[1].cfg, Some("mio_unsupported_force_poll_poll"));
        assert!(args().ends_with(&["--test".into(), "signals".into()]));
    }

    #[test]
    fn the_readiness_module_knows_the_poll_cfg() {
        // The dispatchers switch on the same cfg name mio reads; a rename would silently test
        // epoll twice.
        let root = crate::workspace_root().unwrap();
        let readiness =
            std::fs::read_to_string(root.join("crates/reactor/src/readiness.rs")).unwrap();
        assert!(readiness.contains(BACKENDS[1].cfg.unwrap()));
    }
}
