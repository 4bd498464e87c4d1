//! `echo-monoio`: monoio on its io_uring driver; see [`benches::servers::uring_runtimes::serve_monoio`].
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    benches::server_main("echo-monoio", |listener, _| {
        benches::servers::uring_runtimes::serve_monoio(listener)
    })
}
