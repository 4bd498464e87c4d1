//! logd's TLS listeners over real sockets: syslog over TLS (RFC 5425), ACE's format and RELP
//! over TLS, each refusal counted while another client goes on being served, the host taken
//! from the certificate, a reload that keeps established sessions, the handshake timeout, the
//! per-peer limits; and real peers: `openssl s_client` and rsyslog's `omfwd` with the `ossl`
//! stream driver. Certificates are made here (rcgen).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use logging_service::tls::ClientAuth;
use rustls::pki_types::ServerName;

use crate::support::tls::{Ca, Pki, client_config, rsyslog_ossl, tls_server};
use crate::support::upstream::{Rsyslogd, messages_of, numbered};
use crate::support::{Server, TempDir, wait_until};

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// A rustls client of `addr` trusting the fleet CA, showing `identity` if given; the
/// handshake is run to its end (`Err`: the client saw it fail).
fn connect(
    pki: &Pki,
    addr: SocketAddr,
    identity: Option<&(String, String)>,
) -> Result<Tls, String> {
    let conn = rustls::ClientConnection::new(
        client_config(&pki.ca.issuer.pem(), identity),
        ServerName::try_from("logd.test").unwrap(),
    )
    .unwrap();
    let sock = TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut tls = rustls::StreamOwned::new(conn, sock);
    while tls.conn.is_handshaking() {
        tls.conn
            .complete_io(&mut tls.sock)
            .map_err(|e| e.to_string())?;
    }
    Ok(tls)
}

/// Whether the server ended the session (an alert or a close) once the client wrote.
fn refused_after_write(mut tls: Tls) -> bool {
    let _ = tls.write_all(b"23 <13>1 - gw9 x - - - sneaky");
    let _ = tls.flush();
    matches!(tls.read(&mut [0u8; 16]), Ok(0) | Err(_))
}

fn octet(msg: &str) -> Vec<u8> {
    format!("{} {msg}", msg.len()).into_bytes()
}

/// Every unwelcome client is refused, logged and counted, while a device that passed the
/// handshake goes on being served between the refusals; its records are stored under its
/// certificate's name, not the host it claims.
#[test]
fn unwelcome_clients_are_refused_and_counted_while_a_device_is_served_under_its_name() {
    let pki = Pki::new("tls-listen-refusals");
    let server = tls_server(
        "tls-refusals",
        &pki,
        ClientAuth::Required,
        &["*.sensors.example"],
        |s| s.host_from_certificate = true,
    );
    let addr = server.at.syslog_tls.unwrap();
    let device = pki.ca.leaf(&["gw1.sensors.example"], false, false);
    let mut good = connect(&pki, addr, Some(&device)).unwrap();
    let mut sent = 0;
    let mut send_good = |good: &mut Tls| {
        // It claims to be another device: the certificate decides.
        good.write_all(&octet(&format!(
            "<13>1 - gw2.sensors.example app - - - good {sent}"
        )))
        .unwrap();
        good.flush().unwrap();
        sent += 1;
        let n = sent;
        wait_until("the device's record stored", || {
            server.output.stats().records == n
        });
    };
    send_good(&mut good);

    // No certificate.
    let refused = match connect(&pki, addr, None) {
        Err(_) => true,
        Ok(t) => refused_after_write(t),
    };
    assert!(refused, "a client without a certificate is refused");
    send_good(&mut good);
    // An expired certificate of the fleet's CA.
    let expired = pki.ca.leaf(&["gw3.sensors.example"], false, true);
    assert!(connect(&pki, addr, Some(&expired)).map_or(true, refused_after_write));
    send_good(&mut good);
    // A certificate of another CA.
    let other = Ca::new("elsewhere").leaf(&["gw4.sensors.example"], false, false);
    assert!(connect(&pki, addr, Some(&other)).map_or(true, refused_after_write));
    send_good(&mut good);
    // A certificate of the fleet's CA whose name is off the allow-list.
    let intruder = pki.ca.leaf(&["intruder.example"], false, false);
    assert!(connect(&pki, addr, Some(&intruder)).map_or(true, refused_after_write));
    send_good(&mut good);
    wait_until("four refusals counted", || {
        server.output.stats().tls_handshake_failures == 4
    });
    drop(good);
    let (stats, stored) = server.stop();
    assert_eq!(stats.tls_sessions, 1);
    assert_eq!(stats.tls_handshake_failures, 4);
    assert_eq!(stats.tls_not_permitted, 1);
    assert_eq!(stats.syslog, 5, "nothing of the refused clients was stored");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].0, "gw1.sensors.example");
    let msgs: Vec<_> = stored[0].1.iter().map(|r| r.message.as_str()).collect();
    assert_eq!(msgs, ["good 0", "good 1", "good 2", "good 3", "good 4"]);
    assert!(stored[0].1.iter().all(|r| r.host == "gw1.sensors.example"));
}

/// A client that connects and never finishes its handshake is closed at the handshake
/// timeout, counted; ACE's format over TLS is served meanwhile.
#[test]
fn a_silent_client_is_closed_at_the_handshake_timeout_and_ace_over_tls_is_served() {
    let pki = Pki::new("tls-listen-timeout");
    let server = tls_server("tls-timeout", &pki, ClientAuth::None, &[], |s| {
        s.syslog_tls_port = None;
        s.ace_tls_port = Some(0);
        s.handshake_timeout = Duration::from_millis(200);
    });
    let addr = server.at.ace_tls.unwrap();
    let mut silent = TcpStream::connect(addr).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut ace = connect(&pki, addr, None).unwrap();
    ace.write_all(&crate::support::ace_frame("over tls"))
        .unwrap();
    ace.flush().unwrap();
    assert_eq!(
        silent.read(&mut [0u8; 1]).unwrap(),
        0,
        "closed by the server"
    );
    wait_until("the ACE record stored", || server.output.stats().ace == 1);
    drop(ace);
    let (stats, stored) = server.stop();
    assert_eq!(stats.tls_handshake_timeouts, 1);
    assert_eq!(stats.tls_handshake_failures, 1);
    assert_eq!(stored[0].1[0].message, "over tls");
}

/// RELP over TLS: the session opens, each record is acknowledged once stored.
#[test]
fn relp_over_tls_acknowledges_stored_records() {
    let pki = Pki::new("tls-listen-relp");
    let server = tls_server("tls-relp", &pki, ClientAuth::None, &[], |s| {
        s.syslog_tls_port = None;
        s.relp_tls_port = Some(0);
    });
    let mut tls = connect(&pki, server.at.relp_tls.unwrap(), None).unwrap();
    let offer = "relp_version=0\nrelp_software=test\ncommands=syslog";
    let msg = "<13>1 - dev app - - - over relp tls";
    let wire = format!(
        "1 open {} {offer}\n2 syslog {} {msg}\n3 close 0\n",
        offer.len(),
        msg.len()
    );
    tls.write_all(wire.as_bytes()).unwrap();
    tls.flush().unwrap();
    let mut answers = String::new();
    let _ = tls.read_to_string(&mut answers);
    assert!(answers.starts_with("1 rsp "), "{answers}");
    assert!(answers.contains("\n2 rsp 6 200 OK\n"), "{answers}");
    assert!(answers.contains("\n3 rsp 6 200 OK\n"), "{answers}");
    let (stats, stored) = server.stop();
    assert_eq!((stats.relp, stats.tls_sessions), (1, 1));
    assert_eq!(stored[0].1[0].message, "over relp tls");
}

/// SIGHUP's reconfiguration reads the certificates again: a session established before goes
/// on, a new one gets the new certificate.
#[test]
fn a_reload_keeps_established_sessions_and_serves_the_new_certificate() {
    let pki = Pki::new("tls-listen-reload");
    let mut server = tls_server("tls-reload", &pki, ClientAuth::None, &[], |_| {});
    let addr = server.at.syslog_tls.unwrap();
    let mut before = connect(&pki, addr, None).unwrap();
    before
        .write_all(&octet("<13>1 - dev app - - - before"))
        .unwrap();
    before.flush().unwrap();
    let (cert, k) = pki
        .ca
        .leaf(&["logd.test", "logd-renewed.test"], true, false);
    std::fs::write(pki.path("server.pem"), cert).unwrap();
    std::fs::write(pki.path("server.key"), k).unwrap();
    server.logd().reconfigure().unwrap();
    let after = connect(&pki, addr, None).unwrap();
    let names =
        logging_service::tls::certificate_names(&after.conn.peer_certificates().unwrap()[0])
            .unwrap();
    assert_eq!(names, ["logd.test", "logd-renewed.test"]);
    before
        .write_all(&octet("<13>1 - dev app - - - after the reload"))
        .unwrap();
    before.flush().unwrap();
    wait_until("both records stored", || server.output.stats().records == 2);
    // A broken key: the running certificates stay, counted.
    std::fs::write(pki.path("server.key"), "not a key").unwrap();
    let _ = server.logd().reconfigure();
    assert!(connect(&pki, addr, None).is_ok());
    drop((before, after));
    let (stats, _) = server.stop();
    assert_eq!((stats.tls_reloads, stats.tls_reload_failures), (1, 1));
}

/// `--max-connections-per-peer`: the connection over the cap is closed at once, counted; a
/// place freed is taken again.
#[test]
fn connections_over_the_per_peer_cap_are_closed_and_counted() {
    let server = Server::start("peer-cap", |c| {
        c.security.max_connections_per_peer = Some(2);
    });
    let addr = server.at.syslog_tcp.unwrap();
    let a = TcpStream::connect(addr).unwrap();
    let mut b = TcpStream::connect(addr).unwrap();
    b.write_all(b"<13>from b\n").unwrap();
    wait_until("b served", || server.output.stats().records == 1);
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    assert_eq!(c.read(&mut [0u8; 1]).unwrap(), 0, "the third is closed");
    drop(a);
    wait_until("a's place freed", || {
        let mut d = TcpStream::connect(addr).unwrap();
        // Until a's close is seen, d is over the cap and closed at once: its write or
        // half-close may then fail, and the next try goes on.
        let _ = d.write_all(b"<13>from d\n");
        let _ = d.shutdown(std::net::Shutdown::Write);
        let _ = d.read(&mut [0u8; 1]);
        server.output.stats().records == 2
    });
    drop(b);
    let (stats, _) = server.stop();
    assert!(stats.peer_connections_refused >= 1);
}

/// `--max-rate-per-peer`: a peer over its rate stops being read (nothing is dropped), while
/// a peer at another address is served meanwhile.
#[test]
fn a_peer_over_its_rate_is_paused_and_another_peer_is_served_meanwhile() {
    use wrapper_facade::{InetAddr, SockConnector};
    let server = Server::start("peer-rate", |c| {
        c.security.max_rate_per_peer = Some(20);
    });
    let addr = server.at.syslog_tcp.unwrap();
    let mut flood = TcpStream::connect(addr).unwrap();
    let burst: String = (0..200).map(|i| format!("<13>flood {i}\n")).collect();
    flood.write_all(burst.as_bytes()).unwrap();
    wait_until("the burst stored", || server.output.stats().records == 200);
    // The bucket owes ~180 records (9 s at 20/s): the next read waits.
    flood.write_all(b"<13>flood late\n").unwrap();
    wait_until("the flood paused", || {
        server.output.stats().peer_rate_pauses >= 1
    });
    let mut other = SockConnector::default()
        .bind_local(InetAddr::from("127.0.0.2:0".parse::<SocketAddr>().unwrap()))
        .connect(&InetAddr::from(addr))
        .unwrap();
    other.write_all(b"<13>another device\n").unwrap();
    // Served while the flood's connection waits for its bucket (about 9 s).
    wait_until("the other peer served", || {
        server.stored().iter().any(|(h, _)| h == "127.0.0.2")
    });
    assert!(
        !server
            .stored()
            .iter()
            .flat_map(|(_, l)| l)
            .any(|r| r.message == "flood late"),
        "the flood is still paused"
    );
    wait_until("the late record stored after the pause", || {
        server.output.stats().records == 202
    });
    drop((flood, other));
    let (stats, _) = server.stop();
    assert_eq!(stats.syslog, 202, "nothing dropped");
    assert!(stats.peer_rate_pauses >= 1);
}

/// `openssl s_client` as the TLS client: one with the fleet's certificate is stored; one
/// without is refused with the reason in the counters.
#[test]
fn openssl_s_client_with_and_without_a_certificate() {
    use std::process::{Command, Stdio};
    let Some(openssl) = pattern_core::peer::program("openssl", "openssl") else {
        return;
    };
    let pki = Pki::new("tls-listen-openssl");
    let server = tls_server("tls-openssl", &pki, ClientAuth::Required, &[], |s| {
        s.host_from_certificate = true;
    });
    let addr = server.at.syslog_tls.unwrap();
    let (cert, key) = pki.write_leaf(&pki.ca, "plc7", &["plc7.example"], false);
    let run = |with_cert: bool| {
        let mut cmd = Command::new(&openssl);
        cmd.args(["s_client", "-quiet", "-connect"])
            .arg(addr.to_string())
            .arg("-CAfile")
            .arg(pki.path("ca.pem"))
            .args(["-verify_return_error", "-servername", "logd.test"]);
        if with_cert {
            cmd.arg("-cert").arg(&cert).arg("-key").arg(&key);
        }
        let mut child = crate::support::spawn(
            cmd.stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )
        .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(&octet("<13>1 - spoofed app - - - via openssl"))
            .unwrap();
        child
    };
    let mut without = run(false);
    wait_until("openssl without a certificate refused", || {
        server.output.stats().tls_handshake_failures == 1
    });
    let mut with = run(true);
    wait_until("openssl's record stored", || {
        server.output.stats().records == 1
    });
    let _ = (with.kill(), without.kill(), with.wait(), without.wait());
    let (stats, stored) = server.stop();
    assert_eq!(stats.tls_sessions, 1);
    assert_eq!(stored[0].0, "plc7.example");
    assert_eq!(stored[0].1[0].message, "via openssl");
}

/// rsyslog's `omfwd` with the OpenSSL stream driver, authenticating logd by name and showing
/// its device certificate: RFC 5425 over TLS, every record stored under the device's name.
#[test]
fn rsyslog_omfwd_over_tls_with_a_device_certificate() {
    let Some(rsyslogd) = rsyslog_ossl() else {
        return;
    };
    let pki = Pki::new("tls-listen-rsyslog");
    let server = tls_server(
        "tls-rsyslog",
        &pki,
        ClientAuth::Required,
        &["*.sensors.example"],
        |s| s.host_from_certificate = true,
    );
    let addr = server.at.syslog_tls.unwrap();
    let (cert, key) = pki.write_leaf(&pki.ca, "dev", &["gw5.sensors.example"], false);
    let work = TempDir::new("rsyslog-tls-work");
    std::fs::create_dir_all(&work.0).unwrap();
    let input = work.0.join("in.log");
    let lines: String = (0..50).map(|i| format!("over tls {i}\n")).collect();
    std::fs::write(&input, lines).unwrap();
    let conf = format!(
        "global(workDirectory=\"{work}\"\n\
           DefaultNetstreamDriverCAFile=\"{ca}\"\n\
           DefaultNetstreamDriverCertFile=\"{cert}\"\n\
           DefaultNetstreamDriverKeyFile=\"{key}\")\n\
         module(load=\"imfile\")\n\
         input(type=\"imfile\" file=\"{input}\" tag=\"sensor\")\n\
         action(type=\"omfwd\" target=\"{ip}\" port=\"{port}\" protocol=\"tcp\"\n\
           StreamDriver=\"ossl\" StreamDriverMode=\"1\" StreamDriverAuthMode=\"x509/name\"\n\
           StreamDriverPermittedPeers=\"logd.test\" TCP_Framing=\"octet-counted\"\n\
           template=\"RSYSLOG_SyslogProtocol23Format\")\n",
        work = work.0.display(),
        ca = pki.path("ca.pem").display(),
        cert = cert.display(),
        key = key.display(),
        input = input.display(),
        ip = addr.ip(),
        port = addr.port(),
    );
    let rsyslog = Rsyslogd::start(&rsyslogd, &work.0, &conf);
    wait_until("rsyslog's 50 records stored", || {
        server.output.stats().records >= 50
    });
    drop(rsyslog);
    let (stats, stored) = server.stop();
    assert_eq!(stats.tls_handshake_failures, 0);
    let ours = messages_of(&stored, "gw5.sensors.example");
    let want = numbered("over tls", 0..50);
    assert_eq!(
        ours, want,
        "stored under the certificate's name: {stored:?}"
    );
}

/// `logc send --tls` with a device certificate, and `logc bench --tls` over 4 connections:
/// every record stored under the certificate's name; a client without a certificate fails
/// with logd's refusal.
#[test]
fn logc_sends_and_benches_over_tls() {
    use std::process::Command;
    let pki = Pki::new("tls-listen-logc");
    let server = tls_server("tls-logc", &pki, ClientAuth::Required, &[], |s| {
        s.host_from_certificate = true;
    });
    let addr = server.at.syslog_tls.unwrap();
    let (cert, key) = pki.write_leaf(&pki.ca, "rtu3", &["rtu3.example"], false);
    let logc = |sub: &str, identity: bool, rest: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_logc"));
        cmd.args([sub, "--server"])
            .arg(addr.to_string())
            .args(["--tls", "--tls-server-name", "logd.test", "--tls-ca"])
            .arg(pki.path("ca.pem"));
        if identity {
            cmd.arg("--tls-cert").arg(&cert).arg("--tls-key").arg(&key);
        }
        crate::support::output(cmd.args(rest)).unwrap()
    };
    let sent = logc("send", true, &["hello over tls"]);
    assert!(sent.status.success(), "{sent:?}");
    let bench = logc("bench", true, &["--count", "400", "--conns", "4"]);
    assert!(bench.status.success(), "{bench:?}");
    let refused = logc("send", false, &["no certificate"]);
    assert!(!refused.status.success());
    wait_until("the refusal counted", || {
        server.output.stats().tls_handshake_failures == 1
    });
    let (stats, stored) = server.stop();
    assert_eq!(stats.syslog, 401);
    assert_eq!(stats.tls_sessions, 5);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].0, "rtu3.example");
    assert_eq!(stored[0].1.len(), 401);
}

/// A svc.conf line gives a TLS listener its own policy; a bad TLS argument or an unreadable
/// certificate refuses the file with its line, before anything starts.
#[test]
fn a_svc_conf_line_carries_its_own_tls_policy_and_bad_ones_are_refused() {
    let pki = Pki::new("tls-listen-svcconf");
    let conf = pki.path("logd.conf");
    let bind = "127.0.0.1".parse().unwrap();
    let policy = format!(
        "--tls-cert {} --tls-key {} --tls-ca {} --tls-client-auth required --host-from certificate",
        pki.path("server.pem").display(),
        pki.path("server.key").display(),
        pki.path("ca.pem").display()
    );
    std::fs::write(&conf, format!("static Syslog_TLS \"-p 0 {policy}\"\n")).unwrap();
    logging_service::services::check_file(&conf, bind).unwrap();
    let server = Server::start("tls-svcconf", |c| c.svc_conf = Some(conf.clone()));
    let addr = server.at.syslog_tls.unwrap();
    assert!(connect(&pki, addr, None).map_or(true, refused_after_write));
    let device = pki.ca.leaf(&["gw6.sensors.example"], false, false);
    let mut tls = connect(&pki, addr, Some(&device)).unwrap();
    tls.write_all(&octet("<13>1 - other app - - - from the svc.conf"))
        .unwrap();
    tls.flush().unwrap();
    wait_until("stored", || server.output.stats().records == 1);
    drop(tls);
    let (stats, stored) = server.stop();
    assert_eq!(stats.tls_handshake_failures, 1);
    assert_eq!(stored[0].0, "gw6.sensors.example");

    for (bad, reason) in [
        (
            "--tls-client-auth always",
            "expected none, optional or required",
        ),
        ("--tls-cert /nonexistent/cert.pem", "/nonexistent/cert.pem"),
        ("--tls-colour blue", "unknown argument `--tls-colour`"),
    ] {
        std::fs::write(
            &conf,
            format!("static Syslog_TLS \"-p 0 {policy} {bad}\"\n"),
        )
        .unwrap();
        let err = logging_service::services::check_file(&conf, bind)
            .unwrap_err()
            .to_string();
        assert!(err.contains(reason) && err.contains(":1"), "{bad}: {err}");
    }
    // Without any certificate, here or as logd's options.
    std::fs::write(&conf, "static Syslog_TLS \"-p 0\"\n").unwrap();
    let err = logging_service::services::check_file(&conf, bind)
        .unwrap_err()
        .to_string();
    assert!(err.contains("needs a certificate and a key"), "{err}");
}

/// RELP over TLS with a sender that does not read its acknowledgements for a while: logd's
/// answers back up (the socket full, then its output limit, then it stops reading); once the
/// sender reads, every acknowledgement arrives, the last ones included.
#[test]
fn relp_over_tls_answers_everything_to_a_sender_that_reads_late() {
    let pki = Pki::new("tls-listen-relp-late");
    let server = tls_server("tls-relp-late", &pki, ClientAuth::None, &[], |s| {
        s.syslog_tls_port = None;
        s.relp_tls_port = Some(0);
    });
    let mut tls = connect(&pki, server.at.relp_tls.unwrap(), None).unwrap();
    let offer = "relp_version=0\nrelp_software=test\ncommands=syslog";
    let n = 60_000u32;
    let mut wire = format!("1 open {} {offer}\n", offer.len());
    for t in 2..n + 2 {
        let msg = format!("<13>1 - dev app - - - r{t}");
        wire.push_str(&format!("{t} syslog {} {msg}\n", msg.len()));
    }
    // The sender writes everything (on a thread of its own, so that a write blocked by
    // logd's back-pressure cannot hang the test), then reads.
    let (tx, rx) = std::sync::mpsc::channel();
    let writer = std::thread::spawn(move || {
        tls.write_all(wire.as_bytes()).unwrap();
        tls.flush().unwrap();
        tx.send(()).unwrap();
        tls
    });
    // Until the write is done logd holds answers it cannot send (nobody reads).
    rx.recv_timeout(Duration::from_secs(60)).unwrap();
    let mut tls = writer.join().unwrap();
    let want = format!("\n{} rsp 6 200 OK\n", n + 1);
    let mut answers = Vec::new();
    let mut buf = [0u8; 65536];
    while !String::from_utf8_lossy(&answers).contains(&want) {
        match tls.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => answers.extend_from_slice(&buf[..k]),
            Err(e) => panic!("after {} bytes of answers: {e}", answers.len()),
        }
    }
    assert!(String::from_utf8_lossy(&answers).contains(&want));
    drop(tls);
    let (stats, _) = server.stop();
    assert_eq!(stats.relp, u64::from(n));
}

/// Settings that cannot work are refused before anything starts: a TLS port without a
/// certificate, per-peer limits on the proactor (its connections are not the reactor's).
#[test]
fn a_tls_port_without_certificates_and_limits_on_the_proactor_are_refused() {
    use logging_service::logd::LogdConfig;
    let mut cfg = LogdConfig::default();
    cfg.security.syslog_tls_port = Some(0);
    let err = cfg.validate().unwrap_err().to_string();
    assert!(err.contains("needs --tls-cert and --tls-key"), "{err}");
    let mut cfg = LogdConfig {
        proactor: true,
        ..LogdConfig::default()
    };
    cfg.security.max_connections_per_peer = Some(4);
    let err = cfg.validate().unwrap_err().to_string();
    assert!(err.contains("not on the proactor's"), "{err}");
}

/// The bench client gathering records into 16 KiB writes (one TLS record each, as rsyslog's
/// `omfwd` sends with a backlog) over 3 connections, the last write of each short: every
/// record is stored once.
#[test]
fn records_gathered_into_16_kib_tls_records_are_each_stored_once() {
    use logging_service::client::{self, BenchConfig, ClientTls, Format, Transport};
    let pki = Pki::new("tls-listen-gathered");
    let server = tls_server("tls-gathered", &pki, ClientAuth::None, &[], |_| {});
    let cfg = BenchConfig {
        count: 10_007,
        rate: 0,
        conns: 3,
        format: Format::Rfc5424,
        transport: Transport::Tcp,
        size: 64,
        tls: Some(ClientTls::new(&pki.path("ca.pem"), "logd.test", None).unwrap()),
        write_bytes: 16 << 10,
    };
    let report = client::bench(server.at.syslog_tls.unwrap(), &cfg, |_| {}).unwrap();
    assert_eq!((report.sent, report.errors), (10_007, 0));
    let (stats, stored) = server.stop();
    assert_eq!((stats.syslog, stats.rejected), (10_007, 0));
    assert_eq!(crate::support::count_lines(&stored), 10_007);
}
