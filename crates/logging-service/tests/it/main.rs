//! Integration tests of the logging service, one module per topic.

mod ace_interop;
mod clickhouse;
mod forwarding;
mod host_flood;
mod hostile;
mod intercept;
mod limits;
mod listener_hygiene;
mod logc;
mod logd_binary;
mod metrics;
mod operator_cli;
mod proactor;
mod relp;
mod relp_crash;
mod serve;
mod service_unit;
mod services;
mod store_faults;
mod store_format;
mod support;
mod syslog_clients;
mod tls_listen;
mod tls_policy;
mod walkthrough;
