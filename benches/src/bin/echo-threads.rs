//! `echo-threads`: see [`benches::servers::threads`].
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    benches::server_main("echo-threads", |listener, _| {
        benches::servers::threads::serve(listener)
    })
}
