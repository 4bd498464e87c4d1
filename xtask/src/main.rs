//! `cargo xtask`: the workspace's automation, written in Rust so that it runs wherever cargo does.
//!
//! The alias in `.cargo/config.toml` turns `cargo xtask <command>` into
//! `cargo run --package xtask -- <command>`.
//!
//! | command | what it does |
//! |---------|--------------|
//! | `demo [crate] [example] [--bless] [--diagrams] [--timeout SECS]` | builds every example once, runs each with a time limit, compares its stdout with `crates/<crate>/examples/expected/<example>.stdout` where that file exists, and the sequence diagram an example draws from its run with `docs/patterns/generated/<example>.md` (`--diagrams` writes it and the pages' blocks) |
//! | `ci` | the steps of `.ci/run` (fmt, clippy, test, fresh, demo), for local use |
//! | `dist [--out DIR]` | man pages and shell completions (bash, zsh, fish) of `logd` and `logc` from their clap definitions, and the systemd units, under `target/dist/` |
//! | `loom` | the loom models of the crates built with `--cfg loom` (concurrency, synchronization) |
//! | `backends` | the dispatchers' test suites (reactor, leader-followers) on mio's epoll and poll(2) backends, the latter built in `target/pollpoll` |
//! | `fresh [cargo test args]` | `cargo test --workspace` with every system peer hidden, as a fresh machine runs it |
//! | `bench [--matrix echo\|lf] [--quick] ...` | builds `benches/` in release, runs an echo-server matrix against `loadgen`, writes `docs/benchmarks.md` and its SVG |
//! | `chaos [--seconds N]` | logd under mixed load and injected faults (upstream flaps, full disk, bad reloads, host floods, `kill -9`): a ledger per source and a table of checks |
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
//! New subcommands (such as `bench`) get a module, a variant of [`cli::Command`] and one arm in
//! [`main`]'s `match`.
// The doc comments of `cli.rs` are clap's `--help` text, where `<crate>` and `<example>` are
// the usage convention for arguments, not HTML.
#![allow(rustdoc::invalid_html_tags)]
#![forbid(unsafe_code)]

mod backends;
mod bench;
mod bench_logging;
mod chaos;
mod ci;
mod cli;
mod demo;
mod diagrams;
mod dist;
mod expected;
mod fresh;
mod loom;
mod metadata;
mod process;
#[cfg(test)]
mod tidy;

use std::process::ExitCode;

use clap::Parser;
use cli::{Cli, Command};

/// Dispatches on the subcommand; clap prints help (stdout, status 0) and usage errors
/// (stderr, status 2) itself.
///
/// Each subcommand returns `Ok(true)` when everything passed, `Ok(false)` when it ran to the
/// end and already reported its failures, and `Err` for a problem that stopped it early.
fn main() -> ExitCode {
    let outcome = match Cli::parse().command {
        Command::Demo(args) => demo::run(&args),
        Command::Ci => ci::run(),
        Command::Fresh { args } => fresh::run(&args),
        Command::Loom => loom::run(),
        Command::Backends => backends::run(),
        Command::Dist(args) => dist::run(&args),
        Command::Bench(args) => bench::run(&args.resolve()),
        Command::BenchLogging(args) => bench_logging::run(&args.resolve()),
        Command::Chaos(args) => chaos::run(&args),
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
