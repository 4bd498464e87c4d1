//! The hybrid Leader/Followers protocol's shortcut, as a run draws it: a pool of two threads,
//! both busy in slow upcalls (sensor-3 and sensor-4), while sensor-1 and sensor-2 send. The
//! first thread to finish finds nobody waiting on the handle set and leads: one wait reports
//! both readings, and it takes sensor-1's. The second thread, once free, takes sensor-2's
//! reading from the ready set without waiting on the handle set itself: the hybrid lets a
//! thread take work another thread's wait demultiplexed (as ACE's TP_Reactor does), where
//! the strict protocol has each event found by the leader's own wait.
//!
//! `cargo xtask demo --diagrams` records the pool's interaction events (`tracing`, target
//! `posa_seq`) and draws them on the Leader/Followers page. Each pool thread is drawn as
//! itself, numbered in the order it first does something once the drawing starts; the
//! setup (both threads made busy) is not drawn. The demo opens the slow upcalls' gates one
//! at a time, once the drawing shows the step before, so the same run draws the same picture.

use std::io;
use std::os::unix::net::UnixStream;
use std::thread;

use leader_followers::LeaderFollowers;
use pattern_core::diagram::Diagram;
use pattern_core::{Dispatcher, Interest};

mod common;
use common::{Sensor, gate, post_reading};

fn main() -> io::Result<()> {
    let mut diagram = Diagram::from_env("lf_hybrid_drawn");
    diagram.number_threads("lf-");
    diagram.pause();
    let mut pool: Box<dyn Dispatcher> = Box::new(LeaderFollowers::builder().threads(2).build()?);
    let mut peers = Vec::new();
    let mut keepers = Vec::new();
    for name in ["sensor-1", "sensor-2", "sensor-3", "sensor-4"] {
        let (ours, peer) = UnixStream::pair()?;
        ours.set_nonblocking(true)?;
        // Every sensor but sensor-2 holds its first upcall until the demo opens its gate.
        let (held, keeper) = gate();
        let gate = (name != "sensor-2").then_some(held);
        let token = pool
            .register(Box::new(Sensor { stream: ours, gate }), Interest::READ)
            .map_err(io::Error::other)?;
        diagram.alias(format!("handler {token}"), name);
        peers.push(peer);
        keepers.push(keeper);
    }
    let remote = pool.remote();
    let running = thread::spawn(move || pool.run());

    println!("sensor-3 and sensor-4 send; their upcalls are slow and keep both threads busy");
    for slow in [2, 3] {
        post_reading(&peers[slow], "t=20.0")?;
        keepers[slow].wait_entered();
    }
    println!("sensor-1 and sensor-2 send while nobody waits on the handle set");
    post_reading(&peers[0], "t=21.5")?;
    post_reading(&peers[1], "t=19.0")?;
    diagram.resume();
    diagram.note(
        "handle set (mio Poll)",
        "both threads busy with sensor-3 and sensor-4, sensor-1 and sensor-2 have sent",
    );
    keepers[3].open();
    // The thread that was in sensor-4's upcall leads and takes sensor-1's reading.
    keepers[0].wait_entered();
    diagram.wait_for_count("handle_input", 1);
    keepers[2].open();
    // The other one takes sensor-2's reading from the ready set, then leads: it waits on the
    // handle set before sensor-1's upcall ends, so that thread rejoins the followers.
    diagram.wait_for_count("wait for events", 2);
    keepers[0].open();
    diagram.wait_for_count("joins the followers", 1);
    println!("both readings processed, by two threads, from one wait on the handle set");

    diagram.pause();
    remote.end();
    running.join().expect("the pool's thread")?;
    diagram.finish()
}
