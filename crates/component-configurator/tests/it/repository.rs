//! The repository and static components: lookup, state, listing, finalisation order.

use std::sync::Arc;

use component_configurator::{
    Change, ComponentState, Configurator, Error, Origin, Record, ServiceRepository,
};
use parking_lot::Mutex;

use crate::support::Logged;

fn logged(name: &str, log: &Arc<Mutex<Vec<String>>>) -> Box<Logged> {
    Box::new(Logged {
        name: name.to_owned(),
        log: Arc::clone(log),
    })
}

#[test]
fn find_tells_missing_from_suspended() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut repo = ServiceRepository::default();
    repo.insert(Record::new("a", logged("a", &log), Origin::Static, vec![]))
        .unwrap();
    assert!(repo.find("a").is_ok());
    repo.suspend("a").unwrap();
    assert!(matches!(repo.find("a"), Err(Error::Suspended(n)) if n == "a"));
    assert!(matches!(repo.find("zz"), Err(Error::NotFound(n)) if n == "zz"));
    assert_eq!(repo.get("a").unwrap().state(), ComponentState::Suspended);
    // Suspending twice does not call the component twice.
    repo.suspend("a").unwrap();
    repo.resume("a").unwrap();
    repo.resume("a").unwrap();
    assert_eq!(*log.lock(), vec!["suspend a", "resume a"]);
    assert!(matches!(
        repo.insert(Record::new("a", logged("a2", &log), Origin::Static, vec![])),
        Err(Error::Duplicate(_))
    ));
}

#[test]
fn list_reports_state_and_info_in_insertion_order() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut repo = ServiceRepository::default();
    for n in ["x", "y", "z"] {
        repo.insert(Record::new(n, logged(n, &log), Origin::Static, vec![]))
            .unwrap();
    }
    repo.suspend("y").unwrap();
    let listing: Vec<(String, ComponentState, String)> = repo
        .list()
        .into_iter()
        .map(|l| (l.name, l.state, l.info))
        .collect();
    assert_eq!(
        listing,
        vec![
            ("x".into(), ComponentState::Active, "logged x".into()),
            ("y".into(), ComponentState::Suspended, "logged y".into()),
            ("z".into(), ComponentState::Active, "logged z".into()),
        ]
    );
}

#[test]
fn fini_runs_in_reverse_insertion_order_after_removal_from_the_middle() {
    let log = Arc::new(Mutex::new(Vec::new()));
    {
        let mut repo = ServiceRepository::default();
        for n in ["a", "b", "c", "d"] {
            repo.insert(Record::new(n, logged(n, &log), Origin::Static, vec![]))
                .unwrap();
        }
        repo.suspend("c").unwrap();
        let removed = repo.remove("b").unwrap();
        assert_eq!(removed.name, "b");
        repo.insert(Record::new("e", logged("e", &log), Origin::Static, vec![]))
            .unwrap();
        log.lock().clear();
        // Dropping the repository finalises what is left, newest first.
    }
    let finis: Vec<String> = log
        .lock()
        .iter()
        .filter(|l| l.starts_with("fini"))
        .cloned()
        .collect();
    assert_eq!(finis, vec!["fini e", "fini d", "fini c", "fini a"]);
    // Active components are quiesced before fini; the suspended one is not suspended again.
    assert_eq!(
        *log.lock(),
        vec![
            "suspend e",
            "fini e",
            "suspend d",
            "fini d",
            "fini c",
            "suspend a",
            "fini a"
        ]
    );
}

#[test]
fn static_components_are_configured_by_name_with_the_same_directives() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut cfg = Configurator::default();
    for n in ["Alpha", "Beta"] {
        let log = Arc::clone(&log);
        cfg.register_static(n, move || logged(n, &log));
    }
    let report = cfg
        .process_directive(
            "static Alpha \"-v 1\"\nstatic Beta inactive\nsuspend Alpha\nresume Alpha",
        )
        .unwrap();
    assert!(report.is_ok());
    assert_eq!(
        report.changes,
        vec![
            Change::Added {
                name: "Alpha".into()
            },
            Change::Added {
                name: "Beta".into()
            },
            Change::Suspended {
                name: "Beta".into()
            },
        ]
    );
    assert_eq!(
        *log.lock(),
        vec!["init[\"-v\", \"1\"] Alpha", "init[] Beta", "suspend Beta"]
    );
    let err = cfg.process_directive("static Gamma").unwrap_err();
    assert_eq!(
        err.to_string(),
        "<directive 2>:1:1: no static component is registered as \"Gamma\""
    );
    cfg.process_directive("remove Alpha").unwrap();
    assert_eq!(cfg.repository().names(), ["Beta"]);
    let closed = cfg.close();
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].name, "Beta");
}
