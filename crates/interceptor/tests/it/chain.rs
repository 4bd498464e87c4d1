//! Ordering, vetoes, run-time registration and removal, contained panics, many threads.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use interceptor::{Dispatcher, Interceptor, Outcome, Verdict, from_fn};
use parking_lot::Mutex;

/// A context object that records who saw it.
#[derive(Debug, Default)]
struct Seen(Vec<&'static str>);

fn note(name: &'static str) -> impl Interceptor<Seen> {
    from_fn(name, move |s: &mut Seen| {
        s.0.push(name);
        Verdict::Continue
    })
}

#[test]
fn interceptors_run_by_order_then_by_registration() {
    let d: Dispatcher<Seen> = Dispatcher::new("p");
    d.register(20, note("c"));
    d.register(10, note("a"));
    d.register(20, note("d"));
    d.register(10, note("b"));
    d.register(-5, note("first"));
    let mut s = Seen::default();
    assert_eq!(d.dispatch(&mut s), Outcome::Completed);
    assert_eq!(s.0, ["first", "a", "b", "c", "d"]);
    let names: Vec<String> = d.names().iter().map(|(_, _, n)| n.to_string()).collect();
    assert_eq!(names, ["first", "a", "b", "c", "d"]);
}

#[test]
fn a_veto_short_circuits_the_rest_of_the_chain_and_is_counted() {
    let d: Dispatcher<Seen> = Dispatcher::new("p");
    d.register(1, note("a"));
    d.register(
        2,
        from_fn("gate", |s: &mut Seen| {
            s.0.push("gate");
            Verdict::Stop
        }),
    );
    d.register(3, note("never"));
    let mut s = Seen::default();
    match d.dispatch(&mut s) {
        Outcome::Vetoed { by } => assert_eq!(&*by, "gate"),
        other => panic!("expected a veto, got {other:?}"),
    }
    assert_eq!(s.0, ["a", "gate"]);
    assert_eq!(d.counters().vetoed, 1);
}

#[test]
fn a_change_to_the_context_is_seen_by_later_interceptors() {
    let d: Dispatcher<String> = Dispatcher::new("p");
    d.register(
        1,
        from_fn("redact", |m: &mut String| {
            *m = m.replace("secret", "***");
            Verdict::Continue
        }),
    );
    let later = Arc::new(Mutex::new(String::new()));
    let l = Arc::clone(&later);
    d.register(
        2,
        from_fn("audit", move |m: &mut String| {
            *l.lock() = m.clone();
            Verdict::Continue
        }),
    );
    let mut msg = "pw secret".to_owned();
    let _ = d.dispatch(&mut msg);
    assert_eq!(msg, "pw ***");
    assert_eq!(*later.lock(), "pw ***");
}

#[test]
fn registration_and_removal_at_run_time_apply_from_the_next_event() {
    let d: Dispatcher<Seen> = Dispatcher::new("p");
    let a = d.register(1, note("a"));
    let mut s = Seen::default();
    let _ = d.dispatch(&mut s);
    let b = d.register(2, note("b"));
    let _ = d.dispatch(&mut s);
    assert!(d.remove(a).is_some());
    assert!(d.remove(a).is_none(), "a registration is removed once");
    let _ = d.dispatch(&mut s);
    assert_eq!(s.0, ["a", "a", "b", "b"]);
    assert!(d.remove(b).is_some());
    assert!(d.is_empty());
    let _ = d.dispatch(&mut s);
    assert_eq!(s.0.len(), 4);
}

#[test]
fn an_interceptor_may_remove_itself_and_register_another_while_the_chain_runs() {
    let d: Arc<Dispatcher<Seen>> = Arc::new(Dispatcher::new("p"));
    let me = Arc::new(Mutex::new(None));
    let (d2, me2) = (Arc::clone(&d), Arc::clone(&me));
    let id = d.register(
        1,
        from_fn("once", move |s: &mut Seen| {
            s.0.push("once");
            if let Some(id) = me2.lock().take() {
                d2.remove(id);
                d2.register(5, note("successor"));
            }
            Verdict::Continue
        }),
    );
    *me.lock() = Some(id);
    d.register(3, note("tail"));
    let mut s = Seen::default();
    let _ = d.dispatch(&mut s);
    // The running dispatch keeps its snapshot; the change shows in the next one.
    assert_eq!(s.0, ["once", "tail"]);
    let _ = d.dispatch(&mut s);
    assert_eq!(s.0, ["once", "tail", "tail", "successor"]);
}

#[test]
fn a_panicking_interceptor_is_removed_and_counted_and_the_event_goes_on() {
    let d: Dispatcher<Seen> = Dispatcher::new("p");
    d.register(1, note("a"));
    d.register(
        2,
        from_fn("buggy", |s: &mut Seen| {
            s.0.push("buggy");
            panic!("index out of range in buggy");
        }),
    );
    d.register(3, note("c"));
    let mut s = Seen::default();
    assert_eq!(d.dispatch(&mut s), Outcome::Completed);
    assert_eq!(s.0, ["a", "buggy", "c"]);
    assert_eq!(d.counters().panicked, 1);
    let (name, message) = d.last_panic().expect("the panic is kept");
    assert_eq!(
        (&*name, message.as_str()),
        ("buggy", "index out of range in buggy")
    );
    let _ = d.dispatch(&mut s);
    assert_eq!(s.0, ["a", "buggy", "c", "a", "c"]);
    assert_eq!(d.len(), 2);
}

#[test]
fn replace_swaps_the_whole_chain_at_once() {
    let d: Dispatcher<Seen> = Dispatcher::new("p");
    d.register(1, note("old"));
    let new: Vec<(i32, Arc<dyn Interceptor<Seen>>)> =
        vec![(2, Arc::new(note("y"))), (1, Arc::new(note("x")))];
    let ids = d.replace(new);
    assert_eq!(ids.len(), 2);
    let mut s = Seen::default();
    let _ = d.dispatch(&mut s);
    assert_eq!(s.0, ["x", "y"]);
}

#[test]
fn many_threads_dispatch_while_another_changes_the_chain() {
    let d: Arc<Dispatcher<u64>> = Arc::new(Dispatcher::new("p"));
    let calls = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&calls);
    d.register(
        0,
        from_fn("count", move |_: &mut u64| {
            c.fetch_add(1, Ordering::Relaxed);
            Verdict::Continue
        }),
    );
    std::thread::scope(|scope| {
        for _ in 0..4 {
            let d = Arc::clone(&d);
            scope.spawn(move || {
                for i in 0..2_000u64 {
                    let mut x = i;
                    let _ = d.dispatch(&mut x);
                }
            });
        }
        let d = Arc::clone(&d);
        scope.spawn(move || {
            for _ in 0..500 {
                let id = d.register(1, from_fn("churn", |_: &mut u64| Verdict::Continue));
                assert!(d.remove(id).is_some());
            }
        });
    });
    // The counting interceptor was never removed: it saw every event.
    assert_eq!(calls.load(Ordering::Relaxed), 8_000);
    assert_eq!(d.len(), 1);
}
