//! Scoped Locking over parking_lot: a lock is acquired by creating a guard and released when the guard leaves scope.
//!
//! POSA2's Scoped Locking idiom (ACE's `ACE_Guard`) is what Rust's ownership does natively; these
//! thin types fix the vocabulary for the rest of the workspace ([`Lock`], [`Guard`], [`RwLock`],
//! [`ReadGuard`], [`WriteGuard`]), add timed acquisition, and [`Guard::unlocked`] for the rule "never
//! hold a lock while calling user code". They never poison: a panic while locked releases the lock.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::time::Duration;

/// A mutual-exclusion lock protecting a `T`, acquired only through a scoped [`Guard`].
///
/// ```
/// use wrapper_facade::sync::{Guard, Lock};
/// let counter = Lock::new(0);
/// {
///     let mut g = counter.guard();
///     *g += 1;
///     // Release the lock around a callback, re-acquire afterwards.
///     Guard::unlocked(&mut g, || assert!(counter.try_guard().is_some()));
///     *g += 1;
/// } // released here, on every path out of the scope
/// assert_eq!(*counter.guard(), 2);
/// ```
#[derive(Default)]
pub struct Lock<T: ?Sized> {
    inner: parking_lot::Mutex<T>,
}

impl<T> Lock<T> {
    /// A lock around `value`.
    pub fn new(value: T) -> Self {
        Lock {
            inner: parking_lot::Mutex::new(value),
        }
    }

    /// Consumes the lock and returns the value.
    pub fn into_inner(self) -> T {
        self.inner.into_inner()
    }
}

impl<T: ?Sized> Lock<T> {
    /// Blocks until the lock is free, then holds it until the guard drops.
    pub fn guard(&self) -> Guard<'_, T> {
        Guard(self.inner.lock())
    }

    /// Takes the lock only if it is free now.
    pub fn try_guard(&self) -> Option<Guard<'_, T>> {
        self.inner.try_lock().map(Guard)
    }

    /// Waits at most `timeout` for the lock.
    pub fn try_guard_for(&self, timeout: Duration) -> Option<Guard<'_, T>> {
        self.inner.try_lock_for(timeout).map(Guard)
    }

    /// Direct access when the lock is exclusively borrowed (no locking needed).
    pub fn get_mut(&mut self) -> &mut T {
        self.inner.get_mut()
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Lock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.inner.try_lock() {
            Some(g) => f.debug_struct("Lock").field("data", &&*g).finish(),
            None => f.debug_struct("Lock").field("data", &"<locked>").finish(),
        }
    }
}

/// Proof that a [`Lock`] is held; releases it on drop.
pub struct Guard<'a, T: ?Sized>(parking_lot::MutexGuard<'a, T>);

impl<T: ?Sized> Guard<'_, T> {
    /// Releases the lock while `f` runs, then re-acquires it.
    pub fn unlocked<R>(this: &mut Self, f: impl FnOnce() -> R) -> R {
        parking_lot::MutexGuard::unlocked(&mut this.0, f)
    }
}

impl<T: ?Sized> Deref for Guard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: ?Sized> DerefMut for Guard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Guard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Guard").field(&&*self.0).finish()
    }
}

/// A readers-writer lock: many [`ReadGuard`]s or one [`WriteGuard`] at a time.
///
/// ```
/// use wrapper_facade::sync::RwLock;
/// let config = RwLock::new(String::from("v1"));
/// {
///     let a = config.read();
///     let b = config.read(); // readers share
///     assert_eq!((a.as_str(), b.as_str()), ("v1", "v1"));
///     assert!(config.try_write().is_none()); // a writer must wait
/// }
/// config.write().push_str("+patch");
/// assert_eq!(&*config.read(), "v1+patch");
/// ```
#[derive(Default)]
pub struct RwLock<T: ?Sized> {
    inner: parking_lot::RwLock<T>,
}

impl<T> RwLock<T> {
    /// A readers-writer lock around `value`.
    pub fn new(value: T) -> Self {
        RwLock {
            inner: parking_lot::RwLock::new(value),
        }
    }

    /// Consumes the lock and returns the value.
    pub fn into_inner(self) -> T {
        self.inner.into_inner()
    }
}

impl<T: ?Sized> RwLock<T> {
    /// Shared access until the guard drops.
    pub fn read(&self) -> ReadGuard<'_, T> {
        ReadGuard(self.inner.read())
    }

    /// Exclusive access until the guard drops.
    pub fn write(&self) -> WriteGuard<'_, T> {
        WriteGuard(self.inner.write())
    }

    /// Shared access only if no writer holds the lock now.
    pub fn try_read(&self) -> Option<ReadGuard<'_, T>> {
        self.inner.try_read().map(ReadGuard)
    }

    /// Exclusive access only if nobody holds the lock now.
    pub fn try_write(&self) -> Option<WriteGuard<'_, T>> {
        self.inner.try_write().map(WriteGuard)
    }

    /// Waits at most `timeout` for exclusive access.
    pub fn try_write_for(&self, timeout: Duration) -> Option<WriteGuard<'_, T>> {
        self.inner.try_write_for(timeout).map(WriteGuard)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.inner.try_read() {
            Some(g) => f.debug_struct("RwLock").field("data", &&*g).finish(),
            None => f.debug_struct("RwLock").field("data", &"<locked>").finish(),
        }
    }
}

/// Shared access to an [`RwLock`]; released on drop.
pub struct ReadGuard<'a, T: ?Sized>(parking_lot::RwLockReadGuard<'a, T>);

impl<T: ?Sized> Deref for ReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for ReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ReadGuard").field(&&*self.0).finish()
    }
}

/// Exclusive access to an [`RwLock`]; released on drop.
pub struct WriteGuard<'a, T: ?Sized>(parking_lot::RwLockWriteGuard<'a, T>);

impl<T: ?Sized> Deref for WriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: ?Sized> DerefMut for WriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for WriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("WriteGuard").field(&&*self.0).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_released_even_when_the_scope_panics() {
        let lock = std::sync::Arc::new(Lock::new(1));
        let l2 = lock.clone();
        let r = std::thread::spawn(move || {
            let _g = l2.guard();
            panic!("while locked");
        })
        .join();
        assert!(r.is_err());
        assert_eq!(*lock.try_guard().expect("released by unwinding"), 1);
    }

    #[test]
    fn timed_acquisition_fails_while_held() {
        let lock = Lock::new(());
        let _held = lock.guard();
        assert!(lock.try_guard_for(Duration::from_millis(1)).is_none());
        let rw = RwLock::new(());
        let _r = rw.read();
        assert!(rw.try_write_for(Duration::from_millis(1)).is_none());
        assert!(rw.try_read().is_some());
    }
}
