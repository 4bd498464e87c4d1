//! Active Object: requests run on the scheduler thread, guards defer them, and every future gets
//! a defined result, whatever the shutdown.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use concurrency::{ActiveObject, Cancelled, Eventual, MethodRequest, Shutdown};

const GENEROUS: Duration = Duration::from_secs(60);

/// A servant for the tests: a bounded buffer of readings, which records the thread it ran on.
#[derive(Debug, Default)]
struct Buffer {
    items: Vec<u32>,
    threads: Vec<thread::ThreadId>,
}

/// Makes the scheduler busy in a request until the test opens the gate, and tells the test
/// once it is inside, so what the test queues next is queued behind a running request.
fn block_scheduler(ao: &ActiveObject<Buffer>) -> (Eventual<&'static str>, mpsc::Sender<()>) {
    let (started_tx, started_rx) = mpsc::channel();
    let (gate_tx, gate_rx) = mpsc::channel::<()>();
    let reply = ao.invoke("block", move |_: &mut Buffer| {
        started_tx.send(()).unwrap();
        gate_rx.recv().unwrap();
        "unblocked"
    });
    started_rx
        .recv_timeout(GENEROUS)
        .expect("the scheduler started the request");
    (reply, gate_tx)
}

fn put(ao: &ActiveObject<Buffer>, v: u32) -> Eventual<usize> {
    ao.invoke("put", move |b: &mut Buffer| {
        b.items.push(v);
        b.threads.push(thread::current().id());
        b.items.len()
    })
}

#[test]
fn methods_run_on_the_scheduler_thread_in_the_order_they_were_invoked() {
    let ao = Arc::new(ActiveObject::new(Buffer::default(), 4));
    let clients: Vec<_> = (0..3u32)
        .map(|c| {
            let ao = ao.clone();
            thread::spawn(move || {
                let replies: Vec<_> = (0..50).map(|i| put(&ao, c * 100 + i)).collect();
                replies
                    .into_iter()
                    .map(|r| r.wait().unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut positions: Vec<usize> = clients
        .into_iter()
        .flat_map(|c| {
            let got = c.join().unwrap();
            // One client's requests run in the order it made them.
            assert!(got.windows(2).all(|w| w[0] < w[1]));
            got
        })
        .collect();
    positions.sort();
    assert_eq!(positions, (1..=150).collect::<Vec<_>>());
    let report = Arc::into_inner(ao).unwrap().shutdown(Shutdown::Drain);
    assert_eq!(report.executed, 150);
    let scheduler = report.servant.threads[0];
    assert_ne!(scheduler, thread::current().id());
    assert!(report.servant.threads.iter().all(|t| *t == scheduler));
    for c in 0..3 {
        let own: Vec<u32> = report
            .servant
            .items
            .iter()
            .copied()
            .filter(|v| v / 100 == c)
            .collect();
        assert_eq!(own, (0..50).map(|i| c * 100 + i).collect::<Vec<_>>());
    }
}

#[test]
fn a_request_whose_guard_does_not_hold_waits_until_a_later_request_makes_it_hold() {
    let ao = ActiveObject::new(Buffer::default(), 4);
    let take = ao.invoke_guarded(
        "take",
        |b: &Buffer| !b.items.is_empty(),
        |b: &mut Buffer| b.items.remove(0),
    );
    let first_put = put(&ao, 7);
    // The put overtook the waiting take; the take ran right after it.
    assert_eq!(first_put.wait(), Ok(1));
    assert_eq!(take.wait(), Ok(7));
    let report = ao.shutdown(Shutdown::Drain);
    assert_eq!((report.executed, report.cancelled), (2, 0));
    assert!(report.servant.items.is_empty());
}

#[test]
fn a_cancelling_shutdown_cancels_every_pending_request() {
    let ao = ActiveObject::new(Buffer::default(), 4);
    let (running, gate) = block_scheduler(&ao);
    let pending: Vec<_> = (0..3).map(|i| put(&ao, i)).collect();
    let never = ao.invoke_guarded("never", |_: &Buffer| false, |_: &mut Buffer| ());
    ao.close(Shutdown::Cancel);
    let late = put(&ao, 99);
    gate.send(()).unwrap();
    let report = ao.shutdown(Shutdown::Cancel);
    assert_eq!(running.wait(), Ok("unblocked"));
    for p in pending {
        assert_eq!(p.wait(), Err(Cancelled::ShutDown));
    }
    assert_eq!(never.wait(), Err(Cancelled::ShutDown));
    assert_eq!(late.wait(), Err(Cancelled::Closed));
    assert_eq!((report.executed, report.cancelled), (1, 4));
    assert!(report.servant.items.is_empty());
}

#[test]
fn a_draining_shutdown_runs_what_is_queued_and_cancels_what_can_never_run() {
    let ao = ActiveObject::new(Buffer::default(), 4);
    let (running, gate) = block_scheduler(&ao);
    let take = ao.invoke_guarded(
        "take",
        |b: &Buffer| !b.items.is_empty(),
        |b: &mut Buffer| b.items.remove(0),
    );
    let puts: Vec<_> = (0..2).map(|i| put(&ao, i)).collect();
    let never = ao.invoke_guarded(
        "never",
        |b: &Buffer| b.items.len() > 10,
        |_: &mut Buffer| (),
    );
    ao.close(Shutdown::Drain);
    gate.send(()).unwrap();
    let report = ao.shutdown(Shutdown::Drain);
    assert_eq!(running.wait(), Ok("unblocked"));
    assert_eq!(take.wait(), Ok(0));
    let positions: Vec<_> = puts.into_iter().map(|p| p.wait().unwrap()).collect();
    assert_eq!(positions, [1, 1]); // put 0, take, put 1
    assert_eq!(never.wait(), Err(Cancelled::ShutDown));
    assert_eq!((report.executed, report.cancelled), (4, 1));
    assert_eq!(report.servant.items, [1]);
}

#[test]
fn the_activation_queue_is_bounded_and_a_full_one_holds_the_client_back() {
    let ao = Arc::new(ActiveObject::new(Buffer::default(), 2));
    let (_running, gate) = block_scheduler(&ao);
    let queued = [put(&ao, 1), put(&ao, 2)];
    assert_eq!(ao.queued(), 2);
    let (done_tx, done_rx) = mpsc::channel();
    let client = {
        let ao = ao.clone();
        thread::spawn(move || {
            let reply = put(&ao, 3);
            done_tx.send(()).unwrap();
            reply.wait()
        })
    };
    // The third request cannot be queued while the scheduler is blocked and the queue is full.
    assert_eq!(done_rx.try_recv(), Err(mpsc::TryRecvError::Empty));
    gate.send(()).unwrap();
    done_rx.recv_timeout(GENEROUS).expect("room was made");
    assert_eq!(client.join().unwrap(), Ok(3));
    let [a, b] = queued;
    assert_eq!((a.wait(), b.wait()), (Ok(1), Ok(2)));
}

#[test]
fn a_request_whose_guard_cannot_wait_is_refused_when_the_waiting_list_is_full() {
    let ao = ActiveObject::new(Buffer::default(), 1);
    let first = ao.invoke_guarded("take", |b: &Buffer| !b.items.is_empty(), |_: &mut Buffer| 1);
    let second = ao.invoke_guarded("take", |b: &Buffer| !b.items.is_empty(), |_: &mut Buffer| 2);
    assert_eq!(second.wait(), Err(Cancelled::Backlog));
    assert_eq!(put(&ao, 5).wait(), Ok(1));
    assert_eq!(first.wait(), Ok(1));
}

#[test]
fn a_panicking_method_abandons_its_own_future_and_the_scheduler_goes_on() {
    let ao = ActiveObject::new(Buffer::default(), 4);
    let bad: Eventual<()> = ao.invoke("bad", |_: &mut Buffer| panic!("servant bug"));
    let bad_guard = ao.invoke_guarded(
        "bad guard",
        |_: &Buffer| panic!("guard bug"),
        |_: &mut Buffer| (),
    );
    let good = put(&ao, 1);
    assert_eq!(bad.wait(), Err(Cancelled::Abandoned));
    assert_eq!(bad_guard.wait(), Err(Cancelled::Abandoned));
    assert_eq!(good.wait(), Ok(1));
}

#[test]
fn dropping_the_active_object_drains_it() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let ao = ActiveObject::new(Buffer::default(), 8);
    let replies: Vec<_> = (0..5)
        .map(|i| {
            let seen = seen.clone();
            ao.invoke("put", move |_: &mut Buffer| seen.lock().unwrap().push(i))
        })
        .collect();
    drop(ao);
    for r in replies {
        assert_eq!(r.wait(), Ok(()));
    }
    assert_eq!(*seen.lock().unwrap(), [0, 1, 2, 3, 4]);
}

#[test]
fn a_method_request_can_be_built_and_queued_by_hand() {
    let ao = ActiveObject::new(Buffer::default(), 2);
    let (request, reply) = MethodRequest::new("len", |b: &mut Buffer| b.items.len());
    assert_eq!(request.name(), "len");
    ao.enqueue(request);
    assert_eq!(reply.wait_timeout(GENEROUS).ok(), Some(Ok(0)));
}
