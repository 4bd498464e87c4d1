//! Listener hygiene: a suspended listener closes its port (connects are refused, not left
//! in a backlog nobody accepts from), open connections go on, and resume listens again.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use logging_service::logd::{Logd, LogdConfig};
use logging_service::store::StoreConfig;

use crate::support::{TempDir, ace_frame, send_and_wait};

#[test]
fn a_suspended_listener_refuses_connects_and_resume_brings_it_back() {
    let dir = TempDir::new("suspend");
    std::fs::create_dir_all(&dir.0).unwrap();
    let conf = dir.0.join("svc.conf");
    let running = "static ACE_Logging \"-p 0\"\nstatic Syslog_Logging \"-p 0\"\n";
    std::fs::write(&conf, running).unwrap();
    let mut logd = Logd::start(LogdConfig {
        svc_conf: Some(conf.clone()),
        store: StoreConfig::new(dir.0.join("data")),
        ..LogdConfig::default()
    })
    .unwrap();
    let ace = logd.listening().ace.unwrap();
    send_and_wait(ace, &ace_frame("before"));
    let mut open = TcpStream::connect(ace).unwrap();
    open.write_all(&ace_frame("open 1")).unwrap();
    // Wait until it is accepted: closing the listener resets connections still in its backlog.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while logd.stats().ace < 2 {
        assert!(std::time::Instant::now() < deadline, "never accepted");
        std::thread::park_timeout(Duration::from_millis(2));
    }

    // No other test's child may hold a copy of the listener while we expect refusals.
    let settled = wrapper_facade::process::without_spawns();
    std::fs::write(&conf, format!("{running}suspend ACE_Logging\n")).unwrap();
    let report = logd.reconfigure().unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(
        TcpStream::connect(ace).unwrap_err().kind(),
        std::io::ErrorKind::ConnectionRefused
    );
    assert!(
        logd.services()
            .iter()
            .any(|s| s.contains("ACE logging (tcp) on") && s.contains("suspended")),
        "{:?}",
        logd.services()
    );
    // The other listener and the open connection go on.
    send_and_wait(
        logd.listening().syslog_tcp.unwrap(),
        b"<14>1 - h1 app - - - syslog\n",
    );
    open.write_all(&ace_frame("open 2")).unwrap();
    open.shutdown(Shutdown::Write).unwrap();
    open.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut rest = Vec::new();
    open.read_to_end(&mut rest).unwrap();
    drop(settled);

    // Resumed: the same address accepts again.
    std::fs::write(&conf, running).unwrap();
    let report = logd.reconfigure().unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(logd.listening().ace, Some(ace));
    send_and_wait(ace, &ace_frame("after"));
    let stats = logd.stop().unwrap();
    assert_eq!((stats.ace, stats.syslog), (4, 1));
}

#[test]
fn udp_rcvbuf_sets_the_syslog_udp_receive_buffer() {
    let dir = TempDir::new("rcvbuf");
    let logd = Logd::start(LogdConfig {
        ace_port: None,
        syslog_port: Some(0),
        store: StoreConfig::new(&dir.0),
        udp_rcvbuf: Some(8192),
        ..LogdConfig::default()
    })
    .unwrap();
    // Linux doubles the request for its bookkeeping.
    assert!(
        logd.services()
            .iter()
            .any(|s| s.ends_with("UDP receive buffer 16384 bytes")),
        "{:?}",
        logd.services()
    );
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(
        b"<14>1 - h1 app - - - over udp",
        logd.listening().syslog_udp.unwrap(),
    )
    .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while logd.stats().syslog_udp < 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the datagram never arrived"
        );
        std::thread::park_timeout(Duration::from_millis(2));
    }
    assert_eq!(logd.stop().unwrap().stored, 1);
}
