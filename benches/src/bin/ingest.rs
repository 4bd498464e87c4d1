//! `ingest`: the log-record load generator of the lab; see [`benches::ingest`].
#![forbid(unsafe_code)]

use std::process::ExitCode;

use benches::ingest::{self, IngestArgs};
use clap::Parser;

fn main() -> ExitCode {
    match ingest::run(&IngestArgs::parse()) {
        Ok(report) => {
            println!("{}", report.to_json());
            if report.stored >= report.sent {
                ExitCode::SUCCESS
            } else {
                eprintln!(
                    "ingest: only {} of {} records reached the files",
                    report.stored, report.sent
                );
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("ingest: {e}");
            ExitCode::FAILURE
        }
    }
}
