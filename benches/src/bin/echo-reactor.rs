//! `echo-reactor`: see [`benches::servers::reactor`].

fn main() -> std::process::ExitCode {
    benches::server_main("echo-reactor", |listener, _| {
        benches::servers::reactor::serve(listener)
    })
}
