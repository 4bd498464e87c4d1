//! `loadgen`: closed-loop echo load over N connections; prints one JSON line (see
//! [`benches::loadgen`]).
#![forbid(unsafe_code)]

use std::process::ExitCode;

use benches::cli::LoadArgs;
use clap::Parser;

fn main() -> ExitCode {
    match benches::loadgen::run(&LoadArgs::parse()) {
        Ok(report) => {
            println!("{}", report.to_json());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}
