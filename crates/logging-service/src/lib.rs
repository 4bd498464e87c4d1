//! POSA2's networked logging service, built from the workspace's pattern crates.
//!
//! `logd` accepts log records from many clients at once, in ACE's logging wire format, as
//! syslog (RFC 5424 and RFC 3164, over TCP with RFC 6587 framing and over UDP) and over RELP,
//! and appends them to one file per client host, optionally forwarding them upstream (plain
//! TCP or RELP).
//! It is the running example of the POSA2 chapters, made real:
//!
//! | Pattern            | Where                                                              |
//! |--------------------|--------------------------------------------------------------------|
//! | Wrapper Facade     | `wrapper_facade::file::AppendFile` for storage, signal fds          |
//! | Reactor            | `reactor::Reactor` (or another dispatcher) demultiplexes every socket |
//! | Acceptor-Connector | `reactor::Acceptor` with a [`server::ConnectionFactory`] per format |
//! | Leader/Followers, Half-Sync/Half-Async | chosen with `--concurrency`, same handlers |
//! | Proactor           | `--concurrency proactor`: [`proactive`] feeds the same framers and store from io_uring completions |
//! | Strategy           | [`server::Framing`] (ACE, syslog) and [`store::RecordSink`] (files, [`forward::Forwarder`], [`clickhouse::ClickHouseSink`]) |
//! | Component Configurator | [`services`]: the listeners, statistics and the ClickHouse sink as components of a svc.conf, reconfigured on SIGHUP |
//! | (the server)     | [`logd::Logd`] runs the dispatcher and configures the [`services`] on it; they make the [`server`] handlers |
//! | Interceptor        | [`intercept`]: filter, redact, route and rate-limit records at "record decoded", "before store", "before forward", "connection opened/closed" |
//! | Asynchronous Completion Token | [`forward`] over RELP ([`relp`]): each record's transaction number leads to an `act` token whose context is its spool position |
//!
//! # Example
//!
//! ```
//! use logging_service::ace::{AceRecord, ByteOrder, SecondsLayout, encode};
//! use logging_service::logd::{Logd, LogdConfig};
//! use logging_service::store::{StoreConfig, read_all};
//! use std::io::Write;
//!
//! let dir = std::env::temp_dir().join(format!("logd-doc-{}", std::process::id()));
//! let cfg = LogdConfig { ace_port: Some(0), syslog_port: None, store: StoreConfig::new(&dir), ..Default::default() };
//! let logd = Logd::start(cfg)?; // the dispatcher now runs on a thread of its own
//! let addr = logd.listening().ace.unwrap();
//!
//! let rec = AceRecord { priority: 8, pid: 7, seconds: 1_700_000_000, micros: 0, message: "hello".into() };
//! let mut client = std::net::TcpStream::connect(addr)?;
//! client.write_all(&encode(&rec, ByteOrder::Little, SecondsLayout::Wide))?;
//! drop(client);
//! # // Wait until the record is stored, then stop.
//! # while read_all(&dir)?.iter().map(|(_, l)| l.len()).sum::<usize>() < 1 { std::thread::yield_now(); }
//! let stats = logd.stop()?; // graceful: everything read is written

//! assert_eq!(stats.ace, 1);
//! let stored = read_all(&dir)?;
//! assert!(stored[0].1[0].ends_with("ace[7] user.info - - - hello"));
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

pub mod ace;
pub mod cli;
pub mod clickhouse;
pub mod client;
mod error;
pub mod forward;
pub mod intercept;
pub mod limits;
pub mod line;
pub mod logd;
pub mod metrics;
pub mod notify;
pub mod proactive;
pub mod record;
pub mod relp;
pub mod relp_listener;
pub mod server;
pub mod services;
pub mod spool;
pub mod store;
pub mod syslog;
pub mod tls;
pub mod tls_conn;

pub use error::{Error, FrameError};
