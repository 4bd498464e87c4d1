//! The interceptor crate's integration tests: one module per topic.

mod chain;
