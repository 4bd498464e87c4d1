//! The benchmark lab: a loopback load generator and peer echo servers, so that our
//! [`reactor`] is measured side by side with what people would otherwise use.
//!
//! Every server is its own binary taking `--addr HOST:PORT` and printing `LISTENING <addr>`
//! once bound, so anyone can point their own client at it; `loadgen` is the client the lab
//! uses. `cargo xtask bench` builds them in release, runs the matrix and writes
//! `docs/benchmarks.md`.
//!
//! | binary         | what it is                                                           |
//! |----------------|----------------------------------------------------------------------|
//! | `loadgen`      | N connections on one epoll thread, closed loop, p50/p99 in an HDR histogram, one JSON line out |
//! | `echo-raw-mio` | a hand-written mio loop: the ceiling ([`servers::raw_mio`])           |
//! | `echo-reactor` | ours, on [`reactor::Reactor`] ([`servers::reactor`])                  |
//! | `echo-lf`      | ours, on a [`leader_followers::LeaderFollowers`] pool, `--threads N` (default 2) ([`servers::leader_followers`]) |
//! | `echo-lf-strict` | the same, the pool running the strict protocol ([`servers::leader_followers::serve_strict`]) |
//! | `echo-hsha`    | ours, on [`leader_followers::HalfSyncHalfAsync`], `--threads N` workers (default 2) ([`servers::half_sync`]) |
//! | `echo-tokio`   | tokio `current_thread`, or `multi_thread` with `--workers N` ([`servers::tokio`]) |
//! | `echo-threads` | a std thread per connection ([`servers::threads`])                   |
//! | `echo-proactor` | ours, on [`proactor::Proactor`]: multishot accept and receive from a provided-buffer ring (`--sqpoll MS` for SQPOLL) ([`servers::proactor`]) |
//! | `echo-uring-raw` | the floor: the same echo as a plain loop on the io_uring ring ([`servers::proactor::serve_ring`]) |
//! | `relp-probe`   | a second client's RELP round trips (window 1) while `ingest` floods logd: p50/p99 in one JSON line (`benches/scripts/before-after.sh` with `PROBE=`) |
//! | `echo-monoio`, `echo-tokio-uring`, `echo-compio` | the Rust io_uring runtimes, a task per connection on one thread ([`servers::uring_runtimes`]) |
//!
//! # Example
//!
//! One server and a short load, in process:
//!
//! ```
//! use std::time::Duration;
//! use benches::{cli::LoadArgs, loadgen, servers};
//!
//! let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
//! let addr = listener.local_addr()?;
//! std::thread::spawn(move || servers::raw_mio::serve(listener));
//!
//! let report = loadgen::run(&LoadArgs {
//!     addr,
//!     connections: 4,
//!     size: 64,
//!     warmup: Duration::ZERO,
//!     duration: Duration::from_millis(100),
//! })?;
//! assert_eq!(report.connections, 4);
//! assert_eq!(report.mismatches, 0);
//! assert!(report.total_requests >= report.requests);
//! assert!(report.p50_us <= report.p99_us);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

pub mod cli;
pub mod ingest;
pub mod loadgen;
pub mod servers;

use std::net::TcpListener;
use std::process::ExitCode;

use clap::Parser;
use cli::ServerArgs;

/// The `main` of every echo server binary: parses `--addr` (and `--workers`, `--threads`; clap
/// prints help or a usage error and exits), binds, prints
/// `LISTENING <addr>`, then hands the listener to `serve`.
pub fn server_main(
    name: &str,
    serve: impl FnOnce(TcpListener, &ServerArgs) -> std::io::Result<()>,
) -> ExitCode {
    let args = ServerArgs::parse();
    let result = TcpListener::bind(args.addr).and_then(|listener| {
        servers::announce(listener.local_addr()?)?;
        serve(listener, &args)
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}
