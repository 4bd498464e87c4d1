//! Asynchronous Completion Tokens: route each asynchronous result back to the code that asked
//! for it, in O(1), without trusting the service that carries the token.
//!
//! An initiator that starts many operations on services (a thread pool, a server across the
//! network, the OS) gets their results back in any order. With each operation it hands the
//! service a small token; the service keeps the token without looking inside and returns it
//! with the result; the initiator turns the token straight back into the state, or the
//! completion handler, that this result belongs to. This crate makes that token a checked
//! 64-bit index: O(1) both ways, and a token completed twice, gone stale, sent by another
//! table or made up is refused as an error value instead of reaching the wrong handler.
//! Deadlines, cancellation, a bound and a report of what is outstanding keep forgotten
//! operations from leaking.
//!
//! | Participant (POSA2)         | Here                                                              |
//! |-----------------------------|-------------------------------------------------------------------|
//! | Asynchronous completion token | [`CompletionToken`] (index ACT), [`ObjectAct`] (object-reference ACT) |
//! | Initiator                   | your code: calls `issue`, gives the token to the service          |
//! | Completion handler          | a closure ([`CompletionHandler`]) or your context type `C`        |
//! | Initiator's token store     | [`TokenTable`]                                                    |
//! | Service                     | anything that carries a `u64` and gives it back (see [`frame`])   |
//! | Completion event            | [`Completion`], [`CompletionEvent`]                               |
//! | Demultiplexing: callbacks   | [`Callbacks`]                                                     |
//! | Demultiplexing: queued events | [`CompletionQueue`]                                             |
//!
//! # Representations and strategies
//!
//! - **Index ACT**: [`CompletionToken`], a checked index into a [`TokenTable`]; a plain `u64`
//!   that crosses threads and the network, and the table can list what is outstanding.
//! - **Object-reference ACT**: [`ObjectAct`], the token owns its handler; nothing to look up or
//!   forge, in-process only. (Pointer ACTs are not offered: dereferencing a pointer handed back
//!   by a service would need `unsafe`, and a forged one would be undefined behaviour.)
//! - **Explicit ACT**: the token travels with the request, e.g. in a frame ([`frame`]).
//!   **Implicit ACT**: no token travels; something both sides know already (the only request
//!   in flight on a connection, the handler a notification is addressed to) names the
//!   operation. The `act_pipelined_client` example shows both.
//! - **Callbacks** ([`Callbacks`]): completing runs the handler on the completing thread.
//!   **Queued completion events** ([`CompletionQueue`]): completing queues an event that the
//!   initiator drains on its own thread.
//!
//! # What a token guarantees
//!
//! A table never accepts a token of an operation that has ended: every slot carries a
//! generation that goes up on each reuse, and a slot is retired before its generation could
//! wrap. A token the table did not issue passes only if its 24-bit tag, a keyed hash of slot
//! and generation under a per-table random key, matches by chance: 1 in 16,777,216 per token.
//! That tag is a fast integer hash, not a cryptographic MAC: it catches mistakes, corruption,
//! cross-wired tables and blind guessing, not an adversary who studies many tokens.
//! A token is also not a capability to keep secret; who may complete is decided by who can
//! reach the table.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use act::{Callbacks, Completion};
//! use pattern_core::ManualClock;
//!
//! let clock = ManualClock::default();
//! let callbacks = Callbacks::<u32>::with_clock(1024, Arc::new(clock.clone()));
//! let log = Arc::new(parking_lot::Mutex::new(Vec::new()));
//!
//! let l = log.clone();
//! let fast = callbacks.issue(move |c| l.lock().push(("fast", c))).unwrap();
//! let l = log.clone();
//! let _slow = callbacks
//!     .issue_with_timeout(Duration::from_millis(100), move |c| l.lock().push(("slow", c)))
//!     .unwrap();
//!
//! // The service returns `fast` with its result; `slow` never answers.
//! callbacks.complete(fast, 7).unwrap();
//! clock.advance(Duration::from_millis(150));
//! assert_eq!(callbacks.poll_expired(), 1);
//! assert_eq!(callbacks.poll_expired(), 0); // once only
//!
//! assert_eq!(
//!     *log.lock(),
//!     vec![("fast", Completion::Done(7)), ("slow", Completion::TimedOut)]
//! );
//! assert!(callbacks.is_empty());
//! ```
#![forbid(unsafe_code)]

/// The `seq!` macro of the interaction events drawn as sequence diagrams (`posa-seq`).
#[macro_use]
extern crate posa_seq;

pub(crate) use posa_seq::THREAD;

mod callbacks;
mod completion;
mod error;
pub mod frame;
mod object;
mod queue;
mod table;
mod token;

pub use callbacks::{Callbacks, CompletionHandler};
pub use completion::Completion;
pub use error::{ActError, Full};
pub use object::ObjectAct;
pub use queue::{CompletionEvent, CompletionQueue};
pub use table::{MAX_SLOTS, Outstanding, Report, TokenTable};
pub use token::CompletionToken;
