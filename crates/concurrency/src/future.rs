//! The Active Object's futures: a one-shot, blocking rendezvous between the method request
//! that computes a result (the [`Promise`]) and the client that waits for it (the [`Eventual`]).
//!
//! Why our own type rather than a channel: the pattern needs three outcomes, a result, an
//! explicit cancellation with its reason, and "the request vanished" (dropped without an
//! answer); a `Promise` dropped unfulfilled resolves its `Eventual` with
//! [`Cancelled::Abandoned`] on its own, so no future is ever left waiting. It is a mutex and a
//! condition variable, and it is *not* a `std::future::Future`: clients of an active object are
//! threads that block, as in POSA2.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::Cancelled;
use crate::sync::{self, Condvar, Mutex};

struct Slot<T> {
    state: Mutex<Option<Result<T, Cancelled>>>,
    ready: Condvar,
}

/// The write end of a future: held by a method request, fulfilled once.
pub struct Promise<T> {
    slot: Option<Arc<Slot<T>>>,
}

/// The read end of a future: the client's handle on a result that will exist later.
///
/// ```
/// use concurrency::{promise, Cancelled};
///
/// let (sensor_side, client_side) = promise::<u32>();
/// std::thread::spawn(move || sensor_side.fulfil(42));
/// assert_eq!(client_side.wait(), Ok(42));
///
/// let (sensor_side, client_side) = promise::<u32>();
/// drop(sensor_side); // never fulfilled: the future still gets a defined result
/// assert_eq!(client_side.wait(), Err(Cancelled::Abandoned));
/// ```
pub struct Eventual<T> {
    slot: Arc<Slot<T>>,
}

/// A connected [`Promise`] and [`Eventual`].
pub fn promise<T>() -> (Promise<T>, Eventual<T>) {
    let slot = Arc::new(Slot {
        state: Mutex::new(None),
        ready: Condvar::new(),
    });
    (
        Promise {
            slot: Some(slot.clone()),
        },
        Eventual { slot },
    )
}

impl<T> Promise<T> {
    /// Delivers the result.
    pub fn fulfil(mut self, value: T) {
        self.settle(Ok(value));
    }

    /// Delivers a cancellation instead of a result.
    pub fn cancel(mut self, reason: Cancelled) {
        self.settle(Err(reason));
    }

    fn settle(&mut self, outcome: Result<T, Cancelled>) {
        if let Some(slot) = self.slot.take() {
            *sync::lock(&slot.state) = Some(outcome);
            slot.ready.notify_all();
        }
    }
}

impl<T> Drop for Promise<T> {
    fn drop(&mut self) {
        self.settle(Err(Cancelled::Abandoned));
    }
}

impl<T> Eventual<T> {
    /// Blocks until the result or a cancellation arrives.
    pub fn wait(self) -> Result<T, Cancelled> {
        let mut st = sync::lock(&self.slot.state);
        loop {
            if let Some(outcome) = st.take() {
                return outcome;
            }
            st = sync::wait(&self.slot.ready, st);
        }
    }

    /// Waits at most `timeout`; hands the future back if nothing arrived by then.
    pub fn wait_timeout(self, timeout: Duration) -> Result<Result<T, Cancelled>, Eventual<T>> {
        let deadline = Instant::now() + timeout;
        let mut st = sync::lock(&self.slot.state);
        loop {
            if let Some(outcome) = st.take() {
                return Ok(outcome);
            }
            let now = Instant::now();
            if now >= deadline {
                drop(st);
                return Err(self);
            }
            st = sync::wait_timeout(&self.slot.ready, st, deadline - now);
        }
    }

    /// Whether the result (or a cancellation) has arrived.
    pub fn is_ready(&self) -> bool {
        sync::lock(&self.slot.state).is_some()
    }
}

impl<T> fmt::Debug for Promise<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Promise").finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for Eventual<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Eventual")
            .field("ready", &self.is_ready())
            .finish()
    }
}
