//! A scripted run of `logd`: start it, send from several clients in both wire formats through
//! `logc`'s library (and, for the layouts of older ACE releases, which logc does not send,
//! through the ACE codec), rotate its files from outside and reopen them (what SIGHUP does),
//! stop it gracefully, and summarise what it stored.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use logging_service::ace::{AceRecord, ByteOrder, SecondsLayout, encode};
use logging_service::client::{Client, Format, Message, Transport};
use logging_service::logd::{Logd, LogdConfig};
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

/// A record as logc states it.
fn record(
    host: &str,
    app: &str,
    pid: Option<u32>,
    severity: u8,
    time: (i64, u32),
    text: &str,
) -> Message {
    Message {
        host: host.into(),
        app: app.into(),
        pid,
        facility: 1, // user
        severity,
        msgid: None,
        structured_data: None,
        text: text.into(),
        time,
    }
}

/// Sends `records` over one logc connection and waits until logd has them (TCP: logd closed
/// its side after handling everything; UDP: nothing to wait for).
fn logc_send(
    addr: SocketAddr,
    format: Format,
    transport: Transport,
    records: &[Message],
) -> Result<(), Box<dyn std::error::Error>> {
    let mut client = Client::connect(addr, format, transport)?;
    for m in records {
        client.send(m)?;
    }
    client.finish(Duration::from_secs(10))?;
    Ok(())
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
    let boot: Vec<Message> = ["boot complete", "sensor 3 calibrated", "uplink established"]
        .iter()
        .enumerate()
        .map(|(i, text)| {
            record(
                "ace-node",
                "ace",
                Some(101),
                6,
                (1_700_000_000 + i as i64, 250_000),
                text,
            )
        })
        .collect();
    logc_send(ace_addr, Format::Ace, Transport::Tcp, &boot)?;
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

    let started = record(
        "gateway-1",
        "mqttd",
        Some(812),
        6,
        (1_795_680_000, 0),
        "broker started",
    );
    let mut dropped = record(
        "gateway-1",
        "mqttd",
        Some(812),
        4,
        (1_795_680_001, 500_000),
        "client s-17 dropped",
    );
    dropped.msgid = Some("CONN".into());
    dropped.structured_data = Some("[meta@32473 client=\"s-17\"]".into());
    logc_send(
        syslog_addr,
        Format::Rfc5424,
        Transport::Tcp,
        &[started, dropped],
    )?;
    println!("client gateway-1: 2 syslog RFC 5424 messages over TCP (octet counting)");

    let fault = record(
        "plc-4",
        "ladder",
        Some(33),
        5,
        (1_795_680_002, 0),
        "rung 12 fault cleared",
    );
    logc_send(
        syslog_addr,
        Format::Rfc3164,
        Transport::TcpNewline,
        &[fault],
    )?;
    println!("client plc-4: 1 syslog RFC 3164 message over TCP (newline framing)");

    // The client an operator scripts with: `Message::new` fills in this host, logc and now.
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

    let lost = record(
        "meter-9",
        "meterd",
        None,
        3,
        (1_795_680_003, 0),
        "reading lost",
    );
    logc_send(
        at.syslog_udp.expect("udp"),
        Format::Rfc5424,
        Transport::Udp,
        &[lost],
    )?;
    let bye = record(
        "ace-node",
        "ace",
        Some(101),
        6,
        (1_700_000_100, 250_000),
        "shutting down",
    );
    logc_send(ace_addr, Format::Ace, Transport::Tcp, &[bye])?;
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
