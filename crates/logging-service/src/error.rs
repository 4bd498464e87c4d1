//! Errors of the logging service.

use std::io;

/// A frame or message that could not be decoded. The connection it came from may go on
/// (a bad syslog message, a bad ACE payload) or must be closed (a bad ACE header), as each
/// decoder documents; other connections never notice.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// An ACE header whose byte-order flag is neither 0 nor 1.
    #[error("bad CDR byte-order flag {0}")]
    BadByteOrder(u8),
    /// A frame or message longer than the configured limit.
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// Its announced or observed length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// An RFC 6587 octet count over the limit. Skipping the counted bytes could swallow
    /// gigabytes of later records (a count of 2^31 did), so the stream is given up instead.
    #[error("octet count {len} exceeds the limit of {max}: the stream cannot be resynchronised")]
    OversizedCount {
        /// The announced length.
        len: u64,
        /// The limit.
        max: usize,
    },
    /// Fewer bytes than the smallest valid frame.
    #[error("truncated frame: {len} bytes, at least {need} needed")]
    Truncated {
        /// Bytes present.
        len: usize,
        /// Bytes needed.
        need: usize,
    },
    /// A frame whose fields contradict each other or the format.
    #[error("malformed frame: {0}")]
    Malformed(&'static str),
}

/// Why `logd` could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A command-line or configuration error.
    #[error("configuration: {0}")]
    Config(String),
    /// The OS refused.
    #[error("I/O: {0}")]
    Io(#[from] io::Error),
    /// The dispatcher refused a registration.
    #[error("dispatcher: {0}")]
    Dispatch(#[from] pattern_core::DispatchError),
}
