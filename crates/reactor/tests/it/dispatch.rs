//! Dispatch order, stale descriptors, the loop's own methods.

use std::any::Any;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::mpsc::{self, Sender};
use std::time::Duration;

use reactor::{
    CloseReason, Context, Disposition, EventHandler, Interest, ManualClock, Reactor, Remote,
    TimerId,
};

#[derive(Debug, PartialEq)]
enum Seen {
    Timeout,
    Notify,
    Input,
}

struct Recorder {
    stream: UnixStream,
    tx: Sender<Seen>,
}

impl EventHandler for Recorder {
    fn handle(&self) -> Option<BorrowedFd<'_>> {
        Some(self.stream.as_fd())
    }
    fn handle_input(&mut self, _ctx: &mut dyn Context) -> Disposition {
        let mut buf = [0u8; 64];
        while self.stream.read(&mut buf).is_ok_and(|n| n > 0) {}
        self.tx.send(Seen::Input).unwrap();
        Disposition::Continue
    }
    fn handle_notify(&mut self, _ctx: &mut dyn Context, _m: reactor::Message) -> Disposition {
        self.tx.send(Seen::Notify).unwrap();
        Disposition::Continue
    }
    fn handle_timeout(
        &mut self,
        _ctx: &mut dyn Context,
        _t: TimerId,
        _a: &mut (dyn Any + Send),
    ) -> Disposition {
        self.tx.send(Seen::Timeout).unwrap();
        Disposition::Continue
    }
}

#[test]
fn one_iteration_runs_timers_then_notifications_then_io() {
    let clock = ManualClock::default();
    let mut reactor = Reactor::builder()
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    let (ours, mut theirs) = UnixStream::pair().unwrap();
    ours.set_nonblocking(true).unwrap();
    let (tx, rx) = mpsc::channel();
    let t = reactor
        .register(Box::new(Recorder { stream: ours, tx }), Interest::READ)
        .unwrap();
    // Posted in the reverse of the dispatch order.
    theirs.write_all(b"x").unwrap();
    reactor.remote().notify(t, Box::new(())).unwrap();
    reactor
        .schedule_timer(t, Duration::from_millis(5), None, Box::new(()))
        .unwrap();
    clock.advance(Duration::from_millis(5));
    let upcalls = reactor.handle_events(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(upcalls, 3);
    let seen: Vec<Seen> = rx.try_iter().collect();
    assert_eq!(seen, vec![Seen::Timeout, Seen::Notify, Seen::Input]);
}

/// Two readable handlers; whichever runs first removes the other (closing its descriptor),
/// opens a new socket, which gets the freed descriptor number, and registers a handler for
/// it. The event already read from the kernel for the old registration must not reach the
/// new one.
///
/// The kernel hands out the lowest free number, but another test's thread may take the freed
/// one first: the scenario is repeated until the number was reused (the check holds in every
/// run either way).
#[test]
fn stale_event_for_a_reused_descriptor_is_dropped() {
    for _ in 0..100 {
        if stale_event_scenario() {
            return;
        }
    }
    panic!("the freed descriptor number was never reused in 100 runs");
}

/// One run; whether the new socket got the freed descriptor number.
fn stale_event_scenario() -> bool {
    struct Peer {
        stream: UnixStream,
        other: Option<reactor::Token>,
        tx: Sender<String>,
        keep: Vec<UnixStream>,
    }
    impl EventHandler for Peer {
        fn handle(&self) -> Option<BorrowedFd<'_>> {
            Some(self.stream.as_fd())
        }
        fn handle_input(&mut self, ctx: &mut dyn Context) -> Disposition {
            // Drained, as `Continue` promises: a level-triggered backend (mio's poll(2))
            // would report an undrained socket again.
            let mut buf = [0u8; 16];
            while matches!(self.stream.read(&mut buf), Ok(n) if n > 0) {}
            if let Some(other) = self.other.take() {
                ctx.remove(other, reactor::Removal::Close).unwrap();
                let (fresh, peer) = UnixStream::pair().unwrap();
                fresh.set_nonblocking(true).unwrap();
                self.tx
                    .send(format!("new fd {}", fresh.as_raw_fd()))
                    .unwrap();
                let newcomer = Peer {
                    stream: fresh,
                    other: None,
                    tx: self.tx.clone(),
                    keep: vec![],
                };
                ctx.register(Box::new(newcomer), Interest::READ).unwrap();
                self.keep.push(peer);
            } else {
                self.tx
                    .send(format!("input on fd {}", self.stream.as_raw_fd()))
                    .unwrap();
            }
            Disposition::Continue
        }
        fn handle_notify(&mut self, _ctx: &mut dyn Context, m: reactor::Message) -> Disposition {
            self.other = Some(*m.downcast::<reactor::Token>().unwrap());
            Disposition::Continue
        }
        fn handle_close(&mut self, _ctx: &mut dyn Context, reason: CloseReason) {
            self.tx
                .send(format!("close fd {} {reason:?}", self.stream.as_raw_fd()))
                .unwrap();
        }
    }
    let mut reactor = Reactor::new().unwrap();
    let (tx, rx) = mpsc::channel();
    let (a, mut a_peer) = UnixStream::pair().unwrap();
    let (b, mut b_peer) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    b.set_nonblocking(true).unwrap();
    let peer = |stream| Peer {
        stream,
        other: None,
        tx: tx.clone(),
        keep: vec![],
    };
    let ta = reactor.register(Box::new(peer(a)), Interest::READ).unwrap();
    let tb = reactor.register(Box::new(peer(b)), Interest::READ).unwrap();
    // Each learns the other's token, so whichever runs first removes the other.
    reactor.notify(ta, Box::new(tb)).unwrap();
    reactor.notify(tb, Box::new(ta)).unwrap();
    assert_eq!(reactor.handle_events(Some(Duration::ZERO)).unwrap(), 2);
    a_peer.write_all(b"1").unwrap();
    b_peer.write_all(b"1").unwrap();
    reactor.handle_events(Some(Duration::from_secs(5))).unwrap();
    let log: Vec<String> = rx.try_iter().collect();
    assert_eq!(log.len(), 2, "{log:?}");
    let closed_fd: i32 = log[0].split(' ').nth(2).unwrap().parse().unwrap();
    assert!(log[0].ends_with("Removed"), "{log:?}");
    assert!(log[1].starts_with("new fd "), "{log:?}");
    // One more iteration: nothing is readable on the new socket.
    reactor.handle_events(Some(Duration::ZERO)).unwrap();
    assert_eq!(rx.try_iter().count(), 0);
    log[1] == format!("new fd {closed_fd}")
}

/// Counts its closes; ends the loop from its first notification.
struct Ender {
    closes: Sender<CloseReason>,
}

impl EventHandler for Ender {
    fn handle_notify(&mut self, ctx: &mut dyn Context, _message: reactor::Message) -> Disposition {
        ctx.end();
        Disposition::Continue
    }

    fn handle_close(&mut self, _ctx: &mut dyn Context, reason: CloseReason) {
        let _ = self.closes.send(reason);
    }
}

#[test]
fn register_is_unambiguous_serve_keeps_handlers_and_dispatcher_run_closes_them() {
    // Both traits in scope: `reactor.register` is the inherent method, not E0034.
    use reactor::Dispatcher;
    let (tx, closes) = mpsc::channel();
    let mut reactor = Reactor::new().unwrap();
    let token = reactor
        .register(Ender { closes: tx.clone() }, Interest::NONE)
        .unwrap();
    // A boxed handler is taken as well.
    let boxed: Box<dyn EventHandler> = Box::new(Ender { closes: tx });
    reactor.register(boxed, Interest::NONE).unwrap();
    reactor.remote().notify(token, Box::new(())).unwrap();
    reactor.serve().unwrap();
    assert_eq!(reactor.handlers(), 2, "serve keeps the registrations");
    assert!(closes.try_recv().is_err(), "nothing closed yet");

    reactor.reset();
    reactor.remote().notify(token, Box::new(())).unwrap();
    Dispatcher::run(&mut reactor).unwrap();
    assert_eq!(reactor.handlers(), 0, "Dispatcher::run closes them");
    let reasons: Vec<_> = closes.try_iter().collect();
    assert_eq!(reasons, [CloseReason::Shutdown, CloseReason::Shutdown]);
}

#[test]
fn interest_reads_back_what_was_set_and_refuses_stale_tokens() {
    let (tx, _closes) = mpsc::channel();
    let mut reactor = Reactor::new().unwrap();
    let token = reactor
        .register(Ender { closes: tx }, Interest::NONE)
        .unwrap();
    let ctx: &mut dyn Context = &mut reactor;
    assert_eq!(ctx.interest(token).ok(), Some(Interest::NONE));
    ctx.remove(token, reactor::Removal::Quiet).unwrap();
    assert!(matches!(
        ctx.interest(token),
        Err(reactor::DispatchError::UnknownToken(t)) if t == token
    ));
}
