//! Integration tests for the component configurator, one module per topic.

mod dynamic;
mod netsvcs;
mod parser;
mod reconfigure;
mod repository;
mod sighup;
mod support;
mod trust;
