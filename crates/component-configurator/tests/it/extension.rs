//! Extension Interface: one component, several interfaces, queried by identifier; plugins
//! built before the query existed keep working and answer none; a query for an interface a
//! component lacks answers none; a panicking interface costs only the call.

use component_configurator::abi::QUERY_SYMBOL;
use component_configurator::ext::{
    Extension, FilterInput, FilterVerdict, Statistics, record_filter, statistics,
};
use component_configurator::{Component, ComponentError, Configurator, LoadedLibrary, elf};

use crate::support::{plugin, plugin_dir};

fn configured(directive: &str) -> Configurator {
    let mut cfg = Configurator::default();
    cfg.add_search_dir(plugin_dir());
    let report = cfg.process_directive(directive).unwrap();
    assert!(report.is_ok(), "{:?}", report.errors);
    cfg
}

fn input<'a>(severity: u8, message: &'a str) -> FilterInput<'a> {
    FilterInput {
        host: "h",
        app: "a",
        severity,
        message,
    }
}

#[test]
fn one_plugin_component_exports_several_interfaces() {
    let cfg = configured("dynamic Gate Service_Object * cc_gate:_make_gate() \"-s 4\"");
    let gate = cfg.repository().find("Gate").unwrap().component();
    // The control interface, as every component has.
    assert_eq!(gate.info(), "gate keeping severity 0-4");
    // The record filter.
    let filter = gate
        .query_interface(record_filter::IID)
        .and_then(Extension::record_filter)
        .expect("the gate exports a record filter");
    assert_eq!(filter.filter(&input(3, "disk full")), FilterVerdict::Pass);
    assert_eq!(filter.filter(&input(7, "chatter")), FilterVerdict::Drop);
    assert_eq!(
        filter.filter(&input(4, "paid with 4111 1111 1111 1234")),
        FilterVerdict::Rewrite("paid with **** **** **** 1234".into())
    );
    // The statistics, of the same object: they saw the filter's calls.
    let stats = gate
        .query_interface(statistics::IID)
        .and_then(Extension::statistics)
        .expect("the gate exports statistics");
    assert_eq!(
        stats.counters(),
        [
            ("seen".to_owned(), 3),
            ("dropped".to_owned(), 1),
            ("rewritten".to_owned(), 1)
        ]
    );
    // An extension is the interface it was asked for, not another.
    assert!(
        gate.query_interface(statistics::IID)
            .and_then(Extension::record_filter)
            .is_none()
    );
}

#[test]
fn a_plugin_built_without_the_query_keeps_working_and_answers_none() {
    // cc-echo is built as every plugin was before the query: no query symbol in the file.
    let file = std::fs::File::open(plugin("cc-echo")).unwrap();
    assert!(elf::read_symbol(&file, QUERY_SYMBOL, 1).is_err());
    let file = std::fs::File::open(plugin("cc-gate")).unwrap();
    assert!(elf::read_symbol(&file, QUERY_SYMBOL, 1).is_ok());

    let cfg = configured("dynamic Echo Service_Object * cc_echo:_make_echo() \"-p 0\"");
    let echo = cfg.repository().find("Echo").unwrap().component();
    assert!(echo.info().ends_with("(serving)"), "{}", echo.info());
    for iid in [statistics::IID, record_filter::IID] {
        assert!(echo.query_interface(iid).is_none(), "{iid}");
    }
    let lib = LoadedLibrary::open(&plugin("cc-echo")).unwrap();
    assert!(!lib.create("_make_echo").unwrap().exports(statistics::IID));
}

#[test]
fn an_interface_the_component_lacks_answers_none() {
    let lib = LoadedLibrary::open(&plugin("cc-gate")).unwrap();
    let gate = lib.create("_make_gate").unwrap();
    assert!(gate.exports(statistics::IID) && gate.exports(record_filter::IID));
    let long = "x".repeat(100_000);
    for iid in [
        "posa.sink/1",
        "posa.statistics/2",
        "posa.statistics",
        "",
        "\0\u{fffd}",
        long.as_str(),
    ] {
        assert!(!gate.exports(iid), "{iid:?}");
        assert!(gate.query_interface(iid).is_none(), "{iid:?}");
    }
    // Another component of a library with a query: it exports nothing.
    let lib = LoadedLibrary::open(&plugin("cc-panicky")).unwrap();
    let pins = lib.create("_make_pinning").unwrap();
    assert!(!pins.exports(statistics::IID));
}

#[test]
fn a_panicking_interface_costs_only_its_call() {
    let lib = LoadedLibrary::open(&plugin("cc-panicky")).unwrap();
    let c = lib.create("_make_panicky_interfaces").unwrap();
    let filter = c
        .query_interface(record_filter::IID)
        .and_then(Extension::record_filter)
        .unwrap();
    // The record passes (a broken filter must not lose records), and the host goes on.
    assert_eq!(filter.filter(&input(3, "m")), FilterVerdict::Pass);
    assert_eq!(filter.filter(&input(3, "m")), FilterVerdict::Pass);
    let stats = c
        .query_interface(statistics::IID)
        .and_then(Extension::statistics)
        .unwrap();
    assert!(stats.counters().is_empty());
    assert_eq!(c.info(), "panics in its interfaces");
}

/// A static component with an extension interface: clients query it the same way.
#[derive(Debug, Default)]
struct Counter(u64);

impl Component for Counter {
    fn init(&mut self, args: &[String]) -> Result<(), ComponentError> {
        self.0 = args.len() as u64;
        Ok(())
    }
    fn fini(&mut self) -> Result<(), ComponentError> {
        Ok(())
    }
    fn info(&self) -> String {
        "counter".into()
    }
    fn query_interface(&self, iid: &str) -> Option<Extension<'_>> {
        (iid == statistics::IID).then_some(Extension::Statistics(self))
    }
}

impl Statistics for Counter {
    fn counters(&self) -> Vec<(String, u64)> {
        vec![("args".into(), self.0)]
    }
}

#[test]
fn static_and_dynamic_components_are_queried_alike() {
    let mut cfg = Configurator::default();
    cfg.add_search_dir(plugin_dir());
    cfg.register_static("Counter", || Box::new(Counter::default()));
    let report = cfg
        .process_directive(
            "static Counter \"a b c\"\ndynamic Gate Service_Object * cc_gate:_make_gate()",
        )
        .unwrap();
    assert!(report.is_ok(), "{:?}", report.errors);
    let mut totals = Vec::new();
    for listing in cfg.repository().list() {
        let c = cfg.repository().find(&listing.name).unwrap().component();
        if let Some(s) = c
            .query_interface(statistics::IID)
            .and_then(Extension::statistics)
        {
            totals.push((listing.name.clone(), s.counters()[0].clone()));
        }
    }
    totals.sort();
    assert_eq!(
        totals,
        [
            ("Counter".to_owned(), ("args".to_owned(), 3)),
            ("Gate".to_owned(), ("seen".to_owned(), 0))
        ]
    );
}
