//! Finding the system peers that interoperability tests talk to (rsyslogd, libACE, loggen, ...).
//!
//! A fresh machine with only a Rust toolchain has none of them, and `cargo test --workspace` must
//! still pass there. Every test that needs a peer asks this module first: when the peer is
//! missing it prints one line, `skipped: <peer> not installed (apt-get install <pkg>)`, and the
//! test returns early and passes. CI installs the peers and sets `POSA_REQUIRE_PEERS=1`, and then a
//! missing peer fails the test instead, so the interop is still proven where it matters.
//!
//! `POSA_HIDE_PEERS=1` makes every peer look missing, which is how `cargo xtask fresh` checks the
//! fresh-machine path on a machine that has the peers installed.
//!
//! ```
//! use pattern_core::peer;
//!
//! // `sh` is on every Linux machine; a made-up program is on none.
//! assert!(peer::program("sh", "dash").is_some() || std::env::var_os("POSA_HIDE_PEERS").is_some());
//! if std::env::var_os("POSA_REQUIRE_PEERS").is_none() {
//!     assert!(peer::program("no-such-peer-xyz", "nothing").is_none());
//! }
//! ```

use std::path::{Path, PathBuf};

/// The variable that turns a missing peer from a skip into a failure.
pub const REQUIRE_VAR: &str = "POSA_REQUIRE_PEERS";
/// The variable that hides every peer (the fresh-machine check).
pub const HIDE_VAR: &str = "POSA_HIDE_PEERS";

fn flag(var: &str) -> bool {
    std::env::var_os(var).is_some_and(|v| !v.is_empty() && v != "0")
}

/// Reports a missing peer: a skip line, or a panic when peers are required.
///
/// Call it when a peer turned out to be missing in a way this module cannot check itself (say, a
/// library that fails to link); it returns only when peers are not required.
pub fn missing(what: &str, package: &str) {
    let line = format!("skipped: {what} not installed (apt-get install {package})");
    if flag(REQUIRE_VAR) {
        panic!("{line}, and {REQUIRE_VAR}=1 requires it");
    }
    println!("{line}");
}

/// Looks `name` up on `PATH` (or takes it as a path if it has a slash).
///
/// Returns its path, or `None` after printing the skip line; panics instead when
/// `POSA_REQUIRE_PEERS=1`. `package` is the Debian package that provides it.
pub fn program(name: &str, package: &str) -> Option<PathBuf> {
    match find_program(name) {
        Some(p) => Some(p),
        None => {
            missing(name, package);
            None
        }
    }
}

/// Like [`program`], for a file the peer installs (a header, a library, a module), tried at each
/// of `candidates` in turn; `what` names the peer in the skip line.
pub fn file(candidates: &[&str], what: &str, package: &str) -> Option<PathBuf> {
    let found = (!flag(HIDE_VAR))
        .then(|| candidates.iter().map(Path::new).find(|p| p.exists()))
        .flatten();
    match found {
        Some(p) => Some(p.to_path_buf()),
        None => {
            missing(what, package);
            None
        }
    }
}

fn find_program(name: &str) -> Option<PathBuf> {
    if flag(HIDE_VAR) {
        return None;
    }
    let executable = |p: &Path| {
        use std::os::unix::fs::PermissionsExt;
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if name.contains('/') {
        let p = PathBuf::from(name);
        return executable(&p).then_some(p);
    }
    // Daemons often live in sbin, which a non-root PATH may lack.
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| executable(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_program_every_machine_has_and_not_a_made_up_one() {
        if flag(HIDE_VAR) {
            assert_eq!(find_program("sh"), None);
        } else {
            assert!(find_program("sh").is_some());
        }
        assert_eq!(find_program("posa-no-such-program"), None);
        assert_eq!(find_program("/posa/no/such/program"), None);
    }
}
