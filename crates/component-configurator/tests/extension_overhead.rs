//! The Extension Interface's liability "additional indirection and run-time overhead", counted:
//! the allocations the host makes for one call of a plugin's record filter through its
//! extension interface, by a global counting allocator (hence a test binary of its own, with
//! one test: the count is the whole process's).
//!
//! A plugin is a library with its own Rust runtime and allocator, so what the plugin's code
//! allocates (the same code as the gate compiled in here, `plugins/cc-gate/src/gate.rs`) is
//! not counted: the count is what crossing the interface costs the host. The record's strings
//! go across as borrowed slices (the plugin checks they are UTF-8 and copies nothing); a
//! rewritten text comes back through a byte sink into a host buffer and is made a `String`.
//! The time each costs is the benchmark `extension_interface`.

#[allow(dead_code)] // this binary uses part of the shared helpers
#[path = "it/support.rs"]
mod support;

/// The plugin's own code, compiled in here as the direct call.
#[allow(unreachable_pub, dead_code)]
#[path = "../plugins/cc-gate/src/gate.rs"]
mod gate;

use component_configurator::ext::record_filter;
use component_configurator::ext::{Extension, FilterInput, FilterVerdict, RecordFilter};
use component_configurator::{Component, LoadedLibrary};
use wrapper_facade::alloc::CountingAllocator;

#[global_allocator]
static COUNTING: CountingAllocator = CountingAllocator::new();

fn input(message: &str) -> FilterInput<'_> {
    FilterInput {
        host: "pos-7",
        app: "till",
        severity: 4,
        message,
    }
}

/// Allocations per call of `filter` on `record`, over 100 calls after a warm-up.
fn allocations_per_call(filter: &dyn RecordFilter, record: &FilterInput<'_>) -> f64 {
    for _ in 0..10 {
        std::hint::black_box(filter.filter(record));
    }
    let n = COUNTING.during(|| {
        for _ in 0..100 {
            std::hint::black_box(filter.filter(record));
        }
    });
    n as f64 / 100.0
}

#[test]
fn additional_overhead_a_call_through_the_plugins_extension_costs_the_host_only_the_copy_of_a_rewrite()
 {
    let library = LoadedLibrary::open(&support::plugin("cc-gate")).expect("open cc-gate");
    let mut plugin = library.create("_make_gate").expect("create the gate");
    let args = ["-s".to_owned(), "6".to_owned()];
    plugin.init(&args).expect("init");
    let through_plugin = plugin
        .query_interface(record_filter::IID)
        .and_then(Extension::record_filter)
        .expect("the gate exports a record filter");
    let mut direct = gate::Gate::default();
    direct.init(&args).expect("init");

    let passed = input("sale 42 closed, 3 items, total 17.80");
    let rewritten = input("paid with 4111 1111 1111 1234, approved");
    assert_eq!(through_plugin.filter(&passed), FilterVerdict::Pass);
    assert_eq!(
        through_plugin.filter(&rewritten),
        FilterVerdict::Rewrite("paid with **** **** **** 1234, approved".into())
    );
    assert_eq!(direct.filter(&rewritten), through_plugin.filter(&rewritten));

    // Crossing the interface with a record that passes costs the host nothing...
    assert_eq!(allocations_per_call(through_plugin, &passed), 0.0);
    // ...and with one rewritten, the sink's buffer and the `String` made of it.
    assert_eq!(allocations_per_call(through_plugin, &rewritten), 2.0);
    // (What the filter's own code allocates, its scan buffer and output, it allocates in the
    // plugin as in the direct call, from the plugin's own allocator, uncounted here.)
}
