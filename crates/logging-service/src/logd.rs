//! [`Logd`], the logging server, and its configuration: a dispatcher of the configured
//! concurrency model on a thread of its own, the services of [`crate::services`] configured
//! on it, the forwarder and the store behind an [`Output`].
//!
//! The modules depend one way: `logd` → [`crate::services`] → [`crate::server`] (the handlers).

use std::any::Any;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use component_configurator::{Configurator, Report};
use leader_followers::Concurrency;
use pattern_core::{Context, Disposition, EventHandler, Interest, Remote, TimerId, Token};

use crate::error::Error;
use crate::forward::{ForwardHandle, ForwardOptions, Forwarder};
use crate::intercept;
use crate::limits::{self, BufferBudget};
use crate::server::Listening;
use crate::services::{self, ServiceEnv};
use crate::store::{FileStore, Output, RecordSink, Stats, StoreConfig};
use crate::tls_conn;

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
    /// RELP port (`None`: no RELP listener, the default). Ignored when `svc_conf` is given.
    pub relp_port: Option<u16>,
    /// A svc.conf configuring the services (see [`crate::services`] for the directives).
    pub svc_conf: Option<PathBuf>,
    /// Storage.
    pub store: StoreConfig,
    /// The dispatcher.
    pub concurrency: Concurrency,
    /// `--concurrency proactor`: the TCP listeners' ingest on the proactor (io_uring), the
    /// rest on the reactor (`concurrency` must then be the reactor). Where io_uring is missing
    /// or refused, logd falls back to the reactor with a warning ([`Logd::proactor`] tells).
    pub proactor: bool,
    /// Submission entries of the proactor's io_uring (its completion queue holds twice as
    /// many). A burst of completions larger than the queue costs nothing but extra turns: the
    /// kernel ends a multishot accept or receive that cannot post, and the proactor re-arms it.
    pub proactor_ring_entries: u32,
    /// Upstream to forward every record to.
    pub forward: Option<SocketAddr>,
    /// How forwarding queues, spools, reconnects and stops.
    pub forwarding: ForwardOptions,
    /// Close connections idle this long (zero: never).
    pub idle: Duration,
    /// Largest frame or message accepted (1 to [`limits::MAX_FRAME_LIMIT`]).
    pub max_frame: usize,
    /// Bytes all connections together may hold in unfinished frames (at least `max_frame`).
    pub max_buffered: usize,
    /// The listen backlog of the TCP listeners (1 to [`limits::MAX_BACKLOG`]).
    pub backlog: i32,
    /// Where to serve Prometheus metrics over HTTP (`GET /metrics`); port 0 picks one.
    pub metrics: Option<SocketAddr>,
    /// `SO_RCVBUF` of the syslog UDP socket (`None`: the kernel's default).
    pub udp_rcvbuf: Option<usize>,
    /// Who may have written the plugins of `dynamic` directives (`--insecure-plugins`).
    pub plugin_trust: component_configurator::PluginTrust,
    /// Sockets bound before start (socket activation, or bound as root before `--user`),
    /// which listeners on their addresses use instead of binding.
    pub sockets: services::SocketPool,
    /// The arguments of a `ClickHouse` directive (`--clickhouse`; see [`crate::clickhouse`]),
    /// added to the port options' directives.
    pub clickhouse: Option<String>,
    /// TLS and the per-peer limits ([`tls_conn`]).
    pub security: tls_conn::SecurityOptions,
}

impl Default for LogdConfig {
    fn default() -> Self {
        LogdConfig {
            bind: IpAddr::from([127, 0, 0, 1]),
            ace_port: Some(20009),
            syslog_port: Some(20514),
            relp_port: None,
            svc_conf: None,
            store: StoreConfig::new("logd-data"),
            concurrency: Concurrency::Reactor,
            proactor: false,
            proactor_ring_entries: crate::proactive::DEFAULT_RING_ENTRIES,
            forward: None,
            forwarding: ForwardOptions::default(),
            idle: Duration::from_secs(300),
            max_frame: 64 * 1024,
            max_buffered: limits::DEFAULT_MAX_BUFFERED,
            backlog: limits::default_backlog(),
            metrics: None,
            udp_rcvbuf: None,
            plugin_trust: component_configurator::PluginTrust::Strict,
            sockets: services::SocketPool::default(),
            clickhouse: None,
            security: tls_conn::SecurityOptions::default(),
        }
    }
}

impl LogdConfig {
    /// Checks every numeric setting against its range ([`limits`]), so that nothing out of
    /// range reaches the dispatcher (an idle timeout of `u64::MAX` seconds used to overflow
    /// the first timer and close the acceptor).
    pub fn validate(&self) -> Result<(), Error> {
        let fail = |m: String| Err(Error::Usage(m));
        if self.idle > limits::MAX_IDLE {
            return fail(format!(
                "idle timeout {}s is out of range (0 to {}s)",
                self.idle.as_secs(),
                limits::MAX_IDLE.as_secs()
            ));
        }
        if !(1..=limits::MAX_FRAME_LIMIT).contains(&self.max_frame) {
            return fail(format!(
                "max frame {} is out of range (1 to {})",
                self.max_frame,
                limits::MAX_FRAME_LIMIT
            ));
        }
        if self.max_buffered < self.max_frame
            || self.max_buffered as u64 > limits::MAX_BUFFERED_LIMIT
        {
            return fail(format!(
                "max buffered {} is out of range (the max frame {} to {})",
                self.max_buffered,
                self.max_frame,
                limits::MAX_BUFFERED_LIMIT
            ));
        }
        if !(1..=limits::MAX_BACKLOG).contains(&self.backlog) {
            return fail(format!(
                "backlog {} is out of range (1 to {})",
                self.backlog,
                limits::MAX_BACKLOG
            ));
        }
        let sec = &self.security;
        let tls_ports = [sec.ace_tls_port, sec.syslog_tls_port, sec.relp_tls_port];
        if self.svc_conf.is_none() && sec.tls.is_none() && tls_ports.iter().any(Option::is_some) {
            return fail("a TLS port needs --tls-cert and --tls-key".into());
        }
        if self.proactor
            && (sec.max_connections_per_peer.is_some() || sec.max_rate_per_peer.is_some())
        {
            return fail(
                "the per-peer limits apply on the reactor's connections, not on the proactor's"
                    .into(),
            );
        }
        if self.proactor && self.concurrency != Concurrency::Reactor {
            return fail(format!(
                "the proactor runs beside the reactor, not {}",
                self.concurrency
            ));
        }
        let threads = match self.concurrency {
            Concurrency::LeaderFollowers { threads }
            | Concurrency::HalfSyncHalfAsync { threads, .. } => threads,
            _ => 1,
        };
        if !(1..=limits::MAX_THREADS).contains(&threads) {
            return fail(format!(
                "{threads} threads is out of range (1 to {})",
                limits::MAX_THREADS
            ));
        }
        Ok(())
    }

    /// The svc.conf equivalent of the port options: what runs without `-f`.
    pub fn default_directives(&self) -> String {
        let mut d = String::new();
        if let Some(p) = self.ace_port {
            d.push_str(&format!("static {} \"-p {p}\"\n", services::ACE_LOGGING));
        }
        if let Some(p) = self.syslog_port {
            d.push_str(&format!("static {} \"-p {p}\"\n", services::SYSLOG_LOGGING));
        }
        if let Some(p) = self.relp_port {
            d.push_str(&format!("static {} \"-p {p}\"\n", services::RELP_LOGGING));
        }
        if let Some(args) = &self.clickhouse {
            d.push_str(&format!(
                "static {} \"{args}\"\n",
                crate::clickhouse::CLICKHOUSE
            ));
        }
        let tls = [
            (self.security.ace_tls_port, services::ACE_TLS),
            (self.security.syslog_tls_port, services::SYSLOG_TLS),
            (self.security.relp_tls_port, services::RELP_TLS),
        ];
        for (port, name) in tls {
            if let Some(p) = port {
                d.push_str(&format!("static {name} \"-p {p}\"\n"));
            }
        }
        d
    }
}

/// Binds, while the process is still privileged, every fixed address the configuration's
/// listeners will use that `already` lacks (for `logd --user`: bind port 514, then drop
/// root before any input is read). The sockets go into [`LogdConfig::sockets`].
pub fn bind_ahead(
    cfg: &LogdConfig,
    already: &[wrapper_facade::activation::InheritedSocket],
) -> Result<Vec<wrapper_facade::activation::InheritedSocket>, Error> {
    use wrapper_facade::activation::{InheritedSocket, SocketKind};
    use wrapper_facade::{AcceptorOptions, InetAddr, SockAcceptor, SockDgram};
    let (source, text) = match &cfg.svc_conf {
        Some(path) => (
            path.display().to_string(),
            std::fs::read_to_string(path).map_err(Error::io("cannot read the svc.conf"))?,
        ),
        None => ("options".to_owned(), cfg.default_directives()),
    };
    let mut out = Vec::new();
    for (kind, local) in services::planned_listeners(&source, &text, cfg.bind) {
        if already
            .iter()
            .any(|s| s.kind == kind && s.local.port() == local.port())
        {
            continue;
        }
        let bound = match kind {
            SocketKind::Stream => {
                let opts = AcceptorOptions::default()
                    .backlog(cfg.backlog)
                    .nonblocking(true)
                    .reuse_addr(true);
                SockAcceptor::open(&InetAddr::from(local), &opts).map(std::os::fd::OwnedFd::from)
            }
            SocketKind::Datagram => {
                SockDgram::bind(&InetAddr::from(local)).map(std::os::fd::OwnedFd::from)
            }
        };
        let fd = bound.map_err(|e| Error::Io {
            what: "cannot bind a listener before dropping privileges",
            source: std::io::Error::new(e.kind(), format!("{local}: {e}")),
        })?;
        out.push(InheritedSocket {
            fd,
            kind,
            local,
            name: None,
        });
    }
    Ok(out)
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

/// `--concurrency proactor`: the ingest on io_uring, or `None` after a warning where io_uring
/// is missing or refused (the reactor then serves the listeners).
fn start_proactor(cfg: &LogdConfig, output: &Arc<Output>) -> Option<Arc<crate::proactive::Ingest>> {
    if !cfg.proactor {
        return None;
    }
    let budget = Arc::new(BufferBudget::new(cfg.max_buffered));
    match crate::proactive::Ingest::start(
        output.clone(),
        budget,
        cfg.max_frame,
        cfg.idle,
        cfg.proactor_ring_entries,
    ) {
        Ok(ingest) => Some(Arc::new(ingest)),
        Err(e) => {
            tracing::warn!(
                "--concurrency proactor: {}; falling back to the reactor",
                pattern_core::ErrorChain(&e)
            );
            None
        }
    }
}

impl std::fmt::Debug for Logd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logd")
            .field("listening", &self.listening())
            .finish()
    }
}

/// The services a (re)configuration could not start, as an error; `None` when all started.
///
/// With `from_options`, the directives stand for the port options (there is no svc.conf the
/// user wrote), so each failure names the option instead of a directive's position.
fn services_failed(report: &Report, from_options: bool) -> Option<Error> {
    if report.is_ok() {
        return None;
    }
    let mut unavailable = false;
    let failures = report
        .errors
        .iter()
        .map(|d| {
            let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&d.error);
            while let Some(e) = cause {
                let kind = e
                    .downcast_ref::<io::Error>()
                    .map(io::Error::kind)
                    .or_else(|| match e.downcast_ref::<component_configurator::Error>() {
                        Some(component_configurator::Error::Component { error, .. }) => {
                            error.io_kind
                        }
                        _ => None,
                    });
                if let Some(kind) = kind {
                    unavailable |= matches!(
                        kind,
                        io::ErrorKind::AddrInUse
                            | io::ErrorKind::AddrNotAvailable
                            | io::ErrorKind::PermissionDenied
                    );
                }
                cause = e.source();
            }
            let option = match d.name.as_str() {
                "ACE_Logging" => Some("--ace-port"),
                "Syslog_Logging" => Some("--syslog-port"),
                "RELP_Logging" => Some("--relp-port"),
                "ACE_TLS" => Some("--ace-tls-port"),
                "Syslog_TLS" => Some("--syslog-tls-port"),
                "RELP_TLS" => Some("--relp-tls-port"),
                _ => None,
            };
            match option {
                Some(opt) if from_options => {
                    format!("{} ({opt}): {}", d.name, pattern_core::ErrorChain(&d.error))
                }
                _ => d.to_string(),
            }
        })
        .collect();
    Some(Error::Services {
        failures,
        unavailable,
    })
}

impl Logd {
    /// Starts the dispatcher and configures the services (from `svc_conf`, or the port
    /// options). On a configuration error nothing keeps running.
    pub fn start(cfg: LogdConfig) -> Result<Logd, Error> {
        cfg.validate()?;
        let store = FileStore::open(cfg.store.clone()).map_err(|source| Error::Store {
            path: std::path::absolute(&cfg.store.dir).unwrap_or_else(|_| cfg.store.dir.clone()),
            source,
        })?;
        // Interception points "before store" and "before forward" wrap the sinks.
        let chain = Arc::new(intercept::Chain::default());
        let point = |p, sink: Box<dyn RecordSink>| -> Box<dyn RecordSink> {
            Box::new(intercept::Intercepted::new(chain.clone(), p, sink))
        };
        let mut sinks: Vec<Box<dyn RecordSink>> =
            vec![point(intercept::Point::Store, Box::new(store))];
        let mut forwarder = None;
        if let Some(up) = cfg.forward {
            let f = Forwarder::start(up, &cfg.forwarding, cfg.store.dir.join("spool"))
                .map_err(Error::io("cannot start the forwarder"))?;
            forwarder = Some(f.handle());
            sinks.push(point(intercept::Point::Forward, Box::new(f)));
        }
        let output = Output::with_chain(sinks, chain);
        let mut dispatcher = cfg
            .concurrency
            .build()
            .map_err(Error::io("cannot create the dispatcher"))?;
        if let Some(f) = &forwarder {
            // The forwarder's Connector and sessions are handlers on this dispatcher.
            f.attach(&mut *dispatcher).map_err(Error::from)?;
        }
        let stopped = Arc::new(AtomicBool::new(false));
        let proactor = start_proactor(&cfg, &output);
        let env = ServiceEnv {
            remote: dispatcher.remote(),
            output,
            bind: cfg.bind,
            idle: cfg.idle,
            max_frame: cfg.max_frame,
            budget: Arc::new(BufferBudget::new(cfg.max_buffered)),
            backlog: cfg.backlog,
            acceptors: Default::default(),
            listening: Default::default(),
            stopped: stopped.clone(),
            udp_rcvbuf: cfg.udp_rcvbuf,
            forwarder: forwarder.clone(),
            sockets: cfg.sockets.clone(),
            proactor,
            data_dir: cfg.store.dir.clone(),
            security: tls_conn::Security::new(cfg.security.clone()),
        };
        let thread = std::thread::Builder::new()
            .name("logd-dispatcher".into())
            .spawn(move || {
                let result = dispatcher.run();
                stopped.store(true, Ordering::Release);
                result
            })
            .map_err(Error::io("cannot start the dispatcher thread"))?;
        let mut configurator = services::configurator(&env);
        configurator.set_plugin_trust(cfg.plugin_trust);
        let mut logd = Logd {
            configurator,
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
            Ok(r) => services_failed(&r, cfg.svc_conf.is_none()),
            Err(e) => Some(Error::Config(e)),
        };
        if let Some(e) = failure {
            let _ = logd.stop();
            return Err(e);
        }
        if let Err(e) = logd.start_store_timer(cfg.store.tick_period()) {
            let _ = logd.stop();
            return Err(e);
        }
        if let Some(addr) = cfg.metrics
            && let Err(e) = crate::metrics::open(&logd.env, addr)
        {
            let _ = logd.stop();
            return Err(Error::Services {
                failures: vec![format!("--metrics: {}", pattern_core::ErrorChain(&e))],
                unavailable: true,
            });
        }
        Ok(logd)
    }

    /// The output's timer: retries held records, syncs within the fsync interval and checks
    /// the data directory, whether or not records arrive.
    fn start_store_timer(&self, period: Duration) -> Result<(), Error> {
        let token = self.register(Box::new(StoreTimer {
            output: self.env.output.clone(),
        }))?;
        self.env
            .call(move |ctx| ctx.schedule_timer(token, period, Some(period), Box::new(())))
            .map_err(refused)??;
        Ok(())
    }

    /// Re-reads the svc.conf and applies what changed (SIGHUP), and reopens the files.
    /// The whole file is validated first, every service's arguments included: on any error
    /// there nothing changes and every service goes on as it was (the files are reopened
    /// all the same, since `logrotate` relies on that). What fails while applying (a port in
    /// use) is in the report's errors, and that service keeps its old arguments.
    pub fn reconfigure(&mut self) -> Result<Report, Error> {
        let reopened = self.env.output.reopen();
        self.env.security.reload_tls(&self.env.output);
        match self.forwarder.as_ref().and_then(ForwardHandle::reload_tls) {
            Some(Ok(())) => self.env.output.count(|s| s.tls_reloads += 1),
            Some(Err(e)) => {
                tracing::error!(error = %e, "the forwarder's TLS files not reloaded; the running ones stay");
                self.env.output.count(|s| s.tls_reload_failures += 1);
            }
            None => {}
        }
        let result = match reopened {
            Ok(()) => self.configurator.reconfigure().map_err(Error::from),
            Err(e) => Err(Error::Io {
                what: "cannot reopen the store's files",
                source: e,
            }),
        };
        let failed = !matches!(&result, Ok(r) if r.is_ok());
        self.env.output.count(|s| {
            s.reconfigurations += 1;
            s.reconfigurations_failed += u64::from(failed);
        });
        result
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

    /// Whether the TCP listeners run on the proactor (`--concurrency proactor` on a kernel
    /// that allows io_uring); `false` also after a fallback to the reactor.
    pub fn proactor(&self) -> bool {
        self.env.proactor.is_some()
    }

    /// The forwarder's handle, when forwarding: its counters (readable after the stop too),
    /// and [`ForwardHandle::stop_now`] for a second stop signal.
    pub fn forwarder(&self) -> Option<ForwardHandle> {
        self.forwarder.clone()
    }

    /// Registers another handler (signal watchers) and waits until it is registered.
    pub fn register(&self, handler: Box<dyn EventHandler>) -> Result<Token, Error> {
        self.env
            .call(move |ctx| ctx.register(handler, Interest::NONE))
            .map_err(refused)?
            .map_err(Error::from)
    }

    /// Delivers `signals` (raw numbers) to the handler registered as `token`, and waits until
    /// the dispatcher watches them all: a signal sent once this returns reaches the handler,
    /// and the descriptor that watches them is already open. The first signal refused fails.
    pub fn watch_signals(&self, token: Token, signals: &[i32]) -> Result<(), Error> {
        let signals = signals.to_vec();
        self.env
            .call(move |ctx| {
                signals
                    .into_iter()
                    .try_for_each(|s| ctx.watch_signal(token, s))
            })
            .map_err(refused)?
            .map_err(Error::from)
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
        // What the connections read passes the interceptors before the services (and the
        // chain with them) are finalised.
        self.env.output.settle();
        self.configurator.close();
        if let Some(ingest) = &self.env.proactor {
            // Every connection on the proactor stores what it read, then closes.
            ingest
                .stop()
                .map_err(Error::io("the proactor failed at the stop"))?;
        }
        self.env
            .output
            .flush()
            .map_err(Error::io("cannot flush the store at the stop"))?;
        match run {
            Ok(r) => r.map_err(Error::io("the dispatcher failed"))?,
            Err(_) => {
                return Err(Error::Io {
                    what: "the dispatcher thread panicked",
                    source: io::Error::other("panic"),
                });
            }
        }
        Ok(self.stats())
    }

    /// The counters, with the acceptors' `EMFILE` back-offs (every listener started so
    /// far, stopped ones included).
    pub fn stats(&self) -> Stats {
        self.env.stats()
    }
}

/// The dispatcher did not run a call posted to it: it has stopped (or did not answer).
fn refused(e: component_configurator::ComponentError) -> Error {
    tracing::debug!(error = %e.message, "call on the dispatcher refused");
    Error::Dispatch(pattern_core::DispatchError::ShutDown)
}

/// Drives [`Output::tick`] from the dispatcher's timer queue.
struct StoreTimer {
    output: Arc<Output>,
}

impl EventHandler for StoreTimer {
    fn handle_timeout(
        &mut self,
        _ctx: &mut dyn Context,
        _timer: TimerId,
        _act: &mut (dyn Any + Send),
    ) -> Disposition {
        self.output.tick();
        Disposition::Continue
    }
}
