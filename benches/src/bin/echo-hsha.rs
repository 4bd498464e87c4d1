//! `echo-hsha`: the shared echo handlers on half-sync/half-async with `--threads N`
//! synchronous workers (default 2); see [`benches::servers::half_sync`].
#![forbid(unsafe_code)]

use benches::servers::half_sync::{DEFAULT_WORKERS, serve};

fn main() -> std::process::ExitCode {
    benches::server_main("echo-hsha", |listener, args| {
        serve(listener, args.threads.unwrap_or(DEFAULT_WORKERS))
    })
}
