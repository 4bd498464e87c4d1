//! The command lines of the lab's binaries (clap derive); the value parsers are `lab_report`'s,
//! shared with `cargo xtask bench`.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use lab_report::args::{at_least_one, positive_seconds, seconds};

/// A peer echo server of the lab.
///
/// Prints `LISTENING <addr>` on stdout once bound, then echoes every byte it reads until it is
/// killed.
#[derive(Debug, Clone, PartialEq, Eq, Parser)]
pub struct ServerArgs {
    /// Where to listen (port 0: any free port).
    #[arg(long, value_name = "HOST:PORT")]
    pub addr: SocketAddr,
    /// Worker threads, where the server has a multi-threaded mode.
    #[arg(long, value_name = "N", value_parser = at_least_one)]
    pub workers: Option<usize>,
    /// Pool threads (echo-lf: the pool; echo-hsha: the synchronous workers besides the
    /// demultiplexing thread; default 2).
    #[arg(long, value_name = "N", value_parser = at_least_one)]
    pub threads: Option<usize>,
    /// echo-proactor: a kernel submission-queue poller (`IORING_SETUP_SQPOLL`) with this idle
    /// time in milliseconds, instead of `SINGLE_ISSUER | DEFER_TASKRUN`.
    #[arg(long, value_name = "MS")]
    pub sqpoll: Option<u32>,
}

/// `loadgen`: closed-loop echo load over N connections.
///
/// Prints one line of JSON on stdout: requests per second and latency percentiles.
#[derive(Debug, Clone, PartialEq, Eq, Parser)]
#[command(name = "loadgen")]
pub struct LoadArgs {
    /// The echo server to load.
    #[arg(long, value_name = "HOST:PORT")]
    pub addr: SocketAddr,
    /// Concurrent connections, each with one request in flight (closed loop).
    #[arg(long, value_name = "N", default_value = "64", value_parser = at_least_one)]
    pub connections: usize,
    /// Bytes per request; the echo is the same bytes.
    #[arg(long, value_name = "BYTES", default_value = "64", value_parser = at_least_one)]
    pub size: usize,
    /// Unmeasured time first, to fill caches and let the server settle.
    #[arg(long, value_name = "SECS", default_value = "1", value_parser = seconds, allow_negative_numbers = true)]
    pub warmup: Duration,
    /// Measured time.
    #[arg(long, value_name = "SECS", default_value = "5", value_parser = positive_seconds)]
    pub duration: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(args: &[&str]) -> Result<LoadArgs, String> {
        LoadArgs::try_parse_from(std::iter::once("loadgen").chain(args.iter().copied()))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_server_needs_an_address_and_may_take_workers_or_threads() {
        let parsed = ServerArgs::try_parse_from(["echo", "--addr", "127.0.0.1:0", "--workers=2"]);
        assert_eq!(
            parsed.unwrap(),
            ServerArgs {
                addr: "127.0.0.1:0".parse().unwrap(),
                workers: Some(2),
                threads: None,
                sqpoll: None,
            }
        );
        let pool = ServerArgs::try_parse_from(["echo", "--threads", "3", "--addr=127.0.0.1:0"]);
        assert_eq!(pool.unwrap().threads, Some(3));
        let err = ServerArgs::try_parse_from(["echo", "--addr=127.0.0.1:0", "--threads=0"]);
        assert!(err.unwrap_err().to_string().contains("at least 1"));
        let err = ServerArgs::try_parse_from(["echo"]).unwrap_err();
        assert!(err.to_string().contains("--addr"), "{err}");
    }

    #[test]
    fn loadgen_has_defaults_and_reads_every_option() {
        let args = load(&["--addr=[::1]:7000"]).unwrap();
        assert_eq!((args.connections, args.size), (64, 64));
        assert_eq!(args.warmup, Duration::from_secs(1));
        assert_eq!(args.duration, Duration::from_secs(5));

        let args = load(&[
            "--connections",
            "512",
            "--size",
            "128",
            "--warmup",
            "0",
            "--duration",
            "0.25",
            "--addr",
            "127.0.0.1:9",
        ])
        .unwrap();
        assert_eq!(args.addr, "127.0.0.1:9".parse().unwrap());
        assert_eq!((args.connections, args.size), (512, 128));
        assert_eq!(args.warmup, Duration::ZERO);
        assert_eq!(args.duration, Duration::from_millis(250));
    }

    #[test]
    fn help_goes_to_stdout_and_bad_command_lines_are_rejected_with_a_reason() {
        let help = LoadArgs::try_parse_from(["loadgen", "--help"]).unwrap_err();
        assert_eq!(help.kind(), clap::error::ErrorKind::DisplayHelp);
        assert!(!help.use_stderr() && help.exit_code() == 0);
        assert!(help.to_string().contains("--connections <N>"));
        for (args, needle) in [
            (&["--addr"][..], "a value is required"),
            (&["--addr", "localhost"][..], "invalid socket address"),
            (
                &["--addr", "127.0.0.1:1", "--connections", "0"][..],
                "at least 1",
            ),
            (
                &["--addr", "127.0.0.1:1", "--size", "x"][..],
                "whole number",
            ),
            (
                &["--addr", "127.0.0.1:1", "--duration", "0"][..],
                "positive",
            ),
            (&["--addr", "127.0.0.1:1", "--warmup", "-1"][..], "negative"),
            (
                &["--addr", "127.0.0.1:1", "stray"][..],
                "unexpected argument",
            ),
        ] {
            let err = load(args).expect_err("should be rejected");
            assert!(err.contains(needle), "{args:?}: `{err}` lacks `{needle}`");
        }
    }
}
