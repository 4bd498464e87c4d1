//! Many clients under each concurrency model, rotation, forwarding, graceful stop.

use std::thread;

use logging_service::ace::{AceRecord, ByteOrder, SecondsLayout, encode};
use logging_service::store::Durability;

use crate::support::{Server, count_lines, send_and_wait, set_model};

fn ace(i: usize, msg: String) -> Vec<u8> {
    let r = AceRecord {
        priority: 8,
        pid: i as i32,
        seconds: 1_700_000_000,
        micros: 0,
        message: msg,
    };
    let order = if i % 2 == 0 {
        ByteOrder::Little
    } else {
        ByteOrder::Big
    };
    let layout = if i % 3 == 0 {
        SecondsLayout::Narrow
    } else {
        SecondsLayout::Wide
    };
    encode(&r, order, layout)
}

fn clients_under(model: &str) {
    const M: usize = 16;
    const N: usize = 500;
    let server = Server::start(model, |c| set_model(c, model));
    assert_eq!(server.proactor(), model == "proactor");
    let (ace_addr, syslog_addr) = (server.at.ace.unwrap(), server.at.syslog_tcp.unwrap());
    let clients: Vec<_> = (0..M)
        .map(|c| {
            thread::spawn(move || {
                let mut bytes = Vec::new();
                for r in 0..N {
                    let msg = format!("client {c} record {r} {}", "x".repeat(r % 50));
                    if c % 2 == 0 {
                        bytes.extend(ace(c, msg));
                    } else if c % 4 == 1 {
                        let m = format!("<14>1 2026-11-26T00:00:00Z host{c} app {c} - - {msg}");
                        bytes.extend(format!("{} {m}", m.len()).into_bytes());
                    } else {
                        bytes.extend(
                            format!("<14>Nov 26 00:00:00 host{c} app[{c}]: {msg}\n").into_bytes(),
                        );
                    }
                }
                // Write in odd-sized pieces so frames straddle reads.
                let addr = if c % 2 == 0 { ace_addr } else { syslog_addr };
                send_and_wait(addr, &bytes);
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    let (stats, stored) = server.stop();
    assert_eq!(stats.records, (M * N) as u64, "{model}: {stats:?}");
    assert_eq!(stats.rejected, 0);
    // Every record exactly once, intact, one per line, each client's in order.
    let mut seen = vec![vec![]; M];
    for (_, lines) in &stored {
        for rec in lines {
            let line = &rec.message;
            let mut words = line.strip_prefix("client ").expect("garbled").split(' ');
            let c: usize = words.next().unwrap().parse().unwrap();
            let r: usize = words.nth(1).unwrap().parse().unwrap();
            assert_eq!(
                line,
                &format!("client {c} record {r} {}", "x".repeat(r % 50)),
                "garbled"
            );
            seen[c].push(r);
        }
    }
    for (c, rs) in seen.iter().enumerate() {
        assert_eq!(*rs, (0..N).collect::<Vec<_>>(), "{model}: client {c}");
    }
}

#[test]
fn sixteen_clients_reactor() {
    clients_under("reactor");
}

#[test]
fn sixteen_clients_leader_followers() {
    clients_under("leader-followers:2");
}

#[test]
fn sixteen_clients_half_sync_half_async() {
    clients_under("half-sync-half-async:2");
}

#[test]
fn sixteen_clients_proactor() {
    clients_under("proactor");
}

#[test]
fn rotation_keeps_the_configured_number_of_files() {
    let server = Server::start("rotate", |c| {
        c.store.rotate_bytes = 4096;
        c.store.keep = 2;
        c.store.durability = Durability::EveryBatch;
    });
    let addr = server.at.ace.unwrap();
    for batch in 0..20 {
        let bytes: Vec<u8> = (0..10)
            .flat_map(|i| ace(0, format!("batch {batch} record {i} padding padding")))
            .collect();
        send_and_wait(addr, &bytes);
    }
    let (stats, stored, files) = server.stop_with_files();
    assert_eq!(stats.records, 200);
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["127.0.0.1.log", "127.0.0.1.log.1", "127.0.0.1.log.2"]
    );
    assert!(files.iter().all(|(_, len)| *len <= 4096), "{files:?}");
    // The newest records are in the current file.
    let current = &stored.iter().find(|(h, _)| h == "127.0.0.1").unwrap().1;
    assert_eq!(
        current.last().unwrap().message,
        "batch 19 record 9 padding padding"
    );
}

#[test]
fn forwarding_to_a_second_logd() {
    let upstream = Server::start("upstream", |c| c.ace_port = None);
    let up_addr = upstream.at.syslog_tcp.unwrap();
    let edge = Server::start("edge", |c| c.forward = Some(up_addr));
    let bytes: Vec<u8> = (0..100)
        .flat_map(|i| ace(1, format!("forwarded {i}")))
        .collect();
    send_and_wait(edge.at.ace.unwrap(), &bytes);
    // Stopping the edge drains its forwarder.
    let (edge_stats, _) = edge.stop();
    assert_eq!(edge_stats.records, 100);
    upstream.wait_for_records(100);
    let stored = upstream.stored();
    assert_eq!(stored.len(), 1);
    let (host, lines) = &stored[0];
    assert_eq!(
        host, "127.0.0.1",
        "the original client host travels in the HOSTNAME field"
    );
    assert_eq!(lines.len(), 100);
    let last = &lines[99];
    assert_eq!(
        (
            last.app.as_deref(),
            last.pid.as_deref(),
            last.priority().as_str()
        ),
        (Some("ace"), Some("1"), "user.info"),
        "{last:?}"
    );
    assert_eq!(last.message, "forwarded 99");
}

#[test]
fn graceful_stop_writes_everything_read() {
    let server = Server::start("graceful", |_| {});
    let addr = server.at.ace.unwrap();
    // Clients still connected and sending when the stop comes. All connect before any
    // sends: the stop may come before a late one could connect.
    let streams: Vec<_> = (0..4)
        .map(|_| std::net::TcpStream::connect(addr).unwrap())
        .collect();
    let writers: Vec<_> = streams
        .into_iter()
        .enumerate()
        .map(|(c, mut s)| {
            thread::spawn(move || {
                use std::io::Write;
                for i in 0..2000 {
                    if s.write_all(&ace(c, format!("c{c} r{i}"))).is_err() {
                        break;
                    }
                }
            })
        })
        .collect();
    server.wait_for_records(100);
    let (stats, stored) = server.stop();
    for w in writers {
        w.join().unwrap();
    }
    assert!(stats.records >= 100);
    assert_eq!(
        count_lines(&stored) as u64,
        stats.records,
        "every record counted as read is in the files"
    );
}

#[test]
fn idle_clients_are_closed() {
    let server = Server::start("idle", |c| c.idle = std::time::Duration::from_secs(1));
    let mut quiet = std::net::TcpStream::connect(server.at.syslog_tcp.unwrap()).unwrap();
    quiet
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let mut buf = [0u8; 1];
    use std::io::Read;
    // Other tests signal the process group: a signal may interrupt the read.
    let n = loop {
        match quiet.read(&mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            r => break r.unwrap(),
        }
    };
    assert_eq!(n, 0, "the server closed the idle connection");
    let (stats, _) = server.stop();
    assert_eq!(stats.idle_closed, 1);
}

/// rsyslog (Debian's `rsyslog`, installed by `.ci/run`) as the upstream: it accepts what the
/// forwarder sends (RFC 5424, octet counting) and keeps host, app and message apart.
/// RFC 5424 records through an edge logd to an upstream logd: MSGID, STRUCTURED-DATA (with
/// its escapes), the sender's own timestamp and offset, and so TIME, are the same upstream.
#[test]
fn forwarding_keeps_msgid_structured_data_and_the_senders_time() {
    let upstream = Server::start("upstream-sd", |c| c.ace_port = None);
    let edge = Server::start("edge-sd", |c| {
        c.forward = Some(upstream.at.syslog_tcp.unwrap())
    });
    let sent = [
        "<165>1 2026-11-26T08:00:01.5+05:30 gw-1 mqttd 812 ID47 [ex@32473 a=\"x\\]y\\\"z\\\\\" b=\"h\u{f4}te\"][meta seq=\"1\"] valve stuck",
        "<14>1 2026-01-01T00:00:00Z gw-1 app - - - no msgid, no sd",
        "<11>Nov 14 22:13:20 gw-1 bsd[9]: from rfc 3164",
    ];
    let bytes: String = sent.iter().map(|m| format!("{} {m}", m.len())).collect();
    send_and_wait(edge.at.syslog_tcp.unwrap(), bytes.as_bytes());
    let edge_records = edge.stored();
    edge.stop();
    upstream.wait_for_records(3);
    let (_, stored) = upstream.stop();
    let up = &stored.iter().find(|(h, _)| h == "gw-1").unwrap().1;
    let edge = &edge_records.iter().find(|(h, _)| h == "gw-1").unwrap().1;
    assert_eq!(up.len(), 3);
    let r = &up[0];
    assert_eq!(r.msgid.as_deref(), Some("ID47"));
    assert_eq!(
        r.sd.as_deref(),
        Some("[ex@32473 a=\"x\\]y\\\"z\\\\\" b=\"h\u{f4}te\"][meta seq=\"1\"]")
    );
    assert_eq!(r.sent.as_deref(), Some("2026-11-26T08:00:01.5+05:30"));
    assert_eq!(r.time, "2026-11-26T02:30:01.500000Z");
    assert_eq!(r.priority(), "local4.notice");
    // The first two are the same upstream as on the edge, field for field.
    assert_eq!(up[..2], edge[..2]);
    // RFC 3164 has no full time: the edge's UTC TIME travels, and upstream keeps it as SENT.
    assert_eq!(up[2].time, edge[2].time);
    assert_eq!(up[2].sent.as_deref(), Some(edge[2].time.as_str()));
    assert_eq!(
        (up[2].message.as_str(), up[2].msgid.as_deref()),
        ("from rfc 3164", None)
    );
}

#[test]
fn forwarding_to_rsyslog() {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    let Some(rsyslogd_path) = pattern_core::peer::program("rsyslogd", "rsyslog") else {
        return;
    };
    let work = crate::support::TempDir::new("rsyslog");
    std::fs::create_dir_all(&work.0).unwrap();
    // A port picked, freed and handed to rsyslogd, on a loopback address of its own, where
    // the other tests' sockets on 127.0.0.1 cannot take it meanwhile.
    let port = std::net::TcpListener::bind("127.0.0.77:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = work.0.join("out.log");
    let conf = work.0.join("rsyslog.conf");
    std::fs::write(
        &conf,
        format!(
            "global(workDirectory=\"{dir}\")\n\
             module(load=\"imtcp\")\n\
             input(type=\"imtcp\" port=\"{port}\" address=\"127.0.0.77\")\n\
             template(name=\"plain\" type=\"string\" string=\"%HOSTNAME% %APP-NAME% %PROCID% %MSGID% %STRUCTURED-DATA% %msg%\\n\")\n\
             action(type=\"omfile\" file=\"{out}\" template=\"plain\")\n",
            dir = work.0.display(),
            out = out.display()
        ),
    )
    .unwrap();
    let mut rsyslogd = crate::support::spawn(
        Command::new(&rsyslogd_path)
            .args(["-n", "-f"])
            .arg(&conf)
            .arg("-i")
            .arg(work.0.join("rsyslogd.pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    )
    .expect("rsyslogd starts");
    let upstream: std::net::SocketAddr = format!("127.0.0.77:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(upstream).is_err() {
        assert!(
            Instant::now() < deadline,
            "rsyslogd did not start listening"
        );
        assert!(rsyslogd.try_wait().unwrap().is_none(), "rsyslogd exited");
        std::thread::park_timeout(Duration::from_millis(10));
    }
    let edge = Server::start("to-rsyslog", |c| c.forward = Some(upstream));
    let bytes: Vec<u8> = (0..100)
        .flat_map(|i| ace(5, format!("to rsyslog {i}")))
        .collect();
    send_and_wait(edge.at.ace.unwrap(), &bytes);
    // And an RFC 5424 record with MSGID and STRUCTURED-DATA (escapes included), which rsyslog
    // must see as the original sender sent them.
    let sd = r#"[ex@32473 a="x\]y\"z\\"][meta seq="1"]"#;
    let with_sd =
        format!("<165>1 2026-11-26T08:00:01.5+05:30 gw-1 mqttd 812 ID47 {sd} valve stuck");
    send_and_wait(
        edge.at.syslog_tcp.unwrap(),
        format!("{} {with_sd}", with_sd.len()).as_bytes(),
    );
    let (stats, _) = edge.stop();
    assert_eq!(stats.records, 101);
    // rsyslog writes asynchronously: wait (bounded) for all 101 lines.
    let lines = loop {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        if lines.len() >= 101 || Instant::now() > deadline {
            break lines;
        }
        std::thread::park_timeout(Duration::from_millis(10));
    };
    let _ = rsyslogd.kill();
    let _ = rsyslogd.wait();
    assert_eq!(lines.len(), 101, "{lines:?}");
    assert_eq!(lines[0], "127.0.0.1 ace 5 - - to rsyslog 0");
    assert_eq!(lines[99], "127.0.0.1 ace 5 - - to rsyslog 99");
    assert_eq!(lines[100], format!("gw-1 mqttd 812 ID47 {sd} valve stuck"));
}

#[test]
fn udp_senders_are_told_apart_by_address() {
    let server = Server::start("udp-peers", |_| {});
    let addr = server.at.syslog_udp.unwrap();
    // RFC 3164 without a host name: the record's host is the sender's address. Alternate
    // senders (loopback is a /8) so that each datagram's address differs from the last one's.
    let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = std::net::UdpSocket::bind("127.0.0.2:0").unwrap();
    for i in 0..3 {
        a.send_to(format!("<13>from a {i}").as_bytes(), addr)
            .unwrap();
        b.send_to(format!("<13>from b {i}").as_bytes(), addr)
            .unwrap();
    }
    server.wait_for_records(6);
    let (_, stored) = server.stop();
    let hosts: Vec<(&str, Vec<&str>)> = stored
        .iter()
        .map(|(host, lines)| {
            let messages = lines.iter().map(|r| r.message.as_str()).collect();
            (host.as_str(), messages)
        })
        .collect();
    assert_eq!(
        hosts,
        [
            ("127.0.0.1", vec!["from a 0", "from a 1", "from a 2"]),
            ("127.0.0.2", vec!["from b 0", "from b 1", "from b 2"]),
        ]
    );
}
