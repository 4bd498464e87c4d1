//! Example dynamic component with three interfaces (Extension Interface): the control
//! interface every component has, a record filter (`ext::RecordFilter`) and statistics
//! (`ext::Statistics`).
//!
//! The filter drops records less severe than its threshold (`-s SEVERITY`, 0-7, default 6,
//! info) and masks the digits of anything that looks like a card number; the statistics
//! count what it saw, passed, dropped and rewrote.

mod gate;

pub use gate::Gate;

component_configurator::export_components! {
    plugin: "gate",
    _make_gate => Gate::default;
    interfaces: { _make_gate: Gate => [statistics, record_filter] },
}
