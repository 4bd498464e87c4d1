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
use std::thread::JoinHandle;

use mio::net::{TcpListener, TcpStream};
use reactor::{Acceptor, Context, Disposition, EventHandler, Interest, OutBuffer, Reactor, Remote};

/// Answers one request line (without its newline) with one reply line.
pub type LineHandler = Arc<dyn Fn(&str) -> String + Send + Sync>;

/// Longest request line accepted; a longer one closes the connection.
pub const MAX_LINE: usize = 64 * 1024;

/// A running line service; stopping it (or dropping it) ends its loop, joins its thread and
/// closes its port before returning.
pub struct LineService {
    addr: SocketAddr,
    remote: Arc<dyn Remote>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for LineService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineService").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl LineService {
    /// Binds `addr` and serves `handler` on a new thread named `name`.
    pub fn start(name: &str, addr: SocketAddr, handler: LineHandler) -> io::Result<LineService> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                let mut reactor = match Reactor::new() {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                let acceptor = Acceptor::from_listener(listener, move |stream, _peer| {
                    let handler: Box<dyn EventHandler> = Box::new(Connection {
                        stream,
                        handler: Arc::clone(&handler),
                        input: Vec::new(),
                        output: OutBuffer::with_limit(1 << 20),
                    });
                    Some((handler, Interest::READ))
                });
                if let Err(e) = reactor.register(Box::new(acceptor), Interest::ACCEPT) {
                    let _ = tx.send(Err(io::Error::other(e.to_string())));
                    return;
                }
                let _ = tx.send(Ok(reactor.remote()));
                if let Err(e) = reactor.run() {
                    tracing::error!(error = %e, "service loop failed");
                }
            })?;
        match rx.recv() {
            Ok(Ok(remote)) => Ok(LineService {
                addr,
                remote: Arc::new(remote),
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err(io::Error::other("the service thread ended before starting"))
            }
        }
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
            let _ = thread.join();
        }
    }
}

impl Drop for LineService {
    fn drop(&mut self) {
        self.shutdown();
    }
}

struct Connection {
    stream: TcpStream,
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
