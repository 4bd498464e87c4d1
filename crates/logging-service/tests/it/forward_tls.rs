//! The forwarder over TLS (`--forward-tls`) against real upstreams: another logd demanding
//! the edge's certificate (mutual authentication), over RFC 5425 and over RELP; upstreams
//! with a certificate from another CA or for another name, refused (logged, counted) while
//! the records wait in the spool, delivered once a good upstream answers on that port; and
//! rsyslog's `imtcp` with the OpenSSL stream driver in `x509/name` mode. Certificates are
//! made here (rcgen).

use std::net::SocketAddr;
use std::path::PathBuf;

use logging_service::forward::Transport;
use logging_service::forward_tls::ForwardTlsOptions;
use logging_service::logd::LogdConfig;
use logging_service::tls::{ClientAuth, MinVersion};

use crate::support::tls::{Ca, Pki, rsyslog_ossl, tls_server};
use crate::support::upstream::{
    Rsyslogd, forwarding_to, free_port, lines_of_file, messages_of, numbered, send_ace,
};
use crate::support::{Server, TempDir, wait_until};

/// An upstream logd on `ports` (syslog over TLS, RELP over TLS; 0: any) serving `cert`,
/// demanding a client certificate of the fleet CA named `edge.test`, storing under its name.
fn upstream(tag: &str, pki: &Pki, cert: &(PathBuf, PathBuf), ports: (u16, u16)) -> Server {
    tls_server(tag, pki, ClientAuth::Required, &["edge.test"], |s| {
        let tls = s.tls.as_mut().unwrap();
        (tls.cert, tls.key) = cert.clone();
        s.syslog_tls_port = Some(ports.0);
        s.relp_tls_port = Some(ports.1);
        s.host_from_certificate = true;
    })
}

/// An edge logd forwarding to `up` over TLS, trusting the fleet CA, expecting `server_name`,
/// showing the `edge.test` certificate.
fn edge(tag: &str, pki: &Pki, up: SocketAddr, transport: Transport, server_name: &str) -> Server {
    let identity = pki.write_leaf(&pki.ca, "edge", &["edge.test"], false);
    let tls = ForwardTlsOptions {
        ca: pki.path("ca.pem"),
        identity: Some(identity),
        server_name: Some(server_name.into()),
        min_version: MinVersion::Tls12,
    };
    Server::start(tag, move |c: &mut LogdConfig| {
        forwarding_to(up, transport)(c);
        c.forwarding.tls = Some(tls);
    })
}

/// logd → logd over RFC 5425 and over RELP over TLS, both sides authenticated: every record
/// arrives once, in order, stored under the edge's certificate name.
#[test]
fn logd_forwards_to_logd_over_tls_with_mutual_authentication() {
    for (transport, tag) in [(Transport::Plain, "syslog"), (Transport::Relp, "relp")] {
        let pki = Pki::new(&format!("fwd-tls-{tag}"));
        let server = (pki.path("server.pem"), pki.path("server.key"));
        let up = upstream(&format!("fwd-tls-up-{tag}"), &pki, &server, (0, 0));
        let addr = match transport {
            Transport::Relp => up.at.relp_tls.unwrap(),
            _ => up.at.syslog_tls.unwrap(),
        };
        let edge = edge(
            &format!("fwd-tls-edge-{tag}"),
            &pki,
            addr,
            transport,
            "logd.test",
        );
        let fwd = edge.forwarder();
        send_ace(&edge, tag, 0..300);
        wait_until("300 forwarded", || fwd.stats().forwarded == 300);
        edge.stop();
        let f = fwd.stats();
        assert_eq!(
            (
                f.queued,
                f.dropped(),
                f.tls_handshake_failures,
                f.relp_resent
            ),
            (0, 0, 0, 0),
            "{tag}: {f:?}"
        );
        wait_until("300 stored upstream", || up.output.stats().records == 300);
        let (stats, stored) = up.stop();
        assert_eq!(stats.tls_handshake_failures, 0);
        assert!(stats.tls_sessions >= 1);
        assert_eq!(
            messages_of(&stored, "edge.test"),
            numbered(tag, 0..300),
            "{tag}"
        );
    }
}

/// Upstreams on one port: one whose certificate is from another CA, then one whose
/// certificate names another host. Each handshake is refused by the forwarder, counted, and no
/// record goes; the records wait in the spool and reach the good upstream that comes next,
/// once each.
#[test]
fn upstreams_with_a_foreign_ca_or_a_wrong_name_are_refused_and_the_records_wait() {
    let pki = Pki::new("fwd-tls-refused");
    let rogue_ca = Ca::new("rogue");
    let rogue = pki.write_leaf(&rogue_ca, "rogue", &["logd.test"], true);
    let wrong_name = pki.write_leaf(&pki.ca, "wrong", &["other.test"], true);
    let good = (pki.path("server.pem"), pki.path("server.key"));

    let bad = upstream("fwd-tls-rogue", &pki, &rogue, (0, 0));
    let addr = bad.at.syslog_tls.unwrap();
    let edge = edge(
        "fwd-tls-refused-edge",
        &pki,
        addr,
        Transport::Plain,
        "logd.test",
    );
    let fwd = edge.forwarder();
    send_ace(&edge, "kept", 0..40);
    wait_until("the foreign CA refused twice", || {
        fwd.stats().tls_handshake_failures >= 2
    });
    let f = fwd.stats();
    assert_eq!((f.forwarded, f.queued, f.dropped()), (0, 40, 0), "{f:?}");
    let (stats, stored) = bad.stop();
    assert_eq!(stats.records, 0);
    assert!(stored.is_empty());
    // The forwarder's alert reached the upstream, which counted the failed handshake too.
    assert!(stats.tls_handshake_failures >= 1, "{stats:?}");

    let refused = fwd.stats().tls_handshake_failures;
    let bad = upstream("fwd-tls-wrong-name", &pki, &wrong_name, (addr.port(), 0));
    wait_until("the wrong name refused", || {
        fwd.stats().tls_handshake_failures >= refused + 2
    });
    let f = fwd.stats();
    assert_eq!((f.forwarded, f.queued), (0, 40), "{f:?}");
    let (stats, _) = bad.stop();
    assert_eq!(stats.records, 0);

    let up = upstream("fwd-tls-good", &pki, &good, (addr.port(), 0));
    wait_until("40 forwarded to the good upstream", || {
        fwd.stats().forwarded == 40
    });
    send_ace(&edge, "later", 0..10);
    wait_until("50 forwarded", || fwd.stats().forwarded == 50);
    edge.stop();
    let f = fwd.stats();
    assert_eq!((f.queued, f.dropped()), (0, 0), "{f:?}");
    assert!(f.reconnects <= 1 && f.outages >= 1, "{f:?}");
    wait_until("50 stored upstream", || up.output.stats().records == 50);
    let (_, stored) = up.stop();
    let mut want = numbered("kept", 0..40);
    want.extend(numbered("later", 0..10));
    assert_eq!(messages_of(&stored, "edge.test"), want);
}

/// SIGHUP reads the forwarder's certificate again: the session established before goes on
/// (no outage), and the next session shows the new certificate.
#[test]
fn a_reload_keeps_the_forwarders_session_and_the_next_one_shows_the_new_certificate() {
    let pki = Pki::new("fwd-tls-reload");
    let server = (pki.path("server.pem"), pki.path("server.key"));
    let up = upstream("fwd-tls-reload-up", &pki, &server, (0, 0));
    let addr = up.at.syslog_tls.unwrap();
    let mut edge = edge(
        "fwd-tls-reload-edge",
        &pki,
        addr,
        Transport::Plain,
        "logd.test",
    );
    let fwd = edge.forwarder();
    send_ace(&edge, "before", 0..10);
    wait_until("10 forwarded", || fwd.stats().forwarded == 10);
    pki.write_leaf(&pki.ca, "edge", &["edge-renewed.test", "edge.test"], false);
    edge.logd().reconfigure().unwrap();
    assert_eq!(edge.output.stats().tls_reloads, 1);
    send_ace(&edge, "after", 0..10);
    wait_until("20 forwarded", || fwd.stats().forwarded == 20);
    assert_eq!(fwd.stats().outages, 0, "the reload dropped no session");
    wait_until("20 stored", || up.output.stats().records == 20);
    let (_, stored) = up.stop();
    let mut want = numbered("before", 0..10);
    want.extend(numbered("after", 0..10));
    assert_eq!(messages_of(&stored, "edge.test"), want);
    // A new session (the upstream restarted) shows the renewed certificate.
    let up = upstream("fwd-tls-reload-up2", &pki, &server, (addr.port(), 0));
    send_ace(&edge, "renewed", 0..10);
    wait_until("30 forwarded", || fwd.stats().forwarded == 30);
    // A broken key: the running configuration stays, counted.
    std::fs::write(pki.path("edge.key"), "not a key").unwrap();
    edge.logd().reconfigure().unwrap();
    let s = edge.output.stats();
    assert_eq!((s.tls_reloads, s.tls_reload_failures), (1, 1));
    edge.stop();
    wait_until("10 stored", || up.output.stats().records == 10);
    let (_, stored) = up.stop();
    assert_eq!(
        messages_of(&stored, "edge-renewed.test"),
        numbered("renewed", 0..10)
    );
}

/// rsyslog's `imtcp` with the OpenSSL stream driver (`x509/name`, permitting only
/// `edge.test`) as the TLS upstream of logd's forwarder: every record arrives intact.
#[test]
fn logd_forwards_over_tls_to_rsyslog_imtcp_ossl() {
    let Some(rsyslogd) = rsyslog_ossl() else {
        return;
    };
    let pki = Pki::new("fwd-tls-rsyslog");
    let (cert, key) = pki.write_leaf(&pki.ca, "rsyslog", &["rsyslog.test"], true);
    let work = TempDir::new("fwd-tls-rsyslog-work");
    std::fs::create_dir_all(&work.0).unwrap();
    let port = free_port("127.0.0.83");
    let out = work.0.join("out.log");
    let conf = format!(
        "global(workDirectory=\"{work}\"\n\
           DefaultNetstreamDriverCAFile=\"{ca}\"\n\
           DefaultNetstreamDriverCertFile=\"{cert}\"\n\
           DefaultNetstreamDriverKeyFile=\"{key}\")\n\
         module(load=\"imtcp\" StreamDriver.Name=\"ossl\" StreamDriver.Mode=\"1\"\n\
           StreamDriver.AuthMode=\"x509/name\" PermittedPeer=[\"edge.test\"])\n\
         input(type=\"imtcp\" port=\"{port}\" address=\"127.0.0.83\")\n\
         template(name=\"plain\" type=\"string\" string=\"%HOSTNAME% %APP-NAME% %msg%\\n\")\n\
         action(type=\"omfile\" file=\"{out}\" template=\"plain\")\n",
        work = work.0.display(),
        ca = pki.path("ca.pem").display(),
        cert = cert.display(),
        key = key.display(),
        out = out.display(),
    );
    let rsyslog = Rsyslogd::start(&rsyslogd, &work.0, &conf);
    let up: SocketAddr = format!("127.0.0.83:{port}").parse().unwrap();
    // The forwarder connects once rsyslogd listens (its back-off covers the start).
    let edge = edge(
        "fwd-tls-to-rsyslog",
        &pki,
        up,
        Transport::Plain,
        "rsyslog.test",
    );
    let fwd = edge.forwarder();
    send_ace(&edge, "to rsyslog over tls", 0..200);
    wait_until("200 forwarded", || fwd.stats().forwarded == 200);
    edge.stop();
    wait_until("rsyslog wrote 200 lines", || {
        lines_of_file(&out).len() >= 200
    });
    drop(rsyslog);
    let want: Vec<String> = numbered("127.0.0.1 ace to rsyslog over tls", 0..200);
    assert_eq!(lines_of_file(&out), want);
    assert_eq!(fwd.stats().tls_handshake_failures, 0);
}

/// A CA bundle that cannot be read, or a server name that is none, stops logd at the start
/// with the file or name at fault; `--forward-tls` needs `--forward` and a CA bundle.
#[test]
fn bad_forwarder_tls_options_are_refused_at_the_start() {
    use clap::Parser;
    let pki = Pki::new("fwd-tls-bad-options");
    let start = |tls: ForwardTlsOptions| {
        let dir = TempDir::new("fwd-tls-bad-options-logd");
        logging_service::logd::Logd::start(LogdConfig {
            ace_port: Some(0),
            syslog_port: None,
            store: logging_service::store::StoreConfig::new(&dir.0),
            forward: Some("127.0.0.1:1".parse().unwrap()),
            forwarding: logging_service::forward::ForwardOptions {
                tls: Some(tls),
                ..Default::default()
            },
            ..LogdConfig::default()
        })
        .err()
        .map(|e| {
            format!(
                "{e}: {}",
                std::error::Error::source(&e).map_or(String::new(), |s| s.to_string())
            )
        })
    };
    let missing = pki.path("missing.pem");
    let e = start(ForwardTlsOptions {
        ca: missing.clone(),
        ..Default::default()
    })
    .expect("refused");
    assert!(e.contains("missing.pem"), "{e}");
    let e = start(ForwardTlsOptions {
        ca: pki.path("ca.pem"),
        server_name: Some("not a name!".into()),
        ..Default::default()
    })
    .expect("refused");
    assert!(e.contains("not a name!"), "{e}");
    for args in [
        &["logd", "--forward-tls", "--forward-tls-ca", "ca.pem"][..],
        &["logd", "--forward", "127.0.0.1:1", "--forward-tls"][..],
    ] {
        assert!(
            logging_service::cli::logd::Cli::try_parse_from(args).is_err(),
            "{args:?}"
        );
    }
}
