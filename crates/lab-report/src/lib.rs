//! The benchmark lab's report types and formatting, shared by the lab (`benches`) and the
//! automation that runs it and writes the reports (`xtask`).
//!
//! Nothing depends on `benches` or `xtask`, so what both need lives here:
//!
//! | module     | what it holds |
//! |------------|---------------|
//! | [`json`]   | [`LoadReport`] (`loadgen`'s JSON line) and [`IngestReport`] (`ingest`'s), one serde struct each for writer and reader |
//! | [`format`](mod@format) | text for the reports: [`escape`] for SVG, [`colour`], [`thousands`], [`civil_date`] |
//! | [`stats`]  | [`median`] over rounds and the round-robin [`rotation`] of servers |
//! | [`args`]   | value parsers of the lab's command lines: [`seconds`], [`positive_seconds`], [`at_least_one`], [`list`] |
//!
//! # Example
//!
//! ```
//! use lab_report::{LoadReport, median, thousands};
//!
//! let line = r#"{"connections":64,"message_bytes":64,"seconds":1.0,"requests":1200,
//!     "total_requests":1500,"requests_per_sec":1200.0,"p50_us":40.0,"p99_us":90.0,
//!     "max_us":300.0,"mismatches":0}"#.replace('\n', "");
//! let report = LoadReport::from_stdout(&format!("warming up\n{line}\n"))?;
//! assert_eq!(report.total_requests, 1500);
//! assert_eq!(thousands(report.requests_per_sec), "1,200");
//! assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
//! # Ok::<(), String>(())
//! ```
#![forbid(unsafe_code)]

pub mod args;
pub mod format;
pub mod json;
pub mod stats;

pub use args::{at_least_one, list, positive_seconds, seconds};
pub use format::{civil_date, colour, escape, thousands, today};
pub use json::{IngestReport, LoadReport};
pub use stats::{median, rotation};
