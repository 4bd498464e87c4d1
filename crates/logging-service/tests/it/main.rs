//! Integration tests of the logging service, one module per topic.

mod ace_interop;
mod hostile;
mod logd_binary;
mod serve;
mod services;
mod store_faults;
mod support;
mod syslog_clients;
