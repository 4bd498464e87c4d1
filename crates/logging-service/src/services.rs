//! The services of `logd` as components of the Component Configurator: listeners for each
//! wire format and a statistics reporter, configured from a svc.conf and reconfigured live.
//!
//! ```text
//! # svc.conf for logd
//! static ACE_Logging    "-p 20009"
//! static Syslog_Logging "-p 20514 -b 0.0.0.0"
//! static RELP_Logging   "-p 2514"
//! static Statistics     "-i 60"
//! ```
//!
//! Each component registers its handlers with the running dispatcher through its
//! [`Remote`] and waits until that is done, so `init` reports a port already in use and
//! `fini` returns once the port is closed: a reconfiguration that moves a listener can
//! bind the port the old one held.

use std::any::Any;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use component_configurator::{Component, ComponentError, Configurator};
use parking_lot::Mutex;
use pattern_core::{Context, Disposition, EventHandler, Interest, Remote, Removal, TimerId, Token};
use reactor::{Acceptor, ServiceFactory};
use wrapper_facade::activation::{InheritedSocket, SocketKind};
use wrapper_facade::{AcceptorOptions, InetAddr, SockAcceptor, SockDgram};

use crate::forward::ForwardHandle;
use crate::limits::BufferBudget;
use crate::relp_listener::RelpFactory;
use crate::server::{AceFraming, ConnectionFactory, Framing, Listening, SyslogFraming, SyslogUdp};
use crate::store::Output;
use crate::tls_conn::{Security, TlsListener};

/// What every service needs from the server.
#[derive(Clone)]
pub struct ServiceEnv {
    /// The dispatcher, reached from the configurator's thread.
    pub remote: Arc<dyn Remote>,
    /// Where records go.
    pub output: Arc<Output>,
    /// Default address to listen on.
    pub bind: IpAddr,
    /// Idle-client timeout (zero: never).
    pub idle: Duration,
    /// Largest frame or message accepted.
    pub max_frame: usize,
    /// The server-wide budget of bytes in unfinished frames.
    pub budget: Arc<BufferBudget>,
    /// The listen backlog.
    pub backlog: i32,
    /// The counters of every acceptor started (their `EMFILE` back-offs go into the stats).
    pub acceptors: Arc<Mutex<Vec<AcceptorCounters>>>,
    /// Where the listeners are, kept up to date by the listener services.
    pub listening: Arc<Mutex<Listening>>,
    /// Set once the dispatcher has stopped: finalising then has nothing to deregister.
    pub stopped: Arc<AtomicBool>,
    /// `SO_RCVBUF` of the syslog UDP socket (`None`: the kernel's default).
    pub udp_rcvbuf: Option<usize>,
    /// The forwarder, when forwarding (its counters for the statistics).
    pub forwarder: Option<ForwardHandle>,
    /// Sockets bound before the services started (socket activation, `--user`).
    pub sockets: SocketPool,
    /// `--concurrency proactor`: where the TCP listeners are served instead of the reactor.
    pub proactor: Option<Arc<crate::proactive::Ingest>>,
    /// The data directory (components keep their spools under it by default).
    pub data_dir: std::path::PathBuf,
    /// TLS policies and per-peer limits.
    pub security: Security,
}

impl std::fmt::Debug for ServiceEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceEnv")
            .field("bind", &self.bind)
            .finish_non_exhaustive()
    }
}

impl ServiceEnv {
    /// Runs `f` on the dispatcher and waits for its answer.
    pub(crate) fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut dyn Context) -> R + Send + 'static,
    ) -> Result<R, ComponentError> {
        if self.stopped.load(Ordering::Acquire) {
            return Err(ComponentError::new("the dispatcher has stopped"));
        }
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.remote
            .post(Box::new(move |ctx| {
                let _ = tx.send(f(ctx));
            }))
            .map_err(|e| ComponentError::new(format!("dispatcher refused: {e}")))?;
        rx.recv_timeout(Duration::from_secs(30))
            .map_err(|_| ComponentError::new("the dispatcher did not run the registration"))
    }

    /// The counters, with the acceptors' `EMFILE` back-offs (every listener started so
    /// far, stopped ones included).
    pub fn stats(&self) -> crate::store::Stats {
        let mut stats = self.output.stats();
        stats.accept_backoffs = self
            .acceptors
            .lock()
            .iter()
            .map(|a| a.lock().backoffs)
            .sum();
        if let Some(f) = &self.forwarder {
            // The store's thread copies them only at its groups.
            f.stats().put_in(&mut stats);
        }
        stats
    }

    pub(crate) fn register(
        &self,
        handler: Box<dyn EventHandler>,
        interest: Interest,
    ) -> Result<Token, ComponentError> {
        self.call(move |ctx| ctx.register(handler, interest))?
            .map_err(|e| ComponentError::new(format!("registration refused: {e}")))
    }

    pub(crate) fn for_each(
        &self,
        tokens: &[Token],
        op: fn(&mut dyn Context, Token) -> Result<(), pattern_core::DispatchError>,
    ) {
        for &t in tokens {
            // Gone already (e.g. closed at shutdown) is fine.
            let _ = self.call(move |ctx| op(ctx, t));
        }
    }
}

/// A shared view of one acceptor's counters.
pub type AcceptorCounters = Arc<Mutex<reactor::AcceptorStats>>;

/// Which wire format a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// ACE's logging protocol over TCP.
    Ace,
    /// Syslog over TCP and UDP.
    Syslog,
    /// RELP over TCP (acknowledged syslog).
    Relp,
}

/// Sockets bound before the services start: passed by the service manager (socket
/// activation, `LISTEN_FDS`) or bound while logd was still root (`--user`). A listener whose
/// address is in the pool listens on a duplicate of that socket instead of binding: the
/// pool keeps the original, so a suspended listener can resume on it without privileges
/// (its port stays open meanwhile; connections wait in the backlog).
#[derive(Debug, Clone, Default)]
pub struct SocketPool(Arc<Mutex<Vec<(InheritedSocket, bool)>>>);

impl SocketPool {
    /// A pool of `sockets`.
    pub fn new(sockets: Vec<InheritedSocket>) -> Self {
        SocketPool(Arc::new(Mutex::new(
            sockets.into_iter().map(|s| (s, false)).collect(),
        )))
    }

    /// A duplicate of the pooled socket of `kind` that serves `want`: same port, and the
    /// same address or a pooled wildcard address. `None` for port 0 or no such socket.
    fn take(&self, kind: SocketKind, want: SocketAddr) -> Option<std::io::Result<OwnedFd>> {
        if want.port() == 0 {
            return None;
        }
        let mut pool = self.0.lock();
        let (s, used) = pool.iter_mut().find(|(s, _)| {
            s.kind == kind
                && s.local.port() == want.port()
                && (s.local.ip() == want.ip() || s.local.ip().is_unspecified())
        })?;
        *used = true;
        if s.local != want {
            tracing::info!(
                "listening for {want} on the socket passed in, bound to {}",
                s.local
            );
        }
        Some(s.fd.try_clone())
    }

    /// The pooled sockets no listener took.
    pub fn unused(&self) -> Vec<(SocketKind, SocketAddr)> {
        self.0
            .lock()
            .iter()
            .filter(|(_, used)| !used)
            .map(|(s, _)| (s.kind, s.local))
            .collect()
    }
}

/// The fixed addresses the listener directives of the svc.conf `text` will bind (port 0
/// left out): what `logd --user` binds ahead while it is still root. A directive that does
/// not parse is left out here and reported when the services start.
pub fn planned_listeners(source: &str, text: &str, bind: IpAddr) -> Vec<(SocketKind, SocketAddr)> {
    use component_configurator::svc_conf::{self, Directive};
    let Ok(directives) = svc_conf::parse(source, text, &|k| std::env::var(k).ok()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for d in directives {
        let Directive::Static { name, args, .. } = d.directive else {
            continue;
        };
        let (default_port, kinds): (u16, &[SocketKind]) = match name.as_str() {
            ACE_LOGGING => (20009, &[SocketKind::Stream]),
            SYSLOG_LOGGING => (20514, &[SocketKind::Stream, SocketKind::Datagram]),
            RELP_LOGGING => (2514, &[SocketKind::Stream]),
            ACE_TLS => (20010, &[SocketKind::Stream]),
            SYSLOG_TLS => (6514, &[SocketKind::Stream]),
            RELP_TLS => (2515, &[SocketKind::Stream]),
            _ => continue,
        };
        let args = match name.as_str() {
            ACE_TLS | SYSLOG_TLS | RELP_TLS => crate::tls_conn::listener_args(&args),
            _ => args,
        };
        if let Ok(addr) = parse_listener_args(&args, default_port, bind)
            && addr.port() != 0
        {
            out.extend(kinds.iter().map(|&k| (k, addr)));
        }
    }
    out
}

/// A listener service: an Acceptor (and for syslog a UDP handler) on the dispatcher.
///
/// Arguments: `-p PORT` (default 20009 for ACE, 20514 for syslog; 0 picks one),
/// `-b ADDR` (default: logd's `--bind`).
#[derive(Debug)]
pub struct ListenerService {
    env: ServiceEnv,
    format: Format,
    /// Whether it speaks TLS (`ACE_TLS`, `Syslog_TLS`, `RELP_TLS`: TCP only).
    tls: bool,
    /// The TLS policy in force, while started.
    tls_listener: Option<Arc<TlsListener>>,
    tokens: Vec<Token>,
    addr: Option<SocketAddr>,
    /// Suspended: the TCP listener is closed (its token is not in `tokens`).
    suspended: bool,
    /// The UDP socket's receive buffer in force, as the kernel reports it.
    udp_rcvbuf: Option<usize>,
}

impl ListenerService {
    /// A listener for `format`, not yet started.
    pub fn new(env: ServiceEnv, format: Format) -> Self {
        ListenerService {
            env,
            format,
            tls: false,
            tls_listener: None,
            tokens: Vec::new(),
            addr: None,
            suspended: false,
            udp_rcvbuf: None,
        }
    }

    /// A listener for `format` over TLS, not yet started.
    pub fn new_tls(env: ServiceEnv, format: Format) -> Self {
        ListenerService {
            tls: true,
            ..ListenerService::new(env, format)
        }
    }

    fn publish(&self, addr: Option<SocketAddr>) {
        let mut l = self.env.listening.lock();
        if self.tls {
            match self.format {
                Format::Ace => l.ace_tls = addr,
                Format::Syslog => l.syslog_tls = addr,
                Format::Relp => l.relp_tls = addr,
            }
            return;
        }
        match self.format {
            Format::Ace => l.ace = addr,
            Format::Syslog => {
                l.syslog_tcp = addr;
                l.syslog_udp = addr;
            }
            Format::Relp => l.relp = addr,
        }
    }

    fn acceptor<F: Framing>(
        &self,
        addr: SocketAddr,
        make: fn(usize) -> F,
    ) -> std::io::Result<Acceptor<ConnectionFactory<F>>> {
        let factory = ConnectionFactory::new(
            make,
            self.env.max_frame,
            self.env.output.clone(),
            self.env.idle,
            self.env.budget.clone(),
        )
        .with_admission(self.admission());
        self.acceptor_with(addr, factory)
    }

    fn acceptor_with<S: ServiceFactory>(
        &self,
        addr: SocketAddr,
        factory: S,
    ) -> std::io::Result<Acceptor<S>> {
        let listener = SockAcceptor::from(self.listening_socket(addr, true)?);
        Ok(Acceptor::from_listener(listener, factory))
    }

    /// A listening TCP socket on `addr`: the one passed in (socket activation, bound before
    /// `--user`), or one bound now through the wrapper facade (for the backlog, which mio's
    /// `bind` fixes).
    fn listening_socket(&self, addr: SocketAddr, nonblocking: bool) -> std::io::Result<OwnedFd> {
        if let Some(pooled) = self.env.sockets.take(SocketKind::Stream, addr) {
            return pooled;
        }
        let opts = AcceptorOptions::default()
            .backlog(self.env.backlog)
            .nonblocking(nonblocking)
            .reuse_addr(true);
        Ok(OwnedFd::from(SockAcceptor::open(
            &InetAddr::from(addr),
            &opts,
        )?))
    }
}

fn parse_listener_args(
    args: &[String],
    default_port: u16,
    default_bind: IpAddr,
) -> Result<SocketAddr, ComponentError> {
    let (mut port, mut bind) = (default_port, default_bind);
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .ok_or_else(|| ComponentError::new(format!("{flag} needs a value")))?;
        match flag.as_str() {
            "-p" => {
                port = value
                    .parse()
                    .map_err(|_| ComponentError::new(format!("-p: bad port `{value}`")))?
            }
            "-b" => {
                bind = value
                    .parse()
                    .map_err(|_| ComponentError::new(format!("-b: bad address `{value}`")))?
            }
            other => {
                return Err(ComponentError::new(format!(
                    "unknown argument `{other}` (expected -p PORT, -b ADDR)"
                )));
            }
        }
    }
    Ok(SocketAddr::new(bind, port))
}

impl ListenerService {
    fn address(&self, args: &[String]) -> Result<SocketAddr, ComponentError> {
        let default_port = match (self.format, self.tls) {
            (Format::Ace, false) => 20009,
            (Format::Syslog, false) => 20514,
            (Format::Relp, false) => 2514,
            (Format::Ace, true) => 20010,
            (Format::Syslog, true) => 6514,
            (Format::Relp, true) => 2515,
        };
        if self.tls {
            return parse_listener_args(
                &crate::tls_conn::listener_args(args),
                default_port,
                self.env.bind,
            );
        }
        parse_listener_args(args, default_port, self.env.bind)
    }

    fn admission(&self) -> crate::tls_conn::Admission {
        self.env.security.admission(self.tls_listener.clone())
    }
}

impl ListenerService {
    /// The UDP socket, with `--udp-rcvbuf` applied; records the buffer size in force.
    fn udp_socket(&mut self, addr: SocketAddr) -> std::io::Result<SockDgram> {
        let sock = match self.env.sockets.take(SocketKind::Datagram, addr) {
            Some(pooled) => SockDgram::from(pooled?),
            None => SockDgram::bind(&InetAddr::from(addr))?,
        };
        sock.set_nonblocking(true)?;
        if let Some(size) = self.env.udp_rcvbuf {
            sock.set_recv_buffer_size(size)?;
        }
        self.udp_rcvbuf = sock.recv_buffer_size().ok();
        Ok(sock)
    }

    fn what(&self) -> &'static str {
        match (self.format, self.tls) {
            (Format::Ace, false) => "ACE logging (tcp)",
            (Format::Syslog, false) => "syslog (tcp, udp)",
            (Format::Relp, false) => "RELP (tcp)",
            (Format::Ace, true) => "ACE logging (tls)",
            (Format::Syslog, true) => "syslog (tls)",
            (Format::Relp, true) => "RELP (tls)",
        }
    }

    /// A bound TCP acceptor for this format, its counters recorded, and its address.
    fn tcp_acceptor(
        &self,
        want: SocketAddr,
    ) -> std::io::Result<(Box<dyn EventHandler>, SocketAddr)> {
        // RELP answers every frame, so it stays on the reactor: the proactor's connections
        // only read.
        if let Some(ingest) = self
            .env
            .proactor
            .as_ref()
            .filter(|_| self.format != Format::Relp && !self.tls)
        {
            let listener = std::net::TcpListener::from(self.listening_socket(want, false)?);
            let bound = listener.local_addr()?;
            let counters = AcceptorCounters::default();
            self.env.acceptors.lock().push(counters.clone());
            return Ok((ingest.listen(listener, self.format, counters)?, bound));
        }
        match self.format {
            Format::Ace => {
                let a = self.acceptor(want, AceFraming::new)?;
                let bound = a.local_addr()?;
                self.env.acceptors.lock().push(a.stats());
                Ok((Box::new(a), bound))
            }
            Format::Syslog => {
                let a = self.acceptor(want, SyslogFraming::new)?;
                let bound = a.local_addr()?;
                self.env.acceptors.lock().push(a.stats());
                Ok((Box::new(a), bound))
            }
            Format::Relp => {
                let factory = RelpFactory::new(
                    self.env.max_frame,
                    self.env.output.clone(),
                    self.env.idle,
                    self.env.budget.clone(),
                )
                .with_admission(self.admission());
                let a = self.acceptor_with(want, factory)?;
                let bound = a.local_addr()?;
                self.env.acceptors.lock().push(a.stats());
                Ok((Box::new(a), bound))
            }
        }
    }
}

impl Component for ListenerService {
    fn check(&self, args: &[String]) -> Result<(), ComponentError> {
        self.address(args)?;
        if self.tls {
            // The certificates are read, so a reload with a broken file changes nothing.
            self.env.security.tls_listener(args)?;
        }
        Ok(())
    }

    fn init(&mut self, args: &[String]) -> Result<(), ComponentError> {
        let want = self.address(args)?;
        if self.tls {
            self.tls_listener = Some(self.env.security.tls_listener(args)?);
        }
        let bind_err =
            |e: std::io::Error| ComponentError::io(format_args!("cannot listen on {want}"), &e);
        let (tcp, bound) = self.tcp_acceptor(want).map_err(bind_err)?;
        let udp: Option<Box<dyn EventHandler>> = match self.format {
            // UDP on the port number the TCP listener got (not beside TLS: no DTLS).
            Format::Syslog if !self.tls => {
                let socket = self.udp_socket(bound).map_err(bind_err)?;
                let drops =
                    |e| ComponentError::io(format_args!("cannot count drops on {want}"), &e);
                Some(match &self.env.proactor {
                    Some(ingest) => ingest.listen_udp(socket).map_err(drops)?,
                    None => Box::new(
                        SyslogUdp::new(socket, self.env.output.clone(), self.env.max_frame)
                            .map_err(drops)?,
                    ),
                })
            }
            Format::Syslog | Format::Ace | Format::Relp => None,
        };
        self.suspended = false;
        self.tokens.push(self.env.register(tcp, Interest::ACCEPT)?);
        if let Some(handler) = udp {
            match self.env.register(handler, Interest::READ) {
                Ok(t) => self.tokens.push(t),
                Err(e) => {
                    self.fini()?;
                    return Err(e);
                }
            }
        }
        self.addr = Some(bound);
        self.publish(Some(bound));
        Ok(())
    }

    fn fini(&mut self) -> Result<(), ComponentError> {
        let tokens = std::mem::take(&mut self.tokens);
        self.env
            .for_each(&tokens, |ctx, t| ctx.remove(t, Removal::Close));
        self.publish(None);
        self.addr = None;
        self.tls_listener = None;
        Ok(())
    }

    fn suspend(&mut self) -> Result<(), ComponentError> {
        // The TCP listener is closed, not merely left out of the dispatcher: a listening
        // socket nobody accepts from still completes handshakes into its backlog, and those
        // clients would hang. New connects are refused; connections already open go on. UDP
        // stays bound and suspended (its datagrams wait in the socket's receive buffer).
        if self.suspended || self.tokens.is_empty() {
            return Ok(());
        }
        let tcp = self.tokens.remove(0);
        self.env
            .for_each(&[tcp], |ctx, t| ctx.remove(t, Removal::Close));
        self.env.for_each(&self.tokens, |ctx, t| ctx.suspend(t));
        self.suspended = true;
        if let Some(a) = self.addr {
            tracing::info!(
                "{} suspended: the listener on {a} is closed, new connections are refused; open ones go on",
                self.what()
            );
        }
        Ok(())
    }

    fn resume(&mut self) -> Result<(), ComponentError> {
        let Some(addr) = self.addr.filter(|_| self.suspended) else {
            return Ok(());
        };
        // The port it had (the one a port 0 picked, too) is bound again.
        let (tcp, _) = self
            .tcp_acceptor(addr)
            .map_err(|e| ComponentError::io(format_args!("cannot listen on {addr} again"), &e))?;
        let token = self.env.register(tcp, Interest::ACCEPT)?;
        self.env.for_each(&self.tokens, |ctx, t| ctx.resume(t));
        self.tokens.insert(0, token);
        self.suspended = false;
        tracing::info!("{} resumed: listening on {addr} again", self.what());
        Ok(())
    }

    fn info(&self) -> String {
        let what = self.what();
        match self.addr {
            Some(a) if self.suspended => format!("{what} on {a}, suspended (not accepting)"),
            Some(a) => match self.udp_rcvbuf {
                Some(b) => format!("{what} listening on {a}, UDP receive buffer {b} bytes"),
                None => format!("{what} listening on {a}"),
            },
            None => format!("{what}, not listening"),
        }
    }
}

/// Reports the counters every interval (and on `info`).
///
/// Arguments: `-i SECS` (default 60).
#[derive(Debug)]
pub struct StatisticsService {
    env: ServiceEnv,
    token: Option<Token>,
}

impl StatisticsService {
    /// A reporter, not yet started.
    pub fn new(env: ServiceEnv) -> Self {
        StatisticsService { env, token: None }
    }
}

struct Reporter {
    output: Arc<Output>,
    forwarder: Option<ForwardHandle>,
}

impl EventHandler for Reporter {
    fn handle_timeout(
        &mut self,
        _ctx: &mut dyn Context,
        _t: TimerId,
        _act: &mut (dyn Any + Send),
    ) -> Disposition {
        let s = self.output.stats();
        tracing::info!(
            records = s.records,
            stored = s.stored,
            held = s.held,
            dropped = s.dropped(),
            ace = s.ace,
            syslog = s.syslog,
            relp = s.relp,
            relp_unacked_closes = s.relp_unacked_closes,
            rejected = s.rejected,
            connections = s.connections,
            idle_closed = s.idle_closed,
            idle_partial = s.idle_partial,
            oversized_closed = s.oversized_closed,
            buffer_cap_closed = s.buffer_cap_closed,
            buffered_bytes = s.buffered_bytes,
            udp_oversized = s.udp_oversized,
            udp_kernel_drops = s.udp_kernel_drops,
            accept_backoffs = s.accept_backoffs,
            intercepted = s.intercepted,
            routed = s.routed,
            "statistics"
        );
        if let Some(f) = &self.forwarder {
            tracing::info!("forwarding to {}: {}", f.upstream(), f.stats());
        }
        Disposition::Continue
    }
}

/// The longest reporting interval `-i` takes: a day, far from any overflow of the timer
/// queue's deadline arithmetic.
const MAX_INTERVAL_SECS: u64 = 24 * 60 * 60;

fn parse_interval(args: &[String]) -> Result<Duration, ComponentError> {
    let secs: u64 = match args {
        [] => 60,
        [flag, v] if flag == "-i" => v
            .parse()
            .map_err(|_| ComponentError::new(format!("-i: bad interval `{v}`")))?,
        _ => return Err(ComponentError::new("expected -i SECS")),
    };
    if !(1..=MAX_INTERVAL_SECS).contains(&secs) {
        return Err(ComponentError::new(format!(
            "-i: the interval must be 1 to {MAX_INTERVAL_SECS} seconds, not {secs}"
        )));
    }
    Ok(Duration::from_secs(secs))
}

impl Component for StatisticsService {
    fn check(&self, args: &[String]) -> Result<(), ComponentError> {
        parse_interval(args).map(drop)
    }

    fn init(&mut self, args: &[String]) -> Result<(), ComponentError> {
        let every = parse_interval(args)?;
        let token = self.env.register(
            Box::new(Reporter {
                output: self.env.output.clone(),
                forwarder: self.env.forwarder.clone(),
            }),
            Interest::NONE,
        )?;
        self.env
            .call(move |ctx| ctx.schedule_timer(token, every, Some(every), Box::new(())))?
            .map_err(|e| ComponentError::new(format!("timer refused: {e}")))?;
        self.token = Some(token);
        Ok(())
    }

    fn fini(&mut self) -> Result<(), ComponentError> {
        if let Some(t) = self.token.take() {
            self.env
                .for_each(&[t], |ctx, t| ctx.remove(t, Removal::Close));
        }
        Ok(())
    }

    fn info(&self) -> String {
        let s = self.env.output.stats();
        let mut info = format!(
            "statistics: {} records ({} ACE, {} syslog, {} RELP), {} stored, {} held, {} dropped, {} rejected, {} connections, {} closed idle, {} UDP datagrams dropped by the kernel",
            s.records,
            s.ace,
            s.syslog,
            s.relp,
            s.stored,
            s.held,
            s.dropped(),
            s.rejected,
            s.connections,
            s.idle_closed,
            s.udp_kernel_drops
        );
        if let Some(f) = &self.env.forwarder {
            info.push_str(&format!("; forwarding: {}", f.stats()));
        }
        info
    }
}

/// Names of the static services, as svc.conf's `static` directives use them.
pub const ACE_LOGGING: &str = "ACE_Logging";
/// See [`ACE_LOGGING`].
pub const SYSLOG_LOGGING: &str = "Syslog_Logging";
/// See [`ACE_LOGGING`]; arguments `-p PORT` (default 2514), `-b ADDR`.
pub const RELP_LOGGING: &str = "RELP_Logging";
/// ACE's format over TLS; arguments `-p PORT` (default 20010), `-b ADDR` and the TLS
/// policy's (`--tls-cert FILE`, `--tls-key FILE`, `--tls-ca FILE`, `--tls-client-auth
/// none|optional|required`, `--tls-permitted-peer NAME` repeated, `--tls-min-version 1.2|1.3`,
/// `--host-from certificate|message`), each defaulting to logd's option of that name.
pub const ACE_TLS: &str = "ACE_TLS";
/// Syslog over TLS (RFC 5425, octet counting; newline framing is accepted too), TCP only;
/// arguments as [`ACE_TLS`]'s, default port 6514.
pub const SYSLOG_TLS: &str = "Syslog_TLS";
/// RELP over TLS; arguments as [`ACE_TLS`]'s, default port 2515.
pub const RELP_TLS: &str = "RELP_TLS";
/// See [`ACE_LOGGING`].
pub const STATISTICS: &str = "Statistics";
/// See [`ACE_LOGGING`]; the service is [`crate::metrics::MetricsService`].
pub const METRICS: &str = "Metrics";

/// A remote for a configurator that only validates: there is no dispatcher, and nothing is
/// ever posted to it (validation creates components but never initialises them).
#[derive(Debug)]
struct Detached;

impl Remote for Detached {
    fn post(&self, _job: pattern_core::Job) -> Result<(), pattern_core::DispatchError> {
        Err(pattern_core::DispatchError::ShutDown)
    }

    fn notify(
        &self,
        _token: Token,
        _message: pattern_core::Message,
    ) -> Result<(), pattern_core::DispatchError> {
        Err(pattern_core::DispatchError::ShutDown)
    }

    fn end(&self) {}
}

/// Validates the svc.conf at `path` as a reload would (`logd --check-config`): syntax,
/// known services, every service's arguments; without a dispatcher, binding nothing.
/// The error names the file and line.
pub fn check_file(
    path: &std::path::Path,
    bind: IpAddr,
) -> Result<(), component_configurator::Error> {
    check_file_with(path, bind, Security::default())
}

/// [`check_file`] with logd's TLS options (the defaults of the TLS listeners' arguments).
pub fn check_file_with(
    path: &std::path::Path,
    bind: IpAddr,
    security: Security,
) -> Result<(), component_configurator::Error> {
    let env = ServiceEnv {
        remote: Arc::new(Detached),
        output: Output::new(Vec::new()),
        bind,
        idle: Duration::ZERO,
        max_frame: 1,
        budget: Arc::new(BufferBudget::new(1)),
        backlog: 1,
        acceptors: Default::default(),
        listening: Default::default(),
        stopped: Arc::new(AtomicBool::new(true)),
        udp_rcvbuf: None,
        forwarder: None,
        sockets: SocketPool::default(),
        proactor: None,
        data_dir: Default::default(),
        security,
    };
    configurator(&env).check_file(path)
}

/// A configurator knowing logd's static services. Dynamic components (cdylib plugins of the
/// configurator's C ABI) load beside them with `dynamic` directives.
pub fn configurator(env: &ServiceEnv) -> Configurator {
    let mut cfg = Configurator::default();
    let e = env.clone();
    cfg.register_static(ACE_LOGGING, move || {
        Box::new(ListenerService::new(e.clone(), Format::Ace))
    });
    let e = env.clone();
    cfg.register_static(SYSLOG_LOGGING, move || {
        Box::new(ListenerService::new(e.clone(), Format::Syslog))
    });
    let e = env.clone();
    cfg.register_static(RELP_LOGGING, move || {
        Box::new(ListenerService::new(e.clone(), Format::Relp))
    });
    for (name, format) in [
        (ACE_TLS, Format::Ace),
        (SYSLOG_TLS, Format::Syslog),
        (RELP_TLS, Format::Relp),
    ] {
        let e = env.clone();
        cfg.register_static(name, move || {
            Box::new(ListenerService::new_tls(e.clone(), format))
        });
    }
    let e = env.clone();
    cfg.register_static(STATISTICS, move || {
        Box::new(StatisticsService::new(e.clone()))
    });
    let e = env.clone();
    cfg.register_static(METRICS, move || {
        Box::new(crate::metrics::MetricsService::new(e.clone()))
    });
    let e = env.clone();
    cfg.register_static(crate::clickhouse::CLICKHOUSE, move || {
        Box::new(crate::clickhouse::ClickHouseService::new(e.clone()))
    });
    let chain = env.output.chain().clone();
    cfg.register_static(crate::intercept::INTERCEPTORS, move || {
        Box::new(crate::intercept::InterceptorsService::new(chain.clone()))
    });
    cfg
}
