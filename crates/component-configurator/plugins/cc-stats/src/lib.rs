//! Example dynamic component: a statistics service over TCP (`-p PORT`).
//!
//! It counts the requests it has served and answers each with `requests <count>`.
//! The count is its state: `export_state` hands it over as 8 little-endian bytes, so it
//! survives a hot upgrade to a new build of the library.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use component_configurator::service::TcpComponent;
use component_configurator::{Component, ComponentError};

/// The statistics service.
#[derive(Debug)]
pub struct StatsService {
    tcp: TcpComponent,
    requests: Arc<AtomicU64>,
}

impl Default for StatsService {
    fn default() -> Self {
        let requests = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&requests);
        let answer = move |_: &str| {
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            format!("requests {n}")
        };
        StatsService {
            tcp: TcpComponent::new("statistics", Arc::new(answer)),
            requests,
        }
    }
}

impl Component for StatsService {
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
        format!(
            "{}, {} requests counted",
            self.tcp.info(),
            self.requests.load(Ordering::SeqCst)
        )
    }
    fn export_state(&self) -> Result<Option<Vec<u8>>, ComponentError> {
        Ok(Some(
            self.requests.load(Ordering::SeqCst).to_le_bytes().to_vec(),
        ))
    }
    fn import_state(&mut self, state: &[u8]) -> Result<(), ComponentError> {
        let bytes: [u8; 8] = state.try_into().map_err(|_| {
            ComponentError::new(format!("expected 8 bytes of state, got {}", state.len()))
        })?;
        self.requests
            .store(u64::from_le_bytes(bytes), Ordering::SeqCst);
        tracing::info!("statistics state imported");
        Ok(())
    }
}

component_configurator::export_components! {
    plugin: "statistics",
    _make_stats => StatsService::default,
}
