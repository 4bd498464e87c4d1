//! The Reactor pattern: one thread waits for events on many handles at once, then
//! demultiplexes each event and dispatches it to the handler registered for it.
//!
//! A server written this way needs no thread per client and no locks in its handlers: the
//! reactor owns the handlers and calls them one at a time, and each handler holds only the
//! state of its own connection. This crate builds the pattern on [mio] (epoll) with the
//! [`pattern_core`] event-handler contract, so the same handlers also run under the thread
//! pools of the `leader-followers` crate.
//!
//! | Participant (POSA2)        | Here                                                        |
//! |----------------------------|-------------------------------------------------------------|
//! | Handle                     | a descriptor lent by [`EventHandler::handle`]               |
//! | Synchronous event demultiplexer | `mio::Poll` (epoll, edge-triggered; or poll(2), re-armed by `readiness::Registration`), hidden |
//! | Reactor                    | [`Reactor`] (and [`Context`] inside upcalls)               |
//! | Event handler              | [`EventHandler`]                                            |
//! | Concrete event handlers    | yours; [`Acceptor`] and [`Connector`] for connection setup |
//! | Timer queue                | `timer::TimerQueue`, an indexed binary heap                 |
//! | Notification mechanism     | [`ReactorRemote`]: a user-space queue behind one [`wrapper_facade::notify::EventFd`] |
//! | Acceptor-Connector         | [`Acceptor`], [`Connector`] over [`SockAcceptor`], [`SockStream`] and `SockConnector` |
//! | (debugging aid)            | [`ReactorBuilder::trace_upcalls`]: every upcall as an [`UpcallRecord`], in order |
//!
//! What the reactor promises is the [`EventHandler`] contract; in short: close exactly once,
//! no overlapping upcalls, re-entrant registration and removal, level-like readiness on an
//! edge-triggered demultiplexer (answer [`Disposition::Again`] to be upcalled again without a
//! new edge), stale tokens refused, panics contained, and per iteration timers first, then
//! notifications, then I/O.
//!
//! Two building blocks are shared with the `leader-followers` pools rather than copied there: the
//! timer queue (`timer::TimerQueue`: O(log n) schedule, cancel and expiry, no tombstones, each
//! registration's timers on a list of their own) and the readiness set with its mio mapping
//! (`readiness`). They are `pub` for that sibling only, hidden from these docs, and no part of
//! the reactor's API.
//!
//! # Example
//!
//! A handler that reads a socket until end of stream, fed by another thread:
//!
//! ```
//! use std::io::{Read, Write};
//! use std::os::fd::{AsFd, BorrowedFd};
//! use std::os::unix::net::UnixStream;
//! use reactor::{Context, Disposition, EventHandler, Interest, Reactor};
//!
//! struct Reader { stream: UnixStream, got: Vec<u8> }
//!
//! impl EventHandler for Reader {
//!     fn handle(&self) -> Option<BorrowedFd<'_>> { Some(self.stream.as_fd()) }
//!     fn handle_input(&mut self, ctx: &mut dyn Context) -> Disposition {
//!         let mut buf = [0u8; 1024];
//!         loop {
//!             match self.stream.read(&mut buf) {
//!                 Ok(0) => {
//!                     println!("read {:?}", String::from_utf8_lossy(&self.got));
//!                     ctx.end();
//!                     return Disposition::Close;
//!                 }
//!                 Ok(n) => self.got.extend_from_slice(&buf[..n]),
//!                 Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Disposition::Continue,
//!                 Err(_) => return Disposition::Close,
//!             }
//!         }
//!     }
//! }
//!
//! let (ours, mut theirs) = UnixStream::pair()?;
//! ours.set_nonblocking(true)?;
//! let mut reactor = Reactor::new()?;
//! reactor.register(Reader { stream: ours, got: Vec::new() }, Interest::READ)?;
//! std::thread::spawn(move || theirs.write_all(b"hello, reactor"));
//! reactor.serve()?;
//! assert_eq!(reactor.handlers(), 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

/// The `seq!` macro of the interaction events drawn as sequence diagrams (`posa-seq`).
#[macro_use]
extern crate posa_seq;

mod acceptor;
mod buffer;
mod notify;
mod reactor;
mod trace;
// Public only so that `leader-followers` shares the reactor's readiness set and timer queue
// instead of keeping copies: hidden, because no application of either dispatcher names them and
// they carry no stability promise. (A crate of their own would be a third dispatcher crate for
// two modules; `#[doc(hidden)]` says the same with less.)
#[doc(hidden)]
pub mod readiness;
#[doc(hidden)]
pub mod timer;

pub use acceptor::{
    Acceptor, AcceptorCounters, AcceptorStats, ConnectResult, Connector, ServiceFactory,
};
pub use buffer::OutBuffer;
pub use notify::ReactorRemote;
pub use pattern_core::{
    Act, Clock, CloseReason, Context, DispatchError, Dispatcher, Disposition, EventHandler,
    Interest, ManualClock, Message, MonotonicClock, Remote, Removal, TimerId, Token,
};
pub use reactor::{Reactor, ReactorBuilder};
pub use trace::{Hook, Outcome, UpcallRecord};
/// The typed signal number: [`Signal::from_raw`] turns the `i32` that
/// [`EventHandler::handle_signal`] receives into one, `i32::from` goes back.
pub use wrapper_facade::signal::Signal;
/// The Wrapper Facade's socket types the [`Acceptor`] and [`Connector`] work with: the stream
/// they hand out and the listener [`Acceptor::from_listener`] takes, re-exported so that an
/// application needs no other dependency to name them.
pub use wrapper_facade::{AcceptorOptions, InetAddr, SockAcceptor, SockStream};

/// Boxes a handler for a dispatcher's table, without boxing twice one that comes boxed.
fn boxed<H: EventHandler>(handler: H) -> Box<dyn EventHandler> {
    let mut slot = Some(handler);
    if let Some(already) =
        (&mut slot as &mut dyn std::any::Any).downcast_mut::<Option<Box<dyn EventHandler>>>()
    {
        return already.take().expect("filled above");
    }
    Box::new(slot.take().expect("filled above"))
}
