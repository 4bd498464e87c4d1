//! The crate's one error type, shared by Adapter, Bridge and Proxy.

use std::io;

/// Everything that can go wrong in this crate.
///
/// One enum keeps the proxies honest: a proxy must offer the *same* interface as its
/// subject, errors included, so the subject's errors and the proxy's own refusals
/// (access denied, timeout, dropped connection) live side by side here.
///
/// ```
/// use gof_structural::Error;
///
/// let err = Error::AccessDenied { caller: "observer".into(), operation: "write 0x0010".into() };
/// assert_eq!(err.to_string(), "observer may not write 0x0010");
/// assert!(Error::Timeout.is_transport());
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A legacy sensor driver returned a non-zero status code.
    #[error("sensor driver failed with status {code} ({})", crate::adapter::legacy::status_text(*code))]
    Driver {
        /// The driver's raw status code (one of the `SD_E_*` constants).
        code: i32,
    },
    /// A sensor had no reading to give (unplugged, or its script ran out).
    #[error("sensor {sensor} has no reading")]
    NoReading {
        /// The sensor's name.
        sensor: String,
    },
    /// A device service has no register at that address.
    #[error("no register at {0:#06x}")]
    NoSuchRegister(u16),
    /// A device service register cannot be written.
    #[error("register {0:#06x} is read-only")]
    ReadOnlyRegister(u16),
    /// A protection proxy refused the operation; the subject never saw it.
    #[error("{caller} may not {operation}")]
    AccessDenied {
        /// Who asked, as the access policy names callers.
        caller: String,
        /// What was asked for.
        operation: String,
    },
    /// A bridge link's buffer cannot take the frame.
    #[error("link buffer full: {needed} more bytes do not fit in {capacity}")]
    LinkFull {
        /// Bytes the frame needed.
        needed: usize,
        /// The buffer's capacity in bytes.
        capacity: usize,
    },
    /// The peer did not answer within the configured timeout.
    #[error("timed out waiting for the peer")]
    Timeout,
    /// The connection was closed or reset by the peer.
    #[error("connection closed by the peer")]
    Disconnected,
    /// A frame announced more bytes than the configured limit.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge {
        /// Length announced by the frame header.
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// A frame could not be decoded.
    #[error("malformed frame: {0}")]
    MalformedFrame(String),
    /// The remote side reported an error this crate has no variant for.
    #[error("remote service failed: {0}")]
    Remote(String),
    /// Any other I/O error.
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl Error {
    /// Whether the error came from the path between caller and subject (timeouts,
    /// dropped connections, bad frames, I/O) rather than from the subject itself.
    pub fn is_transport(&self) -> bool {
        matches!(
            self,
            Error::Timeout
                | Error::Disconnected
                | Error::FrameTooLarge { .. }
                | Error::MalformedFrame(_)
                | Error::Io(_)
        )
    }

    /// Classifies an I/O error: timeouts and dropped connections get their own variants,
    /// so that callers can tell "try again later" from "the peer is gone".
    pub(crate) fn from_io(err: io::Error) -> Self {
        use io::ErrorKind as K;
        match err.kind() {
            K::WouldBlock | K::TimedOut => Error::Timeout,
            K::UnexpectedEof
            | K::ConnectionReset
            | K::ConnectionAborted
            | K::BrokenPipe
            | K::NotConnected => Error::Disconnected,
            _ => Error::Io(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_are_classified() {
        let timeout = Error::from_io(io::Error::from(io::ErrorKind::WouldBlock));
        assert!(matches!(timeout, Error::Timeout));
        let gone = Error::from_io(io::Error::from(io::ErrorKind::UnexpectedEof));
        assert!(matches!(gone, Error::Disconnected));
        let other = Error::from_io(io::Error::from(io::ErrorKind::PermissionDenied));
        assert!(matches!(other, Error::Io(_)));
        assert!(other.is_transport());
        assert!(!Error::NoSuchRegister(1).is_transport());
    }

    #[test]
    fn driver_errors_name_the_status() {
        let err = Error::Driver {
            code: crate::adapter::legacy::SD_E_BUSY,
        };
        assert_eq!(
            err.to_string(),
            "sensor driver failed with status -2 (conversion in progress)"
        );
    }
}
