//! `echo-tokio`: tokio `current_thread`, or `multi_thread` with `--workers N`; see
//! [`benches::servers::tokio`].
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    benches::server_main("echo-tokio", |listener, args| {
        benches::servers::tokio::serve(listener, args.workers)
    })
}
