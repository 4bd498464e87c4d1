//! Half-Sync/Half-Async as a run draws it: the asynchronous layer (the reactor thread) waits
//! on the handle set and queues each ready registration; the synchronous layer (one worker)
//! takes them from the queue and runs the upcalls. sensor-1's upcall is slow; sensor-2's
//! reading arrives meanwhile and waits in the queue, not in the kernel, until the worker is
//! free.
//!
//! `cargo xtask demo --diagrams` records the pool's interaction events (`tracing`, target
//! `posa_seq`) and draws them on the Leader/Followers page, next to the pools they are
//! compared with. The demo sends each reading once the drawing shows the step before, so the
//! same run draws the same picture.

use std::io;
use std::os::unix::net::UnixStream;
use std::thread;

use leader_followers::HalfSyncHalfAsync;
use pattern_core::diagram::Diagram;
use pattern_core::{Dispatcher, Interest};

mod common;
use common::{Sensor, gate, post_reading, read_ack};

fn main() -> io::Result<()> {
    let mut diagram = Diagram::from_env("hsha_drawn");
    diagram.alias("hsha-worker-0", "worker (synchronous layer)");
    let mut pool: Box<dyn Dispatcher> =
        Box::new(HalfSyncHalfAsync::builder().workers(1).queue(16).build()?);
    let (held, keeper) = gate();
    let mut peers = Vec::new();
    for (name, gate) in [("sensor-1", Some(held)), ("sensor-2", None)] {
        let (ours, peer) = UnixStream::pair()?;
        ours.set_nonblocking(true)?;
        let token = pool
            .register(Box::new(Sensor { stream: ours, gate }), Interest::READ)
            .map_err(io::Error::other)?;
        diagram.alias(format!("handler {token}"), name);
        peers.push(peer);
    }
    let remote = pool.remote();
    // The thread that runs the pool is its asynchronous layer.
    let running = thread::Builder::new()
        .name("reactor thread (asynchronous layer)".into())
        .spawn(move || pool.run())?;
    diagram.wait_for_count("waits on the queue", 1);

    println!("sensor-1 sends t=21.5; its upcall is slow");
    post_reading(&peers[0], "t=21.5")?;
    keeper.wait_entered();
    diagram.wait_for_count("handle_input", 1);
    println!("sensor-2 sends t=19.0 while the worker is busy: it waits in the queue");
    post_reading(&peers[1], "t=19.0")?;
    diagram.wait_for_count("enqueue", 2);
    // The reactor thread is back in its wait before the slow upcall ends, so every run draws
    // the two layers in the same order.
    diagram.wait_for_count("wait for events", 3);
    keeper.open();
    read_ack(&peers[1])?;
    diagram.wait_for_count("waits on the queue", 2);
    read_ack(&peers[0])?;
    println!("the worker took sensor-2's reading from the queue once sensor-1's upcall was done");

    diagram.pause();
    remote.end();
    running.join().expect("the pool's thread")?;
    diagram.finish()
}
