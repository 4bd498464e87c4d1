//! `echo-lf-strict`: the shared echo handlers on a leader/followers pool running the strict
//! protocol, `--threads N` threads (default 2); see [`benches::servers::leader_followers`].
#![forbid(unsafe_code)]

use benches::servers::leader_followers::{DEFAULT_THREADS, serve_strict};

fn main() -> std::process::ExitCode {
    benches::server_main("echo-lf-strict", |listener, args| {
        serve_strict(listener, args.threads.unwrap_or(DEFAULT_THREADS))
    })
}
