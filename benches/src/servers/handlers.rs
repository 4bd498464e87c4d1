//! The accept and echo handlers shared by every server built on our dispatchers: the reactor,
//! leader/followers and half-sync/half-async run these very handlers, so that the matrix
//! compares dispatchers and nothing else.
//!
//! They are `pattern_core` event handlers ([`reactor::EventHandler`], re-exported by the
//! reactor): the echo handler waits for input only; it asks for output readiness just while a reply is stuck in its buffer, and goes
//! back to input only once that drains, which is how an application of these dispatchers avoids
//! an upcall per writable edge.

use std::io::{self, ErrorKind};
use std::os::fd::{AsFd, BorrowedFd};

use mio::net::{TcpListener, TcpStream};
use reactor::{Context, Dispatcher, Disposition, EventHandler, Interest};

use super::{Pumped, READ_CHUNK, pump};

/// Accepts connections until `WouldBlock`, registering an [`Echo`] for each.
#[derive(Debug)]
pub struct Accept {
    listener: TcpListener,
    /// The server's name, for messages on stderr.
    name: &'static str,
}

impl Accept {
    /// An accept handler for `listener` (made nonblocking here); `name` prefixes its messages.
    pub fn new(listener: std::net::TcpListener, name: &'static str) -> io::Result<Accept> {
        listener.set_nonblocking(true)?;
        Ok(Accept {
            listener: TcpListener::from_std(listener),
            name,
        })
    }
}

impl EventHandler for Accept {
    fn handle(&self) -> Option<BorrowedFd<'_>> {
        Some(self.listener.as_fd())
    }

    fn handle_input(&mut self, ctx: &mut dyn Context) -> Disposition {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    if let Err(e) = ctx.register(Box::new(Echo::new(stream)), Interest::READ) {
                        eprintln!("{}: register: {e}", self.name);
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Disposition::Continue,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    // Out of descriptors, most likely: keep serving the open connections.
                    eprintln!("{}: accept: {e}", self.name);
                    return Disposition::Continue;
                }
            }
        }
    }
}

/// Echoes one connection.
#[derive(Debug)]
pub struct Echo {
    stream: TcpStream,
    out: Vec<u8>,
    scratch: Box<[u8]>,
    writing: bool,
}

impl Echo {
    /// An echo handler for an accepted, nonblocking `stream`.
    pub fn new(stream: TcpStream) -> Echo {
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

/// Registers an [`Accept`] for `listener` with `dispatcher` and runs it: serves echo until the
/// dispatcher ends (for these servers, only on a polling error).
pub fn serve_on(
    mut dispatcher: Box<dyn Dispatcher>,
    listener: std::net::TcpListener,
    name: &'static str,
) -> io::Result<()> {
    let accept = Box::new(Accept::new(listener, name)?);
    dispatcher
        .register(accept, Interest::READ)
        .map_err(io::Error::other)?;
    dispatcher.run()
}
