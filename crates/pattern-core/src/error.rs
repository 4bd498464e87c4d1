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
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Displays an error followed by each of its sources: `cannot read x.conf: No such file or directory`.
///
/// Errors in this workspace keep their cause in [`source`](std::error::Error::source) and do not
/// repeat it in their own message (a reporter walking the chain would print it twice), so a
/// program that prints an error for a person prints it through this.
///
/// ```
/// use pattern_core::ErrorChain;
/// let e = pattern_core::DispatchError::Io(std::io::Error::other("disk on fire"));
/// assert_eq!(ErrorChain(&e).to_string(), "disk on fire");
/// let wrapped = std::io::Error::other(e);
/// assert_eq!(ErrorChain(&wrapped).to_string(), "disk on fire");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut shown = self.0.to_string();
        write!(f, "{shown}")?;
        let mut next = self.0.source();
        while let Some(e) = next {
            // A transparent wrapper's message is its source's: print each text once.
            let text = e.to_string();
            if text != shown {
                write!(f, ": {text}")?;
                shown = text;
            }
            next = e.source();
        }
        Ok(())
    }
}
