//! `logd` with `--concurrency proactor`: the same framers and store as on the reactor, fed by
//! io_uring completions. Three clients send ACE records and syslog messages over TCP; the
//! proactor's handlers frame them in `on_received`, the store writes them; then a client that
//! sends a header announcing an oversized frame is closed and counted, and a graceful stop
//! shows the counters. Where io_uring is refused (a seccomp profile, `io_uring_disabled`),
//! logd warns and serves from the reactor; this demo then says so and its output differs.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};

use logging_service::ace::{AceRecord, ByteOrder, SecondsLayout, encode};
use logging_service::logd::{Logd, LogdConfig};
use logging_service::store::{StoreConfig, read_all};

/// Sends, half-closes, and waits for logd to close: then everything sent is stored.
fn send(addr: SocketAddr, bytes: &[u8]) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.write_all(bytes).expect("send");
    s.shutdown(Shutdown::Write).expect("half-close");
    s.read_to_end(&mut Vec::new())
        .expect("logd closes after end of stream");
}

fn ace(pid: i32, msg: &str) -> Vec<u8> {
    let r = AceRecord {
        priority: 8,
        pid,
        seconds: 1_700_000_000,
        micros: 0,
        message: msg.into(),
    };
    encode(&r, ByteOrder::Little, SecondsLayout::Wide)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("logd-proactor-demo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let logd = Logd::start(LogdConfig {
        ace_port: Some(0),
        syslog_port: Some(0),
        proactor: true,
        max_frame: 4096,
        store: StoreConfig::new(&dir),
        ..LogdConfig::default()
    })?;
    if logd.proactor() {
        println!(
            "logd: TCP listeners and syslog UDP on the proactor (io_uring), timers on the reactor"
        );
    } else {
        println!("logd: io_uring refused here; fell back to the reactor");
    }
    let at = logd.listening();
    let (ace_addr, syslog_addr) = (at.ace.expect("ACE"), at.syslog_tcp.expect("syslog"));

    let mut bytes = Vec::new();
    for msg in ["pump 1 started", "pump 2 started", "pressure nominal"] {
        bytes.extend(ace(42, msg));
    }
    // Written in pieces that cut frames in two: the framer reassembles across completions.
    let mut s = TcpStream::connect(ace_addr)?;
    for piece in bytes.chunks(17) {
        s.write_all(piece)?;
    }
    s.shutdown(Shutdown::Write)?;
    s.read_to_end(&mut Vec::new())?;
    println!("client 1: 3 ACE records in 17-byte pieces");

    send(
        syslog_addr,
        b"<14>1 2026-11-26T10:00:00Z gw app 7 - - link up\n<11>Nov 26 10:00:01 gw app[7]: disk 91% full\n",
    );
    println!("client 2: 2 syslog messages over TCP (RFC 5424 and RFC 3164, newline framing)");

    // An ACE header announcing a 1 MiB payload, past --max-frame 4096: the stream cannot be
    // resynchronised, so the connection is closed and counted.
    let mut hostile = ace(9, "x");
    hostile[4..8].copy_from_slice(&(1u32 << 20).to_le_bytes());
    send(ace_addr, &hostile);
    println!("client 3: an ACE header announcing a 1 MiB record");

    let stats = logd.stop()?;
    println!(
        "stopped: {} ACE and {} syslog records stored, {} rejected, {} connection(s) closed for an oversized frame",
        stats.ace, stats.syslog, stats.rejected, stats.oversized_closed
    );
    for (host, lines) in read_all(&dir)? {
        for line in lines {
            let text = line.split_once(' ').map_or(line.as_str(), |(_, rest)| rest);
            println!("  {host}: {text}");
        }
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
