//! Leader/Followers: a pool of threads takes turns on one event demultiplexer.
//!
//! One thread at a time, the leader, waits on the shared handle set; the others, the followers,
//! wait for their turn. When an event arrives the leader promotes a follower to be the new
//! leader and then processes the event itself, on the thread that received it: no queue, no
//! hand-off, no context switch between demultiplexing and processing. After the upcall it
//! rejoins the pool as a follower. Half-Sync/Half-Async, the alternative the pattern is usually
//! weighed against, sits beside it: a reactor thread demultiplexes and queues, synchronous
//! workers process. Both run the same [`pattern_core::EventHandler`]s as the single-threaded
//! [`reactor::Reactor`], under the same contract (one upcall at a time per handler, timers and
//! notifications included; close exactly once), so that a service chooses its
//! [`Concurrency`] by configuration and by measurement.
//!
//! | Participant (POSA2)              | Here                                                     |
//! |----------------------------------|----------------------------------------------------------|
//! | Handle, handle set               | descriptors lent by handlers; one `mio::Poll` shared by the pool |
//! | Event handler, concrete handlers | [`pattern_core::EventHandler`], yours                    |
//! | Thread pool                      | [`LeaderFollowers`] (built by [`LeaderFollowersBuilder`]) |
//! | Leader, followers, processing threads | the pool's threads, by turns (see the docs page)     |
//! | Handle (de)activation            | per-registration busy state, with work kept while busy; with [`LeaderFollowersBuilder::strict`], also out of the `Poll` for its turn |
//! | Follower promotion protocol      | a condition variable; a new-leader generator with [`LeaderFollowersBuilder::grow_up_to`] |
//! | Half-Sync/Half-Async: async layer, queue, sync layer | [`HalfSyncHalfAsync`]: reactor thread, bounded ready queue, workers |
//! | Choice at deploy time            | [`Concurrency`] (`FromStr`), behind `Box<dyn Dispatcher>` |
//!
//! # Example
//!
//! An echo over a socket pair, served by a pool of two threads; the handler ends the pool once
//! it has echoed the peer's goodbye.
//!
//! ```
//! use std::io::{self, Read, Write};
//! use std::os::fd::{AsFd, BorrowedFd};
//! use std::os::unix::net::UnixStream;
//! use leader_followers::LeaderFollowers;
//! use pattern_core::{Context, Dispatcher, Disposition, EventHandler, Interest};
//!
//! struct Echo(UnixStream);
//!
//! impl EventHandler for Echo {
//!     fn handle(&self) -> Option<BorrowedFd<'_>> { Some(self.0.as_fd()) }
//!     fn handle_input(&mut self, ctx: &mut dyn Context) -> Disposition {
//!         let mut buf = [0u8; 256];
//!         loop {
//!             match self.0.read(&mut buf) {
//!                 Ok(0) => return Disposition::Close,
//!                 Ok(n) => {
//!                     self.0.write_all(&buf[..n]).unwrap();
//!                     if buf[..n].ends_with(b"bye") { ctx.end(); }
//!                 }
//!                 Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Disposition::Continue,
//!                 Err(_) => return Disposition::Close,
//!             }
//!         }
//!     }
//! }
//!
//! let (ours, mut theirs) = UnixStream::pair()?;
//! ours.set_nonblocking(true)?;
//! let mut pool = LeaderFollowers::new(2)?;
//! pool.register(Box::new(Echo(ours)), Interest::READ)?;
//! theirs.write_all(b"hello, bye")?;
//! pool.run()?;
//! let mut back = [0u8; 10];
//! theirs.read_exact(&mut back)?;
//! assert_eq!(&back, b"hello, bye");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

/// The `seq!` macro of the interaction events drawn as sequence diagrams (`posa-seq`).
#[macro_use]
extern crate posa_seq;

mod concurrency;
mod engine;
mod error;
mod half_sync;
mod leader_followers;
mod monitor;
#[doc(hidden)]
pub mod wakeup;

pub use concurrency::Concurrency;
pub use error::ConcurrencyError;
pub use half_sync::{HalfSyncHalfAsync, HalfSyncHalfAsyncBuilder};
pub use leader_followers::{LeaderFollowers, LeaderFollowersBuilder};
pub use monitor::PoolMonitor;
