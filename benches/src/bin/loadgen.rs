//! `loadgen`: closed-loop echo load over N connections; prints one JSON line (see
//! [`benches::loadgen`]).
#![forbid(unsafe_code)]

use std::process::ExitCode;

use benches::cli::{LOAD_USAGE, LoadArgs, Parsed};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args = match LoadArgs::parse(&args) {
        Ok(Parsed::Run(args)) => args,
        Ok(_) => {
            print!("{LOAD_USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprint!("loadgen: {message}\n\n{LOAD_USAGE}");
            return ExitCode::from(2);
        }
    };
    match benches::loadgen::run(&args) {
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
