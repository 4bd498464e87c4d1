//! POSA2's synchronization patterns: Strategized Locking, Thread-Safe Interface and the
//! Double-Checked Locking Optimization.
//!
//! - **Strategized Locking** ([`LockStrategy`], [`Guarded`]): a component's critical sections
//!   are written once against a lock strategy given as a type parameter: [`NullLock`] when one
//!   thread uses the component (no atomic instruction, and the compiler refuses to share it),
//!   [`MutexLock`] or [`ReadWriteLock`] under a thread pool, [`Counting`] to see how often it
//!   locks.
//! - **Thread-Safe Interface** ([`Statistics`]): public methods lock once and call internal
//!   methods on the locked state; the internal methods take `&mut` state that only a held lock
//!   gives, and cannot reach the lock to take it again, so intra-component calls neither pay
//!   for locking twice nor deadlock on a non-reentrant lock.
//! - **Double-Checked Locking Optimization** ([`DoubleChecked`]): a lazily computed value
//!   whose every access after the first is one acquire load; and, in its docs and tests, why
//!   `std::sync::OnceLock` and `LazyLock` are the idiomatic form of the same pattern.
//!
//! Scoped Locking, the idiom all three build on, is Rust's guard types (and `wrapper-facade`'s
//! scoped locks).
//!
//! | Participant (POSA2) | Here |
//! |---|---|
//! | Strategized Locking: component | [`Guarded<T, L>`], and components built on it such as [`Statistics<L>`] |
//! | Strategized Locking: lock strategy (interface) | [`LockStrategy`] |
//! | Strategized Locking: concrete lock strategies | [`NullLock`], [`MutexLock`], [`ReadWriteLock`], [`Counting<L>`] |
//! | Strategized Locking: guard (scoped locking) | `L::ReadGuard`, `L::WriteGuard` (`Ref`/`RefMut`, parking_lot's guards) |
//! | Thread-Safe Interface: interface methods | [`Statistics::record`], [`Statistics::record_batch`], [`Statistics::host`], ... (lock once) |
//! | Thread-Safe Interface: implementation methods | private methods on the locked state, taking `&mut` state (lock held by construction) |
//! | Thread-Safe Interface: component lock | the [`Guarded`] inside [`Statistics`] |
//! | Double-Checked Locking: just-once critical section | the `init` closure given to [`DoubleChecked::get_or_init`] |
//! | Double-Checked Locking: mutex | the cell's private `Mutex` |
//! | Double-Checked Locking: flag | the cell's `AtomicBool` (Release store, Acquire first check) |
//!
//! # Example
//!
//! One statistics component, two lock strategies, the same code:
//!
//! ```
//! use synchronization::{MutexLock, NullLock, Statistics};
//!
//! // In a single-threaded reactor: the null lock.
//! let reactor_stats: Statistics<NullLock> = Statistics::default();
//! reactor_stats.record_batch("sensor-1", &[40, 42]);
//!
//! // Under a thread pool: a mutex.
//! let pool_stats: Statistics<MutexLock> = Statistics::default();
//! std::thread::scope(|s| {
//!     for host in ["sensor-1", "sensor-2"] {
//!         let pool_stats = &pool_stats;
//!         s.spawn(move || pool_stats.record_batch(host, &[40, 42]));
//!     }
//! });
//! assert_eq!(reactor_stats.totals().records, 2);
//! assert_eq!(pool_stats.totals().records, 4);
//! ```
//!
//! # Loom
//!
//! [`DoubleChecked`] uses std's atomics and mutex normally and loom's under `--cfg loom`; the
//! models in `tests/it/loom_model.rs` run with
//! `RUSTFLAGS="--cfg loom" cargo test -p synchronization --release --test it loom`.

#![forbid(unsafe_code)]

/// The `seq!` macro of the interaction events drawn as sequence diagrams (`posa-seq`).
#[macro_use]
extern crate posa_seq;

pub(crate) use posa_seq::THREAD;

mod dcl;
mod interface;
mod strategized;
mod sync;

pub use dcl::DoubleChecked;
pub use interface::{HostCounts, Statistics};
pub use strategized::{
    Counted, Counting, Guarded, LockStrategy, MutexLock, NullLock, ReadWriteLock,
};
