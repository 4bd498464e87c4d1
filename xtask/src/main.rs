//! `cargo xtask`: the workspace's automation, written in Rust so that it runs wherever cargo does.
//!
//! The alias in `.cargo/config.toml` turns `cargo xtask <command>` into
//! `cargo run --package xtask -- <command>`.
//!
//! | command | what it does |
//! |---------|--------------|
//! | `demo [crate] [example] [--bless] [--timeout SECS]` | builds every example once, runs each with a time limit, compares its stdout with `crates/<crate>/examples/expected/<example>.stdout` where that file exists |
//! | `ci` | the steps of `.ci/run` (fmt, clippy, test, fresh, demo), for local use |
//! | `fresh [cargo test args]` | `cargo test --workspace` with every system peer hidden, as a fresh machine runs it |
//! | `bench [--matrix echo\|lf] [--quick] ...` | builds `benches/` in release, runs an echo-server matrix against `loadgen`, writes `docs/benchmarks.md` and its SVG |
//! | `bench-logging ...` | end-to-end ingest of `logd` against `ace_netsvcs`, rsyslog and syslog-ng, and memory with 10,000 idle clients; writes `docs/benchmarks-logging.md` |
//!
//! Example conventions that `demo` relies on:
//!
//! - an example takes no arguments, reads nothing from stdin (it gets `/dev/null`)
//!   and runs with the workspace root as its working directory;
//! - it exits with status 0 on success and finishes well within the time limit;
//! - if it is deterministic, its exact stdout is checked in next to it as
//!   `examples/expected/<example-name>.stdout`; stderr is never compared.
//!
//! New subcommands (such as `bench`) get a module and one arm in [`main`]'s `match`.
#![forbid(unsafe_code)]

mod bench;
mod bench_logging;
mod ci;
mod cli;
mod demo;
mod expected;
mod fresh;
mod metadata;
mod process;

use std::process::ExitCode;

/// The top-level help text.
const USAGE: &str = "\
usage: cargo xtask <command> [args]

commands:
  demo [crate] [example] [--bless] [--timeout SECS]
        build every example of the workspace (or of one crate, or one example),
        run each with a time limit (default 120 s) and compare its stdout with
        crates/<crate>/examples/expected/<example>.stdout where that file exists;
        --bless writes those files from the actual output instead
  ci    run the CI steps of .ci/run locally: fmt, clippy, test, fresh, demo
  fresh [cargo test args]
        run cargo test --workspace as a fresh machine does: every system peer
        hidden from PATH and from the tests (POSA_HIDE_PEERS=1)
  bench [--matrix echo|lf] [--quick] [--duration SECS] [--rounds N] ...
        build benches/ in release, load each echo server with loadgen
        (1, 64, 512 connections) and write docs/benchmarks.md and .svg
  bench-logging [--records N] ...
        ingest records into logd (three concurrency models), ace_netsvcs,
        rsyslog and syslog-ng; write docs/benchmarks-logging.md and .svg
  help  print this message
";

/// Exit status for a command line that could not be understood.
const EXIT_USAGE: u8 = 2;

/// Dispatches on the first argument.
///
/// Each subcommand returns `Ok(true)` when everything passed, `Ok(false)` when it ran to the
/// end and already reported its failures, and `Err` for a problem that stopped it early.
fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        eprint!("{USAGE}");
        return ExitCode::from(EXIT_USAGE);
    };

    let outcome = match command.as_str() {
        "demo" => match cli::DemoArgs::parse(rest) {
            Ok(cli::Parsed::Help) => {
                print!("{}", cli::DEMO_USAGE);
                Ok(true)
            }
            Ok(cli::Parsed::Run(demo_args)) => demo::run(&demo_args),
            Err(message) => return usage_error(&message, cli::DEMO_USAGE),
        },
        "ci" => match rest {
            [] => ci::run(),
            [flag] if flag == "-h" || flag == "--help" => {
                print!("{}", ci::USAGE);
                Ok(true)
            }
            _ => return usage_error("`ci` takes no arguments", ci::USAGE),
        },
        "fresh" => fresh::run(rest),
        "bench" => match bench::BenchArgs::parse(rest) {
            Ok(bench::Parsed::Help) => {
                print!("{}", bench::USAGE);
                Ok(true)
            }
            Ok(bench::Parsed::Run(bench_args)) => bench::run(&bench_args),
            Err(message) => return usage_error(&message, bench::USAGE),
        },
        "bench-logging" => match bench_logging::BenchLoggingArgs::parse(rest) {
            Ok(bench_logging::Parsed::Help) => {
                print!("{}", bench_logging::USAGE);
                Ok(true)
            }
            Ok(bench_logging::Parsed::Run(a)) => bench_logging::run(&a),
            Err(message) => return usage_error(&message, bench_logging::USAGE),
        },
        "help" | "-h" | "--help" => {
            print!("{USAGE}");
            Ok(true)
        }
        other => return usage_error(&format!("unknown command `{other}`"), USAGE),
    };

    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root: the xtask lives one level below it.
fn workspace_root() -> Result<std::path::PathBuf, String> {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(std::path::Path::to_path_buf)
        .ok_or_else(|| "the xtask manifest directory has no parent".to_owned())
}

/// Reports a command line that could not be understood, with the relevant usage text.
fn usage_error(message: &str, usage: &str) -> ExitCode {
    eprintln!("error: {message}\n");
    eprint!("{usage}");
    ExitCode::from(EXIT_USAGE)
}
