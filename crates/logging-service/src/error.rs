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
///
/// Each variant says what was being done; the OS's or the configurator's own error is the
/// [`source`](std::error::Error::source), printed after it by [`pattern_core::ErrorChain`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An option or setting that is malformed or out of range.
    #[error("{0}")]
    Usage(String),
    /// The configuration was refused before anything changed: the svc.conf's syntax, an
    /// unknown service, a service's arguments. The configurator's error, with its file and line.
    #[error(transparent)]
    Config(#[from] component_configurator::Error),
    /// Services that could not be started, each with where it was configured and why.
    #[error("{}", .failures.join("; "))]
    Services {
        /// One line per failed service: its directive (file and line, or the option that
        /// stands for it) and the cause.
        failures: Vec<String>,
        /// Whether a cause was an address in use, unavailable or not permitted: the host
        /// lacks something, the configuration may be fine.
        unavailable: bool,
    },
    /// The data directory could not be created, opened or locked.
    #[error("cannot use the data directory {}", .path.display())]
    Store {
        /// The data directory, absolute.
        path: std::path::PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Another operating-system failure.
    #[error("{what}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// Why it failed.
        source: io::Error,
    },
    /// The dispatcher refused an operation.
    #[error("the dispatcher refused")]
    Dispatch(#[from] pattern_core::DispatchError),
}

impl Error {
    /// An [`Error::Io`] saying what was being done.
    pub fn io(what: &'static str) -> impl FnOnce(io::Error) -> Error {
        move |source| Error::Io { what, source }
    }
}
