//! Completion by queued events: the initiator starts requests on a service thread, keeps
//! working, and later drains a completion queue, dispatching each event on the context its
//! token named (an explicit ACT: the initiator's own `Reading` record). The example also shows
//! cancellation handing the context back, the table's bound, a deadline and the report of
//! outstanding tokens.

use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use act::{ActError, Completion, CompletionQueue, CompletionToken};
use crossbeam_channel::unbounded;
use pattern_core::ManualClock;

/// The initiator's state for one request: what to do with the answer.
#[derive(Debug)]
struct Reading {
    sensor: &'static str,
    unit: &'static str,
}

fn main() -> Result<(), Box<dyn Error>> {
    // `cargo xtask demo --diagrams` draws the ACT page's sequence diagram from this run.
    let mut diagram = pattern_core::diagram::Diagram::from_env("act_completion_queue");
    diagram.alias("main", "initiator");
    let clock = ManualClock::default();
    let queue = CompletionQueue::<Reading, f64>::with_clock(5, Arc::new(clock.clone()));

    // The service: holds each token opaquely, then answers everything it got, last first.
    let (requests, inbox) = unbounded::<(CompletionToken, &'static str)>();
    let service_queue = queue.clone();
    let service = std::thread::Builder::new()
        .name("service".into())
        .spawn(move || {
            let got: Vec<_> = inbox.iter().collect();
            let mut refused = Vec::new();
            for (token, sensor) in got.into_iter().rev() {
                if sensor == "humidity" {
                    continue; // this sensor is offline: the request is never answered
                }
                let value = match sensor {
                    "boiler" => 81.5,
                    "intake" => 12.25,
                    "exhaust" => 240.0,
                    _ => 1013.0,
                };
                if let Err(e) = service_queue.complete(token, value) {
                    refused.push((sensor, e));
                }
            }
            refused
        })?;

    let sensors = [
        ("boiler", "degC"),
        ("intake", "degC"),
        ("exhaust", "degC"),
        ("pressure", "hPa"),
    ];
    let mut tokens = Vec::new();
    for (sensor, unit) in sensors {
        let token = queue.issue(Reading { sensor, unit })?;
        println!("initiator: asked for {sensor}, token slot {}", token.slot());
        requests.send((token, sensor))?;
        tokens.push(token);
    }
    let humidity = queue.issue_with_timeout(
        Reading {
            sensor: "humidity",
            unit: "%",
        },
        Duration::from_secs(1),
    )?;
    println!(
        "initiator: asked for humidity with a 1 s deadline, token slot {}",
        humidity.slot()
    );
    requests.send((humidity, "humidity"))?;

    // The table holds 5 tokens: a sixth request is refused and its context handed back.
    match queue.issue(Reading {
        sensor: "wind",
        unit: "m/s",
    }) {
        Ok(_) => println!("initiator: unexpected room for wind"),
        Err(full) => {
            println!("initiator: {full}");
            println!(
                "initiator: got back the context for {}",
                full.into_inner().sensor
            );
        }
    }

    // Changed our mind about pressure: cancelling hands the context back.
    let cancelled = queue.cancel(tokens[3])?;
    println!(
        "initiator: cancelled {}, context returned ({})",
        cancelled.sensor, cancelled.unit
    );

    println!("initiator: {}", queue.report());
    drop(requests);
    let refused = service.join().expect("service thread");
    for (sensor, e) in refused {
        println!("service: answer for {sensor} refused: {}", describe(&e));
    }

    clock.advance(Duration::from_secs(2));
    println!(
        "initiator: clock moved 2 s, {} token(s) expired",
        queue.poll_expired()
    );

    println!("initiator: draining {} completion event(s)", queue.queued());
    while let Some(event) = queue.try_next() {
        let Reading { sensor, unit } = event.context;
        match event.completion {
            Completion::Done(value) => println!("  {sensor} = {value} {unit}"),
            Completion::TimedOut => println!("  {sensor}: no answer before the deadline"),
            _ => println!("  {sensor}: abandoned"),
        }
    }
    println!("initiator: {}", queue.report());
    diagram.finish()?;
    Ok(())
}

fn describe(e: &ActError) -> &'static str {
    match e {
        ActError::Duplicate { .. } => "the token was already cancelled",
        ActError::Stale { .. } => "stale token",
        ActError::Forged { .. } => "forged token",
        _ => "other error",
    }
}
