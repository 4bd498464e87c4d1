//! Reactor signals: SIGHUP reconfigures, SIGTERM stops, both dispatched on the loop's thread as
//! ordinary upcalls, read from a signal fd rather than run inside an async signal handler.
//!
//! The main thread blocks both signals before any other thread exists, so every thread
//! inherits the mask and a signal sent to the process stays pending until the reactor reads it.
//! An administrator thread then runs `kill` against this process, as an operator would.

use std::sync::mpsc::{self, Sender};
use std::thread::{self, ThreadId};

use reactor::{CloseReason, Context, Disposition, EventHandler, Interest, Reactor};
use wrapper_facade::process::{ExitStatus, Process, ProcessOptions};
use wrapper_facade::signal::{Signal, SignalSet};

const LEVELS: [&str; 3] = ["info", "debug", "trace"];

/// Holds the service's configuration and reacts to the administrator's signals.
struct Configurator {
    loop_thread: ThreadId,
    version: usize,
    handled: Sender<Signal>,
}

impl EventHandler for Configurator {
    fn handle_signal(&mut self, ctx: &mut dyn Context, signal: i32) -> Disposition {
        let on_loop = thread::current().id() == self.loop_thread;
        let signal = Signal::from_raw(signal).expect("the reactor hands over real signals");
        if signal == Signal::HUP {
            self.version += 1;
            println!(
                "  configurator: {signal} (on the loop thread: {on_loop}): reloaded configuration v{}, log level {}",
                self.version,
                LEVELS[(self.version - 1) % LEVELS.len()]
            );
        } else if signal == Signal::TERM {
            println!("  configurator: {signal} (on the loop thread: {on_loop}): ending the loop");
            ctx.end();
        }
        let _ = self.handled.send(signal);
        Disposition::Continue
    }

    fn handle_close(&mut self, _ctx: &mut dyn Context, reason: CloseReason) {
        println!(
            "  configurator: closed ({reason:?}) at configuration v{}",
            self.version
        );
    }
}

/// Sends `signal` to process `pid` with kill(1), as an operator would.
fn kill(signal: Signal, pid: u32) -> std::io::Result<ExitStatus> {
    let name = signal.name().trim_start_matches("SIG");
    Process::spawn(
        ProcessOptions::new("kill")
            .arg("-s")
            .arg(name)
            .arg(pid.to_string()),
    )?
    .wait()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `cargo xtask demo --diagrams` draws the Wrapper Facade page's signal sequence from this
    // run (the signal fd's calls; the admin thread's notes are made before each kill).
    let mut diagram = pattern_core::diagram::Diagram::from_env("reactor_signals");
    diagram.alias("main", "event-loop thread");
    // First, before any thread is spawned: threads inherit the mask.
    SignalSet::default()
        .with(Signal::HUP)
        .with(Signal::TERM)
        .block_current_thread()?;
    println!("main: SIGHUP and SIGTERM blocked before any thread starts");

    let mut reactor = Reactor::new()?;
    let (handled_tx, handled) = mpsc::channel();
    let token = reactor.register(
        Box::new(Configurator {
            loop_thread: thread::current().id(),
            version: 1,
            handled: handled_tx,
        }),
        Interest::NONE,
    )?;
    diagram.alias(format!("handler {token}"), "configurator");
    reactor.watch_signal(token, Signal::HUP.as_raw())?;
    reactor.watch_signal(token, Signal::TERM.as_raw())?;
    println!(
        "reactor: configurator registered, watching SIGHUP and SIGTERM (configuration v1, log level info)"
    );
    let diagram = std::sync::Arc::new(diagram);

    let pid = std::process::id();
    let admin_diagram = diagram.clone();
    let admin = thread::spawn(move || -> std::io::Result<()> {
        for (n, signal) in [Signal::HUP, Signal::HUP, Signal::TERM]
            .into_iter()
            .enumerate()
        {
            // While drawing: the loop waits in its poll before each kill.
            admin_diagram.wait_for_count("poll(", n + 1);
            admin_diagram.note(
                "admin",
                &format!(
                    "kill -s {} (the signal is blocked: queued, not delivered)",
                    signal.name().trim_start_matches("SIG")
                ),
            );
            println!(
                "admin: kill -s {} <server>",
                signal.name().trim_start_matches("SIG")
            );
            let status = kill(signal, pid)?;
            if status != ExitStatus::Exited(0) {
                return Err(std::io::Error::other(format!("kill failed: {status:?}")));
            }
            // Wait until the loop has dispatched it, so the narrative keeps its order.
            let seen = handled.recv().map_err(std::io::Error::other)?;
            // While drawing: the loop reads the signal fd dry before the next kill.
            admin_diagram.wait_for_count("None (EAGAIN", n + 1);
            println!("admin: the server handled {seen}");
        }
        Ok(())
    });

    reactor.serve()?;
    admin.join().expect("admin thread")?;
    println!("reactor: loop ended with the configurator still registered; dropping the reactor");
    drop(reactor);
    println!("main: exiting normally (the blocked signals never took their default action)");
    std::sync::Arc::try_unwrap(diagram)
        .map_err(|_| std::io::Error::other("the diagram is still shared"))?
        .finish()?;
    Ok(())
}
