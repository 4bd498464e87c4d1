//! The accept and echo handlers shared by every server built on our dispatchers: the reactor,
//! leader/followers and half-sync/half-async run these very handlers, so that the matrix
//! compares dispatchers and nothing else.
//!
//! Connections are accepted by the reactor's `Acceptor` and are the Wrapper Facade's
//! `SockStream`s, as in any application of these dispatchers, so the matrix measures the facade
//! too. The handlers are `pattern_core` event handlers ([`reactor::EventHandler`], re-exported by
//! the reactor): the echo handler waits for input only; it asks for output readiness just while a reply is stuck in its buffer, and goes
//! back to input only once that drains, which is how an application of these dispatchers avoids
//! an upcall per writable edge.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use reactor::{
    Acceptor, Context, Dispatcher, Disposition, EventHandler, Interest, ServiceFactory,
    SockAcceptor, SockStream,
};

use super::{Pumped, READ_CHUNK, pump};

/// The reactor's [`Acceptor`] on `listener` (made nonblocking by it), registering an [`Echo`],
/// with `TCP_NODELAY`, for each connection: what an application of the reactor writes.
pub fn acceptor(listener: std::net::TcpListener) -> Acceptor<impl ServiceFactory> {
    let listener = SockAcceptor::from(OwnedFd::from(listener));
    Acceptor::from_listener(listener, |stream: SockStream, _peer: SocketAddr| {
        let _ = stream.set_nodelay(true);
        Some((Echo::new(stream), Interest::READ))
    })
}

/// Echoes one connection.
#[derive(Debug)]
pub struct Echo {
    stream: SockStream,
    out: Vec<u8>,
    scratch: Box<[u8]>,
    writing: bool,
}

impl Echo {
    /// An echo handler for an accepted, nonblocking `stream`.
    pub fn new(stream: SockStream) -> Echo {
        Echo {
            stream,
            out: Vec::new(),
            scratch: vec![0; READ_CHUNK].into_boxed_slice(),
            writing: false,
        }
    }

    fn step(&mut self, ctx: &mut dyn Context) -> Disposition {
        // A short read counts as drained (the pattern-core contract): when the peer's close
        // came with the data, the dispatcher upcalls input once more, so stopping there never
        // misses the end of stream and saves the `recvfrom` that would only say `WouldBlock`.
        let outcome = pump(&mut self.stream, &mut self.out, &mut self.scratch, true);
        let want_output = match outcome {
            Pumped::Closed => return Disposition::Close,
            Pumped::Blocked => true,
            Pumped::Drained => false,
        };
        if want_output != self.writing {
            let interest = if want_output {
                Interest::WRITE
            } else {
                Interest::READ
            };
            let Some(token) = ctx.current() else {
                return Disposition::Close;
            };
            if ctx.set_interest(token, interest).is_err() {
                return Disposition::Close;
            }
            self.writing = want_output;
        }
        Disposition::Continue
    }
}

impl EventHandler for Echo {
    fn handle(&self) -> Option<BorrowedFd<'_>> {
        Some(self.stream.as_fd())
    }

    fn handle_input(&mut self, ctx: &mut dyn Context) -> Disposition {
        self.step(ctx)
    }

    fn handle_output(&mut self, ctx: &mut dyn Context) -> Disposition {
        self.step(ctx)
    }
}

/// Registers an [`acceptor`] for `listener` with `dispatcher` and runs it: serves echo until the
/// dispatcher ends (for these servers, only on a polling error).
pub fn serve_on(
    mut dispatcher: Box<dyn Dispatcher>,
    listener: std::net::TcpListener,
) -> io::Result<()> {
    dispatcher
        .register(Box::new(acceptor(listener)), Interest::ACCEPT)
        .map_err(io::Error::other)?;
    dispatcher.run()
}
