//! Thread-Safe Interface: public methods take the component's lock once and call internal
//! methods that assume it is held; the internal methods cannot take it again.

use std::collections::BTreeMap;
use std::fmt;

use crate::THREAD;
use crate::strategized::{Counting, Guarded, LockStrategy, MutexLock};

/// What [`Statistics`] knows about one host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostCounts {
    /// Log records received from the host.
    pub records: u64,
    /// Bytes of those records.
    pub bytes: u64,
}

/// The component's state and its *internal methods*.
///
/// They take `&mut self`, which only a held lock can give (a write guard of the component's
/// [`Guarded`]): "the lock is held" is a precondition the compiler checks. And `Inner` holds no
/// path back to the lock or the component, so an internal method cannot call a public one and
/// lock again: the self-deadlock of a non-reentrant lock cannot be written here.
#[derive(Debug, Default)]
struct Inner {
    hosts: BTreeMap<String, HostCounts>,
    totals: HostCounts,
}

impl Inner {
    fn record(&mut self, host: &str, bytes: u64) {
        let counts = self.hosts.entry(host.to_string()).or_default();
        counts.records += 1;
        counts.bytes += bytes;
        self.totals.records += 1;
        self.totals.bytes += bytes;
    }

    /// An intra-component call: one internal method using another, under the one lock the
    /// public method took.
    fn record_batch(&mut self, host: &str, sizes: &[u64]) {
        for &bytes in sizes {
            self.record(host, bytes);
        }
    }

    fn forget(&mut self, host: &str) -> Option<HostCounts> {
        let gone = self.hosts.remove(host)?;
        self.totals.records -= gone.records;
        self.totals.bytes -= gone.bytes;
        Some(gone)
    }
}

/// A logging server's per-host statistics, written with the Thread-Safe Interface pattern and
/// Strategized Locking.
///
/// Every public method is an *interface method*: it takes the lock once, calls internal
/// methods on the locked state, and releases the lock on return. The lock strategy `L` is a
/// type parameter: [`NullLock`](crate::NullLock) in a single-threaded reactor,
/// [`MutexLock`] (the default) or [`ReadWriteLock`](crate::ReadWriteLock) under a thread pool.
///
/// ```
/// use synchronization::{Counting, HostCounts, MutexLock, Statistics};
///
/// let stats: Statistics<Counting<MutexLock>> = Statistics::default();
/// stats.record_batch("sensor-1", &[120, 80, 95]); // three records, one lock acquisition
/// stats.record("sensor-2", 64);
/// assert_eq!(stats.host("sensor-1"), Some(HostCounts { records: 3, bytes: 295 }));
/// assert_eq!(stats.totals().records, 4);
/// assert_eq!(stats.lock_acquisitions(), 4); // batch, record, host, totals
/// ```
///
/// The liability "potential for misuse" (an implementation method called by a client, without
/// the lock) cannot be written outside this module: the implementation methods belong to a
/// private type reached only through the private lock. The interface method compiles:
///
/// ```
/// use synchronization::Statistics;
///
/// let stats: Statistics = Statistics::default();
/// stats.record_batch("sensor-1", &[40, 42]);
/// ```
///
/// the implementation method behind it, reached through the component's lock, does not
/// (the field is private):
///
/// ```compile_fail
/// use synchronization::Statistics;
///
/// let stats: Statistics = Statistics::default();
/// stats.state.write().record_batch("sensor-1", &[40, 42]);
/// ```
///
/// nor does the implementation type itself, lock or no lock (the crate does not export it):
///
/// ```compile_fail
/// use synchronization::Inner;
///
/// let mut unlocked = Inner::default();
/// unlocked.record_batch("sensor-1", &[40, 42]);
/// ```
pub struct Statistics<L: LockStrategy = MutexLock> {
    state: Guarded<Inner, L>,
}

/// The interface's name in the sequence diagrams drawn from runs.
fn participant<L: LockStrategy>() -> String {
    format!("Statistics<{}> (interface)", L::NAME)
}

impl<L: LockStrategy> Statistics<L> {
    /// Counts one record of `bytes` from `host`.
    pub fn record(&self, host: &str, bytes: u64) {
        seq!(THREAD => participant::<L>(), "record({host}, {bytes})");
        seq!(participant::<L>() => crate::strategized::lock_name::<L>(), "write(): acquire");
        self.state.write().record(host, bytes);
        seq!(reply participant::<L>() => THREAD, "done (guard dropped: released)");
    }

    /// Counts a batch of records from `host`, under one lock acquisition.
    pub fn record_batch(&self, host: &str, sizes: &[u64]) {
        seq!(THREAD => participant::<L>(), "record_batch({host}, {} sizes)", sizes.len());
        seq!(participant::<L>() => crate::strategized::lock_name::<L>(), "write(): acquire once");
        let mut inner = self.state.write();
        seq!(participant::<L>() => "Inner (implementation)", "record_batch(&mut self): record() per size, no lock");
        inner.record_batch(host, sizes);
        drop(inner);
        seq!(reply participant::<L>() => THREAD, "done (guard dropped: released once)");
    }

    /// Forgets `host` (its connection closed for good) and hands back what was counted.
    pub fn forget(&self, host: &str) -> Option<HostCounts> {
        self.state.write().forget(host)
    }

    /// What was counted for `host`.
    pub fn host(&self, host: &str) -> Option<HostCounts> {
        self.state.read().hosts.get(host).copied()
    }

    /// What was counted for all hosts.
    pub fn totals(&self) -> HostCounts {
        self.state.read().totals
    }

    /// Every host and its counts, in name order.
    pub fn hosts(&self) -> Vec<(String, HostCounts)> {
        let state = self.state.read();
        state.hosts.iter().map(|(h, c)| (h.clone(), *c)).collect()
    }
}

impl<L: LockStrategy> Statistics<Counting<L>> {
    /// How many times the interface methods took the lock (one per call).
    pub fn lock_acquisitions(&self) -> u64 {
        self.state.acquisitions()
    }
}

impl<L: LockStrategy> Default for Statistics<L> {
    fn default() -> Self {
        Statistics {
            state: Guarded::default(),
        }
    }
}

impl<L: LockStrategy> fmt::Debug for Statistics<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Statistics")
            .field("state", &self.state)
            .finish()
    }
}
