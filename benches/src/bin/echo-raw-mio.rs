//! `echo-raw-mio`: see [`benches::servers::raw_mio`].
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    benches::server_main("echo-raw-mio", |listener, _| {
        benches::servers::raw_mio::serve(listener)
    })
}
