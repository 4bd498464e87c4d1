//! Pieces the examples share: finding (and building) the plugin libraries.

use std::path::{Path, PathBuf};

/// The target directory holding the plugin libraries, building `plugins` there first if
/// one is missing (`cargo build -p ...`).
pub(crate) fn plugin_dir(plugins: &[&str]) -> PathBuf {
    // This example runs from target/<profile>/examples/.
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .to_owned();
    if plugins
        .iter()
        .any(|p| !dir.join(format!("lib{}.so", p.replace('-', "_"))).exists())
    {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_owned());
        let mut cmd = std::process::Command::new(cargo);
        cmd.args(["build", "--quiet"]);
        if dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        for p in plugins.iter().copied() {
            cmd.args(["-p", p]);
        }
        cmd.env("CARGO_TARGET_DIR", dir.parent().expect("target dir"));
        let status = cmd.status().expect("cargo build for the plugins");
        assert!(status.success(), "building the plugins failed");
    }
    dir
}
