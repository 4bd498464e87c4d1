//! Cross-thread notification: many posters, the fairness cap, purge, end from another thread.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use reactor::{Context, Disposition, EventHandler, Interest, Message, Reactor, Remote};

struct Tally {
    per_thread: Vec<Vec<u32>>,
    count: Arc<AtomicUsize>,
}

impl EventHandler for Tally {
    fn handle_notify(&mut self, _ctx: &mut dyn Context, m: Message) -> Disposition {
        let (thread, seq) = *m.downcast::<(usize, u32)>().unwrap();
        self.per_thread[thread].push(seq);
        self.count.fetch_add(1, Ordering::SeqCst);
        Disposition::Continue
    }
    fn handle_close(&mut self, _ctx: &mut dyn Context, _reason: reactor::CloseReason) {
        for (i, seqs) in self.per_thread.iter().enumerate() {
            assert_eq!(seqs.len(), 1000, "thread {i} lost notifications");
            assert!(
                seqs.windows(2).all(|w| w[0] < w[1]),
                "thread {i}'s order was not kept"
            );
        }
    }
}

#[test]
fn eight_threads_notify_with_order_kept_and_the_cap_respected() {
    const CAP: usize = 16;
    let mut reactor = Reactor::builder().notify_cap(CAP).build().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let t = reactor
        .register(
            Box::new(Tally {
                per_thread: vec![vec![]; 8],
                count: count.clone(),
            }),
            Interest::NONE,
        )
        .unwrap();
    let start = Arc::new(Barrier::new(8));
    let posters: Vec<_> = (0..8usize)
        .map(|i| {
            let remote = reactor.remote();
            let start = start.clone();
            thread::spawn(move || {
                start.wait();
                for seq in 0..1000u32 {
                    remote.notify(t, Box::new((i, seq))).unwrap();
                }
            })
        })
        .collect();
    let mut iterations = 0;
    while count.load(Ordering::SeqCst) < 8000 {
        let before = count.load(Ordering::SeqCst);
        let upcalls = reactor
            .handle_events(Some(Duration::from_secs(10)))
            .unwrap();
        let delivered = count.load(Ordering::SeqCst) - before;
        assert_eq!(upcalls, delivered);
        assert!(
            delivered <= CAP,
            "{delivered} notifications in one iteration, cap {CAP}"
        );
        iterations += 1;
    }
    for p in posters {
        p.join().unwrap();
    }
    assert!(iterations >= 8000 / CAP);
    // Closing checks per-thread order and completeness.
    reactor.remove(t, reactor::Removal::Close).unwrap();
}

#[test]
fn purge_drops_only_the_handlers_pending_messages() {
    let mut reactor = Reactor::new().unwrap();
    let a_count = Arc::new(AtomicUsize::new(0));
    let b_count = Arc::new(AtomicUsize::new(0));
    let a = reactor
        .register(
            Box::new(Tally {
                per_thread: vec![vec![]],
                count: a_count.clone(),
            }),
            Interest::NONE,
        )
        .unwrap();
    let b = reactor
        .register(
            Box::new(Tally {
                per_thread: vec![vec![]],
                count: b_count.clone(),
            }),
            Interest::NONE,
        )
        .unwrap();
    let remote = reactor.remote();
    for seq in 0..10u32 {
        remote.notify(a, Box::new((0usize, seq))).unwrap();
        remote.notify(b, Box::new((0usize, seq))).unwrap();
    }
    assert_eq!(remote.purge(a), 10);
    assert_eq!(reactor.handle_events(Some(Duration::ZERO)).unwrap(), 10);
    assert_eq!(a_count.load(Ordering::SeqCst), 0);
    assert_eq!(b_count.load(Ordering::SeqCst), 10);
    reactor.remove(a, reactor::Removal::Quiet).unwrap();
    reactor.remove(b, reactor::Removal::Quiet).unwrap();
}

#[test]
fn end_from_another_thread_wakes_a_blocked_loop_and_reset_runs_again() {
    let mut reactor = Reactor::new().unwrap();
    let remote = reactor.remote();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
    let ender = thread::spawn(move || {
        ready_rx.recv().unwrap();
        remote.end();
    });
    // The job runs inside the loop; the loop then blocks with no timeout until `end`.
    reactor
        .remote()
        .post(Box::new(move |_ctx| ready_tx.send(()).unwrap()))
        .unwrap();
    reactor.serve().unwrap();
    ender.join().unwrap();
    assert!(reactor.is_done());
    reactor.reset();
    assert!(!reactor.is_done());
    let remote = reactor.remote();
    remote.post(Box::new(|ctx| ctx.end())).unwrap();
    reactor.serve().unwrap();
    assert!(reactor.is_done());
}

#[test]
fn posting_to_a_dropped_reactor_is_an_error() {
    let reactor = Reactor::new().unwrap();
    let remote = reactor.remote();
    drop(reactor);
    assert!(matches!(
        remote.post(Box::new(|_| {})),
        Err(reactor::DispatchError::ShutDown)
    ));
}
