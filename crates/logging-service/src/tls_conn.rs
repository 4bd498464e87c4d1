//! TLS sessions and per-peer limits inside the reactor's connection handlers.
//!
//! A TCP listener that speaks TLS (`Syslog_TLS`, `ACE_TLS`, `RELP_TLS`) hands each accepted
//! socket to a [`Stream::Tls`]: a rustls server session on rustls' unbuffered API, driven over
//! the nonblocking socket by [`TlsSession`], the session loop the forwarder's TLS client
//! ([`crate::forward_tls`]) uses too. The connection handlers read a [`Stream`] as they read a
//! socket, so the
//! framers, the back-pressure pause, the idle timeout, the buffer budget and the interception
//! points "connection opened/closed" work as they do in cleartext.
//!
//! A read fills the caller's buffer until it is full or the socket would block: a short read
//! still means "drained", which the dispatcher's contract relies on.
//!
//! Refusals (a failed handshake, a certificate whose name is not permitted, a handshake that
//! did not finish within `--tls-handshake-timeout`) close that connection only, are logged
//! with the reason and counted in [`Stats`](crate::store::Stats) (`tls_handshake_failures`,
//! with `tls_not_permitted` and `tls_handshake_timeouts` among them).
//!
//! [`Admission`] also applies the per-peer limits: at most `--max-connections-per-peer`
//! connections from one address (more are closed at once, counted in
//! `peer_connections_refused`), and a token bucket of `--max-rate-per-peer` records a second
//! shared by the connections of one address (over it, a connection stops reading for the time
//! the bucket needs to refill, counted in `peer_rate_pauses`, so TCP slows the sender down).

use std::any::Any;
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use component_configurator::ComponentError;
use parking_lot::Mutex;
use pattern_core::{Context, Disposition, Interest, Token};
use reactor::SockStream as TcpStream;

use crate::record::RecordBatch;
use crate::store::Output;
use crate::tls::{ClientAuth, MinVersion, ReloadableServer, TlsOptions};

/// The security options of logd: the TLS policy of the TLS listeners and the per-peer limits
/// of every TCP listener.
#[derive(Debug, Clone)]
pub struct SecurityOptions {
    /// `--tls-cert`, `--tls-key`, ...: the policy of the TLS listeners that name none of
    /// their own in the svc.conf.
    pub tls: Option<TlsOptions>,
    /// `--host-from certificate`: records over TLS are stored under the peer's authenticated
    /// name (or its address, when it showed no certificate), whatever host they claim.
    pub host_from_certificate: bool,
    /// Close a TLS connection whose handshake did not finish within this time.
    pub handshake_timeout: Duration,
    /// `--ace-tls-port`: ACE's format over TLS (`None`: no such listener).
    pub ace_tls_port: Option<u16>,
    /// `--syslog-tls-port`: syslog over TLS, RFC 5425 (`None`: no such listener).
    pub syslog_tls_port: Option<u16>,
    /// `--relp-tls-port`: RELP over TLS (`None`: no such listener).
    pub relp_tls_port: Option<u16>,
    /// `--max-connections-per-peer`: connections from one address at once (`None`: no cap).
    pub max_connections_per_peer: Option<u32>,
    /// `--max-rate-per-peer`: records a second from one address, over all its connections
    /// (`None`: no limit).
    pub max_rate_per_peer: Option<u32>,
}

impl Default for SecurityOptions {
    fn default() -> Self {
        SecurityOptions {
            tls: None,
            host_from_certificate: false,
            handshake_timeout: Duration::from_secs(10),
            ace_tls_port: None,
            syslog_tls_port: None,
            relp_tls_port: None,
            max_connections_per_peer: None,
            max_rate_per_peer: None,
        }
    }
}

/// What the listeners share at run time: the options, the per-peer table and the TLS
/// configurations in use (reloaded on SIGHUP).
#[derive(Debug, Clone, Default)]
pub struct Security {
    /// The options logd started with.
    pub options: SecurityOptions,
    peers: Arc<PeerTable>,
    live: Arc<Mutex<Vec<Weak<TlsListener>>>>,
}

impl Security {
    /// The shared state for `options`.
    pub fn new(options: SecurityOptions) -> Self {
        let peers = Arc::new(PeerTable {
            max_connections: options.max_connections_per_peer,
            rate: options.max_rate_per_peer.map(f64::from),
            peers: Mutex::default(),
        });
        Security {
            options,
            peers,
            live: Arc::default(),
        }
    }

    /// The admission of a listener: its TLS policy (if it speaks TLS) and the per-peer limits.
    pub(crate) fn admission(&self, tls: Option<Arc<TlsListener>>) -> Admission {
        Admission {
            tls,
            peers: self.peers.clone(),
        }
    }

    /// A TLS listener's policy from its svc.conf arguments (the `--tls-*` flags among them,
    /// falling back to logd's options), its certificates read now.
    pub(crate) fn tls_listener(&self, args: &[String]) -> Result<Arc<TlsListener>, ComponentError> {
        let (policy, host_from_certificate) = self.parse_tls_args(args)?;
        let server = ReloadableServer::new(policy.clone())
            .map_err(|e| ComponentError::new(e.to_string()))?;
        let listener = Arc::new(TlsListener {
            server,
            policy,
            host_from_certificate,
            handshake_timeout: self.options.handshake_timeout,
        });
        let mut live = self.live.lock();
        live.retain(|w| w.strong_count() > 0);
        live.push(Arc::downgrade(&listener));
        Ok(listener)
    }

    fn parse_tls_args(&self, args: &[String]) -> Result<(TlsOptions, bool), ComponentError> {
        let mut policy = self.options.tls.clone();
        let mut host_from_certificate = self.options.host_from_certificate;
        let mut peers_given = false;
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            if !flag.starts_with("--") {
                it.next(); // `-p`, `-b`: the address parser's
                continue;
            }
            let value = it
                .next()
                .ok_or_else(|| ComponentError::new(format!("{flag} needs a value")))?;
            let p = policy.get_or_insert_with(TlsOptions::default);
            match flag.as_str() {
                "--tls-cert" => p.cert = value.into(),
                "--tls-key" => p.key = value.into(),
                "--tls-ca" => p.ca = Some(value.into()),
                "--tls-client-auth" => {
                    p.client_auth = value
                        .parse::<ClientAuth>()
                        .map_err(|e| ComponentError::new(format!("{flag}: {e}")))?
                }
                "--tls-permitted-peer" => {
                    if !peers_given {
                        p.permitted_peers.clear();
                        peers_given = true;
                    }
                    p.permitted_peers.push(value.to_ascii_lowercase());
                }
                "--tls-min-version" => {
                    p.min_version = value
                        .parse::<MinVersion>()
                        .map_err(|e| ComponentError::new(format!("{flag}: {e}")))?
                }
                "--host-from" => {
                    host_from_certificate = parse_host_from(value)
                        .map_err(|e| ComponentError::new(format!("{flag}: {e}")))?
                }
                other => {
                    return Err(ComponentError::new(format!(
                        "unknown argument `{other}` (expected -p PORT, -b ADDR, --tls-cert FILE, --tls-key FILE, --tls-ca FILE, --tls-client-auth none|optional|required, --tls-permitted-peer NAME, --tls-min-version 1.2|1.3, --host-from certificate|message)"
                    )));
                }
            }
        }
        let policy = policy.ok_or_else(|| {
            ComponentError::new(
                "a TLS listener needs a certificate and a key (--tls-cert, --tls-key, here or as logd's options)",
            )
        })?;
        if policy.cert.as_os_str().is_empty() || policy.key.as_os_str().is_empty() {
            return Err(ComponentError::new(
                "a TLS listener needs a certificate and a key (--tls-cert, --tls-key)",
            ));
        }
        Ok((policy, host_from_certificate))
    }

    /// Reads the certificates of every TLS listener again (SIGHUP); sessions established
    /// keep theirs. A listener whose files are broken keeps its running configuration: the
    /// error is logged and counted.
    pub fn reload_tls(&self, output: &Output) {
        let live: Vec<_> = {
            let mut l = self.live.lock();
            l.retain(|w| w.strong_count() > 0);
            l.iter().filter_map(Weak::upgrade).collect()
        };
        for l in live {
            match l.server.reload() {
                Ok(()) => output.count(|s| s.tls_reloads += 1),
                Err(e) => {
                    tracing::error!(error = %e, "TLS certificates not reloaded; the running ones stay");
                    output.count(|s| s.tls_reload_failures += 1);
                }
            }
        }
    }
}

/// Parses `--host-from`: `certificate` or `message`.
pub fn parse_host_from(s: &str) -> Result<bool, String> {
    match s {
        "certificate" => Ok(true),
        "message" => Ok(false),
        _ => Err(format!("`{s}`: expected certificate or message")),
    }
}

/// One TLS listener's policy and its reloadable server configuration.
#[derive(Debug)]
pub struct TlsListener {
    server: ReloadableServer,
    policy: TlsOptions,
    host_from_certificate: bool,
    handshake_timeout: Duration,
}

/// Connections from one address at once, and its token bucket.
#[derive(Debug)]
struct PeerEntry {
    connections: u32,
    /// Records the peer may still send now; negative: what it owes.
    tokens: f64,
    last: Instant,
}

/// The per-peer limits and what each peer uses of them.
#[derive(Debug, Default)]
struct PeerTable {
    max_connections: Option<u32>,
    /// Records a second (also the bucket's depth: one second's worth).
    rate: Option<f64>,
    peers: Mutex<HashMap<IpAddr, PeerEntry>>,
}

/// A connection's place in the per-peer table; leaving it (drop) frees the place.
#[derive(Debug)]
pub struct PeerSlot {
    table: Arc<PeerTable>,
    ip: IpAddr,
}

impl PeerSlot {
    /// Takes `n` records out of the peer's bucket (it may go into debt).
    pub(crate) fn spend(&self, n: u64) {
        let Some(rate) = self.table.rate.filter(|_| n > 0) else {
            return;
        };
        let mut peers = self.table.peers.lock();
        if let Some(e) = peers.get_mut(&self.ip) {
            refill(e, rate, Instant::now());
            e.tokens -= n as f64;
        }
    }

    /// How long the peer must wait before it may send again (`None`: not over its rate).
    fn wait(&self) -> Option<Duration> {
        let rate = self.table.rate?;
        let mut peers = self.table.peers.lock();
        let e = peers.get_mut(&self.ip)?;
        refill(e, rate, Instant::now());
        (e.tokens < 0.0).then(|| Duration::from_secs_f64((-e.tokens / rate).min(60.0)))
    }
}

fn refill(e: &mut PeerEntry, rate: f64, now: Instant) {
    let elapsed = now.saturating_duration_since(e.last).as_secs_f64();
    e.tokens = (e.tokens + elapsed * rate).min(rate);
    e.last = now;
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut peers = self.table.peers.lock();
        if let Some(e) = peers.get_mut(&self.ip) {
            e.connections -= 1;
            // A peer in debt keeps its entry until it has paid (a reconnect does not reset it).
            if e.connections == 0 && e.tokens >= 0.0 {
                peers.remove(&self.ip);
            }
        }
    }
}

/// Stops the current handler for the time its peer's bucket needs to refill; `true` when
/// paused (the upcall answers `Again`; the data waits in the socket, and TCP slows the sender).
pub(crate) fn pause_if_over_rate(slot: &PeerSlot, output: &Output, ctx: &mut dyn Context) -> bool {
    match slot.wait() {
        Some(wait) if crate::server::pause_for(ctx, wait) => {
            output.count(|s| s.peer_rate_pauses += 1);
            true
        }
        _ => false,
    }
}

/// The ACT of a TLS connection's handshake deadline.
#[derive(Debug)]
struct HandshakeDeadline;

/// What a listener checks of each accepted connection: the per-peer connection cap, and the
/// TLS session it wraps the socket in when the listener speaks TLS.
#[derive(Debug, Clone)]
pub struct Admission {
    tls: Option<Arc<TlsListener>>,
    peers: Arc<PeerTable>,
}

impl Default for Admission {
    fn default() -> Self {
        Security::default().admission(None)
    }
}

impl Admission {
    /// Admits a connection from `peer`: `None` when the peer already has its
    /// `--max-connections-per-peer` (counted, logged); else the stream to read (in a TLS
    /// session when the listener speaks TLS) and the connection's place in the per-peer table.
    pub(crate) fn admit(
        &self,
        sock: TcpStream,
        peer: SocketAddr,
        output: &Arc<Output>,
    ) -> Option<(Stream, PeerSlot)> {
        let ip = peer.ip();
        {
            let mut peers = self.peers.peers.lock();
            let e = peers.entry(ip).or_insert_with(|| PeerEntry {
                connections: 0,
                tokens: self.peers.rate.unwrap_or(0.0),
                last: Instant::now(),
            });
            if self
                .peers
                .max_connections
                .is_some_and(|max| e.connections >= max)
            {
                drop(peers);
                tracing::warn!(%peer, max = self.peers.max_connections, "connection refused: the peer has --max-connections-per-peer open");
                output.count(|s| s.peer_connections_refused += 1);
                return None;
            }
            e.connections += 1;
        }
        let slot = PeerSlot {
            table: self.peers.clone(),
            ip,
        };
        let stream = match &self.tls {
            None => Stream::Plain(sock),
            Some(l) => match rustls::server::UnbufferedServerConnection::new(l.server.current()) {
                Ok(conn) => Stream::Tls(Box::new(TlsStream::new(
                    sock,
                    conn,
                    l.clone(),
                    ip.to_string(),
                    output.clone(),
                ))),
                Err(e) => {
                    tracing::error!(%peer, error = %e, "TLS session refused");
                    output.count(|s| s.tls_handshake_failures += 1);
                    return None;
                }
            },
        };
        Some((stream, slot))
    }

    /// Starts the handshake deadline of a connection just registered (TLS listeners only).
    pub(crate) fn opened(&self, ctx: &mut dyn Context, token: Token) {
        if let Some(l) = &self.tls
            && !l.handshake_timeout.is_zero()
        {
            let _ = ctx.schedule_timer(
                token,
                l.handshake_timeout,
                None,
                Box::new(HandshakeDeadline),
            );
        }
    }
}

/// Where a TLS session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Handshaking,
    Established,
    /// Refused or failed: counted once.
    Failed,
}

/// A connection's byte stream: the socket, or a TLS session over it.
#[derive(Debug)]
pub enum Stream {
    /// Cleartext.
    Plain(TcpStream),
    /// A rustls server session over the socket.
    Tls(Box<TlsStream>),
}

impl Stream {
    /// Sets the host the records of this connection are stored under, once the TLS session
    /// has named it (`--host-from certificate`); call before decoding what was read.
    pub(crate) fn apply_host(&mut self, batch: &mut RecordBatch) {
        if let Stream::Tls(t) = self
            && let Some(h) = t.side.host.take()
        {
            batch.set_host(Some(h));
        }
    }

    /// Ends an upcall of a handler that answers (RELP): sends what rustls still holds, and
    /// keeps write interest while some of it waits for the socket, which the handler's
    /// [`OutBuffer`](reactor::OutBuffer) cannot see once it handed its bytes to rustls
    /// (`out_empty`: the buffer holds nothing, so it asks for no write interest itself).
    pub(crate) fn settle(
        &mut self,
        ctx: &mut dyn Context,
        out_empty: bool,
        d: Disposition,
    ) -> Disposition {
        let Stream::Tls(t) = self else {
            return d;
        };
        if d == Disposition::Close {
            return d;
        }
        let Ok(drained) = t.session.send_pending() else {
            return Disposition::Close;
        };
        let want = !drained && out_empty;
        if want == t.write_armed {
            return d;
        }
        let Some(me) = ctx.current() else {
            return d;
        };
        let Ok(now) = ctx.interest(me) else {
            return d;
        };
        let next = if want {
            now.add(Interest::WRITE)
        } else if out_empty {
            now.remove(Interest::WRITE)
        } else {
            now
        };
        if ctx.set_interest(me, next).is_err() {
            return Disposition::Close;
        }
        t.write_armed = want;
        d
    }

    /// Whether a short read did not drain the socket: the TLS session ended (close_notify)
    /// while the socket stays open, so no readiness will announce the end: read on.
    pub(crate) fn ended(&self) -> bool {
        matches!(self, Stream::Tls(t) if t.session.ended())
    }

    /// A timer of this connection: `Some` when it was the handshake deadline (closing the
    /// connection, counted and logged, if the handshake has not finished).
    pub(crate) fn deadline(&mut self, act: &(dyn Any + Send)) -> Option<Disposition> {
        if !act.is::<HandshakeDeadline>() {
            return None;
        }
        let Stream::Tls(t) = self else {
            return Some(Disposition::Continue);
        };
        let side = &mut t.side;
        if side.state != State::Handshaking {
            return Some(Disposition::Continue);
        }
        side.state = State::Failed;
        tracing::warn!(peer = %side.peer, timeout = ?side.listener.handshake_timeout, "TLS handshake refused: not finished within --tls-handshake-timeout");
        side.output.count(|s| {
            s.tls_handshake_failures += 1;
            s.tls_handshake_timeouts += 1;
        });
        Some(Disposition::Close)
    }
}

impl AsFd for Stream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Stream::Plain(s) => s.as_fd(),
            Stream::Tls(t) => t.session.socket().as_fd(),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(t) => t.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(t) => t.session.write(&mut t.side, buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(t) => t.session.send_pending().map(drop),
        }
    }
}

/// A rustls server session over a connection's socket, with the listener's policy applied
/// at the end of the handshake. See the [module documentation](self).
pub struct TlsStream {
    session: TlsSession<rustls::server::UnbufferedServerConnection>,
    side: ServerSide,
    /// Write interest was added for ciphertext that waits for the socket.
    write_armed: bool,
}

/// What the server side of a session knows and decides: the listener's policy, the peer,
/// where it is in the handshake, the host its records go under.
struct ServerSide {
    listener: Arc<TlsListener>,
    /// The peer's address, for the log.
    peer: String,
    output: Arc<Output>,
    state: State,
    /// The host to store records under, once admitted, until the handler takes it.
    host: Option<String>,
}

impl std::fmt::Debug for TlsStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsStream")
            .field("peer", &self.side.peer)
            .field("state", &self.side.state)
            .finish()
    }
}

impl ServerSide {
    /// Counts and logs a refused handshake; the error the read returns.
    fn refuse(&mut self, reason: String, not_permitted: bool) -> io::Error {
        if self.state != State::Failed {
            self.state = State::Failed;
            tracing::warn!(peer = %self.peer, %reason, "TLS handshake refused");
            self.output.count(|s| {
                s.tls_handshake_failures += 1;
                s.tls_not_permitted += u64::from(not_permitted);
            });
        }
        io::Error::new(io::ErrorKind::PermissionDenied, reason)
    }
}

impl Side for ServerSide {
    /// The policy's check of the peer's names.
    fn established(&mut self, state: &rustls::CommonState) -> io::Result<()> {
        match self.listener.policy.admit(state.peer_certificates()) {
            Ok(name) => {
                self.state = State::Established;
                tracing::debug!(peer = %self.peer, name = ?name, "TLS session established");
                if self.listener.host_from_certificate {
                    self.host = Some(name.unwrap_or_else(|| self.peer.clone()));
                }
                self.output.count(|s| s.tls_sessions += 1);
                Ok(())
            }
            Err(r) => Err(self.refuse(r.to_string(), true)),
        }
    }

    fn fail(&mut self, handshaking: bool, failure: Failure) -> io::Error {
        match failure {
            Failure::Closed => self.refuse("the client closed during the handshake".into(), false),
            Failure::Io(e) => {
                if handshaking {
                    let _ = self.refuse(format!("reading the handshake failed: {e}"), false);
                }
                e
            }
            Failure::Tls(e) if handshaking => self.refuse(e.to_string(), false),
            Failure::Tls(e) => {
                tracing::warn!(peer = %self.peer, error = %e, "TLS session failed");
                io::Error::new(io::ErrorKind::InvalidData, e)
            }
        }
    }
}

impl TlsStream {
    fn new(
        sock: TcpStream,
        conn: rustls::server::UnbufferedServerConnection,
        listener: Arc<TlsListener>,
        peer: String,
        output: Arc<Output>,
    ) -> Self {
        TlsStream {
            session: TlsSession::new(sock, conn),
            side: ServerSide {
                listener,
                peer,
                output,
                state: State::Handshaking,
                host: None,
            },
            write_armed: false,
        }
    }

    /// Decrypts into `buf` until it is full, the socket would block, or the stream ends.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.side.state == State::Failed {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "TLS session refused",
            ));
        }
        self.session.read(&mut self.side, buf)
    }
}

/// What went wrong in a session, for its [`Side`] to log, count and turn into the error the
/// read or write returns.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The peer closed the socket before the handshake finished.
    Closed,
    /// Reading the socket failed.
    Io(io::Error),
    /// rustls refused what the peer sent (a certificate, a record, an alert).
    Tls(rustls::Error),
}

/// What differs between the two ends of a [`TlsSession`]: what a finished handshake must
/// still pass, and how failures are logged, counted and returned.
pub(crate) trait Side {
    /// The handshake finished (`state`: the peer's certificates among it); an error refuses
    /// the peer: the session sends close_notify and the read returns the error.
    fn established(&mut self, state: &rustls::CommonState) -> io::Result<()>;

    /// The session failed (`handshaking`: before its handshake finished); the error to return.
    fn fail(&mut self, handshaking: bool, failure: Failure) -> io::Error;
}

/// The two ends' unbuffered rustls connections, as one type for [`TlsSession`].
pub(crate) trait Unbuffered: Send + 'static {
    /// rustls' data of this end.
    type Data;

    /// rustls' `process_tls_records`: works through `incoming` until it reaches a state the
    /// caller must handle.
    fn process<'c, 'i>(
        &'c mut self,
        incoming: &'i mut [u8],
    ) -> rustls::unbuffered::UnbufferedStatus<'c, 'i, Self::Data>;

    /// The state both ends share (the peer's certificates).
    fn common(&self) -> &rustls::CommonState;
}

impl Unbuffered for rustls::server::UnbufferedServerConnection {
    type Data = rustls::server::ServerConnectionData;

    fn process<'c, 'i>(
        &'c mut self,
        incoming: &'i mut [u8],
    ) -> rustls::unbuffered::UnbufferedStatus<'c, 'i, Self::Data> {
        self.process_tls_records(incoming)
    }

    fn common(&self) -> &rustls::CommonState {
        self
    }
}

impl Unbuffered for rustls::client::UnbufferedClientConnection {
    type Data = rustls::client::ClientConnectionData;

    fn process<'c, 'i>(
        &'c mut self,
        incoming: &'i mut [u8],
    ) -> rustls::unbuffered::UnbufferedStatus<'c, 'i, Self::Data> {
        self.process_tls_records(incoming)
    }

    fn common(&self) -> &rustls::CommonState {
        self
    }
}

/// What one turn of rustls' state machine asks of the session.
enum Turn {
    /// Handled; turn again.
    More,
    /// Ciphertext was queued to send.
    Transmit,
    /// The handshake just finished: the [`Side`] decides before any record is read.
    Established,
    /// Everything held is processed: the socket must be read.
    NeedData,
    /// The asked write (records or close_notify) is queued.
    Wrote,
    /// close_notify received (or both sides closed).
    Ended,
    /// rustls refused what it got.
    Failed(rustls::Error),
}

/// What a turn writes once rustls lets it.
#[derive(Clone, Copy)]
enum Writing<'a> {
    Nothing,
    Records(&'a [u8]),
    CloseNotify,
}

/// Ciphertext read from the socket per system call at first (a buffer the size of two whole
/// TLS records); [`BIG_READ`] once a read filled it.
const FIRST_READ: usize = 32 << 10;
const BIG_READ: usize = 64 << 10;
/// The most ciphertext held at once: a handshake message spread over records must fit whole.
const MAX_INCOMING: usize = 256 << 10;
/// Plaintext encrypted per [`TlsSession::write`] call (four records of 16 KiB).
const MAX_WRITE: usize = 64 << 10;

/// A rustls session over a nonblocking socket on rustls' unbuffered API, the one loop both
/// ends use: the server's inputs ([`TlsStream`]) and the forwarder's client
/// ([`crate::forward_tls`]). The session owns its buffers: ciphertext is read from the socket
/// into `incoming` (32 KiB per system call, 64 KiB once a read filled it; freed when the
/// socket is drained) and rustls decrypts each record there, in place; the plaintext it hands
/// back is copied into the reader's buffer, and what does not fit waits in `plain` for the
/// next read. Ciphertext to send (handshake messages, alerts, records) is queued in
/// `outgoing` and written whenever the socket takes it.
///
/// rustls 0.23 still copies each record's plaintext into a buffer of its own (an allocation
/// per record) before handing it back, in the unbuffered API as in the buffered one; its
/// unbuffered API is where it decrypts in place for the caller from 0.24 on (rustls pull
/// request 2746), which this loop is ready for.
pub(crate) struct TlsSession<C> {
    sock: TcpStream,
    conn: C,
    /// The handshake finished and the [`Side`] let the peer in.
    established: bool,
    /// Refused or failed: no more plaintext is read.
    broken: bool,
    /// Ciphertext read from the socket; rustls has not yet taken `incoming[start..end]`.
    incoming: Vec<u8>,
    start: usize,
    end: usize,
    /// The last socket read filled the buffer: the next buffer is [`BIG_READ`].
    big: bool,
    /// The socket reached end of stream.
    eof: bool,
    /// Ciphertext to send, from `sent` on.
    outgoing: Vec<u8>,
    sent: usize,
    /// Plaintext decrypted but not yet read, from `plain_at` on.
    plain: Vec<u8>,
    plain_at: usize,
    /// An error met after plaintext was read: returned by the next read.
    error: Option<io::Error>,
    /// The peer sent close_notify or closed the socket: reads end once `plain` is read.
    ended: bool,
}

impl<C> std::fmt::Debug for TlsSession<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSession")
            .field("established", &self.established)
            .field("held", &(self.end - self.start))
            .field("to_send", &(self.outgoing.len() - self.sent))
            .field("ended", &self.ended)
            .finish()
    }
}

impl<C: Unbuffered> TlsSession<C> {
    /// A session of `conn` over `sock`; the handshake starts with the first read.
    pub(crate) fn new(sock: TcpStream, conn: C) -> Self {
        TlsSession {
            sock,
            conn,
            established: false,
            broken: false,
            incoming: Vec::new(),
            start: 0,
            end: 0,
            big: false,
            eof: false,
            outgoing: Vec::new(),
            sent: 0,
            plain: Vec::new(),
            plain_at: 0,
            error: None,
            ended: false,
        }
    }

    /// The socket.
    pub(crate) fn socket(&self) -> &TcpStream {
        &self.sock
    }

    /// Whether the handshake finished and the peer was let in.
    pub(crate) fn established(&self) -> bool {
        self.established
    }

    /// Whether the peer ended the session (close_notify, or a close of the socket).
    pub(crate) fn ended(&self) -> bool {
        self.ended
    }

    /// Whether ciphertext waits for the socket.
    pub(crate) fn wants_write(&self) -> bool {
        self.sent < self.outgoing.len()
    }

    /// Decrypts into `buf` until it is full, the socket would block, or the stream ends (a
    /// short read means drained, as on a socket; `Ok(0)`: the end). An error met after some
    /// plaintext was read is kept for the next call.
    pub(crate) fn read(&mut self, side: &mut impl Side, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        if self.broken {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the TLS session failed",
            ));
        }
        let mut filled = self.take_plain(buf);
        // A socket read shorter than the room it had drained the socket (the contract's
        // short read): no read that would only answer `WouldBlock` follows it.
        let mut drained = false;
        loop {
            if filled == buf.len() || (self.ended && self.plain_at == self.plain.len()) {
                return Ok(filled);
            }
            match self.turn(buf, &mut filled, Writing::Nothing) {
                Turn::More | Turn::Wrote => {}
                Turn::Transmit => {
                    // Handshake messages (and session tickets) go out as soon as they are
                    // made; a socket too full for them is tried again on the next read.
                    if let Err(e) = self.send_pending() {
                        return self.stop(filled, e);
                    }
                }
                Turn::Established => {
                    if let Err(e) = side.established(self.conn.common()) {
                        self.broken = true;
                        self.close_notify();
                        return self.stop(filled, e);
                    }
                    self.established = true;
                }
                Turn::Ended => self.ended = true,
                Turn::Failed(e) => {
                    self.broken = true;
                    // Tell the peer why (rustls queued an alert), then end.
                    self.flush_alert();
                    let e = side.fail(!self.established, Failure::Tls(e));
                    return self.stop(filled, e);
                }
                Turn::NeedData if self.eof => {
                    if !self.established {
                        self.broken = true;
                        let e = side.fail(true, Failure::Closed);
                        return self.stop(filled, e);
                    }
                    // Closed without close_notify: the end of the stream all the same
                    // (rsyslog closes so); a frame cut off is counted by the framer.
                    self.ended = true;
                }
                Turn::NeedData => match self.read_socket(drained) {
                    Ok(0) => self.eof = true,
                    Ok(_) => drained = !self.big,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        if let Err(e) = self.send_pending() {
                            return self.stop(filled, e);
                        }
                        if self.start == self.end {
                            // An idle connection holds no buffer.
                            self.incoming = Vec::new();
                            (self.start, self.end) = (0, 0);
                        }
                        return if filled > 0 { Ok(filled) } else { Err(e) };
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        let e = if self.established {
                            e
                        } else {
                            self.broken = true;
                            side.fail(true, Failure::Io(e))
                        };
                        return self.stop(filled, e);
                    }
                },
            }
        }
    }

    /// Encrypts (up to 64 KiB of) `buf`: refused with `WouldBlock` until the handshake
    /// finished and while earlier ciphertext waits for the socket, so that the caller's
    /// buffer, not the session's, holds what cannot go yet.
    pub(crate) fn write(&mut self, side: &mut impl Side, buf: &[u8]) -> io::Result<usize> {
        if self.broken {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the TLS session failed",
            ));
        }
        if !self.established || !self.send_pending()? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(MAX_WRITE);
        // Plaintext rustls hands over on the way (records that came after the last read)
        // waits in `plain` for the next read.
        let mut none: [u8; 0] = [];
        for _ in 0..16 {
            match self.turn(&mut none, &mut 0, Writing::Records(&buf[..n])) {
                Turn::Wrote => {
                    self.send_pending()?;
                    return Ok(n);
                }
                Turn::Ended => self.ended = true,
                Turn::Failed(e) => {
                    self.broken = true;
                    self.flush_alert();
                    return Err(side.fail(false, Failure::Tls(e)));
                }
                Turn::NeedData => return Err(io::ErrorKind::WouldBlock.into()),
                Turn::More | Turn::Transmit | Turn::Established => {}
            }
        }
        Err(io::Error::other(
            "the TLS session did not let a record be written",
        ))
    }

    /// Writes the ciphertext held until the socket would block; `true` when all went.
    pub(crate) fn send_pending(&mut self) -> io::Result<bool> {
        while self.sent < self.outgoing.len() {
            match self.sock.write(&self.outgoing[self.sent..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.outgoing.clear();
        self.sent = 0;
        if self.outgoing.capacity() > 2 * MAX_WRITE {
            self.outgoing = Vec::new();
        }
        Ok(true)
    }

    /// One turn of rustls' state machine over the ciphertext held. Plaintext goes into
    /// `buf` from `*filled` on, and what does not fit into `plain`; `writing` is encrypted
    /// once rustls lets the session write.
    fn turn(&mut self, buf: &mut [u8], filled: &mut usize, writing: Writing<'_>) -> Turn {
        use rustls::unbuffered::ConnectionState as S;
        let status = self.conn.process(&mut self.incoming[self.start..self.end]);
        let mut discard = status.discard;
        let turn = match status.state {
            Err(e) => Turn::Failed(e),
            // Records of a peer not yet let in wait in rustls until the side decided; a
            // refused peer's records are dropped.
            Ok(S::ReadTraffic(_)) if !self.established && !self.broken => Turn::Established,
            Ok(S::ReadTraffic(mut traffic)) => {
                let mut turn = Turn::More;
                while let Some(record) = traffic.next_record() {
                    match record {
                        Ok(r) => {
                            discard += r.discard;
                            let room = (buf.len() - *filled).min(r.payload.len());
                            buf[*filled..*filled + room].copy_from_slice(&r.payload[..room]);
                            *filled += room;
                            if !self.broken {
                                self.plain.extend_from_slice(&r.payload[room..]);
                            }
                        }
                        Err(e) => {
                            turn = Turn::Failed(e);
                            break;
                        }
                    }
                }
                turn
            }
            Ok(S::EncodeTlsData(mut data)) => {
                match append(&mut self.outgoing, 4096, |out| match data.encode(out) {
                    Ok(n) => Ok(n),
                    Err(rustls::unbuffered::EncodeError::InsufficientSize(s)) => {
                        Err(Some(s.required_size))
                    }
                    Err(_) => Err(None),
                }) {
                    Ok(()) => Turn::More,
                    Err(()) => Turn::Failed(rustls::Error::General(
                        "a handshake message could not be encoded".into(),
                    )),
                }
            }
            Ok(S::TransmitTlsData(data)) => {
                // Queued in `outgoing`, which the session sends.
                data.done();
                Turn::Transmit
            }
            Ok(S::BlockedHandshake) => Turn::NeedData,
            Ok(S::WriteTraffic(mut traffic)) => match writing {
                Writing::Records(plain) => {
                    // Room for the records' headers and tags too (22 bytes each under TLS
                    // 1.3, 29 under 1.2's AES-GCM), so that one try does.
                    let room = plain.len() + (plain.len() / (16 << 10) + 1) * 64;
                    match append(&mut self.outgoing, room, |out| {
                        match traffic.encrypt(plain, out) {
                            Ok(n) => Ok(n),
                            Err(rustls::unbuffered::EncryptError::InsufficientSize(s)) => {
                                Err(Some(s.required_size))
                            }
                            Err(_) => Err(None),
                        }
                    }) {
                        Ok(()) => Turn::Wrote,
                        Err(()) => Turn::Failed(rustls::Error::EncryptError),
                    }
                }
                Writing::CloseNotify => {
                    let _ = append(&mut self.outgoing, 64, |out| {
                        traffic.queue_close_notify(out).map_err(|e| match e {
                            rustls::unbuffered::EncryptError::InsufficientSize(s) => {
                                Some(s.required_size)
                            }
                            _ => None,
                        })
                    });
                    Turn::Wrote
                }
                Writing::Nothing if !self.established && !self.broken => Turn::Established,
                Writing::Nothing => Turn::NeedData,
            },
            Ok(S::PeerClosed | S::Closed) => Turn::Ended,
            // Early data is not enabled; nothing else is known.
            Ok(other) => Turn::Failed(rustls::Error::General(format!(
                "unexpected TLS state {other:?}"
            ))),
        };
        self.start += discard;
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        }
        turn
    }

    /// Copies plaintext held from an earlier turn into `buf`; how much.
    fn take_plain(&mut self, buf: &mut [u8]) -> usize {
        let n = (self.plain.len() - self.plain_at).min(buf.len());
        buf[..n].copy_from_slice(&self.plain[self.plain_at..self.plain_at + n]);
        self.plain_at += n;
        if self.plain_at == self.plain.len() {
            self.plain.clear();
            self.plain_at = 0;
        }
        n
    }

    /// Reads the socket after the ciphertext held (made room for first); `Ok(0)`: end of
    /// stream. `drained`: the last read was short, so the socket is not read again (the
    /// answer is `WouldBlock`).
    fn read_socket(&mut self, drained: bool) -> io::Result<usize> {
        if drained {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        if self.end == self.incoming.len() && self.start > 0 {
            self.incoming.copy_within(self.start..self.end, 0);
            (self.start, self.end) = (0, self.end - self.start);
        }
        if self.end == self.incoming.len() {
            let size = match self.incoming.len() {
                0 if self.big => BIG_READ,
                0 => FIRST_READ,
                n if n < MAX_INCOMING => n * 2,
                _ => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "a TLS message over 256 KiB",
                    ));
                }
            };
            self.incoming.resize(size, 0);
        }
        let n = self.sock.read(&mut self.incoming[self.end..])?;
        self.big = self.end + n == self.incoming.len();
        self.end += n;
        Ok(n)
    }

    /// Sends the alert rustls queued with an error (best effort: the session ends anyway).
    /// A turn hands over what rustls queued before it looks at the ciphertext held, so the
    /// turns stop once nothing is queued: the record that failed is not processed again.
    fn flush_alert(&mut self) {
        let mut none: [u8; 0] = [];
        for _ in 0..4 {
            if !self.conn.common().wants_write() {
                break;
            }
            if !matches!(
                self.turn(&mut none, &mut 0, Writing::Nothing),
                Turn::More | Turn::Transmit
            ) {
                break;
            }
        }
        let _ = self.send_pending();
    }

    /// Queues and sends close_notify (best effort: a refused peer is closed anyway).
    fn close_notify(&mut self) {
        let mut none: [u8; 0] = [];
        for _ in 0..8 {
            match self.turn(&mut none, &mut 0, Writing::CloseNotify) {
                Turn::More | Turn::Transmit | Turn::Ended | Turn::Established => {}
                Turn::Wrote | Turn::NeedData | Turn::Failed(_) => break,
            }
        }
        let _ = self.send_pending();
    }

    /// Returns what was read, keeping `e` for the next call, or `e` when nothing was read.
    fn stop(&mut self, filled: usize, e: io::Error) -> io::Result<usize> {
        if filled > 0 {
            self.error = Some(e);
            Ok(filled)
        } else {
            Err(e)
        }
    }
}

/// Runs `f` on `room` bytes of free space at the end of `out`, more if `f` asks
/// (`Err(Some(size))`), keeping what it wrote; `Err(())` when it failed otherwise.
fn append(
    out: &mut Vec<u8>,
    mut room: usize,
    mut f: impl FnMut(&mut [u8]) -> Result<usize, Option<usize>>,
) -> Result<(), ()> {
    let len = out.len();
    for _ in 0..2 {
        out.resize(len + room, 0);
        match f(&mut out[len..]) {
            Ok(n) => {
                out.truncate(len + n);
                return Ok(());
            }
            Err(Some(size)) => room = size,
            Err(None) => break,
        }
    }
    out.truncate(len);
    Err(())
}

/// A TLS listener's arguments without the TLS policy's (`--` flags): what the address
/// parser reads.
pub(crate) fn listener_args(args: &[String]) -> Vec<String> {
    let mut rest = Vec::new();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next();
        if !flag.starts_with("--") {
            rest.push(flag.clone());
            rest.extend(value.cloned());
        }
    }
    rest
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, KeyPair};
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};

    /// The server's side in these tests: counts what the session tells it.
    #[derive(Default)]
    struct Counting {
        established: u32,
        failures: Vec<(bool, String)>,
    }

    impl Side for Counting {
        fn established(&mut self, _: &rustls::CommonState) -> io::Result<()> {
            self.established += 1;
            Ok(())
        }

        fn fail(&mut self, handshaking: bool, failure: Failure) -> io::Error {
            let e = match failure {
                Failure::Closed => io::Error::other("closed"),
                Failure::Io(e) => e,
                Failure::Tls(e) => io::Error::new(io::ErrorKind::InvalidData, e),
            };
            self.failures.push((handshaking, e.to_string()));
            e
        }
    }

    /// A server session (blocking socket: each read waits for data) and a rustls client over
    /// loopback, the client on a thread of its own running `client` (which returns what it
    /// read).
    fn pair(
        client: impl FnOnce(
            rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>,
        ) -> Vec<u8>
        + Send
        + 'static,
    ) -> (
        TlsSession<rustls::server::UnbufferedServerConnection>,
        std::thread::JoinHandle<Vec<u8>>,
    ) {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["logd.test".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let der = CertificateDer::from(cert.der().to_vec());
        let server = rustls::ServerConfig::builder_with_provider(crate::tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![der.clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(der).unwrap();
        let client_cfg = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let thread = std::thread::spawn(move || {
            let conn = rustls::ClientConnection::new(
                Arc::new(client_cfg),
                ServerName::try_from("logd.test").unwrap(),
            )
            .unwrap();
            let sock = std::net::TcpStream::connect(addr).unwrap();
            client(rustls::StreamOwned::new(conn, sock))
        });
        let (sock, _) = listener.accept().unwrap();
        let sock = TcpStream::from(std::os::fd::OwnedFd::from(sock));
        let conn = rustls::server::UnbufferedServerConnection::new(Arc::new(server)).unwrap();
        (TlsSession::new(sock, conn), thread)
    }

    /// Reads until the end of the stream with a small buffer.
    fn read_to_end(
        s: &mut TlsSession<rustls::server::UnbufferedServerConnection>,
        side: &mut Counting,
        chunk: usize,
    ) -> io::Result<Vec<u8>> {
        let mut got = Vec::new();
        let mut buf = vec![0u8; chunk];
        loop {
            match s.read(side, &mut buf) {
                Ok(0) => return Ok(got),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }

    #[test]
    fn records_larger_than_the_readers_buffer_arrive_whole_and_in_order() {
        let payload: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
        let sent = payload.clone();
        let (mut s, client) = pair(move |mut tls| {
            // One write: three TLS records (16 KiB, 16 KiB, the rest), then close_notify.
            tls.write_all(&sent).unwrap();
            tls.conn.send_close_notify();
            tls.flush().unwrap();
            Vec::new()
        });
        let mut side = Counting::default();
        let got = read_to_end(&mut s, &mut side, 1000).unwrap();
        client.join().unwrap();
        assert_eq!(got.len(), payload.len());
        assert!(got == payload, "the bytes arrive in order");
        assert_eq!(side.established, 1);
        assert!(side.failures.is_empty(), "{:?}", side.failures);
        assert!(s.ended() && s.established());
        // The end stays the end.
        assert_eq!(s.read(&mut side, &mut [0u8; 16]).unwrap(), 0);
    }

    #[test]
    fn an_error_after_plaintext_is_kept_for_the_next_read() {
        let (mut s, client) = pair(|mut tls| {
            tls.write_all(b"a record before the garbage").unwrap();
            tls.flush().unwrap();
            // Then bytes that are no TLS record, on the socket itself.
            tls.sock.write_all(&[0x17, 0x03, 0x03, 0x00, 0x20]).unwrap();
            tls.sock.write_all(&[0xAA; 32]).unwrap();
            let mut rest = Vec::new();
            let _ = tls.sock.read_to_end(&mut rest);
            rest
        });
        let mut side = Counting::default();
        let mut buf = [0u8; 4096];
        let mut got = Vec::new();
        let err = loop {
            match s.read(&mut side, &mut buf) {
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => break e,
            }
        };
        drop(s);
        let from_server = client.join().unwrap();
        assert_eq!(got, b"a record before the garbage");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
        assert_eq!(side.failures.len(), 1);
        assert!(!side.failures[0].0, "after the handshake");
        // What the client read after its garbage ends with the server's alert: one record
        // (its type hidden under TLS 1.3) of a two-byte alert, its type byte and the tag.
        let alert = [0x17, 0x03, 0x03, 0x00, 2 + 1 + 16];
        let at = from_server.len().saturating_sub(5 + 19);
        assert_eq!(from_server.get(at..at + 5), Some(&alert[..]));
    }

    #[test]
    fn a_client_that_closes_during_the_handshake_is_a_failure_of_the_handshake() {
        let (mut s, client) = pair(|tls| {
            drop(tls);
            Vec::new()
        });
        let mut side = Counting::default();
        let err = read_to_end(&mut s, &mut side, 1000).unwrap_err();
        client.join().unwrap();
        assert_eq!(err.to_string(), "closed");
        assert_eq!(side.failures, [(true, "closed".to_string())]);
        assert_eq!(side.established, 0);
    }
}
