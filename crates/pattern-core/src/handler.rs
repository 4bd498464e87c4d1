//! The event-handler contract: upcalls, their dispositions, and why a registration closes.

use std::any::Any;
use std::os::fd::BorrowedFd;

use crate::{Context, TimerId};

/// The asynchronous completion token handed to a timer when it is scheduled and given back,
/// untouched, to [`EventHandler::handle_timeout`] each time it expires, and by a cancel.
pub type Act = Box<dyn Any + Send>;

/// A message posted to a handler from any thread (see [`Remote::notify`](crate::Remote::notify)).
pub type Message = Box<dyn Any + Send>;

/// What a handler answers from an upcall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Disposition {
    /// Keep the registration.
    /// For an I/O upcall this also says "I drained the handle": it returned `WouldBlock`, or,
    /// on a stream socket or pipe, a read returned less than asked (a short read); the
    /// dispatcher waits for the next readiness edge before upcalling again, except that it
    /// upcalls input once more when the peer's close had been reported before the upcall
    /// started, so end of stream is never missed (a close reported while the upcall runs gets
    /// an input upcall of its own). Datagram sockets must be read until `WouldBlock`.
    Continue,
    /// Keep the registration and upcall me again for the same event without waiting for new
    /// readiness: the handler stopped after a bounded batch, for fairness, with work pending.
    /// The dispatcher serves the other ready handlers first, then comes back.
    Again,
    /// End the registration: the dispatcher deregisters the handle, cancels the handler's
    /// timers and signals, drops its pending notifications and upcalls
    /// [`EventHandler::handle_close`] with [`CloseReason::Requested`].
    Close,
}

/// Why a registration ended; given to [`EventHandler::handle_close`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// An upcall of the handler answered [`Disposition::Close`].
    Requested,
    /// Someone removed the registration (see [`Context::remove`]).
    Removed,
    /// An upcall of the handler panicked; the dispatcher caught the panic and went on.
    Panicked,
    /// The dispatcher shut down with the registration still live.
    Shutdown,
}

/// A service handler: the application's code, upcalled by a dispatcher (the Reactor's
/// "concrete event handler").
///
/// # The contract
///
/// One contract, every dispatcher: a handler written once runs unchanged under the
/// single-threaded reactor and under the thread-pool dispatchers.
///
/// - **Registration.** A handler is registered with an [`Interest`](crate::Interest) and gets a
///   [`Token`](crate::Token). A non-empty I/O interest needs a handle: [`handle`](Self::handle)
///   must return the same descriptor for as long as the registration lives (a handler that owns
///   its socket has this for free). The dispatcher owns the handler from then on.
/// - **Upcalls.** Readiness to read (or accept, or end of stream) calls
///   [`handle_input`](Self::handle_input); readiness to write (or a completed connect)
///   [`handle_output`](Self::handle_output); priority data or an error condition
///   [`handle_exception`](Self::handle_exception); an expired timer
///   [`handle_timeout`](Self::handle_timeout) with the timer's ACT; a watched signal
///   [`handle_signal`](Self::handle_signal); a posted message [`handle_notify`](Self::handle_notify).
///   Each answers a [`Disposition`].
/// - **Level-like semantics.** The demultiplexer may be edge-triggered; the dispatcher hides it.
///   An I/O upcall answering [`Disposition::Continue`] promises the handle was drained (to
///   `WouldBlock`, or to a short read on a stream); [`Disposition::Again`] asks for another
///   upcall without a new edge. Readiness is never lost: not while the handler is suspended,
///   nor while it is busy in another upcall, nor when the peer's close arrives with the last
///   data (the dispatcher then upcalls input once more after a `Continue` from an input
///   upcall that started after the close was reported).
/// - **Exactly-once close.** [`handle_close`](Self::handle_close) runs exactly once per
///   registration, with its [`CloseReason`], unless the registration was removed quietly
///   ([`Removal::Quiet`](crate::Removal::Quiet)), in which case it never runs. After it returns
///   (or after a quiet removal) no upcall of that registration runs again, even when the OS
///   reuses the descriptor: the token's generation no longer matches.
///   Close is upcalled after the handle is deregistered and the handler's timers cancelled, and
///   the handler is dropped right after it returns.
///   Shutdown keeps this too: once a dispatcher has begun closing its registrations with
///   [`CloseReason::Shutdown`], [`Context::register`] (from a `handle_close`, say) and
///   [`Dispatcher::register`](crate::Dispatcher::register) answer
///   [`DispatchError::ShutDown`](crate::DispatchError::ShutDown) and drop the handler
///   unregistered (never upcalled, not even closed), so no registration is ever dropped
///   without its close. The thread pools stay shut down after `run` returns; the reactor takes
///   registrations again once its closing is over (it can be reset and run again), and closes
///   them when dropped.
/// - **No concurrent upcalls.** Upcalls of one handler never overlap, timers, signals and
///   notifications included, whatever the number of threads the dispatcher runs. A handler
///   therefore needs no lock of its own (it must be `Send`, as it may move between threads).
/// - **Re-entrancy.** Inside an upcall the handler may, through the [`Context`], register
///   handlers, remove any registration (itself included), change interests, suspend and resume,
///   schedule and cancel timers, watch signals, notify and end the dispatcher. No `RefCell` panic
///   and no deadlock: the dispatcher holds no borrow or lock of its tables while calling out.
///   Removing itself from inside an upcall takes effect when the upcall returns: close runs then,
///   once. The same holds for a registration removed while busy on another thread. Meanwhile
///   the registration is ending: a second removal is refused with
///   [`DispatchError::UnknownToken`](crate::DispatchError::UnknownToken), and the first decides
///   how it ends (closed, or quietly).
/// - **Order.** Within one iteration of a dispatcher's loop, expired timers are dispatched
///   first, then notifications, then I/O. For a thread pool, an iteration is per registration:
///   before each upcall of a handler the dispatcher moves its timers that fell due (including
///   while it was busy in the previous upcall) ahead of its notifications, and those ahead of
///   its I/O.
/// - **Progress.** A dispatcher with several threads never lets work wait while one of them
///   is free: an upcall that blocks holds up its own handler only.
/// - **Panics.** A panicking upcall closes its registration with [`CloseReason::Panicked`]
///   (a panic in `handle_close` itself is caught and logged); the dispatcher goes on.
///
/// Every upcall has a default: I/O, signal and notify upcalls answer `Continue`, timeouts
/// answer `Continue`, close does nothing. A handler implements what it registered for.
pub trait EventHandler: Send + 'static {
    /// The descriptor this handler waits on, if it waits on one.
    fn handle(&self) -> Option<BorrowedFd<'_>> {
        None
    }

    /// The handle is readable: data, a connection to accept, or end of stream.
    fn handle_input(&mut self, _ctx: &mut dyn Context) -> Disposition {
        Disposition::Continue
    }

    /// The handle is writable, or a nonblocking connect finished.
    fn handle_output(&mut self, _ctx: &mut dyn Context) -> Disposition {
        Disposition::Continue
    }

    /// Priority data arrived, or the handle reports an error condition.
    fn handle_exception(&mut self, _ctx: &mut dyn Context) -> Disposition {
        Disposition::Continue
    }

    /// Timer `timer` expired; `act` is the token given when it was scheduled: get it back
    /// typed with `act.downcast_mut::<T>()` (`None` if it is not a `T`).
    /// Answering [`Disposition::Close`] also cancels the timer, if periodic.
    fn handle_timeout(
        &mut self,
        _ctx: &mut dyn Context,
        _timer: TimerId,
        _act: &mut (dyn Any + Send),
    ) -> Disposition {
        Disposition::Continue
    }

    /// A signal this handler watches was delivered (on the dispatcher's thread, not in a
    /// signal handler: anything may be done here). `signal` is the raw number; the reactor
    /// re-exports `Signal`, whose `from_raw` gives the typed one.
    fn handle_signal(&mut self, _ctx: &mut dyn Context, _signal: i32) -> Disposition {
        Disposition::Continue
    }

    /// A message posted with [`Context::notify`] or [`Remote::notify`](crate::Remote::notify).
    fn handle_notify(&mut self, _ctx: &mut dyn Context, _message: Message) -> Disposition {
        Disposition::Continue
    }

    /// The registration ended, for `reason`. Runs exactly once (see the contract above).
    fn handle_close(&mut self, _ctx: &mut dyn Context, _reason: CloseReason) {}
}

/// A boxed handler is a handler: factories and adapters that produce `Box<dyn EventHandler>`
/// plug in wherever an `impl EventHandler` is taken.
impl<H: EventHandler + ?Sized> EventHandler for Box<H> {
    fn handle(&self) -> Option<BorrowedFd<'_>> {
        (**self).handle()
    }

    fn handle_input(&mut self, ctx: &mut dyn Context) -> Disposition {
        (**self).handle_input(ctx)
    }

    fn handle_output(&mut self, ctx: &mut dyn Context) -> Disposition {
        (**self).handle_output(ctx)
    }

    fn handle_exception(&mut self, ctx: &mut dyn Context) -> Disposition {
        (**self).handle_exception(ctx)
    }

    fn handle_timeout(
        &mut self,
        ctx: &mut dyn Context,
        timer: TimerId,
        act: &mut (dyn Any + Send),
    ) -> Disposition {
        (**self).handle_timeout(ctx, timer, act)
    }

    fn handle_signal(&mut self, ctx: &mut dyn Context, signal: i32) -> Disposition {
        (**self).handle_signal(ctx, signal)
    }

    fn handle_notify(&mut self, ctx: &mut dyn Context, message: Message) -> Disposition {
        (**self).handle_notify(ctx, message)
    }

    fn handle_close(&mut self, ctx: &mut dyn Context, reason: CloseReason) {
        (**self).handle_close(ctx, reason)
    }
}
