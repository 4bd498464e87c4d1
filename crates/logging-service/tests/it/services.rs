//! logd's services as components: configured from a svc.conf and reconfigured live.

use std::net::TcpStream;

use component_configurator::Change;
use logging_service::Error;

use logging_service::logd::{Logd, LogdConfig};
use logging_service::store::StoreConfig;

use crate::support::{TempDir, ace_frame as ace, send_and_wait};

fn start(dir: &TempDir, conf: &str) -> Result<Logd, Error> {
    std::fs::create_dir_all(&dir.0).unwrap();
    let path = dir.0.join("svc.conf");
    std::fs::write(&path, conf).unwrap();
    Logd::start(LogdConfig {
        svc_conf: Some(path),
        store: StoreConfig::new(dir.0.join("data")),
        ..LogdConfig::default()
    })
}

fn rewrite(dir: &TempDir, conf: &str) {
    std::fs::write(dir.0.join("svc.conf"), conf).unwrap();
}

#[test]
fn svc_conf_configures_and_a_reconfiguration_applies_only_the_difference() {
    let dir = TempDir::new("svc-conf");
    let mut logd = start(
        &dir,
        "# logd services\nstatic ACE_Logging \"-p 0\"\nstatic Statistics \"-i 3600\"\n",
    )
    .unwrap();
    let ace_addr = logd.listening().ace.expect("ACE listener configured");
    assert_eq!(logd.listening().syslog_tcp, None);
    send_and_wait(ace_addr, &ace("one"));
    assert!(
        logd.services()
            .iter()
            .any(|s| s.starts_with("Statistics: statistics: 1 records")),
        "{:?}",
        logd.services()
    );

    // Add syslog; ACE_Logging is unchanged and keeps its port and its connections.
    let kept = TcpStream::connect(ace_addr).unwrap();
    rewrite(
        &dir,
        "static ACE_Logging \"-p 0\"\nstatic Statistics \"-i 3600\"\nstatic Syslog_Logging \"-p 0\"\n",
    );
    let report = logd.reconfigure().unwrap();
    assert_eq!(
        report.changes,
        vec![Change::Added {
            name: "Syslog_Logging".into()
        }]
    );
    assert_eq!(logd.listening().ace, Some(ace_addr));
    let syslog_addr = logd.listening().syslog_tcp.expect("syslog listener added");
    send_and_wait(syslog_addr, b"<13>1 - host app - - - two\n");
    drop(kept);

    // Remove ACE_Logging: its port is closed when reconfigure returns. (No other test's child
    // may hold a copy of the listener meanwhile: see wrapper_facade::process::without_spawns.)
    let settled = wrapper_facade::process::without_spawns();
    rewrite(
        &dir,
        "static Statistics \"-i 3600\"\nstatic Syslog_Logging \"-p 0\"\n",
    );
    let report = logd.reconfigure().unwrap();
    assert!(
        matches!(&report.changes[..], [Change::Removed { name, .. }] if name == "ACE_Logging"),
        "{:?}",
        report.changes
    );
    assert_eq!(logd.listening().ace, None);
    assert_eq!(
        TcpStream::connect(ace_addr).unwrap_err().kind(),
        std::io::ErrorKind::ConnectionRefused
    );
    drop(settled);

    // A syntax error applies nothing.
    rewrite(
        &dir,
        "static Statistics \"-i 3600\"\nstatic Syslog_Logging \"-p 0\n",
    );
    let err = logd.reconfigure().unwrap_err().to_string();
    assert!(err.contains("svc.conf:2:"), "{err}");
    assert_eq!(logd.listening().syslog_tcp, Some(syslog_addr));
    send_and_wait(syslog_addr, b"<13>1 - host app - - - three\n");

    let stats = logd.stop().unwrap();
    assert_eq!((stats.ace, stats.syslog), (1, 2));
}

#[test]
fn changed_arguments_move_a_listener() {
    let dir = TempDir::new("svc-args");
    let mut logd = start(&dir, "static ACE_Logging \"-p 0\"\n").unwrap();
    let first = logd.listening().ace.unwrap();
    // Free a port to move to, on a loopback address of its own, where the other tests'
    // sockets on 127.0.0.1 cannot take it meanwhile, and with no other test's child holding a
    // copy of the probe or of the old listener (wrapper_facade::process::without_spawns).
    let _settled = wrapper_facade::process::without_spawns();
    let port = std::net::TcpListener::bind("127.0.0.77:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    rewrite(
        &dir,
        &format!("static ACE_Logging \"-p {port} -b 127.0.0.77\"\n"),
    );
    let report = logd.reconfigure().unwrap();
    assert!(!report.changes.is_empty() && report.is_ok(), "{report:?}");
    let moved = logd.listening().ace.unwrap();
    assert_eq!(moved.port(), port);
    assert_eq!(
        TcpStream::connect(first).unwrap_err().kind(),
        std::io::ErrorKind::ConnectionRefused
    );
    send_and_wait(moved, &ace("after the move"));
    assert_eq!(logd.stop().unwrap().ace, 1);
}

#[test]
fn a_bad_svc_conf_refuses_to_start_with_a_position() {
    let dir = TempDir::new("svc-bad");
    let err = start(
        &dir,
        "static ACE_Logging \"-p 0\"\nstatic No_Such_Service\n",
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("No_Such_Service") && msg.contains(":2:"),
        "{msg}"
    );
    let err = start(&dir, "static ACE_Logging \"-p nope\"\n").unwrap_err();
    assert!(err.to_string().contains("bad port"), "{err}");
    // ACE's own netsvcs configuration names libraries of another ABI: refused, nothing runs.
    let err = start(&dir, "dynamic Logger Service_Object * ACE_netsvcs:_make_ACE_Server_Logging_Acceptor() active \"-p 20009\"\n")
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Services {
                unavailable: false,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("svc.conf:1:1: Logger: "), "{err}");
}

#[test]
fn a_bad_argument_on_reload_keeps_the_running_listener() {
    let dir = TempDir::new("svc-bad-reload");
    let mut logd = start(
        &dir,
        "static ACE_Logging \"-p 0\"\nstatic Statistics \"-i 3600\"\n",
    )
    .unwrap();
    let ace_addr = logd.listening().ace.expect("ACE listener configured");
    send_and_wait(ace_addr, &ace("before"));
    rewrite(
        &dir,
        "static ACE_Logging \"-p 0\"\nstatic Statistics \"-i 3600\"\nstatic Syslog_Logging \"-p notaport\"\n",
    );
    let err = logd.reconfigure().unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("svc.conf:3:1: Syslog_Logging: bad arguments: -p: bad port `notaport`"),
        "{msg}"
    );
    // The same with a changed argument of a running service: it is not restarted.
    rewrite(&dir, "static ACE_Logging \"-p notaport\"\n");
    let err = logd.reconfigure().unwrap_err().to_string();
    assert!(err.contains("svc.conf:1:1: ACE_Logging"), "{err}");
    rewrite(
        &dir,
        "static ACE_Logging \"-p 0\"\nstatic Statistics \"-i 0\"\n",
    );
    let err = logd.reconfigure().unwrap_err().to_string();
    assert!(err.contains("svc.conf:2:1: Statistics"), "{err}");
    assert_eq!(logd.listening().ace, Some(ace_addr));
    assert_eq!(logd.listening().syslog_tcp, None);
    assert!(logd.services().iter().any(|s| s.starts_with("Statistics")));
    send_and_wait(ace_addr, &ace("after the refused reloads"));
    assert_eq!(logd.stop().unwrap().ace, 2);
}

#[test]
fn check_file_names_the_line_and_binds_nothing() {
    let dir = TempDir::new("svc-check");
    std::fs::create_dir_all(&dir.0).unwrap();
    let path = dir.0.join("svc.conf");
    // A port that is surely in use by this test: checking does not bind, so it passes.
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    std::fs::write(&path, format!("static ACE_Logging \"-p {port}\"\n")).unwrap();
    let bind = std::net::IpAddr::from([127, 0, 0, 1]);
    logging_service::services::check_file(&path, bind).unwrap();
    for (conf, line) in [
        ("\nstatic Syslog_Logging \"-p 70000\"\n", ":2:1:"),
        ("static ACE_Logging \"-b nowhere\"\n", ":1:1:"),
        ("static ACE_Logging \"-p\"\n", ":1:1:"),
        ("static Statistics \"-i 99999999999\"\n", ":1:1:"),
        ("static Nope\n", ":1:1:"),
        ("static ACE_Logging \"-p 1\n", ":1:"),
    ] {
        std::fs::write(&path, conf).unwrap();
        let err = logging_service::services::check_file(&path, bind)
            .unwrap_err()
            .to_string();
        assert!(err.contains(line), "{conf:?}: {err}");
    }
}
