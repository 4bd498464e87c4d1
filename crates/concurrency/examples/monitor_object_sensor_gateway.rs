//! Monitor Object: sensors hand readings to a gateway's uplink through a bounded monitor queue.
//! The queue's synchronised methods run one at a time; a full queue makes a sensor wait on the
//! `not_full` condition, a pop notifies it, and `close` wakes every waiter at the end.
//! Only the main thread prints, so the narrative is the same on every run.

use std::sync::Arc;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use concurrency::{MonitorQueue, PopError, PushError};

fn main() -> std::io::Result<()> {
    // `cargo xtask demo --diagrams` draws the Monitor Object page's sequence diagram from this
    // run (the threads are named, and the run waits for a blocked thread's wait before waking it).
    let diagram = pattern_core::diagram::Diagram::from_env("monitor_object_sensor_gateway");
    let queue = Arc::new(MonitorQueue::new(2));
    println!(
        "gateway: a monitor queue of {} readings between the sensors and the uplink",
        queue.capacity()
    );

    queue.push("sensor-1 t=21.5").unwrap();
    queue.push("sensor-1 t=21.7").unwrap();
    println!(
        "sensor-1: pushed 2 readings, the queue holds {} of {}",
        queue.len(),
        queue.capacity()
    );
    if let Err(PushError::Full(r)) = queue.try_push("sensor-1 t=21.9") {
        println!("sensor-1: try_push refused, the queue is full; {r:?} handed back");
    }

    // sensor-2 blocks in push, waiting on `not_full`, until the uplink pops.
    let (done_tx, done_rx) = mpsc::channel();
    let sensor2 = {
        let queue = queue.clone();
        thread::Builder::new()
            .name("sensor-2".into())
            .spawn(move || {
                queue.push("sensor-2 h=40%").unwrap();
                done_tx.send(()).unwrap();
            })?
    };
    diagram.wait_for_count("wait on not_full", 1);
    println!(
        "sensor-2: push waits on not_full: {}",
        done_rx.try_recv().is_err()
    );
    println!(
        "uplink: popped {:?} and notified not_full",
        queue.pop().unwrap()
    );
    done_rx.recv().unwrap();
    sensor2.join().unwrap();
    println!(
        "sensor-2: woke up, its reading is queued ({} of {})",
        queue.len(),
        queue.capacity()
    );
    while let Ok(r) = queue.try_pop() {
        println!("uplink: popped {r:?}");
    }
    println!(
        "uplink: pop_timeout on an empty queue: {:?}",
        queue.pop_timeout(Duration::from_millis(1))
    );

    // Three sensors push 50 readings each through the 2-slot queue while the uplink drains it.
    diagram.note(
        "main",
        "three sensors push 50 readings each while main pops (not drawn)",
    );
    diagram.pause();
    let sensors: Vec<_> = (3..6)
        .map(|s| {
            let queue = queue.clone();
            thread::spawn(move || {
                for i in 0..50 {
                    queue.push(if i % 2 == 0 { "even" } else { "odd" }).unwrap();
                }
                s
            })
        })
        .collect();
    let mut received = 0;
    while received < 150 {
        queue.pop().unwrap();
        received += 1;
    }
    let finished: Vec<i32> = sensors.into_iter().map(|s| s.join().unwrap()).collect();
    println!(
        "uplink: received {received} readings from sensors {finished:?}, none lost, none doubled"
    );

    // Shutdown: an uplink waiting on `not_empty` is woken by close and told the queue is done.
    let uplink = {
        let queue = queue.clone();
        thread::Builder::new()
            .name("uplink".into())
            .spawn(move || queue.pop())?
    };
    diagram.resume();
    diagram.wait_for_count("wait on not_empty", 1);
    queue.close();
    println!("gateway: closed the queue");
    println!(
        "uplink: a waiting pop returned {:?}",
        uplink.join().unwrap()
    );
    if let Err(PushError::Closed(r)) = queue.push("sensor-1 t=22.0") {
        println!("sensor-1: push after close refused; {r:?} handed back");
    }
    assert_eq!(queue.try_pop(), Err(PopError::Closed));
    println!("uplink: try_pop reports {}", PopError::Closed);
    diagram.finish()
}
