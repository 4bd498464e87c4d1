//! Threads in named groups with cooperative cancellation: [`ThreadRegistry`], [`CancelToken`].
//!
//! POSA2's thread manager (ACE's `ACE_Thread_Manager`): spawn named threads into groups, ask a group
//! to stop, join a group. Cancellation is cooperative: `pthread_cancel` would unwind a thread at an
//! arbitrary cancellation point, past Rust destructors' expectations, so instead each thread gets a
//! [`CancelToken`] it checks (or waits on) at points where stopping is safe.
//!
//! [`RawThread`] is the thread itself, made by `pthread_create` rather than `std::thread`, for code
//! that must not touch the spawning thread's thread-locals (a plugin that wants to be unloaded).

use std::any::Any;
use std::collections::BTreeMap;
use std::ffi::{CString, c_void};
use std::io;
use std::panic::AssertUnwindSafe;
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

/// The work a [`RawThread`] runs.
type RawJob = Box<dyn FnOnce() + Send>;

/// A joinable thread made by `pthread_create(3)` rather than `std::thread::spawn`.
///
/// `std::thread::spawn` touches thread-locals with destructors on the *calling* thread (its
/// spawn-hook list), and a thread-local destructor registered by a shared library pins that
/// library in memory until the calling thread exits. When the caller is a host thread that lives
/// for the whole process, a plugin that spawned with std could then never be unmapped. A
/// `RawThread` leaves the caller's thread-locals alone, and the new thread runs its own
/// thread-local destructors when it ends, before [`join`](Self::join) returns.
///
/// A panic in the job does not unwind out of the thread's C entry point: it is caught and
/// reported by [`join`](Self::join). Dropping a `RawThread` without joining detaches it.
///
/// ```
/// use wrapper_facade::thread::RawThread;
/// let (tx, rx) = std::sync::mpsc::channel();
/// let t = RawThread::spawn("raw-worker", move || tx.send(6 * 7).unwrap())?;
/// assert_eq!(rx.recv().unwrap(), 42);
/// assert!(t.join()?.is_ok());
/// let boom = RawThread::spawn("raw-boom", || panic!("kaboom"))?;
/// assert_eq!(boom.join()?.panic_message(), Some("kaboom"));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct RawThread {
    /// `None` once joined.
    tid: Option<libc::pthread_t>,
    name: String,
}

/// The thread's C entry point: runs the job, returns its panic message (if any) boxed.
extern "C" fn raw_trampoline(arg: *mut c_void) -> *mut c_void {
    // SAFETY: `arg` is the `Box<RawJob>` leaked by `RawThread::spawn`, handed to exactly one
    // thread, which takes it back exactly once here.
    let job = unsafe { Box::from_raw(arg.cast::<RawJob>()) };
    // A panic must not unwind out of an `extern "C"` function.
    let panic = std::panic::catch_unwind(AssertUnwindSafe(job))
        .err()
        .map(panic_message);
    Box::into_raw(Box::new(panic)).cast()
}

impl RawThread {
    /// Starts `job` on a new thread named `name` (cut to the kernel's 15 bytes; a name with a
    /// NUL byte leaves the thread unnamed).
    pub fn spawn(name: &str, job: impl FnOnce() + Send + 'static) -> io::Result<RawThread> {
        let job: RawJob = Box::new(job);
        let arg = Box::into_raw(Box::new(job)).cast::<c_void>();
        let mut tid = std::mem::MaybeUninit::<libc::pthread_t>::uninit();
        // SAFETY: `tid` is writable, default attributes are requested with null, and
        // `raw_trampoline` takes ownership of `arg`.
        let rc = unsafe {
            libc::pthread_create(tid.as_mut_ptr(), std::ptr::null(), raw_trampoline, arg)
        };
        if rc != 0 {
            // SAFETY: no thread was created, so `arg` is still ours to free.
            drop(unsafe { Box::from_raw(arg.cast::<RawJob>()) });
            return Err(io::Error::from_raw_os_error(rc));
        }
        // SAFETY: pthread_create returned 0, so it wrote the thread id.
        let tid = unsafe { tid.assume_init() };
        let mut short = name.as_bytes().to_vec();
        short.truncate(15);
        if let Ok(cname) = CString::new(short) {
            // SAFETY: `tid` names a live, joinable thread (not yet joined or detached) and `cname`
            // is a NUL-terminated string of at most 16 bytes. A failure only leaves it unnamed.
            unsafe { libc::pthread_setname_np(tid, cname.as_ptr()) };
        }
        Ok(RawThread {
            tid: Some(tid),
            name: name.to_owned(),
        })
    }

    /// The name given at spawn.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Waits for the thread to end; its outcome says whether the job panicked.
    pub fn join(mut self) -> io::Result<ThreadOutcome> {
        let tid = self.tid.take().expect("a RawThread is joined at most once");
        let mut ret: *mut c_void = std::ptr::null_mut();
        // SAFETY: the thread was created joinable and is joined once (`tid` is taken, so Drop
        // will not detach it either).
        let rc = unsafe { libc::pthread_join(tid, &mut ret) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        // SAFETY: the joined thread ran `raw_trampoline`, which returned a leaked
        // `Box<Option<String>>`; it is taken back exactly once, here.
        let panic = *unsafe { Box::from_raw(ret.cast::<Option<String>>()) };
        Ok(ThreadOutcome {
            name: std::mem::take(&mut self.name),
            panic,
        })
    }
}

impl Drop for RawThread {
    fn drop(&mut self) {
        if let Some(tid) = self.tid {
            // SAFETY: the thread is joinable and was neither joined (`tid` would be `None`) nor
            // detached before. Its result box is leaked: a detached thread's return value
            // cannot be collected.
            unsafe { libc::pthread_detach(tid) };
        }
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

    #[test]
    fn a_raw_thread_carries_its_name_and_reports_a_panic() {
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let (tx, rx) = std::sync::mpsc::channel();
        let t = RawThread::spawn("raw-named-thread-long", move || {
            // Named by the spawner after pthread_create: wait until it has returned.
            go_rx.recv().unwrap();
            tx.send(std::fs::read_to_string("/proc/thread-self/comm").unwrap())
                .unwrap();
            panic!("after the name");
        })
        .unwrap();
        assert_eq!(t.name(), "raw-named-thread-long");
        go_tx.send(()).unwrap();
        // The kernel keeps 15 bytes of a thread's name.
        assert_eq!(rx.recv().unwrap().trim_end(), "raw-named-threa");
        let outcome = t.join().unwrap();
        assert_eq!(outcome.name(), "raw-named-thread-long");
        assert_eq!(outcome.panic_message(), Some("after the name"));
    }

    #[test]
    fn a_dropped_raw_thread_is_detached_and_runs_to_its_end() {
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let (tx, rx) = std::sync::mpsc::channel();
        let t = RawThread::spawn("raw-detached", move || {
            go_rx.recv().unwrap();
            tx.send(7).unwrap();
        })
        .unwrap();
        drop(t);
        go_tx.send(()).unwrap();
        assert_eq!(rx.recv().unwrap(), 7);
    }
}
