//! Reactor timers on a manual clock: a one-shot timer, periodic timers with their ACTs, a
//! cancel that gives the ACT back, an interval reset, and a timeout that answers Close.
//!
//! The clock moves only when the main thread advances it, 5 ms per step, so every expiry
//! happens at the same virtual time on every run.

use std::any::Any;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reactor::{
    CloseReason, Context, Disposition, EventHandler, Interest, ManualClock, Message, Reactor,
    TimerId,
};

const MS: Duration = Duration::from_millis(1);

/// The asynchronous completion token each timer carries: it tells the handler what the expiry
/// is for, without a lookup.
#[derive(Debug)]
enum Job {
    Heartbeat,
    PollSensors,
    Reminder(&'static str),
    Keepalive,
    SessionExpiry,
}

/// The message that asks a handler to schedule its timers (from inside an upcall).
struct Start;

fn at(ctx: &dyn Context, t0: Instant) -> String {
    format!("t={:>3}ms", (ctx.now() - t0).as_millis())
}

/// Keeps a heartbeat, polls sensors until a reminder cancels the polling.
struct Monitor {
    t0: Instant,
    beats: u32,
    poll: Option<TimerId>,
}

impl EventHandler for Monitor {
    fn handle_notify(&mut self, ctx: &mut dyn Context, message: Message) -> Disposition {
        if message.downcast::<Start>().is_err() {
            return Disposition::Continue;
        }
        let me = ctx.current().expect("an upcall knows its token");
        let ok = ctx
            .schedule_timer(me, 10 * MS, Some(10 * MS), Box::new(Job::Heartbeat))
            .and_then(|_| {
                ctx.schedule_timer(me, 35 * MS, None, Box::new(Job::Reminder("stop polling")))
            })
            .and_then(|_| {
                ctx.schedule_timer(me, 25 * MS, Some(25 * MS), Box::new(Job::PollSensors))
            });
        match ok {
            Ok(poll) => self.poll = Some(poll),
            Err(_) => return Disposition::Close,
        }
        println!(
            "{} monitor: scheduled heartbeat (every 10ms), sensor poll (every 25ms), reminder (once, at 35ms)",
            at(ctx, self.t0)
        );
        Disposition::Continue
    }

    fn handle_timeout(
        &mut self,
        ctx: &mut dyn Context,
        timer: TimerId,
        act: &mut (dyn Any + Send),
    ) -> Disposition {
        let now = at(ctx, self.t0);
        match act.downcast_ref::<Job>() {
            Some(Job::Heartbeat) => {
                self.beats += 1;
                println!("{now} monitor: heartbeat #{}", self.beats);
                if self.beats == 3 {
                    // Slow down from inside the timer's own upcall; the next expiry uses it.
                    let _ = ctx.reset_timer_interval(timer, Some(20 * MS));
                    println!("{now} monitor: heartbeat interval reset to 20ms");
                }
            }
            Some(Job::PollSensors) => println!("{now} monitor: polling sensors"),
            Some(Job::Reminder(what)) => {
                println!("{now} monitor: reminder {what:?}");
                if let Some(poll) = self.poll.take() {
                    match ctx.cancel_timer(poll) {
                        Some(act) => println!(
                            "{now} monitor: cancelled the sensor poll; its ACT came back: {:?}",
                            act.downcast_ref::<Job>()
                        ),
                        None => println!("{now} monitor: the sensor poll was not pending"),
                    }
                }
            }
            other => println!("{now} monitor: unexpected ACT {other:?}"),
        }
        Disposition::Continue
    }

    fn handle_close(&mut self, _ctx: &mut dyn Context, reason: CloseReason) {
        println!(
            "monitor: closed ({reason:?}) after {} heartbeats",
            self.beats
        );
    }
}

/// A session with a keepalive that ends when its expiry timer answers Close.
struct Session {
    t0: Instant,
}

impl EventHandler for Session {
    fn handle_notify(&mut self, ctx: &mut dyn Context, message: Message) -> Disposition {
        if message.downcast::<Start>().is_err() {
            return Disposition::Continue;
        }
        let me = ctx.current().expect("an upcall knows its token");
        let ok = ctx
            .schedule_timer(me, 30 * MS, Some(30 * MS), Box::new(Job::Keepalive))
            .and_then(|_| ctx.schedule_timer(me, 80 * MS, None, Box::new(Job::SessionExpiry)));
        if ok.is_err() {
            return Disposition::Close;
        }
        println!(
            "{} session: scheduled keepalive (every 30ms) and expiry (once, at 80ms)",
            at(ctx, self.t0)
        );
        Disposition::Continue
    }

    fn handle_timeout(
        &mut self,
        ctx: &mut dyn Context,
        _timer: TimerId,
        act: &mut (dyn Any + Send),
    ) -> Disposition {
        let now = at(ctx, self.t0);
        match act.downcast_ref::<Job>() {
            Some(Job::Keepalive) => {
                println!("{now} session: keepalive");
                Disposition::Continue
            }
            Some(Job::SessionExpiry) => {
                println!("{now} session: expired; answering Close");
                Disposition::Close
            }
            other => {
                println!("{now} session: unexpected ACT {other:?}");
                Disposition::Continue
            }
        }
    }

    fn handle_close(&mut self, ctx: &mut dyn Context, reason: CloseReason) {
        println!(
            "{} session: closed ({reason:?}); its keepalive was cancelled with it",
            at(ctx, self.t0)
        );
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let clock = ManualClock::default();
    let t0 = reactor::Clock::now(&clock);
    let mut reactor = Reactor::builder().clock(Arc::new(clock.clone())).build()?;
    let monitor = reactor.register(
        Box::new(Monitor {
            t0,
            beats: 0,
            poll: None,
        }),
        Interest::NONE,
    )?;
    let session = reactor.register(Box::new(Session { t0 }), Interest::NONE)?;
    println!("reactor: monitor and session registered (no handles: timers only); clock at t=0");
    reactor::Context::notify(&mut reactor, monitor, Box::new(Start))?;
    reactor::Context::notify(&mut reactor, session, Box::new(Start))?;
    reactor.handle_events(Some(Duration::ZERO))?;
    println!("reactor: {} timers pending", reactor.timers());

    for _ in 0..20 {
        clock.advance(5 * MS);
        reactor.handle_events(Some(Duration::ZERO))?;
    }
    println!(
        "reactor: at t=100ms, {} handler(s) and {} timer(s) left (the heartbeat)",
        reactor.handlers(),
        reactor.timers()
    );
    println!("reactor: dropped; live handlers close once with Shutdown, their timers go with them");
    drop(reactor);
    Ok(())
}
