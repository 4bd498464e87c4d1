//! Integration tests of the lab: every server echoes correctly, the binaries announce their
//! address, and the load generator's report adds up.

mod binaries;
mod echo;
mod load;

use std::net::{SocketAddr, TcpListener};
use std::thread;

/// Which in-process server to start.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    RawMio,
    Reactor,
    TokioCurrent,
    TokioMulti,
    Threads,
    /// Leader/followers with this many threads.
    LeaderFollowers(usize),
    /// Half-sync/half-async with this many workers.
    HalfSync(usize),
    Proactor,
    UringRaw,
    Monoio,
    TokioUring,
    Compio,
}

pub(crate) const ALL: [Kind; 13] = [
    Kind::RawMio,
    Kind::Reactor,
    Kind::TokioCurrent,
    Kind::TokioMulti,
    Kind::Threads,
    Kind::LeaderFollowers(1),
    Kind::LeaderFollowers(2),
    Kind::HalfSync(2),
    Kind::Proactor,
    Kind::UringRaw,
    Kind::Monoio,
    Kind::TokioUring,
    Kind::Compio,
];

/// Starts a server of `kind` on a thread (it serves until the test process exits).
pub(crate) fn spawn(kind: Kind) -> SocketAddr {
    use benches::servers;
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("local addr");
    thread::spawn(move || match kind {
        Kind::RawMio => servers::raw_mio::serve(listener),
        Kind::Reactor => servers::reactor::serve(listener),
        Kind::TokioCurrent => servers::tokio::serve(listener, None),
        Kind::TokioMulti => servers::tokio::serve(listener, Some(2)),
        Kind::Threads => servers::threads::serve(listener),
        Kind::LeaderFollowers(threads) => servers::leader_followers::serve(listener, threads),
        Kind::HalfSync(workers) => servers::half_sync::serve(listener, workers),
        Kind::Proactor => servers::proactor::serve(listener, None),
        Kind::UringRaw => servers::proactor::serve_ring(listener),
        Kind::Monoio => servers::uring_runtimes::serve_monoio(listener),
        Kind::TokioUring => servers::uring_runtimes::serve_tokio_uring(listener),
        Kind::Compio => servers::uring_runtimes::serve_compio(listener),
    });
    addr
}
