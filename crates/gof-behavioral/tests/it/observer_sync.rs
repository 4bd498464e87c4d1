//! The thread-safe subject: bounded queues, overflow policies, workers and re-entrancy across threads.

use std::sync::{Arc, Barrier, Mutex};
use std::thread;

use crossbeam_channel::{Receiver, Sender, bounded, unbounded};
use gof_behavioral::Error;
use gof_behavioral::observer::{OverflowPolicy, PublishReport, SyncSubject, Worker};

/// A worker that blocks inside its callback for event 0 until released, recording what it handles.
struct BlockedWorker {
    worker: Worker,
    started: Receiver<()>,
    release: Sender<()>,
    seen: Arc<Mutex<Vec<u32>>>,
}

fn blocked_worker(
    subject: &SyncSubject<u32>,
    capacity: usize,
    policy: OverflowPolicy,
) -> BlockedWorker {
    let (started_tx, started) = bounded(0);
    let (release, release_rx) = bounded::<()>(0);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let worker = subject.subscribe_worker(capacity, policy, move |e| {
        if e == 0 {
            started_tx.send(()).unwrap();
            release_rx.recv().unwrap();
        }
        log.lock().unwrap().push(e);
    });
    BlockedWorker {
        worker,
        started,
        release,
        seen,
    }
}

fn slow_subscriber_scenario(policy: OverflowPolicy) -> (Vec<u32>, (u64, u64), Vec<u32>) {
    let subject = SyncSubject::default();
    let BlockedWorker {
        worker: slow,
        started,
        release,
        seen,
    } = blocked_worker(&subject, 2, policy);
    let fast = subject.subscribe_mailbox(16, policy);

    subject.publish(0);
    started.recv().unwrap(); // the slow observer now holds event 0 and is blocked
    let mut reports = Vec::new();
    for e in 1..=5 {
        // Each publish returns although the slow observer's queue fills up.
        reports.push(subject.publish(e));
    }
    assert_eq!(fast.try_iter().collect::<Vec<_>>(), [0, 1, 2, 3, 4, 5]);
    assert_eq!(fast.dropped(), 0);
    assert_eq!(reports.iter().map(|r| r.dropped).sum::<u64>(), 3);

    release.send(()).unwrap();
    let counts = (slow.enqueued(), slow.dropped());
    slow.unsubscribe().unwrap();
    let seen = seen.lock().unwrap().clone();
    (
        seen,
        counts,
        reports.iter().map(|r| r.enqueued as u32).collect(),
    )
}

#[test]
fn a_blocked_observer_does_not_block_the_publisher_or_others_drop_newest() {
    let (seen, counts, enqueued) = slow_subscriber_scenario(OverflowPolicy::DropNewest);
    // Event 0 was being handled; 1 and 2 filled the queue of 2; 3, 4, 5 were refused.
    assert_eq!(seen, [0, 1, 2]);
    assert_eq!(counts, (3, 3));
    assert_eq!(enqueued, [2, 2, 1, 1, 1]);
}

#[test]
fn a_blocked_observer_does_not_block_the_publisher_or_others_drop_oldest() {
    let (seen, counts, enqueued) = slow_subscriber_scenario(OverflowPolicy::DropOldest);
    // 1, 2, 3 were evicted in turn to make room for 3, 4, 5.
    assert_eq!(seen, [0, 4, 5]);
    assert_eq!(counts, (6, 3));
    assert_eq!(enqueued, [2, 2, 2, 2, 2]);
}

#[test]
fn publish_reports_count_exactly() {
    let subject = SyncSubject::default();
    let a = subject.subscribe_mailbox(1, OverflowPolicy::DropNewest);
    let b = subject.subscribe_mailbox(1, OverflowPolicy::DropOldest);
    assert_eq!(
        subject.publish('x'),
        PublishReport {
            enqueued: 2,
            dropped: 0
        }
    );
    assert_eq!(
        subject.publish('y'),
        PublishReport {
            enqueued: 1,
            dropped: 2
        }
    );
    assert_eq!(a.try_recv(), Some('x'));
    assert_eq!(b.try_recv(), Some('y'));
    assert_eq!((a.dropped(), b.dropped()), (1, 1));
    assert_eq!((a.enqueued(), b.enqueued()), (1, 2));
}

#[test]
fn concurrent_publishers_keep_per_thread_order() {
    const THREADS: u32 = 4;
    const EACH: u32 = 250;
    let subject = SyncSubject::default();
    let mailbox = subject.subscribe_mailbox((THREADS * EACH) as usize, OverflowPolicy::DropNewest);
    let barrier = Arc::new(Barrier::new(THREADS as usize));
    let publishers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (subject, barrier) = (subject.clone(), Arc::clone(&barrier));
            thread::spawn(move || {
                barrier.wait();
                for i in 0..EACH {
                    subject.publish((t, i));
                }
            })
        })
        .collect();
    for p in publishers {
        p.join().unwrap();
    }
    let got: Vec<(u32, u32)> = mailbox.try_iter().collect();
    assert_eq!(got.len(), (THREADS * EACH) as usize);
    for t in 0..THREADS {
        let mine: Vec<u32> = got
            .iter()
            .filter(|(from, _)| *from == t)
            .map(|(_, i)| *i)
            .collect();
        assert_eq!(mine, (0..EACH).collect::<Vec<_>>());
    }
    assert_eq!(mailbox.dropped(), 0);
}

#[test]
fn a_worker_may_publish_subscribe_and_unsubscribe_itself_from_its_callback() {
    let subject: SyncSubject<u32> = SyncSubject::default();
    let observer = subject.subscribe_mailbox(64, OverflowPolicy::DropNewest);
    let (late_tx, late_rx) = unbounded();
    let (done_tx, done_rx) = bounded(1);
    let own: Arc<Mutex<Option<Worker>>> = Arc::default();

    let (s, slot) = (subject.clone(), Arc::clone(&own));
    let worker = subject.subscribe_worker(8, OverflowPolicy::DropNewest, move |e| {
        match e {
            // Publish into the subject it is subscribed to: never blocks, even into its own queue.
            1 | 2 => {
                s.publish(e + 1);
            }
            3 => {
                late_tx
                    .send(s.subscribe_mailbox(8, OverflowPolicy::DropNewest))
                    .unwrap();
                // Unsubscribe itself from its own thread: must not wait for itself.
                let me = slot.lock().unwrap().take().unwrap();
                done_tx.send(me.unsubscribe()).unwrap();
            }
            _ => {}
        }
    });
    *own.lock().unwrap() = Some(worker);
    subject.publish(1);
    assert_eq!(done_rx.recv().unwrap(), Ok(()));
    let late = late_rx.recv().unwrap();
    assert_eq!(subject.subscriber_count(), 2); // `observer` and `late`; the worker is gone
    subject.publish(4);
    assert_eq!(observer.try_iter().collect::<Vec<_>>(), [1, 2, 3, 4]);
    assert_eq!(late.try_iter().collect::<Vec<_>>(), [4]);
}

#[test]
fn dropping_a_mailbox_unsubscribes() {
    let subject: SyncSubject<u8> = SyncSubject::default();
    let a = subject.subscribe_mailbox(1, OverflowPolicy::DropNewest);
    let b = subject.subscribe_mailbox(1, OverflowPolicy::DropNewest);
    assert!(a.subscription().is_active());
    drop(a);
    assert_eq!(subject.subscriber_count(), 1);
    assert_eq!(subject.publish(1).enqueued, 1);
    assert_eq!(b.recv(), Some(1));
}

#[test]
fn a_mailbox_ends_when_the_subject_is_gone() {
    let subject: SyncSubject<u8> = SyncSubject::default();
    let mailbox = subject.subscribe_mailbox(4, OverflowPolicy::DropNewest);
    subject.publish(9);
    drop(subject);
    assert_eq!(mailbox.recv(), Some(9));
    assert_eq!(mailbox.recv(), None);
    assert!(!mailbox.subscription().is_active());
}

#[test]
fn a_panicking_worker_is_reported_and_others_go_on() {
    let subject: SyncSubject<u8> = SyncSubject::default();
    let others = subject.subscribe_mailbox(4, OverflowPolicy::DropNewest);
    let worker =
        subject.subscribe_worker(4, OverflowPolicy::DropNewest, |_| panic!("observer bug"));
    subject.publish(1);
    subject.publish(2);
    assert_eq!(worker.unsubscribe(), Err(Error::ObserverPanicked));
    assert_eq!(others.try_iter().collect::<Vec<_>>(), [1, 2]);
    assert_eq!(subject.subscriber_count(), 1);
}

#[test]
fn unsubscribe_waits_for_queued_events_to_be_handled() {
    let subject = SyncSubject::default();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let worker = subject.subscribe_worker(8, OverflowPolicy::DropNewest, move |e: u8| {
        log.lock().unwrap().push(e);
    });
    for e in 0..5 {
        subject.publish(e);
    }
    worker.unsubscribe().unwrap();
    assert_eq!(*seen.lock().unwrap(), [0, 1, 2, 3, 4]);
    assert_eq!(subject.publish(9).enqueued, 0);
}
