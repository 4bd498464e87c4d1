//! Integration tests of the logging service, one module per topic.

mod ace_interop;
mod forwarding;
mod hostile;
mod limits;
mod listener_hygiene;
mod logc;
mod logd_binary;
mod metrics;
mod operator_cli;
mod proactor;
mod serve;
mod service_unit;
mod services;
mod store_faults;
mod support;
mod syslog_clients;
