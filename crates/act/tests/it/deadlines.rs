//! Deadlines driven by a manual clock: an expired token completes with a timeout exactly once.

use std::sync::Arc;
use std::time::Duration;

use act::{ActError, Callbacks, Completion, CompletionQueue};
use parking_lot::Mutex;
use pattern_core::{Clock, ManualClock};

#[test]
fn a_callback_times_out_once_and_a_late_result_is_refused() {
    let clock = ManualClock::default();
    let callbacks = Callbacks::<&str>::with_clock(8, Arc::new(clock.clone()));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let token = callbacks
        .issue_with_timeout(Duration::from_secs(5), move |c| s.lock().push(c))
        .unwrap();
    assert_eq!(
        callbacks.next_deadline(),
        Some(clock.now() + Duration::from_secs(5))
    );

    clock.advance(Duration::from_millis(4_999));
    assert_eq!(callbacks.poll_expired(), 0, "not yet");
    clock.advance(Duration::from_millis(1));
    assert_eq!(callbacks.poll_expired(), 1, "due exactly at the deadline");
    for _ in 0..3 {
        clock.advance(Duration::from_secs(10));
        assert_eq!(callbacks.poll_expired(), 0);
    }
    assert_eq!(
        callbacks.complete(token, "late"),
        Err(ActError::Duplicate { token })
    );
    assert_eq!(*seen.lock(), vec![Completion::TimedOut]);
    assert_eq!(callbacks.next_deadline(), None);
}

#[test]
fn a_result_before_the_deadline_wins_and_nothing_fires_later() {
    let clock = ManualClock::default();
    let queue = CompletionQueue::<u8, u8>::with_clock(8, Arc::new(clock.clone()));
    let token = queue.issue_with_timeout(1, Duration::from_secs(1)).unwrap();
    queue.complete(token, 42).unwrap();
    clock.advance(Duration::from_secs(2));
    assert_eq!(queue.poll_expired(), 0);
    let events = queue.drain();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].completion, Completion::Done(42));
}

#[test]
fn many_deadlines_fire_in_order_each_once() {
    let clock = ManualClock::default();
    let queue = CompletionQueue::<u32, ()>::with_clock(1000, Arc::new(clock.clone()));
    // Deadlines 1..=100 ms in a scrambled issue order; every third one is cancelled.
    let mut tokens = Vec::new();
    for i in 0..100u32 {
        let ms = (i * 37) % 100 + 1;
        let t = queue
            .issue_with_timeout(ms, Duration::from_millis(u64::from(ms)))
            .unwrap();
        tokens.push((ms, t));
    }
    let mut cancelled = Vec::new();
    for (ms, t) in tokens.iter().step_by(3) {
        assert_eq!(queue.cancel(*t), Ok(*ms));
        cancelled.push(*ms);
    }
    let mut fired = Vec::new();
    for _ in 0..120 {
        clock.advance(Duration::from_millis(1));
        queue.poll_expired();
        fired.extend(queue.drain().into_iter().map(|e| {
            assert_eq!(e.completion, Completion::TimedOut);
            e.context
        }));
    }
    let mut want: Vec<u32> = (1..=100).filter(|ms| !cancelled.contains(ms)).collect();
    want.sort();
    assert_eq!(
        fired, want,
        "each live deadline fired once, in deadline order"
    );
    assert_eq!(queue.outstanding(), 0);
}

#[test]
fn the_report_shows_overdue_and_unbounded_tokens() {
    let clock = ManualClock::default();
    let queue = CompletionQueue::<&str, ()>::with_clock(8, Arc::new(clock.clone()));
    let forever = queue.issue("no deadline").unwrap();
    let soon = queue
        .issue_with_timeout("soon", Duration::from_secs(1))
        .unwrap();
    clock.advance(Duration::from_secs(2));
    let report = queue.report();
    assert_eq!(report.len(), 2);
    assert_eq!(
        report
            .overdue(clock.now())
            .map(|o| o.token)
            .collect::<Vec<_>>(),
        vec![soon]
    );
    assert_eq!(
        report.unbounded().map(|o| o.token).collect::<Vec<_>>(),
        vec![forever]
    );
}
