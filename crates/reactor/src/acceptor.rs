//! Acceptor-Connector: passive and active connection setup, separated from the services.
//!
//! Both reach the OS through the Wrapper Facade: the listener is a [`SockAcceptor`], connections
//! are [`SockStream`]s, and the Connector starts its handshake with a [`SockConnector`]; the
//! dispatcher waits on their descriptors through mio.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use pattern_core::{Context, Disposition, EventHandler, Interest, TimerId};
use wrapper_facade::{AcceptorOptions, InetAddr, SockAcceptor, SockConnector, SockStream};

/// Creates the service handler for an accepted connection (the Acceptor's factory).
///
/// Answering `None` refuses the connection (it is closed at once); answering a handler and
/// its interest registers it with the dispatcher that runs the acceptor.
pub trait ServiceFactory: Send + 'static {
    /// Makes the handler for `stream`, connected from `peer`.
    fn make_service(
        &mut self,
        stream: SockStream,
        peer: SocketAddr,
    ) -> Option<(Box<dyn EventHandler>, Interest)>;

    /// Called once the service handler is registered, with its token: the place to activate
    /// it (ACE's `open` hook), e.g. to schedule its idle timer. Does nothing by default.
    fn opened(&mut self, _ctx: &mut dyn Context, _token: pattern_core::Token) {}
}

/// A closure is a factory: it answers any handler type (no `Box<dyn ...>` cast needed), and
/// its interest, or `None` to refuse the connection.
impl<F, H> ServiceFactory for F
where
    F: FnMut(SockStream, SocketAddr) -> Option<(H, Interest)> + Send + 'static,
    H: EventHandler,
{
    fn make_service(
        &mut self,
        stream: SockStream,
        peer: SocketAddr,
    ) -> Option<(Box<dyn EventHandler>, Interest)> {
        self(stream, peer).map(|(h, i)| (crate::boxed(h), i))
    }
}

/// Counters an [`Acceptor`] keeps: a snapshot, from [`AcceptorCounters::snapshot`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AcceptorStats {
    /// Connections accepted and handed to the factory.
    pub accepted: u64,
    /// Times accepting stopped for lack of descriptors (`EMFILE`, `ENFILE`) or memory.
    pub backoffs: u64,
    /// Handlers the dispatcher refused to register (its table was full).
    pub refused: u64,
}

/// A handle on an [`Acceptor`]'s counters, kept by the caller once the acceptor itself has
/// moved into the dispatcher; [`snapshot`](Self::snapshot) reads them.
#[derive(Debug, Clone, Default)]
pub struct AcceptorCounters(Arc<Mutex<AcceptorStats>>);

impl AcceptorCounters {
    /// The counters as they are now.
    pub fn snapshot(&self) -> AcceptorStats {
        *self.0.lock()
    }
}

/// The Acceptor: a handler on a listening socket that accepts every pending connection
/// (until `WouldBlock`) and registers a service handler for each, made by a [`ServiceFactory`].
///
/// When the process runs out of descriptors (`EMFILE`/`ENFILE`) the pending connection
/// cannot be accepted and the listening socket stays readable; an edge-triggered loop would
/// lose it and a level-triggered one would spin. This acceptor instead stops waiting on the
/// listener, keeps serving the open connections, and tries again after a back-off timer.
pub struct Acceptor<F> {
    listener: SockAcceptor,
    factory: F,
    backoff: Duration,
    paused: Option<TimerId>,
    stats: Arc<Mutex<AcceptorStats>>,
}

impl<F> std::fmt::Debug for Acceptor<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acceptor")
            .field("listener", &self.listener)
            .field("backoff", &self.backoff)
            .field("paused", &self.paused.is_some())
            .finish()
    }
}

impl<F: ServiceFactory> Acceptor<F> {
    /// Binds a nonblocking listener on `addr`, with `SO_REUSEADDR` and a backlog of 1024 (as
    /// `mio::net::TcpListener::bind` has).
    pub fn bind(addr: SocketAddr, factory: F) -> io::Result<Self> {
        let opts = AcceptorOptions::default().backlog(1024).nonblocking(true);
        let listener = SockAcceptor::open(&InetAddr::from(addr), &opts)?;
        Ok(Self::from_listener(listener, factory))
    }

    /// Wraps a listening socket, set up with whatever [`AcceptorOptions`] the caller chose
    /// (`SO_REUSEPORT`, a backlog, ...). The listener is switched to nonblocking mode, and every
    /// connection is accepted nonblocking whatever the options say: both are what the loop needs.
    pub fn from_listener(listener: SockAcceptor, factory: F) -> Self {
        // F_SETFL O_NONBLOCK cannot fail on an open socket; were it to, the first accept would
        // block, which the listener's own options then asked for.
        let _ = listener.set_nonblocking(true);
        Acceptor {
            listener,
            factory,
            backoff: Duration::from_millis(100),
            paused: None,
            stats: Default::default(),
        }
    }

    /// How long to stop accepting after running out of descriptors (default 100 ms).
    pub fn backoff(mut self, backoff: Duration) -> Self {
        self.backoff = backoff;
        self
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr().map(SocketAddr::from)
    }

    /// A handle on the counters, readable after the acceptor is registered.
    ///
    /// ```
    /// use reactor::{Acceptor, EventHandler, Interest, SockStream};
    ///
    /// struct Idle(SockStream);
    /// impl EventHandler for Idle {}
    ///
    /// let acceptor = Acceptor::bind("127.0.0.1:0".parse()?, |stream, _peer| {
    ///     Some((Idle(stream), Interest::NONE))
    /// })?;
    /// let counters = acceptor.counters();
    /// assert_eq!(counters.snapshot().accepted, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn counters(&self) -> AcceptorCounters {
        AcceptorCounters(self.stats.clone())
    }

    /// The counters behind a lock, shared.
    /// Superseded by [`counters`](Self::counters), which keeps the lock type out of the API;
    /// kept while `logging-service` uses it.
    pub fn stats(&self) -> Arc<Mutex<AcceptorStats>> {
        self.stats.clone()
    }

    /// Registers the acceptor with `ctx` for [`Interest::ACCEPT`].
    pub fn open(
        self,
        ctx: &mut dyn Context,
    ) -> Result<pattern_core::Token, pattern_core::DispatchError> {
        ctx.register(Box::new(self), Interest::ACCEPT)
    }
}

fn out_of_descriptors(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

impl<F: ServiceFactory> EventHandler for Acceptor<F> {
    fn handle(&self) -> Option<BorrowedFd<'_>> {
        Some(self.listener.as_fd())
    }

    fn handle_input(&mut self, ctx: &mut dyn Context) -> Disposition {
        loop {
            match self.listener.accept_nonblocking() {
                Ok((stream, peer)) => {
                    self.stats.lock().accepted += 1;
                    let peer = SocketAddr::from(peer);
                    if let Some((handler, interest)) = self.factory.make_service(stream, peer) {
                        match ctx.register(handler, interest) {
                            Ok(token) => self.factory.opened(ctx, token),
                            Err(e) => {
                                tracing::warn!(%peer, error = %e, "service handler refused");
                                self.stats.lock().refused += 1;
                            }
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Disposition::Continue,
                Err(e) if out_of_descriptors(&e) => {
                    tracing::warn!(error = %e, backoff = ?self.backoff, "accept paused");
                    self.stats.lock().backoffs += 1;
                    let me = ctx.current().expect("upcalls know their token");
                    // Stop waiting on the listener; the connection stays in the backlog.
                    if ctx.set_interest(me, Interest::NONE).is_err() {
                        return Disposition::Close;
                    }
                    match ctx.schedule_timer(me, self.backoff, None, Box::new(())) {
                        Ok(id) => self.paused = Some(id),
                        Err(_) => return Disposition::Close,
                    }
                    return Disposition::Continue;
                }
                // The peer gave up before we accepted, or a signal interrupted: try the next.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionAborted | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => {
                    tracing::error!(error = %e, "accept failed");
                    return Disposition::Continue;
                }
            }
        }
    }

    fn handle_timeout(
        &mut self,
        ctx: &mut dyn Context,
        timer: TimerId,
        _act: &mut (dyn std::any::Any + Send),
    ) -> Disposition {
        if self.paused == Some(timer) {
            self.paused = None;
            let me = ctx.current().expect("upcalls know their token");
            // Registering again makes epoll report the backlog that is already waiting.
            if ctx.set_interest(me, Interest::ACCEPT).is_err() {
                return Disposition::Close;
            }
        }
        Disposition::Continue
    }
}

/// What a [`Connector`] hands its completion callback: the connected stream, or why not.
pub type ConnectResult = io::Result<SockStream>;

type Completion = Box<dyn FnOnce(&mut dyn Context, ConnectResult) + Send>;

/// The Connector: starts a nonblocking connect, waits for it on the dispatcher, and upcalls
/// a completion callback once, with the stream or the error (refused, unreachable, or
/// [`io::ErrorKind::TimedOut`] when the deadline passes first).
///
/// The callback typically registers the service handler for the new stream.
pub struct Connector {
    stream: Option<SockStream>,
    timeout: Duration,
    complete: Option<Completion>,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("stream", &self.stream)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Connector {
    /// Starts connecting to `addr` and registers the connector with `ctx`.
    ///
    /// `complete` runs exactly once, on the dispatcher, unless the connector is removed or the
    /// dispatcher shuts down first (then it is dropped without running).
    pub fn connect(
        ctx: &mut dyn Context,
        addr: SocketAddr,
        timeout: Duration,
        complete: impl FnOnce(&mut dyn Context, ConnectResult) + Send + 'static,
    ) -> Result<pattern_core::Token, pattern_core::DispatchError> {
        // Nonblocking from `socket(2)` on: the handshake finishes (or fails) while the loop runs.
        let stream = SockConnector::default()
            .connect_nonblocking(&InetAddr::from(addr))?
            .into_stream();
        let connector = Connector {
            stream: Some(stream),
            timeout,
            complete: Some(Box::new(complete)),
        };
        let token = ctx.register(Box::new(connector), Interest::CONNECT)?;
        // Closing the connector cancels this timer, so it need not remember its id.
        if let Err(e) = ctx.schedule_timer(token, timeout, None, Box::new(())) {
            let _ = ctx.remove(token, pattern_core::Removal::Quiet);
            return Err(e);
        }
        Ok(token)
    }

    fn finish(&mut self, ctx: &mut dyn Context, result: ConnectResult) -> Disposition {
        let me = ctx.current().expect("upcalls know their token");
        // Stop waiting on the descriptor before handing it over, so the callback can
        // register it again under a new handler.
        let _ = ctx.set_interest(me, Interest::NONE);
        if let Some(complete) = self.complete.take() {
            complete(ctx, result);
        }
        Disposition::Close
    }
}

impl EventHandler for Connector {
    fn handle(&self) -> Option<BorrowedFd<'_>> {
        self.stream.as_ref().map(|s| s.as_fd())
    }

    fn handle_output(&mut self, ctx: &mut dyn Context) -> Disposition {
        let Some(stream) = self.stream.as_ref() else {
            return Disposition::Close;
        };
        match SockConnector::complete(stream) {
            Ok(()) => {
                let stream = self.stream.take().expect("checked above");
                self.finish(ctx, Ok(stream))
            }
            // Writable before the handshake finished: wait for the next edge.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Disposition::Continue,
            Err(e) => {
                self.stream = None;
                self.finish(ctx, Err(e))
            }
        }
    }

    fn handle_exception(&mut self, ctx: &mut dyn Context) -> Disposition {
        self.handle_output(ctx)
    }

    fn handle_timeout(
        &mut self,
        ctx: &mut dyn Context,
        _timer: TimerId,
        _act: &mut (dyn std::any::Any + Send),
    ) -> Disposition {
        self.stream = None;
        let timeout = self.timeout;
        self.finish(
            ctx,
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("connect timed out after {timeout:?}"),
            )),
        )
    }
}
