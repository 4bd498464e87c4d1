//! The thread-safe subject: a gateway fans telemetry out to a fast recorder and a slow satellite uplink.
//! The uplink stalls; the gateway and the recorder carry on, and the uplink's bounded queue drops by its policy.
//!
//! Run with `cargo run -p gof-behavioral --example observer_telemetry_fanout`.

use std::sync::{Arc, Mutex};

use crossbeam_channel::bounded;
use gof_behavioral::observer::{OverflowPolicy, SyncSubject};

fn main() {
    for policy in [OverflowPolicy::DropNewest, OverflowPolicy::DropOldest] {
        println!("== slow uplink with a queue of 3, policy {policy:?} ==");
        let gateway: SyncSubject<u32> = SyncSubject::default();
        let recorder = gateway.subscribe_mailbox(64, OverflowPolicy::DropNewest);

        // The uplink handles frame 0, then stalls (a satellite pass ends) until released.
        let (stalled_tx, stalled_rx) = bounded(0);
        let (resume_tx, resume_rx) = bounded::<()>(0);
        let sent = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&sent);
        let uplink = gateway.subscribe_worker(3, policy, move |frame| {
            log.lock().expect("uplink log").push(frame);
            if frame == 0 {
                stalled_tx.send(()).expect("main waits for the stall");
                resume_rx.recv().expect("main resumes the uplink");
            }
        });

        gateway.publish(0);
        stalled_rx.recv().expect("uplink stalls on frame 0");
        println!("uplink stalled after frame 0");
        for frame in 1..=8 {
            let report = gateway.publish(frame);
            println!(
                "gateway published frame {frame}: queued for {} subscriber(s), {} dropped",
                report.enqueued, report.dropped
            );
        }
        let recorded: Vec<u32> = recorder.try_iter().collect();
        println!("recorder got every frame: {recorded:?}");

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
}
