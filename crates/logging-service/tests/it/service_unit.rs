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

/// The guide's `systemctl` lines cannot run here (they need a running systemd); this checks
/// what they rely on instead: each unit they name is one of `dist/`, `enable` has an
/// `[Install]` section to act on, and `reload` has an `ExecReload` that sends logd the SIGHUP
/// the guide promises (whose effect, RELOADING=1 then READY=1, the notify test checks).
#[test]
fn the_guides_systemctl_lines_name_units_that_can_do_what_they_ask() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let guide = std::fs::read_to_string(root.join("docs/logging-service.md")).unwrap();
    let commands: Vec<Vec<&str>> = guide
        .lines()
        .flat_map(|l| l.split("&&"))
        .map(|c| c.split('#').next().unwrap().trim())
        .filter_map(|c| c.strip_prefix("sudo systemctl "))
        .map(|c| c.split_whitespace().collect())
        .collect();
    assert!(
        commands.iter().any(|c| c[0] == "enable") && commands.iter().any(|c| c[0] == "reload"),
        "the guide enables and reloads logd: {commands:?}"
    );
    for command in &commands {
        let (verb, args) = command.split_first().unwrap();
        let units: Vec<String> = args
            .iter()
            .filter(|a| !a.starts_with('-'))
            .map(|u| {
                if u.contains('.') {
                    (*u).to_owned()
                } else {
                    format!("{u}.service")
                }
            })
            .collect();
        match *verb {
            "daemon-reload" => assert!(units.is_empty(), "{command:?}"),
            "enable" | "reload" => assert!(!units.is_empty(), "{command:?} names a unit"),
            other => panic!("the guide runs `systemctl {other}`, which this test does not know"),
        }
        for unit in units {
            let text = std::fs::read_to_string(root.join("dist").join(&unit))
                .unwrap_or_else(|e| panic!("`systemctl {verb}` names {unit}, not in dist/: {e}"));
            match *verb {
                "enable" => assert!(
                    text.contains("\n[Install]\nWantedBy="),
                    "{unit} has nothing for `enable` to act on"
                ),
                "reload" => assert!(
                    text.contains("\nExecReload=/bin/kill -HUP $MAINPID\n"),
                    "`systemctl reload {unit}` must send logd SIGHUP"
                ),
                _ => {}
            }
        }
    }
}
