//! What a dispatcher offers: the [`Context`] given to upcalls, the cross-thread [`Remote`],
//! and the [`Dispatcher`] trait behind which reactor and thread pools are interchangeable.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::{
    Act, CloseReason, DispatchError, Disposition, EventHandler, Interest, Message, TimerId, Token,
};

/// How a registration is removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Removal {
    /// Upcall `handle_close` with [`CloseReason::Removed`](crate::CloseReason::Removed), then drop the handler.
    Close,
    /// Drop the handler without upcalling `handle_close`.
    Quiet,
}

/// A closure posted to a dispatcher's loop; it runs there, on a dispatcher thread, with the
/// loop's context.
pub type Job = Box<dyn FnOnce(&mut dyn Context) + Send>;

/// The dispatcher as an upcall sees it: every operation the contract lets a handler perform
/// re-entrantly (see [`EventHandler`]).
pub trait Context {
    /// The registration whose upcall is running, or `None` inside a posted [`Job`].
    fn current(&self) -> Option<Token>;

    /// The dispatcher's clock.
    fn now(&self) -> Instant;

    /// Registers `handler` for `interest`; it may be upcalled as soon as this upcall returns.
    fn register(
        &mut self,
        handler: Box<dyn EventHandler>,
        interest: Interest,
    ) -> Result<Token, DispatchError>;

    /// Ends a registration. For the current registration it takes effect when the upcall
    /// returns.
    fn remove(&mut self, token: Token, how: Removal) -> Result<(), DispatchError>;

    /// Replaces the registration's interest, effective from the next wait.
    fn set_interest(&mut self, token: Token, interest: Interest) -> Result<(), DispatchError>;

    /// The registration's interest, as last registered or set; a handler need not track it.
    fn interest(&self, token: Token) -> Result<Interest, DispatchError>;

    /// Stops I/O upcalls to the registration until [`resume`](Self::resume); readiness arriving
    /// meanwhile is remembered and delivered on resume. Timers and notifications still run.
    fn suspend(&mut self, token: Token) -> Result<(), DispatchError>;

    /// Ends a [`suspend`](Self::suspend).
    fn resume(&mut self, token: Token) -> Result<(), DispatchError>;

    /// Schedules a timeout upcall for `token` after `delay`, then every `interval` if given.
    fn schedule_timer(
        &mut self,
        token: Token,
        delay: Duration,
        interval: Option<Duration>,
        act: Act,
    ) -> Result<TimerId, DispatchError>;

    /// Cancels a pending timer and gives its ACT back; `None` when it is not pending.
    fn cancel_timer(&mut self, timer: TimerId) -> Option<Act>;

    /// Changes a pending timer's interval (`None` makes it one-shot after its next expiry).
    fn reset_timer_interval(
        &mut self,
        timer: TimerId,
        interval: Option<Duration>,
    ) -> Result<(), DispatchError>;

    /// Upcalls `token`'s [`handle_notify`](EventHandler::handle_notify) with `message` from the
    /// dispatcher's notification queue.
    fn notify(&mut self, token: Token, message: Message) -> Result<(), DispatchError>;

    /// Delivers `signal` to `token`'s [`handle_signal`](EventHandler::handle_signal) until the
    /// registration ends. The dispatcher blocks the signal and reads it from a signal fd.
    fn watch_signal(&mut self, token: Token, signal: i32) -> Result<(), DispatchError>;

    /// Asks the dispatcher's loop to end after the current iteration.
    fn end(&mut self);

    /// A cross-thread handle on this dispatcher.
    fn remote(&self) -> Arc<dyn Remote>;
}

impl dyn Context + '_ {
    /// Cancels a pending timer and gives its ACT back as the `T` it was scheduled with;
    /// `None` when the timer is not pending or its ACT is not a `T` (it is cancelled all the
    /// same).
    ///
    /// ```
    /// use std::time::Duration;
    /// use pattern_core::testing::RecordingContext;
    /// use pattern_core::{Context, EventHandler, Interest};
    ///
    /// struct Idle;
    /// impl EventHandler for Idle {}
    ///
    /// let mut rec = RecordingContext::default();
    /// let ctx: &mut dyn Context = &mut rec;
    /// let me = ctx.register(Box::new(Idle), Interest::NONE)?;
    /// let timer = ctx.schedule_timer(me, Duration::from_secs(1), None, Box::new(7u32))?;
    /// assert_eq!(ctx.cancel_timer_as::<u32>(timer), Some(7));
    /// assert_eq!(ctx.cancel_timer_as::<u32>(timer), None); // no longer pending
    /// # Ok::<(), pattern_core::DispatchError>(())
    /// ```
    pub fn cancel_timer_as<T: std::any::Any>(&mut self, timer: TimerId) -> Option<T> {
        self.cancel_timer(timer)?
            .downcast::<T>()
            .ok()
            .map(|act| *act)
    }
}

/// A `Send + Sync` handle that any thread uses to reach a dispatcher.
pub trait Remote: Send + Sync + fmt::Debug {
    /// Runs `job` on the dispatcher's loop.
    fn post(&self, job: Job) -> Result<(), DispatchError>;

    /// Posts `message` to `token`'s [`handle_notify`](EventHandler::handle_notify).
    /// A stale token is reported when the dispatcher dequeues it, by dropping the message;
    /// this call only fails when the dispatcher has shut down.
    fn notify(&self, token: Token, message: Message) -> Result<(), DispatchError>;

    /// Asks the loop to end; threads blocked in it wake up.
    fn end(&self);
}

/// A dispatcher: reactor, leader/followers or half-sync/half-async, chosen at run time
/// behind `Box<dyn Dispatcher>`.
pub trait Dispatcher: Send {
    /// Registers a handler from outside any upcall.
    fn register(
        &mut self,
        handler: Box<dyn EventHandler>,
        interest: Interest,
    ) -> Result<Token, DispatchError>;

    /// A cross-thread handle.
    fn remote(&self) -> Arc<dyn Remote>;

    /// Runs the loop until [`Remote::end`] or [`Context::end`]; then closes every live
    /// registration with [`CloseReason::Shutdown`](crate::CloseReason::Shutdown) and returns.
    /// While it closes them, registration is refused with [`DispatchError::ShutDown`].
    fn run(&mut self) -> io::Result<()>;
}

/// What becomes of a registration once one of its upcalls has returned: the contract's rule,
/// written once for every dispatcher (the reactor and both thread pools call [`AfterUpcall::of`]).
///
/// A panic closes with [`CloseReason::Panicked`]; a removal asked for during the upcall closes
/// with [`CloseReason::Removed`] (without `handle_close` if it was [`Removal::Quiet`]), whatever
/// the upcall answered; [`Disposition::Close`] closes with [`CloseReason::Requested`]; any other
/// answer keeps the registration.
///
/// ```
/// use pattern_core::{AfterUpcall, CloseReason, Disposition, Removal};
/// assert_eq!(AfterUpcall::of(Some(Disposition::Again), None), AfterUpcall::Keep(Disposition::Again));
/// assert_eq!(
///     AfterUpcall::of(None, Some(Removal::Quiet)),
///     AfterUpcall::Close { reason: CloseReason::Panicked, quiet: false },
/// );
/// assert_eq!(
///     AfterUpcall::of(Some(Disposition::Close), Some(Removal::Quiet)),
///     AfterUpcall::Close { reason: CloseReason::Removed, quiet: true },
/// );
/// ```
// Not `#[non_exhaustive]`: dispatchers match it exhaustively, and a third outcome would be a
// change to the contract that every dispatcher must handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterUpcall {
    /// The registration stays; the handler answered this (`Continue` or `Again`).
    Keep(Disposition),
    /// The registration ends with `reason`; `quiet` means without upcalling `handle_close`.
    Close {
        /// Given to `handle_close`.
        reason: CloseReason,
        /// A [`Removal::Quiet`] asked for it: drop the handler without `handle_close`.
        quiet: bool,
    },
}

impl AfterUpcall {
    /// Decides from the upcall's answer (`None` when it panicked) and the removal asked for
    /// while it ran, if any.
    pub fn of(answer: Option<Disposition>, removal: Option<Removal>) -> AfterUpcall {
        match (answer, removal) {
            (None, _) => AfterUpcall::Close {
                reason: CloseReason::Panicked,
                quiet: false,
            },
            (Some(_), Some(how)) => AfterUpcall::Close {
                reason: CloseReason::Removed,
                quiet: how == Removal::Quiet,
            },
            (Some(Disposition::Close), None) => AfterUpcall::Close {
                reason: CloseReason::Requested,
                quiet: false,
            },
            (Some(d), None) => AfterUpcall::Keep(d),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_upcall_covers_every_answer_and_removal() {
        let answers = [
            None,
            Some(Disposition::Continue),
            Some(Disposition::Again),
            Some(Disposition::Close),
        ];
        let removals = [None, Some(Removal::Close), Some(Removal::Quiet)];
        for answer in answers {
            for removal in removals {
                let got = AfterUpcall::of(answer, removal);
                let want = match (answer, removal) {
                    (None, _) => AfterUpcall::Close {
                        reason: CloseReason::Panicked,
                        quiet: false,
                    },
                    (Some(_), Some(Removal::Quiet)) => AfterUpcall::Close {
                        reason: CloseReason::Removed,
                        quiet: true,
                    },
                    (Some(_), Some(_)) => AfterUpcall::Close {
                        reason: CloseReason::Removed,
                        quiet: false,
                    },
                    (Some(Disposition::Close), None) => AfterUpcall::Close {
                        reason: CloseReason::Requested,
                        quiet: false,
                    },
                    (Some(d), None) => AfterUpcall::Keep(d),
                };
                assert_eq!(got, want, "{answer:?} with {removal:?}");
            }
        }
    }
}
