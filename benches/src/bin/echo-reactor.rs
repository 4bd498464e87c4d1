//! `echo-reactor`: see [`benches::servers::reactor`].
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    benches::server_main("echo-reactor", |listener, _| {
        benches::servers::reactor::serve(listener)
    })
}
