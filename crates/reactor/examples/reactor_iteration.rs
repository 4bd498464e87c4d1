//! The reactor's loop, iteration by iteration, as a run draws it: an IoT gateway whose
//! watchdog timer falls due while a configuration change is posted to it from another thread
//! and a sensor connects; then the sensor's reading; then the sensor hangs up.
//!
//! Each iteration is one `handle_events`: the wait on the demultiplexer (mio's `Poll`), then
//! expired timers, then notifications, then I/O, in that order, whatever arrived first. The
//! reactor emits `tracing` events (target `posa_seq`) at each of these steps, and
//! `cargo xtask demo --diagrams` draws them on the Reactor page. Time is a manual clock and
//! the sockets are Unix-domain ones, whose connect and write make the other end ready at
//! once, so every run takes the same steps.

use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pattern_core::diagram::Diagram;
use reactor::{
    Context, Disposition, EventHandler, Interest, ManualClock, Message, Reactor, Remote, TimerId,
    Token,
};

/// The gateway's watchdog: a one-shot timer and configuration changes posted to it.
struct Watchdog;

impl EventHandler for Watchdog {
    fn handle_timeout(
        &mut self,
        _ctx: &mut dyn Context,
        _id: TimerId,
        _act: &mut (dyn std::any::Any + Send),
    ) -> Disposition {
        println!("  watchdog: checked the sensors' heartbeats");
        Disposition::Continue
    }

    fn handle_notify(&mut self, _ctx: &mut dyn Context, message: Message) -> Disposition {
        if let Ok(change) = message.downcast::<String>() {
            println!("  watchdog: configuration change {change:?}");
        }
        Disposition::Continue
    }
}

/// Accepts sensors' connections (until `WouldBlock`) and registers a [`Sensor`] for each.
struct Listener {
    listener: UnixListener,
    /// The sensors' registrations, for the diagram's names.
    sensors: Arc<Mutex<Vec<Token>>>,
}

impl EventHandler for Listener {
    fn handle(&self) -> Option<BorrowedFd<'_>> {
        Some(self.listener.as_fd())
    }

    fn handle_input(&mut self, ctx: &mut dyn Context) -> Disposition {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    if stream.set_nonblocking(true).is_err() {
                        continue;
                    }
                    println!("  listener: a sensor connected");
                    match ctx.register(Box::new(Sensor { stream }), Interest::READ) {
                        Ok(token) => self.sensors.lock().expect("sensors").push(token),
                        Err(e) => println!("  listener: {e}"),
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Disposition::Continue,
                Err(_) => return Disposition::Close,
            }
        }
    }
}

/// A sensor's connection: each reading is acknowledged.
struct Sensor {
    stream: UnixStream,
}

impl EventHandler for Sensor {
    fn handle(&self) -> Option<BorrowedFd<'_>> {
        Some(self.stream.as_fd())
    }

    fn handle_input(&mut self, _ctx: &mut dyn Context) -> Disposition {
        let mut buf = [0u8; 256];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => {
                    println!("  sensor: hung up");
                    return Disposition::Close;
                }
                Ok(n) => {
                    let reading = String::from_utf8_lossy(&buf[..n]);
                    println!("  sensor: reading {:?}", reading.trim_end());
                    if (&self.stream).write_all(b"ack\n").is_err() {
                        return Disposition::Close;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Disposition::Continue,
                Err(_) => return Disposition::Close,
            }
        }
    }

    fn handle_close(&mut self, _ctx: &mut dyn Context, reason: reactor::CloseReason) {
        println!("  sensor: closed ({reason:?})");
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut diagram = Diagram::from_env("reactor_iteration");
    diagram.alias("main", "gateway main");
    let clock = Arc::new(ManualClock::default());
    let mut reactor = Reactor::builder().clock(clock.clone()).build()?;
    let dir = std::env::temp_dir().join(format!("reactor-iteration-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("sensors.sock");
    let listener = UnixListener::bind(&path)?;
    listener.set_nonblocking(true)?;

    let watchdog = reactor.register(Watchdog, Interest::NONE)?;
    Context::schedule_timer(
        &mut reactor,
        watchdog,
        Duration::from_secs(1),
        None,
        Box::new(()),
    )?;
    let sensors = Arc::new(Mutex::new(Vec::new()));
    let listening = reactor.register(
        Listener {
            listener,
            sensors: sensors.clone(),
        },
        Interest::READ,
    )?;
    diagram.alias(format!("handler {watchdog}"), "watchdog");
    diagram.alias(format!("handler {listening}"), "listener");
    let remote = reactor.remote();

    println!("iteration 1: the watchdog is due, a change is posted, a sensor connects");
    diagram.note(
        "Reactor",
        "iteration 1: the watchdog is due, a change is posted to it, a sensor connects",
    );
    clock.advance(Duration::from_secs(1));
    let poster = std::thread::spawn(move || {
        remote.notify(watchdog, Box::new(String::from("heartbeat every 5 s")))
    });
    poster.join().expect("the posting thread")?;
    let mut sensor = UnixStream::connect(&path)?;
    let upcalls = reactor.handle_events(Some(Duration::from_secs(5)))?;
    println!("  {upcalls} upcalls");
    for token in sensors.lock().expect("sensors").iter() {
        diagram.alias(format!("handler {token}"), "sensor");
    }

    println!("iteration 2: the sensor sends a reading");
    diagram.note("Reactor", "iteration 2: the sensor sends a reading");
    sensor.write_all(b"t=21.5\n")?;
    let upcalls = reactor.handle_events(Some(Duration::from_secs(5)))?;
    let mut ack = [0u8; 4];
    sensor.read_exact(&mut ack)?;
    println!(
        "  {upcalls} upcall, sensor got {:?}",
        String::from_utf8_lossy(&ack).trim_end()
    );

    println!("iteration 3: the sensor hangs up");
    diagram.note("Reactor", "iteration 3: the sensor hangs up");
    drop(sensor);
    let upcalls = reactor.handle_events(Some(Duration::from_secs(5)))?;
    println!("  {upcalls} upcall, {} handlers left", reactor.handlers());

    diagram.pause();
    drop(reactor);
    std::fs::remove_dir_all(&dir)?;
    diagram.finish()?;
    Ok(())
}
