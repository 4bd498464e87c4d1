//! Object-reference ACTs: exactly one outcome, even when the service drops the token.

use std::sync::Arc;

use act::{Completion, ObjectAct};
use parking_lot::Mutex;

type Seen = Arc<Mutex<Vec<Completion<u8>>>>;

fn recorder() -> (Seen, impl FnOnce(Completion<u8>) + Send + 'static) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    (seen, move |c| s.lock().push(c))
}

#[test]
fn completed_on_another_thread() {
    let (seen, handler) = recorder();
    let act = ObjectAct::new(handler);
    std::thread::spawn(move || act.complete(5)).join().unwrap();
    assert_eq!(*seen.lock(), vec![Completion::Done(5)]);
}

#[test]
fn dropped_unused_means_abandoned_once() {
    let (seen, handler) = recorder();
    let act = ObjectAct::new(handler);
    std::thread::spawn(move || drop(act)).join().unwrap();
    assert_eq!(*seen.lock(), vec![Completion::Abandoned]);
}

#[test]
fn cancel_hands_the_handler_back_unrun() {
    let (seen, handler) = recorder();
    let act = ObjectAct::new(handler);
    let handler = act.cancel();
    assert!(seen.lock().is_empty());
    handler(Completion::TimedOut);
    assert_eq!(*seen.lock(), vec![Completion::TimedOut]);
}
