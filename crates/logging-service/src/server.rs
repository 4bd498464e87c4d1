//! The service handlers: an Acceptor per TCP format, a connection handler per client, a UDP
//! handler, and [`Logd`], which wires them to a dispatcher of the configured concurrency model.

use std::any::Any;
use std::io::{self, Read};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use component_configurator::{Configurator, Report};
use leader_followers::Concurrency;
use mio::net::{TcpStream, UdpSocket};
use pattern_core::{Context, Disposition, EventHandler, Interest, Remote, TimerId, Token};
use reactor::ServiceFactory;

use crate::ace::AceDecoder;
use crate::error::{Error, FrameError};
use crate::forward::{ForwardHandle, ForwardOptions, Forwarder};
use crate::record::RecordBatch;
use crate::services::{self, ServiceEnv};
use crate::store::{Durability, FileStore, Output, RecordSink, Stats, StoreConfig};
use crate::syslog::{self, SyslogFramer};

/// How bytes on a connection become records (the framing strategy).
pub trait Framing: Send + 'static {
    /// Feeds bytes read from the connection; decoded records are appended to `out`.
    /// Malformed frames that the stream can skip are counted in `rejected`; an error means
    /// the stream cannot be resynchronised and the connection must close.
    fn feed(
        &mut self,
        bytes: &[u8],
        peer: &str,
        out: &mut RecordBatch,
        rejected: &mut u64,
    ) -> Result<(), FrameError>;

    /// At end of stream: a last record that needs no terminator.
    fn finish(&mut self, _peer: &str, _out: &mut RecordBatch, _rejected: &mut u64) {}

    /// Counts a record of this framing's format.
    fn count(stats: &mut Stats, n: u64);
}

/// ACE's logging protocol.
#[derive(Debug)]
pub struct AceFraming(AceDecoder);

impl AceFraming {
    /// Frames of at most `max_payload` bytes.
    pub fn new(max_payload: usize) -> Self {
        AceFraming(AceDecoder::new(max_payload))
    }
}

impl Framing for AceFraming {
    fn feed(
        &mut self,
        bytes: &[u8],
        peer: &str,
        out: &mut RecordBatch,
        rejected: &mut u64,
    ) -> Result<(), FrameError> {
        self.0.extend(bytes);
        loop {
            match self.0.next_view() {
                Ok(Some(r)) => out.push_ace(&r, peer),
                Ok(None) => return Ok(()),
                // A bad payload was consumed: go on with the next frame.
                Err(e @ (FrameError::Malformed(_) | FrameError::Truncated { .. })) => {
                    tracing::warn!(%peer, error = %e, "ACE record refused");
                    *rejected += 1;
                }
                // A bad header: no way to find the next frame.
                Err(e) => return Err(e),
            }
        }
    }

    fn count(stats: &mut Stats, n: u64) {
        stats.ace += n;
    }
}

/// Syslog over TCP, RFC 6587 octet counting or newline framing.
#[derive(Debug)]
pub struct SyslogFraming(SyslogFramer);

impl SyslogFraming {
    /// Messages of at most `max_len` bytes.
    pub fn new(max_len: usize) -> Self {
        SyslogFraming(SyslogFramer::new(max_len))
    }
}

fn push_syslog(raw: &[u8], peer: &str, out: &mut RecordBatch, rejected: &mut u64) {
    match syslog::parse(raw) {
        Ok(m) => out.push_syslog(&m, peer),
        Err(e) => {
            tracing::warn!(%peer, error = %e, "syslog message refused");
            *rejected += 1;
        }
    }
}

impl Framing for SyslogFraming {
    fn feed(
        &mut self,
        bytes: &[u8],
        peer: &str,
        out: &mut RecordBatch,
        rejected: &mut u64,
    ) -> Result<(), FrameError> {
        self.0.extend(bytes);
        loop {
            match self.0.next_message() {
                Ok(Some(raw)) => push_syslog(raw, peer, out, rejected),
                Ok(None) => return Ok(()),
                Err(e) => {
                    tracing::warn!(%peer, error = %e, "syslog frame refused");
                    *rejected += 1;
                }
            }
        }
    }

    fn finish(&mut self, peer: &str, out: &mut RecordBatch, rejected: &mut u64) {
        if let Some(raw) = self.0.finish() {
            push_syslog(&raw, peer, out, rejected);
        }
    }

    fn count(stats: &mut Stats, n: u64) {
        stats.syslog += n;
    }
}

/// Bytes read per upcall before yielding to other connections.
const READ_BUDGET: usize = 256 * 1024;

/// One client connection: reads, decodes with its framing, writes each batch to the output
/// before the upcall returns (so a graceful stop loses nothing that was read), and closes
/// itself when idle past the timeout.
pub struct Connection<F> {
    stream: TcpStream,
    peer: String,
    framing: F,
    output: Arc<Output>,
    idle: Duration,
    last_activity: Option<Instant>,
    batch: RecordBatch,
}

impl<F> std::fmt::Debug for Connection<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("peer", &self.peer)
            .finish()
    }
}

impl<F: Framing> Connection<F> {
    fn flush_batch(&mut self, rejected: u64) {
        let n = self.batch.len() as u64;
        if let Err(e) = self.output.write(&self.batch) {
            tracing::error!(error = %e, "storing records failed");
        }
        self.batch.clear();
        self.output.count(|s| {
            F::count(s, n);
            s.rejected += rejected;
        });
    }
}

impl<F: Framing> EventHandler for Connection<F> {
    fn handle(&self) -> Option<BorrowedFd<'_>> {
        Some(self.stream.as_fd())
    }

    fn handle_input(&mut self, ctx: &mut dyn Context) -> Disposition {
        self.last_activity = Some(ctx.now());
        let mut buf = [0u8; 64 * 1024];
        let mut budget = READ_BUDGET;
        let mut rejected = 0;
        let disposition = loop {
            if budget == 0 {
                break Disposition::Again;
            }
            match self.stream.read(&mut buf) {
                Ok(0) => {
                    self.framing
                        .finish(&self.peer, &mut self.batch, &mut rejected);
                    break Disposition::Close;
                }
                Ok(n) => {
                    budget = budget.saturating_sub(n);
                    let short = n < buf.len();
                    if let Err(e) =
                        self.framing
                            .feed(&buf[..n], &self.peer, &mut self.batch, &mut rejected)
                    {
                        tracing::warn!(peer = %self.peer, error = %e, "closing: the stream cannot be resynchronised");
                        rejected += 1;
                        break Disposition::Close;
                    }
                    if short {
                        // Drained for now (the contract's short read); if the client closed
                        // too, the dispatcher upcalls input once more to read end of stream.
                        break Disposition::Continue;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Disposition::Continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    tracing::debug!(peer = %self.peer, error = %e, "read failed");
                    break Disposition::Close;
                }
            }
        };
        self.flush_batch(rejected);
        disposition
    }

    fn handle_timeout(
        &mut self,
        ctx: &mut dyn Context,
        _timer: TimerId,
        _act: &mut (dyn Any + Send),
    ) -> Disposition {
        let now = ctx.now();
        let last = *self.last_activity.get_or_insert(now);
        if now.saturating_duration_since(last) >= self.idle {
            tracing::info!(peer = %self.peer, "closing idle connection");
            self.output.count(|s| s.idle_closed += 1);
            return Disposition::Close;
        }
        Disposition::Continue
    }
}

/// Makes a [`Connection`] per accepted client and starts its idle timer.
pub struct ConnectionFactory<F> {
    make: fn(usize) -> F,
    max_frame: usize,
    output: Arc<Output>,
    idle: Duration,
}

impl<F> std::fmt::Debug for ConnectionFactory<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionFactory")
            .field("idle", &self.idle)
            .finish()
    }
}

impl<F: Framing> ConnectionFactory<F> {
    /// Connections framed by `make(max_frame)`, writing to `output`, closed after `idle`.
    pub fn new(
        make: fn(usize) -> F,
        max_frame: usize,
        output: Arc<Output>,
        idle: Duration,
    ) -> Self {
        ConnectionFactory {
            make,
            max_frame,
            output,
            idle,
        }
    }
}

impl<F: Framing> ServiceFactory for ConnectionFactory<F> {
    fn make_service(
        &mut self,
        stream: TcpStream,
        peer: SocketAddr,
    ) -> Option<(Box<dyn EventHandler>, Interest)> {
        let _ = stream.set_nodelay(true);
        self.output.count(|s| s.connections += 1);
        let conn = Connection {
            stream,
            peer: peer.ip().to_string(),
            framing: (self.make)(self.max_frame),
            output: self.output.clone(),
            idle: self.idle,
            last_activity: None,
            batch: RecordBatch::new(),
        };
        Some((Box::new(conn), Interest::READ))
    }

    fn opened(&mut self, ctx: &mut dyn Context, token: Token) {
        if !self.idle.is_zero() {
            // Checked every interval; a connection is closed within two intervals of going quiet.
            let _ = ctx.schedule_timer(token, self.idle, Some(self.idle), Box::new(()));
        }
    }
}

/// Syslog over UDP: one datagram, one message.
pub struct SyslogUdp {
    socket: UdpSocket,
    output: Arc<Output>,
    batch: RecordBatch,
    /// The receive buffer, kept across upcalls (a datagram is at most 64 KiB).
    buf: Vec<u8>,
    /// The last sender and its address as text, so that a run of datagrams from one sender
    /// formats the address once.
    last_peer: Option<(IpAddr, String)>,
}

impl std::fmt::Debug for SyslogUdp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyslogUdp")
            .field("socket", &self.socket)
            .finish()
    }
}

impl SyslogUdp {
    /// Receives on `socket`, writing to `output`.
    pub fn new(socket: UdpSocket, output: Arc<Output>) -> Self {
        SyslogUdp {
            socket,
            output,
            batch: RecordBatch::new(),
            buf: vec![0u8; 65_536],
            last_peer: None,
        }
    }
}

impl EventHandler for SyslogUdp {
    fn handle(&self) -> Option<BorrowedFd<'_>> {
        Some(self.socket.as_fd())
    }

    fn handle_input(&mut self, _ctx: &mut dyn Context) -> Disposition {
        let mut rejected = 0;
        let mut disposition = Disposition::Again;
        for _ in 0..1024 {
            match self.socket.recv_from(&mut self.buf) {
                Ok((n, peer)) => {
                    let ip = peer.ip();
                    if self.last_peer.as_ref().is_none_or(|(last, _)| *last != ip) {
                        self.last_peer = Some((ip, ip.to_string()));
                    }
                    let (_, text) = self.last_peer.as_ref().expect("just set");
                    push_syslog(&self.buf[..n], text, &mut self.batch, &mut rejected);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    disposition = Disposition::Continue;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    tracing::warn!(error = %e, "UDP receive failed");
                    disposition = Disposition::Continue;
                    break;
                }
            }
        }
        let n = self.batch.len() as u64;
        if let Err(e) = self.output.write(&self.batch) {
            tracing::error!(error = %e, "storing records failed");
        }
        self.batch.clear();
        self.output.count(|s| {
            s.syslog += n;
            s.rejected += rejected;
        });
        disposition
    }
}

/// What `logd` runs: listeners, storage, concurrency model.
#[derive(Debug, Clone)]
pub struct LogdConfig {
    /// Address to listen on.
    pub bind: IpAddr,
    /// ACE logging port (`None`: no ACE listener). Port 0 picks a free one.
    /// Ignored when `svc_conf` is given.
    pub ace_port: Option<u16>,
    /// Syslog port, TCP and UDP (`None`: no syslog listeners). Ignored when `svc_conf` is given.
    pub syslog_port: Option<u16>,
    /// A svc.conf configuring the services (see [`crate::services`] for the directives).
    pub svc_conf: Option<PathBuf>,
    /// Storage.
    pub store: StoreConfig,
    /// The dispatcher.
    pub concurrency: Concurrency,
    /// Upstream to forward every record to.
    pub forward: Option<SocketAddr>,
    /// How forwarding queues, spools, reconnects and stops.
    pub forwarding: ForwardOptions,
    /// Close connections idle this long (zero: never).
    pub idle: Duration,
    /// Largest frame or message accepted.
    pub max_frame: usize,
}

impl Default for LogdConfig {
    fn default() -> Self {
        LogdConfig {
            bind: IpAddr::from([127, 0, 0, 1]),
            ace_port: Some(20009),
            syslog_port: Some(20514),
            svc_conf: None,
            store: StoreConfig::new("logd-data"),
            concurrency: Concurrency::Reactor,
            forward: None,
            forwarding: ForwardOptions::default(),
            idle: Duration::from_secs(300),
            max_frame: 64 * 1024,
        }
    }
}

impl LogdConfig {
    /// The svc.conf equivalent of the port options: what runs without `-f`.
    pub fn default_directives(&self) -> String {
        let mut d = String::new();
        if let Some(p) = self.ace_port {
            d.push_str(&format!("static {} \"-p {p}\"\n", services::ACE_LOGGING));
        }
        if let Some(p) = self.syslog_port {
            d.push_str(&format!("static {} \"-p {p}\"\n", services::SYSLOG_LOGGING));
        }
        d
    }
}

/// The addresses `logd` listens on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Listening {
    /// ACE over TCP.
    pub ace: Option<SocketAddr>,
    /// Syslog over TCP.
    pub syslog_tcp: Option<SocketAddr>,
    /// Syslog over UDP.
    pub syslog_udp: Option<SocketAddr>,
}

/// The logging server: a dispatcher running on a thread of its own, services configured
/// on it by a [`Configurator`], records going to an [`Output`].
pub struct Logd {
    env: ServiceEnv,
    configurator: Configurator,
    thread: Option<JoinHandle<io::Result<()>>>,
    data_dir: PathBuf,
    forwarder: Option<ForwardHandle>,
}

impl std::fmt::Debug for Logd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logd")
            .field("listening", &self.listening())
            .finish()
    }
}

fn report_errors(report: &Report) -> Option<String> {
    (!report.is_ok()).then(|| {
        report
            .errors
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    })
}

impl Logd {
    /// Starts the dispatcher and configures the services (from `svc_conf`, or the port
    /// options). On a configuration error nothing keeps running.
    pub fn start(cfg: LogdConfig) -> Result<Logd, Error> {
        let mut sinks: Vec<Box<dyn RecordSink>> =
            vec![Box::new(FileStore::open(cfg.store.clone())?)];
        let mut forwarder = None;
        if let Some(up) = cfg.forward {
            let f = Forwarder::start(up, &cfg.forwarding, cfg.store.dir.join("spool"))?;
            forwarder = Some(f.handle());
            sinks.push(Box::new(f));
        }
        let output = Output::new(sinks);
        let mut dispatcher = cfg.concurrency.build()?;
        let stopped = Arc::new(AtomicBool::new(false));
        let env = ServiceEnv {
            remote: dispatcher.remote(),
            output,
            bind: cfg.bind,
            idle: cfg.idle,
            max_frame: cfg.max_frame,
            listening: Default::default(),
            stopped: stopped.clone(),
            forwarder: forwarder.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("logd-dispatcher".into())
            .spawn(move || {
                let result = dispatcher.run();
                stopped.store(true, Ordering::Release);
                result
            })?;
        let mut logd = Logd {
            configurator: services::configurator(&env),
            env,
            thread: Some(thread),
            data_dir: cfg.store.dir.clone(),
            forwarder,
        };
        let report = match &cfg.svc_conf {
            Some(path) => logd.configurator.process_file(path),
            None => logd
                .configurator
                .process_directive(&cfg.default_directives()),
        };
        let failure = match report {
            Ok(r) => report_errors(&r),
            Err(e) => Some(e.to_string()),
        };
        if let Some(msg) = failure {
            let _ = logd.stop();
            return Err(Error::Config(msg));
        }
        Ok(logd)
    }

    /// Re-reads the svc.conf and applies what changed (SIGHUP), and reopens the files.
    /// On a parse error nothing changes.
    pub fn reconfigure(&mut self) -> Result<Report, Error> {
        self.env.output.reopen()?;
        self.configurator
            .reconfigure()
            .map_err(|e| Error::Config(e.to_string()))
    }

    /// One line per configured service (ACE's `info`).
    pub fn services(&self) -> Vec<String> {
        self.configurator
            .repository()
            .list()
            .iter()
            .map(|l| format!("{}: {}", l.name, l.info))
            .collect()
    }

    /// Where it listens now.
    pub fn listening(&self) -> Listening {
        *self.env.listening.lock()
    }

    /// The storage directory.
    pub fn data_dir(&self) -> &std::path::Path {
        &self.data_dir
    }

    /// A handle to end the server or post work to it from any thread.
    pub fn remote(&self) -> Arc<dyn Remote> {
        self.env.remote.clone()
    }

    /// The shared output (counters, reopen).
    pub fn output(&self) -> Arc<Output> {
        self.env.output.clone()
    }

    /// The forwarder's handle, when forwarding: its counters (readable after the stop too),
    /// and [`ForwardHandle::stop_now`] for a second stop signal.
    pub fn forwarder(&self) -> Option<ForwardHandle> {
        self.forwarder.clone()
    }

    /// Registers another handler (signal watchers) and waits until it is registered.
    pub fn register(&self, handler: Box<dyn EventHandler>) -> Result<Token, Error> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.env.remote.post(Box::new(move |ctx| {
            let _ = tx.send(ctx.register(handler, Interest::NONE));
        }))?;
        let r = rx
            .recv_timeout(Duration::from_secs(30))
            .map_err(|_| Error::Config("the dispatcher is not running".into()))?;
        Ok(r?)
    }

    /// Ends the dispatcher, then [`wait`](Self::wait)s.
    pub fn stop(self) -> Result<Stats, Error> {
        self.env.remote.end();
        self.wait()
    }

    /// Waits until the dispatcher ends (from [`stop`](Self::stop), a signal watcher or a
    /// remote); then every connection is closed, every record read has been written, the
    /// services are finalised, files are synced and the forwarder drained: for at most its
    /// stop timeout, after which what was not delivered is written to the spool. Returns the
    /// counters.
    pub fn wait(mut self) -> Result<Stats, Error> {
        let run = self.thread.take().expect("waited once").join();
        self.configurator.close();
        self.env.output.flush()?;
        match run {
            Ok(r) => r?,
            Err(_) => {
                return Err(Error::Io(io::Error::other(
                    "the dispatcher thread panicked",
                )));
            }
        }
        Ok(self.env.output.stats())
    }
}

/// Parses a `--fsync` value.
pub fn parse_durability(s: &str) -> Result<Durability, Error> {
    s.parse().map_err(Error::Config)
}
