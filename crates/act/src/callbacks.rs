//! The callback strategy: completing a token runs its completion handler.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use pattern_core::{Clock, MonotonicClock};

use crate::{ActError, Completion, CompletionToken, Full, Report, TokenTable};

/// A completion handler: the initiator's code for one operation's outcome.
pub type CompletionHandler<R> = Box<dyn FnOnce(Completion<R>) + Send>;

/// Demultiplexing by callback: each token names a completion handler, and
/// [`complete`](Self::complete) runs it, on the completing thread, with the result.
///
/// Clones share one table: issue on one thread, complete on another. The table's lock is
/// never held while a handler runs, so a handler may issue, complete or cancel other tokens.
///
/// ```
/// use std::sync::mpsc;
/// use act::{Callbacks, Completion};
///
/// let callbacks = Callbacks::<String>::with_limit(64);
/// let (tx, rx) = mpsc::channel();
/// let token = callbacks
///     .issue(move |outcome| tx.send(outcome).unwrap())
///     .unwrap();
///
/// // The service, on its own thread, holds the token and hands it back with the result.
/// let service = callbacks.clone();
/// std::thread::spawn(move || service.complete(token, "42 bytes".to_string()).unwrap())
///     .join()
///     .unwrap();
///
/// assert_eq!(rx.recv().unwrap(), Completion::Done("42 bytes".to_string()));
/// assert!(callbacks.complete(token, "again".into()).is_err());
/// ```
pub struct Callbacks<R> {
    table: Arc<Mutex<TokenTable<CompletionHandler<R>>>>,
    clock: Arc<dyn Clock>,
}

impl<R> Clone for Callbacks<R> {
    fn clone(&self) -> Self {
        Callbacks {
            table: self.table.clone(),
            clock: self.clock.clone(),
        }
    }
}

impl<R> fmt::Debug for Callbacks<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Callbacks")
            .field("table", &*self.table.lock())
            .field("clock", &self.clock)
            .finish()
    }
}

impl<R: 'static> Default for Callbacks<R> {
    fn default() -> Self {
        Self::with_limit(crate::MAX_SLOTS)
    }
}

impl<R: 'static> Callbacks<R> {
    /// At most `limit` outstanding tokens, deadlines on the system's monotonic clock.
    pub fn with_limit(limit: usize) -> Self {
        Self::with_clock(limit, Arc::new(MonotonicClock))
    }

    /// At most `limit` outstanding tokens, deadlines measured on `clock` (a
    /// [`ManualClock`](pattern_core::ManualClock) in tests).
    pub fn with_clock(limit: usize, clock: Arc<dyn Clock>) -> Self {
        Callbacks {
            table: Arc::new(Mutex::new(TokenTable::with_limit(limit))),
            clock,
        }
    }

    /// Starts an operation: stores `handler` and returns the token to give the service.
    pub fn issue(
        &self,
        handler: impl FnOnce(Completion<R>) + Send + 'static,
    ) -> Result<CompletionToken, Full<CompletionHandler<R>>> {
        self.table.lock().issue(Box::new(handler))
    }

    /// Like [`issue`](Self::issue); if no result arrives within `timeout` (on the clock), the
    /// next [`poll_expired`](Self::poll_expired) runs the handler with
    /// [`Completion::TimedOut`].
    pub fn issue_with_timeout(
        &self,
        timeout: Duration,
        handler: impl FnOnce(Completion<R>) + Send + 'static,
    ) -> Result<CompletionToken, Full<CompletionHandler<R>>> {
        let deadline = self.clock.now() + timeout;
        self.table
            .lock()
            .issue_with_deadline(Box::new(handler), deadline)
    }

    /// The service's result for `token`: runs its handler with [`Completion::Done`], here and
    /// now, outside the lock. A duplicate, stale or forged token runs nothing and is refused.
    pub fn complete(&self, token: CompletionToken, result: R) -> Result<(), ActError> {
        let handler = self.table.lock().complete(token)?;
        handler(Completion::Done(result));
        Ok(())
    }

    /// Ends an outstanding operation without running its handler, and hands the handler
    /// back (call it, or drop it to release what it captured).
    pub fn cancel(&self, token: CompletionToken) -> Result<CompletionHandler<R>, ActError> {
        self.table.lock().cancel(token)
    }

    /// Runs [`Completion::TimedOut`] for every token whose deadline is at or before `now`,
    /// each exactly once; returns how many.
    pub fn expire(&self, now: Instant) -> usize {
        let expired = self.table.lock().expire(now);
        let n = expired.len();
        for (_, handler) in expired {
            handler(Completion::TimedOut);
        }
        n
    }

    /// [`expire`](Self::expire) at the clock's current time.
    pub fn poll_expired(&self) -> usize {
        self.expire(self.clock.now())
    }

    /// The earliest deadline of an outstanding token: when to call
    /// [`poll_expired`](Self::poll_expired) next.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.table.lock().next_deadline()
    }

    /// Number of outstanding tokens.
    pub fn len(&self) -> usize {
        self.table.lock().len()
    }

    /// Whether no token is outstanding.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The outstanding tokens and their deadlines.
    pub fn report(&self) -> Report {
        self.table.lock().report()
    }

    /// The clock deadlines are measured on.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }
}
