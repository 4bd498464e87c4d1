//! Command-line parsing for `cargo xtask demo`, kept free of I/O so that it can be unit tested.

use std::time::Duration;

/// Help text for `cargo xtask demo`.
pub(crate) const DEMO_USAGE: &str = "\
usage: cargo xtask demo [crate] [example] [--bless] [--timeout SECS]

  crate           run only the examples of this package
  example         run only this example of that package
  --bless         write crates/<crate>/examples/expected/<example>.stdout from the
                  actual stdout (each example is run twice to check it is deterministic)
  --timeout SECS  kill an example that runs longer than this (default 120)
";

/// The time limit of one example run when `--timeout` is not given.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// What `cargo xtask demo` was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DemoArgs {
    /// Only the examples of this package, if given.
    pub(crate) krate: Option<String>,
    /// Only this example of `krate`, if given.
    pub(crate) example: Option<String>,
    /// Write the expected-output files instead of comparing with them.
    pub(crate) bless: bool,
    /// The time limit of each example run.
    pub(crate) timeout: Duration,
}

/// The result of parsing a command line: run, or print help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// `-h` or `--help` was given.
    Help,
    /// Run the demo with these arguments.
    Run(DemoArgs),
}

impl DemoArgs {
    /// Parses the arguments that follow `demo`.
    pub(crate) fn parse(args: &[String]) -> Result<Parsed, String> {
        let mut positional = Vec::new();
        let mut bless = false;
        let mut timeout = DEFAULT_TIMEOUT;
        let mut iter = args.iter();
        while let Some(arg) = iter.next() {
            match arg.as_str() {
                "-h" | "--help" => return Ok(Parsed::Help),
                "--bless" => bless = true,
                "--timeout" => {
                    let value = iter.next().ok_or("`--timeout` needs a number of seconds")?;
                    timeout = parse_timeout(value)?;
                }
                _ => {
                    if let Some(value) = arg.strip_prefix("--timeout=") {
                        timeout = parse_timeout(value)?;
                    } else if arg.starts_with('-') {
                        return Err(format!("unknown option `{arg}`"));
                    } else {
                        positional.push(arg.clone());
                    }
                }
            }
        }
        if positional.len() > 2 {
            return Err(format!(
                "too many arguments: expected at most a crate and an example, got `{}`",
                positional.join(" ")
            ));
        }
        let mut positional = positional.into_iter();
        Ok(Parsed::Run(Self {
            krate: positional.next(),
            example: positional.next(),
            bless,
            timeout,
        }))
    }
}

/// Parses a positive number of seconds, fractions allowed (`0.5`).
fn parse_timeout(value: &str) -> Result<Duration, String> {
    let seconds: f64 = value
        .parse()
        .map_err(|_| format!("`--timeout` expects a number of seconds, got `{value}`"))?;
    if seconds.is_nan() || seconds <= 0.0 {
        return Err(format!("`--timeout` must be positive, got `{value}`"));
    }
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("`--timeout {value}`: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Parsed, String> {
        let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        DemoArgs::parse(&args)
    }

    fn run(args: &[&str]) -> DemoArgs {
        match parse(args) {
            Ok(Parsed::Run(demo)) => demo,
            other => panic!("expected Run for {args:?}, got {other:?}"),
        }
    }

    #[test]
    fn no_arguments_select_everything_with_the_default_timeout() {
        assert_eq!(
            run(&[]),
            DemoArgs {
                krate: None,
                example: None,
                bless: false,
                timeout: DEFAULT_TIMEOUT
            }
        );
    }

    #[test]
    fn positionals_are_crate_then_example_and_flags_go_anywhere() {
        let demo = run(&["--bless", "wrapper-facade", "--timeout", "7", "facade_echo"]);
        assert_eq!(demo.krate.as_deref(), Some("wrapper-facade"));
        assert_eq!(demo.example.as_deref(), Some("facade_echo"));
        assert!(demo.bless);
        assert_eq!(demo.timeout, Duration::from_secs(7));
    }

    #[test]
    fn timeout_accepts_the_equals_form_and_fractions() {
        assert_eq!(run(&["--timeout=0.5"]).timeout, Duration::from_millis(500));
    }

    #[test]
    fn help_wins_over_everything_else() {
        assert_eq!(parse(&["some-crate", "--help"]), Ok(Parsed::Help));
        assert_eq!(parse(&["-h"]), Ok(Parsed::Help));
    }

    #[test]
    fn bad_command_lines_are_rejected_with_a_reason() {
        for (args, needle) in [
            (&["--timeout"][..], "needs a number"),
            (&["--timeout", "soon"][..], "expects a number"),
            (&["--timeout", "0"][..], "must be positive"),
            (&["--timeout=-3"][..], "must be positive"),
            (&["--timeout", "NaN"][..], "must be positive"),
            (&["--frobnicate"][..], "unknown option `--frobnicate`"),
            (&["a", "b", "c"][..], "too many arguments"),
        ] {
            let err = parse(args).expect_err("should be rejected");
            assert!(err.contains(needle), "{args:?}: `{err}` lacks `{needle}`");
        }
    }
}
