//! Issue on one thread, complete on another; racing completers deliver each token once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

use act::{Callbacks, Completion, CompletionQueue};
use crossbeam_channel::unbounded;

#[test]
fn tokens_issued_here_complete_there() {
    let callbacks = Callbacks::<u64>::with_limit(1024);
    let (to_service, service_inbox) = unbounded();
    let (results, results_rx) = unbounded();
    let service = {
        let callbacks = callbacks.clone();
        thread::spawn(move || {
            for (token, n) in service_inbox {
                callbacks.complete(token, n * n).unwrap();
            }
        })
    };
    let initiator = thread::current().id();
    for n in 0..500u64 {
        let results = results.clone();
        let token = callbacks
            .issue(move |c: Completion<u64>| {
                results.send((n, c.ok(), thread::current().id())).unwrap();
            })
            .unwrap();
        to_service.send((token, n)).unwrap();
    }
    drop(to_service);
    service.join().unwrap();
    drop(results);
    let got: Vec<_> = results_rx.iter().collect();
    assert_eq!(got.len(), 500);
    for (n, square, ran_on) in got {
        assert_eq!(square, Some(n * n), "each handler got its own result");
        assert_ne!(ran_on, initiator, "callbacks run on the completing thread");
    }
    assert!(callbacks.is_empty());
}

#[test]
fn racing_completers_deliver_each_token_exactly_once() {
    const TOKENS: usize = 2000;
    const COMPLETERS: usize = 4;
    let queue = CompletionQueue::<usize, usize>::with_limit(TOKENS);
    let tokens: Arc<Vec<_>> = Arc::new((0..TOKENS).map(|i| queue.issue(i).unwrap()).collect());
    let start = Arc::new(Barrier::new(COMPLETERS));
    let wins = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..COMPLETERS)
        .map(|w| {
            let (queue, tokens, start, wins) =
                (queue.clone(), tokens.clone(), start.clone(), wins.clone());
            thread::spawn(move || {
                start.wait();
                for &t in tokens.iter() {
                    if queue.complete(t, w).is_ok() {
                        wins.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    assert_eq!(wins.load(Ordering::Relaxed), TOKENS);
    let mut contexts: Vec<usize> = queue.drain().into_iter().map(|e| e.context).collect();
    contexts.sort();
    assert_eq!(contexts, (0..TOKENS).collect::<Vec<_>>());
}

#[test]
fn issuing_and_completing_concurrently_keeps_the_table_consistent() {
    let callbacks = Callbacks::<()>::with_limit(64);
    let delivered = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = unbounded();
    let completer = {
        let callbacks = callbacks.clone();
        thread::spawn(move || {
            for token in rx {
                callbacks.complete(token, ()).unwrap();
            }
        })
    };
    let mut issued = 0;
    while issued < 10_000 {
        let d = delivered.clone();
        match callbacks.issue(move |_| {
            d.fetch_add(1, Ordering::Relaxed);
        }) {
            Ok(token) => {
                tx.send(token).unwrap();
                issued += 1;
            }
            // The bound holds under concurrency: wait for the completer to free a slot.
            Err(full) => {
                assert_eq!(full.limit(), 64);
                thread::yield_now();
            }
        }
    }
    drop(tx);
    completer.join().unwrap();
    assert_eq!(delivered.load(Ordering::Relaxed), 10_000);
    assert!(callbacks.is_empty());
}

#[test]
fn a_waiting_initiator_wakes_for_a_completion_from_another_thread() {
    let queue = CompletionQueue::<&str, u8>::with_limit(4);
    let token = queue.issue("ping").unwrap();
    let q = queue.clone();
    let service = thread::spawn(move || q.complete(token, 7).unwrap());
    let event = queue
        .next_timeout(std::time::Duration::from_secs(30))
        .expect("the completion arrives");
    assert_eq!(
        (event.context, event.completion),
        ("ping", Completion::Done(7))
    );
    service.join().unwrap();
}
