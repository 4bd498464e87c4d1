//! `echo-compio`: compio on its io_uring driver; see [`benches::servers::uring_runtimes::serve_compio`].
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    benches::server_main("echo-compio", |listener, _| {
        benches::servers::uring_runtimes::serve_compio(listener)
    })
}
