//! The completion handler's side: the trait, the outcome of an operation, ids and close reasons.

use std::fmt;
use std::io;
use std::net::TcpStream;

use wrapper_facade::sock::Received;
use wrapper_facade::uring::ProvidedBuf;

use crate::Initiator;

/// How an asynchronous operation ended. Every operation ends exactly once, with one of these.
#[derive(Debug)]
pub enum Outcome<T> {
    /// The operation completed: the kernel's result.
    Done(T),
    /// The operation was cancelled before it completed ([`Initiator::cancel`], or its handler
    /// was closed).
    Cancelled,
    /// The operation failed.
    Failed(io::Error),
}

impl<T> Outcome<T> {
    /// Whether the operation completed.
    pub fn is_done(&self) -> bool {
        matches!(self, Outcome::Done(_))
    }

    /// Whether the operation was cancelled.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, Outcome::Cancelled)
    }

    /// The result, if done.
    pub fn ok(self) -> Option<T> {
        match self {
            Outcome::Done(t) => Some(t),
            _ => None,
        }
    }
}

/// Names one operation in flight: its ACT (the [`act::CompletionToken`] the kernel carries as
/// the submission's `user_data`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OpId(pub(crate) act::CompletionToken);

impl OpId {
    /// The token's raw value, as the kernel carries it.
    pub fn to_raw(self) -> u64 {
        self.0.to_raw()
    }
}

impl fmt::Debug for OpId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OpId({})", self.0)
    }
}

impl fmt::Display for OpId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Names one registered completion handler (index and generation: a closed handler's id is
/// never confused with a later one's).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HandlerId {
    pub(crate) index: u32,
    pub(crate) generation: u32,
}

impl fmt::Display for HandlerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "h{}", self.index)
    }
}

/// Why a handler was closed (passed to [`CompletionHandler::on_close`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// Its last operation completed and it started no other: nothing can upcall it again.
    Finished,
    /// It closed itself ([`Initiator::close`]).
    Requested,
    /// Another handler or the proactor's owner closed it ([`Initiator::close_handler`],
    /// [`Proactor::close`](crate::Proactor::close)).
    Removed,
    /// One of its upcalls panicked; the dispatcher caught the panic and went on.
    Panicked,
    /// The proactor shut down ([`Proactor::shutdown`](crate::Proactor::shutdown)).
    Shutdown,
}

/// The application's code for the completions of its operations: the POSA2 *completion
/// handler*. Every method but [`on_open`](Self::on_open) has a default that drops the result.
///
/// The dispatcher calls these one at a time, on its thread: a handler's upcalls never
/// overlap. Each operation the handler starts ends with exactly one of `on_accept`,
/// `on_connect`, `on_read`, `on_datagram`, `on_write`, `on_sent` or `on_timeout`; after the last of them, if the
/// handler is closing (or started nothing more), [`on_close`](Self::on_close) runs once.
pub trait CompletionHandler {
    /// Upcalled once, right after registration: start the first operations here.
    fn on_open(&mut self, cx: &mut Initiator<'_>);

    /// An accept ended; `Done` carries the accepted connection.
    fn on_accept(&mut self, cx: &mut Initiator<'_>, op: OpId, outcome: Outcome<TcpStream>) {
        let _ = (cx, op, outcome);
    }

    /// A connection from a multishot accept ([`Initiator::accept_multishot`]); the accept
    /// goes on.
    fn on_accepted(&mut self, cx: &mut Initiator<'_>, op: OpId, stream: TcpStream) {
        let _ = (cx, op, stream);
    }

    /// A connect ended; `Done` carries the connected socket.
    fn on_connect(&mut self, cx: &mut Initiator<'_>, op: OpId, outcome: Outcome<TcpStream>) {
        let _ = (cx, op, outcome);
    }

    /// A read ended (`Done(0)` is end of stream); the buffer comes back, filled up to the count.
    /// A continuous read ends here too, after its [`on_received`](Self::on_received) chunks.
    fn on_read(&mut self, cx: &mut Initiator<'_>, op: OpId, outcome: Outcome<usize>, buf: Vec<u8>) {
        let _ = (cx, op, outcome, buf);
    }

    /// A chunk of a continuous read ([`Initiator::read_continuous`], or a multishot read
    /// through the default [`on_received_buf`](Self::on_received_buf)); the read goes on.
    fn on_received(&mut self, cx: &mut Initiator<'_>, op: OpId, data: &[u8]) {
        let _ = (cx, op, data);
    }

    /// A chunk of a multishot read ([`Initiator::read_multishot`]), lent in the provided
    /// buffer the kernel received it into; the read goes on. Keep the buffer to send it on
    /// without a copy ([`Initiator::send_provided`]); dropping it gives it back to the
    /// kernel. While a handler holds buffers, the kernel has fewer to receive into. The
    /// default passes the bytes to [`on_received`](Self::on_received) and gives the buffer
    /// back when it returns.
    fn on_received_buf(&mut self, cx: &mut Initiator<'_>, op: OpId, buf: ProvidedBuf) {
        self.on_received(cx, op, &buf);
    }

    /// A write ended with the count written; the buffer comes back.
    fn on_write(
        &mut self,
        cx: &mut Initiator<'_>,
        op: OpId,
        outcome: Outcome<usize>,
        buf: Vec<u8>,
    ) {
        let _ = (cx, op, outcome, buf);
    }

    /// A datagram receive ended ([`Initiator::recv_msg`]): `Done` carries the datagram's
    /// length in `buf`, its sender, whether it was cut, and the kernel's drop counter; the
    /// buffer comes back.
    fn on_datagram(
        &mut self,
        cx: &mut Initiator<'_>,
        op: OpId,
        outcome: Outcome<Received>,
        buf: Vec<u8>,
    ) {
        let _ = (cx, op, outcome, buf);
    }

    /// A send of a lent buffer ended ([`Initiator::send_provided`]) with the count sent; the
    /// buffer comes back (advance it by the count to send the rest; drop it to give it back
    /// to the kernel).
    fn on_sent(
        &mut self,
        cx: &mut Initiator<'_>,
        op: OpId,
        outcome: Outcome<usize>,
        buf: ProvidedBuf,
    ) {
        let _ = (cx, op, outcome, buf);
    }

    /// A timeout ended: `Done` when it expired.
    fn on_timeout(&mut self, cx: &mut Initiator<'_>, op: OpId, outcome: Outcome<()>) {
        let _ = (cx, op, outcome);
    }

    /// The handler is closed: its last operation has completed. Upcalled exactly once.
    fn on_close(&mut self, reason: CloseReason) {
        let _ = reason;
    }
}
