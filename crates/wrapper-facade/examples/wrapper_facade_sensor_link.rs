//! A sensor's link to the logging server over the wrapper facades, in the course's IoT
//! scenario: a server thread and a sensor in one run, blocking sockets throughout.
//!
//! The server thread lives in a `ThreadRegistry` group; the sensor connects with a deadline,
//! sends three readings as records of a fixed size (a fixed-width header and the reading) and
//! reads each 8-byte acknowledgement with `recv_n`, which loops over short reads. The server
//! reads whole records with `recv_n` too, and acknowledges each with its sequence number. Only
//! the main thread prints (the server hands its account back when joined), so the output is
//! the same on every run.

use std::time::Duration;

use wrapper_facade::thread::ThreadRegistry;
use wrapper_facade::{InetAddr, SockAcceptor, SockConnector};

/// A record: an 8-byte right-aligned sequence number, then the reading padded to 24 bytes.
const RECORD: usize = 32;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `cargo xtask demo --diagrams` draws the Wrapper Facade page's connect sequence from this run.
    let diagram = pattern_core::diagram::Diagram::from_env("wrapper_facade_sensor_link");
    let acceptor = SockAcceptor::bind(&InetAddr::loopback_v4(0))?;
    let addr = acceptor.local_addr()?;
    println!("acceptor:  listening on {} (ephemeral port)", addr.ip());

    let registry = ThreadRegistry::default();
    let (report_tx, report_rx) = std::sync::mpsc::channel::<Vec<String>>();
    registry.spawn("logging", "logging-server", move |_token| {
        let mut log = Vec::new();
        let (stream, peer) = acceptor.accept().expect("accept");
        log.push(format!(
            "accepted a connection from {} (peer port is the sensor's)",
            peer.ip()
        ));
        let mut record = [0u8; RECORD];
        loop {
            match stream.recv_n(&mut record) {
                Ok(_) => {
                    // Read as bytes: a record that is not text or not numbered costs only itself.
                    let seq: u64 = String::from_utf8_lossy(&record[..8])
                        .trim()
                        .parse()
                        .unwrap_or(u64::MAX);
                    let reading = String::from_utf8_lossy(&record[8..]);
                    log.push(format!("stored record {seq}: {}", reading.trim_end()));
                    stream
                        .send_n(format!("{seq:>8}").as_bytes())
                        .expect("acknowledge");
                }
                Err(e) if e.is_eof() && e.transferred() == 0 => {
                    log.push("sensor closed its side: end of stream".to_owned());
                    break;
                }
                Err(e) => {
                    log.push(format!("recv_n failed: {e}"));
                    break;
                }
            }
        }
        report_tx.send(log).expect("report");
    })?;

    let stream = SockConnector::default()
        .nodelay(true)
        .connect_timeout(&addr, Duration::from_secs(5))?;
    println!("connector: connected (TCP_NODELAY = {})", stream.nodelay()?);
    for (seq, reading) in [
        "greenhouse-3 t=21.5",
        "greenhouse-3 t=21.7",
        "greenhouse-3 rh=64",
    ]
    .into_iter()
    .enumerate()
    {
        let record = format!("{seq:>8}{reading:<24}");
        stream.send_n(record.as_bytes())?;
        let mut ack = [0u8; 8];
        stream.recv_n(&mut ack)?;
        let acked: usize = String::from_utf8_lossy(&ack).trim().parse()?;
        println!("sensor:    sent record {seq} ({reading}), acknowledged as {acked}");
    }

    // A short read past the end shows the partial count carried by the error.
    stream.shutdown(std::net::Shutdown::Write)?;
    let mut more = [0u8; 8];
    match stream.recv_n(&mut more) {
        Err(e) if e.is_eof() => println!(
            "sensor:    recv_n after half-close: {} of {} bytes, then end of stream",
            e.transferred(),
            e.requested()
        ),
        other => println!("sensor:    unexpected: {other:?}"),
    }

    let outcomes = registry.join_group("logging");
    println!(
        "registry:  joined {} thread(s): {}",
        outcomes.len(),
        outcomes[0].name()
    );
    for entry in report_rx.recv()? {
        println!("server:    {entry}");
    }
    diagram.finish()?;
    Ok(())
}
