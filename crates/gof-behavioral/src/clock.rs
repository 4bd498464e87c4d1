//! Injectable time: the system clock in production, a manual clock in tests and demos.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// A source of monotonic time.
///
/// Time-driven policies such as [`Debounce`](crate::observer::Debounce) read the time only through this trait,
/// so a test can drive them with a [`ManualClock`] instead of sleeping.
pub trait Clock {
    /// The current instant.
    fn now(&self) -> Instant;
}

impl<C: Clock + ?Sized> Clock for &C {
    fn now(&self) -> Instant {
        (**self).now()
    }
}

/// The real monotonic clock, [`Instant::now`].
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that moves only when told to.
///
/// Clones share the same time, so a test keeps one handle and gives another to the code under test.
///
/// ```
/// use std::time::Duration;
/// use gof_behavioral::clock::{Clock, ManualClock};
///
/// let clock = ManualClock::default();
/// let handle = clock.clone();
/// clock.advance(Duration::from_millis(250));
/// assert_eq!(handle.elapsed(), Duration::from_millis(250));
/// assert_eq!(handle.now(), clock.origin() + Duration::from_millis(250));
/// ```
#[derive(Clone)]
pub struct ManualClock {
    origin: Instant,
    offset: Arc<Mutex<Duration>>,
}

impl Default for ManualClock {
    fn default() -> Self {
        Self {
            origin: Instant::now(),
            offset: Arc::new(Mutex::new(Duration::ZERO)),
        }
    }
}

impl ManualClock {
    /// The instant this clock started at; [`now`](Clock::now) is always `origin() + elapsed()`.
    pub fn origin(&self) -> Instant {
        self.origin
    }

    /// How far the clock has been advanced since it was created.
    pub fn elapsed(&self) -> Duration {
        *self.offset.lock()
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        *self.offset.lock() += by;
    }

    /// Moves the clock to `origin() + at`.
    ///
    /// # Panics
    ///
    /// If `at` lies before the current time: a monotonic clock never goes back.
    pub fn set_elapsed(&self, at: Duration) {
        let mut offset = self.offset.lock();
        assert!(at >= *offset, "a monotonic clock cannot go back");
        *offset = at;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.origin + *self.offset.lock()
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("elapsed", &self.elapsed())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::default();
        let t0 = clock.now();
        assert_eq!(clock.now(), t0);
        clock.advance(Duration::from_secs(2));
        assert_eq!(clock.now() - t0, Duration::from_secs(2));
        clock.set_elapsed(Duration::from_secs(5));
        assert_eq!(clock.now() - t0, Duration::from_secs(5));
    }

    #[test]
    #[should_panic(expected = "cannot go back")]
    fn manual_clock_refuses_to_go_back() {
        let clock = ManualClock::default();
        clock.advance(Duration::from_secs(1));
        clock.set_elapsed(Duration::ZERO);
    }
}
