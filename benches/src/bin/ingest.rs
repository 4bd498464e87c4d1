//! `ingest`: the log-record load generator of the lab; see [`benches::ingest`].
#![forbid(unsafe_code)]

use std::process::ExitCode;

use benches::ingest::{self, IngestArgs, Parsed};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args = match IngestArgs::parse(&args) {
        Ok(Parsed::Run(args)) => args,
        Ok(Parsed::Help) => {
            print!("{}", ingest::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprint!("ingest: {message}\n\n{}", ingest::USAGE);
            return ExitCode::from(2);
        }
    };
    match ingest::run(&args) {
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
