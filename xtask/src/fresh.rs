//! `cargo xtask fresh`: the workspace tests as a fresh machine meets them, with no system peers.
//!
//! A newcomer clones the repository onto a machine with only a Rust toolchain and runs
//! `cargo test --workspace`; that must pass, every interop test skipping with one line.
//! CI has the peers installed, so this command hides them: it sets `POSA_HIDE_PEERS=1` (the
//! peer helper `pattern_core::peer` then reports every peer as missing, files and headers
//! included), removes `POSA_REQUIRE_PEERS`, and replaces `PATH` by a shadow directory under
//! `target/` holding a symlink to every executable of the original `PATH` except the peers, so
//! that a test which runs a peer without asking the helper fails here rather than on a newcomer's
//! machine.

use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::demo::cargo_program;

/// The programs the tests, examples and benches talk to that a fresh machine does not have.
pub(crate) const PEERS: &[&str] = &[
    "ace_netsvcs",
    "c++",
    "clickhouse",
    "clickhouse-client",
    "clickhouse-server",
    "g++",
    "hyperfine",
    "logger",
    "loggen",
    "openssl",
    "prometheus",
    "promtool",
    "rsyslogd",
    "syslog-ng",
    "systemd-analyze",
];

/// Whether the program `name` is one of [`PEERS`], also under a version suffix (`g++-12`,
/// `syslog-ng-3.38`) or a target prefix (`x86_64-linux-gnu-g++`).
pub(crate) fn is_peer(name: &str) -> bool {
    let name = name
        .rsplit_once("-linux-gnu-")
        .map_or(name, |(_, tool)| tool);
    PEERS.iter().any(|peer| {
        let version = name.strip_prefix(peer).and_then(|v| v.strip_prefix('-'));
        name == *peer
            || version.is_some_and(|v| {
                v.starts_with(|c: char| c.is_ascii_digit())
                    && v.chars().all(|c| c.is_ascii_digit() || c == '.')
            })
    })
}

/// The arguments of the child `cargo test`: `extra`, after `--workspace` unless `extra` picks
/// packages itself.
fn test_args(extra: &[String]) -> Vec<String> {
    let picks = extra
        .iter()
        .any(|a| a == "-p" || a.starts_with("--package") || a.starts_with("-p") && a.len() > 2);
    let mut args = vec!["test".to_owned()];
    if !picks {
        args.push("--workspace".to_owned());
    }
    args.extend(extra.iter().cloned());
    args
}

/// Runs `cargo test --workspace <extra>` (or `cargo test <extra>` when `extra` names packages)
/// without the peers; `Ok(false)` when the tests fail.
pub(crate) fn run(extra: &[String]) -> Result<bool, String> {
    let root = crate::workspace_root()?;
    let shadow = root.join("target").join("fresh-path");
    let path = std::env::var_os("PATH").unwrap_or_default();
    let linked = shadow_path(&path, &shadow)?;
    eprintln!(
        "fresh: PATH is {} ({linked} programs, peers left out), POSA_HIDE_PEERS=1",
        shadow.display()
    );
    let args = test_args(extra);
    let shown = format!("cargo {}", args.join(" "));
    let status = Command::new(cargo_program())
        .args(&args)
        .current_dir(&root)
        .env("PATH", &shadow)
        .env(pattern_core_vars::HIDE, "1")
        .env_remove(pattern_core_vars::REQUIRE)
        .status()
        .map_err(|e| format!("cannot run `{shown}`: {e}"))?;
    if !status.success() {
        eprintln!("fresh: `{shown}` failed without the peers ({status})");
    }
    Ok(status.success())
}

/// The names of `pattern_core::peer`'s variables (xtask does not depend on the crates it runs).
mod pattern_core_vars {
    /// Hides every peer.
    pub(super) const HIDE: &str = "POSA_HIDE_PEERS";
    /// Turns a missing peer into a failure.
    pub(super) const REQUIRE: &str = "POSA_REQUIRE_PEERS";
}

/// Empties `shadow` and fills it with a symlink to every executable found on `path` except the
/// peers, the first of each name winning as in a `PATH` lookup; returns how many it made.
pub(crate) fn shadow_path(path: &OsStr, shadow: &Path) -> Result<usize, String> {
    if shadow.exists() {
        fs::remove_dir_all(shadow)
            .map_err(|e| format!("cannot empty {}: {e}", shadow.display()))?;
    }
    fs::create_dir_all(shadow).map_err(|e| format!("cannot create {}: {e}", shadow.display()))?;
    let mut seen: BTreeSet<OsString> = BTreeSet::new();
    for dir in std::env::split_paths(path) {
        // A relative or missing PATH entry finds nothing a fresh machine would rely on.
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        let mut names: Vec<(OsString, PathBuf)> = entries
            .filter_map(Result::ok)
            .map(|e| (e.file_name(), e.path()))
            .collect();
        names.sort();
        for (name, program) in names {
            let peer = name.to_str().is_none_or(is_peer);
            if peer || seen.contains(&name) || !is_executable(&program) {
                continue;
            }
            // Linking to the PATH entry itself (not its target) keeps argv[0], which rustup's
            // proxies (cargo, rustc) use to pick the tool.
            std::os::unix::fs::symlink(&program, shadow.join(&name))
                .map_err(|e| format!("cannot link {}: {e}", program.display()))?;
            seen.insert(name);
        }
    }
    Ok(seen.len())
}

/// Whether `path` is (or links to) a file with an execute bit.
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn peers_are_recognised_with_versions_and_target_prefixes() {
        for name in [
            "g++",
            "c++",
            "rsyslogd",
            "g++-12",
            "syslog-ng-3.38",
            "x86_64-linux-gnu-g++",
            "x86_64-linux-gnu-g++-12",
            "clickhouse-client",
            "hyperfine",
        ] {
            assert!(is_peer(name), "{name} should be hidden");
        }
        for name in [
            "cc", "gcc", "cargo", "rustc", "sh", "kill", "c++filt", "g++-x", "loggers", "ld",
        ] {
            assert!(!is_peer(name), "{name} should stay visible");
        }
    }

    #[test]
    fn extra_arguments_follow_the_workspace_unless_they_pick_packages() {
        let args = |extra: &[&str]| {
            let extra: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
            test_args(&extra).join(" ")
        };
        assert_eq!(args(&[]), "test --workspace");
        assert_eq!(
            args(&["--", "--nocapture"]),
            "test --workspace -- --nocapture"
        );
        assert_eq!(args(&["-p", "reactor"]), "test -p reactor");
        assert_eq!(args(&["--package=reactor"]), "test --package=reactor");
        assert_eq!(args(&["-preactor"]), "test -preactor");
    }

    fn executable(path: &Path) {
        fs::write(path, "#!/bin/sh\n").unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn the_shadow_path_links_every_program_but_the_peers_first_one_winning() {
        let base = std::env::temp_dir().join(format!("xtask-fresh-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        let (first, second, shadow) = (base.join("a"), base.join("b"), base.join("shadow"));
        fs::create_dir_all(&first).unwrap();
        fs::create_dir_all(&second).unwrap();
        executable(&first.join("tool"));
        executable(&first.join("g++"));
        executable(&second.join("tool"));
        executable(&second.join("rsyslogd"));
        executable(&second.join("other"));
        fs::write(second.join("data.txt"), "not a program").unwrap();
        // A stale link from an earlier run is removed.
        fs::create_dir_all(&shadow).unwrap();
        executable(&shadow.join("stale"));

        let path = std::env::join_paths([&first, &base.join("missing"), &second]).unwrap();
        assert_eq!(shadow_path(&path, &shadow).unwrap(), 2);
        let mut names: Vec<_> = fs::read_dir(&shadow)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["other", "tool"]);
        assert_eq!(
            fs::read_link(shadow.join("tool")).unwrap(),
            first.join("tool")
        );
        fs::remove_dir_all(&base).unwrap();
    }
}
