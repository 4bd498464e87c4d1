//! `echo-lf`: the shared echo handlers on a leader/followers pool of `--threads N` threads
//! (default 2); see [`benches::servers::leader_followers`].
#![forbid(unsafe_code)]

use benches::servers::leader_followers::{DEFAULT_THREADS, serve};

fn main() -> std::process::ExitCode {
    benches::server_main("echo-lf", |listener, args| {
        serve(listener, args.threads.unwrap_or(DEFAULT_THREADS))
    })
}
