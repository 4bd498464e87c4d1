//! A scripted run of `logd`: start it, send from several clients in both wire formats (one of
//! them through `logc`'s library), rotate
//! its files from outside and reopen them (what SIGHUP does), stop it gracefully, and
//! summarise what it stored.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use logging_service::ace::{AceRecord, ByteOrder, SecondsLayout, encode};
use logging_service::client::{Client, Format, Message, Transport};
use logging_service::server::{Logd, LogdConfig};
use logging_service::store::{StoreConfig, read_file, read_records};

/// Sends, half-closes, and waits for logd to close: then everything sent is stored.
fn send(addr: SocketAddr, bytes: &[u8]) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.write_all(bytes).expect("send");
    s.shutdown(Shutdown::Write).expect("half-close");
    let mut rest = Vec::new();
    s.read_to_end(&mut rest)
        .expect("logd closes after end of stream");
}

fn ace(pid: i32, seconds: i64, msg: &str, order: ByteOrder, layout: SecondsLayout) -> Vec<u8> {
    let r = AceRecord {
        priority: 8,
        pid,
        seconds,
        micros: 250_000,
        message: msg.into(),
    };
    encode(&r, order, layout)
}

fn octet(msg: &str) -> Vec<u8> {
    format!("{} {msg}", msg.len()).into_bytes()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("logd-demo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cfg = LogdConfig {
        ace_port: Some(0),
        syslog_port: Some(0),
        store: StoreConfig::new(&dir),
        ..LogdConfig::default()
    };
    let logd = Logd::start(cfg)?;
    let at = logd.listening();
    let output = logd.output();
    println!("logd: started on the reactor; ACE over TCP, syslog over TCP and UDP, on 127.0.0.1");

    let ace_addr = at.ace.expect("ACE listener");
    let syslog_addr = at.syslog_tcp.expect("syslog listener");
    let mut bytes = Vec::new();
    for (i, msg) in ["boot complete", "sensor 3 calibrated", "uplink established"]
        .iter()
        .enumerate()
    {
        bytes.extend(ace(
            101,
            1_700_000_000 + i as i64,
            msg,
            ByteOrder::Little,
            SecondsLayout::Wide,
        ));
    }
    send(ace_addr, &bytes);
    println!("client ace-node: 3 ACE records (little-endian, 8-byte seconds, as ACE 7 sends them)");

    let mut bytes = ace(
        7,
        1_000_000_000,
        "legacy controller online",
        ByteOrder::Big,
        SecondsLayout::Narrow,
    );
    bytes.extend(ace(
        7,
        1_000_000_001,
        "valve 2 opened",
        ByteOrder::Big,
        SecondsLayout::Narrow,
    ));
    send(ace_addr, &bytes);
    println!(
        "client ace-legacy: 2 ACE records (big-endian, 4-byte seconds, as older ACE sends them)"
    );

    let mut bytes = octet("<14>1 2026-11-26T08:00:00.000Z gateway-1 mqttd 812 - - broker started");
    bytes.extend(octet(
        "<12>1 2026-11-26T08:00:01.500Z gateway-1 mqttd 812 CONN [meta@32473 client=\"s-17\"] client s-17 dropped",
    ));
    send(syslog_addr, &bytes);
    println!("client gateway-1: 2 syslog RFC 5424 messages over TCP (octet counting)");

    send(
        syslog_addr,
        b"<13>Nov 26 08:00:02 plc-4 ladder[33]: rung 12 fault cleared\n",
    );
    println!("client plc-4: 1 syslog RFC 3164 message over TCP (newline framing)");

    // logc's library, the client an operator scripts with: one connection, two records.
    let mut logc = Client::connect(syslog_addr, Format::Rfc5424, Transport::Tcp)?;
    for (i, text) in ["pressure 2.1 bar", "pressure 2.4 bar"].iter().enumerate() {
        let mut m = Message::new(*text);
        m.host = "sensor-12".into();
        m.app = "pressured".into();
        m.pid = Some(7);
        m.severity = 6;
        m.time = (1_764_144_000 + i as i64, 0);
        logc.send(&m)?;
    }
    logc.finish(Duration::from_secs(10))?;
    println!("client sensor-12: 2 records through logc's library (RFC 5424 over TCP)");

    // Rotate from outside, as logrotate would, then reopen: what SIGHUP does in the binary.
    std::fs::rename(dir.join("127.0.0.1.log"), dir.join("127.0.0.1.log.rotated"))?;
    output.reopen()?;
    println!("reconfigure: 127.0.0.1.log moved away, files reopened (SIGHUP)");

    let udp = UdpSocket::bind("127.0.0.1:0")?;
    udp.send_to(
        b"<11>1 2026-11-26T13:30:03.000+05:30 meter-9 meterd - - - reading lost",
        at.syslog_udp.expect("udp"),
    )?;
    send(
        ace_addr,
        &ace(
            101,
            1_700_000_100,
            "shutting down",
            ByteOrder::Little,
            SecondsLayout::Wide,
        ),
    );
    println!("client meter-9: 1 syslog datagram over UDP; client ace-node: 1 more ACE record");
    // A datagram carries no acknowledgement: wait until it is stored (bounded).
    let deadline = Instant::now() + Duration::from_secs(10);
    while output.stats().records < 12 && Instant::now() < deadline {
        std::thread::park_timeout(Duration::from_millis(2));
    }

    let stats = logd.stop()?;
    println!(
        "logd: stopped gracefully; {} records stored ({} ACE, {} syslog), {} rejected, {} connections",
        stats.stored, stats.ace, stats.syslog, stats.rejected, stats.connections
    );
    println!(
        "stored files (TIME in UTC, HOST, APP[PID], FACILITY.SEVERITY, the sender's own time, MSGID, STRUCTURED-DATA, message), read back with store::read_records:"
    );
    let rotated = read_file(&dir.join("127.0.0.1.log.rotated"))?;
    println!(
        "  127.0.0.1.log.rotated: {} record(s), from before the reopen",
        rotated.len()
    );
    for (host, records) in read_records(&dir)? {
        println!("  {host}.log: {} record(s)", records.len());
        for r in records {
            let mut line = String::new();
            r.as_record().write_line(&mut line);
            let line = line.trim_end().to_string();
            // RFC 3164 carries no year or zone: its line is stamped on receipt; hide that one.
            let shown = if host == "plc-4" {
                line.split_once(' ')
                    .map_or(line.clone(), |(_, r)| format!("<received> {r}"))
            } else {
                line
            };
            println!("    {shown}");
        }
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
