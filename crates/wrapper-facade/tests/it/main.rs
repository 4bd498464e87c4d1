//! Integration tests of the wrapper facades, one module per topic, in one test binary.

mod deadline;
mod files;
mod leaks;
mod partial;
mod processes;
mod signals;
mod sockets;

use wrapper_facade::{InetAddr, SockAcceptor, SockConnector, SockStream};

/// A connected loopback pair: (client, server).
pub(crate) fn tcp_pair() -> (SockStream, SockStream) {
    let acceptor = SockAcceptor::bind(&InetAddr::loopback_v4(0)).unwrap();
    let client = SockConnector::default()
        .connect(&acceptor.local_addr().unwrap())
        .unwrap();
    let (server, peer) = acceptor.accept().unwrap();
    assert_eq!(peer, client.local_addr().unwrap());
    (client, server)
}

/// A unique path in the temporary directory for this test process.
pub(crate) fn temp_path(name: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("wf-it-{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}
