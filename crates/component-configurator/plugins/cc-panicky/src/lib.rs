//! Test plugin with misbehaving components: one whose `init` panics and one whose factory
//! panics (a plugin's panic reaches the host as an error value and the host goes on), and
//! one that pins its own library in memory by spawning a thread with `std::thread::spawn`
//! from the host's thread (see the docs on what unloading can promise); and one whose
//! extension interfaces (statistics, record filter) panic on every call.

use component_configurator::ext::{FilterInput, FilterVerdict, RecordFilter, Statistics};
use component_configurator::{Component, ComponentError};

/// Panics in `init`.
#[derive(Debug, Default)]
pub struct PanicInInit;

impl Component for PanicInInit {
    fn init(&mut self, _args: &[String]) -> Result<(), ComponentError> {
        panic!("init refused to start");
    }
    fn fini(&mut self) -> Result<(), ComponentError> {
        Ok(())
    }
    fn info(&self) -> String {
        "panics in init".to_owned()
    }
}

/// Spawns (and joins) a thread with std in `init`, which registers a thread-local destructor
/// of this library on the caller's thread: the library then stays mapped after `dlclose`.
#[derive(Debug, Default)]
pub struct PinsItself;

impl Component for PinsItself {
    fn init(&mut self, _args: &[String]) -> Result<(), ComponentError> {
        std::thread::spawn(|| ())
            .join()
            .map_err(|_| ComponentError::new("the helper thread panicked"))
    }
    fn fini(&mut self) -> Result<(), ComponentError> {
        Ok(())
    }
    fn info(&self) -> String {
        "pins its library".to_owned()
    }
}

/// Exports the statistics and record filter interfaces, and panics in both.
#[derive(Debug, Default)]
pub struct PanicsInInterfaces;

impl Component for PanicsInInterfaces {
    fn init(&mut self, _args: &[String]) -> Result<(), ComponentError> {
        Ok(())
    }
    fn fini(&mut self) -> Result<(), ComponentError> {
        Ok(())
    }
    fn info(&self) -> String {
        "panics in its interfaces".to_owned()
    }
}

impl Statistics for PanicsInInterfaces {
    fn counters(&self) -> Vec<(String, u64)> {
        panic!("statistics gave up")
    }
}

impl RecordFilter for PanicsInInterfaces {
    fn filter(&self, _r: &FilterInput<'_>) -> FilterVerdict {
        panic!("the filter gave up")
    }
}

fn panic_in_factory() -> PanicInInit {
    panic!("the factory gave up")
}

component_configurator::export_components! {
    plugin: "panicky",
    _make_panicky => PanicInInit::default,
    _make_panicky_factory => panic_in_factory,
    _make_pinning => PinsItself::default,
    _make_panicky_interfaces => PanicsInInterfaces::default;
    interfaces: { _make_panicky_interfaces: PanicsInInterfaces => [statistics, record_filter] },
}
