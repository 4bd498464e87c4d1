//! Observer on a plant floor: a boiler setpoint (a subject that owns state) notifies a display by push
//! and a controller by pull; sensors (event-channel subjects) notify an alarm panel, a logger and a pager (observers);
//! a dashboard sees a coalesced stream and a siren a debounced one; a topic broker routes by name.
//!
//! Run with `cargo run -p gof-behavioral --example observer_sensor_alarms`.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use gof_behavioral::clock::ManualClock;
use gof_behavioral::observer::{
    Broker, Change, CoalesceByKey, Compressor, Debounce, Observer, StateSubject, Subject,
    Subscription,
};

/// One reading from one sensor.
#[derive(Debug, Clone, Copy)]
struct Reading {
    sensor: &'static str,
    value: i32,
    limit: i32,
}

/// A concrete observer watching several subjects: it counts alarms per sensor.
#[derive(Debug, Default)]
struct AlarmPanel {
    alarms: RefCell<Vec<String>>,
}

impl Observer<Reading> for AlarmPanel {
    fn notify(&self, r: &Reading) {
        if r.value > r.limit {
            println!(
                "  [panel]  ALARM {} = {} (limit {})",
                r.sensor, r.value, r.limit
            );
            self.alarms.borrow_mut().push(r.sensor.to_owned());
        }
    }
}

fn reading(sensor: &'static str, value: i32, limit: i32) -> Reading {
    Reading {
        sensor,
        value,
        limit,
    }
}

/// The course's drawing: a concrete subject that owns state, a push observer and a pull observer,
/// then the cost of one change that a cascade of derived subjects hides from the caller.
fn subject_with_state(diagram: &pattern_core::diagram::Diagram) {
    println!("== The original form: a subject that owns state ==");
    let setpoint = StateSubject::new(80);
    // Push model: the display is handed the change and never sees the subject.
    let _display = setpoint.observe_changes(|c: &Change<i32>| {
        println!("  [display]    setpoint {} -> {} C", c.old, c.new);
    });
    // Pull model: the controller is handed the subject and asks it for what it needs.
    let _controller = setpoint.observe(|s: &StateSubject<i32>| {
        println!(
            "  [controller] read setpoint {} C, adjusting burner",
            s.get()
        );
    });
    for target in [85, 85, 78] {
        let changed = setpoint.set(target);
        println!(
            "set setpoint to {target} C: {}",
            if changed {
                "changed, observers notified"
            } else {
                "unchanged, nobody notified"
            }
        );
    }

    println!();
    diagram.pause();
    println!("== Blind to the cost of updates: one set, a cascade ==");
    let updates = Rc::new(std::cell::Cell::new(0));
    // Each of three zones follows the setpoint through its own subject, watched by two valves.
    let mut keep = Vec::new();
    for offset in [0, -5, -10] {
        let zone = StateSubject::new(78 + offset);
        for _ in 0..2 {
            let u = Rc::clone(&updates);
            keep.push(zone.observe(move |_: &StateSubject<i32>| u.set(u.get() + 1)));
        }
        let u = Rc::clone(&updates);
        keep.push(setpoint.observe_changes(move |c: &Change<i32>| {
            u.set(u.get() + 1);
            zone.set(c.new + offset);
        }));
    }
    updates.set(0);
    setpoint.set(79);
    println!(
        "setpoint.set(79): the setpoint has {} observers, the change cost {} observer updates",
        setpoint.observer_count(),
        updates.get()
    );
    println!();
}

fn main() -> std::io::Result<()> {
    // `cargo xtask demo --diagrams` draws the Observer page's sequence diagram from the subject
    // that owns state (the first part; the others print what they do).
    let mut diagram = pattern_core::diagram::Diagram::from_env("observer_sensor_alarms");
    diagram.alias("main", "caller");
    subject_with_state(&diagram);
    // The event channels draw their own diagrams (`observer_event_channel`,
    // `observer_telemetry_fanout`).
    diagram.pause();
    println!("== Event channel: sensors publish readings ==");
    let boiler: Subject<Reading> = Subject::default();
    let pump: Subject<Reading> = Subject::default();

    // A trait-object observer on two subjects (the course: one observer monitoring several subjects).
    let panel = Rc::new(AlarmPanel::default());
    let _panel_on_boiler = boiler.attach(panel.clone());
    let _panel_on_pump = pump.attach(panel.clone());

    // A channel observer: the logger drains it later, as a logging task would.
    let (_log_sub, log_rx) = boiler.subscribe_channel();

    // A closure observer that pages maintenance once, then unsubscribes itself from inside its notification.
    let pager: Rc<RefCell<Option<Subscription>>> = Rc::default();
    let slot = Rc::clone(&pager);
    *pager.borrow_mut() = Some(boiler.subscribe(move |r: &Reading| {
        if r.value > r.limit {
            println!(
                "  [pager]  paging maintenance about {}; unsubscribing",
                r.sensor
            );
            slot.borrow_mut().take();
        }
    }));

    for (b, p) in [(78, 3), (86, 3), (91, 7), (80, 2)] {
        println!("boiler -> {b} C, pump -> {p} bar");
        boiler.publish(reading("boiler", b, 85));
        pump.publish(reading("pump", p, 6));
    }
    println!(
        "panel raised {} alarm(s): {:?}",
        panel.alarms.borrow().len(),
        panel.alarms.borrow()
    );
    println!("pager still subscribed: {}", pager.borrow().is_some());
    let logged: Vec<i32> = log_rx.try_iter().map(|r| r.value).collect();
    println!(
        "logger drained {} boiler readings: {logged:?}",
        logged.len()
    );

    println!();
    println!("== Event compression: coalesce by key for the dashboard ==");
    let clock = ManualClock::default();
    let dashboard = Compressor::new(CoalesceByKey::new(|r: &Reading| r.sensor), clock.clone());
    let _screen =
        dashboard.subscribe(|r: &Reading| println!("  [dash]   {} = {}", r.sensor, r.value));
    for r in [
        reading("boiler", 80, 85),
        reading("pump", 3, 6),
        reading("boiler", 81, 85),
        reading("boiler", 83, 85),
        reading("pump", 4, 6),
    ] {
        dashboard.publish(r);
    }
    println!("5 readings published; refreshing the screen:");
    dashboard.flush();
    let s = dashboard.stats();
    println!(
        "offered {}, delivered {}, superseded {}",
        s.offered, s.delivered, s.superseded
    );

    println!();
    println!("== Event compression: debounce for the siren (window 3 s, max wait 10 s) ==");
    let siren = Compressor::new(
        Debounce::new(Duration::from_secs(3)).max_wait(Duration::from_secs(10)),
        clock.clone(),
    );
    let c = clock.clone();
    let _horn = siren.subscribe(move |r: &Reading| {
        println!(
            "  [siren]  t={}s sound for {} = {}",
            c.elapsed().as_secs(),
            r.sensor,
            r.value
        );
    });
    // A level switch that chatters around its limit for a while, then settles.
    let chatter = [(0, 86), (1, 84), (2, 87), (4, 88), (5, 84), (6, 86)];
    for (t, v) in chatter {
        clock.set_elapsed(Duration::from_secs(t));
        siren.publish(reading("boiler", v, 85));
        println!("t={t}s boiler chatters: {v} C");
        siren.flush();
    }
    while let Some(due) = siren.next_deadline() {
        clock.set_elapsed(due - clock.origin());
        siren.flush();
    }
    println!(
        "{} readings, {} siren sound(s)",
        siren.stats().offered,
        siren.stats().delivered
    );

    println!();
    println!("== Publish-subscribe by topic ==");
    let broker: Broker<i32> = Broker::default();
    let _temps = broker
        .subscribe("plant/+/temperature", |topic: &str, v: &i32| {
            println!("  [temps]  {topic} = {v}");
        })
        .expect("valid filter");
    let _line1 = broker
        .subscribe("plant/line1/#", |topic: &str, v: &i32| {
            println!("  [line1]  {topic} = {v}");
        })
        .expect("valid filter");
    for (topic, v) in [
        ("plant/line1/temperature", 72),
        ("plant/line2/temperature", 65),
        ("plant/line1/pressure", 4),
        ("office/temperature", 21),
    ] {
        println!("publish {topic} = {v}");
        broker.publish(topic, v).expect("valid topic");
    }
    match broker.publish("plant/+/temperature", 0) {
        Err(e) => println!("refused: {e}"),
        Ok(()) => println!("unexpectedly accepted a wildcard topic"),
    }
    diagram.finish()
}
