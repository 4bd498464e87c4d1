//! The Proactor-style executor: a pool runs blocking operations and posts each completion
//! with its ACT to the reactor, where the right completion handler runs.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use act::{Callbacks, Completion, CompletionToken};
use crossbeam_channel::unbounded;
use reactor::{Interest, ManualClock, Reactor, Remote};

use crate::proactor::{CompletionPort, Done, Executor, Tick};

#[test]
fn each_blocking_operation_completes_its_own_handler_on_the_reactor_thread() {
    let dir = std::env::temp_dir().join(format!("act-it-proactor-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..20 {
        std::fs::write(dir.join(format!("f{i}")), "x".repeat(i)).unwrap();
    }
    let directory: Arc<HashMap<String, usize>> =
        Arc::new((0..50).map(|i| (format!("host{i}"), i * 10)).collect());

    let callbacks = Callbacks::<usize>::with_limit(128);
    let mut reactor = Reactor::new().unwrap();
    let port = reactor
        .register(
            Box::new(CompletionPort::new(callbacks.clone())),
            Interest::NONE,
        )
        .unwrap();
    let remote = reactor.remote();
    let executor = Executor::new(4);
    let (seen, seen_rx) = unbounded();
    let reactor_thread = std::thread::current().id();

    for i in 0..70usize {
        let seen = seen.clone();
        let want = if i < 20 { i } else { (i - 20) * 10 };
        let token = callbacks
            .issue(move |c: Completion<usize>| {
                seen.send((
                    i,
                    c == Completion::Done(want),
                    std::thread::current().id() == reactor_thread,
                ))
                .unwrap();
            })
            .unwrap();
        if i < 20 {
            let path = dir.join(format!("f{i}"));
            executor.start(
                token,
                move || std::fs::read(path).unwrap().len(),
                &remote,
                port,
            );
        } else {
            let directory = directory.clone();
            let host = format!("host{}", i - 20);
            executor.start(token, move || directory[&host], &remote, port);
        }
    }
    drop(seen);
    reactor.serve().unwrap();
    drop(executor);
    let mut results: Vec<_> = seen_rx.iter().collect();
    results.sort();
    assert_eq!(results.len(), 70);
    for (i, right, on_reactor) in results {
        assert!(right, "operation {i} got its own result");
        assert!(
            on_reactor,
            "operation {i}'s handler ran on the reactor thread"
        );
    }
    assert!(callbacks.is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn forged_duplicate_and_lost_completions() {
    let clock = ManualClock::default();
    let callbacks = Callbacks::<u8>::with_clock(8, Arc::new(clock.clone()));
    let mut reactor = Reactor::new().unwrap();
    let port = CompletionPort::new(callbacks.clone());
    let rejected = port.rejected();
    let port = reactor.register(Box::new(port), Interest::NONE).unwrap();
    let remote = reactor.remote();
    let (seen, seen_rx) = unbounded();

    let s = seen.clone();
    let answered = callbacks
        .issue(move |c| s.send(("answered", c)).unwrap())
        .unwrap();
    let s = seen.clone();
    let _lost = callbacks
        .issue_with_timeout(Duration::from_secs(1), move |c| {
            s.send(("lost", c)).unwrap()
        })
        .unwrap();
    drop(seen);

    remote
        .notify(
            port,
            Box::new(Done {
                act: answered,
                result: 1u8,
            }),
        )
        .unwrap();
    remote
        .notify(
            port,
            Box::new(Done {
                act: answered,
                result: 2u8,
            }),
        )
        .unwrap();
    let forged = CompletionToken::from_raw(answered.to_raw() ^ (1 << 40));
    remote
        .notify(
            port,
            Box::new(Done {
                act: forged,
                result: 3u8,
            }),
        )
        .unwrap();
    clock.advance(Duration::from_secs(2));
    remote.notify(port, Box::new(Tick)).unwrap();
    reactor.serve().unwrap();
    // Whatever the port had not seen when the table emptied, it sees now.
    reactor.reset();
    reactor.handle_events(Some(Duration::ZERO)).unwrap();

    let got: Vec<_> = seen_rx.iter().collect();
    assert_eq!(
        got,
        vec![
            ("answered", Completion::Done(1)),
            ("lost", Completion::TimedOut)
        ]
    );
    assert_eq!(rejected.load(Ordering::Relaxed), 2);
}
