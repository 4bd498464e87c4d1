//! A line-oriented TCP service on its own reactor thread: the serving half of the example
//! plugin components (concrete components, implementation step 4).
//!
//! A plugin cannot share the host's reactor object across a C ABI (Rust types would cross),
//! so each plugin component runs a [`reactor::Reactor`] of its own on a thread it owns,
//! with an [`Acceptor`] on its port; `init` starts it, `suspend` and `fini` stop it (closing
//! the port), `resume` starts it again on the same port.

use std::io::{self, Read};
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;

use reactor::{
    Acceptor, Context, Disposition, EventHandler, Interest, OutBuffer, Reactor, Remote, SockStream,
};
use wrapper_facade::thread::RawThread;

/// Answers one request line (without its newline) with one reply line.
pub type LineHandler = Arc<dyn Fn(&str) -> String + Send + Sync>;

/// Longest request line accepted; a longer one closes the connection.
pub const MAX_LINE: usize = 64 * 1024;

/// A running line service; stopping it (or dropping it) ends its loop, joins its thread and
/// closes its port before returning.
pub struct LineService {
    addr: SocketAddr,
    remote: Arc<dyn Remote>,
    thread: Option<RawThread>,
}

impl std::fmt::Debug for LineService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineService")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl LineService {
    /// Binds `addr` and serves `handler` on a new thread named `name`.
    pub fn start(name: &str, addr: SocketAddr, handler: LineHandler) -> io::Result<LineService> {
        // Build the loop here and only run it on the new thread: no channel or other
        // thread-local machinery of this library is touched on the caller's thread.
        let mut reactor = Reactor::new()?;
        let acceptor = Acceptor::bind(addr, move |stream, _peer| {
            let handler: Box<dyn EventHandler> = Box::new(Connection {
                stream,
                handler: Arc::clone(&handler),
                input: Vec::new(),
                output: OutBuffer::with_limit(1 << 20),
            });
            Some((handler, Interest::READ))
        })?;
        let addr = acceptor.local_addr()?;
        reactor
            .register(acceptor, Interest::ACCEPT)
            .map_err(|e| io::Error::other(e.to_string()))?;
        let remote: Arc<dyn Remote> = Arc::new(reactor.remote());
        // A plugin runs this: `RawThread` (pthread_create) leaves the calling host thread's
        // thread-locals alone, so nothing pins the plugin in memory after it is unloaded.
        let thread = RawThread::spawn(name, move || {
            if let Err(e) = reactor.serve() {
                tracing::error!(error = %e, "service loop failed");
            }
        })?;
        Ok(LineService {
            addr,
            remote,
            thread: Some(thread),
        })
    }

    /// The address it serves on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Ends the loop, closes every connection and the port, and joins the thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.remote.end();
            match thread.join() {
                Ok(outcome) if !outcome.is_ok() => {
                    tracing::error!(panic = ?outcome.panic_message(), "service thread panicked");
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "pthread_join failed"),
            }
        }
    }
}

impl Drop for LineService {
    fn drop(&mut self) {
        self.shutdown();
    }
}

struct Connection {
    stream: SockStream,
    handler: LineHandler,
    input: Vec<u8>,
    output: OutBuffer,
}

impl Connection {
    fn flush(&mut self, ctx: &mut dyn Context) -> Disposition {
        match self.output.flush(&mut self.stream) {
            Ok(_) => {
                let interest = if self.output.is_empty() {
                    Interest::READ
                } else {
                    Interest::READ.add(Interest::WRITE)
                };
                if let Some(t) = ctx.current() {
                    let _ = ctx.set_interest(t, interest);
                }
                Disposition::Continue
            }
            Err(_) => Disposition::Close,
        }
    }
}

impl EventHandler for Connection {
    fn handle(&self) -> Option<BorrowedFd<'_>> {
        Some(self.stream.as_fd())
    }

    fn handle_input(&mut self, ctx: &mut dyn Context) -> Disposition {
        let mut buf = [0u8; 4096];
        let mut eof = false;
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => self.input.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Disposition::Close,
            }
        }
        while let Some(end) = self.input.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.input.drain(..=end).collect();
            let text = String::from_utf8_lossy(&line[..end]);
            let text = text.trim_end_matches('\r');
            let mut reply = (self.handler)(text);
            reply.push('\n');
            self.output.push(reply.as_bytes());
        }
        if self.input.len() > MAX_LINE {
            return Disposition::Close;
        }
        let d = self.flush(ctx);
        if eof && self.output.is_empty() {
            return Disposition::Close;
        }
        d
    }

    fn handle_output(&mut self, ctx: &mut dyn Context) -> Disposition {
        self.flush(ctx)
    }
}

/// Parses `-p PORT` from an argv (port 0 lets the system choose); other flags are refused.
pub fn port_from_args(args: &[String]) -> Result<u16, String> {
    let mut port = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-p" => {
                let v = it.next().ok_or("-p needs a port number")?;
                port = Some(v.parse::<u16>().map_err(|_| format!("bad port {v:?}"))?);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    port.ok_or_else(|| "missing -p PORT".to_owned())
}

/// The control half shared by the example TCP components: `-p PORT` parsing, start on
/// `init`, stop on `suspend` and `fini`, restart on the same port on `resume`.
pub struct TcpComponent {
    kind: &'static str,
    handler: LineHandler,
    running: Option<LineService>,
    addr: Option<SocketAddr>,
}

impl std::fmt::Debug for TcpComponent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpComponent")
            .field("kind", &self.kind)
            .field("addr", &self.addr)
            .field("serving", &self.running.is_some())
            .finish()
    }
}

impl TcpComponent {
    /// A stopped component of `kind` answering lines with `handler`.
    pub fn new(kind: &'static str, handler: LineHandler) -> Self {
        TcpComponent {
            kind,
            handler,
            running: None,
            addr: None,
        }
    }

    /// Parses `-p PORT` and starts serving on 127.0.0.1.
    pub fn init(&mut self, args: &[String]) -> Result<(), crate::ComponentError> {
        let port = port_from_args(args).map_err(crate::ComponentError::new)?;
        self.stop();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        self.start(addr)
    }

    fn start(&mut self, addr: SocketAddr) -> Result<(), crate::ComponentError> {
        let service = LineService::start(self.kind, addr, Arc::clone(&self.handler))
            .map_err(|e| crate::ComponentError::new(format!("cannot serve on {addr}: {e}")))?;
        let addr = service.local_addr();
        tracing::info!("{} service listening on {addr}", self.kind);
        self.addr = Some(addr);
        self.running = Some(service);
        Ok(())
    }

    fn stop(&mut self) {
        if let Some(s) = self.running.take() {
            s.stop();
            tracing::info!("{} service stopped", self.kind);
        }
    }

    /// Stops serving and forgets the port.
    pub fn fini(&mut self) -> Result<(), crate::ComponentError> {
        self.stop();
        self.addr = None;
        Ok(())
    }

    /// Stops serving and closes the port, remembering it for `resume`.
    pub fn suspend(&mut self) -> Result<(), crate::ComponentError> {
        self.stop();
        Ok(())
    }

    /// Serves again on the remembered port.
    pub fn resume(&mut self) -> Result<(), crate::ComponentError> {
        match (self.running.is_some(), self.addr) {
            (true, _) => Ok(()),
            (false, Some(addr)) => self.start(addr),
            (false, None) => Err(crate::ComponentError::new("not initialised")),
        }
    }

    /// Where it serves (also while suspended), once initialised.
    pub fn addr(&self) -> Option<SocketAddr> {
        self.addr
    }

    /// `"<kind> service on <addr> (serving|suspended)"`.
    pub fn info(&self) -> String {
        match self.addr {
            Some(a) => format!(
                "{} service on {a} ({})",
                self.kind,
                if self.running.is_some() {
                    "serving"
                } else {
                    "suspended"
                }
            ),
            None => format!("{} service (not initialised)", self.kind),
        }
    }
}
