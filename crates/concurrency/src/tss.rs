//! Thread-Specific Storage: one logically global access point, one object per thread behind it,
//! no lock on access.

use crate::THREAD;
use std::any::Any;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The key that names one [`ThreadSpecific`] instance in every thread's object set.
///
/// Keys come from a process-wide counter (the *key factory*) and are never reused, so a value
/// left in a thread by a dropped instance can never be mistaken for a later instance's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TssKey(u64);

impl TssKey {
    fn next() -> TssKey {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        TssKey(NEXT.fetch_add(1, Ordering::Relaxed))
    }

    /// The key as a number, for narration.
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

type Entry = Rc<RefCell<Box<dyn Any>>>;

thread_local! {
    /// This thread's *thread-specific object set*: its object for every key it has used.
    /// The thread's exit drops it, and with it every object it holds.
    static OBJECT_SET: RefCell<HashMap<TssKey, Entry>> = RefCell::new(HashMap::new());
}

/// The thread-specific object proxy: one value shared by all threads in appearance, a separate
/// `T` per thread in fact.
///
/// Each thread that touches it gets its own `T`, made by the instance's initialiser on first
/// use and dropped when the thread exits. Accesses take no lock: the object set is the
/// thread's own. Several instances coexist, each under its own [`TssKey`].
///
/// ```
/// use concurrency::ThreadSpecific;
///
/// // Each worker thread counts the records it batched, without sharing a counter.
/// let batched = ThreadSpecific::new(|| 0u32);
/// std::thread::scope(|s| {
///     for n in [3, 5] {
///         let batched = &batched;
///         s.spawn(move || {
///             for _ in 0..n {
///                 batched.with(|count| *count += 1);
///             }
///             assert_eq!(batched.get(), n); // only this thread's records
///         });
///     }
/// });
/// assert_eq!(batched.try_with(|count| *count), None); // the main thread never used it
/// ```
///
/// The objects live as long as their thread, so they cannot borrow from a caller's stack:
///
/// ```compile_fail
/// use concurrency::ThreadSpecific;
///
/// let local = String::from("a caller's string");
/// let borrowed = ThreadSpecific::new(|| local.as_str()); // `T` must be 'static
/// ```
pub struct ThreadSpecific<T: 'static> {
    key: TssKey,
    init: Box<dyn Fn() -> T + Send + Sync>,
}

impl<T: 'static> ThreadSpecific<T> {
    /// A new instance, under a fresh key, whose per-thread objects `init` makes.
    pub fn new(init: impl Fn() -> T + Send + Sync + 'static) -> Self {
        ThreadSpecific {
            key: TssKey::next(),
            init: Box::new(init),
        }
    }

    /// The key this instance's objects are filed under.
    pub fn key(&self) -> TssKey {
        self.key
    }

    /// Runs `f` on the calling thread's object, making it first if this thread has none.
    ///
    /// # Panics
    ///
    /// If `f` calls `with` on the same instance again (the object is already borrowed), or if
    /// called while the thread's storage is being torn down at thread exit.
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        seq!(THREAD => self.participant(), "with(f)");
        let found = self.entry();
        if found.is_some() {
            seq!(self.participant() => object_set(), "get key {}: found (no lock anywhere)", self.key.as_u64());
        }
        let entry = found.unwrap_or_else(|| {
            seq!(self.participant() => object_set(), "get key {}: none, init() and insert", self.key.as_u64());
            let entry: Entry = Rc::new(RefCell::new(Box::new((self.init)())));
            OBJECT_SET.with(|set| set.borrow_mut().insert(self.key, entry.clone()));
            entry
        });
        seq!(reply self.participant() => THREAD, "f(&mut this thread's object)");
        Self::apply(&entry, f)
    }

    /// This instance's name in the sequence diagrams drawn from runs.
    fn participant(&self) -> String {
        format!("ThreadSpecific (key {})", self.key.as_u64())
    }

    /// Runs `f` on the calling thread's object if it has one; `None` otherwise.
    pub fn try_with<R>(&self, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        seq!(THREAD => self.participant(), "try_with(f)");
        let found = self.entry();
        seq!(
            self.participant() => object_set(),
            "get key {}: {}", self.key.as_u64(), if found.is_some() { "found" } else { "none: None" }
        );
        found.map(|entry| Self::apply(&entry, f))
    }

    /// Removes the calling thread's object and hands it back (the next access makes a new one).
    pub fn take(&self) -> Option<T> {
        let entry = OBJECT_SET.with(|set| set.borrow_mut().remove(&self.key))?;
        let boxed = Rc::try_unwrap(entry).ok()?.into_inner();
        boxed.downcast::<T>().ok().map(|b| *b)
    }

    /// The calling thread's entry; the set is borrowed only for the lookup, so `f` may use
    /// other instances.
    fn entry(&self) -> Option<Entry> {
        OBJECT_SET.with(|set| set.borrow().get(&self.key).cloned())
    }

    fn apply<R>(entry: &Entry, f: impl FnOnce(&mut T) -> R) -> R {
        let mut object = entry.borrow_mut();
        let value = object
            .downcast_mut::<T>()
            .expect("a key is only ever used with its own instance's type");
        f(value)
    }
}

/// The calling thread's object set, as the sequence diagrams name it.
fn object_set() -> String {
    format!(
        "{}'s object set",
        std::thread::current().name().unwrap_or("an unnamed thread")
    )
}

impl<T: Clone + 'static> ThreadSpecific<T> {
    /// A copy of the calling thread's object, making it first if this thread has none.
    pub fn get(&self) -> T {
        self.with(|v| v.clone())
    }
}

impl<T: 'static> Drop for ThreadSpecific<T> {
    /// Drops the calling thread's object now; other threads' objects are dropped when those
    /// threads exit (as with POSIX `pthread_key_delete`, no thread can reach another's set).
    fn drop(&mut self) {
        let _ = OBJECT_SET.try_with(|set| set.borrow_mut().remove(&self.key));
    }
}

impl<T: 'static> fmt::Debug for ThreadSpecific<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadSpecific")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}
