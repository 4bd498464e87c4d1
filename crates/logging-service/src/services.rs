//! The services of `logd` as components of the Component Configurator: listeners for each
//! wire format and a statistics reporter, configured from a svc.conf and reconfigured live.
//!
//! ```text
//! # svc.conf for logd
//! static ACE_Logging    "-p 20009"
//! static Syslog_Logging "-p 20514 -b 0.0.0.0"
//! static Statistics     "-i 60"
//! ```
//!
//! Each component registers its handlers with the running dispatcher through its
//! [`Remote`] and waits until that is done, so `init` reports a port already in use and
//! `fini` returns once the port is closed: a reconfiguration that moves a listener can
//! bind the port the old one held.

use std::any::Any;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use component_configurator::{Component, ComponentError, Configurator};
use mio::net::UdpSocket;
use parking_lot::Mutex;
use pattern_core::{Context, Disposition, EventHandler, Interest, Remote, Removal, TimerId, Token};
use reactor::Acceptor;

use crate::forward::ForwardHandle;
use crate::server::{AceFraming, ConnectionFactory, Framing, Listening, SyslogFraming, SyslogUdp};
use crate::store::Output;

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
    /// Where the listeners are, kept up to date by the listener services.
    pub listening: Arc<Mutex<Listening>>,
    /// Set once the dispatcher has stopped: finalising then has nothing to deregister.
    pub stopped: Arc<AtomicBool>,
    /// The forwarder, when forwarding (its counters for the statistics).
    pub forwarder: Option<ForwardHandle>,
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
    fn call<R: Send + 'static>(
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

    fn register(
        &self,
        handler: Box<dyn EventHandler>,
        interest: Interest,
    ) -> Result<Token, ComponentError> {
        self.call(move |ctx| ctx.register(handler, interest))?
            .map_err(|e| ComponentError::new(format!("registration refused: {e}")))
    }

    fn for_each(
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

/// Which wire format a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// ACE's logging protocol over TCP.
    Ace,
    /// Syslog over TCP and UDP.
    Syslog,
}

/// A listener service: an Acceptor (and for syslog a UDP handler) on the dispatcher.
///
/// Arguments: `-p PORT` (default 20009 for ACE, 20514 for syslog; 0 picks one),
/// `-b ADDR` (default: logd's `--bind`).
#[derive(Debug)]
pub struct ListenerService {
    env: ServiceEnv,
    format: Format,
    tokens: Vec<Token>,
    addr: Option<SocketAddr>,
}

impl ListenerService {
    /// A listener for `format`, not yet started.
    pub fn new(env: ServiceEnv, format: Format) -> Self {
        ListenerService {
            env,
            format,
            tokens: Vec::new(),
            addr: None,
        }
    }

    fn publish(&self, addr: Option<SocketAddr>) {
        let mut l = self.env.listening.lock();
        match self.format {
            Format::Ace => l.ace = addr,
            Format::Syslog => {
                l.syslog_tcp = addr;
                l.syslog_udp = addr;
            }
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
        );
        Acceptor::bind(addr, factory)
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

impl Component for ListenerService {
    fn init(&mut self, args: &[String]) -> Result<(), ComponentError> {
        let default_port = match self.format {
            Format::Ace => 20009,
            Format::Syslog => 20514,
        };
        let want = parse_listener_args(args, default_port, self.env.bind)?;
        let bind_err =
            |e: std::io::Error| ComponentError::new(format!("cannot listen on {want}: {e}"));
        let (tcp, bound) = match self.format {
            Format::Ace => {
                let a = self.acceptor(want, AceFraming::new).map_err(bind_err)?;
                let bound = a.local_addr().map_err(bind_err)?;
                (Box::new(a) as Box<dyn EventHandler>, bound)
            }
            Format::Syslog => {
                let a = self.acceptor(want, SyslogFraming::new).map_err(bind_err)?;
                let bound = a.local_addr().map_err(bind_err)?;
                (Box::new(a) as Box<dyn EventHandler>, bound)
            }
        };
        let udp = match self.format {
            // UDP on the port number the TCP listener got.
            Format::Syslog => Some(UdpSocket::bind(bound).map_err(bind_err)?),
            Format::Ace => None,
        };
        self.tokens.push(self.env.register(tcp, Interest::ACCEPT)?);
        if let Some(socket) = udp {
            let handler = SyslogUdp::new(socket, self.env.output.clone());
            match self.env.register(Box::new(handler), Interest::READ) {
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
        Ok(())
    }

    fn suspend(&mut self) -> Result<(), ComponentError> {
        // Stops accepting new clients; connections already open go on.
        self.env.for_each(&self.tokens, |ctx, t| ctx.suspend(t));
        Ok(())
    }

    fn resume(&mut self) -> Result<(), ComponentError> {
        self.env.for_each(&self.tokens, |ctx, t| ctx.resume(t));
        Ok(())
    }

    fn info(&self) -> String {
        let what = match self.format {
            Format::Ace => "ACE logging (tcp)",
            Format::Syslog => "syslog (tcp, udp)",
        };
        match self.addr {
            Some(a) => format!("{what} listening on {a}"),
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
            ace = s.ace,
            syslog = s.syslog,
            rejected = s.rejected,
            connections = s.connections,
            "statistics"
        );
        if let Some(f) = &self.forwarder {
            tracing::info!("forwarding to {}: {}", f.upstream(), f.stats());
        }
        Disposition::Continue
    }
}

impl Component for StatisticsService {
    fn init(&mut self, args: &[String]) -> Result<(), ComponentError> {
        let secs: u64 = match args {
            [] => 60,
            [flag, v] if flag == "-i" => v
                .parse()
                .map_err(|_| ComponentError::new(format!("-i: bad interval `{v}`")))?,
            _ => return Err(ComponentError::new("expected -i SECS")),
        };
        if secs == 0 {
            return Err(ComponentError::new("-i: the interval must be positive"));
        }
        let every = Duration::from_secs(secs);
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
            "statistics: {} records ({} ACE, {} syslog), {} rejected, {} connections, {} closed idle",
            s.records, s.ace, s.syslog, s.rejected, s.connections, s.idle_closed
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
/// See [`ACE_LOGGING`].
pub const STATISTICS: &str = "Statistics";

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
    cfg.register_static(STATISTICS, move || {
        Box::new(StatisticsService::new(e.clone()))
    });
    cfg
}
