//! Test plugin: a component whose `init` panics (and one whose factory panics), to show that
//! a plugin's panic reaches the host as an error value and the host goes on.

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

fn panic_in_factory() -> PanicInInit {
    panic!("the factory gave up")
}

component_configurator::export_components! {
    plugin: "panicky",
    _make_panicky => PanicInInit::default,
    _make_panicky_factory => panic_in_factory,
}
