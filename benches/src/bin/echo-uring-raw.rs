//! `echo-uring-raw`: the floor, a plain loop on the io_uring ring; see [`benches::servers::proactor::serve_ring`].
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    benches::server_main("echo-uring-raw", |listener, _| {
        benches::servers::proactor::serve_ring(listener)
    })
}
