//! Debugging an inverted flow of control: an IoT gateway's reactor with a trace of its upcalls.
//!
//! A stack trace taken inside a handler starts at `handle_events` and tells nothing of what ran
//! before. `ReactorBuilder::trace_upcalls` gives the other view: every upcall, in the order the
//! reactor made it, with the registration, the hook and the answer. With a manual clock and
//! `handle_events` stepped one iteration at a time, the same run prints the same trace every
//! time, so two faults show up as lines: a sensor that answers `Again` after every reading
//! (upcalled once per iteration, after everyone else), and a reading that makes its handler
//! panic (the upcall and the close it causes, named).

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reactor::{
    Context, Disposition, EventHandler, Interest, ManualClock, Outcome, Reactor, Remote, Token,
    UpcallRecord,
};

/// A sensor's connection to the gateway: readings are lines such as `t=21.5`.
struct Sensor {
    stream: UnixStream,
    /// The fault under investigation: this one reads one byte per upcall and answers `Again`.
    one_byte_at_a_time: bool,
    partial: Vec<u8>,
}

impl EventHandler for Sensor {
    fn handle(&self) -> Option<BorrowedFd<'_>> {
        Some(self.stream.as_fd())
    }

    fn handle_input(&mut self, _ctx: &mut dyn Context) -> Disposition {
        let mut buf = [0u8; 64];
        let want = if self.one_byte_at_a_time {
            1
        } else {
            buf.len()
        };
        loop {
            match self.stream.read(&mut buf[..want]) {
                Ok(0) => return Disposition::Close,
                Ok(n) => {
                    self.partial.extend_from_slice(&buf[..n]);
                    assert!(
                        !self.partial.starts_with(b"t=NaN"),
                        "a reading that is not a number"
                    );
                    if self.one_byte_at_a_time {
                        return Disposition::Again;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Disposition::Continue,
                Err(_) => return Disposition::Close,
            }
        }
    }
}

/// The gateway's watchdog: a periodic timer, and configuration changes posted to it (the
/// default hooks answer `Continue`).
struct Watchdog;

impl EventHandler for Watchdog {}

fn connect(
    reactor: &mut Reactor,
    names: &mut HashMap<Token, &'static str>,
    name: &'static str,
    one_byte_at_a_time: bool,
) -> Result<UnixStream, Box<dyn std::error::Error>> {
    let (ours, theirs) = UnixStream::pair()?;
    ours.set_nonblocking(true)?;
    let sensor = Sensor {
        stream: ours,
        one_byte_at_a_time,
        partial: Vec::new(),
    };
    names.insert(reactor.register(sensor, Interest::READ)?, name);
    Ok(theirs)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let clock = Arc::new(ManualClock::default());
    let trace: Arc<Mutex<Vec<UpcallRecord>>> = Arc::default();
    let log = trace.clone();
    let mut reactor = Reactor::builder()
        .clock(clock.clone())
        .trace_upcalls(move |record| log.lock().expect("trace").push(*record))
        .build()?;
    let mut names = HashMap::new();
    let watchdog = reactor.register(Watchdog, Interest::NONE)?;
    names.insert(watchdog, "watchdog");
    let one_second = Duration::from_secs(1);
    Context::schedule_timer(
        &mut reactor,
        watchdog,
        one_second,
        Some(one_second),
        Box::new(()),
    )?;
    let mut s1 = connect(&mut reactor, &mut names, "sensor-1", false)?;
    let mut s2 = connect(&mut reactor, &mut names, "sensor-2", true)?;
    let mut s3 = connect(&mut reactor, &mut names, "sensor-3", false)?;
    println!("reactor_debugging: a watchdog (1 s timer) and three sensors; every upcall traced");

    // Each step: what the outside world does, then one iteration of the loop, then its trace,
    // printed and drawn (the sequence diagram on the Reactor page is this run's).
    let mut diagram = String::from(
        "sequenceDiagram\n    participant R as Reactor\n    participant watchdog\n    participant S1 as sensor-1\n    participant S2 as sensor-2\n    participant S3 as sensor-3\n",
    );
    let mut step = |reactor: &mut Reactor, what: &str| -> std::io::Result<()> {
        let upcalls = reactor.handle_events(Some(Duration::from_secs(5)))?;
        println!("\niteration: {what}; upcalls: {upcalls}");
        diagram.push_str(&format!("    Note over R: {what}\n"));
        for r in trace.lock().expect("trace").drain(..) {
            let name = names.get(&r.token).copied().unwrap_or("?");
            println!("  {name:<9} {:<26} -> {}", r.hook.to_string(), r.outcome);
            let id = name.replace("sensor-", "S");
            let back = if r.outcome == Outcome::Panicked {
                "--x"
            } else {
                "-->>"
            };
            diagram.push_str(&format!(
                "    R->>{id}: {}\n    {id}{back}R: {}\n",
                r.hook, r.outcome
            ));
        }
        Ok(())
    };

    clock.advance(one_second);
    reactor
        .remote()
        .notify(watchdog, Box::new("threshold 30.0"))?;
    s1.write_all(b"t=21.5\n")?;
    s2.write_all(b"t=2\n")?;
    step(
        &mut reactor,
        "the watchdog is due, a configuration change is posted, sensors 1 and 2 send",
    )?;
    step(&mut reactor, "nothing new arrives")?;
    step(&mut reactor, "nothing new arrives")?;
    s3.write_all(b"t=NaN\n")?;
    step(
        &mut reactor,
        "sensor-3 sends a reading that is not a number",
    )?;
    drop(s1);
    step(&mut reactor, "sensor-1 hangs up")?;

    println!("\nreading the trace: per iteration timers come first, then notifications, then I/O;");
    println!(
        "sensor-2 answers Again after each byte, so it is upcalled once per iteration, after the others,"
    );
    println!(
        "until it reaches WouldBlock; sensor-3's upcall panicked and the reactor closed it (Panicked),"
    );
    println!(
        "sensor-1's end of stream closed it (Requested); the watchdog and sensor-2 are still registered"
    );
    println!("handlers left: {}", reactor.handlers());
    // `cargo xtask demo` names a file to draw into (and checks or stores what is drawn).
    if let Some(path) = std::env::var_os("POSA_DIAGRAM") {
        let header = "<!-- generated by `cargo xtask demo --diagrams` from a run of reactor_debugging: do not edit -->";
        std::fs::write(path, format!("{header}\n\n```mermaid\n{diagram}```\n"))?;
    }
    Ok(())
}
