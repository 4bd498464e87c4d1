//! TLS for the forwarder (`--forward-tls`): a rustls client session as the forwarder's
//! [`Link`], so that records go upstream as RFC 5425 (syslog over TLS: RFC 5424 messages with
//! octet counting) or as RELP over TLS, with the spool, the back-off and the stop working as
//! in cleartext.
//!
//! The upstream's certificate must chain to `--forward-tls-ca` and name
//! `--forward-tls-server-name` (default: the upstream's address); a client certificate
//! (`--forward-tls-cert`, `--forward-tls-key`) is shown to an upstream that asks for one
//! (mutual authentication, rsyslog's `x509/name`). Until the handshake finishes the link
//! takes no record (`WouldBlock`), so a refused upstream gets none: the session ends with the
//! reason (logged, counted in `tls_handshake_failures`), the records stay in the spool, and
//! the supervisor tries again after its back-off. Record bytes count as written only once the
//! socket took their ciphertext ([`Link::wants_write`] holds the batch's commit back until
//! then).
//!
//! What TLS cannot change: over TLS 1.3 the server checks the client's certificate after the
//! client finished its handshake, so an upstream that refuses logd's certificate does so after
//! the first batch went; over plain syslog that batch counts as forwarded (as a batch taken by
//! the kernel of an upstream that then crashes does). RELP commits only what the upstream
//! acknowledged, so over RELP the refused batch stays in the spool.
//!
//! The configuration is read again on SIGHUP ([`ForwardTls::reload`]): the next connection
//! uses the new files, the established one keeps its session.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::RwLock;
use reactor::SockStream;
use rustls::pki_types::ServerName;

use crate::forward::{Link, LinkMaker};
use crate::tls::{MinVersion, TlsError};
use crate::tls_conn::{Failure, Side, TlsSession};

/// The forwarder's TLS options (`--forward-tls-ca`, `--forward-tls-cert`,
/// `--forward-tls-key`, `--forward-tls-server-name`, `--forward-tls-min-version`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ForwardTlsOptions {
    /// The CA bundle (PEM) the upstream's certificate must chain to.
    pub ca: PathBuf,
    /// The client certificate chain and key (PEM) shown to an upstream that asks for one.
    pub identity: Option<(PathBuf, PathBuf)>,
    /// The name the upstream's certificate must carry (`None`: the upstream's IP address).
    pub server_name: Option<String>,
    /// The oldest protocol version spoken.
    pub min_version: MinVersion,
}

/// The forwarder's TLS client: its configuration (reloadable) and the upstream's name.
#[derive(Debug, Clone)]
pub struct ForwardTls {
    options: ForwardTlsOptions,
    name: ServerName<'static>,
    upstream: SocketAddr,
    current: Arc<RwLock<Arc<rustls::ClientConfig>>>,
}

impl ForwardTls {
    /// Reads the files now; fails with the file or the name at fault.
    pub fn new(options: ForwardTlsOptions, upstream: SocketAddr) -> Result<Self, TlsError> {
        let name = match &options.server_name {
            Some(n) => ServerName::try_from(n.clone())
                .map_err(|e| TlsError::Config(format!("server name `{n}`: {e}")))?,
            None => ServerName::IpAddress(upstream.ip().into()),
        };
        let cfg = Self::config(&options)?;
        Ok(ForwardTls {
            options,
            name,
            upstream,
            current: Arc::new(RwLock::new(cfg)),
        })
    }

    fn config(o: &ForwardTlsOptions) -> Result<Arc<rustls::ClientConfig>, TlsError> {
        let identity = o.identity.as_ref().map(|(c, k)| (c.as_path(), k.as_path()));
        crate::tls::client_config(&o.ca, identity, o.min_version)
    }

    /// Reads the files again (SIGHUP): connections made from now on use them; on an error
    /// the running configuration stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let cfg = Self::config(&self.options)?;
        *self.current.write() = cfg;
        Ok(())
    }

    /// The [`LinkMaker`] that wraps each new connection in a TLS session (for
    /// [`Forwarder::set_link`](crate::forward::Forwarder::set_link)).
    pub fn link_maker(&self) -> LinkMaker {
        let tls = self.clone();
        Arc::new(move |sock: SockStream| {
            let conn = rustls::client::UnbufferedClientConnection::new(
                tls.current.read().clone(),
                tls.name.clone(),
            )
            .map_err(io::Error::other)?;
            Ok(Box::new(TlsLink {
                session: TlsSession::new(sock, conn),
                upstream: Upstream(tls.upstream),
            }) as Box<dyn Link>)
        })
    }
}

/// A rustls client session over the forwarder's nonblocking socket: the session loop logd's
/// TLS inputs use ([`TlsSession`]), with the upstream as its [`Side`].
struct TlsLink {
    session: TlsSession<rustls::client::UnbufferedClientConnection>,
    upstream: Upstream,
}

/// The upstream of a forwarder's session: its failures are logged with its address.
struct Upstream(SocketAddr);

impl Side for Upstream {
    /// The certificate was checked by rustls (chain and name): nothing more to decide.
    fn established(&mut self, _state: &rustls::CommonState) -> io::Result<()> {
        Ok(())
    }

    fn fail(&mut self, handshaking: bool, failure: Failure) -> io::Error {
        let refused = |reason: String| {
            tracing::warn!(upstream = %self.0, %reason, "forwarding: TLS handshake with the upstream failed");
            io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("TLS handshake failed: {reason}"),
            )
        };
        match failure {
            Failure::Closed => refused("the upstream closed the connection".into()),
            Failure::Tls(e) if handshaking => refused(e.to_string()),
            Failure::Tls(e) => {
                tracing::warn!(upstream = %self.0, error = %e, "forwarding: TLS session failed");
                io::Error::new(io::ErrorKind::InvalidData, e)
            }
            Failure::Io(e) => e,
        }
    }
}

impl Read for TlsLink {
    /// Decrypts into `buf` until it is full, the socket would block, or the stream ends (a
    /// short read means drained, as on a socket).
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.session.read(&mut self.upstream, buf)
    }
}

impl Write for TlsLink {
    /// Encrypts `buf`: refused with `WouldBlock` during the handshake and while earlier
    /// records wait for the socket, so that the session's buffer, not rustls', holds what
    /// cannot go yet.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.session.write(&mut self.upstream, buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.session.send_pending().map(drop)
    }
}

impl Link for TlsLink {
    fn fd(&self) -> BorrowedFd<'_> {
        self.session.socket().as_fd()
    }

    fn wants_write(&self) -> bool {
        self.session.wants_write()
    }

    fn established(&self) -> bool {
        self.session.established()
    }
}
