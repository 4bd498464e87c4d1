//! Threads in named groups with cooperative cancellation: [`ThreadRegistry`], [`CancelToken`].
//!
//! POSA2's thread manager (ACE's `ACE_Thread_Manager`): spawn named threads into groups, ask a group
//! to stop, join a group. Cancellation is cooperative: `pthread_cancel` would unwind a thread at an
//! arbitrary cancellation point, past Rust destructors' expectations, so instead each thread gets a
//! [`CancelToken`] it checks (or waits on) at points where stopping is safe.

use std::any::Any;
use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

/// A cooperative stop request shared by the threads of a group.
///
/// ```
/// use std::time::Duration;
/// use wrapper_facade::thread::CancelToken;
/// let token = CancelToken::default();
/// assert!(!token.wait_timeout(Duration::from_millis(1))); // not cancelled: the wait times out
/// token.cancel();
/// assert!(token.is_cancelled());
/// assert!(token.wait_timeout(Duration::from_secs(60))); // returns at once
/// ```
#[derive(Debug, Clone, Default)]
pub struct CancelToken {
    inner: Arc<CancelState>,
}

#[derive(Debug, Default)]
struct CancelState {
    cancelled: Mutex<bool>,
    changed: Condvar,
}

impl CancelToken {
    /// Requests cancellation and wakes every thread waiting on the token.
    pub fn cancel(&self) {
        *self.inner.cancelled.lock() = true;
        self.inner.changed.notify_all();
    }

    /// Whether cancellation was requested.
    pub fn is_cancelled(&self) -> bool {
        *self.inner.cancelled.lock()
    }

    /// Blocks until cancellation is requested.
    pub fn wait(&self) {
        let mut cancelled = self.inner.cancelled.lock();
        while !*cancelled {
            self.inner.changed.wait(&mut cancelled);
        }
    }

    /// Blocks until cancellation is requested or `timeout` passes; returns whether it was cancelled.
    /// Use it instead of `sleep` in a periodic loop, so that a stop request ends the pause at once.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut cancelled = self.inner.cancelled.lock();
        while !*cancelled {
            if self
                .inner
                .changed
                .wait_until(&mut cancelled, deadline)
                .timed_out()
            {
                break;
            }
        }
        *cancelled
    }
}

/// How one joined thread ended.
#[derive(Debug)]
pub struct ThreadOutcome {
    name: String,
    panic: Option<String>,
}

impl ThreadOutcome {
    /// The thread's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether it returned normally.
    pub fn is_ok(&self) -> bool {
        self.panic.is_none()
    }

    /// The panic message, if it panicked.
    pub fn panic_message(&self) -> Option<&str> {
        self.panic.as_deref()
    }
}

#[derive(Debug, Default)]
struct Group {
    token: CancelToken,
    threads: Vec<(String, JoinHandle<()>)>,
}

/// Spawns named threads into groups, cancels and joins them by group.
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
/// use wrapper_facade::thread::ThreadRegistry;
/// let registry = ThreadRegistry::default();
/// let woken = Arc::new(AtomicUsize::new(0));
/// for i in 0..3 {
///     let woken = woken.clone();
///     registry.spawn("workers", &format!("worker-{i}"), move |token| {
///         token.wait(); // park until the group is cancelled
///         woken.fetch_add(1, Ordering::SeqCst);
///     })?;
/// }
/// assert_eq!(registry.len("workers"), 3);
/// registry.cancel_group("workers");
/// let outcomes = registry.join_group("workers");
/// assert!(outcomes.iter().all(|o| o.is_ok()));
/// assert_eq!(woken.load(Ordering::SeqCst), 3);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Default)]
pub struct ThreadRegistry {
    groups: Mutex<BTreeMap<String, Group>>,
}

impl ThreadRegistry {
    /// Spawns a thread named `name` (the OS sees at most 15 bytes of it) in `group`.
    ///
    /// `body` receives the group's [`CancelToken`]. If the group was already cancelled the thread
    /// still starts, with a cancelled token, so that it can clean up.
    pub fn spawn<F>(&self, group: &str, name: &str, body: F) -> io::Result<()>
    where
        F: FnOnce(CancelToken) + Send + 'static,
    {
        let token = self.token(group);
        // The lock is not held while the thread starts: `body` is user code.
        let handle = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || body(token))?;
        self.groups
            .lock()
            .entry(group.to_owned())
            .or_default()
            .threads
            .push((name.to_owned(), handle));
        Ok(())
    }

    /// The cancellation token of `group` (created if the group is new).
    pub fn token(&self, group: &str) -> CancelToken {
        self.groups
            .lock()
            .entry(group.to_owned())
            .or_default()
            .token
            .clone()
    }

    /// Asks every thread of `group` to stop.
    pub fn cancel_group(&self, group: &str) {
        self.token(group).cancel();
    }

    /// Asks every thread of every group to stop.
    pub fn cancel_all(&self) {
        let tokens: Vec<CancelToken> = self
            .groups
            .lock()
            .values()
            .map(|g| g.token.clone())
            .collect();
        tokens.iter().for_each(CancelToken::cancel);
    }

    /// Joins every thread spawned into `group` so far, in spawn order, and forgets the group
    /// (a later spawn into the same name starts a fresh, uncancelled group).
    pub fn join_group(&self, group: &str) -> Vec<ThreadOutcome> {
        // Take the handles out first: joining with the lock held would block other spawns.
        let taken = self.groups.lock().remove(group);
        taken.map(|g| join_all(g.threads)).unwrap_or_default()
    }

    /// Joins every group.
    pub fn join_all(&self) -> Vec<ThreadOutcome> {
        let groups = std::mem::take(&mut *self.groups.lock());
        groups
            .into_values()
            .flat_map(|g| join_all(g.threads))
            .collect()
    }

    /// How many threads of `group` have not been joined.
    pub fn len(&self, group: &str) -> usize {
        self.groups.lock().get(group).map_or(0, |g| g.threads.len())
    }

    /// Whether no thread is registered at all.
    pub fn is_empty(&self) -> bool {
        self.groups.lock().values().all(|g| g.threads.is_empty())
    }

    /// The names of the groups, sorted.
    pub fn groups(&self) -> Vec<String> {
        self.groups.lock().keys().cloned().collect()
    }
}

fn join_all(threads: Vec<(String, JoinHandle<()>)>) -> Vec<ThreadOutcome> {
    threads
        .into_iter()
        .map(|(name, handle)| ThreadOutcome {
            name,
            panic: handle.join().err().map(panic_message),
        })
        .collect()
}

fn panic_message(payload: Box<dyn Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panics_are_reported_by_name_and_groups_are_independent() {
        let registry = ThreadRegistry::default();
        registry.spawn("a", "boom", |_| panic!("kaboom")).unwrap();
        registry.spawn("b", "waiter", |t| t.wait()).unwrap();
        let a = registry.join_group("a");
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].name(), "boom");
        assert_eq!(a[0].panic_message(), Some("kaboom"));
        assert!(!registry.token("b").is_cancelled());
        assert_eq!(registry.groups(), ["b"]);
        registry.cancel_all();
        assert!(registry.join_all().iter().all(ThreadOutcome::is_ok));
        assert!(registry.is_empty());
    }

    #[test]
    fn threads_carry_their_names() {
        let registry = ThreadRegistry::default();
        let (tx, rx) = std::sync::mpsc::channel();
        registry
            .spawn("g", "named-one", move |_| {
                tx.send(std::thread::current().name().map(str::to_owned))
                    .unwrap();
            })
            .unwrap();
        assert_eq!(rx.recv().unwrap().as_deref(), Some("named-one"));
        registry.join_group("g");
    }
}
