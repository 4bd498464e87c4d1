//! The strict Leader/Followers protocol with two events in flight, as a run draws it: a pool
//! of two threads and two sensors. The leader's wait reports sensor-1's reading; it takes the
//! handle out of the handle set, promotes the follower and processes the reading, slowly.
//! Meanwhile sensor-2 sends: the new leader's own wait reports it, and with nobody left to
//! promote it processes it itself. Each handle goes back into the set after its upcall.
//!
//! `cargo xtask demo --diagrams` records the pool's interaction events (`tracing`, target
//! `posa_seq`) and draws them on the Leader/Followers page. Each pool thread is drawn as
//! itself, numbered in the order it first does something; the demo holds sensor-1's upcall
//! until sensor-2's turn is over, and sends each reading only once the drawing shows the
//! pool ready for it, so the same run draws the same picture.

use std::io;
use std::os::unix::net::UnixStream;
use std::thread;

use leader_followers::LeaderFollowers;
use pattern_core::diagram::Diagram;
use pattern_core::{Dispatcher, Interest};

mod common;
use common::{Sensor, gate, post_reading, read_ack};

fn main() -> io::Result<()> {
    let mut diagram = Diagram::from_env("lf_strict_drawn");
    diagram.number_threads("lf-");
    let mut pool: Box<dyn Dispatcher> =
        Box::new(LeaderFollowers::builder().threads(2).strict(true).build()?);
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
    // The promoted follower's wait and the old leader's upcall begin at once; the drawing
    // shows the wait first, in every run: the first upcall is held until the second wait.
    diagram.hold(
        |s| s.message == "handle_input",
        |steps| count(steps, "wait for events") >= 2,
    );
    let remote = pool.remote();
    let running = thread::spawn(move || pool.run());
    // One thread leads (waits on the handle set), the other follows.
    diagram.wait_for_count("joins the followers", 1);

    println!("sensor-1 sends t=21.5; its upcall is slow");
    post_reading(&peers[0], "t=21.5")?;
    keeper.wait_entered();
    diagram.wait_for_count("handle_input", 1);
    println!("sensor-2 sends t=19.0 while sensor-1's reading is processed");
    post_reading(&peers[1], "t=19.0")?;
    read_ack(&peers[1])?;
    println!("sensor-2: acknowledged");
    // sensor-2's thread leads again before sensor-1's upcall ends, so that one rejoins the
    // followers.
    diagram.wait_for_count("wait for events", 3);
    keeper.open();
    diagram.wait_for_count("joins the followers", 2);
    read_ack(&peers[0])?;
    println!("sensor-1: upcall done; both handles back in the set");

    diagram.pause();
    remote.end();
    running.join().expect("the pool's thread")?;
    diagram.finish()
}

/// How many recorded steps say `what`.
fn count(steps: &[pattern_core::diagram::Step], what: &str) -> usize {
    steps.iter().filter(|s| s.message == what).count()
}
