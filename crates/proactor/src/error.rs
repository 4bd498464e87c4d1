//! The crate's errors.

use std::io;

use crate::OpId;

/// Why the proactor refused something.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The ring could not be set up (no io_uring here, or parameters refused).
    #[error("the io_uring ring could not be set up")]
    Setup(#[from] wrapper_facade::uring::SetupError),
    /// The cap on operations in flight is reached.
    #[error("{limit} operations are already in flight (the configured cap)")]
    TooManyInFlight {
        /// The cap.
        limit: usize,
    },
    /// The handler is closing or closed: it may start no new operation.
    #[error("the handler is closing or closed")]
    Closed,
    /// The operation is not in flight (it ended, or is not this proactor's).
    #[error("operation {op} is not in flight")]
    NotInFlight {
        /// The operation.
        op: OpId,
    },
    /// The kernel refused a submission.
    #[error("submitting to io_uring failed")]
    Submit(#[source] io::Error),
    /// A socket for a connect could not be created.
    #[error("creating the socket to connect failed")]
    Socket(#[source] io::Error),
    /// The provided-buffer ring of [`Config::provided_buffers`](crate::Config) could not be
    /// registered.
    #[error("registering the provided-buffer ring failed")]
    ProvidedBuffers(#[source] io::Error),
    /// A multishot read needs provided buffers, and none are configured.
    #[error("no provided-buffer ring is configured (Config::provided_buffers)")]
    NoProvidedBuffers,
    /// This user data is already in flight in the ring.
    #[error("user data {user_data:#x} is already in flight")]
    Busy {
        /// The user data.
        user_data: u64,
    },
}

/// A read or write that was not started: why, and the buffer back (a `Vec<u8>`, or the
/// lent [`ProvidedBuf`](wrapper_facade::uring::ProvidedBuf) of
/// [`Initiator::send_provided`](crate::Initiator::send_provided)).
#[derive(Debug, thiserror::Error)]
#[error("the operation was not started")]
pub struct Refused<B: std::fmt::Debug = Vec<u8>> {
    /// Why.
    #[source]
    pub error: Error,
    /// The buffer, unused.
    pub buf: B,
}
