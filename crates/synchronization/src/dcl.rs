//! Double-Checked Locking Optimization, written out: a flag checked without the lock, then
//! again under it; and why `std::sync::OnceLock` is the form to use.

use std::fmt;

use crate::THREAD;
use crate::sync::{AtomicBool, AtomicU64, Mutex, Ordering};

/// The cell's name in the sequence diagrams drawn from runs.
const CELL: &str = "DoubleChecked (flag, value, mutex)";

/// A value computed once, on first use, by whichever thread gets there first; every later
/// access is one atomic load with no lock.
///
/// The value is a `u64` (a per-host slot index, a descriptor number, an id). That limit is the
/// price of writing the pattern in safe Rust: publishing an arbitrary `T` through an
/// `AtomicPtr` needs `unsafe` to read it back, which this crate forbids. For any `T`, use
/// [`std::sync::OnceLock`] or [`std::sync::LazyLock`]: they are this very pattern (an acquire
/// load of a state word as the first check, a lock and a second check on the slow path, a
/// release store to publish), with their `unsafe` audited in std.
///
/// The orderings, and why:
/// - the initialiser stores the value (`Relaxed`) and then the flag with `Release`;
/// - the first check loads the flag with `Acquire`: if it sees `true`, the release/acquire
///   pair makes the value's store visible, so the `Relaxed` load of the value returns it;
/// - the second check runs under the mutex, whose unlock/lock already orders it after any
///   earlier initialiser, so it may be `Relaxed`.
///
/// With a `Relaxed` first check, a thread could see the flag set and still read the old value:
/// the loom model `loom_relaxed_publication_is_caught` shows loom finding exactly that
/// interleaving.
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use synchronization::DoubleChecked;
///
/// static SLOT_OF_SENSOR_1: DoubleChecked = DoubleChecked::new();
/// static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
///
/// std::thread::scope(|s| {
///     for _ in 0..4 {
///         s.spawn(|| {
///             let slot = SLOT_OF_SENSOR_1.get_or_init(|| {
///                 ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
///                 17 // the host table slot allocated for sensor-1
///             });
///             assert_eq!(slot, 17);
///         });
///     }
/// });
/// assert_eq!(ALLOCATIONS.load(Ordering::SeqCst), 1);
/// assert_eq!(SLOT_OF_SENSOR_1.get(), Some(17));
/// ```
pub struct DoubleChecked {
    ready: AtomicBool,
    value: AtomicU64,
    lock: Mutex<()>,
}

impl DoubleChecked {
    /// An uninitialised cell, usable in a `static`.
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        DoubleChecked {
            ready: AtomicBool::new(false),
            value: AtomicU64::new(0),
            lock: Mutex::new(()),
        }
    }

    /// An uninitialised cell (loom's primitives are not `const`).
    #[cfg(loom)]
    pub fn new() -> Self {
        DoubleChecked {
            ready: AtomicBool::new(false),
            value: AtomicU64::new(0),
            lock: Mutex::new(()),
        }
    }

    /// The value, computing it with `init` if no thread has yet. `init` runs at most once per
    /// cell, under the cell's lock, while other first callers wait.
    ///
    /// `init` must not call `get_or_init` on the same cell: like `OnceLock`, that would wait for
    /// itself.
    pub fn get_or_init(&self, init: impl FnOnce() -> u64) -> u64 {
        // First check: no lock. Acquire pairs with the Release below.
        seq!(THREAD => CELL, "get_or_init: ready.load(Acquire)");
        if self.ready.load(Ordering::Acquire) {
            seq!(reply CELL => THREAD, "true: value.load, no lock");
            return self.value.load(Ordering::Relaxed);
        }
        seq!(THREAD => CELL, "false: lock the mutex");
        let _guard = self
            .lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Second check: another first caller may have initialised it while we waited.
        if self.ready.load(Ordering::Relaxed) {
            seq!(reply CELL => THREAD, "second check: ready, value.load (init not run again)");
            return self.value.load(Ordering::Relaxed);
        }
        seq!(THREAD => CELL, "second check: not ready: run init, value.store, ready.store(true, Release)");
        let value = init();
        self.value.store(value, Ordering::Relaxed);
        // Publish: everything before this store is visible to an Acquire load that sees `true`.
        self.ready.store(true, Ordering::Release);
        seq!(reply CELL => THREAD, "{value} (unlock)");
        value
    }

    /// The value, if some thread has computed it.
    pub fn get(&self) -> Option<u64> {
        seq!(THREAD => CELL, "get: ready.load(Acquire)");
        let value = self
            .ready
            .load(Ordering::Acquire)
            .then(|| self.value.load(Ordering::Relaxed));
        seq!(reply CELL => THREAD, "{value:?} (first check only, no lock)");
        value
    }
}

impl Default for DoubleChecked {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for DoubleChecked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DoubleChecked")
            .field("value", &self.get())
            .finish()
    }
}
