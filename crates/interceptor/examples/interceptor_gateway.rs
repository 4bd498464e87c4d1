//! A sensor gateway (the concrete framework) with three interception points: "reading
//! received", "before publish" (the gateway's outbound side) and "reading delivered" (the
//! subscriber's inbound side). Services are added to it as interceptors at run time:
//! calibration, an audit, a range check that vetoes, a checksum pair (layer symmetry), an
//! alarm that feeds a reading back into the gateway (a cascade), and a buggy plugin whose
//! panic costs only itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use interceptor::{Dispatcher, Interceptor, Outcome, Verdict, from_fn};
use parking_lot::Mutex;

/// The context object: one reading on its way through the gateway.
#[derive(Debug, Clone)]
struct Reading {
    sensor: String,
    celsius: f64,
    checksum: Option<u32>,
}

fn checksum(r: &Reading) -> u32 {
    r.sensor.bytes().map(u32::from).sum::<u32>() ^ (r.celsius * 100.0) as u32
}

/// The concrete framework: knows its interception points, nothing of the services.
struct Gateway {
    received: Dispatcher<Reading>,
    before_publish: Dispatcher<Reading>,
    delivered: Dispatcher<Reading>,
    published: Mutex<Vec<String>>,
}

impl Gateway {
    fn new() -> Arc<Self> {
        Arc::new(Gateway {
            received: Dispatcher::new("reading received"),
            before_publish: Dispatcher::new("before publish"),
            delivered: Dispatcher::new("reading delivered"),
            published: Mutex::new(Vec::new()),
        })
    }

    /// The framework's own work: receive, publish, deliver, with a dispatch at each point.
    fn accept(&self, mut r: Reading) {
        for point in [&self.received, &self.before_publish, &self.delivered] {
            if let Outcome::Vetoed { by } = point.dispatch(&mut r) {
                println!(
                    "  gateway: {} dropped at \"{}\" by {by}",
                    r.sensor,
                    point.point()
                );
                return;
            }
        }
        let line = format!("{} {:.1} C", r.sensor, r.celsius);
        println!("  gateway: delivered {line}");
        self.published.lock().push(line);
    }
}

/// A concrete interceptor with state: counts what passes its point. Registered at two
/// points, it is the same code reused.
struct Audit {
    seen: AtomicU64,
}

impl Interceptor<Reading> for Audit {
    fn name(&self) -> &str {
        "audit"
    }
    fn intercept(&self, _r: &mut Reading) -> Verdict {
        self.seen.fetch_add(1, Ordering::Relaxed);
        Verdict::Continue
    }
}

fn reading(sensor: &str, celsius: f64) -> Reading {
    Reading {
        sensor: sensor.into(),
        celsius,
        checksum: None,
    }
}

fn main() -> std::io::Result<()> {
    // `cargo xtask demo --diagrams` draws the Interceptor page's sequence diagram from this run.
    let diagram = pattern_core::diagram::Diagram::from_env_limited("interceptor_gateway", 120);
    let gw = Gateway::new();

    println!("1. no interceptor: the gateway alone");
    diagram.note("application", "1. no interceptor: the gateway alone");
    gw.accept(reading("boiler", 80.4));

    println!("2. services added at run time, without touching the gateway");
    diagram.note(
        "application",
        "2. services added at run time, without touching the gateway",
    );
    gw.received.register(
        10,
        from_fn("calibrate", |r: &mut Reading| {
            r.celsius -= 0.4;
            Verdict::Continue
        }),
    );
    let range = gw.received.register(
        20,
        from_fn("range check", |r: &mut Reading| {
            if (-40.0..=150.0).contains(&r.celsius) {
                Verdict::Continue
            } else {
                Verdict::Stop
            }
        }),
    );
    let audit = Arc::new(Audit {
        seen: AtomicU64::new(0),
    });
    gw.received.register_shared(0, audit.clone());
    gw.delivered.register_shared(0, audit.clone());
    for (point, d) in [("received", &gw.received), ("delivered", &gw.delivered)] {
        let names: Vec<String> = d
            .names()
            .iter()
            .map(|(_, o, n)| format!("{n}@{o}"))
            .collect();
        println!("  chain at {point}: {}", names.join(", "));
    }
    gw.accept(reading("boiler", 80.4));
    gw.accept(reading("boiler", 900.0));

    println!("3. layer symmetry: a checksum added before publish, checked on delivery");
    diagram.note(
        "application",
        "3. layer symmetry: a checksum added before publish, checked on delivery",
    );
    gw.before_publish.register(
        0,
        from_fn("checksum", |r: &mut Reading| {
            r.checksum = Some(checksum(r));
            Verdict::Continue
        }),
    );
    gw.delivered.register(
        10,
        from_fn("verify", |r: &mut Reading| {
            if r.checksum == Some(checksum(r)) {
                Verdict::Continue
            } else {
                Verdict::Stop
            }
        }),
    );
    gw.accept(reading("chiller", 6.4));
    // A faulty link changes a reading between publish and delivery.
    let corrupt = gw.before_publish.register(
        5,
        from_fn("faulty link", |r: &mut Reading| {
            r.celsius += 10.0;
            Verdict::Continue
        }),
    );
    gw.accept(reading("chiller", 6.4));
    gw.before_publish.remove(corrupt);

    println!("4. an erroneous interceptor: its panic is contained, it is removed");
    diagram.note(
        "application",
        "4. an erroneous interceptor: its panic is contained, it is removed",
    );
    gw.received.register(
        15,
        from_fn("buggy plugin", |r: &mut Reading| {
            if r.sensor == "door" {
                panic!("buggy plugin cannot handle a door");
            }
            Verdict::Continue
        }),
    );
    // The panic's default report goes to stderr; the demo compares stdout.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    gw.accept(reading("door", 21.4));
    std::panic::set_hook(hook);
    let (name, message) = gw.received.last_panic().expect("a panic");
    println!(
        "  received: {} panicked ({name}: {message}); chain now has {} interceptors",
        gw.received.counters().panicked,
        gw.received.len()
    );

    println!("5. a cascade: an alarm interceptor feeds a reading back into the gateway");
    diagram.note(
        "application",
        "5. a cascade: an alarm interceptor feeds a reading back into the gateway",
    );
    let gw2 = Arc::clone(&gw);
    gw.delivered.register(
        20,
        from_fn("alarm", move |r: &mut Reading| {
            // Without this test the alarm's own reading would raise another alarm, forever.
            if r.sensor != "alarm" && r.celsius > 100.0 {
                println!(
                    "  alarm: {} at {:.1} C, raising an alarm reading",
                    r.sensor, r.celsius
                );
                gw2.accept(reading("alarm", r.celsius));
            }
            Verdict::Continue
        }),
    );
    gw.accept(reading("boiler", 120.4));

    println!("6. a service removed at run time: the range check goes");
    diagram.note(
        "application",
        "6. a service removed at run time: the range check goes",
    );
    gw.received.remove(range);
    gw.accept(reading("boiler", 900.4));

    println!(
        "published {} readings; the audit saw {} events; received vetoed {}, delivered vetoed {}",
        gw.published.lock().len(),
        audit.seen.load(Ordering::Relaxed),
        gw.received.counters().vetoed,
        gw.delivered.counters().vetoed
    );
    diagram.finish()
}
