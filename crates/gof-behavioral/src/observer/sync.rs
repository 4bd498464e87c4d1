//! The thread-safe subject: a bounded queue per subscriber, so a slow observer never blocks the publisher or the others.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::thread::{self, JoinHandle, ThreadId};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use parking_lot::Mutex;

use super::subject::SubscriptionId;
use crate::Error;

/// What a full subscriber queue does with one more event.
///
/// Either way the publisher never waits, the other subscribers are unaffected,
/// and every event lost is counted ([`Mailbox::dropped`], [`Worker::dropped`]).
/// A blocking policy is deliberately absent: it would let one slow observer stall the publisher and, through it, every other observer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OverflowPolicy {
    /// Refuse the new event; the queue keeps the oldest ones (a consumer sees a prefix, then a gap).
    #[default]
    DropNewest,
    /// Evict the oldest queued event to make room; the queue keeps the most recent ones (a consumer sees a gap, then the latest).
    DropOldest,
}

#[derive(Debug, Default)]
struct LaneStats {
    enqueued: AtomicU64,
    dropped: AtomicU64,
}

/// One subscriber's queue, as the subject sees it.
struct Lane<E> {
    id: SubscriptionId,
    tx: Sender<E>,
    /// A second receiver, used only to evict the oldest event under [`OverflowPolicy::DropOldest`].
    evict: Receiver<E>,
    policy: OverflowPolicy,
    stats: Arc<LaneStats>,
}

/// The subject's name in the sequence diagrams drawn from runs.
const SUBJECT: &str = "SyncSubject";

/// A subscriber's queue's name in the sequence diagrams drawn from runs (examples alias it).
fn queue(id: SubscriptionId) -> String {
    format!("queue {}", id.0)
}

impl<E> Lane<E> {
    /// Offers event number `n`; never blocks. Returns whether it was enqueued, and how many events were dropped.
    fn offer(&self, n: u64, event: E) -> (bool, u64) {
        let drawn = posa_seq::enabled();
        if drawn {
            seq!(SUBJECT => queue(self.id), "try_send(event {n})");
        }
        let mut event = match self.tx.try_send(event) {
            Ok(()) => return self.enqueued(0),
            // The lane holds a receiver itself, so the channel cannot be disconnected.
            Err(TrySendError::Full(event) | TrySendError::Disconnected(event)) => event,
        };
        if drawn {
            seq!(fail queue(self.id) => SUBJECT, "full");
        }
        match self.policy {
            OverflowPolicy::DropNewest => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                seq!(note SUBJECT, "DropNewest: event {n} refused, the drop counted");
                (false, 1)
            }
            OverflowPolicy::DropOldest => {
                if drawn {
                    seq!(SUBJECT => queue(self.id), "DropOldest: evict the oldest (the drop counted), try_send(event {n}) again");
                }
                let mut evicted = 0;
                // Each round either enqueues or evicts one event, and the queue is bounded, so this ends.
                loop {
                    if self.evict.try_recv().is_ok() {
                        evicted += 1;
                        self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                    match self.tx.try_send(event) {
                        Ok(()) => return self.enqueued(evicted),
                        Err(TrySendError::Full(e) | TrySendError::Disconnected(e)) => event = e,
                    }
                }
            }
        }
    }

    fn enqueued(&self, dropped: u64) -> (bool, u64) {
        self.stats.enqueued.fetch_add(1, Ordering::Relaxed);
        (true, dropped)
    }
}

struct SyncRegistry<E> {
    next_id: AtomicU64,
    /// Events published so far: their numbers in the sequence diagrams drawn from runs.
    published: AtomicU64,
    /// Copy-on-write, as in the single-threaded subject: publishers clone the `Arc` and release the lock before offering.
    lanes: Mutex<Arc<Vec<Arc<Lane<E>>>>>,
}

trait SyncDetach: Send + Sync {
    fn detach(&self, id: SubscriptionId) -> bool;
    fn contains(&self, id: SubscriptionId) -> bool;
}

impl<E: Send> SyncDetach for SyncRegistry<E> {
    fn detach(&self, id: SubscriptionId) -> bool {
        let mut lanes = self.lanes.lock();
        match lanes.iter().position(|l| l.id == id) {
            Some(pos) => {
                Arc::make_mut(&mut lanes).remove(pos);
                true
            }
            None => false,
        }
    }

    fn contains(&self, id: SubscriptionId) -> bool {
        self.lanes.lock().iter().any(|l| l.id == id)
    }
}

/// What one [`SyncSubject::publish`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PublishReport {
    /// Subscribers whose queue took the event.
    pub enqueued: usize,
    /// Events dropped by overflow policies during this publish (the new one refused, or old ones evicted).
    pub dropped: u64,
}

/// A subject that may be shared between threads.
///
/// Each subscriber owns a bounded queue.
/// [`publish`](Self::publish) clones the event into every queue with a non-blocking send and applies the subscriber's [`OverflowPolicy`] when a queue is full;
/// it calls no observer code and holds its lock only to copy the list of queues.
/// Observers consume their queue either by pulling from a [`Mailbox`] or on a dedicated thread ([`Worker`]).
///
/// # Delivery guarantees
///
/// * Each subscriber sees events from one publishing thread in the order they were published.
/// * Events are lost only when that subscriber's own queue is full, and every loss is counted.
/// * A subscription made before a publish starts receives it (unless it overflows); one ended before a publish starts does not.
///   A publish racing with (un)subscription may or may not reach that subscriber.
///
/// ```
/// use gof_behavioral::observer::{OverflowPolicy, SyncSubject};
///
/// let subject = SyncSubject::default();
/// let mailbox = subject.subscribe_mailbox(2, OverflowPolicy::DropOldest);
/// let publisher = subject.clone();
/// std::thread::spawn(move || {
///     for reading in 1..=3 {
///         publisher.publish(reading);
///     }
/// })
/// .join()
/// .unwrap();
/// assert_eq!(mailbox.try_iter().collect::<Vec<_>>(), [2, 3]);
/// assert_eq!(mailbox.dropped(), 1);
/// ```
pub struct SyncSubject<E> {
    registry: Arc<SyncRegistry<E>>,
}

impl<E> Clone for SyncSubject<E> {
    fn clone(&self) -> Self {
        Self {
            registry: Arc::clone(&self.registry),
        }
    }
}

impl<E> Default for SyncSubject<E> {
    fn default() -> Self {
        Self {
            registry: Arc::new(SyncRegistry {
                next_id: AtomicU64::new(0),
                published: AtomicU64::new(0),
                lanes: Mutex::new(Arc::new(Vec::new())),
            }),
        }
    }
}

impl<E> fmt::Debug for SyncSubject<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncSubject")
            .field("subscribers", &self.registry.lanes.lock().len())
            .finish()
    }
}

impl<E: Clone + Send + 'static> SyncSubject<E> {
    /// Delivers `event` to every subscriber's queue without blocking.
    pub fn publish(&self, event: E) -> PublishReport {
        let n = self.registry.published.fetch_add(1, Ordering::Relaxed) + 1;
        seq!(posa_seq::THREAD => SUBJECT, "publish(event {n})");
        let lanes = Arc::clone(&self.registry.lanes.lock());
        let mut report = PublishReport::default();
        for lane in lanes.iter() {
            let (enqueued, dropped) = lane.offer(n, event.clone());
            report.enqueued += usize::from(enqueued);
            report.dropped += dropped;
        }
        seq!(
            reply SUBJECT => posa_seq::THREAD,
            "{report:?}, never blocked"
        );
        report
    }

    /// How many subscribers there are.
    pub fn subscriber_count(&self) -> usize {
        self.registry.lanes.lock().len()
    }

    fn add_lane(
        &self,
        capacity: usize,
        policy: OverflowPolicy,
    ) -> (SyncSubscription, Receiver<E>, Arc<LaneStats>) {
        assert!(
            capacity > 0,
            "a subscriber queue needs room for at least one event"
        );
        let (tx, rx) = crossbeam_channel::bounded(capacity);
        let id = SubscriptionId(self.registry.next_id.fetch_add(1, Ordering::Relaxed));
        let stats = Arc::new(LaneStats::default());
        let lane = Arc::new(Lane {
            id,
            tx,
            evict: rx.clone(),
            policy,
            stats: Arc::clone(&stats),
        });
        Arc::make_mut(&mut self.registry.lanes.lock()).push(lane);
        let registry: Arc<dyn SyncDetach> = self.registry.clone();
        let sub = SyncSubscription {
            id,
            registry: Some(Arc::downgrade(&registry)),
        };
        (sub, rx, stats)
    }

    /// Subscribes a queue of `capacity` events that the caller drains.
    ///
    /// # Panics
    ///
    /// If `capacity` is zero.
    pub fn subscribe_mailbox(&self, capacity: usize, policy: OverflowPolicy) -> Mailbox<E> {
        let (subscription, rx, stats) = self.add_lane(capacity, policy);
        Mailbox {
            rx,
            stats,
            subscription,
        }
    }

    /// Subscribes `observer`, run on a thread of its own that drains a queue of `capacity` events.
    ///
    /// The callback may publish to, subscribe to and unsubscribe from this subject, itself included.
    ///
    /// ```
    /// use gof_behavioral::observer::{OverflowPolicy, SyncSubject};
    ///
    /// let subject = SyncSubject::default();
    /// let (tx, rx) = crossbeam_channel::unbounded();
    /// let worker = subject.subscribe_worker(8, OverflowPolicy::DropNewest, move |t: u32| {
    ///     tx.send(t * 2).unwrap();
    /// });
    /// subject.publish(21);
    /// assert_eq!(rx.recv(), Ok(42));
    /// worker.unsubscribe().unwrap();
    /// ```
    ///
    /// # Panics
    ///
    /// If `capacity` is zero, or the thread cannot be spawned.
    pub fn subscribe_worker<F>(
        &self,
        capacity: usize,
        policy: OverflowPolicy,
        mut observer: F,
    ) -> Worker
    where
        F: FnMut(E) + Send + 'static,
    {
        let (subscription, rx, stats) = self.add_lane(capacity, policy);
        let id = subscription.id;
        let handle = thread::Builder::new()
            .name(format!("observer-{}", id.0))
            .spawn(move || {
                // Ends once the lane, and with it the last sender, is gone.
                for event in rx.iter() {
                    seq!(reply queue(id) => posa_seq::THREAD, "the oldest queued event");
                    observer(event);
                }
            })
            .expect("spawn observer worker thread");
        Worker {
            subscription: Some(subscription),
            thread: handle.thread().id(),
            handle: Some(handle),
            stats,
        }
    }
}

/// A live subscription to a [`SyncSubject`]; dropping it ends it. It may be sent to and dropped on any thread.
#[must_use = "dropping a SyncSubscription unsubscribes at once"]
pub struct SyncSubscription {
    id: SubscriptionId,
    registry: Option<Weak<dyn SyncDetach>>,
}

impl SyncSubscription {
    /// This subscription's id.
    pub fn id(&self) -> SubscriptionId {
        self.id
    }

    /// Whether the subject exists and still has this subscriber.
    pub fn is_active(&self) -> bool {
        self.registry
            .as_ref()
            .and_then(Weak::upgrade)
            .is_some_and(|reg| reg.contains(self.id))
    }

    /// Ends the subscription now; returns whether it was still live.
    pub fn unsubscribe(mut self) -> bool {
        self.end()
    }

    fn end(&mut self) -> bool {
        match self.registry.take().and_then(|w| w.upgrade()) {
            Some(reg) => reg.detach(self.id),
            None => false,
        }
    }
}

impl Drop for SyncSubscription {
    fn drop(&mut self) {
        self.end();
    }
}

impl fmt::Debug for SyncSubscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncSubscription")
            .field("id", &self.id)
            .finish()
    }
}

/// A subscriber's bounded queue, drained by its owner; dropping it unsubscribes.
pub struct Mailbox<E> {
    rx: Receiver<E>,
    stats: Arc<LaneStats>,
    subscription: SyncSubscription,
}

impl<E> Mailbox<E> {
    /// Waits for the next event; `None` once unsubscribed (or the subject is gone) and the queue is empty.
    pub fn recv(&self) -> Option<E> {
        self.rx.recv().ok()
    }

    /// The next queued event, if any, without waiting.
    pub fn try_recv(&self) -> Option<E> {
        self.rx.try_recv().ok()
    }

    /// Drains the queued events without waiting.
    pub fn try_iter(&self) -> impl Iterator<Item = E> + '_ {
        self.rx.try_iter()
    }

    /// How many events are queued.
    pub fn len(&self) -> usize {
        self.rx.len()
    }

    /// Whether no event is queued.
    pub fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }

    /// Events lost to the overflow policy so far.
    pub fn dropped(&self) -> u64 {
        self.stats.dropped.load(Ordering::Relaxed)
    }

    /// Events that entered the queue so far.
    pub fn enqueued(&self) -> u64 {
        self.stats.enqueued.load(Ordering::Relaxed)
    }

    /// The subscription behind this mailbox.
    pub fn subscription(&self) -> &SyncSubscription {
        &self.subscription
    }
}

impl<E> fmt::Debug for Mailbox<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailbox")
            .field("id", &self.subscription.id)
            .field("queued", &self.rx.len())
            .field("dropped", &self.dropped())
            .finish()
    }
}

/// An observer running on its own thread, fed by a bounded queue.
///
/// Dropping a `Worker` ends the subscription without waiting; the thread finishes the events already queued and exits.
/// [`unsubscribe`](Self::unsubscribe) also waits for it (except when called on the worker's own thread, where waiting would deadlock).
pub struct Worker {
    subscription: Option<SyncSubscription>,
    thread: ThreadId,
    handle: Option<JoinHandle<()>>,
    stats: Arc<LaneStats>,
}

impl Worker {
    /// Events lost to the overflow policy so far.
    pub fn dropped(&self) -> u64 {
        self.stats.dropped.load(Ordering::Relaxed)
    }

    /// Events that entered the queue so far.
    pub fn enqueued(&self) -> u64 {
        self.stats.enqueued.load(Ordering::Relaxed)
    }

    /// Whether the subscription is still live.
    pub fn is_active(&self) -> bool {
        self.subscription
            .as_ref()
            .is_some_and(SyncSubscription::is_active)
    }

    /// Ends the subscription, then waits until the worker has handled every queued event and exited.
    ///
    /// Called from the worker's own callback, it ends the subscription and returns at once.
    ///
    /// # Errors
    ///
    /// [`Error::ObserverPanicked`] if the callback panicked.
    pub fn unsubscribe(mut self) -> Result<(), Error> {
        drop(self.subscription.take());
        let handle = self
            .handle
            .take()
            .expect("handle present until unsubscribe or drop");
        if thread::current().id() == self.thread {
            return Ok(());
        }
        handle.join().map_err(|_| Error::ObserverPanicked)
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        drop(self.subscription.take());
    }
}

impl fmt::Debug for Worker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Worker")
            .field("thread", &self.thread)
            .field("enqueued", &self.enqueued())
            .field("dropped", &self.dropped())
            .finish()
    }
}
