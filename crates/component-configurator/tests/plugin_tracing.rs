//! A plugin's `tracing` events reach the host's subscriber.
//!
//! This test has a binary of its own. `tracing` caches each callsite's interest for the whole
//! process, and tracing-core computes a new callsite's interest and publishes it in two steps:
//! a subscriber installed with `with_default` while other tests' threads first hit the same
//! callsite (the host's log callback, which every plugin's log line goes through) can find its
//! interest overwritten with "never". Here the subscriber is the global default, installed
//! before any plugin is loaded, as in a real host.

#[allow(dead_code)] // this binary uses part of the shared helpers
#[path = "it/support.rs"]
mod support;

use std::io::Write;
use std::sync::Arc;

use component_configurator::Configurator;
use parking_lot::Mutex;

#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn plugin_tracing_reaches_the_host_subscriber() {
    let sink = Sink::default();
    let writer = sink.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let mut cfg = Configurator::default();
    cfg.add_search_dir(support::plugin_dir());
    let report = cfg
        .process_directive("dynamic Stats Service_Object * cc_stats:_make_stats() \"-p 0\"")
        .unwrap();
    assert!(report.is_ok(), "{:?}", report.errors);

    let logged = String::from_utf8(sink.0.lock().clone()).unwrap();
    assert!(
        logged.contains("statistics service listening on 127.0.0.1:"),
        "{logged}"
    );
    assert!(
        logged.contains("plugin_target=component_configurator::service"),
        "{logged}"
    );
}
