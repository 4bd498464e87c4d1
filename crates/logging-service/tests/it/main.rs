//! Integration tests of the logging service, one module per topic.

mod ace_interop;
mod forwarding;
mod hostile;
mod logd_binary;
mod serve;
mod services;
mod support;
mod syslog_clients;
