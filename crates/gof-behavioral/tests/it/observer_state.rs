//! The concrete subject that owns state: push and pull models, no-change sets, re-entrancy, and the cost of one change.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use gof_behavioral::observer::{Change, Observer, StateSubject, Subscription};

/// A shared log that observers append to.
#[derive(Debug, Clone, Default)]
struct Log(Rc<RefCell<Vec<String>>>);

impl Log {
    fn push(&self, line: impl Into<String>) {
        self.0.borrow_mut().push(line.into());
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut self.0.borrow_mut())
    }
}

/// A push-model observer object: it is told the change and never sees the subject.
#[derive(Debug)]
struct ChangeDisplay {
    log: Log,
}

impl Observer<Change<i32>> for ChangeDisplay {
    fn notify(&self, c: &Change<i32>) {
        self.log.push(format!("push {} -> {}", c.old, c.new));
    }
}

/// A pull-model observer object: it is told only which subject changed, and asks it.
#[derive(Debug)]
struct StateQuery {
    log: Log,
}

impl Observer<StateSubject<i32>> for StateQuery {
    fn notify(&self, s: &StateSubject<i32>) {
        self.log.push(format!("pull {}", s.get()));
    }
}

#[test]
fn push_observers_receive_each_change_and_pull_observers_query_the_subject() {
    let s = StateSubject::new(1);
    let log = Log::default();
    let _push = s.attach_changes(Rc::new(ChangeDisplay { log: log.clone() }));
    let _pull = s.attach(Rc::new(StateQuery { log: log.clone() }));
    assert!(s.set(2));
    assert!(s.set(3));
    assert_eq!(
        log.take(),
        ["push 1 -> 2", "pull 2", "push 2 -> 3", "pull 3"]
    );
}

#[test]
fn a_set_to_the_current_state_notifies_no_observer_of_either_model() {
    let s = StateSubject::new(7);
    let log = Log::default();
    let _push = s.attach_changes(Rc::new(ChangeDisplay { log: log.clone() }));
    let _pull = s.attach(Rc::new(StateQuery { log: log.clone() }));
    assert!(!s.set(7));
    assert!(log.take().is_empty());
    assert!(s.set(8));
    assert!(!s.set(8));
    assert_eq!(log.take(), ["push 7 -> 8", "pull 8"]);
}

#[test]
fn observers_added_during_a_notification_see_only_later_changes() {
    let s = StateSubject::new(0);
    let log = Log::default();
    let late: Rc<RefCell<Option<Subscription>>> = Rc::default();
    let (slot, l, subject) = (Rc::clone(&late), log.clone(), s.clone());
    let _adder = s.observe_changes(move |c| {
        l.push(format!("adder {}", c.new));
        if slot.borrow().is_none() {
            let l = l.clone();
            *slot.borrow_mut() = Some(
                subject.observe(move |s: &StateSubject<i32>| l.push(format!("late {}", s.get()))),
            );
        }
    });
    s.set(1);
    assert_eq!(log.take(), ["adder 1"]);
    s.set(2);
    assert_eq!(log.take(), ["adder 2", "late 2"]);
}

#[test]
fn an_observer_removed_during_a_notification_is_not_called_for_it() {
    let s = StateSubject::new(0);
    let log = Log::default();
    let victim: Rc<RefCell<Option<Subscription>>> = Rc::default();
    let (slot, l) = (Rc::clone(&victim), log.clone());
    let _remover = s.observe_changes(move |c| {
        l.push(format!("remover {}", c.new));
        slot.borrow_mut().take();
    });
    let l = log.clone();
    *victim.borrow_mut() =
        Some(s.observe(move |s: &StateSubject<i32>| l.push(format!("victim {}", s.get()))));
    s.set(1);
    s.set(2);
    assert_eq!(log.take(), ["remover 1", "remover 2"]);
    assert_eq!(s.observer_count(), 1);
}

#[test]
fn a_set_inside_a_notification_reaches_push_observers_in_order_while_pull_observers_read_the_latest()
 {
    let s = StateSubject::new(0);
    let log = Log::default();
    // A clamp observer: a value above 10 is set back to 10 from inside the notification.
    let subject = s.clone();
    let _clamp = s.observe_changes(move |c: &Change<i32>| {
        if c.new > 10 {
            subject.set(10);
        }
    });
    let _push = s.attach_changes(Rc::new(ChangeDisplay { log: log.clone() }));
    let _pull = s.attach(Rc::new(StateQuery { log: log.clone() }));
    s.set(15);
    assert_eq!(
        log.take(),
        // The nested change waits for the first to reach everyone; the pull observer,
        // asking during the first notification, already sees the clamped state.
        ["push 0 -> 15", "pull 10", "push 15 -> 10", "pull 10"]
    );
    assert_eq!(s.get(), 10);
}

/// Observers may be blind to the cost of updates: one `set` on a subject with three
/// observers, each of which keeps a derived subject with its own observers, costs twelve
/// observer updates; the subject can report only its three.
#[test]
fn blind_to_the_costs_of_updates_one_set_triggers_a_cascade_of_twelve_updates() {
    let updates = Rc::new(Cell::new(0));
    let celsius = StateSubject::new(20);
    let mut keep = Vec::new();
    for scale in [1, 2, 3] {
        let derived = StateSubject::new(20 * scale);
        for _ in 0..3 {
            let u = Rc::clone(&updates);
            keep.push(derived.observe(move |_: &StateSubject<i32>| u.set(u.get() + 1)));
        }
        let u = Rc::clone(&updates);
        keep.push(celsius.observe_changes(move |c: &Change<i32>| {
            u.set(u.get() + 1);
            derived.set(c.new * scale);
        }));
    }
    assert_eq!(celsius.observer_count(), 3);
    assert!(celsius.set(21));
    assert_eq!(updates.get(), 3 + 3 * 3);

    // The same-looking call that leaves the state alone costs nothing.
    updates.set(0);
    assert!(!celsius.set(21));
    assert_eq!(updates.get(), 0);
}
