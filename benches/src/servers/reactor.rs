//! Ours: the echo server on the `reactor` crate, the shared accept handler registering one
//! shared echo handler per connection (both in [`super::handlers`]).

use std::io;

use reactor::{Context, Interest, Reactor};

pub use super::handlers::{Accept, Echo};

/// Serves echo on `listener` forever (returns only on a polling error).
pub fn serve(listener: std::net::TcpListener) -> io::Result<()> {
    let mut reactor = Reactor::new()?;
    let accept = Box::new(Accept::new(listener, "echo-reactor")?);
    Context::register(&mut reactor, accept, Interest::READ).map_err(io::Error::other)?;
    reactor.serve()
}
