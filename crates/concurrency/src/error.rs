//! The crate's errors: why a push or pop on a monitor queue did not happen, and why a future
//! of an active object holds no result.

use std::fmt;

/// A value that [`MonitorQueue`](crate::MonitorQueue) could not take, handed back.
#[derive(PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PushError<T> {
    /// The queue was full (`try_push`).
    #[error("the queue is full")]
    Full(T),
    /// The queue stayed full until the timeout passed (`push_timeout`).
    #[error("the queue stayed full until the timeout")]
    Timeout(T),
    /// The queue is closed and takes nothing more.
    #[error("the queue is closed")]
    Closed(T),
}

impl<T> PushError<T> {
    /// The value that was not pushed.
    pub fn into_inner(self) -> T {
        match self {
            PushError::Full(v) | PushError::Timeout(v) | PushError::Closed(v) => v,
        }
    }
}

impl<T> fmt::Debug for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The value is not printed: `T` need not be `Debug`.
        let name = match self {
            PushError::Full(_) => "Full(..)",
            PushError::Timeout(_) => "Timeout(..)",
            PushError::Closed(_) => "Closed(..)",
        };
        f.write_str(name)
    }
}

/// Why a pop on a [`MonitorQueue`](crate::MonitorQueue) returned no value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PopError {
    /// The queue was empty (`try_pop`).
    #[error("the queue is empty")]
    Empty,
    /// The queue stayed empty until the timeout passed (`pop_timeout`).
    #[error("the queue stayed empty until the timeout")]
    Timeout,
    /// The queue is closed and has been drained.
    #[error("the queue is closed and empty")]
    Closed,
}

/// Why an active object's future holds no result: the defined outcome of every method
/// request that did not run to its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Cancelled {
    /// The request arrived after the active object had begun to shut down.
    #[error("the active object was already shutting down")]
    Closed,
    /// The request was pending when the active object shut down: cancelled by a cancelling
    /// shutdown, or its guard never held during a draining one.
    #[error("cancelled at shutdown before it ran")]
    ShutDown,
    /// The request's guard did not hold and the scheduler's list of waiting requests was full.
    #[error("its guard did not hold and the waiting list was full")]
    Backlog,
    /// The request started but gave no result (its method panicked).
    #[error("the method ended without a result")]
    Abandoned,
}
