//! Leader/Followers' "lack of flexibility", in the logging scenario: the pool's threads are
//! interchangeable and take events in the order the demultiplexer reports them, so an alarm
//! from a sensor cannot be given a thread of its own or run ahead of bulk telemetry that
//! already holds every thread. The remedy shown last is structural, not a setting: a second
//! pool for the urgent handles.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;
use std::time::Duration;

use leader_followers::LeaderFollowers;
use pattern_core::{Context, Dispatcher, Disposition, EventHandler, Interest};

/// A gateway uploading a batch of telemetry: storing it takes a while (here: until the demo
/// releases it).
struct Telemetry {
    name: &'static str,
    stream: UnixStream,
    release: Receiver<()>,
    log: Sender<String>,
}

/// An alarm sensor: its record should be handled at once.
struct Alarm {
    stream: UnixStream,
    log: Sender<String>,
}

fn read_record(stream: &mut UnixStream) -> Option<Disposition> {
    let mut buf = [0u8; 256];
    match stream.read(&mut buf) {
        Ok(0) => Some(Disposition::Close),
        Ok(_) => None,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Some(Disposition::Continue),
        Err(_) => Some(Disposition::Close),
    }
}

impl EventHandler for Telemetry {
    fn handle(&self) -> Option<BorrowedFd<'_>> {
        Some(self.stream.as_fd())
    }

    fn handle_input(&mut self, _ctx: &mut dyn Context) -> Disposition {
        if let Some(d) = read_record(&mut self.stream) {
            return d;
        }
        let _ = self
            .log
            .send(format!("{}: storing a telemetry batch", self.name));
        let _ = self.release.recv();
        let _ = self.log.send(format!("{}: batch stored", self.name));
        Disposition::Continue
    }
}

impl EventHandler for Alarm {
    fn handle(&self) -> Option<BorrowedFd<'_>> {
        Some(self.stream.as_fd())
    }

    fn handle_input(&mut self, _ctx: &mut dyn Context) -> Disposition {
        if let Some(d) = read_record(&mut self.stream) {
            return d;
        }
        let _ = self.log.send("alarm: handled".into());
        Disposition::Continue
    }
}

fn pair() -> io::Result<(UnixStream, UnixStream)> {
    let (ours, peer) = UnixStream::pair()?;
    ours.set_nonblocking(true)?;
    Ok((ours, peer))
}

/// Registers two telemetry gateways on `bulk` and the alarm on `urgent` (or on `bulk` too),
/// runs the pools, keeps both gateways busy, raises the alarm, and reports when it was handled.
fn scenario(mut bulk: Box<dyn Dispatcher>, urgent: Option<Box<dyn Dispatcher>>) -> io::Result<()> {
    let (log_tx, log) = mpsc::channel();
    let mut gateways = Vec::new();
    let mut releases = Vec::new();
    for name in ["gateway-1", "gateway-2"] {
        let (ours, peer) = pair()?;
        let (release_tx, release) = mpsc::channel();
        bulk.register(
            Box::new(Telemetry {
                name,
                stream: ours,
                release,
                log: log_tx.clone(),
            }),
            Interest::READ,
        )
        .map_err(io::Error::other)?;
        gateways.push(peer);
        releases.push(release_tx);
    }
    let (alarm_ours, mut alarm) = pair()?;
    let alarm_handler = Box::new(Alarm {
        stream: alarm_ours,
        log: log_tx,
    });
    let own_pool = urgent.is_some();
    let mut pools = vec![bulk];
    match urgent {
        Some(mut u) => {
            u.register(alarm_handler, Interest::READ)
                .map_err(io::Error::other)?;
            pools.push(u);
        }
        None => {
            pools[0]
                .register(alarm_handler, Interest::READ)
                .map_err(io::Error::other)?;
        }
    }
    let remotes: Vec<_> = pools.iter().map(|p| p.remote()).collect();
    let running: Vec<_> = pools
        .into_iter()
        .map(|mut p| thread::spawn(move || p.run()))
        .collect();

    let next = |log: &Receiver<String>| log.recv().map_err(io::Error::other);
    for g in &mut gateways {
        g.write_all(b"telemetry batch\n")?;
        println!("  {}", next(&log)?);
    }
    alarm.write_all(b"ALARM pressure high\n")?;
    println!("  alarm: raised");
    // With a pool of its own the alarm comes (wait for it); on the shared pool it cannot
    // while every thread is busy, so a bounded look is enough to see it is not handled.
    let handled = if own_pool {
        Some(next(&log)?)
    } else {
        log.recv_timeout(Duration::from_millis(200)).ok()
    };
    match handled {
        Some(line) => println!("  {line} at once, while both gateways are still storing"),
        None => {
            println!("  alarm: not handled while the telemetry holds every thread");
            releases[0].send(()).map_err(io::Error::other)?;
            println!("  {}", next(&log)?);
            println!("  {}, by the first thread set free", next(&log)?);
        }
    }
    for r in &releases {
        let _ = r.send(());
    }
    for r in &remotes {
        r.end();
    }
    for t in running {
        t.join().expect("pool thread")?;
    }
    Ok(())
}

fn main() -> io::Result<()> {
    println!("== one pool of 2 threads for every sensor ==");
    scenario(Box::new(LeaderFollowers::new(2)?), None)?;
    println!("== telemetry on a pool of 2, the alarm on a pool of its own ==");
    scenario(
        Box::new(LeaderFollowers::new(2)?),
        Some(Box::new(LeaderFollowers::new(1)?)),
    )?;
    println!(
        "verdict: a pool's threads are interchangeable and take events as they come; priority takes a pool per class of handles"
    );
    Ok(())
}
