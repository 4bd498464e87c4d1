//! POSA2's concurrency patterns for one process: Active Object, Monitor Object and
//! Thread-Specific Storage.
//!
//! - **Monitor Object** ([`MonitorQueue`]): an object whose methods run one at a time under one
//!   monitor lock, and which schedule each other through monitor conditions. Here it is a
//!   bounded blocking queue, the hand-off between a thread that produces work and one that
//!   consumes it, closable so that no waiter is left behind.
//! - **Active Object** ([`ActiveObject`], [`MethodRequest`], [`Eventual`]): a servant that runs
//!   on a thread of its own; clients call a proxy, which turns each call into a method request
//!   queued for the servant's scheduler and hands back a future. The activation queue is a
//!   [`MonitorQueue`].
//! - **Thread-Specific Storage** ([`ThreadSpecific`]): one access point that gives each thread
//!   its own object, found through a key, with no lock on the way.
//!
//! Half-Sync/Half-Async lives beside Leader/Followers in the `leader-followers` crate.
//!
//! | Participant (POSA2) | Here |
//! |---|---|
//! | Active Object: proxy | your typed wrapper calling [`ActiveObject::invoke`] / [`ActiveObject::invoke_guarded`] |
//! | Active Object: method request | [`MethodRequest`] (guard: `can_run`, call: `call`) |
//! | Active Object: activation list (queue) | a [`MonitorQueue`] of method requests, bounded |
//! | Active Object: scheduler | the thread [`ActiveObject::new`] starts (private `Scheduler`: dequeues, checks guards, keeps waiting requests) |
//! | Active Object: servant | your type `S`, owned by the scheduler thread |
//! | Active Object: future | [`Eventual`] (read end) and [`Promise`] (write end), resolved with a result or a [`Cancelled`] reason |
//! | Monitor Object: monitor object | [`MonitorQueue`] |
//! | Monitor Object: synchronized methods | `push`, `pop`, `try_*`, `*_timeout`, `drain`, `close` |
//! | Monitor Object: monitor lock | the queue's mutex |
//! | Monitor Object: monitor conditions | `not_empty` and `not_full` condition variables |
//! | Thread-Specific Storage: thread-specific object proxy | [`ThreadSpecific`] |
//! | Thread-Specific Storage: key factory, key | a process-wide counter, [`TssKey`] |
//! | Thread-Specific Storage: thread-specific object set | a `thread_local!` map from key to object, one per thread |
//! | Thread-Specific Storage: thread-specific object | your `T`, one per thread |
//!
//! # Example
//!
//! A gateway's store runs as an active object; sensors call its proxy from their own threads,
//! and every request gets its answer through a future.
//!
//! ```
//! use concurrency::{ActiveObject, Shutdown};
//!
//! let store = ActiveObject::new(Vec::<String>::new(), 4);
//! let replies: Vec<_> = ["boiler 81.5", "intake 12.3"]
//!     .into_iter()
//!     .map(|r| store.invoke("append", move |log: &mut Vec<String>| {
//!         log.push(r.to_string());
//!         log.len()
//!     }))
//!     .collect();
//! let positions: Vec<_> = replies.into_iter().map(|e| e.wait().unwrap()).collect();
//! assert_eq!(positions, [1, 2]);
//! assert_eq!(store.shutdown(Shutdown::Drain).servant, ["boiler 81.5", "intake 12.3"]);
//! ```
//!
//! # Loom
//!
//! The monitor queue and the futures use `std::sync` normally and loom's primitives under
//! `--cfg loom`, so the models in `tests/it/loom_model.rs` check the real code:
//! `RUSTFLAGS="--cfg loom" cargo test -p concurrency --release --test it loom`.

#![forbid(unsafe_code)]

/// The `seq!` macro of the interaction events drawn as sequence diagrams (`posa-seq`).
#[macro_use]
extern crate posa_seq;

pub(crate) use posa_seq::THREAD;

mod active;
mod error;
mod future;
mod monitor;
mod sync;
mod tss;

pub use active::{ActiveObject, MethodRequest, Shutdown, ShutdownReport};
pub use error::{Cancelled, PopError, PushError};
pub use future::{Eventual, Promise, promise};
pub use monitor::{MonitorQueue, MonitorStats};
pub use tss::{ThreadSpecific, TssKey};
