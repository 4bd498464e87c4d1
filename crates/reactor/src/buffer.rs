//! A bounded outbound buffer: what a handler could not write yet, with backpressure.

use std::collections::VecDeque;
use std::io::{self, Write};

use pattern_core::{Context, Disposition, Interest};

/// Bytes accepted for sending but not yet taken by the kernel, with a limit that tells the
/// handler to stop reading (backpressure) until the peer drains its side.
///
/// A handler that reads requests and writes replies keeps one per connection, and after
/// each upcall sets the interest [`OutBuffer::interest`] suggests: read while under the limit,
/// wait for writability while anything is queued. A slow reader then costs at most the limit
/// plus one read's worth of memory, instead of growing the buffer without bound.
///
/// ```
/// use reactor::{Interest, OutBuffer};
///
/// let mut out = OutBuffer::with_limit(8);
/// out.push(b"0123456789");
/// assert!(out.is_over_limit());
/// assert_eq!(out.interest(), Interest::WRITE); // stop reading
/// let mut sink = Vec::new();
/// assert!(out.flush(&mut sink).unwrap()); // a Vec takes everything
/// assert_eq!(sink, b"0123456789");
/// assert_eq!(out.interest(), Interest::READ);
/// ```
///
/// Most handlers need only [`OutBuffer::settle`], which does the whole flush / set-interest /
/// `Again` dance after each upcall.
#[derive(Debug)]
pub struct OutBuffer {
    queue: VecDeque<u8>,
    limit: usize,
    /// The most it ever held.
    peak: usize,
    /// The interest `settle` last saw on the registration; `None` until its first call.
    registered: Option<Interest>,
}

impl OutBuffer {
    /// A buffer asking to stop reading once `limit` bytes are queued.
    pub fn with_limit(limit: usize) -> Self {
        OutBuffer {
            queue: VecDeque::new(),
            limit,
            peak: 0,
            registered: None,
        }
    }

    /// Queued bytes.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Whether the queue reached its limit: the handler should stop reading.
    pub fn is_over_limit(&self) -> bool {
        self.queue.len() >= self.limit
    }

    /// Queues bytes. The buffer never refuses: the limit is enforced by not reading more.
    pub fn push(&mut self, data: &[u8]) {
        self.queue.extend(data);
        self.peak = self.peak.max(self.queue.len());
    }

    /// The most bytes it ever held: with backpressure, at most the limit plus one read.
    pub fn peak(&self) -> usize {
        self.peak
    }

    /// Writes queued bytes until the writer would block or the queue is empty.
    /// Returns whether the queue is now empty.
    pub fn flush(&mut self, w: &mut impl Write) -> io::Result<bool> {
        while !self.queue.is_empty() {
            let (front, _) = self.queue.as_slices();
            match w.write(front) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.queue.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// The interest a request/reply handler should have now: `READ` unless over the limit,
    /// plus `WRITE` while anything is queued.
    pub fn interest(&self) -> Interest {
        let mut i = if self.is_over_limit() {
            Interest::NONE
        } else {
            Interest::READ
        };
        if !self.is_empty() {
            i |= Interest::WRITE;
        }
        i
    }

    /// Ends an upcall of a request/reply handler: flushes into `stream`, gives the current
    /// registration the interest [`interest`](Self::interest) asks for (only when it changed),
    /// and answers the upcall's [`Disposition`].
    ///
    /// Pass `more_input = true` when the handler stopped reading because the buffer was over
    /// its limit rather than because the handle would block: if the flush made room, input is
    /// waiting with no new edge to announce it, so `settle` answers [`Disposition::Again`].
    /// A write error answers [`Disposition::Close`].
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use std::os::fd::{AsFd, BorrowedFd};
    /// use std::os::unix::net::UnixStream;
    /// use reactor::{Context, Disposition, EventHandler, Interest, OutBuffer, Reactor};
    ///
    /// /// Echoes with backpressure: never more than 64 KiB + one read buffered per peer.
    /// struct Echo { stream: UnixStream, out: OutBuffer }
    ///
    /// impl EventHandler for Echo {
    ///     fn handle(&self) -> Option<BorrowedFd<'_>> { Some(self.stream.as_fd()) }
    ///     fn handle_input(&mut self, ctx: &mut dyn Context) -> Disposition {
    ///         let mut buf = [0u8; 4096];
    ///         while !self.out.is_over_limit() {
    ///             match self.stream.read(&mut buf) {
    ///                 Ok(0) => {
    ///                     let _ = self.out.flush(&mut self.stream); // what is left, best effort
    ///                     ctx.end();
    ///                     return Disposition::Close;
    ///                 }
    ///                 Ok(n) => self.out.push(&buf[..n]),
    ///                 Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
    ///                     return self.out.settle(&mut self.stream, ctx, false);
    ///                 }
    ///                 Err(_) => return Disposition::Close,
    ///             }
    ///         }
    ///         self.out.settle(&mut self.stream, ctx, true)
    ///     }
    ///     fn handle_output(&mut self, ctx: &mut dyn Context) -> Disposition {
    ///         self.out.settle(&mut self.stream, ctx, false)
    ///     }
    /// }
    ///
    /// let (ours, mut theirs) = UnixStream::pair()?;
    /// ours.set_nonblocking(true)?;
    /// let mut reactor = Reactor::new()?;
    /// let echo = Echo { stream: ours, out: OutBuffer::with_limit(64 * 1024) };
    /// reactor.register(echo, Interest::READ)?;
    /// theirs.write_all(b"ping")?;
    /// theirs.shutdown(std::net::Shutdown::Write)?;
    /// reactor.serve()?;
    /// let mut echoed = String::new();
    /// theirs.read_to_string(&mut echoed)?;
    /// assert_eq!(echoed, "ping");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn settle(
        &mut self,
        stream: &mut impl Write,
        ctx: &mut dyn Context,
        more_input: bool,
    ) -> Disposition {
        if self.flush(stream).is_err() {
            return Disposition::Close;
        }
        let wanted = self.interest();
        if self.registered != Some(wanted) {
            let Some(me) = ctx.current() else {
                return Disposition::Close;
            };
            // The first time, ask the dispatcher rather than set what may already be there.
            let unchanged = self.registered.is_none() && ctx.interest(me).ok() == Some(wanted);
            if !unchanged && ctx.set_interest(me, wanted).is_err() {
                return Disposition::Close;
            }
            self.registered = Some(wanted);
        }
        if more_input && wanted.wants_read() {
            Disposition::Again
        } else {
            Disposition::Continue
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pattern_core::testing::{Op, RecordingContext};
    use pattern_core::{EventHandler, Token};

    /// A socket with `room` bytes of send buffer: takes that much, then would block.
    struct Socket {
        room: usize,
        sent: Vec<u8>,
        broken: bool,
    }

    impl Write for Socket {
        fn write(&mut self, data: &[u8]) -> io::Result<usize> {
            if self.broken {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            if self.room == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = data.len().min(self.room);
            self.room -= n;
            self.sent.extend_from_slice(&data[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    struct Idle;
    impl EventHandler for Idle {}

    fn upcall() -> (RecordingContext, Token) {
        let mut ctx = RecordingContext::default();
        let token = ctx.register(Box::new(Idle), Interest::READ).unwrap();
        ctx.set_current(Some(token));
        (ctx, token)
    }

    fn interests(ctx: &RecordingContext) -> Vec<Interest> {
        ctx.ops()
            .iter()
            .filter_map(|op| match op {
                Op::SetInterest(_, i) => Some(*i),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn settle_stops_reading_while_the_peer_lags_and_resumes_once_it_drains() {
        let (mut ctx, _) = upcall();
        let mut socket = Socket {
            room: 4,
            sent: Vec::new(),
            broken: false,
        };
        let mut out = OutBuffer::with_limit(8);
        out.push(b"0123456789ab");
        // 4 bytes go, 8 stay: at the limit, so reading stops and writability is awaited.
        assert_eq!(
            out.settle(&mut socket, &mut ctx, true),
            Disposition::Continue
        );
        assert_eq!(out.len(), 8);
        assert_eq!(out.peak(), 12);
        assert_eq!(interests(&ctx), [Interest::WRITE]);
        // The peer still reads nothing: no new interest, nothing more buffered.
        assert_eq!(
            out.settle(&mut socket, &mut ctx, false),
            Disposition::Continue
        );
        assert_eq!(interests(&ctx), [Interest::WRITE]);
        socket.room = 100;
        assert_eq!(
            out.settle(&mut socket, &mut ctx, false),
            Disposition::Continue
        );
        assert_eq!(socket.sent, b"0123456789ab");
        assert_eq!(interests(&ctx), [Interest::WRITE, Interest::READ]);
    }

    #[test]
    fn settle_answers_again_when_it_made_room_for_input_left_unread() {
        let (mut ctx, _) = upcall();
        let mut socket = Socket {
            room: 100,
            sent: Vec::new(),
            broken: false,
        };
        let mut out = OutBuffer::with_limit(8);
        out.push(b"0123456789");
        assert_eq!(out.settle(&mut socket, &mut ctx, true), Disposition::Again);
        out.push(b"0123456789");
        socket.room = 0;
        // No room made: no `Again` (it would spin); wait for writability instead.
        assert_eq!(
            out.settle(&mut socket, &mut ctx, true),
            Disposition::Continue
        );
        // The registration already had `READ`: only the change was set.
        assert_eq!(interests(&ctx), [Interest::WRITE]);
        let me = ctx.current().unwrap();
        assert_eq!(ctx.interest(me).ok(), Some(Interest::WRITE));
    }

    #[test]
    fn settle_closes_on_a_write_error() {
        let (mut ctx, _) = upcall();
        let mut socket = Socket {
            room: 100,
            sent: Vec::new(),
            broken: true,
        };
        let mut out = OutBuffer::with_limit(8);
        out.push(b"x");
        assert_eq!(out.settle(&mut socket, &mut ctx, false), Disposition::Close);
    }
}
