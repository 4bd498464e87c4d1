//! Command-line parsing for the lab's binaries, kept free of I/O so that it can be unit tested.

use std::net::SocketAddr;
use std::time::Duration;

/// What a peer echo server was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerArgs {
    /// Where to listen; port 0 lets the kernel choose.
    pub addr: SocketAddr,
    /// Worker threads, for servers that have a multi-threaded mode (`--workers N`).
    pub workers: Option<usize>,
    /// Pool threads, for the servers on our thread pools (`--threads N`).
    pub threads: Option<usize>,
}

/// What the load generator was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadArgs {
    /// The echo server to load.
    pub addr: SocketAddr,
    /// Concurrent connections, each with one request in flight (closed loop).
    pub connections: usize,
    /// Bytes per request; the echo is the same bytes.
    pub size: usize,
    /// Time run before measuring, to fill caches and let the server settle.
    pub warmup: Duration,
    /// Time measured.
    pub duration: Duration,
}

/// The result of parsing a command line: run with these arguments, or print help.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Parsed<T> {
    /// `-h` or `--help` was given.
    Help,
    /// Run with these arguments.
    Run(T),
}

/// Help text shared by the echo servers (`{name}` is replaced by the binary's name).
pub const SERVER_USAGE: &str = "\
usage: {name} --addr HOST:PORT [--workers N] [--threads N]

  --addr HOST:PORT  where to listen (port 0: any free port)
  --workers N       worker threads, where the server has a multi-threaded mode
  --threads N       pool threads (echo-lf: the pool; echo-hsha: the synchronous
                    workers besides the demultiplexing thread; default 2)

Prints `LISTENING <addr>` on stdout once bound, then echoes every byte it reads
until it is killed.
";

/// Help text of `loadgen`.
pub const LOAD_USAGE: &str = "\
usage: loadgen --addr HOST:PORT [--connections N] [--size BYTES]
               [--warmup SECS] [--duration SECS]

  --addr HOST:PORT   the echo server to load
  --connections N    concurrent connections, one request in flight each (default 64)
  --size BYTES       bytes per request (default 64)
  --warmup SECS      unmeasured time first (default 1)
  --duration SECS    measured time (default 5)

Prints one line of JSON on stdout: requests per second and latency percentiles.
";

/// Walks `--name value` and `--name=value` options, handing each pair to `apply`.
fn walk(
    args: &[String],
    mut apply: impl FnMut(&str, &str) -> Result<(), String>,
) -> Result<bool, String> {
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(true);
        }
        let Some(option) = arg.strip_prefix("--") else {
            return Err(format!("unexpected argument `{arg}`"));
        };
        let (name, value) = match option.split_once('=') {
            Some((name, value)) => (name, value.to_owned()),
            None => {
                let value = iter
                    .next()
                    .ok_or_else(|| format!("`--{option}` needs a value"))?;
                (option, value.clone())
            }
        };
        apply(name, &value)?;
    }
    Ok(false)
}

fn parse_addr(value: &str) -> Result<SocketAddr, String> {
    value
        .parse()
        .map_err(|_| format!("`--addr` expects HOST:PORT, got `{value}`"))
}

fn parse_count(name: &str, value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(0) => Err(format!("`--{name}` must be at least 1")),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("`--{name}` expects a whole number, got `{value}`")),
    }
}

/// Parses a number of seconds, fractions allowed; zero only where `zero_ok`.
pub fn parse_seconds(name: &str, value: &str, zero_ok: bool) -> Result<Duration, String> {
    let seconds: f64 = value
        .parse()
        .map_err(|_| format!("`--{name}` expects a number of seconds, got `{value}`"))?;
    if seconds.is_nan() || seconds < 0.0 || (!zero_ok && seconds == 0.0) {
        return Err(format!("`--{name}` must be positive, got `{value}`"));
    }
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("`--{name} {value}`: {e}"))
}

impl ServerArgs {
    /// Parses the arguments that follow the program name.
    pub fn parse(args: &[String]) -> Result<Parsed<ServerArgs>, String> {
        let mut addr = None;
        let mut workers = None;
        let mut threads = None;
        let help = walk(args, |name, value| {
            match name {
                "addr" => addr = Some(parse_addr(value)?),
                "workers" => workers = Some(parse_count(name, value)?),
                "threads" => threads = Some(parse_count(name, value)?),
                _ => return Err(format!("unknown option `--{name}`")),
            }
            Ok(())
        })?;
        if help {
            return Ok(Parsed::Help);
        }
        let addr = addr.ok_or("`--addr HOST:PORT` is required")?;
        Ok(Parsed::Run(ServerArgs {
            addr,
            workers,
            threads,
        }))
    }
}

impl LoadArgs {
    /// Parses the arguments that follow the program name.
    pub fn parse(args: &[String]) -> Result<Parsed<LoadArgs>, String> {
        let mut addr = None;
        let mut connections = 64;
        let mut size = 64;
        let mut warmup = Duration::from_secs(1);
        let mut duration = Duration::from_secs(5);
        let help = walk(args, |name, value| {
            match name {
                "addr" => addr = Some(parse_addr(value)?),
                "connections" => connections = parse_count(name, value)?,
                "size" => size = parse_count(name, value)?,
                "warmup" => warmup = parse_seconds(name, value, true)?,
                "duration" => duration = parse_seconds(name, value, false)?,
                _ => return Err(format!("unknown option `--{name}`")),
            }
            Ok(())
        })?;
        if help {
            return Ok(Parsed::Help);
        }
        let addr = addr.ok_or("`--addr HOST:PORT` is required")?;
        Ok(Parsed::Run(LoadArgs {
            addr,
            connections,
            size,
            warmup,
            duration,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn a_server_needs_an_address_and_may_take_workers() {
        let parsed = ServerArgs::parse(&strings(&["--addr", "127.0.0.1:0", "--workers=2"]));
        assert_eq!(
            parsed,
            Ok(Parsed::Run(ServerArgs {
                addr: "127.0.0.1:0".parse().unwrap(),
                workers: Some(2),
                threads: None,
            }))
        );
        let Ok(Parsed::Run(pool)) =
            ServerArgs::parse(&strings(&["--threads", "3", "--addr=127.0.0.1:0"]))
        else {
            panic!("should parse");
        };
        assert_eq!((pool.threads, pool.workers), (Some(3), None));
        let err = ServerArgs::parse(&strings(&["--addr=127.0.0.1:0", "--threads=0"])).unwrap_err();
        assert!(err.contains("at least 1"), "{err}");
        let err = ServerArgs::parse(&[]).unwrap_err();
        assert!(err.contains("required"), "{err}");
    }

    #[test]
    fn loadgen_has_defaults_and_reads_every_option() {
        let Ok(Parsed::Run(args)) = LoadArgs::parse(&strings(&["--addr=[::1]:7000"])) else {
            panic!("should parse");
        };
        assert_eq!(args.connections, 64);
        assert_eq!(args.size, 64);
        assert_eq!(args.warmup, Duration::from_secs(1));
        assert_eq!(args.duration, Duration::from_secs(5));

        let Ok(Parsed::Run(args)) = LoadArgs::parse(&strings(&[
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
        ])) else {
            panic!("should parse");
        };
        assert_eq!(args.addr, "127.0.0.1:9".parse().unwrap());
        assert_eq!(
            (args.connections, args.size),
            (512, 128),
            "counts are taken as given"
        );
        assert_eq!(args.warmup, Duration::ZERO);
        assert_eq!(args.duration, Duration::from_millis(250));
    }

    #[test]
    fn help_is_recognised_and_options_are_checked_in_order() {
        assert_eq!(
            LoadArgs::parse(&strings(&["--bogus", "1", "-h"])).map(|_| ()),
            Err("unknown option `--bogus`".to_owned()),
            "options are checked in order, so an earlier bad one is reported first"
        );
        assert_eq!(LoadArgs::parse(&strings(&["--help"])), Ok(Parsed::Help));
        assert_eq!(ServerArgs::parse(&strings(&["-h"])), Ok(Parsed::Help));
    }

    #[test]
    fn bad_command_lines_are_rejected_with_a_reason() {
        for (args, needle) in [
            (&["--addr"][..], "needs a value"),
            (&["--addr", "localhost"][..], "expects HOST:PORT"),
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
                "must be positive",
            ),
            (
                &["--addr", "127.0.0.1:1", "--warmup", "-1"][..],
                "must be positive",
            ),
            (&["stray"][..], "unexpected argument"),
        ] {
            let err = LoadArgs::parse(&strings(args)).expect_err("should be rejected");
            assert!(err.contains(needle), "{args:?}: `{err}` lacks `{needle}`");
        }
    }
}
