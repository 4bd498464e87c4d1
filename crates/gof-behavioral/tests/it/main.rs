//! Integration tests for gof-behavioral, one module per topic.

mod compression;
mod memento;
mod memento_codec;
mod memento_laws;
mod observer_local;
mod observer_state;
mod observer_sync;
mod strategy;
mod topic;
