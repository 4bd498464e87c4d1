//! Monitor Object: a bounded blocking queue whose methods are synchronised by one monitor lock
//! and which schedule each other through two monitor conditions.

use crate::THREAD;
use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use crate::error::{PopError, PushError};
use crate::sync::{self, AtomicU64, Condvar, Mutex, MutexGuard, Ordering};

/// The state the monitor lock protects.
struct State<T> {
    items: VecDeque<T>,
    capacity: usize,
    closed: bool,
}

/// How the monitor's one lock has been used: what [`MonitorQueue::stats`] reports.
///
/// Every call of a synchronized method is one *entry*; an entry is *contended* when another
/// thread was inside the monitor at the moment of asking, so the caller had to wait for it;
/// a *wait* is one sleep on a monitor condition (room, an item). [`stats`](MonitorQueue::stats)
/// itself is not counted, and takes no lock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MonitorStats {
    /// Calls of synchronized methods, each one entry into the monitor.
    pub entries: u64,
    /// Entries that found another thread inside and waited for the lock.
    pub contended: u64,
    /// Sleeps on a monitor condition (`not_full`, `not_empty`).
    pub waits: u64,
}

/// A bounded first-in first-out queue that is a monitor object.
///
/// Every public method is a *synchronised method*: it takes the one *monitor lock* on entry and
/// releases it on return, so at most one method runs inside the queue at a time. Methods that
/// cannot go on wait on a *monitor condition* (`not_full` for pushers, `not_empty` for
/// poppers), which releases the lock while they sleep; the method that changes the state
/// notifies the condition that others wait for. [`close`](MonitorQueue::close) wakes every
/// waiter: pushers get their value back, poppers first drain what is left and then get
/// `None` / [`PopError::Closed`].
///
/// ```
/// use concurrency::{MonitorQueue, PushError};
///
/// let queue = MonitorQueue::new(2);
/// queue.push("t=21.5").unwrap();
/// queue.push("t=21.7").unwrap();
/// assert!(matches!(queue.try_push("t=21.9"), Err(PushError::Full("t=21.9"))));
/// std::thread::scope(|s| {
///     s.spawn(|| queue.push("t=21.9").unwrap()); // waits on `not_full`
///     assert_eq!(queue.pop(), Some("t=21.5")); // notifies `not_full`
/// });
/// queue.close();
/// assert_eq!(queue.pop(), Some("t=21.7")); // what was queued is still delivered
/// assert_eq!(queue.pop(), Some("t=21.9"));
/// assert_eq!(queue.pop(), None);
/// ```
pub struct MonitorQueue<T> {
    state: Mutex<State<T>>,
    not_empty: Condvar,
    not_full: Condvar,
    counters: Counters,
}

/// The counters behind [`MonitorStats`]: atomics, bumped by the thread inside the monitor
/// (under loom, loom's: each bump is a point where the model may switch threads while the
/// lock is held, so the models see a thread find the monitor occupied).
#[derive(Default)]
struct Counters {
    entries: AtomicU64,
    contended: AtomicU64,
    waits: AtomicU64,
}

impl<T> MonitorQueue<T> {
    /// A queue holding at most `capacity` items.
    ///
    /// # Panics
    ///
    /// If `capacity` is zero: a queue that can hold nothing would block every push forever.
    pub fn new(capacity: usize) -> Self {
        assert!(
            capacity > 0,
            "a MonitorQueue needs a capacity of at least 1"
        );
        MonitorQueue {
            state: Mutex::new(State {
                items: VecDeque::with_capacity(capacity),
                capacity,
                closed: false,
            }),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
            counters: Counters::default(),
        }
    }

    /// Appends `value`, waiting while the queue is full.
    ///
    /// Hands `value` back if the queue is or becomes closed.
    pub fn push(&self, value: T) -> Result<(), PushError<T>> {
        let mut st = self.enter();
        seq!(THREAD => QUEUE, "push(value)");
        while !st.closed && st.items.len() >= st.capacity {
            seq!(QUEUE => THREAD, "full: wait on not_full (lock released)");
            self.counters.waits.fetch_add(1, Ordering::Relaxed);
            st = sync::wait(&self.not_full, st);
            seq!(QUEUE => THREAD, "woken holding the lock: re-check");
        }
        self.enqueue(st, value)
    }

    /// Appends `value` if there is room now.
    pub fn try_push(&self, value: T) -> Result<(), PushError<T>> {
        let st = self.enter();
        seq!(THREAD => QUEUE, "try_push(value)");
        if !st.closed && st.items.len() >= st.capacity {
            seq!(fail QUEUE => THREAD, "Err(Full(value))");
            return Err(PushError::Full(value));
        }
        self.enqueue(st, value)
    }

    /// Appends `value`, waiting at most `timeout` for room.
    pub fn push_timeout(&self, value: T, timeout: Duration) -> Result<(), PushError<T>> {
        let deadline = Instant::now() + timeout;
        let mut st = self.enter();
        while !st.closed && st.items.len() >= st.capacity {
            let now = Instant::now();
            if now >= deadline {
                return Err(PushError::Timeout(value));
            }
            self.counters.waits.fetch_add(1, Ordering::Relaxed);
            st = sync::wait_timeout(&self.not_full, st, deadline - now);
        }
        self.enqueue(st, value)
    }

    /// The common end of the pushes: the lock is held and there is room, or the queue is closed.
    fn enqueue(&self, mut st: MutexGuard<'_, State<T>>, value: T) -> Result<(), PushError<T>> {
        if st.closed {
            seq!(fail QUEUE => THREAD, "Err(Closed(value))");
            return Err(PushError::Closed(value));
        }
        st.items.push_back(value);
        seq!(reply QUEUE => THREAD, "Ok: {} of {} queued, notify_one(not_empty)", st.items.len(), st.capacity);
        drop(st);
        self.not_empty.notify_one();
        Ok(())
    }

    /// Takes the oldest item, waiting while the queue is empty; `None` once the queue is
    /// closed and drained.
    pub fn pop(&self) -> Option<T> {
        let mut st = self.enter();
        seq!(THREAD => QUEUE, "pop()");
        while !st.closed && st.items.is_empty() {
            seq!(QUEUE => THREAD, "empty: wait on not_empty (lock released)");
            self.counters.waits.fetch_add(1, Ordering::Relaxed);
            st = sync::wait(&self.not_empty, st);
            seq!(QUEUE => THREAD, "woken holding the lock: re-check");
        }
        self.dequeue(st).ok()
    }

    /// Takes the oldest item if there is one now.
    pub fn try_pop(&self) -> Result<T, PopError> {
        let st = self.enter();
        seq!(THREAD => QUEUE, "try_pop()");
        if !st.closed && st.items.is_empty() {
            seq!(fail QUEUE => THREAD, "Err(Empty)");
            return Err(PopError::Empty);
        }
        self.dequeue(st)
    }

    /// Takes the oldest item, waiting at most `timeout` for one.
    pub fn pop_timeout(&self, timeout: Duration) -> Result<T, PopError> {
        let deadline = Instant::now() + timeout;
        let mut st = self.enter();
        seq!(THREAD => QUEUE, "pop_timeout({timeout:?})");
        while !st.closed && st.items.is_empty() {
            let now = Instant::now();
            if now >= deadline {
                seq!(fail QUEUE => THREAD, "Err(Timeout)");
                return Err(PopError::Timeout);
            }
            self.counters.waits.fetch_add(1, Ordering::Relaxed);
            st = sync::wait_timeout(&self.not_empty, st, deadline - now);
        }
        self.dequeue(st)
    }

    /// The common end of the pops: the lock is held and there is an item, or the queue is closed.
    fn dequeue(&self, mut st: MutexGuard<'_, State<T>>) -> Result<T, PopError> {
        let Some(value) = st.items.pop_front() else {
            seq!(fail QUEUE => THREAD, "closed and drained");
            return Err(PopError::Closed);
        };
        seq!(reply QUEUE => THREAD, "the oldest item ({} left), notify_one(not_full)", st.items.len());
        drop(st);
        self.not_full.notify_one();
        Ok(value)
    }

    /// Moves up to `max` of the oldest items into `out`, waiting while the queue is empty;
    /// `false` once the queue is closed and drained (nothing was moved).
    ///
    /// A consumer that handles work in groups (a store syncing once per group of writes)
    /// takes in one monitor entry everything that queued up while it was busy, and wakes every
    /// waiting pusher, since room for several items was made.
    ///
    /// ```
    /// use concurrency::MonitorQueue;
    ///
    /// let queue = MonitorQueue::new(4);
    /// for batch in ["a", "b", "c"] {
    ///     queue.push(batch).unwrap();
    /// }
    /// let mut group = Vec::new();
    /// assert!(queue.pop_into(&mut group, 2));
    /// assert_eq!(group, ["a", "b"]);
    /// queue.close();
    /// assert!(queue.pop_into(&mut group, 8));
    /// assert_eq!(group, ["a", "b", "c"]);
    /// assert!(!queue.pop_into(&mut group, 8));
    /// ```
    pub fn pop_into(&self, out: &mut Vec<T>, max: usize) -> bool {
        let mut st = self.enter();
        while !st.closed && st.items.is_empty() {
            self.counters.waits.fetch_add(1, Ordering::Relaxed);
            st = sync::wait(&self.not_empty, st);
        }
        let n = st.items.len().min(max.max(1));
        out.extend(st.items.drain(..n));
        drop(st);
        match n {
            0 => {}
            1 => self.not_full.notify_one(),
            _ => self.not_full.notify_all(),
        }
        n > 0
    }

    /// Takes every queued item at once, oldest first, and wakes every waiting pusher.
    pub fn drain(&self) -> Vec<T> {
        let items: Vec<T> = self.enter().items.drain(..).collect();
        self.not_full.notify_all();
        items
    }

    /// Closes the queue: pushes fail from now on, pops deliver what is queued and then report
    /// the close, and every thread waiting in a method wakes up.
    pub fn close(&self) {
        let mut st = self.enter();
        seq!(THREAD => QUEUE, "close(): notify_all on both conditions");
        st.closed = true;
        drop(st);
        self.not_empty.notify_all();
        self.not_full.notify_all();
    }

    /// Whether [`close`](MonitorQueue::close) has been called.
    pub fn is_closed(&self) -> bool {
        self.enter().closed
    }

    /// The number of queued items.
    pub fn len(&self) -> usize {
        self.enter().items.len()
    }

    /// Whether no item is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most items the queue holds.
    pub fn capacity(&self) -> usize {
        self.enter().capacity
    }

    /// How the monitor lock has been used so far (this call not counted).
    ///
    /// ```
    /// use concurrency::MonitorQueue;
    ///
    /// let queue = MonitorQueue::new(2);
    /// queue.push("t=21.5").unwrap();
    /// assert_eq!(queue.len(), 1); // a query enters the monitor as well
    /// let stats = queue.stats();
    /// assert_eq!((stats.entries, stats.contended, stats.waits), (2, 0, 0));
    /// ```
    pub fn stats(&self) -> MonitorStats {
        let c = &self.counters;
        MonitorStats {
            entries: c.entries.load(Ordering::Relaxed),
            contended: c.contended.load(Ordering::Relaxed),
            waits: c.waits.load(Ordering::Relaxed),
        }
    }

    /// Enters the monitor: takes its lock, counting the entry and whether it had to wait for
    /// another thread to leave.
    fn enter(&self) -> MutexGuard<'_, State<T>> {
        let (st, contended) = sync::lock_noting_contention(&self.state);
        self.counters.entries.fetch_add(1, Ordering::Relaxed);
        if contended {
            self.counters.contended.fetch_add(1, Ordering::Relaxed);
        }
        st
    }
}

/// The queue's name in the sequence diagrams drawn from runs.
const QUEUE: &str = "MonitorQueue";

impl<T> fmt::Debug for MonitorQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Copied out first: the formatter writes to the caller's writer, which must not run
        // under the monitor lock.
        let (len, capacity, closed) = {
            let st = sync::lock(&self.state);
            (st.items.len(), st.capacity, st.closed)
        };
        f.debug_struct("MonitorQueue")
            .field("len", &len)
            .field("capacity", &capacity)
            .field("closed", &closed)
            .finish()
    }
}
