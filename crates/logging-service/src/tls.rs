//! TLS for logd: the policy (certificates, client authentication, permitted peer names,
//! protocol versions) as rustls configurations, the peer's authenticated name, and
//! configurations that reload on SIGHUP without touching connections already established.
//!
//! rustls does the protocol (with the `ring` provider); what is ours is the policy an operator
//! states and the checks rustls leaves to the application: which authenticated names may send
//! (rsyslog's `PermittedPeer`, syslog-ng's `trusted-dn`) and which name a record is stored
//! under (`--host-from certificate`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;

/// Whether clients must show a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    /// No client certificate is asked for.
    #[default]
    None,
    /// A certificate is asked for; one that is shown must verify, none is accepted.
    Optional,
    /// A certificate that verifies against the CA bundle is required.
    Required,
}

impl std::str::FromStr for ClientAuth {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(ClientAuth::None),
            "optional" => Ok(ClientAuth::Optional),
            "required" => Ok(ClientAuth::Required),
            _ => Err(format!(
                "client authentication `{s}`: expected none, optional or required"
            )),
        }
    }
}

/// The oldest protocol version accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MinVersion {
    /// TLS 1.2 and 1.3.
    #[default]
    Tls12,
    /// TLS 1.3 only.
    Tls13,
}

impl std::str::FromStr for MinVersion {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "1.2" => Ok(MinVersion::Tls12),
            "1.3" => Ok(MinVersion::Tls13),
            _ => Err(format!("TLS version `{s}`: expected 1.2 or 1.3")),
        }
    }
}

impl fmt::Display for MinVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MinVersion::Tls12 => "1.2",
            MinVersion::Tls13 => "1.3",
        })
    }
}

impl MinVersion {
    fn versions(self) -> &'static [&'static rustls::SupportedProtocolVersion] {
        static TLS13_ONLY: [&rustls::SupportedProtocolVersion; 1] = [&rustls::version::TLS13];
        match self {
            MinVersion::Tls12 => rustls::ALL_VERSIONS,
            MinVersion::Tls13 => &TLS13_ONLY,
        }
    }
}

/// What goes wrong while building a TLS configuration; each names the file involved.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or holds nothing usable.
    #[error("{path}: {reason}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// rustls refused the combination (a key that does not match the certificate, say).
    #[error("TLS configuration refused: {0}")]
    Config(String),
}

/// A server's TLS policy (`--tls-cert`, `--tls-key`, `--tls-ca`, `--tls-client-auth`,
/// `--tls-permitted-peer`, `--tls-min-version`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsOptions {
    /// The server's certificate chain (PEM), leaf first.
    pub cert: PathBuf,
    /// The server's private key (PEM).
    pub key: PathBuf,
    /// The CA bundle client certificates must chain to (PEM); needed unless auth is `none`.
    pub ca: Option<PathBuf>,
    /// Whether clients must show a certificate.
    pub client_auth: ClientAuth,
    /// Names a client certificate must carry one of (empty: any verified certificate).
    pub permitted_peers: Vec<String>,
    /// The oldest protocol version accepted.
    pub min_version: MinVersion,
}

/// rustls' `ring` provider (no C toolchain beyond a C compiler needed to build it), with its
/// default cipher suites and key exchanges, AES-128-GCM put first: what logd's own clients
/// (`logc --tls`, the forwarder) offer first, as cheap per record as AES-256-GCM's safety
/// needs (10 rounds instead of 14; hardware AES where the CPU has it). A peer's own order is
/// still followed when logd is the server.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    #[allow(deprecated)]
    // deprecated only for lacking post-quantum key exchange, which our peers lack too
    let mut p = rustls::crypto::ring::default_provider();
    // A stable sort: AES-128-GCM before the rest, each protocol version's order kept.
    p.cipher_suites.sort_by_key(|s| {
        (
            s.version().version != rustls::ProtocolVersion::TLSv1_3,
            !matches!(
                s.suite(),
                rustls::CipherSuite::TLS13_AES_128_GCM_SHA256
                    | rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
                    | rustls::CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
            ),
        )
    });
    Arc::new(p)
}

/// [`provider`] with the cipher suites of `min_version` and newer only. rustls offers and
/// accepts a protocol version only where its provider has a cipher suite for it, so this
/// is how a client whose protocol versions we do not set ourselves (ureq builds its rustls
/// configuration with every version) speaks `min_version` or newer.
pub fn provider_for(min_version: MinVersion) -> Arc<rustls::crypto::CryptoProvider> {
    let mut p = Arc::unwrap_or_clone(provider());
    if min_version == MinVersion::Tls13 {
        p.cipher_suites
            .retain(|s| s.version().version == rustls::ProtocolVersion::TLSv1_3);
    }
    Arc::new(p)
}

/// Every certificate in a PEM file.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = |reason: String| TlsError::Pem {
        path: path.to_owned(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem(e.to_string()))?;
    if certs.is_empty() {
        return Err(pem("no certificate in the file".into()));
    }
    Ok(certs)
}

/// The private key in a PEM file.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::Pem {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

fn roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for c in load_certs(path)? {
        roots.add(c).map_err(|e| TlsError::Pem {
            path: path.to_owned(),
            reason: format!("not a usable CA certificate: {e}"),
        })?;
    }
    Ok(roots)
}

/// A client's rustls configuration: trusts the CAs in `ca` (PEM), shows the certificate
/// chain and key in `identity` (PEM files) if given, speaks `min_version` or newer.
pub fn client_config(
    ca: &Path,
    identity: Option<(&Path, &Path)>,
    min_version: MinVersion,
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let config = |e: rustls::Error| TlsError::Config(e.to_string());
    let b = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(min_version.versions())
        .map_err(config)?
        .with_root_certificates(roots(ca)?);
    let cfg = match identity {
        Some((cert, key)) => b
            .with_client_auth_cert(load_certs(cert)?, load_key(key)?)
            .map_err(config)?,
        None => b.with_no_client_auth(),
    };
    Ok(Arc::new(cfg))
}

impl TlsOptions {
    /// The rustls server configuration this policy describes, read from the files now.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let config = |e: rustls::Error| TlsError::Config(e.to_string());
        let builder = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(self.min_version.versions())
            .map_err(config)?;
        let builder = match (self.client_auth, &self.ca) {
            (ClientAuth::None, _) => builder.with_no_client_auth(),
            (_, None) => {
                return Err(TlsError::Config(
                    "client authentication needs a CA bundle (--tls-ca)".into(),
                ));
            }
            (auth, Some(ca)) => {
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots(ca)?), provider());
                let verifier = if auth == ClientAuth::Optional {
                    verifier.allow_unauthenticated()
                } else {
                    verifier
                };
                builder.with_client_cert_verifier(
                    verifier
                        .build()
                        .map_err(|e| TlsError::Config(e.to_string()))?,
                )
            }
        };
        let cfg = builder
            .with_single_cert(load_certs(&self.cert)?, load_key(&self.key)?)
            .map_err(config)?;
        Ok(Arc::new(cfg))
    }

    /// Checks an established connection's peer against the policy: the certificate's names
    /// against the permitted peers. `Ok(None)`: no certificate (allowed by the verifier, so
    /// client authentication is `none` or `optional`).
    pub fn admit(
        &self,
        peer_certs: Option<&[CertificateDer<'_>]>,
    ) -> Result<Option<String>, Refusal> {
        let Some(leaf) = peer_certs.and_then(|c| c.first()) else {
            return if self.client_auth == ClientAuth::Required {
                Err(Refusal::NoCertificate)
            } else {
                Ok(None)
            };
        };
        let names = certificate_names(leaf).map_err(Refusal::Unreadable)?;
        if !self.permitted_peers.is_empty()
            && !names
                .iter()
                .any(|n| self.permitted_peers.iter().any(|p| name_matches(p, n)))
        {
            return Err(Refusal::NotPermitted { names });
        }
        Ok(names.into_iter().next())
    }
}

/// Why an authenticated peer is not let in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Client authentication is required and none was shown.
    NoCertificate,
    /// The certificate could not be read for its names.
    Unreadable(String),
    /// None of the certificate's names is on the permitted list.
    NotPermitted {
        /// The names the certificate carries.
        names: Vec<String>,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NoCertificate => write!(f, "no client certificate"),
            Refusal::Unreadable(e) => write!(f, "unreadable client certificate: {e}"),
            Refusal::NotPermitted { names } => write!(
                f,
                "certificate names {names:?} are not among the permitted peers"
            ),
        }
    }
}

/// The names a certificate is for: its DNS subject alternative names, else its common names.
pub fn certificate_names(der: &CertificateDer<'_>) -> Result<Vec<String>, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).map_err(|e| e.to_string())?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::DNSName(d) = n {
                names.push(d.to_ascii_lowercase());
            }
        }
    }
    if names.is_empty() {
        names.extend(
            cert.subject()
                .iter_common_name()
                .filter_map(|cn| cn.as_str().ok())
                .map(str::to_ascii_lowercase),
        );
    }
    Ok(names)
}

/// Whether the certificate name `name` matches the permitted-peer pattern `pattern`:
/// equal ignoring ASCII case, or, for a pattern `*.rest`, a name that is one more label in
/// front of `rest` (`*.sensors.example` permits `gw1.sensors.example`, not
/// `a.gw1.sensors.example` nor `sensors.example`), as RFC 6125 and rsyslog's wildcards do.
pub fn name_matches(pattern: &str, name: &str) -> bool {
    let (pattern, name) = (pattern.to_ascii_lowercase(), name.to_ascii_lowercase());
    match pattern.strip_prefix("*.") {
        Some(rest) => name
            .split_once('.')
            .is_some_and(|(label, tail)| !label.is_empty() && tail == rest),
        None => pattern == name,
    }
}

/// A server configuration that can be replaced while connections use the old one: each new
/// connection takes the current configuration; one already established keeps its own.
#[derive(Debug, Clone)]
pub struct ReloadableServer {
    options: Arc<RwLock<TlsOptions>>,
    current: Arc<RwLock<Arc<rustls::ServerConfig>>>,
}

impl ReloadableServer {
    /// Builds the first configuration; fails as [`TlsOptions::server_config`] does.
    pub fn new(options: TlsOptions) -> Result<Self, TlsError> {
        let cfg = options.server_config()?;
        Ok(ReloadableServer {
            options: Arc::new(RwLock::new(options)),
            current: Arc::new(RwLock::new(cfg)),
        })
    }

    /// The configuration for a new connection.
    pub fn current(&self) -> Arc<rustls::ServerConfig> {
        self.current.read().clone()
    }

    /// The policy in force.
    pub fn options(&self) -> TlsOptions {
        self.options.read().clone()
    }

    /// Reads the files again (on SIGHUP): on success new connections use the new
    /// certificates; on failure the running configuration stays and the error is returned.
    pub fn reload(&self) -> Result<(), TlsError> {
        let cfg = self.options.read().server_config()?;
        *self.current.write() = cfg;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_one_label_in_front() {
        assert!(name_matches("gw1.sensors.example", "GW1.sensors.example"));
        assert!(name_matches("*.sensors.example", "gw1.sensors.example"));
        assert!(!name_matches("*.sensors.example", "sensors.example"));
        assert!(!name_matches("*.sensors.example", "a.gw1.sensors.example"));
        assert!(!name_matches("*.sensors.example", ".sensors.example"));
        assert!(!name_matches("gw1.sensors.example", "gw2.sensors.example"));
        assert!(!name_matches("*", "anything"));
    }

    #[test]
    fn aes_128_gcm_is_offered_first_and_tls_1_3_before_1_2() {
        let suites: Vec<_> = provider().cipher_suites.iter().map(|s| s.suite()).collect();
        assert_eq!(suites[0], rustls::CipherSuite::TLS13_AES_128_GCM_SHA256);
        assert_eq!(suites[1], rustls::CipherSuite::TLS13_AES_256_GCM_SHA384);
        let first_tls12 = provider()
            .cipher_suites
            .iter()
            .position(|s| s.version().version == rustls::ProtocolVersion::TLSv1_2)
            .unwrap();
        assert_eq!(
            provider().cipher_suites[first_tls12].suite(),
            rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
        );
        assert_eq!(suites.len(), rustls::crypto::ring::ALL_CIPHER_SUITES.len());
    }

    #[test]
    fn a_tls_1_3_provider_has_no_tls_1_2_suite() {
        let v13 = provider_for(MinVersion::Tls13);
        assert!(!v13.cipher_suites.is_empty());
        assert!(
            v13.cipher_suites
                .iter()
                .all(|s| s.version().version == rustls::ProtocolVersion::TLSv1_3)
        );
        assert_eq!(
            provider_for(MinVersion::Tls12).cipher_suites.len(),
            provider().cipher_suites.len()
        );
    }

    #[test]
    fn option_values_parse_with_clear_errors() {
        assert_eq!("required".parse(), Ok(ClientAuth::Required));
        assert_eq!(
            "always".parse::<ClientAuth>().unwrap_err(),
            "client authentication `always`: expected none, optional or required"
        );
        assert_eq!("1.3".parse(), Ok(MinVersion::Tls13));
        assert_eq!(MinVersion::Tls13.to_string(), "1.3");
        assert!("1.1".parse::<MinVersion>().is_err());
    }
}
