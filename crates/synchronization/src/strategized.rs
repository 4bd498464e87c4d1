//! Strategized Locking: a component's critical sections are written once, against a lock
//! strategy chosen by a type parameter.

use std::cell::{Ref, RefCell, RefMut};
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};

/// A locking strategy: how a value of type `T` is protected, and how a critical section gets
/// shared (`read`) or exclusive (`write`) access to it.
///
/// The strategy is a type, chosen at compile time, so a component generic over it pays only
/// for the lock it is given: with [`NullLock`] no atomic instruction at all.
pub trait LockStrategy {
    /// The lock holding a `T`.
    type Lock<T>;
    /// Shared access, released on drop (scoped locking).
    type ReadGuard<'a, T: 'a>: Deref<Target = T>;
    /// Exclusive access, released on drop (scoped locking).
    type WriteGuard<'a, T: 'a>: DerefMut<Target = T>;
    /// The strategy's name, for narration and `Debug`.
    const NAME: &'static str;

    /// Wraps `value` in this strategy's lock.
    fn new<T>(value: T) -> Self::Lock<T>;
    /// Takes the lock for reading.
    fn read<'a, T: 'a>(lock: &'a Self::Lock<T>) -> Self::ReadGuard<'a, T>;
    /// Takes the lock for writing.
    fn write<'a, T: 'a>(lock: &'a Self::Lock<T>) -> Self::WriteGuard<'a, T>;
    /// Takes the lock for reading if that needs no wait now.
    fn try_read<'a, T: 'a>(lock: &'a Self::Lock<T>) -> Option<Self::ReadGuard<'a, T>>;
    /// Takes the lock for writing if it is free now.
    fn try_write<'a, T: 'a>(lock: &'a Self::Lock<T>) -> Option<Self::WriteGuard<'a, T>>;
    /// Exclusive access through an exclusive reference: no locking needed.
    fn get_mut<T>(lock: &mut Self::Lock<T>) -> &mut T;
    /// Unwraps the value.
    fn into_inner<T>(lock: Self::Lock<T>) -> T;
}

/// The null lock, for a component used by one thread: a `RefCell`, no atomic instruction.
///
/// It is `!Sync`, so the compiler refuses to share a component using it between threads: the
/// C++ null mutex's "only use me single-threaded" becomes a type error. A nested `write`
/// while a guard is alive panics ("already borrowed") where a real non-reentrant lock would
/// deadlock.
#[derive(Debug, Clone, Copy, Default)]
pub struct NullLock;

impl LockStrategy for NullLock {
    type Lock<T> = RefCell<T>;
    type ReadGuard<'a, T: 'a> = Ref<'a, T>;
    type WriteGuard<'a, T: 'a> = RefMut<'a, T>;
    const NAME: &'static str = "null lock";

    fn new<T>(value: T) -> RefCell<T> {
        RefCell::new(value)
    }
    fn read<'a, T: 'a>(lock: &'a RefCell<T>) -> Ref<'a, T> {
        lock.borrow()
    }
    fn write<'a, T: 'a>(lock: &'a RefCell<T>) -> RefMut<'a, T> {
        lock.borrow_mut()
    }
    fn try_read<'a, T: 'a>(lock: &'a RefCell<T>) -> Option<Ref<'a, T>> {
        lock.try_borrow().ok()
    }
    fn try_write<'a, T: 'a>(lock: &'a RefCell<T>) -> Option<RefMut<'a, T>> {
        lock.try_borrow_mut().ok()
    }
    fn get_mut<T>(lock: &mut RefCell<T>) -> &mut T {
        lock.get_mut()
    }
    fn into_inner<T>(lock: RefCell<T>) -> T {
        lock.into_inner()
    }
}

/// A mutual-exclusion lock (`parking_lot::Mutex`), for a component shared by a thread pool.
/// Readers exclude each other too.
#[derive(Debug, Clone, Copy, Default)]
pub struct MutexLock;

impl LockStrategy for MutexLock {
    type Lock<T> = parking_lot::Mutex<T>;
    type ReadGuard<'a, T: 'a> = parking_lot::MutexGuard<'a, T>;
    type WriteGuard<'a, T: 'a> = parking_lot::MutexGuard<'a, T>;
    const NAME: &'static str = "mutex";

    fn new<T>(value: T) -> parking_lot::Mutex<T> {
        parking_lot::Mutex::new(value)
    }
    fn read<'a, T: 'a>(lock: &'a parking_lot::Mutex<T>) -> parking_lot::MutexGuard<'a, T> {
        lock.lock()
    }
    fn write<'a, T: 'a>(lock: &'a parking_lot::Mutex<T>) -> parking_lot::MutexGuard<'a, T> {
        lock.lock()
    }
    fn try_read<'a, T: 'a>(
        lock: &'a parking_lot::Mutex<T>,
    ) -> Option<parking_lot::MutexGuard<'a, T>> {
        lock.try_lock()
    }
    fn try_write<'a, T: 'a>(
        lock: &'a parking_lot::Mutex<T>,
    ) -> Option<parking_lot::MutexGuard<'a, T>> {
        lock.try_lock()
    }
    fn get_mut<T>(lock: &mut parking_lot::Mutex<T>) -> &mut T {
        lock.get_mut()
    }
    fn into_inner<T>(lock: parking_lot::Mutex<T>) -> T {
        lock.into_inner()
    }
}

/// A readers/writer lock (`parking_lot::RwLock`), for a component read far more than written:
/// readers run together, a writer alone.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadWriteLock;

impl LockStrategy for ReadWriteLock {
    type Lock<T> = parking_lot::RwLock<T>;
    type ReadGuard<'a, T: 'a> = parking_lot::RwLockReadGuard<'a, T>;
    type WriteGuard<'a, T: 'a> = parking_lot::RwLockWriteGuard<'a, T>;
    const NAME: &'static str = "readers/writer lock";

    fn new<T>(value: T) -> parking_lot::RwLock<T> {
        parking_lot::RwLock::new(value)
    }
    fn read<'a, T: 'a>(lock: &'a parking_lot::RwLock<T>) -> parking_lot::RwLockReadGuard<'a, T> {
        lock.read()
    }
    fn write<'a, T: 'a>(lock: &'a parking_lot::RwLock<T>) -> parking_lot::RwLockWriteGuard<'a, T> {
        lock.write()
    }
    fn try_read<'a, T: 'a>(
        lock: &'a parking_lot::RwLock<T>,
    ) -> Option<parking_lot::RwLockReadGuard<'a, T>> {
        lock.try_read()
    }
    fn try_write<'a, T: 'a>(
        lock: &'a parking_lot::RwLock<T>,
    ) -> Option<parking_lot::RwLockWriteGuard<'a, T>> {
        lock.try_write()
    }
    fn get_mut<T>(lock: &mut parking_lot::RwLock<T>) -> &mut T {
        lock.get_mut()
    }
    fn into_inner<T>(lock: parking_lot::RwLock<T>) -> T {
        lock.into_inner()
    }
}

/// A decorating strategy: locks with `L` and counts every acquisition, so a test or a demo can
/// see how often a component locks (see [`Guarded::acquisitions`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Counting<L>(PhantomData<L>);

/// The lock of [`Counting<L>`]: `L`'s lock and a counter of acquisitions.
pub struct Counted<Lk> {
    lock: Lk,
    acquisitions: AtomicU64,
}

impl<Lk> fmt::Debug for Counted<Lk> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Counted")
            .field("acquisitions", &self.acquisitions.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl<L: LockStrategy> LockStrategy for Counting<L> {
    type Lock<T> = Counted<L::Lock<T>>;
    type ReadGuard<'a, T: 'a> = L::ReadGuard<'a, T>;
    type WriteGuard<'a, T: 'a> = L::WriteGuard<'a, T>;
    const NAME: &'static str = "counting";

    fn new<T>(value: T) -> Self::Lock<T> {
        Counted {
            lock: L::new(value),
            acquisitions: AtomicU64::new(0),
        }
    }
    fn read<'a, T: 'a>(lock: &'a Self::Lock<T>) -> Self::ReadGuard<'a, T> {
        lock.acquisitions.fetch_add(1, Ordering::Relaxed);
        L::read(&lock.lock)
    }
    fn write<'a, T: 'a>(lock: &'a Self::Lock<T>) -> Self::WriteGuard<'a, T> {
        lock.acquisitions.fetch_add(1, Ordering::Relaxed);
        L::write(&lock.lock)
    }
    fn try_read<'a, T: 'a>(lock: &'a Self::Lock<T>) -> Option<Self::ReadGuard<'a, T>> {
        let guard = L::try_read(&lock.lock)?;
        lock.acquisitions.fetch_add(1, Ordering::Relaxed);
        Some(guard)
    }
    fn try_write<'a, T: 'a>(lock: &'a Self::Lock<T>) -> Option<Self::WriteGuard<'a, T>> {
        let guard = L::try_write(&lock.lock)?;
        lock.acquisitions.fetch_add(1, Ordering::Relaxed);
        Some(guard)
    }
    fn get_mut<T>(lock: &mut Self::Lock<T>) -> &mut T {
        L::get_mut(&mut lock.lock)
    }
    fn into_inner<T>(lock: Self::Lock<T>) -> T {
        L::into_inner(lock.lock)
    }
}

/// A value protected by the lock strategy `L`: the component's critical sections, written once.
///
/// ```
/// use synchronization::{Guarded, LockStrategy, MutexLock, NullLock};
///
/// /// Counts the readings a gateway received: the same code for every strategy.
/// fn count_readings<L: LockStrategy>(counter: &Guarded<u64, L>, n: u64) {
///     for _ in 0..n {
///         *counter.write() += 1;
///     }
/// }
///
/// // Single-threaded (in a reactor's loop): no atomic instruction.
/// let local: Guarded<u64, NullLock> = Guarded::new(0);
/// count_readings(&local, 3);
/// assert_eq!(*local.read(), 3);
///
/// // Shared by a pool of threads: a mutex.
/// let shared: Guarded<u64, MutexLock> = Guarded::new(0);
/// std::thread::scope(|s| {
///     for _ in 0..4 {
///         s.spawn(|| count_readings(&shared, 250));
///     }
/// });
/// assert_eq!(shared.into_inner(), 1000);
/// ```
///
/// A component with the null lock cannot be shared between threads; the compiler says so:
///
/// ```compile_fail
/// use synchronization::{Guarded, NullLock};
///
/// let local: Guarded<u64, NullLock> = Guarded::new(0);
/// std::thread::scope(|s| {
///     s.spawn(|| *local.write() += 1); // error: `RefCell<u64>` cannot be shared between threads
/// });
/// ```
pub struct Guarded<T, L: LockStrategy = MutexLock> {
    lock: L::Lock<T>,
}

/// A lock's name in the sequence diagrams drawn from runs.
pub(crate) fn lock_name<L: LockStrategy>() -> String {
    format!("component lock ({})", L::NAME)
}

impl<T, L: LockStrategy> Guarded<T, L> {
    /// Protects `value` with a lock of strategy `L`.
    pub fn new(value: T) -> Self {
        Guarded {
            lock: L::new(value),
        }
    }

    /// Shared access until the guard is dropped.
    pub fn read(&self) -> L::ReadGuard<'_, T> {
        L::read(&self.lock)
    }

    /// Exclusive access until the guard is dropped.
    pub fn write(&self) -> L::WriteGuard<'_, T> {
        L::write(&self.lock)
    }

    /// Shared access if it needs no wait now; `None` if the lock is held for writing, or (under
    /// a strategy whose readers exclude each other, [`MutexLock`]) held at all: by another
    /// thread, or by this one, where `read` would then deadlock.
    pub fn try_read(&self) -> Option<L::ReadGuard<'_, T>> {
        L::try_read(&self.lock)
    }

    /// Exclusive access if the lock is free now; `None` if it is held (by another thread, or
    /// by this one: where `write` would then deadlock or panic).
    pub fn try_write(&self) -> Option<L::WriteGuard<'_, T>> {
        seq!(crate::THREAD => lock_name::<L>(), "try_write()");
        let guard = L::try_write(&self.lock);
        if guard.is_none() {
            seq!(fail lock_name::<L>() => crate::THREAD, "None: held (by this very thread here)");
        }
        guard
    }

    /// Runs `f` with exclusive access: the lock is held exactly for the call.
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        f(&mut self.write())
    }

    /// Exclusive access through `&mut self`, without locking.
    pub fn get_mut(&mut self) -> &mut T {
        L::get_mut(&mut self.lock)
    }

    /// Unwraps the value.
    pub fn into_inner(self) -> T {
        L::into_inner(self.lock)
    }
}

impl<T, L: LockStrategy> Guarded<T, Counting<L>> {
    /// How many times the lock has been taken (reads, writes and successful tries).
    pub fn acquisitions(&self) -> u64 {
        self.lock.acquisitions.load(Ordering::Relaxed)
    }
}

impl<T: Default, L: LockStrategy> Default for Guarded<T, L> {
    fn default() -> Self {
        Guarded::new(T::default())
    }
}

impl<T, L: LockStrategy> fmt::Debug for Guarded<T, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The value is not printed: that would need the lock, which may be held by the caller.
        f.debug_struct("Guarded")
            .field("strategy", &L::NAME)
            .finish_non_exhaustive()
    }
}
