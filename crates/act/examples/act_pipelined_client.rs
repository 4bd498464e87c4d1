//! A pipelined request/response client on the reactor. Each request frame carries its ACT;
//! the server (a thread on 127.0.0.1) holds it opaquely, answers in batches of four in reverse
//! order, and copies the ACT into each response, so every response reaches the completion
//! handler of the request that caused it. Then the same client runs one request at a time,
//! where the ACT is implicit: the only request in flight.

#[path = "support/pipeline.rs"]
#[allow(dead_code)] // shared with the tests and benches, which use more of it
mod pipeline;

use std::error::Error;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use act::Completion;
use parking_lot::Mutex;
use pipeline::{Mode, PipelinedClient, Request, spawn_server};
use reactor::{Interest, Reactor};

const FRUIT: [&str; 8] = [
    "apple", "banana", "cherry", "damson", "elder", "fig", "grape", "hazel",
];

fn main() -> Result<(), Box<dyn Error>> {
    println!("explicit ACTs: 8 requests pipelined, server answers in reversed batches of 4");
    run(Mode::Pipelined, 4, &FRUIT)?;
    println!("implicit ACT: 3 requests one at a time, server answers each at once");
    run(Mode::OneAtATime, 1, &FRUIT[..3])?;
    Ok(())
}

fn run(mode: Mode, batch: usize, words: &[&'static str]) -> Result<(), Box<dyn Error>> {
    let (addr, server) = spawn_server(batch)?;
    let mut client = PipelinedClient::connect(addr, mode, 8)?;
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    for (i, &word) in words.iter().enumerate() {
        let arrivals = arrivals.clone();
        client.submit(Request::new(word, move |outcome: Completion<Vec<u8>>| {
            let line = match outcome {
                Completion::Done(answer) => {
                    format!(
                        "request #{i} {word:?} -> {:?}",
                        String::from_utf8_lossy(&answer)
                    )
                }
                other => format!("request #{i} {word:?} -> {other:?}"),
            };
            println!("  completion handler: {line}");
            arrivals.lock().push(i);
        }));
    }
    let stats = client.stats();
    let mut reactor = Reactor::new()?;
    reactor.register(Box::new(client), Interest::READ | Interest::WRITE)?;
    reactor.serve()?;
    drop(reactor); // closes the connection; the server answers nothing more and exits
    let answered = server.join().expect("server thread")?;
    let order = arrivals.lock().clone();
    let in_order = order.windows(2).all(|w| w[0] < w[1]);
    println!(
        "  server answered {answered}; client completed {}, refused {}; responses in request order: {in_order}",
        stats.completed.load(Ordering::Relaxed),
        stats.rejected.load(Ordering::Relaxed)
    );
    Ok(())
}
