//! Ours, on [`proactor::Proactor`]: a multishot accept, and per connection a completion
//! handler with a multishot receive from the provided-buffer ring; each chunk is sent back
//! from the provided buffer the kernel received it into (lent to the handler, no copy) as
//! soon as no write of that connection is in flight (else it is copied to `pending`), and
//! the buffer goes back to the kernel when its send completes.
//! When `pending` passes [`HIGH_WATER`] the receive is cancelled, and started again once the
//! writes have caught up: a client that does not read cannot make the server buffer without
//! bound.
//!
//! [`serve_ring`] is the floor: the same echo written as a plain loop directly on
//! [`wrapper_facade::uring::Ring`] (the `io-uring` crate behind a safe facade), with no ACT
//! table, no handler slots and no upcalls; the difference between the two is what the
//! pattern costs.

use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use proactor::{CompletionHandler, Config, Initiator, OpId, Outcome, Proactor, ProvidedBuf};
use wrapper_facade::uring::{Cqe, Op, Ring, RingParams};

/// Provided buffers: count (a power of two) and size.
const BUFFERS: (u16, usize) = (4096, 4096);
/// Bytes waiting for a write past which the connection stops receiving.
pub const HIGH_WATER: usize = 64 * 1024;
/// Submission queue entries.
const ENTRIES: u32 = 4096;

/// Serves echo on `listener` forever on the proactor; `sqpoll` asks for a kernel
/// submission-queue poller (with this idle time in milliseconds) instead of
/// `SINGLE_ISSUER | DEFER_TASKRUN`.
pub fn serve(listener: TcpListener, sqpoll: Option<u32>) -> io::Result<()> {
    let mut proactor = Proactor::with_config(Config {
        entries: ENTRIES,
        max_in_flight: 1 << 16,
        defer_taskrun: true,
        provided_buffers: Some(BUFFERS),
        sqpoll,
    })
    .map_err(io::Error::other)?;
    proactor.register(Listener(listener));
    proactor.run().map_err(io::Error::other)
}

struct Listener(TcpListener);

impl CompletionHandler for Listener {
    fn on_open(&mut self, cx: &mut Initiator<'_>) {
        if let Err(e) = cx.accept_multishot(self.0.as_fd()) {
            eprintln!("echo-proactor: accept: {e}");
        }
    }

    fn on_accepted(&mut self, cx: &mut Initiator<'_>, _: OpId, stream: TcpStream) {
        let _ = stream.set_nodelay(true);
        cx.register(Echo {
            stream,
            pending: Vec::new(),
            spare: Vec::new(),
            writing: false,
            reading: None,
            paused: false,
        });
    }

    fn on_accept(&mut self, cx: &mut Initiator<'_>, _: OpId, outcome: Outcome<TcpStream>) {
        // The multishot accept ended (an error such as EMFILE): start another.
        if !outcome.is_cancelled() {
            self.on_open(cx);
        }
    }
}

struct Echo {
    stream: TcpStream,
    /// Bytes received while a write was in flight.
    pending: Vec<u8>,
    /// A buffer back from the last write, reused for the next.
    spare: Vec<u8>,
    writing: bool,
    /// The multishot receive, while it runs.
    reading: Option<OpId>,
    /// The receive was cancelled at the high-water mark.
    paused: bool,
}

impl Echo {
    fn receive(&mut self, cx: &mut Initiator<'_>) {
        match cx.read_multishot(self.stream.as_fd()) {
            Ok(op) => self.reading = Some(op),
            Err(_) => cx.close(),
        }
    }

    fn write(&mut self, cx: &mut Initiator<'_>, buf: Vec<u8>) {
        match cx.send(self.stream.as_fd(), buf) {
            Ok(_) => self.writing = true,
            Err(_) => cx.close(),
        }
    }

    fn send_lent(&mut self, cx: &mut Initiator<'_>, buf: ProvidedBuf) {
        match cx.send_provided(self.stream.as_fd(), buf) {
            Ok(_) => self.writing = true,
            Err(_) => cx.close(),
        }
    }

    /// The write in flight ended with everything sent: send what waited, or resume a
    /// receive paused at the high-water mark.
    fn caught_up(&mut self, cx: &mut Initiator<'_>, spare: Vec<u8>) {
        if !self.pending.is_empty() {
            let mut buf = spare;
            buf.clear();
            std::mem::swap(&mut buf, &mut self.pending);
            self.write(cx, buf);
        } else {
            self.spare = spare;
            if self.paused && self.reading.is_none() {
                self.paused = false;
                self.receive(cx);
            }
        }
    }
}

impl CompletionHandler for Echo {
    fn on_open(&mut self, cx: &mut Initiator<'_>) {
        self.receive(cx);
    }

    fn on_received_buf(&mut self, cx: &mut Initiator<'_>, op: OpId, data: ProvidedBuf) {
        if self.writing {
            self.pending.extend_from_slice(&data);
            if self.pending.len() > HIGH_WATER && !self.paused {
                self.paused = true;
                if cx.cancel(op).is_err() {
                    cx.close();
                }
            }
            return;
        }
        self.send_lent(cx, data);
    }

    fn on_sent(
        &mut self,
        cx: &mut Initiator<'_>,
        _: OpId,
        o: Outcome<usize>,
        mut buf: ProvidedBuf,
    ) {
        self.writing = false;
        let Some(n) = o.ok() else {
            cx.close();
            return;
        };
        buf.advance(n);
        if !buf.is_empty() {
            self.send_lent(cx, buf);
        } else {
            drop(buf);
            let spare = std::mem::take(&mut self.spare);
            self.caught_up(cx, spare);
        }
    }

    fn on_read(&mut self, cx: &mut Initiator<'_>, _: OpId, o: Outcome<usize>, _: Vec<u8>) {
        self.reading = None;
        // Cancelled at the high-water mark: the receive starts again once the writes caught
        // up. End of stream or an error: the connection is done.
        if !(self.paused && o.is_cancelled()) {
            cx.close();
        } else if !self.writing {
            self.paused = false;
            self.receive(cx);
        }
    }

    fn on_write(&mut self, cx: &mut Initiator<'_>, _: OpId, o: Outcome<usize>, mut buf: Vec<u8>) {
        self.writing = false;
        let Some(n) = o.ok() else {
            cx.close();
            return;
        };
        if n < buf.len() {
            buf.drain(..n);
            buf.append(&mut self.pending);
            self.write(cx, buf);
        } else {
            self.caught_up(cx, buf);
        }
    }
}

/// What a `user_data` of the floor loop stands for: the low 32 bits are the descriptor.
const ACCEPT: u64 = 1 << 32;
const RECV: u64 = 2 << 32;
const WRITE: u64 = 3 << 32;

#[derive(Default)]
struct Conn {
    stream: Option<OwnedFd>,
    pending: Vec<u8>,
    spare: Vec<u8>,
    writing: bool,
}

/// The floor: the same echo as [`serve`] as one plain loop on the ring (multishot accept,
/// multishot receive from provided buffers sent back in place, one write in flight per connection, one
/// `io_uring_enter` per iteration, `SINGLE_ISSUER | DEFER_TASKRUN`). Unlike [`serve`] it has
/// no high-water mark: a client that sends without reading makes it buffer.
pub fn serve_ring(listener: TcpListener) -> io::Result<()> {
    let mut ring = Ring::with_params(RingParams {
        entries: ENTRIES,
        defer_taskrun: true,
        sqpoll: None,
    })
    .map_err(io::Error::other)?;
    ring.provide_buffers(0, BUFFERS.0, BUFFERS.1)?;
    let lfd = listener.as_raw_fd();
    push(&mut ring, ACCEPT | lfd as u64, Op::AcceptMulti { fd: lfd })?;
    let mut conns: Vec<Conn> = Vec::new();
    let mut reaped: Vec<Cqe> = Vec::with_capacity(1024);
    loop {
        ring.submit_and_wait(1)?;
        ring.reap(&mut reaped);
        for mut cqe in reaped.drain(..) {
            let fd = (cqe.user_data & 0xffff_ffff) as RawFd;
            match cqe.user_data & !0xffff_ffff {
                ACCEPT => {
                    if let Some(stream) = cqe.take_fd() {
                        let stream = TcpStream::from(stream);
                        let _ = stream.set_nodelay(true);
                        let stream = OwnedFd::from(stream);
                        let sfd = stream.as_raw_fd();
                        let i = sfd as usize;
                        if conns.len() <= i {
                            conns.resize_with(i + 1, Conn::default);
                        }
                        conns[i] = Conn {
                            stream: Some(stream),
                            ..Conn::default()
                        };
                        push(
                            &mut ring,
                            RECV | sfd as u64,
                            Op::RecvMulti { fd: sfd, group: 0 },
                        )?;
                    }
                    if !cqe.more {
                        push(&mut ring, ACCEPT | lfd as u64, Op::AcceptMulti { fd: lfd })?;
                    }
                }
                RECV => {
                    let conn = &mut conns[fd as usize];
                    if let Some(data) = cqe.data.take().filter(|d| !d.is_empty()) {
                        if conn.writing {
                            conn.pending.extend_from_slice(&data);
                        } else {
                            // Sent from the provided buffer itself; it goes back to the
                            // kernel when the send's completion is dropped.
                            conn.writing = true;
                            push(
                                &mut ring,
                                WRITE | fd as u64,
                                Op::SendProvided { fd, buf: data },
                            )?;
                        }
                    }
                    if !cqe.more {
                        if cqe.result > 0 || cqe.result == -wrapper_facade::uring::ENOBUFS {
                            push(&mut ring, RECV | fd as u64, Op::RecvMulti { fd, group: 0 })?;
                        } else {
                            // End of stream or an error: close.
                            conn.stream = None;
                            conn.pending.clear();
                        }
                    }
                }
                WRITE => {
                    let conn = &mut conns[fd as usize];
                    conn.writing = false;
                    let sent = usize::try_from(cqe.result).ok();
                    let next = match (cqe.op.take(), sent) {
                        _ if conn.stream.is_none() => continue,
                        (_, None) => {
                            conn.stream = None;
                            continue;
                        }
                        (Some(Op::SendProvided { mut buf, .. }), Some(n)) if n < buf.len() => {
                            buf.advance(n);
                            Op::SendProvided { fd, buf }
                        }
                        (Some(Op::Send { mut buf, .. }), Some(n)) if n < buf.len() => {
                            buf.drain(..n);
                            buf.append(&mut conn.pending);
                            Op::Send { fd, buf }
                        }
                        (op, Some(_)) => {
                            // Sent whole: a vector becomes the spare, a lent buffer goes back
                            // to the kernel (dropped here).
                            if let Some(Op::Send { buf, .. }) = op {
                                conn.spare = buf;
                            }
                            if conn.pending.is_empty() {
                                continue;
                            }
                            let mut buf = std::mem::take(&mut conn.spare);
                            buf.clear();
                            std::mem::swap(&mut buf, &mut conn.pending);
                            Op::Send { fd, buf }
                        }
                    };
                    conn.writing = true;
                    push(&mut ring, WRITE | fd as u64, next)?;
                }
                _ => {}
            }
        }
    }
}

/// Pushes an operation; a refused one (a descriptor number reused while its old write is
/// still in flight) is reported and dropped, which closes nothing but that connection's echo.
fn push(ring: &mut Ring, user_data: u64, op: Op) -> io::Result<()> {
    if let Err(e) = ring.push(user_data, op) {
        eprintln!("echo-uring-raw: {e}");
    }
    Ok(())
}
