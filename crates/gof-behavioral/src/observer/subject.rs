//! The single-threaded subject: observers as closures, trait objects and channels, subscriptions as guards.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::rc::{Rc, Weak};

use crossbeam_channel::{Receiver, Sender};

/// An observer of events of type `E` (the GoF *Observer* interface).
///
/// `notify` takes `&self`: the subject never borrows an observer mutably,
/// so one observer may watch several subjects and may be re-entered through another subject it watches.
/// Observers that keep state use interior mutability (`Cell`, `RefCell`) and release their own borrows before publishing.
pub trait Observer<E> {
    /// Called once for each event published while the subscription is live.
    fn notify(&self, event: &E);

    /// Whether this observer can take no more events.
    ///
    /// The subject checks after each notification and drops a closed observer, ending its subscription.
    /// Channel observers are closed once their receiver is gone.
    fn is_closed(&self) -> bool {
        false
    }
}

impl<E, O: Observer<E> + ?Sized> Observer<E> for Rc<O> {
    fn notify(&self, event: &E) {
        (**self).notify(event);
    }

    fn is_closed(&self) -> bool {
        (**self).is_closed()
    }
}

/// Identifies one subscription within its subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubscriptionId(pub(crate) u64);

/// A closure used as an observer.
struct FnObserver<F>(F);

impl<E, F: Fn(&E)> Observer<E> for FnObserver<F> {
    fn notify(&self, event: &E) {
        (self.0)(event);
    }
}

/// A channel used as an observer: each event is cloned into the channel.
struct ChannelObserver<E> {
    tx: Sender<E>,
    closed: Cell<bool>,
}

impl<E: Clone> Observer<E> for ChannelObserver<E> {
    fn notify(&self, event: &E) {
        if self.tx.send(event.clone()).is_err() {
            self.closed.set(true);
        }
    }

    fn is_closed(&self) -> bool {
        self.closed.get()
    }
}

struct Entry<E> {
    id: SubscriptionId,
    /// Cleared on unsubscribe, so that a snapshot taken earlier never calls a removed observer.
    active: Cell<bool>,
    observer: Rc<dyn Observer<E>>,
}

struct Registry<E> {
    next_id: u64,
    /// Copy-on-write: a dispatch holds an `Rc` to the list it started with,
    /// and (un)subscribing during that dispatch clones the list instead of mutating it.
    entries: Rc<Vec<Rc<Entry<E>>>>,
    /// Events published from inside a notification wait here until the current event has reached every observer,
    /// each with its number in publish order (for the sequence diagrams drawn from runs).
    pending: VecDeque<(u64, E)>,
    published: u64,
    dispatching: bool,
    /// The observer being notified, kept only while interaction events are recorded: the
    /// caller of a publish from inside a notification, in the diagrams.
    notifying: Option<SubscriptionId>,
    /// Emits no interaction events: the subject inside a [`StateSubject`](super::StateSubject),
    /// which draws its own.
    quiet: bool,
}

/// The subject's name in the sequence diagrams drawn from runs.
const SUBJECT: &str = "Subject";

/// An observer's name in the sequence diagrams drawn from runs (examples alias it).
fn participant(id: SubscriptionId) -> String {
    format!("observer {}", id.0)
}

impl<E> Registry<E> {
    fn remove(&mut self, id: SubscriptionId) -> bool {
        let Some(pos) = self.entries.iter().position(|e| e.id == id) else {
            return false;
        };
        self.entries[pos].active.set(false);
        Rc::make_mut(&mut self.entries).remove(pos);
        true
    }
}

/// Ends subscriptions; implemented by the registries of both subject flavours.
pub(crate) trait Detach {
    fn detach(&self, id: SubscriptionId) -> bool;
    fn contains(&self, id: SubscriptionId) -> bool;
}

impl<E> Detach for RefCell<Registry<E>> {
    fn detach(&self, id: SubscriptionId) -> bool {
        self.borrow_mut().remove(id)
    }

    fn contains(&self, id: SubscriptionId) -> bool {
        self.borrow().entries.iter().any(|e| e.id == id)
    }
}

/// The subject (the GoF *Subject*, also the publisher of publish-subscribe): it keeps observers and notifies each of every event.
///
/// `Subject` is a cheap handle: clones share the same observers, so an observer can hold a clone and publish from inside a notification.
///
/// # Re-entrancy
///
/// The subject never holds a `RefCell` borrow while it calls an observer: it takes a snapshot of the observer list, releases the borrow, then calls out.
/// From inside a notification an observer may therefore:
///
/// * **subscribe**: the new observer does not see the event being delivered, and sees every later one;
/// * **unsubscribe** any observer, itself included: an observer is never called after its unsubscription returns, not even for the event in progress;
/// * **publish**: the new event is queued and delivered once the current event has reached every observer,
///   so all observers see events in the same order and notifications never recurse (run-to-completion).
///
/// If an observer panics, the panic reaches the publisher; events queued by nested publishes stay queued and go out with the next publish.
///
/// ```
/// use std::cell::RefCell;
/// use std::rc::Rc;
/// use gof_behavioral::observer::Subject;
///
/// let subject = Subject::default();
/// let seen = Rc::new(RefCell::new(Vec::new()));
/// let log = Rc::clone(&seen);
/// let subscription = subject.subscribe(move |t: &i32| log.borrow_mut().push(*t));
///
/// subject.publish(21);
/// drop(subscription); // the guard ends the subscription
/// subject.publish(22);
/// assert_eq!(*seen.borrow(), [21]);
/// ```
pub struct Subject<E> {
    registry: Rc<RefCell<Registry<E>>>,
}

impl<E> Clone for Subject<E> {
    fn clone(&self) -> Self {
        Self {
            registry: Rc::clone(&self.registry),
        }
    }
}

impl<E> Default for Subject<E> {
    fn default() -> Self {
        Self {
            registry: Rc::new(RefCell::new(Registry {
                next_id: 0,
                entries: Rc::new(Vec::new()),
                pending: VecDeque::new(),
                published: 0,
                notifying: None,
                quiet: false,
                dispatching: false,
            })),
        }
    }
}

impl<E> fmt::Debug for Subject<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.registry.try_borrow() {
            Ok(reg) => f
                .debug_struct("Subject")
                .field("observers", &reg.entries.len())
                .field("queued", &reg.pending.len())
                .field("dispatching", &reg.dispatching)
                .finish(),
            Err(_) => f.write_str("Subject { <borrowed> }"),
        }
    }
}

/// Resets the dispatching flag (and the observer being notified) even if an observer panics.
struct DispatchGuard<'a, E>(&'a RefCell<Registry<E>>);

impl<E> Drop for DispatchGuard<'_, E> {
    fn drop(&mut self) {
        let mut reg = self.0.borrow_mut();
        reg.dispatching = false;
        reg.notifying = None;
    }
}

impl<E> Subject<E> {
    /// A subject that emits no interaction events, for a participant that draws its own.
    pub(crate) fn quiet() -> Self {
        let subject = Self::default();
        subject.registry.borrow_mut().quiet = true;
        subject
    }
}

impl<E: 'static> Subject<E> {
    /// Subscribes a closure; the subscription lasts as long as the returned guard.
    ///
    /// ```
    /// use std::cell::Cell;
    /// use std::rc::Rc;
    /// use gof_behavioral::observer::Subject;
    ///
    /// let subject = Subject::default();
    /// let count = Rc::new(Cell::new(0));
    /// let c = Rc::clone(&count);
    /// let _guard = subject.subscribe(move |_: &&str| c.set(c.get() + 1));
    /// subject.publish("door open");
    /// assert_eq!(count.get(), 1);
    /// ```
    pub fn subscribe<F: Fn(&E) + 'static>(&self, f: F) -> Subscription {
        self.attach(Rc::new(FnObserver(f)))
    }

    /// Subscribes an observer trait object.
    ///
    /// Pass a clone of the same `Rc` to several subjects to have one observer watch all of them.
    ///
    /// ```
    /// use std::cell::Cell;
    /// use std::rc::Rc;
    /// use gof_behavioral::observer::{Observer, Subject};
    ///
    /// #[derive(Debug, Default)]
    /// struct Counter(Cell<u32>);
    /// impl Observer<u8> for Counter {
    ///     fn notify(&self, _: &u8) { self.0.set(self.0.get() + 1) }
    /// }
    ///
    /// let (a, b) = (Subject::default(), Subject::default());
    /// let counter = Rc::new(Counter::default());
    /// let _ga = a.attach(counter.clone());
    /// let _gb = b.attach(counter.clone());
    /// a.publish(1);
    /// b.publish(2);
    /// assert_eq!(counter.0.get(), 2);
    /// ```
    pub fn attach(&self, observer: Rc<dyn Observer<E>>) -> Subscription {
        let mut reg = self.registry.borrow_mut();
        let id = SubscriptionId(reg.next_id);
        reg.next_id += 1;
        Rc::make_mut(&mut reg.entries).push(Rc::new(Entry {
            id,
            active: Cell::new(true),
            observer,
        }));
        drop(reg);
        let registry: Rc<dyn Detach> = self.registry.clone();
        Subscription {
            id,
            registry: Some(Rc::downgrade(&registry)),
        }
    }

    /// Subscribes a channel: every event is cloned into it.
    ///
    /// The subscription also ends by itself once the receiver is dropped (at the next event).
    ///
    /// ```
    /// use gof_behavioral::observer::Subject;
    ///
    /// let subject = Subject::default();
    /// let (_guard, rx) = subject.subscribe_channel();
    /// subject.publish(7_u16);
    /// assert_eq!(rx.try_recv(), Ok(7));
    /// ```
    pub fn subscribe_channel(&self) -> (Subscription, Receiver<E>)
    where
        E: Clone,
    {
        let (tx, rx) = crossbeam_channel::unbounded();
        let sub = self.attach(Rc::new(ChannelObserver {
            tx,
            closed: Cell::new(false),
        }));
        (sub, rx)
    }

    /// Notifies every observer of `event`, in subscription order.
    ///
    /// Called from inside a notification, it queues `event` behind the one being delivered and returns at once (see the type docs).
    pub fn publish(&self, event: E) {
        let (drawn, caller) = {
            let mut reg = self.registry.borrow_mut();
            let drawn = !reg.quiet && posa_seq::enabled();
            reg.published += 1;
            let n = reg.published;
            reg.pending.push_back((n, event));
            let caller = reg
                .notifying
                .filter(|_| drawn)
                .map_or_else(|| posa_seq::THREAD.to_owned(), participant);
            if drawn {
                seq!(caller => SUBJECT, "publish(event {n})");
            }
            if reg.dispatching {
                if drawn {
                    seq!(reply SUBJECT => caller, "queued behind the event in progress");
                }
                return;
            }
            reg.dispatching = true;
            (drawn, caller)
        };
        let _guard = DispatchGuard(&self.registry);
        loop {
            let (n, event, snapshot) = {
                let mut reg = self.registry.borrow_mut();
                match reg.pending.pop_front() {
                    Some((n, event)) => (n, event, Rc::clone(&reg.entries)),
                    None => {
                        if drawn {
                            seq!(reply SUBJECT => caller, "return (queue empty)");
                        }
                        return;
                    }
                }
            };
            if drawn {
                seq!(note SUBJECT, "event {n}: snapshot of {} observer(s), borrow released", snapshot.len());
            }
            // No borrow is held from here on: observers may (un)subscribe and publish.
            for entry in snapshot.iter() {
                if !entry.active.get() {
                    continue;
                }
                if drawn {
                    seq!(SUBJECT => participant(entry.id), "notify(event {n})");
                    self.registry.borrow_mut().notifying = Some(entry.id);
                }
                entry.observer.notify(&event);
                if drawn {
                    self.registry.borrow_mut().notifying = None;
                }
                if entry.observer.is_closed() {
                    self.registry.borrow_mut().remove(entry.id);
                }
            }
        }
    }

    /// How many observers are subscribed.
    pub fn observer_count(&self) -> usize {
        self.registry.borrow().entries.len()
    }

    /// Whether the subject is delivering an event right now (true only inside a notification).
    pub fn is_dispatching(&self) -> bool {
        self.registry.borrow().dispatching
    }
}

/// A live subscription; dropping it (or calling [`unsubscribe`](Self::unsubscribe)) ends it.
///
/// The guard holds only a weak reference: it does not keep the subject alive, and outliving the subject is harmless.
#[must_use = "dropping a Subscription unsubscribes at once; call `detach` to keep it for the subject's lifetime"]
pub struct Subscription {
    id: SubscriptionId,
    registry: Option<Weak<dyn Detach>>,
}

impl Subscription {
    /// This subscription's id.
    pub fn id(&self) -> SubscriptionId {
        self.id
    }

    /// Ends the subscription now; returns whether it was still live.
    pub fn unsubscribe(mut self) -> bool {
        self.end()
    }

    /// Whether the subscription is live: the subject exists and still notifies this observer.
    ///
    /// A detached subscription reports `false`: the guard no longer tracks it.
    pub fn is_active(&self) -> bool {
        self.registry
            .as_ref()
            .and_then(Weak::upgrade)
            .is_some_and(|reg| reg.contains(self.id))
    }

    /// Lets the subscription live as long as the subject, without a guard.
    pub fn detach(mut self) {
        self.registry = None;
    }

    fn end(&mut self) -> bool {
        match self.registry.take().and_then(|w| w.upgrade()) {
            Some(reg) => reg.detach(self.id),
            None => false,
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.end();
    }
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id)
            .field("detached", &self.registry.is_none())
            .finish()
    }
}
