//! Acceptor-Connector on the proactor: asynchronous accept and connect as reusable handlers
//! that create a service handler for each connection.

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;

use crate::{CloseReason, CompletionHandler, Initiator, OpId, Outcome};

/// The passive side: keeps one asynchronous accept in flight on a listener and registers the
/// handler `make` builds for each accepted connection. Closes after `limit` connections, if
/// given, or when an accept fails.
pub struct Acceptor<F> {
    listener: TcpListener,
    make: F,
    remaining: Option<usize>,
}

impl<F> fmt::Debug for Acceptor<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acceptor")
            .field("listener", &self.listener)
            .field("remaining", &self.remaining)
            .finish_non_exhaustive()
    }
}

impl<F> Acceptor<F>
where
    F: FnMut(TcpStream) -> Box<dyn CompletionHandler>,
{
    /// Accepts on `listener` for ever (until closed).
    pub fn new(listener: TcpListener, make: F) -> Self {
        Acceptor {
            listener,
            make,
            remaining: None,
        }
    }

    /// Accepts `limit` connections, then closes.
    pub fn with_limit(listener: TcpListener, limit: usize, make: F) -> Self {
        Acceptor {
            listener,
            make,
            remaining: Some(limit),
        }
    }

    fn arm(&mut self, cx: &mut Initiator<'_>) {
        if self.remaining == Some(0) || cx.accept(self.listener.as_fd()).is_err() {
            cx.close();
        }
    }
}

impl<F> CompletionHandler for Acceptor<F>
where
    F: FnMut(TcpStream) -> Box<dyn CompletionHandler>,
{
    fn on_open(&mut self, cx: &mut Initiator<'_>) {
        self.arm(cx);
    }

    fn on_accept(&mut self, cx: &mut Initiator<'_>, _op: OpId, outcome: Outcome<TcpStream>) {
        match outcome {
            Outcome::Done(stream) => {
                if let Some(n) = self.remaining.as_mut() {
                    *n -= 1;
                }
                cx.register_boxed((self.make)(stream));
                self.arm(cx);
            }
            Outcome::Cancelled => {}
            Outcome::Failed(_) => cx.close(),
        }
    }
}

/// The active side: connects asynchronously to `addr` and hands the outcome to `done`, which
/// may return the service handler to register for the connection. Finishes after that.
pub struct Connector<F> {
    addr: SocketAddr,
    done: Option<F>,
}

impl<F> fmt::Debug for Connector<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl<F> Connector<F>
where
    F: FnOnce(io::Result<TcpStream>) -> Option<Box<dyn CompletionHandler>>,
{
    /// Connects to `addr`; `done` gets the connected stream, or the error.
    pub fn new(addr: SocketAddr, done: F) -> Self {
        Connector {
            addr,
            done: Some(done),
        }
    }

    fn report(&mut self, cx: &mut Initiator<'_>, result: io::Result<TcpStream>) {
        if let Some(done) = self.done.take() {
            if let Some(handler) = done(result) {
                cx.register_boxed(handler);
            }
        }
    }
}

impl<F> CompletionHandler for Connector<F>
where
    F: FnOnce(io::Result<TcpStream>) -> Option<Box<dyn CompletionHandler>>,
{
    fn on_open(&mut self, cx: &mut Initiator<'_>) {
        if let Err(e) = cx.connect(self.addr) {
            self.report(cx, Err(io::Error::other(e)));
        }
    }

    fn on_connect(&mut self, cx: &mut Initiator<'_>, _op: OpId, outcome: Outcome<TcpStream>) {
        let result = match outcome {
            Outcome::Done(s) => Ok(s),
            Outcome::Cancelled => Err(io::Error::from(io::ErrorKind::Interrupted)),
            Outcome::Failed(e) => Err(e),
        };
        self.report(cx, result);
    }

    fn on_close(&mut self, _reason: CloseReason) {
        if let Some(done) = self.done.take() {
            drop(done(Err(io::Error::from(io::ErrorKind::Interrupted))));
        }
    }
}
