//! The one error type of the dispatcher contract.

use std::io;

use crate::Token;

/// Why a dispatcher refused an operation.
///
/// Every variant names the operation's subject, so that a caller sees which registration was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DispatchError {
    /// The token names no live registration: it was never issued, it was removed, or its
    /// generation is stale (the slot was reused by a later registration).
    #[error("no live registration for {0}")]
    UnknownToken(Token),
    /// The timer id names no pending timer: it fired (and was not periodic), was cancelled, or never existed.
    #[error("no pending timer {0:?}")]
    UnknownTimer(crate::TimerId),
    /// A bounded table (handlers, timers) is full.
    #[error("{what} is full ({capacity} entries)")]
    Full {
        /// Which table.
        what: &'static str,
        /// Its configured capacity.
        capacity: usize,
    },
    /// A handler registered with a non-empty I/O interest but it returned no handle.
    #[error("handler has no handle but interest {0:?} needs one")]
    NoHandle(crate::Interest),
    /// The dispatcher has ended and accepts no more work.
    #[error("dispatcher is shut down")]
    ShutDown,
    /// The operating system refused (registration with the demultiplexer, signal masks, ...).
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
}
