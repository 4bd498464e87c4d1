//! The shared vocabulary of the POSA2 dispatchers.
//!
//! The Reactor, Leader/Followers and Half-Sync/Half-Async patterns all separate *waiting for
//! events* (the dispatcher's job) from *reacting to them* (the application's handlers).
//! This crate is the seam between the two: the identifiers both sides use (handles, interest
//! sets, generational tokens, timer ids), the [`EventHandler`] trait with its contract written
//! down precisely, the [`Context`] an upcall uses to act re-entrantly, the [`Dispatcher`] trait
//! that makes dispatchers interchangeable at run time, and a replaceable [`Clock`].
//! A handler written against this crate runs unchanged under every dispatcher of the workspace,
//! and the `conformance` feature holds the tests that hold each dispatcher to the contract.
//!
//! | Participant (POSA2)           | Here                                                    |
//! |-------------------------------|---------------------------------------------------------|
//! | Handle                        | [`Handle`], lent by handlers as std's `BorrowedFd`       |
//! | Event (indication)            | [`Interest`]: read, write, accept, connect, priority     |
//! | Event handler                 | [`EventHandler`] and its [`Disposition`]s                |
//! | Concrete event handler        | your type implementing [`EventHandler`]                  |
//! | Reactor / dispatcher interface| [`Context`] (inside upcalls), [`Remote`] (other threads), [`Dispatcher`] |
//! | Handle set / registration     | [`Token`], kept in a generational [`Slab`]               |
//! | Timer queue ids and ACTs      | [`TimerId`], [`Act`]                                     |
//! | Time                          | [`Clock`], [`MonotonicClock`], [`ManualClock`]           |
//!
//! # Example
//!
//! A handler that counts down on a timer and closes itself; its upcalls are driven here by
//! [`testing::RecordingContext`], the way a unit test of a handler would, without a dispatcher.
//!
//! ```
//! use std::any::Any;
//! use std::time::Duration;
//! use pattern_core::{CloseReason, Context, Disposition, EventHandler, TimerId};
//! use pattern_core::testing::{Op, RecordingContext};
//!
//! struct Countdown(u32);
//!
//! impl EventHandler for Countdown {
//!     fn handle_timeout(&mut self, ctx: &mut dyn Context, _t: TimerId, act: &mut (dyn Any + Send)) -> Disposition {
//!         let label = act.downcast_ref::<&str>().copied().unwrap_or("?");
//!         self.0 -= 1;
//!         if self.0 == 0 {
//!             ctx.end();
//!             Disposition::Close
//!         } else {
//!             println!("{label}: {} left", self.0);
//!             Disposition::Continue
//!         }
//!     }
//! }
//!
//! let mut ctx = RecordingContext::default();
//! let mut h = Countdown(2);
//! let mut act: Box<dyn Any + Send> = Box::new("launch");
//! let id = TimerId::new(0, 0);
//! assert_eq!(h.handle_timeout(&mut ctx, id, act.as_mut()), Disposition::Continue);
//! assert_eq!(h.handle_timeout(&mut ctx, id, act.as_mut()), Disposition::Close);
//! assert_eq!(ctx.ops(), &[Op::End]);
//! ```
#![forbid(unsafe_code)]

mod clock;
#[cfg(feature = "conformance")]
pub mod conformance;
#[cfg(feature = "diagram")]
pub mod diagram;
mod dispatch;
mod error;
mod handle;
mod handler;
pub mod peer;
mod slab;
pub mod testing;

pub use clock::{Clock, ManualClock, MonotonicClock};
pub use dispatch::{AfterUpcall, Context, Dispatcher, Job, Remote, Removal};
pub use error::{DispatchError, ErrorChain};
pub use handle::{Handle, Interest, TimerId, Token};
pub use handler::{Act, CloseReason, Disposition, EventHandler, Message};
pub use slab::Slab;
