//! Virtual proxy: the expensive subject is created on first use, once, even under concurrent first use.

use std::fmt;
use std::sync::{Mutex, OnceLock, PoisonError};

use super::DeviceService;
use crate::Error;

/// A placeholder that creates its subject with `create` the first time anyone needs it.
///
/// Built on [`OnceLock`]: concurrent first uses block until the one creation finishes,
/// and `create` runs at most once. The creator is kept in a mutex only so it can be *moved*
/// out (it is `FnOnce`); the mutex is released before the creator runs.
/// If the creator panics, the proxy stays empty and every later access panics too.
///
/// For [`DeviceService`] subjects the proxy is itself a `DeviceService`, so clients cannot tell it
/// from the real thing; for other subjects use [`VirtualProxy::get`].
///
/// ```
/// use gof_structural::proxy::{registers, DeviceService, FieldDevice, VirtualProxy};
///
/// let proxy = VirtualProxy::new(|| FieldDevice::new("TC-100", 7)); // nothing built yet
/// assert!(!proxy.is_created());
/// assert_eq!(proxy.read_register(registers::DEVICE_ID)?, 7); // built here
/// assert!(proxy.is_created());
/// # Ok::<(), gof_structural::Error>(())
/// ```
pub struct VirtualProxy<T, F = fn() -> T> {
    subject: OnceLock<T>,
    create: Mutex<Option<F>>,
}

impl<T, F: FnOnce() -> T> VirtualProxy<T, F> {
    /// A proxy that will build its subject with `create` on first use.
    pub const fn new(create: F) -> Self {
        VirtualProxy {
            subject: OnceLock::new(),
            create: Mutex::new(Some(create)),
        }
    }

    /// The subject, created now if this is the first use.
    pub fn get(&self) -> &T {
        self.subject.get_or_init(|| {
            // The guard is a temporary of this statement: the lock is gone before `create` runs.
            let create = self
                .create
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            let create = create.expect("the virtual proxy's creator panicked on an earlier use");
            create()
        })
    }

    /// The subject if it has been created, without creating it.
    pub fn get_if_created(&self) -> Option<&T> {
        self.subject.get()
    }

    /// Whether the subject has been created.
    pub fn is_created(&self) -> bool {
        self.subject.get().is_some()
    }

    /// Exclusive access to the subject, created now if needed.
    pub fn get_mut(&mut self) -> &mut T {
        self.get();
        self.subject.get_mut().expect("created by the line above")
    }

    /// The subject, created now if needed.
    pub fn into_inner(self) -> T {
        self.get();
        self.subject
            .into_inner()
            .expect("created by the line above")
    }
}

impl<T: fmt::Debug, F> fmt::Debug for VirtualProxy<T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.subject.get() {
            Some(subject) => f.debug_tuple("VirtualProxy").field(subject).finish(),
            None => f.write_str("VirtualProxy(<not created>)"),
        }
    }
}

impl<S: DeviceService, F: FnOnce() -> S> DeviceService for VirtualProxy<S, F> {
    fn identify(&self) -> Result<String, Error> {
        self.get().identify()
    }
    fn read_register(&self, register: u16) -> Result<u32, Error> {
        self.get().read_register(register)
    }
    fn write_register(&self, register: u16, value: u32) -> Result<(), Error> {
        self.get().write_register(register, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn get_mut_and_into_inner_create_when_needed() {
        let mut proxy = VirtualProxy::new(|| vec![1, 2]);
        proxy.get_mut().push(3);
        assert_eq!(proxy.into_inner(), vec![1, 2, 3]);
        let untouched = VirtualProxy::new(|| 5);
        assert_eq!(untouched.get_if_created(), None);
        assert_eq!(format!("{untouched:?}"), "VirtualProxy(<not created>)");
        assert_eq!(untouched.into_inner(), 5);
    }

    #[test]
    fn the_creator_runs_once_for_many_uses() {
        let runs = Cell::new(0);
        let proxy = VirtualProxy::new(|| {
            runs.set(runs.get() + 1);
            "subject"
        });
        for _ in 0..3 {
            assert_eq!(*proxy.get(), "subject");
        }
        assert_eq!(runs.get(), 1);
    }

    #[test]
    fn a_panicking_creator_poisons_the_proxy() {
        let proxy: VirtualProxy<u8, _> = VirtualProxy::new(|| panic!("boom"));
        let first = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| *proxy.get()));
        assert!(first.is_err());
        let second = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| *proxy.get()));
        assert!(second.is_err());
        assert!(!proxy.is_created());
    }

    #[test]
    fn fn_pointer_creators_name_the_type() {
        fn build() -> u32 {
            9
        }
        static PROXY: VirtualProxy<u32> = VirtualProxy::new(build);
        assert_eq!(*PROXY.get(), 9);
    }
}
