//! A bounded outbound buffer: what a handler could not write yet, with backpressure.

use std::collections::VecDeque;
use std::io::{self, Write};

use pattern_core::Interest;

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
#[derive(Debug)]
pub struct OutBuffer {
    queue: VecDeque<u8>,
    limit: usize,
}

impl OutBuffer {
    /// A buffer asking to stop reading once `limit` bytes are queued.
    pub fn with_limit(limit: usize) -> Self {
        OutBuffer {
            queue: VecDeque::new(),
            limit,
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
}
