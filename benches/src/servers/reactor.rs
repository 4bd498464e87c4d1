//! Ours: the echo server on the `reactor` crate, the shared accept handler registering one
//! shared echo handler per connection (both in [`super::handlers`]).

use std::io;

use reactor::{Interest, Reactor};

pub use super::handlers::{Echo, acceptor};

/// Serves echo on `listener` forever (returns only on a polling error).
pub fn serve(listener: std::net::TcpListener) -> io::Result<()> {
    let mut reactor = Reactor::new()?;
    reactor
        .register(acceptor(listener), Interest::ACCEPT)
        .map_err(io::Error::other)?;
    reactor.serve()
}
