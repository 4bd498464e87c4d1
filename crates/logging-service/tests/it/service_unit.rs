//! `dist/logd.service` and `dist/logd.socket`, checked by systemd's own verifier against the
//! logd this build made.

use std::path::PathBuf;
use std::process::Command;

#[test]
fn the_unit_file_passes_systemd_analyze_verify() {
    let Some(analyze) = pattern_core::peer::program("systemd-analyze", "systemd") else {
        return;
    };
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let unit = std::fs::read_to_string(root.join("dist/logd.service")).unwrap();
    assert!(unit.contains("\nType=notify\n"), "logd speaks sd_notify");
    assert!(unit.contains("ExecStart=/usr/local/bin/logd "));
    // verify insists that ExecStart's program exists: point it at this build's logd.
    let dir = crate::support::TempDir::new("unit");
    std::fs::create_dir_all(&dir.0).unwrap();
    let path = dir.0.join("logd.service");
    let unit = unit.replace("/usr/local/bin/logd", env!("CARGO_BIN_EXE_logd"));
    std::fs::write(&path, unit).unwrap();
    let socket = dir.0.join("logd.socket");
    std::fs::copy(root.join("dist/logd.socket"), &socket).unwrap();
    let out = crate::support::output(Command::new(analyze).arg("verify").arg(&socket).arg(&path))
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // Warnings go to stderr with a zero status; the unit must draw none of its own.
    let own: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("logd.service") || l.contains("logd.socket"))
        .collect();
    assert!(own.is_empty(), "{own:#?}");
}
