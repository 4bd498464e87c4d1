//! The command line of `cargo xtask` (clap derive): one subcommand per module.

use std::time::Duration;

use clap::{Parser, Subcommand};
use lab_report::args::positive_seconds;

use crate::bench::BenchCli;
use crate::bench_logging::BenchLoggingCli;
use crate::chaos::ChaosArgs;
use crate::dist::DistArgs;

/// The workspace's automation: run and check the examples, the CI steps, the benchmark lab.
#[derive(Debug, Parser)]
#[command(
    name = "xtask",
    bin_name = "cargo xtask",
    arg_required_else_help = true
)]
pub(crate) struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Build every example of the workspace (or of one crate, or one example), run each with a
    /// time limit and compare its stdout with crates/<crate>/examples/expected/<example>.stdout
    /// where that file exists.
    Demo(DemoArgs),
    /// Run the CI steps of .ci/run locally: fmt, clippy, test, fresh, loom, backends, demo, chaos.
    #[command(long_about = crate::ci::USAGE)]
    Ci,
    /// Run `cargo test --workspace` as a fresh machine does: every system peer hidden from PATH
    /// and from the tests (POSA_HIDE_PEERS=1, POSA_REQUIRE_PEERS unset).
    Fresh {
        /// More arguments for `cargo test` (`-p <crate>` replaces `--workspace`).
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "CARGO TEST ARGS"
        )]
        args: Vec<String>,
    },
    /// Run the loom models of the crates whose code switches to loom under `--cfg loom`
    /// (concurrency, synchronization), built in target/loom.
    Loom,
    /// Run the dispatchers' test suites (reactor, leader-followers) on mio's epoll backend and
    /// on its poll(2) backend (`--cfg mio_unsupported_force_poll_poll`, built in target/pollpoll).
    Backends,
    /// Write the man pages and shell completions (bash, zsh, fish) of logd and logc, made from
    /// their clap definitions, and the systemd units, under target/dist (or --out).
    Dist(DistArgs),
    /// Build benches/ in release, load each echo server with loadgen (1, 64, 512 connections),
    /// servers interleaved round-robin, and write docs/benchmarks.md and its SVG.
    Bench(BenchCli),
    /// Ingest records into logd (three concurrency models), ace_netsvcs, rsyslog and syslog-ng,
    /// then measure logd's memory with idle connections; write docs/benchmarks-logging.md and
    /// its SVG.
    BenchLogging(BenchLoggingCli),
    /// Run logd under mixed load (ACE and syslog over TCP, UDP) while an injector flaps its
    /// upstream, fills its disk, reloads it with good and bad configs, floods host names and
    /// kills it; print a ledger per source and a table of checks, fail on any violation.
    Chaos(ChaosArgs),
}

/// What `cargo xtask demo` was asked to do.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub(crate) struct DemoArgs {
    /// Run only the examples of this package.
    #[arg(value_name = "CRATE")]
    pub(crate) krate: Option<String>,
    /// Run only this example of that package.
    pub(crate) example: Option<String>,
    /// Write crates/<crate>/examples/expected/<example>.stdout from the actual stdout (each
    /// example is run twice to check it is deterministic).
    #[arg(long)]
    pub(crate) bless: bool,
    /// Write the sequence diagrams the examples draw from their runs to
    /// docs/patterns/generated/<example>.md and into the pages that include them (without it,
    /// a diagram that differs from the checked-in one fails the demo).
    #[arg(long)]
    pub(crate) diagrams: bool,
    /// Kill an example that runs longer than this many seconds.
    #[arg(long, value_name = "SECS", default_value = "120", value_parser = positive_seconds)]
    pub(crate) timeout: Duration,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use clap::error::ErrorKind;

    /// Parses `cargo xtask <args>`, clap's error as text.
    pub(crate) fn parse(args: &[&str]) -> Result<Command, String> {
        Cli::try_parse_from(std::iter::once("xtask").chain(args.iter().copied()))
            .map(|cli| cli.command)
            .map_err(|e| e.to_string())
    }

    fn demo(args: &[&str]) -> DemoArgs {
        let mut all = vec!["demo"];
        all.extend(args);
        match parse(&all) {
            Ok(Command::Demo(demo)) => demo,
            other => panic!("expected demo for {args:?}, got {other:?}"),
        }
    }

    #[test]
    fn the_cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn no_arguments_select_everything_with_the_default_timeout() {
        assert_eq!(
            demo(&[]),
            DemoArgs {
                krate: None,
                example: None,
                bless: false,
                diagrams: false,
                timeout: Duration::from_secs(120),
            }
        );
    }

    #[test]
    fn positionals_are_crate_then_example_and_flags_go_anywhere() {
        let demo = demo(&["--bless", "wrapper-facade", "--timeout", "7", "facade_echo"]);
        assert_eq!(demo.krate.as_deref(), Some("wrapper-facade"));
        assert_eq!(demo.example.as_deref(), Some("facade_echo"));
        assert!(demo.bless);
        assert_eq!(demo.timeout, Duration::from_secs(7));
        assert_eq!(demo_timeout("--timeout=0.5"), Duration::from_millis(500));
    }

    fn demo_timeout(arg: &str) -> Duration {
        demo(&[arg]).timeout
    }

    #[test]
    fn help_goes_to_stdout_with_status_0_and_errors_to_stderr_with_2() {
        for args in [
            &["--help"][..],
            &["help"],
            &["demo", "x", "--help"],
            &["ci", "-h"],
        ] {
            let err = Cli::try_parse_from(std::iter::once("xtask").chain(args.iter().copied()))
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::DisplayHelp, "{args:?}");
            assert!(!err.use_stderr() && err.exit_code() == 0, "{args:?}");
        }
        let none = Cli::try_parse_from(["xtask"]).unwrap_err();
        assert!(none.use_stderr() && none.exit_code() == 2);
        let help = parse(&["--help"]).unwrap_err();
        for command in ["demo", "ci", "fresh", "bench", "bench-logging", "chaos"] {
            assert!(help.contains(command), "top-level help lacks {command}");
        }
    }

    #[test]
    fn fresh_passes_its_arguments_through_to_cargo_test() {
        let Ok(Command::Fresh { args }) = parse(&["fresh", "-p", "reactor", "--", "--nocapture"])
        else {
            panic!("expected fresh");
        };
        assert_eq!(args, ["-p", "reactor", "--", "--nocapture"]);
        assert!(matches!(parse(&["fresh"]), Ok(Command::Fresh { args }) if args.is_empty()));
    }

    #[test]
    fn chaos_runs_60_seconds_by_default_and_takes_a_duration() {
        let Ok(Command::Chaos(args)) = parse(&["chaos"]) else {
            panic!("expected chaos");
        };
        assert_eq!(args.seconds, Duration::from_secs(60));
        assert!(!args.debug);
        let Ok(Command::Chaos(args)) = parse(&["chaos", "--seconds", "20", "--debug"]) else {
            panic!("expected chaos");
        };
        assert_eq!((args.seconds, args.debug), (Duration::from_secs(20), true));
        assert_eq!(args.concurrency, "reactor");
        let Ok(Command::Chaos(args)) = parse(&["chaos", "--concurrency", "proactor"]) else {
            panic!("expected chaos");
        };
        assert_eq!(args.concurrency, "proactor");
        for bad in ["0", "soon", "-5"] {
            assert!(parse(&["chaos", "--seconds", bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_command_lines_are_rejected_with_a_reason() {
        for (args, needle) in [
            (&["demo", "--timeout"][..], "a value is required"),
            (&["demo", "--timeout", "soon"][..], "number of seconds"),
            (&["demo", "--timeout", "0"][..], "must be positive"),
            (&["demo", "--timeout=-3"][..], "negative"),
            (&["demo", "--timeout", "NaN"][..], "number of seconds"),
            (
                &["demo", "--frobnicate"][..],
                "unexpected argument '--frobnicate'",
            ),
            (&["demo", "a", "b", "c"][..], "unexpected argument 'c'"),
            (&["ci", "now"][..], "unexpected argument 'now'"),
            (&["deploy"][..], "unrecognized subcommand 'deploy'"),
        ] {
            let err = parse(args).expect_err("should be rejected");
            assert!(err.contains(needle), "{args:?}: `{err}` lacks `{needle}`");
        }
    }
}
