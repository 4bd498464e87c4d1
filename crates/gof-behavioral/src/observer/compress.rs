//! Event compression: policies that thin a stream of events before observers see it, each with a stated delivery guarantee.
//!
//! The course names event compression as a consequence the Observer pattern forces on an implementation:
//! a subject that changes faster than its observers can usefully react floods them with intermediate states.
//! A [`Compressor`] sits between publishers and a [`Subject`]: publishers hand it events, a [`CompressionPolicy`] decides what to keep,
//! and [`Compressor::flush`] (called at the end of a batch, on a timer tick, or from an event loop at [`Compressor::next_deadline`]) delivers what is due.
//!
//! | policy | delivers | may drop | never drops |
//! |---|---|---|---|
//! | [`CoalesceByKey`] | at each flush, one event per key seen since the last flush, in first-arrival order of the keys | earlier events for a key superseded before the flush | the latest event of any key |
//! | [`LatestWins`] | at each flush, the one most recent event | every earlier event since the last flush | the latest event |
//! | [`Debounce`] | the last event of a burst, once no event has arrived for `window` (or `max_wait` after the burst began) | events superseded within a burst | the last event of every burst |
//!
//! No policy invents, reorders within a key, or duplicates events, and [`Compressor::flush_all`] delivers everything pending regardless of time,
//! so shutting down after `flush_all` loses nothing that a policy would have delivered.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::time::{Duration, Instant};

use super::subject::{Subject, Subscription};
use crate::clock::{Clock, SystemClock};

/// What happened to an event offered to a policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Offer {
    /// The event is pending; nothing was dropped.
    Queued,
    /// The event is pending and replaced an older pending event, which is dropped.
    Superseded,
}

/// Decides which offered events are delivered, and when.
pub trait CompressionPolicy<E> {
    /// Takes one event, arrived at `now`.
    fn offer(&mut self, event: E, now: Instant) -> Offer;

    /// Moves the events due at `now` into `out`, in delivery order.
    fn take_ready(&mut self, now: Instant, out: &mut Vec<E>);

    /// Moves every pending event into `out`, due or not.
    fn take_all(&mut self, out: &mut Vec<E>);

    /// The earliest instant at which a pending event becomes due, for time-driven policies;
    /// `None` if nothing is pending or pending events are due at the next flush.
    fn next_deadline(&self) -> Option<Instant>;

    /// How many events are pending.
    fn pending(&self) -> usize;
}

/// Keeps the latest event per key; a flush delivers one event per key, keys in order of first arrival.
///
/// ```
/// use gof_behavioral::observer::{CoalesceByKey, CompressionPolicy};
/// use std::time::Instant;
///
/// let mut policy = CoalesceByKey::new(|reading: &(char, i32)| reading.0);
/// let now = Instant::now();
/// for reading in [('a', 1), ('b', 1), ('a', 2), ('a', 3)] {
///     policy.offer(reading, now);
/// }
/// let mut out = Vec::new();
/// policy.take_ready(now, &mut out);
/// assert_eq!(out, [('a', 3), ('b', 1)]);
/// ```
pub struct CoalesceByKey<E, K, F> {
    key_of: F,
    index: HashMap<K, usize>,
    slots: Vec<E>,
}

impl<E, K, F> CoalesceByKey<E, K, F>
where
    K: Hash + Eq,
    F: Fn(&E) -> K,
{
    /// A policy keyed by `key_of`.
    pub fn new(key_of: F) -> Self {
        Self {
            key_of,
            index: HashMap::new(),
            slots: Vec::new(),
        }
    }
}

impl<E, K, F> CompressionPolicy<E> for CoalesceByKey<E, K, F>
where
    K: Hash + Eq,
    F: Fn(&E) -> K,
{
    fn offer(&mut self, event: E, _now: Instant) -> Offer {
        let key = (self.key_of)(&event);
        match self.index.get(&key) {
            Some(&slot) => {
                self.slots[slot] = event;
                Offer::Superseded
            }
            None => {
                self.index.insert(key, self.slots.len());
                self.slots.push(event);
                Offer::Queued
            }
        }
    }

    fn take_ready(&mut self, _now: Instant, out: &mut Vec<E>) {
        self.take_all(out);
    }

    fn take_all(&mut self, out: &mut Vec<E>) {
        self.index.clear();
        out.append(&mut self.slots);
    }

    fn next_deadline(&self) -> Option<Instant> {
        None
    }

    fn pending(&self) -> usize {
        self.slots.len()
    }
}

impl<E, K, F> fmt::Debug for CoalesceByKey<E, K, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CoalesceByKey")
            .field("pending", &self.slots.len())
            .finish_non_exhaustive()
    }
}

/// Keeps only the most recent event; a flush delivers it.
#[derive(Debug, Clone)]
pub struct LatestWins<E> {
    latest: Option<E>,
}

impl<E> Default for LatestWins<E> {
    fn default() -> Self {
        Self { latest: None }
    }
}

impl<E> CompressionPolicy<E> for LatestWins<E> {
    fn offer(&mut self, event: E, _now: Instant) -> Offer {
        match self.latest.replace(event) {
            Some(_) => Offer::Superseded,
            None => Offer::Queued,
        }
    }

    fn take_ready(&mut self, _now: Instant, out: &mut Vec<E>) {
        self.take_all(out);
    }

    fn take_all(&mut self, out: &mut Vec<E>) {
        out.extend(self.latest.take());
    }

    fn next_deadline(&self) -> Option<Instant> {
        None
    }

    fn pending(&self) -> usize {
        usize::from(self.latest.is_some())
    }
}

/// Delivers the last event of a burst once the stream has been quiet for `window`.
///
/// With [`max_wait`](Self::max_wait), a burst that never falls quiet still yields its latest event `max_wait` after the burst began,
/// so a steady stream cannot starve observers.
/// Events are due when a flush happens at or after their deadline; the policy never delivers early.
#[derive(Debug, Clone)]
pub struct Debounce<E> {
    window: Duration,
    max_wait: Option<Duration>,
    latest: Option<E>,
    burst_started: Option<Instant>,
    last_arrival: Option<Instant>,
}

impl<E> Debounce<E> {
    /// Debounces over `window`.
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            max_wait: None,
            latest: None,
            burst_started: None,
            last_arrival: None,
        }
    }

    /// Bounds how long a burst may delay delivery.
    pub fn max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = Some(max_wait);
        self
    }

    fn deadline(&self) -> Option<Instant> {
        let quiet = self.last_arrival? + self.window;
        Some(match (self.max_wait, self.burst_started) {
            (Some(max), Some(start)) => quiet.min(start + max),
            _ => quiet,
        })
    }
}

impl<E> CompressionPolicy<E> for Debounce<E> {
    fn offer(&mut self, event: E, now: Instant) -> Offer {
        self.last_arrival = Some(now);
        self.burst_started.get_or_insert(now);
        match self.latest.replace(event) {
            Some(_) => Offer::Superseded,
            None => Offer::Queued,
        }
    }

    fn take_ready(&mut self, now: Instant, out: &mut Vec<E>) {
        if self.deadline().is_some_and(|due| now >= due) {
            self.take_all(out);
        }
    }

    fn take_all(&mut self, out: &mut Vec<E>) {
        out.extend(self.latest.take());
        self.burst_started = None;
        self.last_arrival = None;
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.deadline()
    }

    fn pending(&self) -> usize {
        usize::from(self.latest.is_some())
    }
}

/// Counters kept by a [`Compressor`]; at any time `offered == delivered + superseded + pending`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CompressionStats {
    /// Events handed to the compressor.
    pub offered: u64,
    /// Events delivered to observers.
    pub delivered: u64,
    /// Events dropped because a later one replaced them.
    pub superseded: u64,
}

/// A subject front-end that compresses events with a policy before notifying observers.
///
/// ```
/// use std::cell::RefCell;
/// use std::rc::Rc;
/// use std::time::Duration;
/// use gof_behavioral::clock::ManualClock;
/// use gof_behavioral::observer::{Compressor, Debounce};
///
/// let clock = ManualClock::default();
/// let compressor = Compressor::new(Debounce::new(Duration::from_millis(100)), clock.clone());
/// let seen = Rc::new(RefCell::new(Vec::new()));
/// let log = Rc::clone(&seen);
/// let _sub = compressor.subscribe(move |level: &u8| log.borrow_mut().push(*level));
///
/// compressor.publish(1);
/// clock.advance(Duration::from_millis(50));
/// compressor.publish(2); // still bouncing
/// clock.advance(Duration::from_millis(99));
/// assert_eq!(compressor.flush(), 0);
/// clock.advance(Duration::from_millis(1));
/// assert_eq!(compressor.flush(), 1);
/// assert_eq!(*seen.borrow(), [2]);
/// ```
pub struct Compressor<E, P, C = SystemClock> {
    policy: RefCell<P>,
    clock: C,
    subject: Subject<E>,
    stats: Cell<CompressionStats>,
}

impl<E, P: fmt::Debug, C: fmt::Debug> fmt::Debug for Compressor<E, P, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Compressor")
            .field("policy", &self.policy)
            .field("clock", &self.clock)
            .field("stats", &self.stats.get())
            .finish_non_exhaustive()
    }
}

impl<E: 'static, P: CompressionPolicy<E>, C: Clock> Compressor<E, P, C> {
    /// A compressor applying `policy`, reading time from `clock`.
    pub fn new(policy: P, clock: C) -> Self {
        Self {
            policy: RefCell::new(policy),
            clock,
            subject: Subject::default(),
            stats: Cell::new(CompressionStats::default()),
        }
    }

    /// Subscribes a closure to the compressed stream.
    pub fn subscribe<F: Fn(&E) + 'static>(&self, f: F) -> Subscription {
        self.subject.subscribe(f)
    }

    /// The subject delivering the compressed stream, for trait-object and channel observers.
    pub fn subject(&self) -> &Subject<E> {
        &self.subject
    }

    /// Hands an event to the policy; nothing is delivered until a flush.
    pub fn publish(&self, event: E) {
        let now = self.clock.now();
        let offer = self.policy.borrow_mut().offer(event, now);
        self.bump(|s| {
            s.offered += 1;
            if offer == Offer::Superseded {
                s.superseded += 1;
            }
        });
    }

    /// Delivers the events due now; returns how many were delivered.
    ///
    /// Observers may publish to the compressor from inside the delivery: those events wait for a later flush.
    pub fn flush(&self) -> usize {
        let now = self.clock.now();
        let mut due = Vec::new();
        self.policy.borrow_mut().take_ready(now, &mut due);
        self.deliver(due)
    }

    /// Delivers every pending event, due or not (for shutdown); returns how many were delivered.
    pub fn flush_all(&self) -> usize {
        let mut due = Vec::new();
        self.policy.borrow_mut().take_all(&mut due);
        self.deliver(due)
    }

    /// When the next time-driven delivery falls due, so an event loop can arm a timer for it.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.policy.borrow().next_deadline()
    }

    /// How many events wait in the policy.
    pub fn pending(&self) -> usize {
        self.policy.borrow().pending()
    }

    /// The counters so far.
    pub fn stats(&self) -> CompressionStats {
        self.stats.get()
    }

    fn deliver(&self, due: Vec<E>) -> usize {
        // The policy borrow is already released: observers may publish again.
        let n = due.len();
        self.bump(|s| s.delivered += n as u64);
        for event in due {
            self.subject.publish(event);
        }
        n
    }

    fn bump(&self, f: impl FnOnce(&mut CompressionStats)) {
        let mut stats = self.stats.get();
        f(&mut stats);
        self.stats.set(stats);
    }
}
