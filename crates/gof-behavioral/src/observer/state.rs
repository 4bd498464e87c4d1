//! The subject as the course draws it: a concrete subject that owns state and notifies its observers when that state changes, by push or by pull.

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

use super::subject::{Observer, Subject, Subscription};

/// What a push-model observer receives: the state before and after one change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change<S> {
    /// The state before the change.
    pub old: S,
    /// The state after the change.
    pub new: S,
}

/// One notification as it travels through the subject's observer list: the change and a handle to the subject, so push and pull observers share one list and one order.
struct Update<S> {
    change: Change<S>,
    subject: StateSubject<S>,
}

struct Inner<S> {
    state: RefCell<S>,
    observers: Subject<Update<S>>,
}

/// A concrete subject (the GoF *ConcreteSubject*): it owns a state, and every [`set`](Self::set) that changes the state notifies every observer.
///
/// Observers choose their model when they subscribe:
///
/// * **push** ([`observe_changes`](Self::observe_changes)): the subject sends each [`Change`], old and new state, so observers need not know the subject;
/// * **pull** ([`observe`](Self::observe)): the subject sends only a reference to itself, and each observer queries what it needs ([`get`](Self::get), [`with`](Self::with)).
///
/// A `set` to a value equal to the current state notifies nobody.
/// Notification uses [`Subject`] underneath, so the same rules hold: no borrow is held while an observer runs, an observer added during a notification sees only later changes,
/// one removed is never called again, and a `set` from inside a notification is delivered after the current change has reached every observer.
/// Push observers therefore see every change in order; a pull observer reads the state as it is when it is called, which after such a nested `set` is already the newer state.
///
/// `StateSubject` is a cheap handle: clones share the state and the observers.
///
/// ```
/// use std::cell::RefCell;
/// use std::rc::Rc;
/// use gof_behavioral::observer::StateSubject;
///
/// let setpoint = StateSubject::new(20);
/// let pushed = Rc::new(RefCell::new(Vec::new()));
/// let pulled = Rc::new(RefCell::new(Vec::new()));
/// let log = Rc::clone(&pushed);
/// let _push = setpoint.observe_changes(move |c| log.borrow_mut().push((c.old, c.new)));
/// let log = Rc::clone(&pulled);
/// let _pull = setpoint.observe(move |s: &StateSubject<i32>| log.borrow_mut().push(s.get()));
///
/// assert!(setpoint.set(22));
/// assert!(!setpoint.set(22)); // no change, no notification
/// assert_eq!(*pushed.borrow(), [(20, 22)]);
/// assert_eq!(*pulled.borrow(), [22]);
/// ```
pub struct StateSubject<S> {
    inner: Rc<Inner<S>>,
}

impl<S> Clone for StateSubject<S> {
    fn clone(&self) -> Self {
        StateSubject {
            inner: Rc::clone(&self.inner),
        }
    }
}

impl<S: Default + 'static> Default for StateSubject<S> {
    fn default() -> Self {
        StateSubject::new(S::default())
    }
}

impl<S: fmt::Debug + 'static> fmt::Debug for StateSubject<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("StateSubject");
        match self.inner.state.try_borrow() {
            Ok(state) => d.field("state", &*state),
            Err(_) => d.field("state", &"<borrowed>"),
        };
        d.field("observers", &self.inner.observers.observer_count())
            .finish()
    }
}

thread_local! {
    /// The kind of observer being notified on this thread, for the sequence diagrams drawn
    /// from runs (who calls `get` or `set` from inside a notification).
    static NOTIFYING: std::cell::Cell<Option<&'static str>> = const { std::cell::Cell::new(None) };
}

/// Runs a notification of a `kind` observer, drawn as such.
fn drawn_notify(kind: &'static str, notify: impl FnOnce()) {
    seq!("StateSubject" => kind, "notify({})", if kind == "push observer" { "&Change" } else { "&subject" });
    let outer = NOTIFYING.with(|n| n.replace(Some(kind)));
    notify();
    NOTIFYING.with(|n| n.set(outer));
}

/// Who calls the subject: the observer being notified on this thread, or the thread itself.
fn caller() -> &'static str {
    NOTIFYING.with(|n| n.get()).unwrap_or("@thread")
}

/// A push-model observer given as an `Rc<dyn Observer<Change<S>>>`.
struct Push<S>(Rc<dyn Observer<Change<S>>>);

impl<S> Observer<Update<S>> for Push<S> {
    fn notify(&self, update: &Update<S>) {
        drawn_notify("push observer", || self.0.notify(&update.change));
    }

    fn is_closed(&self) -> bool {
        self.0.is_closed()
    }
}

/// A pull-model observer given as an `Rc<dyn Observer<StateSubject<S>>>`.
struct Pull<S>(Rc<dyn Observer<StateSubject<S>>>);

impl<S> Observer<Update<S>> for Pull<S> {
    fn notify(&self, update: &Update<S>) {
        drawn_notify("pull observer", || self.0.notify(&update.subject));
    }

    fn is_closed(&self) -> bool {
        self.0.is_closed()
    }
}

impl<S: 'static> StateSubject<S> {
    /// A subject holding `initial`, with no observers.
    pub fn new(initial: S) -> Self {
        StateSubject {
            inner: Rc::new(Inner {
                state: RefCell::new(initial),
                observers: Subject::quiet(),
            }),
        }
    }

    /// A copy of the current state (the pull model's query).
    pub fn get(&self) -> S
    where
        S: Clone,
    {
        let who = caller();
        seq!(who => "StateSubject", "get()");
        let state = self.inner.state.borrow().clone();
        seq!(reply "StateSubject" => who, "a copy of the state");
        state
    }

    /// Calls `f` with a reference to the current state and returns its result.
    ///
    /// # Panics
    ///
    /// If `f` calls [`set`](Self::set) on this subject: the state is borrowed while `f` runs.
    pub fn with<R>(&self, f: impl FnOnce(&S) -> R) -> R {
        f(&self.inner.state.borrow())
    }

    /// Replaces the state with `new` and notifies every observer, unless `new` equals the current state; returns whether it changed.
    ///
    /// The borrow of the state is released before any observer runs, so observers may read it and may `set` it again.
    pub fn set(&self, new: S) -> bool
    where
        S: PartialEq + Clone,
    {
        let who = caller();
        seq!(who => "StateSubject", "set(new)");
        let old = {
            let mut state = self.inner.state.borrow_mut();
            if *state == new {
                seq!(reply "StateSubject" => who, "false: unchanged, nobody notified");
                return false;
            }
            std::mem::replace(&mut *state, new.clone())
        };
        seq!(note "StateSubject", "state changed: store it, release the borrow, notify in order");
        self.inner.observers.publish(Update {
            change: Change { old, new },
            subject: self.clone(),
        });
        seq!(reply "StateSubject" => who, "true");
        true
    }

    /// Subscribes a push-model closure: it receives each [`Change`].
    pub fn observe_changes<F: Fn(&Change<S>) + 'static>(&self, f: F) -> Subscription {
        self.inner
            .observers
            .subscribe(move |u: &Update<S>| drawn_notify("push observer", || f(&u.change)))
    }

    /// Attaches a push-model observer object: it receives each [`Change`].
    pub fn attach_changes(&self, observer: Rc<dyn Observer<Change<S>>>) -> Subscription {
        self.inner.observers.attach(Rc::new(Push(observer)))
    }

    /// Subscribes a pull-model closure: it receives this subject and queries it.
    pub fn observe<F: Fn(&StateSubject<S>) + 'static>(&self, f: F) -> Subscription {
        self.inner
            .observers
            .subscribe(move |u: &Update<S>| drawn_notify("pull observer", || f(&u.subject)))
    }

    /// Attaches a pull-model observer object: it receives this subject and queries it.
    pub fn attach(&self, observer: Rc<dyn Observer<StateSubject<S>>>) -> Subscription {
        self.inner.observers.attach(Rc::new(Pull(observer)))
    }

    /// How many observers this subject notifies directly: all it knows of what a change costs.
    pub fn observer_count(&self) -> usize {
        self.inner.observers.observer_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn a_set_that_changes_nothing_notifies_nobody() {
        let s = StateSubject::new(5);
        let calls = Rc::new(Cell::new(0));
        let c = Rc::clone(&calls);
        let _push = s.observe_changes(move |_| c.set(c.get() + 1));
        let c = Rc::clone(&calls);
        let _pull = s.observe(move |_| c.set(c.get() + 1));
        assert!(!s.set(5));
        assert_eq!(calls.get(), 0);
        assert!(s.set(6));
        assert_eq!(calls.get(), 2);
        assert_eq!(s.get(), 6);
    }

    #[test]
    fn observers_may_read_the_state_during_a_notification() {
        let s = StateSubject::new(String::from("idle"));
        let seen = Rc::new(RefCell::new(String::new()));
        let out = Rc::clone(&seen);
        let _pull = s.observe(move |s: &StateSubject<String>| {
            s.with(|state| out.borrow_mut().push_str(state))
        });
        s.set("running".into());
        assert_eq!(*seen.borrow(), "running");
    }
}
