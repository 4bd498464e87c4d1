//! Reactor notification: other threads post messages to a handler and closures to the loop
//! through a `ReactorRemote`, an unbounded queue behind one wakeup.
//!
//! Part 1 shows the fairness cap: a producer posts eleven items before the loop runs, and the
//! loop dispatches at most four per iteration, serving a ready socket between the batches.
//! Part 2 has four producers post 1,000 readings while the loop runs, and checks that each
//! producer's readings arrived complete and in order.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::thread::{self, ThreadId};

use reactor::{Context, Disposition, EventHandler, Interest, Message, Reactor, Remote, Removal};

const CAP: usize = 4;
const PRODUCERS: usize = 4;
const PER_PRODUCER: u32 = 250;

/// A reading posted by producer `producer`, the `seq`th it sent.
#[derive(Debug)]
struct Reading {
    producer: usize,
    seq: u32,
    value: u32,
}

/// Asks the aggregator for its summary.
struct Report;

/// Per-producer tallies.
#[derive(Debug, Default)]
struct Tally {
    count: u32,
    sum: u64,
    next_seq: u32,
    in_order: bool,
}

/// The handler other threads post to.
#[derive(Default)]
struct Aggregator {
    tallies: BTreeMap<usize, Tally>,
}

impl EventHandler for Aggregator {
    fn handle_notify(&mut self, _ctx: &mut dyn Context, message: Message) -> Disposition {
        let message = match message.downcast::<Reading>() {
            Ok(r) => {
                let tally = self.tallies.entry(r.producer).or_insert(Tally {
                    in_order: true,
                    ..Tally::default()
                });
                tally.in_order &= r.seq == tally.next_seq;
                tally.next_seq = r.seq + 1;
                tally.count += 1;
                tally.sum += u64::from(r.value);
                // Part 1's single producer is narrated reading by reading.
                if r.producer == 0 {
                    println!("  aggregator: reading #{} = {}", r.seq, r.value);
                }
                return Disposition::Continue;
            }
            Err(other) => other,
        };
        if message.is::<Report>() {
            for (p, t) in self.tallies.iter().filter(|(p, _)| **p > 0) {
                println!(
                    "  aggregator: producer {p}: {} readings, sum {}, in posting order: {}",
                    t.count, t.sum, t.in_order
                );
            }
        }
        Disposition::Continue
    }
}

/// A ready socket: one command per upcall, answering Again while commands remain, so that it
/// shares each iteration with the notifications.
struct Console {
    stream: UnixStream,
    pending: Vec<u8>,
}

impl EventHandler for Console {
    fn handle(&self) -> Option<BorrowedFd<'_>> {
        Some(self.stream.as_fd())
    }

    fn handle_input(&mut self, _ctx: &mut dyn Context) -> Disposition {
        let mut buf = [0u8; 256];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return Disposition::Close,
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Disposition::Close,
            }
        }
        let Some(end) = self.pending.iter().position(|&b| b == b'\n') else {
            return Disposition::Continue;
        };
        let line: Vec<u8> = self.pending.drain(..=end).collect();
        println!(
            "  console: command {:?}",
            String::from_utf8_lossy(&line[..end])
        );
        if self.pending.contains(&b'\n') {
            Disposition::Again
        } else {
            Disposition::Continue
        }
    }
}

fn on_main(main: ThreadId) -> bool {
    thread::current().id() == main
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let main_thread = thread::current().id();
    let mut reactor = Reactor::builder().notify_cap(CAP).build()?;
    let aggregator = reactor.register(Box::<Aggregator>::default(), Interest::NONE)?;
    let stale = reactor.register(Box::<Aggregator>::default(), Interest::NONE)?;
    let (ours, mut theirs) = UnixStream::pair()?;
    ours.set_nonblocking(true)?;
    reactor.register(
        Box::new(Console {
            stream: ours,
            pending: Vec::new(),
        }),
        Interest::READ,
    )?;
    println!(
        "reactor: aggregator and console registered; at most {CAP} notifications per iteration"
    );

    println!("part 1: one producer posts before the loop runs");
    let remote = reactor.remote();
    let producer = thread::spawn(move || -> Result<(), reactor::DispatchError> {
        for seq in 0..10 {
            remote.notify(
                aggregator,
                Box::new(Reading {
                    producer: 0,
                    seq,
                    value: 20 + seq,
                }),
            )?;
        }
        remote.post(Box::new(move |_ctx: &mut dyn Context| {
            println!(
                "  closure: runs on the loop's thread: {}",
                on_main(main_thread)
            );
        }))?;
        println!("producer: posted 10 readings and a closure");
        for seq in 0..3 {
            remote.notify(
                stale,
                Box::new(Reading {
                    producer: 9,
                    seq,
                    value: 0,
                }),
            )?;
        }
        let purged = remote.purge(stale);
        println!("producer: posted 3 readings for a handler going away, then purged {purged}");
        Ok(())
    });
    producer.join().expect("producer thread")?;
    reactor::Context::remove(&mut reactor, stale, Removal::Quiet)?;
    println!("main: removed the handler going away (quietly); nothing was left queued for it");
    theirs.write_all(b"status\nrotate logs\nstatus\n")?;
    println!("main: wrote 3 commands to the console's socket");
    let mut iteration = 0;
    loop {
        let upcalls = reactor.handle_events(Some(std::time::Duration::ZERO))?;
        if upcalls == 0 {
            break;
        }
        iteration += 1;
        println!("reactor: iteration {iteration} ran {upcalls} upcalls");
    }

    println!("part 2: {PRODUCERS} producers post {PER_PRODUCER} readings each while the loop runs");
    let remote = reactor.remote();
    let coordinator = thread::spawn(move || -> Result<(), reactor::DispatchError> {
        let producers: Vec<_> = (1..=PRODUCERS)
            .map(|p| {
                let remote = remote.clone();
                thread::spawn(move || -> Result<(), reactor::DispatchError> {
                    for seq in 0..PER_PRODUCER {
                        let value = p as u32 * 1000 + seq % 10;
                        remote.notify(
                            aggregator,
                            Box::new(Reading {
                                producer: p,
                                seq,
                                value,
                            }),
                        )?;
                    }
                    Ok(())
                })
            })
            .collect();
        for p in producers {
            p.join().expect("producer thread")?;
        }
        println!("coordinator: every producer has posted; asking for the report, then the end");
        // Posted after every reading: the queue is FIFO, so both run after all of them.
        remote.notify(aggregator, Box::new(Report))?;
        remote.post(Box::new(move |ctx: &mut dyn Context| {
            println!(
                "  closure: ending the loop (on the loop's thread: {})",
                on_main(main_thread)
            );
            ctx.end();
        }))?;
        Ok(())
    });
    reactor.serve()?;
    coordinator.join().expect("coordinator thread")?;
    println!(
        "reactor: loop ended; {} handlers registered",
        reactor.handlers()
    );
    Ok(())
}
