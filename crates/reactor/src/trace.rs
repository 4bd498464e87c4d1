//! An opt-in trace of upcalls: which registration, which hook, what it answered, in order.
//!
//! Inverted control makes a reactor hard to debug: a stack trace taken in a handler starts at
//! `handle_events` and says nothing of what ran before. A trace hook set with
//! [`ReactorBuilder::trace_upcalls`](crate::ReactorBuilder::trace_upcalls) sees every upcall
//! after it returns, on the loop thread, in the order the reactor made them, so a test or a
//! demo can print or assert the dispatch order itself. Without a hook the reactor pays one
//! branch per upcall.

use std::fmt;

use pattern_core::{CloseReason, Disposition, TimerId, Token};

/// Which hook of the handler an upcall called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Hook {
    /// `handle_input`.
    Input,
    /// `handle_output`.
    Output,
    /// `handle_exception`.
    Exception,
    /// `handle_timeout`, for this timer.
    Timeout(TimerId),
    /// `handle_notify`.
    Notify,
    /// `handle_signal`, with the signal's number.
    Signal(i32),
    /// `handle_close`, with the reason.
    Close(CloseReason),
}

impl fmt::Display for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Hook::Input => f.write_str("handle_input"),
            Hook::Output => f.write_str("handle_output"),
            Hook::Exception => f.write_str("handle_exception"),
            Hook::Timeout(_) => f.write_str("handle_timeout"),
            Hook::Notify => f.write_str("handle_notify"),
            Hook::Signal(s) => write!(f, "handle_signal({s})"),
            Hook::Close(reason) => write!(f, "handle_close({reason:?})"),
        }
    }
}

/// What the upcall came back with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The hook's answer.
    Answered(Disposition),
    /// `handle_close` returned (it answers nothing).
    Closed,
    /// The hook panicked; the reactor closes the handler next (a `Close(Panicked)` record).
    Panicked,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Answered(d) => write!(f, "{d:?}"),
            Outcome::Closed => f.write_str("closed"),
            Outcome::Panicked => f.write_str("panicked"),
        }
    }
}

/// One upcall, as the trace hook sees it once it returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpcallRecord {
    /// The registration upcalled.
    pub token: Token,
    /// The hook called.
    pub hook: Hook,
    /// What it came back with.
    pub outcome: Outcome,
}

/// The boxed hook a reactor calls after each upcall.
pub(crate) struct TraceHook(pub(crate) Box<dyn FnMut(&UpcallRecord) + Send>);

impl fmt::Debug for TraceHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TraceHook")
    }
}
