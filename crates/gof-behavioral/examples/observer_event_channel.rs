//! The event channel (`Subject`): a door contact publishes its events to a siren controller
//! and a logger; the siren controller answers "door open" by publishing "siren on" on the same
//! subject, from inside its notification. The subject queues that event behind the one in
//! progress, so both observers see every event, in the same order, and nothing recurses.
//!
//! Run with `cargo run -p gof-behavioral --example observer_event_channel`.

use std::cell::RefCell;
use std::rc::Rc;

use gof_behavioral::observer::Subject;
use pattern_core::diagram::Diagram;

fn main() -> std::io::Result<()> {
    // `cargo xtask demo --diagrams` draws the Observer page's diagram of the event channel's
    // re-entrancy from this run.
    let mut diagram = Diagram::from_env("observer_event_channel");
    diagram.alias("main", "door contact (publisher)");
    diagram.alias("observer 0", "siren controller");
    diagram.alias("observer 1", "logger");

    let door: Subject<&'static str> = Subject::default();
    let log = Rc::new(RefCell::new(Vec::new()));

    // The siren controller holds a clone of the subject to publish on it.
    let channel = door.clone();
    let seen_by_siren = Rc::clone(&log);
    let _siren = door.subscribe(move |event: &&'static str| {
        seen_by_siren
            .borrow_mut()
            .push(format!("siren controller: {event}"));
        if *event == "door open" {
            channel.publish("siren on");
            seen_by_siren.borrow_mut().push(format!(
                "siren controller: published \"siren on\" (dispatching: {})",
                channel.is_dispatching()
            ));
        }
    });
    let seen_by_logger = Rc::clone(&log);
    let _logger = door.subscribe(move |event: &&'static str| {
        seen_by_logger
            .borrow_mut()
            .push(format!("logger:           {event}"));
    });

    println!("door contact publishes \"door open\"");
    door.publish("door open");
    for line in log.borrow().iter() {
        println!("  {line}");
    }
    println!(
        "publish returned: dispatching {}, {} observers",
        door.is_dispatching(),
        door.observer_count()
    );
    diagram.finish()
}
