//! The single-threaded subject: observer kinds, guards and every re-entrancy case.

use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;

use gof_behavioral::observer::{Observer, Subject, Subscription};

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

fn recorder(subject: &Subject<u32>, log: &Log, name: &'static str) -> Subscription {
    let log = log.clone();
    subject.subscribe(move |e: &u32| log.push(format!("{name}:{e}")))
}

#[derive(Debug)]
struct Panel {
    name: &'static str,
    log: Log,
}

impl Observer<u32> for Panel {
    fn notify(&self, event: &u32) {
        self.log.push(format!("{}:{event}", self.name));
    }
}

#[test]
fn closures_trait_objects_and_channels_are_notified_in_subscription_order() {
    let subject = Subject::default();
    let log = Log::default();
    let _a = recorder(&subject, &log, "closure");
    let _b = subject.attach(Rc::new(Panel {
        name: "panel",
        log: log.clone(),
    }));
    let (_c, rx) = subject.subscribe_channel();
    subject.publish(1);
    subject.publish(2);
    assert_eq!(log.take(), ["closure:1", "panel:1", "closure:2", "panel:2"]);
    assert_eq!(rx.try_iter().collect::<Vec<_>>(), [1, 2]);
    assert_eq!(subject.observer_count(), 3);
}

#[test]
fn guards_end_subscriptions() {
    let subject = Subject::default();
    let log = Log::default();
    let a = recorder(&subject, &log, "a");
    let b = recorder(&subject, &log, "b");
    let kept = recorder(&subject, &log, "kept");
    assert!(a.is_active());
    kept.detach();
    drop(a);
    subject.publish(1);
    assert!(b.is_active());
    assert!(b.unsubscribe());
    subject.publish(2);
    assert_eq!(log.take(), ["b:1", "kept:1", "kept:2"]);
    assert_eq!(subject.observer_count(), 1);
}

#[test]
fn a_guard_may_outlive_its_subject() {
    let log = Log::default();
    let guard = {
        let subject = Subject::default();
        recorder(&subject, &log, "a")
    };
    assert!(!guard.is_active());
    assert!(!guard.unsubscribe());
}

#[test]
fn subscribing_inside_a_notification_takes_effect_from_the_next_event() {
    let subject = Subject::default();
    let log = Log::default();
    let late: Rc<RefCell<Option<Subscription>>> = Rc::default();
    let (s, l, slot) = (subject.clone(), log.clone(), Rc::clone(&late));
    let _adder = subject.subscribe(move |e: &u32| {
        if *e == 1 {
            *slot.borrow_mut() = Some(recorder(&s, &l, "late"));
        }
    });
    subject.publish(1);
    subject.publish(2);
    assert_eq!(log.take(), ["late:2"]);
    assert!(late.borrow().as_ref().unwrap().is_active());
}

#[test]
fn unsubscribing_another_observer_inside_a_notification_stops_it_at_once() {
    let subject = Subject::default();
    let log = Log::default();
    let victim_slot: Rc<RefCell<Option<Subscription>>> = Rc::default();
    let slot = Rc::clone(&victim_slot);
    let _killer = subject.subscribe(move |_: &u32| {
        slot.borrow_mut().take();
    });
    // Subscribed after the killer, so it is later in the snapshot of the event in progress.
    *victim_slot.borrow_mut() = Some(recorder(&subject, &log, "victim"));
    subject.publish(1);
    subject.publish(2);
    assert_eq!(log.take(), Vec::<String>::new());
    assert_eq!(subject.observer_count(), 1);
}

#[test]
fn an_observer_can_unsubscribe_itself() {
    let subject = Subject::default();
    let log = Log::default();
    let own: Rc<RefCell<Option<Subscription>>> = Rc::default();
    let (slot, l) = (Rc::clone(&own), log.clone());
    *own.borrow_mut() = Some(subject.subscribe(move |e: &u32| {
        l.push(format!("once:{e}"));
        // Dropping its own guard, from inside its own call.
        drop(slot.borrow_mut().take());
    }));
    let _other = recorder(&subject, &log, "other");
    subject.publish(1);
    subject.publish(2);
    assert_eq!(log.take(), ["once:1", "other:1", "other:2"]);
    assert_eq!(subject.observer_count(), 1);
}

#[test]
fn a_nested_publish_is_queued_so_every_observer_sees_the_same_order() {
    let subject = Subject::default();
    let log = Log::default();
    let s = subject.clone();
    let _echo = subject.subscribe(move |e: &u32| {
        if *e < 3 {
            s.publish(e + 1);
        }
    });
    let _a = recorder(&subject, &log, "a");
    let _b = recorder(&subject, &log, "b");
    subject.publish(1);
    assert_eq!(log.take(), ["a:1", "b:1", "a:2", "b:2", "a:3", "b:3"]);
    assert!(!subject.is_dispatching());
}

#[test]
fn nested_publishes_never_recurse() {
    let subject = Subject::default();
    let depth = Rc::new(Cell::new(0u32));
    let max_depth = Rc::new(Cell::new(0u32));
    let count = Rc::new(Cell::new(0u32));
    let (s, d, m, c) = (
        subject.clone(),
        depth.clone(),
        max_depth.clone(),
        count.clone(),
    );
    let _chain = subject.subscribe(move |e: &u32| {
        d.set(d.get() + 1);
        m.set(m.get().max(d.get()));
        c.set(c.get() + 1);
        if *e > 0 {
            s.publish(e - 1);
        }
        d.set(d.get() - 1);
    });
    // Deep enough to overflow the stack if publishing recursed.
    subject.publish(100_000);
    assert_eq!(count.get(), 100_001);
    assert_eq!(max_depth.get(), 1);
}

#[test]
fn a_channel_observer_ends_when_its_receiver_is_dropped() {
    let subject = Subject::default();
    let (guard, rx) = subject.subscribe_channel();
    subject.publish(1);
    drop(rx);
    assert_eq!(subject.observer_count(), 1);
    subject.publish(2); // the failed send closes the observer
    assert_eq!(subject.observer_count(), 0);
    assert!(!guard.is_active());
}

#[derive(Debug, Default)]
struct Dashboard {
    seen: RefCell<Vec<String>>,
}

impl Observer<String> for Dashboard {
    fn notify(&self, event: &String) {
        self.seen.borrow_mut().push(event.clone());
    }
}

#[test]
fn one_observer_watches_several_subjects() {
    let boiler = Subject::default();
    let pump = Subject::default();
    let dashboard = Rc::new(Dashboard::default());
    let _g1 = boiler.attach(dashboard.clone());
    let _g2 = pump.attach(dashboard.clone());
    boiler.publish("boiler: 85 C".to_owned());
    pump.publish("pump: 3 bar".to_owned());
    boiler.publish("boiler: 90 C".to_owned());
    assert_eq!(
        *dashboard.seen.borrow(),
        ["boiler: 85 C", "pump: 3 bar", "boiler: 90 C"]
    );
}

/// A callback shared by the subscriptions of two subjects.
type Forward = Rc<dyn Fn(&str, u32)>;

#[test]
fn an_observer_reentered_through_another_subject_is_safe() {
    let a: Subject<u32> = Subject::default();
    let b: Subject<u32> = Subject::default();
    let log = Log::default();
    // One closure, shared by both subjects; on `a` it forwards to `b`, which calls it again while its first call is running.
    let shared: Forward = {
        let (b, log) = (b.clone(), log.clone());
        Rc::new(move |from: &str, e: u32| {
            log.push(format!("{from}:{e}"));
            if from == "a" {
                b.publish(e * 10);
            }
        })
    };
    let f = Rc::clone(&shared);
    let _ga = a.subscribe(move |e: &u32| f("a", *e));
    let f = Rc::clone(&shared);
    let _gb = b.subscribe(move |e: &u32| f("b", *e));
    a.publish(4);
    assert_eq!(log.take(), ["a:4", "b:40"]);
}

#[test]
fn a_panicking_observer_leaves_the_subject_usable() {
    let subject = Subject::default();
    let log = Log::default();
    let s = subject.clone();
    let _bomb = subject.subscribe(move |e: &u32| {
        if *e == 1 {
            s.publish(2); // queued before the panic
            panic!("observer failure");
        }
    });
    let _a = recorder(&subject, &log, "a");
    let result = catch_unwind(AssertUnwindSafe(|| subject.publish(1)));
    assert!(result.is_err());
    assert!(!subject.is_dispatching());
    // The queued event was kept and goes out with the next publish.
    subject.publish(3);
    assert_eq!(log.take(), ["a:2", "a:3"]);
}
