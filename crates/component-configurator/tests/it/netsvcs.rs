//! ACE's own netsvcs configuration (Debian's `ace-netsvcs`): it parses, and its C++
//! libraries are refused per directive without being loaded.

use component_configurator::svc_conf::{Activation, Directive, parse};
use component_configurator::{Configurator, Error, is_mapped};

const ACE_NETSVCS: &str = include_str!("../fixtures/ace-netsvcs-svc.conf");

#[test]
fn aces_netsvcs_file_parses() {
    let parsed = parse("svc.conf", ACE_NETSVCS, &|_| None).unwrap();
    let names: Vec<&str> = parsed.iter().map(|l| l.directive.name()).collect();
    assert_eq!(
        names,
        [
            "Logger",
            "Time_Service",
            "Name_Server",
            "Server_Logging_Service",
            "Thr_Server_Logging_Service",
            "Client_Logging_Service"
        ]
    );
    assert_eq!(
        parsed[0].directive,
        Directive::Dynamic {
            name: "Logger".into(),
            library: "ACE".into(),
            factory: "_make_ACE_Logging_Strategy".into(),
            activation: Activation::Active,
            args: vec![
                "-w".into(),
                "-s".into(),
                "foobar".into(),
                "-f".into(),
                "STDERR|OSTREAM|VERBOSE".into()
            ],
        }
    );
    assert_eq!(
        parsed[3].directive,
        Directive::Dynamic {
            name: "Server_Logging_Service".into(),
            library: "netsvcs".into(),
            factory: "_make_ACE_Server_Logging_Acceptor".into(),
            activation: Activation::Active,
            args: vec!["-p".into(), "20009".into()],
        }
    );
    assert_eq!(parsed[1].position.line, 13);
}

#[test]
fn aces_libraries_are_refused_per_directive_before_any_code_runs() {
    let dir = crate::support::temp_dir("netsvcs");
    let conf = dir.join("svc.conf");
    std::fs::write(&conf, ACE_NETSVCS).unwrap();
    let mut cfg = Configurator::default();
    for d in [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib",
    ] {
        cfg.add_search_dir(d);
    }
    let report = cfg.process_file(&conf).unwrap();
    assert!(report.changes.is_empty());
    assert_eq!(report.errors.len(), 6);
    for e in &report.errors {
        match &e.error {
            // Installed (Debian's libace-dev / ace-netsvcs): read, found not ours, not mapped.
            Error::NotAComponentLibrary { path, reason } => {
                assert_eq!(reason, "no exported descriptor symbol", "{e}");
                assert!(!is_mapped(path), "{} was mapped", path.display());
            }
            // Not installed on this machine.
            Error::LibraryNotFound { .. } => {}
            other => panic!("unexpected error {other}"),
        }
    }
    assert_eq!(report.errors[1].position.line, 13);
    assert!(cfg.repository().is_empty());
}
