//! Smart proxy: a counted reference that tallies accesses and releases the subject with its last user.

use std::fmt;
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use super::DeviceService;
use crate::Error;

type ReleaseHook<T> = Box<dyn FnOnce(T) + Send>;

struct Shared<T> {
    // `Some` from creation until the last user is gone; only `Drop` takes it.
    subject: Option<T>,
    accesses: AtomicU64,
    on_release: Mutex<Option<ReleaseHook<T>>>,
}

impl<T> Drop for Shared<T> {
    fn drop(&mut self) {
        // Runs once, when the last `SmartProxy` is dropped, on whichever thread drops it.
        // No lock is held here: `get_mut` needs none, since nobody else can see `self`.
        let hook = self
            .on_release
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let (Some(subject), Some(hook)) = (self.subject.take(), hook) {
            hook(subject);
        }
    }
}

/// A smart reference: each clone is one more user of the same subject; every access is counted;
/// when the last user is dropped the subject is released, through a hook if one was given
/// (power the device down, return it to a pool) and otherwise by dropping it.
///
/// It is pointer-like, so it implements [`Deref`]; each dereference counts as an access.
/// For [`DeviceService`] subjects it also implements the subject's trait, one access per operation.
///
/// ```
/// use std::sync::mpsc;
/// use gof_structural::proxy::{registers, DeviceService, FieldDevice, SmartProxy};
///
/// let (released_tx, released) = mpsc::channel();
/// let first = SmartProxy::with_release(FieldDevice::new("TC-100", 7), move |dev| {
///     released_tx.send(dev.served()).unwrap();
/// });
/// let second = first.clone();
/// assert_eq!(first.users(), 2);
/// second.read_register(registers::MODE)?;
/// first.identify()?;
/// assert_eq!(first.accesses(), 2);
///
/// drop(first);
/// assert!(released.try_recv().is_err()); // `second` still uses it
/// drop(second);
/// assert_eq!(released.try_recv().unwrap(), 2); // released with the last user
/// # Ok::<(), gof_structural::Error>(())
/// ```
pub struct SmartProxy<T> {
    shared: Arc<Shared<T>>,
}

impl<T> SmartProxy<T> {
    /// The first user of `subject`; the subject is dropped with the last user.
    pub fn new(subject: T) -> Self {
        Self::build(subject, None)
    }

    /// The first user of `subject`; `on_release` receives the subject when the last user is gone.
    pub fn with_release(subject: T, on_release: impl FnOnce(T) + Send + 'static) -> Self {
        Self::build(subject, Some(Box::new(on_release)))
    }

    fn build(subject: T, hook: Option<ReleaseHook<T>>) -> Self {
        SmartProxy {
            shared: Arc::new(Shared {
                subject: Some(subject),
                accesses: AtomicU64::new(0),
                on_release: Mutex::new(hook),
            }),
        }
    }

    /// How many users (clones of this proxy) exist right now.
    /// Other threads may change it at any moment; it is exact when only this thread holds users.
    pub fn users(&self) -> usize {
        Arc::strong_count(&self.shared)
    }

    /// How many accesses all users have made so far.
    pub fn accesses(&self) -> u64 {
        self.shared.accesses.load(Ordering::Relaxed)
    }

    /// Whether two proxies share one subject.
    pub fn ptr_eq(this: &Self, other: &Self) -> bool {
        Arc::ptr_eq(&this.shared, &other.shared)
    }

    fn subject(&self) -> &T {
        self.shared.accesses.fetch_add(1, Ordering::Relaxed);
        self.shared
            .subject
            .as_ref()
            .expect("the subject lives as long as any user")
    }
}

impl<T> Clone for SmartProxy<T> {
    /// One more user of the same subject.
    fn clone(&self) -> Self {
        SmartProxy {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<T> Deref for SmartProxy<T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.subject()
    }
}

impl<T: fmt::Debug> fmt::Debug for SmartProxy<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmartProxy")
            .field("subject", &self.shared.subject)
            .field("users", &self.users())
            .field("accesses", &self.accesses())
            .finish()
    }
}

impl<S: DeviceService> DeviceService for SmartProxy<S> {
    fn identify(&self) -> Result<String, Error> {
        self.subject().identify()
    }
    fn read_register(&self, register: u16) -> Result<u32, Error> {
        self.subject().read_register(register)
    }
    fn write_register(&self, register: u16, value: u32) -> Result<(), Error> {
        self.subject().write_register(register, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn deref_counts_accesses() {
        let proxy = SmartProxy::new(String::from("abc"));
        assert_eq!(proxy.len(), 3);
        assert!(proxy.starts_with('a'));
        assert_eq!(proxy.accesses(), 2);
        let clone = proxy.clone();
        assert!(SmartProxy::ptr_eq(&proxy, &clone));
        assert_eq!(clone.accesses(), 2);
    }

    #[test]
    fn without_a_hook_the_subject_is_dropped_with_the_last_user() {
        struct Tell(mpsc::Sender<()>);
        impl Drop for Tell {
            fn drop(&mut self) {
                self.0.send(()).unwrap();
            }
        }
        let (tx, rx) = mpsc::channel();
        let a = SmartProxy::new(Tell(tx));
        let b = a.clone();
        drop(a);
        assert!(rx.try_recv().is_err());
        drop(b);
        assert!(rx.try_recv().is_ok());
    }
}
