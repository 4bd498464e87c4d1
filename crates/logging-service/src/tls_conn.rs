//! TLS sessions and per-peer limits inside the reactor's connection handlers.
//!
//! A TCP listener that speaks TLS (`Syslog_TLS`, `ACE_TLS`, `RELP_TLS`) hands each accepted
//! socket to a [`Stream::Tls`]: a rustls `ServerConnection` driven over the nonblocking socket
//! (`read_tls`, `process_new_packets`, the plaintext `reader`, `write_tls` whenever rustls has
//! something to send). The connection handlers read a [`Stream`] as they read a socket, so the
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
            Some(l) => match rustls::ServerConnection::new(l.server.current()) {
                Ok(conn) => Stream::Tls(Box::new(TlsStream {
                    sock,
                    conn,
                    listener: l.clone(),
                    peer: ip.to_string(),
                    output: output.clone(),
                    state: State::Handshaking,
                    host: None,
                    error: None,
                    ended: false,
                    write_armed: false,
                    cipher: Vec::new(),
                    cipher_at: 0,
                    cipher_end: 0,
                    cipher_big: false,
                })),
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
            && let Some(h) = t.host.take()
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
        let Ok(drained) = t.send_pending() else {
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
        matches!(self, Stream::Tls(t) if t.ended)
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
        if t.state != State::Handshaking {
            return Some(Disposition::Continue);
        }
        t.state = State::Failed;
        tracing::warn!(peer = %t.peer, timeout = ?t.listener.handshake_timeout, "TLS handshake refused: not finished within --tls-handshake-timeout");
        t.output.count(|s| {
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
            Stream::Tls(t) => t.sock.as_fd(),
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
            Stream::Tls(t) => t.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(t) => t.send_pending().map(drop),
        }
    }
}

/// A rustls server session driven over a nonblocking socket. See the
/// [module documentation](self).
pub struct TlsStream {
    sock: TcpStream,
    conn: rustls::ServerConnection,
    listener: Arc<TlsListener>,
    /// The peer's address, for the log.
    peer: String,
    output: Arc<Output>,
    state: State,
    /// The host to store records under, once admitted, until the handler takes it.
    host: Option<String>,
    /// An error met after plaintext was read: returned by the next read.
    error: Option<io::Error>,
    /// The client sent close_notify: the next read returns end of stream.
    ended: bool,
    /// Write interest was added for ciphertext rustls still holds.
    write_armed: bool,
    /// Ciphertext read from the socket; rustls has taken it up to `cipher_at`.
    cipher: Vec<u8>,
    cipher_at: usize,
    cipher_end: usize,
    /// The last socket read filled the buffer: the next one gets 64 KiB.
    cipher_big: bool,
}

impl std::fmt::Debug for TlsStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsStream")
            .field("peer", &self.peer)
            .field("state", &self.state)
            .finish()
    }
}

impl TlsStream {
    /// Writes what rustls has to send until the socket would block; `true` when all went.
    fn send_pending(&mut self) -> io::Result<bool> {
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut self.sock) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

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

    /// After a handshake finishes: the policy's check of the peer's names.
    fn admit(&mut self) -> io::Result<()> {
        match self.listener.policy.admit(self.conn.peer_certificates()) {
            Ok(name) => {
                self.state = State::Established;
                tracing::debug!(peer = %self.peer, name = ?name, "TLS session established");
                if self.listener.host_from_certificate {
                    self.host = Some(name.unwrap_or_else(|| self.peer.clone()));
                }
                self.output.count(|s| s.tls_sessions += 1);
                Ok(())
            }
            Err(r) => {
                self.conn.send_close_notify();
                let _ = self.send_pending();
                Err(self.refuse(r.to_string(), true))
            }
        }
    }

    /// Hands rustls the next ciphertext (`Ok(0)`: end of stream). rustls' own `read_tls`
    /// from the socket reads at most 4 KiB a call, 16 times the system calls of a cleartext
    /// connection's 64 KiB reads; so the socket is read into a buffer of the connection's
    /// (16 KiB, 64 KiB once a read filled it) and rustls is fed from it. The buffer is freed
    /// when the socket has nothing more, so that an idle connection holds none.
    fn read_tls(&mut self) -> io::Result<usize> {
        if self.cipher_at == self.cipher_end {
            if self.cipher.is_empty() {
                let size = if self.cipher_big { 64 << 10 } else { 16 << 10 };
                self.cipher = vec![0; size];
            }
            match self.sock.read(&mut self.cipher) {
                // rustls learns of the end from an empty read.
                Ok(0) => return self.conn.read_tls(&mut &[][..]),
                Ok(n) => {
                    self.cipher_big = n == self.cipher.len();
                    (self.cipher_at, self.cipher_end) = (0, n);
                }
                Err(e) => {
                    if e.kind() == io::ErrorKind::WouldBlock {
                        self.cipher = Vec::new();
                    }
                    return Err(e);
                }
            }
        }
        let n = self
            .conn
            .read_tls(&mut &self.cipher[self.cipher_at..self.cipher_end])?;
        self.cipher_at += n;
        Ok(n)
    }

    /// Decrypts into `buf` until it is full, the socket would block, or the stream ends.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        if self.state == State::Failed {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "TLS session refused",
            ));
        }
        let mut filled = 0;
        let stop = |filled: usize, e: io::Error, keep: &mut Option<io::Error>| {
            if filled > 0 {
                *keep = Some(e);
                Ok(filled)
            } else {
                Err(e)
            }
        };
        loop {
            if filled == buf.len() {
                return Ok(filled);
            }
            match self.conn.reader().read(&mut buf[filled..]) {
                // close_notify: the end of the stream.
                Ok(0) => {
                    self.ended = true;
                    return Ok(filled);
                }
                Ok(n) => {
                    filled += n;
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // The socket closed without close_notify: the end of the stream all the same
                // (rsyslog closes so); a frame cut off is counted as unfinished by the framer.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(filled),
                Err(e) => return stop(filled, e, &mut self.error),
            }
            match self.read_tls() {
                Ok(0) => {
                    if self.state == State::Handshaking {
                        let e = self.refuse("the client closed during the handshake".into(), false);
                        return stop(filled, e, &mut self.error);
                    }
                    // The reader reports the end on the next turn.
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if let Err(e) = self.send_pending() {
                        return stop(filled, e, &mut self.error);
                    }
                    return if filled > 0 { Ok(filled) } else { Err(e) };
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    if self.state == State::Handshaking {
                        let _ = self.refuse(format!("reading the handshake failed: {e}"), false);
                    }
                    return stop(filled, e, &mut self.error);
                }
            }
            if let Err(e) = self.conn.process_new_packets() {
                // Tell the client why (rustls queued an alert), then close.
                let _ = self.send_pending();
                let e = if self.state == State::Handshaking {
                    self.refuse(e.to_string(), false)
                } else {
                    tracing::warn!(peer = %self.peer, error = %e, "TLS session failed");
                    io::Error::new(io::ErrorKind::InvalidData, e)
                };
                return stop(filled, e, &mut self.error);
            }
            if self.state == State::Handshaking
                && !self.conn.is_handshaking()
                && let Err(e) = self.admit()
            {
                return stop(filled, e, &mut self.error);
            }
            // Handshake messages (and session tickets) go out as soon as they are made; a
            // socket too full for them is tried again on the next read, and the handshake
            // deadline ends a session that never gets them.
            if let Err(e) = self.send_pending() {
                return stop(filled, e, &mut self.error);
            }
        }
    }

    /// Encrypts `buf` (RELP's answers): refused with `WouldBlock` while earlier records wait
    /// for the socket, so that the caller's buffer, not rustls', holds what cannot go yet.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !self.send_pending()? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = self.conn.writer().write(buf)?;
        self.send_pending()?;
        Ok(n)
    }
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
