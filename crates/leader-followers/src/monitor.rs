//! A read-only view of a pool's counters, usable while the pool runs on another thread.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::engine::Core;

/// Counters of a running pool: upcalls made, leader promotions, hand-offs to workers, waits on
/// the demultiplexer and threads started; and the live registrations and scheduled timers.
/// Take one with `monitor()` before moving the pool into its thread.
#[derive(Debug, Clone)]
pub struct PoolMonitor {
    pub(crate) core: Arc<Core>,
}

impl PoolMonitor {
    /// Upcalls made so far (timeouts, notifications, signals, I/O; close excluded).
    pub fn upcalls(&self) -> u64 {
        self.core.stats.upcalls.load(Ordering::Relaxed)
    }

    /// Times a leader woke a follower to take over before processing an event.
    pub fn promotions(&self) -> u64 {
        self.core.stats.promotions.load(Ordering::Relaxed)
    }

    /// Work items a half-sync/half-async worker took from the queue.
    pub fn handoffs(&self) -> u64 {
        self.core.stats.handoffs.load(Ordering::Relaxed)
    }

    /// Waits on the demultiplexer.
    pub fn polls(&self) -> u64 {
        self.core.stats.polls.load(Ordering::Relaxed)
    }

    /// Pool threads started, the thread that called `run` included for leader/followers
    /// (excluded for half-sync/half-async, where it is the reactor thread).
    pub fn threads_started(&self) -> usize {
        self.core.stats.threads_started.load(Ordering::Relaxed)
    }

    /// Live registrations.
    pub fn handlers(&self) -> usize {
        self.core.handlers()
    }

    /// Scheduled timers: waiting for their deadline, due (waiting for their handler to be
    /// free) or firing. Cancelled timers leave at once, so this is also what the timer queue
    /// holds.
    pub fn timers(&self) -> usize {
        self.core.timers()
    }
}
