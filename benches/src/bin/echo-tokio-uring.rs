//! `echo-tokio-uring`: tokio-uring; see [`benches::servers::uring_runtimes::serve_tokio_uring`].
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    benches::server_main("echo-tokio-uring", |listener, _| {
        benches::servers::uring_runtimes::serve_tokio_uring(listener)
    })
}
