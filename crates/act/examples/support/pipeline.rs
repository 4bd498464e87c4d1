//! A pipelined request/response client on the reactor whose frames carry the ACT, and a
//! server that answers out of order. Shared by the `act_pipelined_client` example, the
//! integration tests and the benchmarks.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;

use act::frame::{FrameDecoder, encode};
use act::{Callbacks, Completion, CompletionHandler, CompletionToken};
use mio::net::TcpStream;
use reactor::{Context, Disposition, EventHandler, Interest};

/// The service: a thread on 127.0.0.1 that upper-cases each request's payload and copies its
/// ACT, untouched, into the response. It answers in batches of `batch` requests, each batch
/// in reverse order (so with `batch > 1` responses come back out of order); when the client
/// closes its side, the rest is answered, reversed, too.
pub(crate) fn spawn_server(
    batch: usize,
) -> io::Result<(SocketAddr, JoinHandle<io::Result<usize>>)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let handle = std::thread::spawn(move || -> io::Result<usize> {
        let (mut stream, _) = listener.accept()?;
        stream.set_nodelay(true)?;
        let mut decoder = FrameDecoder::default();
        let mut pending = Vec::new();
        let mut answered = 0;
        let mut buf = vec![0u8; 64 * 1024];
        let mut out = Vec::new();
        loop {
            let n = stream.read(&mut buf)?;
            if n > 0 {
                decoder.push(&buf[..n]);
            }
            while let Some(frame) = decoder.decode().map_err(io::Error::other)? {
                pending.push(frame);
                if pending.len() == batch {
                    answered += answer(&mut pending, &mut out);
                }
            }
            if n == 0 {
                answered += answer(&mut pending, &mut out);
            }
            if !out.is_empty() {
                stream.write_all(&out)?;
                out.clear();
            }
            if n == 0 {
                return Ok(answered);
            }
        }
    });
    Ok((addr, handle))
}

/// Encodes the responses to `pending`, last request first.
fn answer(pending: &mut Vec<act::frame::Frame>, out: &mut Vec<u8>) -> usize {
    let n = pending.len();
    for frame in pending.drain(..).rev() {
        encode(frame.act, &frame.payload.to_ascii_uppercase(), out).expect("small payload");
    }
    n
}

/// One request: its payload and the completion handler for its response.
pub(crate) struct Request {
    pub(crate) payload: Vec<u8>,
    pub(crate) handler: CompletionHandler<Vec<u8>>,
}

impl Request {
    pub(crate) fn new(
        payload: impl Into<Vec<u8>>,
        handler: impl FnOnce(Completion<Vec<u8>>) + Send + 'static,
    ) -> Self {
        Request {
            payload: payload.into(),
            handler: Box::new(handler),
        }
    }
}

/// How the client matches responses to requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Many requests in flight (up to the token table's limit); each frame carries an explicit
    /// ACT and responses may come back in any order.
    Pipelined,
    /// One request in flight: the ACT is implicit (the one outstanding token), the frame's
    /// ACT field is zero and the server's order does not matter.
    OneAtATime,
}

/// Counters the client shares with whoever set it up.
#[derive(Debug, Default)]
pub(crate) struct ClientStats {
    pub(crate) completed: AtomicUsize,
    pub(crate) rejected: AtomicUsize,
}

/// The initiator: an event handler on the reactor that owns a nonblocking TCP stream.
pub(crate) struct PipelinedClient {
    stream: TcpStream,
    mode: Mode,
    callbacks: Callbacks<Vec<u8>>,
    waiting: VecDeque<Request>,
    in_flight: Option<CompletionToken>,
    decoder: FrameDecoder,
    out: Vec<u8>,
    end_when_idle: bool,
    stats: Arc<ClientStats>,
}

impl PipelinedClient {
    /// Connects to `addr`; at most `window` requests are in flight (the token table's bound).
    pub(crate) fn connect(addr: SocketAddr, mode: Mode, window: usize) -> io::Result<Self> {
        let std = std::net::TcpStream::connect(addr)?;
        std.set_nodelay(true)?;
        std.set_nonblocking(true)?;
        Ok(PipelinedClient {
            stream: TcpStream::from_std(std),
            mode,
            callbacks: Callbacks::with_limit(window),
            waiting: VecDeque::new(),
            in_flight: None,
            decoder: FrameDecoder::default(),
            out: Vec::new(),
            end_when_idle: true,
            stats: Arc::default(),
        })
    }

    /// Whether the client ends the reactor's loop when it has nothing left to do (the default);
    /// otherwise only a closed connection or someone else ends it.
    pub(crate) fn end_when_idle(mut self, yes: bool) -> Self {
        self.end_when_idle = yes;
        self
    }

    /// Counters of completed and rejected responses.
    pub(crate) fn stats(&self) -> Arc<ClientStats> {
        self.stats.clone()
    }

    /// Queues a request before the client is registered (after, send it with `notify`).
    pub(crate) fn submit(&mut self, request: Request) {
        self.waiting.push_back(request);
    }

    fn idle(&self) -> bool {
        self.waiting.is_empty() && self.callbacks.is_empty() && self.out.is_empty()
    }

    /// Issues tokens for waiting requests while the window allows, and encodes their frames.
    fn pump(&mut self) {
        while let Some(request) = self.waiting.pop_front() {
            if self.mode == Mode::OneAtATime && self.in_flight.is_some() {
                self.waiting.push_front(request);
                return;
            }
            let token = match self.callbacks.issue(request.handler) {
                Ok(token) => token,
                Err(full) => {
                    // The window is full: wait for a response to free a token.
                    let handler = full.into_inner();
                    self.waiting.push_front(Request {
                        payload: request.payload,
                        handler,
                    });
                    return;
                }
            };
            let act = match self.mode {
                Mode::Pipelined => token.to_raw(),
                Mode::OneAtATime => {
                    self.in_flight = Some(token);
                    0
                }
            };
            encode(act, &request.payload, &mut self.out).expect("small payload");
        }
    }

    /// Writes what it can; returns false when the connection failed.
    fn flush(&mut self) -> bool {
        while !self.out.is_empty() {
            match self.stream.write(&self.out) {
                Ok(0) => return false,
                Ok(n) => {
                    self.out.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        true
    }

    /// Pumps, flushes, and sets the interest to match; ends the loop when idle if asked to.
    fn progress(&mut self, ctx: &mut dyn Context) -> Disposition {
        self.pump();
        if !self.flush() {
            return Disposition::Close;
        }
        let interest = if self.out.is_empty() {
            Interest::READ
        } else {
            Interest::READ | Interest::WRITE
        };
        if let Some(me) = ctx.current() {
            let _ = ctx.set_interest(me, interest);
        }
        if self.end_when_idle && self.idle() {
            ctx.end();
        }
        Disposition::Continue
    }

    /// Hands a response to its completion handler through the token it carries (or, one at a
    /// time, through the one token in flight).
    fn deliver(&mut self, act: u64, payload: Vec<u8>) {
        let token = match self.mode {
            Mode::Pipelined => Some(CompletionToken::from_raw(act)),
            Mode::OneAtATime => self.in_flight.take(),
        };
        let delivered = token.map(|t| self.callbacks.complete(t, payload));
        let counter = match delivered {
            Some(Ok(())) => &self.stats.completed,
            _ => &self.stats.rejected,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

impl EventHandler for PipelinedClient {
    fn handle(&self) -> Option<BorrowedFd<'_>> {
        Some(self.stream.as_fd())
    }

    fn handle_input(&mut self, ctx: &mut dyn Context) -> Disposition {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return Disposition::Close,
                Ok(n) => {
                    self.decoder.push(&buf[..n]);
                    loop {
                        match self.decoder.decode() {
                            Ok(Some(frame)) => self.deliver(frame.act, frame.payload),
                            Ok(None) => break,
                            // A malformed stream cannot be resynchronised: close it.
                            Err(_) => return Disposition::Close,
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Disposition::Close,
            }
        }
        self.progress(ctx)
    }

    fn handle_output(&mut self, ctx: &mut dyn Context) -> Disposition {
        self.progress(ctx)
    }

    fn handle_notify(&mut self, ctx: &mut dyn Context, message: reactor::Message) -> Disposition {
        if let Ok(request) = message.downcast::<Request>() {
            self.waiting.push_back(*request);
        }
        self.progress(ctx)
    }

    fn handle_close(&mut self, ctx: &mut dyn Context, _reason: reactor::CloseReason) {
        // Nobody will answer now: the handlers still waiting learn it, once.
        for request in self.waiting.drain(..) {
            (request.handler)(Completion::Abandoned);
        }
        for (_, handler) in self.callbacks_drain() {
            handler(Completion::Abandoned);
        }
        // The client is the whole application in our uses: its end is the loop's end.
        ctx.end();
    }
}

impl PipelinedClient {
    fn callbacks_drain(&self) -> Vec<(CompletionToken, CompletionHandler<Vec<u8>>)> {
        self.callbacks
            .report()
            .outstanding
            .iter()
            .filter_map(|o| self.callbacks.cancel(o.token).ok().map(|h| (o.token, h)))
            .collect()
    }
}
