//! TLS scaffolding: a certificate authority and the files a policy names (made here with
//! rcgen, none committed), rustls client configurations, and a logd serving its TLS ports.

use std::path::PathBuf;
use std::sync::Arc;

use logging_service::tls::{ClientAuth, MinVersion, TlsOptions};
use logging_service::tls_conn::SecurityOptions;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    date_time_ymd,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::{Server, TempDir};

/// A certificate authority of the test's own.
pub(crate) struct Ca {
    pub(crate) issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    pub(crate) fn new(name: &str) -> Ca {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name
            .push(rcgen::DnType::CommonName, format!("{name} CA"));
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        Ca {
            issuer: CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    /// A leaf for `names`, for a server or a client, valid now unless `expired`: its
    /// certificate and its key, in PEM.
    pub(crate) fn leaf(&self, names: &[&str], server: bool, expired: bool) -> (String, String) {
        let mut p = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap();
        p.extended_key_usages = vec![if server {
            ExtendedKeyUsagePurpose::ServerAuth
        } else {
            ExtendedKeyUsagePurpose::ClientAuth
        }];
        if expired {
            p.not_before = date_time_ymd(2020, 1, 1);
            p.not_after = date_time_ymd(2021, 1, 1);
        }
        let key = KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

/// The files a policy names, written to a directory of the test: the fleet's CA
/// (`ca.pem`) and a server certificate for `logd.test` (`server.pem`, `server.key`).
pub(crate) struct Pki {
    pub(crate) dir: TempDir,
    pub(crate) ca: Ca,
}

impl Pki {
    pub(crate) fn new(tag: &str) -> Pki {
        let dir = TempDir::new(tag);
        std::fs::create_dir_all(&dir.0).unwrap();
        let ca = Ca::new("fleet");
        std::fs::write(dir.0.join("ca.pem"), ca.issuer.pem()).unwrap();
        let pki = Pki { dir, ca };
        pki.write_leaf(&pki.ca, "server", &["logd.test"], true);
        pki
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.0.join(name)
    }

    /// Writes a valid leaf of `ca` for `names` as `FILE.pem` and `FILE.key`; their paths.
    pub(crate) fn write_leaf(
        &self,
        ca: &Ca,
        file: &str,
        names: &[&str],
        server: bool,
    ) -> (PathBuf, PathBuf) {
        let (cert, key) = ca.leaf(names, server, false);
        let (c, k) = (
            self.path(&format!("{file}.pem")),
            self.path(&format!("{file}.key")),
        );
        std::fs::write(&c, cert).unwrap();
        std::fs::write(&k, key).unwrap();
        (c, k)
    }

    /// A server policy with these files, `auth` and `permitted` peer names.
    pub(crate) fn options(&self, auth: ClientAuth, permitted: &[&str]) -> TlsOptions {
        TlsOptions {
            cert: self.path("server.pem"),
            key: self.path("server.key"),
            ca: Some(self.path("ca.pem")),
            client_auth: auth,
            permitted_peers: permitted.iter().map(|s| s.to_string()).collect(),
            min_version: MinVersion::Tls12,
        }
    }
}

/// The certificates in `pem`.
pub(crate) fn certs(pem: &str) -> Vec<CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap()
}

/// The key in `pem`.
pub(crate) fn key(pem: &str) -> PrivateKeyDer<'static> {
    use rustls::pki_types::pem::PemObject;
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).unwrap()
}

/// A client configuration (logd's provider, TLS 1.2 and 1.3) trusting the CA in `ca_pem`,
/// showing `identity` (certificate and key, PEM) if given.
pub(crate) fn client_config(
    ca_pem: &str,
    identity: Option<&(String, String)>,
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in certs(ca_pem) {
        roots.add(c).unwrap();
    }
    let b = rustls::ClientConfig::builder_with_provider(logging_service::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    Arc::new(match identity {
        Some((c, k)) => b.with_client_auth_cert(certs(c), key(k)).unwrap(),
        None => b.with_no_client_auth(),
    })
}

/// A logd with no cleartext listener and syslog over TLS on a free port, under the policy of
/// `pki` with `auth` and `permitted` names; `edit` changes the rest (other TLS ports, the
/// host taken from the certificate, the handshake timeout).
pub(crate) fn tls_server(
    tag: &str,
    pki: &Pki,
    auth: ClientAuth,
    permitted: &[&str],
    edit: impl FnOnce(&mut SecurityOptions),
) -> Server {
    let mut sec = SecurityOptions {
        tls: Some(pki.options(auth, permitted)),
        syslog_tls_port: Some(0),
        ..SecurityOptions::default()
    };
    edit(&mut sec);
    Server::start(tag, move |c| {
        c.ace_port = None;
        c.syslog_port = None;
        c.security = sec;
    })
}

/// rsyslogd and its OpenSSL stream driver (`rsyslog-openssl`), or `None` after the skip line.
pub(crate) fn rsyslog_ossl() -> Option<PathBuf> {
    super::upstream::rsyslog_with(
        "lmnsd_ossl.so",
        "rsyslog's OpenSSL stream driver",
        "rsyslog-openssl",
    )
}
