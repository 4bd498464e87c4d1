//! `echo-proactor`: ours, on the proactor (`--sqpoll MS`: a kernel submission-queue poller); see [`benches::servers::proactor::serve`].
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    benches::server_main("echo-proactor", |listener, args| {
        benches::servers::proactor::serve(listener, args.sqpoll)
    })
}
