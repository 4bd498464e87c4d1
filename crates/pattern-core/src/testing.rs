//! A [`Context`] that records what an upcall asked for: unit tests of handlers without a dispatcher.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::{
    Act, Clock, Context, DispatchError, EventHandler, Interest, Job, ManualClock, Message, Remote,
    Removal, Slab, TimerId, Token,
};

/// One operation an upcall performed on a [`RecordingContext`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Op {
    /// `register` with this interest; the token it returned.
    Register(Interest, Token),
    /// `remove`.
    Remove(Token, Removal),
    /// `set_interest`.
    SetInterest(Token, Interest),
    /// `suspend`.
    Suspend(Token),
    /// `resume`.
    Resume(Token),
    /// `schedule_timer` with delay and interval; the id it returned.
    Schedule(Token, Duration, Option<Duration>, TimerId),
    /// `cancel_timer`.
    Cancel(TimerId),
    /// `reset_timer_interval`.
    ResetInterval(TimerId, Option<Duration>),
    /// `notify`.
    Notify(Token),
    /// `watch_signal`.
    WatchSignal(Token, i32),
    /// `end`.
    End,
}

/// Records every operation; registrations are kept (counted by
/// [`registered`](Self::registered)), timers hold their ACTs so cancel returns them.
#[derive(Debug, Default)]
pub struct RecordingContext {
    current: Option<Token>,
    clock: ManualClock,
    ops: Vec<Op>,
    handlers: Slab<HandlerEntry>,
    timers: Slab<Act>,
}

struct HandlerEntry(#[allow(dead_code)] Box<dyn EventHandler>, Interest);

impl std::fmt::Debug for HandlerEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventHandler")
    }
}

impl RecordingContext {
    /// Sets the token [`Context::current`] reports.
    pub fn set_current(&mut self, token: Option<Token>) {
        self.current = token;
    }

    /// The clock `now` reads; advance it to move time.
    pub fn clock(&self) -> &ManualClock {
        &self.clock
    }

    /// The operations recorded so far, in order.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// Number of handlers registered through this context and not removed.
    pub fn registered(&self) -> usize {
        self.handlers.len()
    }
}

#[derive(Debug)]
struct NoRemote;

impl Remote for NoRemote {
    fn post(&self, _job: Job) -> Result<(), DispatchError> {
        Err(DispatchError::ShutDown)
    }
    fn notify(&self, _token: Token, _message: Message) -> Result<(), DispatchError> {
        Err(DispatchError::ShutDown)
    }
    fn end(&self) {}
}

impl Context for RecordingContext {
    fn current(&self) -> Option<Token> {
        self.current
    }

    fn now(&self) -> Instant {
        self.clock.now()
    }

    fn register(
        &mut self,
        handler: Box<dyn EventHandler>,
        interest: Interest,
    ) -> Result<Token, DispatchError> {
        let limit = self.handlers.limit();
        let token = self
            .handlers
            .insert(HandlerEntry(handler, interest))
            .map_err(|_| DispatchError::Full {
                what: "handler table",
                capacity: limit,
            })?;
        self.ops.push(Op::Register(interest, token));
        Ok(token)
    }

    fn remove(&mut self, token: Token, how: Removal) -> Result<(), DispatchError> {
        self.ops.push(Op::Remove(token, how));
        self.handlers
            .remove(token)
            .map(drop)
            .ok_or(DispatchError::UnknownToken(token))
    }

    fn set_interest(&mut self, token: Token, interest: Interest) -> Result<(), DispatchError> {
        self.ops.push(Op::SetInterest(token, interest));
        // A token it did not hand out (a test's made-up one) is recorded all the same.
        if let Some(entry) = self.handlers.get_mut(token) {
            entry.1 = interest;
        }
        Ok(())
    }

    fn interest(&self, token: Token) -> Result<Interest, DispatchError> {
        self.handlers
            .get(token)
            .map(|entry| entry.1)
            .ok_or(DispatchError::UnknownToken(token))
    }

    fn suspend(&mut self, token: Token) -> Result<(), DispatchError> {
        self.ops.push(Op::Suspend(token));
        Ok(())
    }

    fn resume(&mut self, token: Token) -> Result<(), DispatchError> {
        self.ops.push(Op::Resume(token));
        Ok(())
    }

    fn schedule_timer(
        &mut self,
        token: Token,
        delay: Duration,
        interval: Option<Duration>,
        act: Act,
    ) -> Result<TimerId, DispatchError> {
        let limit = self.timers.limit();
        let t = self.timers.insert(act).map_err(|_| DispatchError::Full {
            what: "timer queue",
            capacity: limit,
        })?;
        let id = TimerId::new(t.index(), t.generation());
        self.ops.push(Op::Schedule(token, delay, interval, id));
        Ok(id)
    }

    fn cancel_timer(&mut self, timer: TimerId) -> Option<Act> {
        self.ops.push(Op::Cancel(timer));
        self.timers
            .remove(Token::new(timer.index(), timer.generation()))
    }

    fn reset_timer_interval(
        &mut self,
        timer: TimerId,
        interval: Option<Duration>,
    ) -> Result<(), DispatchError> {
        self.ops.push(Op::ResetInterval(timer, interval));
        Ok(())
    }

    fn notify(&mut self, token: Token, _message: Message) -> Result<(), DispatchError> {
        self.ops.push(Op::Notify(token));
        Ok(())
    }

    fn watch_signal(&mut self, token: Token, signal: i32) -> Result<(), DispatchError> {
        self.ops.push(Op::WatchSignal(token, signal));
        Ok(())
    }

    fn end(&mut self) {
        self.ops.push(Op::End);
    }

    fn remote(&self) -> Arc<dyn Remote> {
        Arc::new(NoRemote)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Nop;
    impl EventHandler for Nop {}

    #[test]
    fn cancel_returns_the_act_once() {
        let mut ctx = RecordingContext::default();
        let me = ctx.register(Box::new(Nop), Interest::NONE).unwrap();
        let id = ctx
            .schedule_timer(me, Duration::from_secs(1), None, Box::new(7u8))
            .unwrap();
        let act = ctx
            .cancel_timer(id)
            .expect("pending timer gives its act back");
        assert_eq!(act.downcast_ref::<u8>(), Some(&7));
        assert!(ctx.cancel_timer(id).is_none());
        assert!(matches!(
            ctx.remove(Token::new(5, 0), Removal::Close),
            Err(DispatchError::UnknownToken(_))
        ));
        assert_eq!(ctx.registered(), 1);
        ctx.remove(me, Removal::Quiet).unwrap();
        assert_eq!(ctx.registered(), 0);
    }
}
