//! logd's TLS policy (`logging_service::tls`) with certificates made here (rcgen, none
//! committed) and real rustls handshakes run in memory: every refusal the issue lists, the
//! names a device is admitted under, and a reload that does not touch an established session.

use std::io::{Read, Write};
use std::sync::Arc;

use logging_service::tls::{
    ClientAuth, MinVersion, Refusal, ReloadableServer, certificate_names, load_certs,
};
use rustls::pki_types::ServerName;

use crate::support::tls::{Ca, Pki, certs, client_config};

/// A client trusting `ca_pem`, showing `identity` if given.
fn client(ca_pem: &str, identity: Option<&(String, String)>) -> rustls::ClientConnection {
    rustls::ClientConnection::new(
        client_config(ca_pem, identity),
        ServerName::try_from("logd.test").unwrap(),
    )
    .unwrap()
}

/// Runs the handshake between the two in memory, then has the client send `hello`.
/// Returns the server's error if the handshake failed, else the server connection.
fn handshake(
    mut c: rustls::ClientConnection,
    server: Arc<rustls::ServerConfig>,
) -> Result<rustls::ServerConnection, String> {
    let mut s = rustls::ServerConnection::new(server).unwrap();
    c.writer().write_all(b"hello").unwrap();
    for _ in 0..20 {
        let mut wire = Vec::new();
        while c.wants_write() {
            c.write_tls(&mut wire).unwrap();
        }
        if !wire.is_empty() {
            s.read_tls(&mut &wire[..]).unwrap();
            s.process_new_packets().map_err(|e| e.to_string())?;
        }
        let mut back = Vec::new();
        while s.wants_write() {
            s.write_tls(&mut back).unwrap();
        }
        if !back.is_empty() {
            c.read_tls(&mut &back[..]).unwrap();
            if let Err(e) = c.process_new_packets() {
                return Err(format!("client: {e}"));
            }
        }
        let mut got = [0u8; 5];
        if !s.is_handshaking() && s.reader().read_exact(&mut got).is_ok() {
            assert_eq!(&got, b"hello");
            return Ok(s);
        }
    }
    Err("the handshake did not finish".into())
}

#[test]
fn required_client_auth_admits_a_fleet_device_under_its_certificate_name() {
    let pki = Pki::new("tls-required");
    let policy = pki.options(ClientAuth::Required, &["*.sensors.example"]);
    let device = pki.ca.leaf(&["gw1.sensors.example"], false, false);
    let s = handshake(
        client(&pki.ca.issuer.pem(), Some(&device)),
        policy.server_config().unwrap(),
    )
    .unwrap();
    assert_eq!(
        policy.admit(s.peer_certificates()),
        Ok(Some("gw1.sensors.example".into()))
    );
}

#[test]
fn every_unwelcome_client_is_refused_with_its_reason() {
    let pki = Pki::new("tls-refusals");
    let policy = pki.options(ClientAuth::Required, &["*.sensors.example"]);
    let server = policy.server_config().unwrap();
    let ca = pki.ca.issuer.pem();

    // No certificate at all.
    let err = handshake(client(&ca, None), server.clone()).unwrap_err();
    assert!(err.contains("peer sent no certificates"), "{err}");
    // A certificate from another CA.
    let other = Ca::new("elsewhere").leaf(&["gw1.sensors.example"], false, false);
    let err = handshake(client(&ca, Some(&other)), server.clone()).unwrap_err();
    assert!(err.contains("UnknownIssuer"), "{err}");
    // An expired certificate of our own CA.
    let expired = pki.ca.leaf(&["gw2.sensors.example"], false, true);
    let err = handshake(client(&ca, Some(&expired)), server.clone()).unwrap_err();
    assert!(err.contains("certificate expired"), "{err}");
    // A valid certificate whose name is not on the allow-list: the handshake succeeds (the
    // name check is logd's), and admission refuses it, naming the names.
    let intruder = pki.ca.leaf(&["intruder.example"], false, false);
    let s = handshake(client(&ca, Some(&intruder)), server).unwrap();
    assert_eq!(
        policy.admit(s.peer_certificates()),
        Err(Refusal::NotPermitted {
            names: vec!["intruder.example".into()]
        })
    );
    assert_eq!(
        Refusal::NotPermitted {
            names: vec!["intruder.example".into()]
        }
        .to_string(),
        "certificate names [\"intruder.example\"] are not among the permitted peers"
    );
}

#[test]
fn optional_client_auth_admits_the_anonymous_and_still_checks_who_shows_a_certificate() {
    let pki = Pki::new("tls-optional");
    let policy = pki.options(ClientAuth::Optional, &["gw1.sensors.example"]);
    let server = policy.server_config().unwrap();
    let ca = pki.ca.issuer.pem();
    let s = handshake(client(&ca, None), server.clone()).unwrap();
    assert_eq!(policy.admit(s.peer_certificates()), Ok(None));
    let other = Ca::new("elsewhere").leaf(&["gw1.sensors.example"], false, false);
    assert!(handshake(client(&ca, Some(&other)), server).is_err());
}

#[test]
fn tls_1_3_only_refuses_a_tls_1_2_client() {
    let pki = Pki::new("tls-version");
    let mut policy = pki.options(ClientAuth::None, &[]);
    policy.min_version = MinVersion::Tls13;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(certs(&pki.ca.issuer.pem()).remove(0)).unwrap();
    let provider = logging_service::tls::provider();
    let old = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let c =
        rustls::ClientConnection::new(Arc::new(old), ServerName::try_from("logd.test").unwrap())
            .unwrap();
    let err = handshake(c, policy.server_config().unwrap()).unwrap_err();
    assert!(err.contains("Tls12NotOfferedOrEnabled"), "{err}");
}

#[test]
fn bad_files_are_errors_naming_the_file() {
    let pki = Pki::new("tls-files");
    let mut policy = pki.options(ClientAuth::None, &[]);
    policy.cert = pki.path("missing.pem");
    let err = policy.server_config().unwrap_err().to_string();
    assert!(
        err.starts_with(&pki.path("missing.pem").display().to_string()),
        "{err}"
    );
    std::fs::write(pki.path("empty.pem"), "").unwrap();
    let err = load_certs(&pki.path("empty.pem")).unwrap_err().to_string();
    assert!(err.ends_with("no certificate in the file"), "{err}");
    // A key that does not belong to the certificate.
    let (_, other_key) = pki.ca.leaf(&["other.test"], true, false);
    std::fs::write(pki.path("other.key"), other_key).unwrap();
    let mut policy = pki.options(ClientAuth::None, &[]);
    policy.key = pki.path("other.key");
    assert!(policy.server_config().is_err());
    // Client authentication without a CA bundle.
    let mut policy = pki.options(ClientAuth::Required, &[]);
    policy.ca = None;
    assert_eq!(
        policy.server_config().unwrap_err().to_string(),
        "TLS configuration refused: client authentication needs a CA bundle (--tls-ca)"
    );
}

/// SIGHUP reloads the certificates: new sessions get the new server certificate, a session
/// established before keeps working, and a broken file keeps the running configuration.
#[test]
fn a_reload_changes_new_sessions_only_and_a_bad_reload_changes_nothing() {
    let pki = Pki::new("tls-reload");
    let tls = ReloadableServer::new(pki.options(ClientAuth::None, &[])).unwrap();
    let ca = pki.ca.issuer.pem();
    let mut before = handshake(client(&ca, None), tls.current()).unwrap();
    let old_serial = served_names(&ca, &tls);

    let (cert, key) = pki.ca.leaf(&["logd.test", "logd-new.test"], true, false);
    std::fs::write(pki.path("server.pem"), cert).unwrap();
    std::fs::write(pki.path("server.key"), key).unwrap();
    tls.reload().unwrap();
    assert_ne!(
        served_names(&ca, &tls),
        old_serial,
        "new sessions see the new certificate"
    );
    // The old session still decrypts what its client sends.
    assert!(!before.is_handshaking());
    before.writer().write_all(b"still here").unwrap();

    std::fs::write(pki.path("server.key"), "not a key").unwrap();
    assert!(tls.reload().is_err());
    let c = client(&ca, None);
    assert!(
        handshake(c, tls.current()).is_ok(),
        "the last good configuration stays"
    );
}

/// The names in the certificate a new session is served.
fn served_names(ca: &str, tls: &ReloadableServer) -> Vec<String> {
    let mut c = client(ca, None);
    let mut s = rustls::ServerConnection::new(tls.current()).unwrap();
    c.writer().write_all(b"x").unwrap();
    while c.is_handshaking() {
        let mut wire = Vec::new();
        while c.wants_write() {
            c.write_tls(&mut wire).unwrap();
        }
        s.read_tls(&mut &wire[..]).unwrap();
        s.process_new_packets().unwrap();
        let mut back = Vec::new();
        while s.wants_write() {
            s.write_tls(&mut back).unwrap();
        }
        c.read_tls(&mut &back[..]).unwrap();
        c.process_new_packets().unwrap();
    }
    certificate_names(&c.peer_certificates().unwrap()[0]).unwrap()
}
