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
}

pub(crate) const ALL: [Kind; 5] = [
    Kind::RawMio,
    Kind::Reactor,
    Kind::TokioCurrent,
    Kind::TokioMulti,
    Kind::Threads,
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
    });
    addr
}
