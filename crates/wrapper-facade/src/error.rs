//! Errors of the facade: the C API's `errno` stays an [`io::Error`]; what C cannot say gets a type here.
//!
//! Most operations return [`io::Result`] and keep the raw errno (`err.raw_os_error()`).
//! Two things have no errno and get their own types:
//! a textual address that does not parse ([`Error`]), and a transfer loop that stopped part-way ([`TransferError`]).

use std::io;

/// Errors raised by the facade itself rather than by the operating system.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A textual address could not be parsed.
    #[error("invalid address {input:?}: expected `ip:port` or `[ipv6]:port`")]
    AddrParse {
        /// The text that was rejected.
        input: String,
    },
    /// Name resolution (`getaddrinfo`) failed.
    #[error("cannot resolve {host:?}: {message}")]
    Resolve {
        /// The host name that was looked up.
        host: String,
        /// The `EAI_*` code returned by `getaddrinfo`.
        code: i32,
        /// The resolver's message (`gai_strerror`).
        message: String,
    },
}

impl From<Error> for io::Error {
    fn from(e: Error) -> Self {
        let kind = match &e {
            Error::AddrParse { .. } => io::ErrorKind::InvalidInput,
            Error::Resolve { .. } => io::ErrorKind::NotFound,
        };
        io::Error::new(kind, e)
    }
}

/// A `send_n`/`recv_n` loop stopped before moving every byte.
///
/// It carries how many bytes did move, so a caller can resume or report precisely.
/// The cause is an [`io::Error`] that keeps its errno; end of stream is reported as
/// [`io::ErrorKind::UnexpectedEof`], an expired `SO_RCVTIMEO`/`SO_SNDTIMEO` as [`io::ErrorKind::TimedOut`].
#[derive(Debug, thiserror::Error)]
#[error("transfer stopped after {transferred} of {requested} bytes")]
pub struct TransferError {
    transferred: usize,
    requested: usize,
    #[source]
    source: io::Error,
}

impl TransferError {
    pub(crate) fn new(transferred: usize, requested: usize, source: io::Error) -> Self {
        Self {
            transferred,
            requested,
            source,
        }
    }

    /// Bytes that were transferred before the loop stopped.
    pub fn transferred(&self) -> usize {
        self.transferred
    }

    /// Bytes the caller asked for.
    pub fn requested(&self) -> usize {
        self.requested
    }

    /// The kind of the underlying cause.
    pub fn kind(&self) -> io::ErrorKind {
        self.source.kind()
    }

    /// The underlying cause, with its errno where there was one.
    pub fn io_error(&self) -> &io::Error {
        &self.source
    }

    /// Whether the loop stopped because the peer closed the stream.
    pub fn is_eof(&self) -> bool {
        self.source.kind() == io::ErrorKind::UnexpectedEof
    }
}

impl From<TransferError> for io::Error {
    fn from(e: TransferError) -> Self {
        io::Error::new(e.source.kind(), e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transfer_error_reports_counts_and_kind() {
        let e = TransferError::new(3, 8, io::ErrorKind::UnexpectedEof.into());
        assert_eq!((e.transferred(), e.requested()), (3, 8));
        assert!(e.is_eof());
        let io: io::Error = e.into();
        assert_eq!(io.kind(), io::ErrorKind::UnexpectedEof);
        assert!(io.to_string().contains("3 of 8"));
    }

    #[test]
    fn facade_errors_map_to_io_kinds() {
        let e: io::Error = Error::AddrParse { input: "x".into() }.into();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }
}
