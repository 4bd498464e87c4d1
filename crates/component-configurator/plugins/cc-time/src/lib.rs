//! Example dynamic component: a time service over TCP (`-p PORT`).
//!
//! Each request line is answered with `time <seconds since the Unix epoch>`.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use component_configurator::service::TcpComponent;
use component_configurator::{Component, ComponentError};

/// The time service.
#[derive(Debug)]
pub struct TimeService {
    tcp: TcpComponent,
}

impl Default for TimeService {
    fn default() -> Self {
        let answer = |_: &str| {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            format!("time {now}")
        };
        TimeService {
            tcp: TcpComponent::new("time", Arc::new(answer)),
        }
    }
}

impl Component for TimeService {
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
    plugin: "time",
    _make_time => TimeService::default,
}
