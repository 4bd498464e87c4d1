//! Completion by callback, Proactor style: a thread pool runs blocking operations (file reads,
//! directory lookups), each holding the ACT it was given; workers post each result with its
//! ACT to a completion port on the reactor, which runs the matching completion handler on the
//! reactor's thread. A lost operation times out; a duplicate and a forged completion are
//! refused.

#[path = "support/proactor.rs"]
#[allow(dead_code)] // shared with the tests, which use more of it
mod proactor;

use std::collections::HashMap;
use std::error::Error;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use act::{Callbacks, Completion, CompletionToken};
use parking_lot::Mutex;
use proactor::{CompletionPort, Done, Executor, Tick};
use reactor::{Interest, ManualClock, Reactor, Remote};

type Outcome = Result<String, String>;

/// The operations the initiator starts, in order.
enum Op {
    Read(&'static str),
    Lookup(&'static str),
    /// A buggy service that answers twice.
    LookupTwice(&'static str),
    /// A service that loses the ACT.
    Lost,
}

fn main() -> Result<(), Box<dyn Error>> {
    let dir = std::env::temp_dir().join(format!("act-callbacks-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("motd.txt"), "Welcome to the ACT demo.\n")?;
    std::fs::write(dir.join("config.toml"), "threads = 3\nport = 7000\n")?;
    let directory: Arc<HashMap<&str, &str>> = Arc::new(
        [("alpha", "10.0.0.1"), ("beta", "10.0.0.2")]
            .into_iter()
            .collect(),
    );

    let clock = ManualClock::default();
    let callbacks = Callbacks::<Outcome>::with_clock(16, Arc::new(clock.clone()));
    let mut reactor = Reactor::new()?;
    let port = CompletionPort::new(callbacks.clone());
    let rejected = port.rejected();
    let port_token = reactor.register(Box::new(port), Interest::NONE)?;
    let remote = reactor.remote();
    let executor = Executor::new(3);
    println!("reactor: completion port registered; executor: 3 worker threads");

    // Completion handlers run in whatever order the pool finishes; each records its line,
    // and the lines are printed in issue order at the end.
    let log = Arc::new(Mutex::new(Vec::<(usize, String)>::new()));
    let reactor_thread = std::thread::current().id();
    let ops = [
        Op::Read("motd.txt"),
        Op::Read("config.toml"),
        Op::Read("missing.txt"),
        Op::LookupTwice("alpha"),
        Op::Lookup("gamma"),
        Op::Lost,
    ];
    for (i, op) in ops.into_iter().enumerate() {
        let what = match &op {
            Op::Read(name) => format!("read {name}"),
            Op::Lookup(host) | Op::LookupTwice(host) => format!("lookup {host}"),
            Op::Lost => "lookup slow.example (2 s deadline)".to_string(),
        };
        let log = log.clone();
        let label = what.clone();
        let handler = move |outcome: Completion<Outcome>| {
            let here = if std::thread::current().id() == reactor_thread {
                "reactor thread"
            } else {
                "other thread"
            };
            let line = match outcome {
                Completion::Done(Ok(text)) => format!("{label} -> {text} ({here})"),
                Completion::Done(Err(e)) => format!("{label} -> failed: {e} ({here})"),
                Completion::TimedOut => format!("{label} -> timed out ({here})"),
                _ => format!("{label} -> abandoned ({here})"),
            };
            log.lock().push((i, line));
        };
        let token = match op {
            Op::Lost => callbacks.issue_with_timeout(Duration::from_secs(2), handler),
            _ => callbacks.issue(handler),
        }
        .map_err(|e| e.to_string())?;
        println!("initiator: token slot {} for `{what}`", token.slot());

        match op {
            Op::Read(name) => {
                let path = dir.join(name);
                executor.start(token, move || read_file(&path), &remote, port_token);
            }
            Op::Lookup(host) => {
                let directory = directory.clone();
                executor.start(token, move || lookup(&directory, host), &remote, port_token);
            }
            Op::LookupTwice(host) => {
                let (directory, r) = (directory.clone(), remote.clone());
                executor.run(move || {
                    for _ in 0..2 {
                        let result = lookup(&directory, host);
                        let _ = r.notify(port_token, Box::new(Done { act: token, result }));
                    }
                });
            }
            Op::Lost => executor.run(move || {
                let _held = token; // held by the service, then dropped: never returned
            }),
        }
    }

    // A rogue sender makes a token up.
    let forged = CompletionToken::from_raw(0x0bad_c0de_0000_0001);
    let result: Outcome = Ok("forged".into());
    remote.notify(
        port_token,
        Box::new(Done {
            act: forged,
            result,
        }),
    )?;

    clock.advance(Duration::from_secs(3));
    remote.notify(port_token, Box::new(Tick))?;
    println!("initiator: clock moved 3 s; reactor runs until every token is done");
    reactor.serve()?;
    // Join the workers, then let the port see whatever they posted after the last token was
    // done (the duplicate answer may come late).
    drop(executor);
    reactor.reset();
    reactor.handle_events(Some(Duration::ZERO))?;

    let mut lines = log.lock().clone();
    lines.sort();
    println!("completion handlers, in issue order:");
    for (_, line) in &lines {
        println!("  {line}");
    }
    println!(
        "completion port refused {} completions (the duplicate and the forged token)",
        rejected.load(Ordering::Relaxed)
    );
    println!("table: {}", callbacks.report());
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

fn read_file(path: &std::path::Path) -> Outcome {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(format!(
            "{} bytes, {:?}",
            text.len(),
            text.lines().next().unwrap_or("")
        )),
        Err(e) => Err(e.kind().to_string()),
    }
}

fn lookup(directory: &HashMap<&str, &str>, host: &str) -> Outcome {
    directory
        .get(host)
        .map(|a| a.to_string())
        .ok_or_else(|| "no such host".to_string())
}
