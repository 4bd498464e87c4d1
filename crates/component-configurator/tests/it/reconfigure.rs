//! Live reconfiguration: only the difference is applied; hot upgrade keeps state.

use std::sync::Arc;

use component_configurator::{Change, ComponentState, Configurator, Error};
use parking_lot::Mutex;

use crate::support::{Logged, Stateful, addr_of, plugin, plugin_dir, request, temp_dir};

#[test]
fn only_the_difference_is_applied() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut cfg = Configurator::default();
    for n in ["A", "B", "C", "D", "E"] {
        let log = Arc::clone(&log);
        cfg.register_static(n, move || {
            Box::new(Logged {
                name: n.to_owned(),
                log: Arc::clone(&log),
            })
        });
    }
    let dir = temp_dir("diff");
    let conf = dir.join("svc.conf");
    std::fs::write(
        &conf,
        "static A \"1\"\nstatic B \"1\"\nstatic C\nstatic D\n",
    )
    .unwrap();
    cfg.process_file(&conf).unwrap();
    log.lock().clear();

    // A unchanged, B new args, C removed, D suspended, E added.
    std::fs::write(
        &conf,
        "static A \"1\"\nstatic B \"2\"\nstatic D inactive\nstatic E\n",
    )
    .unwrap();
    let report = cfg.reconfigure().unwrap();
    assert!(report.is_ok());
    assert_eq!(
        report.changes,
        vec![
            Change::Removed {
                name: "C".into(),
                unloaded: None
            },
            Change::Reinitialised { name: "B".into() },
            Change::Suspended { name: "D".into() },
            Change::Added { name: "E".into() },
        ]
    );
    assert_eq!(
        *log.lock(),
        vec![
            "suspend C",
            "fini C",
            "suspend B",
            "fini B",
            "init[\"2\"] B",
            "suspend D",
            "init[] E"
        ]
    );
    assert!(
        !log.lock().iter().any(|l| l.ends_with(" A")),
        "A was touched"
    );
    assert_eq!(cfg.repository().names(), ["A", "B", "D", "E"]);

    // Nothing changed: nothing happens.
    log.lock().clear();
    let report = cfg.reconfigure().unwrap();
    assert!(report.changes.is_empty());
    assert!(log.lock().is_empty());

    // Resume D through the file.
    std::fs::write(
        &conf,
        "static A \"1\"\nstatic B \"2\"\nstatic D\nstatic E\n",
    )
    .unwrap();
    let report = cfg.reconfigure().unwrap();
    assert_eq!(report.changes, vec![Change::Resumed { name: "D".into() }]);
    assert_eq!(
        cfg.repository().get("D").unwrap().state(),
        ComponentState::Active
    );
}

#[test]
fn a_broken_file_applies_nothing_and_keeps_what_runs() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut cfg = Configurator::default();
    for n in ["A", "B"] {
        let log = Arc::clone(&log);
        cfg.register_static(n, move || {
            Box::new(Logged {
                name: n.to_owned(),
                log: Arc::clone(&log),
            })
        });
    }
    let dir = temp_dir("broken");
    let conf = dir.join("svc.conf");
    // The error is in the last directive: the first must not have been applied either.
    std::fs::write(&conf, "static A\nstatic B\nsuspend Nobody\n").unwrap();
    let err = cfg.process_file(&conf).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}:3:1: no component named \"Nobody\" is configured before this directive",
            conf.display()
        )
    );
    assert!(cfg.repository().is_empty());
    assert!(log.lock().is_empty());

    std::fs::write(&conf, "static A\n").unwrap();
    cfg.process_file(&conf).unwrap();
    std::fs::write(&conf, "static A\nstatic B \"unterminated\n").unwrap();
    let err = cfg.reconfigure().unwrap_err();
    assert!(
        matches!(&err, Error::Parse(p) if p.position.line == 2 && p.position.column == 10),
        "{err}"
    );
    assert_eq!(cfg.repository().names(), ["A"]);
    std::fs::remove_file(&conf).unwrap();
    assert!(matches!(cfg.reconfigure(), Err(Error::Read { .. })));
    assert_eq!(cfg.repository().names(), ["A"]);
}

#[test]
fn changed_arguments_restart_a_plugin_on_its_new_port() {
    let mut cfg = Configurator::default();
    cfg.add_search_dir(plugin_dir());
    let dir = temp_dir("args");
    let conf = dir.join("svc.conf");
    std::fs::write(
        &conf,
        "dynamic Echo Service_Object * cc_echo:_make_echo() \"-p 0\"\n\
         dynamic Time Service_Object * cc_time:_make_time() \"-p 0\"\n",
    )
    .unwrap();
    cfg.process_file(&conf).unwrap();
    let echo_before = addr_of(&cfg.repository().find("Echo").unwrap().component().info());
    let time_addr = addr_of(&cfg.repository().find("Time").unwrap().component().info());
    // Pick a free port for the new arguments; no other test's child may hold the probe's
    // listener (or the old port's) between its fork and exec meanwhile.
    let _settled = wrapper_facade::process::without_spawns();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        &conf,
        format!(
            "dynamic Echo Service_Object * cc_echo:_make_echo() \"-p {port}\"\n\
             dynamic Time Service_Object * cc_time:_make_time() \"-p 0\"\n"
        ),
    )
    .unwrap();
    let report = cfg.reconfigure().unwrap();
    assert_eq!(
        report.changes,
        vec![Change::Reinitialised {
            name: "Echo".into()
        }]
    );
    let echo_after = addr_of(&cfg.repository().find("Echo").unwrap().component().info());
    assert_eq!(echo_after.port(), port);
    assert_eq!(request(echo_after, "moved").unwrap(), "moved");
    assert!(request(echo_before, "old port").is_err());
    // Time was not involved and still serves on its port.
    assert!(request(time_addr, "t").unwrap().starts_with("time "));
}

#[test]
fn hot_upgrade_keeps_the_state() {
    let dir = temp_dir("upgrade");
    // "Builds" of the statistics plugin: copies at their own paths load as distinct libraries.
    let v1 = dir.join("libstats_v1.so");
    let v2 = dir.join("libstats_v2.so");
    std::fs::copy(plugin("cc-stats"), &v1).unwrap();
    std::fs::copy(plugin("cc-stats"), &v2).unwrap();
    let conf = dir.join("svc.conf");
    let mut cfg = Configurator::default();
    cfg.set_env({
        let dir = dir.to_path_buf();
        move |v| (v == "PLUGINS").then(|| dir.display().to_string())
    });
    std::fs::write(
        &conf,
        "dynamic Stats Service_Object * ${PLUGINS}/libstats_v1.so:_make_stats() \"-p 0\"\n",
    )
    .unwrap();
    cfg.process_file(&conf).unwrap();
    let addr = addr_of(&cfg.repository().find("Stats").unwrap().component().info());
    for n in 1..=3 {
        assert_eq!(request(addr, "hit").unwrap(), format!("requests {n}"));
    }
    std::fs::write(
        &conf,
        "dynamic Stats Service_Object * ${PLUGINS}/libstats_v2.so:_make_stats() \"-p 0\"\n",
    )
    .unwrap();
    let report = cfg.reconfigure().unwrap();
    assert!(report.is_ok(), "{:?}", report.errors);
    let [
        Change::Upgraded {
            name,
            state_bytes,
            unloaded,
        },
    ] = report.changes.as_slice()
    else {
        panic!("expected one upgrade, got {:?}", report.changes);
    };
    assert_eq!(name, "Stats");
    assert_eq!(*state_bytes, Some(8));
    let old = unloaded.as_ref().expect("v1 had no other user");
    assert_eq!(old.path, v1.canonicalize().unwrap());
    let record = cfg.repository().find("Stats").unwrap();
    assert_eq!(record.library_path(), Some(v2.canonicalize().unwrap()));
    let addr = addr_of(&record.component().info());
    assert_eq!(request(addr, "hit").unwrap(), "requests 4");
}

#[test]
fn a_refused_upgrade_leaves_the_old_instance_serving() {
    let mut cfg = Configurator::default();
    cfg.add_search_dir(plugin_dir());
    let dir = temp_dir("refused-upgrade");
    let conf = dir.join("svc.conf");
    std::fs::write(
        &conf,
        "dynamic S Service_Object * cc_stats:_make_stats() \"-p 0\"\n",
    )
    .unwrap();
    cfg.process_file(&conf).unwrap();
    let addr = addr_of(&cfg.repository().find("S").unwrap().component().info());
    assert_eq!(request(addr, "x").unwrap(), "requests 1");
    std::fs::write(
        &conf,
        "dynamic S Service_Object * cc_wrong_abi:_make_wrong() \"-p 0\"\n",
    )
    .unwrap();
    let report = cfg.reconfigure().unwrap();
    assert!(matches!(report.errors[0].error, Error::AbiMismatch { .. }));
    assert_eq!(request(addr, "x").unwrap(), "requests 2");
}

#[test]
fn a_changed_variable_is_seen_although_the_file_is_unchanged() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let level = Arc::new(Mutex::new("1".to_owned()));
    let mut cfg = Configurator::default();
    {
        let log = Arc::clone(&log);
        cfg.register_static("A", move || {
            Box::new(Logged {
                name: "A".to_owned(),
                log: Arc::clone(&log),
            })
        });
    }
    {
        let level = Arc::clone(&level);
        cfg.set_env(move |v| (v == "LEVEL").then(|| level.lock().clone()));
    }
    let dir = temp_dir("var");
    let conf = dir.join("svc.conf");
    std::fs::write(&conf, "static A \"-v ${LEVEL}\"\n").unwrap();
    cfg.process_file(&conf).unwrap();
    assert!(cfg.reconfigure().unwrap().changes.is_empty());
    *level.lock() = "2".to_owned();
    let report = cfg.reconfigure().unwrap();
    assert_eq!(
        report.changes,
        vec![Change::Reinitialised { name: "A".into() }]
    );
    assert_eq!(cfg.repository().get("A").unwrap().args(), ["-v", "2"]);
}

/// Registers `names` as `Logged` statics sharing one log.
fn logged(names: &[&'static str]) -> (Configurator, Arc<Mutex<Vec<String>>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut cfg = Configurator::default();
    for &n in names {
        let log = Arc::clone(&log);
        cfg.register_static(n, move || {
            Box::new(Logged {
                name: n.to_owned(),
                log: Arc::clone(&log),
            })
        });
    }
    (cfg, log)
}

#[test]
fn a_bad_argument_anywhere_refuses_the_whole_reload_before_anything_changes() {
    let (mut cfg, log) = logged(&["A", "B", "C"]);
    let dir = temp_dir("two-phase");
    let conf = dir.join("svc.conf");
    std::fs::write(&conf, "static A \"1\"\nstatic B \"1\"\n").unwrap();
    cfg.process_file(&conf).unwrap();
    log.lock().clear();

    // B would be re-initialised and C added before A's bad argument is reached in
    // application order; the check phase refuses first, so none of it happens.
    std::fs::write(&conf, "static B \"2\"\nstatic C\n\nstatic A \"bad-port\"\n").unwrap();
    let err = cfg.reconfigure().unwrap_err();
    assert!(matches!(err, Error::Parse(_)), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("svc.conf:4:1: A: bad arguments: `bad-port` is not a number"),
        "{msg}"
    );
    assert!(log.lock().is_empty(), "touched: {:?}", log.lock());
    assert_eq!(cfg.repository().names(), ["A", "B"]);
    assert_eq!(cfg.repository().get("B").unwrap().args(), ["1"]);
    assert_eq!(
        cfg.repository().get("A").unwrap().state(),
        ComponentState::Active
    );

    // The same file fixed applies.
    std::fs::write(&conf, "static B \"2\"\nstatic C\n\nstatic A \"1\"\n").unwrap();
    assert!(cfg.reconfigure().unwrap().is_ok());
    assert_eq!(cfg.repository().get("B").unwrap().args(), ["2"]);
}

#[test]
fn a_failed_init_with_new_arguments_restarts_with_the_old_ones() {
    let (mut cfg, log) = logged(&["A"]);
    let dir = temp_dir("rollback");
    let conf = dir.join("svc.conf");
    std::fs::write(&conf, "static A \"1\"\n").unwrap();
    cfg.process_file(&conf).unwrap();
    log.lock().clear();
    std::fs::write(&conf, "static A \"busy\"\n").unwrap();
    let report = cfg.reconfigure().unwrap();
    assert_eq!(report.errors.len(), 1);
    assert!(
        report.errors[0].to_string().contains("svc.conf:1:1: A:"),
        "{}",
        report.errors[0]
    );
    assert_eq!(
        *log.lock(),
        ["suspend A", "fini A", "init[\"busy\"] A", "init[\"1\"] A"]
    );
    let a = cfg.repository().get("A").expect("A still configured");
    assert_eq!(a.args(), ["1"]);
    assert_eq!(a.state(), ComponentState::Active);
}

#[test]
fn check_file_validates_without_applying_or_keeping_the_file() {
    let (cfg, log) = logged(&["A"]);
    let dir = temp_dir("check-file");
    let good = dir.join("good.conf");
    let bad = dir.join("bad.conf");
    std::fs::write(&good, "static A \"1\"\nsuspend A\n").unwrap();
    std::fs::write(&bad, "# comment\nstatic A \"bad\"\n").unwrap();
    cfg.check_file(&good).unwrap();
    let err = cfg.check_file(&bad).unwrap_err().to_string();
    assert!(err.contains("bad.conf:2:1: A: bad arguments"), "{err}");
    let err = cfg.check_file(dir.join("missing.conf")).unwrap_err();
    assert!(matches!(err, Error::Read { .. }), "{err:?}");
    assert!(log.lock().is_empty());
    assert!(cfg.repository().is_empty());
}

#[test]
fn an_initial_configuration_with_a_bad_argument_starts_nothing() {
    let (mut cfg, log) = logged(&["A", "B"]);
    let err = cfg
        .process_directive("static A \"1\"\nstatic B \"bad\"")
        .unwrap_err();
    assert!(err.to_string().contains("<directive 1>:2:1: B:"), "{err}");
    assert!(log.lock().is_empty());
    assert!(cfg.repository().is_empty());
}

/// A configurator whose static `S` is a [`Stateful`] holding `state` and exporting it (or
/// failing to, with `export`), configured from a file holding `first`; the plugins are on
/// the search path. Returns the configurator, the call log and the file.
fn stateful(
    state: &[u8],
    export: Result<(), String>,
    first: &str,
) -> (
    Configurator,
    Arc<Mutex<Vec<String>>>,
    crate::support::InTempDir,
) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut cfg = Configurator::default();
    cfg.add_search_dir(plugin_dir());
    let state = state.to_vec();
    {
        let log = Arc::clone(&log);
        cfg.register_static("S", move || {
            Box::new(Stateful {
                name: "S".to_owned(),
                log: Arc::clone(&log),
                state: state.clone(),
                export: export.clone(),
            })
        });
    }
    let conf = temp_dir("upgrade-paths").keep("svc.conf");
    std::fs::write(&conf, first).unwrap();
    cfg.process_file(&conf).unwrap();
    log.lock().clear();
    (cfg, log, conf)
}

/// Rewrites `conf` to `text` and reconfigures.
fn rewrite(
    cfg: &mut Configurator,
    conf: &std::path::Path,
    text: &str,
) -> component_configurator::Report {
    std::fs::write(conf, text).unwrap();
    cfg.reconfigure().unwrap()
}

/// Upgrades static `S` to the statistics plugin (which wants exactly 8 bytes of state).
const TO_STATS: &str = "dynamic S Service_Object * cc_stats:_make_stats() \"-p 0\"";

#[test]
fn upgrade_export_fails_on_an_active_component_which_is_resumed() {
    let (mut cfg, log, conf) = stateful(b"abc", Err("no snapshot now".into()), "static S \"1\"");
    let report = rewrite(&mut cfg, &conf, TO_STATS);
    assert!(report.changes.is_empty(), "{:?}", report.changes);
    assert!(
        report.errors[0].to_string().contains("no snapshot now"),
        "{}",
        report.errors[0]
    );
    assert_eq!(*log.lock(), ["suspend S", "export_state S", "resume S"]);
    let s = cfg.repository().get("S").unwrap();
    assert_eq!(s.state(), ComponentState::Active);
    assert_eq!(s.origin(), &component_configurator::Origin::Static);
    assert_eq!(s.component().info(), "stateful S holding [97, 98, 99]");
}

#[test]
fn upgrade_export_fails_on_a_suspended_component_which_stays_suspended() {
    let (mut cfg, log, conf) = stateful(
        b"abc",
        Err("no snapshot now".into()),
        "static S inactive \"1\"",
    );
    let report = rewrite(
        &mut cfg,
        &conf,
        &TO_STATS.replace("\"-p 0\"", "inactive \"-p 0\""),
    );
    assert_eq!(report.errors.len(), 1);
    // Not resumed: the configuration had suspended it, not the upgrade.
    assert_eq!(*log.lock(), ["export_state S"]);
    let s = cfg.repository().get("S").unwrap();
    assert_eq!(s.state(), ComponentState::Suspended);
    assert_eq!(s.origin(), &component_configurator::Origin::Static);
}

#[test]
fn upgrade_import_fails_and_the_old_instance_takes_its_state_back() {
    for (activation, state, tail) in [
        ("", ComponentState::Active, &[][..]),
        ("inactive ", ComponentState::Suspended, &["suspend S"][..]),
    ] {
        let (mut cfg, log, conf) = stateful(b"abc", Ok(()), &format!("static S {activation}\"1\""));
        let report = rewrite(&mut cfg, &conf, TO_STATS);
        assert_eq!(report.errors.len(), 1);
        let err = report.errors[0].to_string();
        assert!(err.contains("expected 8 bytes of state, got 3"), "{err}");
        let mut expected = if state == ComponentState::Active {
            vec!["suspend S"]
        } else {
            vec![]
        };
        expected.extend([
            "export_state S",
            "fini S",
            "import_state[97, 98, 99] S",
            "init[\"1\"] S",
        ]);
        expected.extend(tail);
        assert_eq!(*log.lock(), expected, "{activation}");
        let s = cfg.repository().get("S").unwrap();
        assert_eq!(s.state(), state, "{activation}");
        assert_eq!(s.origin(), &component_configurator::Origin::Static);
        assert_eq!(s.component().info(), "stateful S holding [97, 98, 99]");
    }
}

#[test]
fn upgrade_succeeds_and_the_new_instance_carries_the_old_state() {
    let (mut cfg, log, conf) = stateful(&41u64.to_le_bytes(), Ok(()), "static S \"1\"");
    let report = rewrite(&mut cfg, &conf, TO_STATS);
    assert!(report.is_ok(), "{:?}", report.errors);
    let [Change::Upgraded { state_bytes, .. }] = report.changes.as_slice() else {
        panic!("expected one upgrade, got {:?}", report.changes);
    };
    assert_eq!(*state_bytes, Some(8));
    assert_eq!(*log.lock(), ["suspend S", "export_state S", "fini S"]);
    let s = cfg.repository().get("S").unwrap();
    assert_eq!(s.state(), ComponentState::Active);
    assert!(s.library_path().is_some());
    let addr = addr_of(&s.component().info());
    assert_eq!(request(addr, "hit").unwrap(), "requests 42");
}

/// Course consequence "tuning and optimisation": where a component runs (a plugin or linked
/// into the host) is a configuration choice. Rewriting one directive moves the statistics
/// service from its plugin into a static component, its count carried across.
#[test]
fn tuning_through_reconfiguration_moves_a_plugin_into_the_host_keeping_its_state() {
    let (mut cfg, log, conf) = stateful(b"", Ok(()), TO_STATS);
    let addr = addr_of(&cfg.repository().find("S").unwrap().component().info());
    for n in 1..=3 {
        assert_eq!(request(addr, "hit").unwrap(), format!("requests {n}"));
    }
    let report = rewrite(&mut cfg, &conf, "static S \"1\"");
    assert!(report.is_ok(), "{:?}", report.errors);
    assert!(matches!(
        report.changes.as_slice(),
        [Change::Upgraded {
            state_bytes: Some(8),
            ..
        }]
    ));
    let s = cfg.repository().get("S").unwrap();
    assert_eq!(s.origin(), &component_configurator::Origin::Static);
    assert_eq!(s.library_path(), None);
    assert_eq!(
        s.component().info(),
        format!("stateful S holding {:?}", 3u64.to_le_bytes())
    );
    assert_eq!(
        *log.lock(),
        ["import_state[3, 0, 0, 0, 0, 0, 0, 0] S", "init[\"1\"] S"]
    );
}

/// Course consequence "overly narrow common interfaces": the configurator sees a component
/// only through `Component`, and state only as opaque bytes, so it cannot tell in advance that
/// two implementations disagree on their state. Validation accepts the upgrade; only the new
/// component's `import_state` finds the mismatch, and the rollback keeps the old one.
#[test]
fn overly_narrow_interfaces_let_a_state_mismatch_pass_validation_and_fail_only_at_import() {
    let (mut cfg, _log, conf) = stateful(b"abc", Ok(()), "static S \"1\"");
    let next = conf.with_file_name("next.conf");
    std::fs::write(&next, TO_STATS).unwrap();
    cfg.check_file(&next)
        .expect("the control interface offers nothing to check state with");
    let report = rewrite(&mut cfg, &conf, TO_STATS);
    let [error] = report.errors.as_slice() else {
        panic!("expected one failed directive, got {:?}", report.errors);
    };
    assert!(
        matches!(
            &error.error,
            Error::Component {
                operation: "import_state",
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(
        cfg.repository().get("S").unwrap().origin(),
        &component_configurator::Origin::Static
    );
}
