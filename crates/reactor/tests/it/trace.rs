//! The upcall trace hook: every upcall, in dispatch order, with its answer.

use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reactor::{
    CloseReason, Context, Disposition, EventHandler, Hook, Interest, ManualClock, Outcome, Reactor,
    Token, UpcallRecord,
};

/// Reads one byte per input upcall and answers `Again` while more may wait; `!` panics, end of
/// stream closes. Timers and notifications answer `Continue` (the defaults).
struct Sensor {
    stream: UnixStream,
}

impl EventHandler for Sensor {
    fn handle(&self) -> Option<BorrowedFd<'_>> {
        Some(self.stream.as_fd())
    }
    fn handle_input(&mut self, _ctx: &mut dyn Context) -> Disposition {
        let mut b = [0u8; 1];
        match self.stream.read(&mut b) {
            Ok(0) => Disposition::Close,
            Ok(_) if b[0] == b'!' => panic!("a hostile reading"),
            Ok(_) => Disposition::Again,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Disposition::Continue,
            Err(_) => Disposition::Close,
        }
    }
}

fn traced() -> (Reactor, Arc<ManualClock>, Arc<Mutex<Vec<UpcallRecord>>>) {
    let clock = Arc::new(ManualClock::default());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let reactor = Reactor::builder()
        .clock(clock.clone())
        .trace_upcalls(move |r| log.lock().unwrap().push(*r))
        .build()
        .unwrap();
    (reactor, clock, seen)
}

fn take(seen: &Mutex<Vec<UpcallRecord>>) -> Vec<(Token, Hook, Outcome)> {
    seen.lock()
        .unwrap()
        .drain(..)
        .map(|r| (r.token, r.hook, r.outcome))
        .collect()
}

#[test]
fn the_trace_shows_each_iteration_in_contract_order() {
    let (mut reactor, clock, seen) = traced();
    let (a, mut a_peer) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    let t = reactor
        .register(Sensor { stream: a }, Interest::READ)
        .unwrap();
    let timer =
        Context::schedule_timer(&mut reactor, t, Duration::from_secs(1), None, Box::new(()))
            .unwrap();
    a_peer.write_all(b"xy").unwrap();
    Context::notify(&mut reactor, t, Box::new(())).unwrap();
    clock.advance(Duration::from_secs(1));
    // One iteration: the timer, then the notification, then I/O, whose `Again` waits for the
    // next iteration.
    let n = reactor.handle_events(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(n, 3);
    assert_eq!(
        take(&seen),
        [
            (
                t,
                Hook::Timeout(timer),
                Outcome::Answered(Disposition::Continue)
            ),
            (t, Hook::Notify, Outcome::Answered(Disposition::Continue)),
            (t, Hook::Input, Outcome::Answered(Disposition::Again)),
        ]
    );
    // Two more input upcalls without a new edge: the second byte, then `WouldBlock`.
    reactor.handle_events(Some(Duration::ZERO)).unwrap();
    reactor.handle_events(Some(Duration::ZERO)).unwrap();
    assert_eq!(
        take(&seen),
        [
            (t, Hook::Input, Outcome::Answered(Disposition::Again)),
            (t, Hook::Input, Outcome::Answered(Disposition::Continue)),
        ]
    );
    // End of stream: `Close`, then the close upcall with its reason.
    drop(a_peer);
    reactor.handle_events(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(
        take(&seen),
        [
            (t, Hook::Input, Outcome::Answered(Disposition::Close)),
            (t, Hook::Close(CloseReason::Requested), Outcome::Closed),
        ]
    );
}

#[test]
fn the_trace_names_a_panicking_upcall_and_the_close_it_causes() {
    let (mut reactor, _clock, seen) = traced();
    let (a, mut a_peer) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    let t = reactor
        .register(Sensor { stream: a }, Interest::READ)
        .unwrap();
    a_peer.write_all(b"!").unwrap();
    reactor.handle_events(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(
        take(&seen),
        [
            (t, Hook::Input, Outcome::Panicked),
            (t, Hook::Close(CloseReason::Panicked), Outcome::Closed),
        ]
    );
    // Shutdown closes are traced too.
    let (b, _b_peer) = UnixStream::pair().unwrap();
    let u = reactor
        .register(Sensor { stream: b }, Interest::READ)
        .unwrap();
    reactor.close_all();
    assert_eq!(
        take(&seen),
        [(u, Hook::Close(CloseReason::Shutdown), Outcome::Closed)]
    );
}
