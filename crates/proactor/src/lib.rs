//! Proactor (POSA2) on io_uring: the application starts asynchronous operations, the kernel
//! performs them, and one dispatcher thread demultiplexes their completions to the completion
//! handlers that asked for them.
//!
//! Where a Reactor waits for a handle to become *ready* and lets the handler do the I/O, a
//! Proactor hands the whole operation (with its buffer) to the OS and upcalls the handler when
//! it is *done*: the data are already in the buffer. Each submission carries an
//! [`act`] token as its `user_data`; a completion whose token the table refuses (stale,
//! duplicate, forged) is counted and dropped, never delivered.
//!
//! | Participant (POSA2)                    | Here                                                        |
//! |----------------------------------------|-------------------------------------------------------------|
//! | Handle                                 | a socket descriptor, borrowed by the operation              |
//! | Asynchronous operation                 | accept (one-shot and multishot), connect, read, write, send, send of a lent buffer, datagram receive (`recvmsg`), continuous read, multishot read (provided buffers, lent in place), timeout, cancel ([`Initiator`] methods; [`wrapper_facade::uring::Op`]) |
//! | Asynchronous operation processor       | the kernel, through io_uring ([`wrapper_facade::uring::Ring`]) |
//! | Completion event queue                 | io_uring's completion queue                                 |
//! | Asynchronous event demultiplexer       | `io_uring_enter` ([`Proactor::turn`]: submit and wait)      |
//! | Proactor (completion dispatcher)       | [`Proactor`]                                                |
//! | Completion handler                     | [`CompletionHandler`] (one callback per operation kind)    |
//! | Proactive initiator                    | [`Initiator`] (passed to every upcall)                      |
//! | Asynchronous completion token          | [`OpId`], an [`act::CompletionToken`] as `user_data`        |
//!
//! # The contract
//!
//! - A handler's upcalls never overlap: one dispatcher thread.
//! - Every operation ends exactly once ([`Outcome`]: done, cancelled or failed), cancelled or
//!   not, and its buffer comes back with it.
//! - Closing a handler cancels its operations; [`CompletionHandler::on_close`] runs exactly
//!   once, after the last completion. A handler with nothing left in flight is closed
//!   ([`CloseReason::Finished`]).
//! - A panic in an upcall closes that handler ([`CloseReason::Panicked`]); the loop goes on.
//! - At most [`Config::max_in_flight`] operations are in flight; more are refused
//!   ([`Error::TooManyInFlight`]).
//!
//! # Example
//!
//! ```
//! use std::io::Write;
//! use std::os::fd::AsFd;
//! use std::os::unix::net::UnixStream;
//! use std::sync::mpsc;
//! use proactor::{CompletionHandler, Initiator, OpId, Outcome, Proactor};
//!
//! struct ReadOnce(UnixStream, mpsc::Sender<Vec<u8>>);
//!
//! impl CompletionHandler for ReadOnce {
//!     fn on_open(&mut self, cx: &mut Initiator<'_>) {
//!         cx.read(self.0.as_fd(), vec![0; 64]).unwrap();
//!     }
//!     fn on_read(&mut self, _: &mut Initiator<'_>, _: OpId, o: Outcome<usize>, mut buf: Vec<u8>) {
//!         buf.truncate(o.ok().unwrap());
//!         self.1.send(buf).unwrap();
//!     }
//! }
//!
//! let (mut a, b) = UnixStream::pair().unwrap();
//! let (tx, rx) = mpsc::channel();
//! let mut proactor = Proactor::new().unwrap();
//! proactor.register(ReadOnce(b, tx));
//! a.write_all(b"hello").unwrap();
//! proactor.run().unwrap(); // until no handler is left
//! assert_eq!(rx.recv().unwrap(), b"hello");
//! ```
#![forbid(unsafe_code)]

/// The `seq!` macro of the interaction events drawn as sequence diagrams (`posa-seq`).
#[macro_use]
extern crate posa_seq;

mod connect;
mod error;
mod handler;
mod proactor;

pub use connect::{Acceptor, Connector};
pub use error::{Error, Refused};
pub use handler::{CloseReason, CompletionHandler, HandlerId, OpId, Outcome};
pub use proactor::{Config, Initiator, Proactor, Stats};
pub use wrapper_facade::sock::Received;
pub use wrapper_facade::uring::{ProvidedBuf, SetupError};
