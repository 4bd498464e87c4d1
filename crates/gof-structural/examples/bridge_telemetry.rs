//! Bridge demo: telemetry publishers (periodic, on-change) × links (UDP, serial line, file),
//! bound statically, bound dynamically, and swapped while a publisher runs on another thread.

use std::net::UdpSocket;
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use gof_structural::bridge::{
    DynLink, FileLink, Link, LinkedPublisher, OnChangePublisher, PeriodicPublisher, SerialLine,
    SwappableLink, TelemetryFrame, TelemetryPublisher, UdpLink,
};

/// A coolant temperature trace in millidegrees, one sample per second.
const TRACE: [i64; 6] = [80_000, 80_040, 80_900, 81_000, 82_500, 82_510];

fn feed(publisher: &mut dyn TelemetryPublisher) -> Result<Vec<u64>, gof_structural::Error> {
    let t0 = Instant::now();
    let mut sent = Vec::new();
    for (second, value) in TRACE.into_iter().enumerate() {
        let now = t0 + Duration::from_secs(second as u64);
        sent.extend(publisher.record(value, now)?);
        sent.extend(publisher.tick(now)?);
    }
    Ok(sent)
}

fn show(frames: impl IntoIterator<Item = Vec<u8>>) -> String {
    frames
        .into_iter()
        .map(|f| {
            let frame = TelemetryFrame::decode(&f).expect("our own frames decode");
            format!("#{}={}", frame.seq, frame.value)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `cargo xtask demo --diagrams` draws the Bridge page's sequence diagram from this run
    // (the static bridge and the swap; the dynamic part repeats the static one).
    let diagram = pattern_core::diagram::Diagram::from_env("bridge_telemetry");
    println!("trace: {TRACE:?}");

    println!();
    println!("== static bridge: types fixed at compile time ==");
    let (serial, serial_rx) = SerialLine::with_capacity(4096);
    let mut periodic = PeriodicPublisher::new("coolant", Duration::from_secs(2), serial);
    feed(&mut periodic)?;
    println!(
        "periodic (2 s) over {}: {}",
        periodic.link().describe(),
        show(serial_rx.drain_frames()?)
    );

    let collector = UdpSocket::bind("127.0.0.1:0")?;
    collector.set_read_timeout(Some(Duration::from_secs(5)))?;
    let udp = UdpLink::connect(collector.local_addr()?)?;
    let mut on_change = OnChangePublisher::new("coolant", 500, udp);
    let sent = feed(&mut on_change)?;
    let mut datagrams = Vec::new();
    for _ in &sent {
        let mut buf = [0u8; 256];
        let n = collector.recv(&mut buf)?;
        datagrams.push(buf[..n].to_vec());
    }
    println!("on-change (±500) over UDP on loopback: {}", show(datagrams));

    println!();
    diagram.pause();
    println!("== dynamic bridge: any publisher, any link, chosen at run time ==");
    let path = std::env::temp_dir().join("gof-structural-bridge-demo.log");
    let links: Vec<(&str, DynLink)> = vec![
        ("serial", Box::new(SerialLine::with_capacity(4096).0)),
        ("file", Box::new(FileLink::create(&path)?)),
    ];
    for (kind, link) in links {
        let mut publishers: Vec<Box<dyn TelemetryPublisher>> = Vec::new();
        // One link per publisher kind: reopen the same kind for the second publisher.
        let second: DynLink = match kind {
            "serial" => Box::new(SerialLine::with_capacity(4096).0),
            _ => Box::new(FileLink::append(&path)?),
        };
        publishers.push(Box::new(PeriodicPublisher::new(
            "coolant",
            Duration::from_secs(1),
            link,
        )));
        publishers.push(Box::new(OnChangePublisher::new("coolant", 500, second)));
        for publisher in &mut publishers {
            let sent = feed(publisher.as_mut())?;
            println!("{kind:>6}: published {} frames", sent.len());
        }
    }
    let lines = std::fs::read_to_string(&path)?.lines().count();
    println!("the file link holds {lines} lines from both publishers");
    std::fs::remove_file(&path)?;

    println!();
    diagram.resume();
    diagram.note(
        "Client",
        "the publisher runs on another thread, its link in a SwappableLink",
    );
    println!("== swapping the link while the publisher runs on another thread ==");
    let (serial, serial_rx) = SerialLine::with_capacity(4096);
    let (backup, backup_rx) = SerialLine::with_capacity(4096);
    let slot = SwappableLink::new(Arc::new(serial));
    let (orders_tx, orders) = mpsc::channel::<usize>();
    let (done_tx, done) = mpsc::channel::<u64>();
    let link = slot.clone();
    let worker = thread::spawn(move || {
        let mut publisher = OnChangePublisher::new("rpm", 0, link);
        let now = Instant::now();
        let mut value = 1200;
        for count in orders {
            for _ in 0..count {
                value += 10;
                publisher
                    .record(value, now)
                    .expect("serial lines have room");
            }
            done_tx
                .send(publisher.published())
                .expect("main is listening");
        }
    });
    orders_tx.send(3)?;
    println!(
        "publisher thread: {} frames so far, on {}",
        done.recv()?,
        slot.current().describe()
    );
    slot.swap(Arc::new(backup));
    println!("main thread: primary line failed over to the backup line");
    orders_tx.send(2)?;
    println!("publisher thread: {} frames so far", done.recv()?);
    drop(orders_tx);
    worker.join().expect("publisher thread finished");
    println!("primary line carried: {}", show(serial_rx.drain_frames()?));
    println!("backup line carried:  {}", show(backup_rx.drain_frames()?));
    diagram.finish()?;
    Ok(())
}
