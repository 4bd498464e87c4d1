//! The Leader/Followers protocol as a run draws it: a pool of two threads, two sensors on
//! Unix socket pairs, one reading at a time, under the hybrid protocol and then the strict one.
//!
//! `cargo xtask demo --diagrams` records the pool's interaction events (`tracing`, target
//! `posa_seq`) and draws them on the Leader/Followers page. Each pool thread is drawn as
//! itself, numbered in the order it first does something (which of them is started first
//! says nothing of which leads first), so the drawing shows the roles passing from thread to
//! thread; the demo sends the next reading only once the thread that processed the last one
//! has joined the followers again, so that the same run draws the same picture.

use std::io;
use std::os::unix::net::UnixStream;
use std::thread;

use leader_followers::LeaderFollowers;
use pattern_core::diagram::Diagram;
use pattern_core::{Dispatcher, Interest};

mod common;
use common::{Sensor, post_reading, read_ack};

fn scenario(title: &str, strict: bool, diagram: &mut Diagram, joins: &mut usize) -> io::Result<()> {
    println!("== {title} ==");
    let mut pool: Box<dyn Dispatcher> = Box::new(
        LeaderFollowers::builder()
            .threads(2)
            .strict(strict)
            .build()?,
    );
    let mut peers = Vec::new();
    for name in ["sensor-1", "sensor-2"] {
        let (ours, peer) = UnixStream::pair()?;
        ours.set_nonblocking(true)?;
        let token = pool
            .register(
                Box::new(Sensor {
                    stream: ours,
                    gate: None,
                }),
                Interest::READ,
            )
            .map_err(io::Error::other)?;
        diagram.alias(format!("handler {token}"), name);
        peers.push((name, peer));
    }
    let remote = pool.remote();
    diagram.resume();
    diagram.note("handle set (mio Poll)", title);
    let running = thread::spawn(move || pool.run());
    // One thread leads, the other follows: wait for that before the first reading.
    *joins += 1;
    diagram.wait_for_count("joins the followers", *joins);
    for (name, reading) in [(0, "t=21.5"), (1, "t=19.0"), (0, "t=21.6")] {
        let (sensor, peer) = &peers[name];
        post_reading(peer, reading)?;
        read_ack(peer)?;
        *joins += 1;
        diagram.wait_for_count("joins the followers", *joins);
        println!("{sensor}: sent {reading}, got ack");
    }
    diagram.pause();
    remote.end();
    running.join().expect("the pool's thread")?;
    Ok(())
}

fn main() -> io::Result<()> {
    let mut diagram = Diagram::from_env("lf_protocol_drawn");
    diagram.number_threads("lf-");
    // The promoted follower's wait and the old leader's upcall begin at once; the drawing
    // shows the wait first, in every run: the k-th upcall of a protocol is held until its
    // pool has begun k + 1 waits (the first leader's, and one per promotion).
    diagram.hold(
        |s| s.message == "handle_input",
        |steps| {
            let since = steps
                .iter()
                .rposition(|s| s.message.contains("protocol"))
                .unwrap_or(0);
            let tail = &steps[since..];
            let count = |what: &str| tail.iter().filter(|s| s.message == what).count();
            count("wait for events") >= count("handle_input") + 2
        },
    );
    diagram.pause();
    let mut joins = 0;
    scenario(
        "the hybrid protocol: the promoted follower leads while the old leader processes",
        false,
        &mut diagram,
        &mut joins,
    )?;
    scenario(
        "the strict protocol: the handle leaves the set while it is processed",
        true,
        &mut diagram,
        &mut joins,
    )?;
    diagram.finish()
}
