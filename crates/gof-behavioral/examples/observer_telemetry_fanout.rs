//! The thread-safe subject: a gateway fans telemetry out to a fast recorder and a slow satellite uplink.
//! The uplink stalls; the gateway and the recorder carry on, and the uplink's bounded queue drops by its policy.
//!
//! Run with `cargo run -p gof-behavioral --example observer_telemetry_fanout`.

use std::sync::{Arc, Mutex};

use crossbeam_channel::bounded;
use gof_behavioral::observer::{OverflowPolicy, SyncSubject};
use pattern_core::diagram::Diagram;

fn main() -> std::io::Result<()> {
    // `cargo xtask demo --diagrams` draws the Observer page's diagram of the thread-safe
    // subject from this run: the publishes that fill the uplink's queue and overflow it, under
    // each policy, and what the uplink's worker thread takes once it resumes.
    let mut diagram = Diagram::from_env_limited("observer_telemetry_fanout", 120);
    diagram.alias("main", "gateway (publisher)");
    diagram.alias("queue 0", "recorder queue (64)");
    diagram.alias("queue 1", "uplink queue (3)");
    diagram.alias("observer-1", "uplink worker");
    // The uplink's thread takes an event as soon as it is queued, maybe before `publish` has
    // returned to the gateway; the drawing takes it after, in every run: each of the worker's
    // steps waits until the gateway has had more answers than the worker has taken events,
    // since the last policy began (`Diagram::hold`).
    diagram.hold(
        |s| s.thread == "observer-1",
        |steps| {
            let since = steps
                .iter()
                .rposition(|s| s.message.starts_with("policy"))
                .unwrap_or(0);
            let tail = &steps[since..];
            let answers = tail.iter().filter(|s| s.message.ends_with("never blocked"));
            let taken = tail.iter().filter(|s| s.thread == "observer-1");
            answers.count() > taken.count()
        },
    );
    for policy in [OverflowPolicy::DropNewest, OverflowPolicy::DropOldest] {
        println!("== slow uplink with a queue of 3, policy {policy:?} ==");
        diagram.note("main", &format!("policy {policy:?}"));
        let gateway: SyncSubject<u32> = SyncSubject::default();
        let recorder = gateway.subscribe_mailbox(64, OverflowPolicy::DropNewest);

        // The uplink handles frame 1, then stalls (a satellite pass ends) until released.
        let (stalled_tx, stalled_rx) = bounded(0);
        let (resume_tx, resume_rx) = bounded::<()>(0);
        let sent = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&sent);
        let uplink = gateway.subscribe_worker(3, policy, move |frame| {
            log.lock().expect("uplink log").push(frame);
            if frame == 1 {
                stalled_tx.send(()).expect("main waits for the stall");
                resume_rx.recv().expect("main resumes the uplink");
            }
        });

        gateway.publish(1);
        stalled_rx.recv().expect("uplink stalls on frame 1");
        println!("uplink stalled after frame 1");
        diagram.note("observer-1", "handling frame 1: stalled");
        for frame in 2..=9 {
            if frame == 6 {
                diagram.note("main", "frames 6 to 9 go the same way (not drawn)");
                diagram.pause();
            }
            let report = gateway.publish(frame);
            println!(
                "gateway published frame {frame}: queued for {} subscriber(s), {} dropped",
                report.enqueued, report.dropped
            );
        }
        let recorded: Vec<u32> = recorder.try_iter().collect();
        println!("recorder got every frame: {recorded:?}");

        diagram.resume();
        diagram.note("observer-1", "resumes");
        resume_tx.send(()).expect("uplink waiting");
        println!(
            "uplink resumed; queued {} frame(s), dropped {}",
            uplink.enqueued(),
            uplink.dropped()
        );
        uplink.unsubscribe().expect("uplink worker ends cleanly");
        println!("uplink sent: {:?}", sent.lock().expect("uplink log"));
        println!();
    }
    diagram.finish()
}
