//! Example dynamic component: a line echo service over TCP (`-p PORT`).
//!
//! Each request line is answered with the same line.
//! Build it with `cargo build -p cc-echo`; configure it with
//! `dynamic Echo Service_Object * cc_echo:_make_echo() "-p 9000"`.

use std::sync::Arc;

use component_configurator::service::TcpComponent;
use component_configurator::{Component, ComponentError};

/// The echo service.
#[derive(Debug)]
pub struct EchoService {
    tcp: TcpComponent,
}

impl Default for EchoService {
    fn default() -> Self {
        EchoService {
            tcp: TcpComponent::new("echo", Arc::new(|line: &str| line.to_owned())),
        }
    }
}

impl Component for EchoService {
    fn init(&mut self, args: &[String]) -> Result<(), ComponentError> {
        self.tcp.init(args)
    }
    fn fini(&mut self) -> Result<(), ComponentError> {
        self.tcp.fini()
    }
    fn suspend(&mut self) -> Result<(), ComponentError> {
        self.tcp.suspend()
    }
    fn resume(&mut self) -> Result<(), ComponentError> {
        self.tcp.resume()
    }
    fn info(&self) -> String {
        self.tcp.info()
    }
}

component_configurator::export_components! {
    plugin: "echo",
    _make_echo => EchoService::default,
}
