//! The conformance kit: the event-handler contract as tests that any [`Dispatcher`] runs
//! against itself (enable the `conformance` feature in dev-dependencies).
//!
//! ```text
//! // in a dispatcher crate's tests/it/main.rs
//! pattern_core::conformance_tests!(|| my_dispatcher::Reactor::new().unwrap());
//! ```
//!
//! Each test starts the dispatcher's [`Dispatcher::run`] on a thread of its own, drives it
//! through [`Remote`] from the test thread, and observes handlers through channels.
//! Waits are bounded by [`PATIENCE`] so that a broken dispatcher fails the test instead of
//! hanging it; nothing sleeps to synchronise.

use std::any::Any;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Barrier};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::{
    CloseReason, Context, DispatchError, Dispatcher, Disposition, EventHandler, Interest, Message,
    Remote, Removal, TimerId, Token,
};

/// How long a test waits for an expected event before declaring the dispatcher broken.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Expands to one `#[test]` per conformance test, each building its dispatcher with `$make`
/// (an expression of a closure type `Fn() -> D` where `D: Dispatcher + 'static`).
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!(@each $make;
            close_when_handler_asks, close_when_removed, quiet_removal_skips_close,
            close_when_panicked, close_on_shutdown, notifications_keep_order,
            timer_act_and_cancel, periodic_timer_closed_from_timeout,
            register_and_remove_self_inside_upcall, stale_token_is_refused,
            input_until_end_of_stream, short_read_then_end_of_stream,
            again_is_upcalled_without_new_edge,
            suspend_keeps_readiness_for_resume, set_interest_takes_effect,
            no_concurrent_upcalls, end_from_inside_an_upcall,
            close_exactly_once_during_shutdown, registration_after_run_is_refused_or_closed,
            order_per_iteration_when_busy, second_removal_during_an_upcall_is_refused);
    };
    // For dispatchers that run two upcalls at once (pools of two threads or more): the tests
    // above, and those that need a second thread free while one upcall blocks.
    ($make:expr; parallel) => {
        $crate::conformance_tests!($make);
        $crate::conformance_tests!(@each $make; blocked_upcall_does_not_stall_others);
    };
    (@each $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::conformance::$name(&$make);
            }
        )*
    };
}

/// What the kit's handlers report.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ev {
    Notify(u64),
    Input(Vec<u8>),
    Eof,
    Output,
    Timeout(String),
    Close(CloseReason),
    Started(Token),
    Signal(i32),
}

/// A running dispatcher: its loop on a thread, reachable through its [`Remote`].
struct Running {
    remote: Arc<dyn Remote>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl Running {
    fn start<D: Dispatcher + 'static>(mut dispatcher: D) -> Self {
        let remote = dispatcher.remote();
        let thread = thread::Builder::new()
            .name("conformance-loop".into())
            .spawn(move || dispatcher.run())
            .expect("spawn loop thread");
        Running {
            remote,
            thread: Some(thread),
        }
    }

    /// Runs `f` on the loop and waits for its answer.
    fn call<R: Send + 'static>(&self, f: impl FnOnce(&mut dyn Context) -> R + Send + 'static) -> R {
        let (tx, rx) = mpsc::channel();
        self.remote
            .post(Box::new(move |ctx| {
                let _ = tx.send(f(ctx));
            }))
            .expect("post to a running dispatcher");
        rx.recv_timeout(PATIENCE).expect("posted job did not run")
    }

    fn register(&self, handler: impl EventHandler, interest: Interest) -> Token {
        self.call(move |ctx| ctx.register(Box::new(handler), interest))
            .expect("register from a posted job")
    }

    fn stop(mut self) {
        self.remote.end();
        let thread = self.thread.take().expect("stopped once");
        thread
            .join()
            .expect("loop thread panicked")
            .expect("run returned an error");
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.remote.end();
            let _ = thread.join();
        }
    }
}

fn next(rx: &Receiver<Ev>, what: &str) -> Ev {
    rx.recv_timeout(PATIENCE)
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// Everything still in the channel, once every sender is gone (the dispatcher dropped them).
fn rest(rx: Receiver<Ev>) -> Vec<Ev> {
    rx.into_iter().collect()
}

/// A handler that reports notifications and close, and answers notifications by their value:
/// 0 asks to close, 1 panics, others continue.
struct Reporter {
    tx: Sender<Ev>,
}

impl EventHandler for Reporter {
    fn handle_notify(&mut self, _ctx: &mut dyn Context, message: Message) -> Disposition {
        let n = *message.downcast::<u64>().expect("kit sends u64");
        let _ = self.tx.send(Ev::Notify(n));
        match n {
            0 => Disposition::Close,
            1 => panic!("conformance: panicking upcall (expected in this test)"),
            _ => Disposition::Continue,
        }
    }

    fn handle_timeout(
        &mut self,
        _ctx: &mut dyn Context,
        _timer: TimerId,
        act: &mut (dyn Any + Send),
    ) -> Disposition {
        let label = act.downcast_ref::<String>().cloned().unwrap_or_default();
        let _ = self.tx.send(Ev::Timeout(label));
        Disposition::Continue
    }

    fn handle_close(&mut self, _ctx: &mut dyn Context, reason: CloseReason) {
        let _ = self.tx.send(Ev::Close(reason));
    }
}

fn reporter() -> (Reporter, Receiver<Ev>) {
    let (tx, rx) = mpsc::channel();
    (Reporter { tx }, rx)
}

fn notify(r: &Running, token: Token, n: u64) {
    r.remote
        .notify(token, Box::new(n))
        .expect("notify a running dispatcher");
}

/// A handler answering `Close` is closed once with `Requested`, and gets nothing after.
pub fn close_when_handler_asks<D: Dispatcher + 'static>(make: &dyn Fn() -> D) {
    let r = Running::start(make());
    let (h, rx) = reporter();
    let t = r.register(h, Interest::NONE);
    notify(&r, t, 0);
    assert_eq!(next(&rx, "notify"), Ev::Notify(0));
    assert_eq!(next(&rx, "close"), Ev::Close(CloseReason::Requested));
    notify(&r, t, 5);
    assert!(matches!(
        r.call(move |ctx| ctx.notify(t, Box::new(6u64))),
        Err(DispatchError::UnknownToken(_))
    ));
    r.stop();
    assert_eq!(rest(rx), vec![], "upcalls after close");
}

/// Removal with [`Removal::Close`] closes once with `Removed`; a second removal is refused.
pub fn close_when_removed<D: Dispatcher + 'static>(make: &dyn Fn() -> D) {
    let r = Running::start(make());
    let (h, rx) = reporter();
    let t = r.register(h, Interest::NONE);
    r.call(move |ctx| ctx.remove(t, Removal::Close))
        .expect("remove a live registration");
    assert_eq!(next(&rx, "close"), Ev::Close(CloseReason::Removed));
    assert!(matches!(
        r.call(move |ctx| ctx.remove(t, Removal::Close)),
        Err(DispatchError::UnknownToken(_))
    ));
    r.stop();
    assert_eq!(rest(rx), vec![]);
}

/// Quiet removal drops the handler without a close upcall.
pub fn quiet_removal_skips_close<D: Dispatcher + 'static>(make: &dyn Fn() -> D) {
    let r = Running::start(make());
    let (h, rx) = reporter();
    let t = r.register(h, Interest::NONE);
    r.call(move |ctx| ctx.remove(t, Removal::Quiet))
        .expect("quiet removal");
    r.stop();
    assert_eq!(rest(rx), vec![], "a quiet removal must not upcall close");
}

/// A panicking upcall closes its handler with `Panicked`, and the others go on.
pub fn close_when_panicked<D: Dispatcher + 'static>(make: &dyn Fn() -> D) {
    let r = Running::start(make());
    let (bad, bad_rx) = reporter();
    let (good, good_rx) = reporter();
    let b = r.register(bad, Interest::NONE);
    let g = r.register(good, Interest::NONE);
    notify(&r, b, 1);
    assert_eq!(next(&bad_rx, "notify"), Ev::Notify(1));
    assert_eq!(next(&bad_rx, "close"), Ev::Close(CloseReason::Panicked));
    notify(&r, g, 7);
    assert_eq!(
        next(&good_rx, "notify after a panic elsewhere"),
        Ev::Notify(7)
    );
    r.stop();
    assert_eq!(rest(bad_rx), vec![]);
    assert_eq!(rest(good_rx), vec![Ev::Close(CloseReason::Shutdown)]);
}

/// Live registrations are closed once with `Shutdown` when the loop ends.
pub fn close_on_shutdown<D: Dispatcher + 'static>(make: &dyn Fn() -> D) {
    let mut d = make();
    let (h1, rx1) = reporter();
    d.register(Box::new(h1), Interest::NONE)
        .expect("register before run");
    let r = Running::start(d);
    let (h2, rx2) = reporter();
    r.register(h2, Interest::NONE);
    r.stop();
    assert_eq!(rest(rx1), vec![Ev::Close(CloseReason::Shutdown)]);
    assert_eq!(rest(rx2), vec![Ev::Close(CloseReason::Shutdown)]);
}

/// Notifications from one thread to one handler arrive in the order they were posted.
pub fn notifications_keep_order<D: Dispatcher + 'static>(make: &dyn Fn() -> D) {
    let r = Running::start(make());
    let (h, rx) = reporter();
    let t = r.register(h, Interest::NONE);
    for n in 2..2002 {
        notify(&r, t, n);
    }
    for n in 2..2002 {
        assert_eq!(next(&rx, "notification"), Ev::Notify(n));
    }
    r.stop();
    assert_eq!(rest(rx), vec![Ev::Close(CloseReason::Shutdown)]);
}

/// A timer's ACT reaches the timeout intact; cancel gives a pending timer's ACT back.
pub fn timer_act_and_cancel<D: Dispatcher + 'static>(make: &dyn Fn() -> D) {
    let r = Running::start(make());
    let (h, rx) = reporter();
    let t = r.register(h, Interest::NONE);
    let (fired, cancelled) = r.call(move |ctx| {
        let fired = ctx
            .schedule_timer(
                t,
                Duration::from_millis(1),
                None,
                Box::new("soon".to_string()),
            )
            .expect("schedule");
        let later = ctx
            .schedule_timer(
                t,
                Duration::from_secs(3600),
                None,
                Box::new("later".to_string()),
            )
            .expect("schedule");
        let act = ctx
            .cancel_timer(later)
            .expect("a pending timer gives its act back");
        (fired, *act.downcast::<String>().expect("act type kept"))
    });
    assert_eq!(cancelled, "later");
    assert_eq!(next(&rx, "timeout"), Ev::Timeout("soon".into()));
    assert!(
        r.call(move |ctx| ctx.cancel_timer(fired)).is_none(),
        "an expired one-shot is gone"
    );
    r.stop();
    assert_eq!(rest(rx), vec![Ev::Close(CloseReason::Shutdown)]);
}

/// A periodic timer fires repeatedly; answering `Close` from a timeout cancels it and closes once.
pub fn periodic_timer_closed_from_timeout<D: Dispatcher + 'static>(make: &dyn Fn() -> D) {
    struct Ticker {
        left: u32,
        tx: Sender<Ev>,
    }
    impl EventHandler for Ticker {
        fn handle_timeout(
            &mut self,
            _ctx: &mut dyn Context,
            _t: TimerId,
            act: &mut (dyn Any + Send),
        ) -> Disposition {
            let label = act.downcast_ref::<String>().cloned().unwrap_or_default();
            let _ = self.tx.send(Ev::Timeout(label));
            self.left -= 1;
            if self.left == 0 {
                Disposition::Close
            } else {
                Disposition::Continue
            }
        }
        fn handle_close(&mut self, _ctx: &mut dyn Context, reason: CloseReason) {
            let _ = self.tx.send(Ev::Close(reason));
        }
    }
    let r = Running::start(make());
    let (tx, rx) = mpsc::channel();
    let t = r.register(Ticker { left: 5, tx }, Interest::NONE);
    let id = r.call(move |ctx| {
        ctx.schedule_timer(
            t,
            Duration::from_millis(1),
            Some(Duration::from_millis(1)),
            Box::new("tick".to_string()),
        )
    });
    let id = id.expect("schedule periodic");
    for _ in 0..5 {
        assert_eq!(next(&rx, "tick"), Ev::Timeout("tick".into()));
    }
    assert_eq!(next(&rx, "close"), Ev::Close(CloseReason::Requested));
    assert!(
        r.call(move |ctx| ctx.cancel_timer(id)).is_none(),
        "close cancels the timer"
    );
    r.stop();
    assert_eq!(rest(rx), vec![]);
}

/// Inside its own upcall a handler registers another and removes itself: close runs once,
/// after the upcall, and the new handler works.
pub fn register_and_remove_self_inside_upcall<D: Dispatcher + 'static>(make: &dyn Fn() -> D) {
    struct Parent {
        tx: Sender<Ev>,
        child: Option<Reporter>,
        in_upcall: bool,
    }
    impl EventHandler for Parent {
        fn handle_notify(&mut self, ctx: &mut dyn Context, _m: Message) -> Disposition {
            self.in_upcall = true;
            let child = self.child.take().expect("notified once");
            let token = ctx
                .register(Box::new(child), Interest::NONE)
                .expect("register inside upcall");
            let me = ctx.current().expect("an upcall knows its token");
            ctx.remove(me, Removal::Close)
                .expect("remove self inside upcall");
            ctx.notify(token, Box::new(9u64))
                .expect("notify the new handler");
            let _ = self.tx.send(Ev::Started(token));
            self.in_upcall = false;
            Disposition::Continue
        }
        fn handle_close(&mut self, _ctx: &mut dyn Context, reason: CloseReason) {
            assert!(
                !self.in_upcall,
                "close ran inside the upcall that removed it"
            );
            let _ = self.tx.send(Ev::Close(reason));
        }
    }
    let r = Running::start(make());
    let (tx, rx) = mpsc::channel();
    let (child, child_rx) = reporter();
    let p = r.register(
        Parent {
            tx,
            child: Some(child),
            in_upcall: false,
        },
        Interest::NONE,
    );
    notify(&r, p, 2);
    let Ev::Started(c) = next(&rx, "child registered") else {
        panic!("unexpected event")
    };
    assert_eq!(next(&rx, "parent close"), Ev::Close(CloseReason::Removed));
    assert_eq!(next(&child_rx, "child notified"), Ev::Notify(9));
    notify(&r, c, 10);
    assert_eq!(next(&child_rx, "child notified again"), Ev::Notify(10));
    r.stop();
    assert_eq!(rest(rx), vec![]);
    assert_eq!(rest(child_rx), vec![Ev::Close(CloseReason::Shutdown)]);
}

/// A stale token (its registration ended, its slot reused) never reaches the new handler.
pub fn stale_token_is_refused<D: Dispatcher + 'static>(make: &dyn Fn() -> D) {
    let r = Running::start(make());
    let (old, old_rx) = reporter();
    let t_old = r.register(old, Interest::NONE);
    r.call(move |ctx| ctx.remove(t_old, Removal::Quiet))
        .expect("remove");
    let (new, new_rx) = reporter();
    let t_new = r.register(new, Interest::NONE);
    assert_ne!(t_old, t_new);
    notify(&r, t_old, 3);
    assert!(matches!(
        r.call(move |ctx| ctx.set_interest(t_old, Interest::READ)),
        Err(DispatchError::UnknownToken(_))
    ));
    // A marker sent after the stale one: when it arrives, the stale one has been dropped.
    notify(&r, t_new, 4);
    assert_eq!(next(&new_rx, "marker"), Ev::Notify(4));
    r.stop();
    assert_eq!(rest(old_rx), vec![]);
    assert_eq!(rest(new_rx), vec![Ev::Close(CloseReason::Shutdown)]);
}

/// Reads until `WouldBlock`; at most `batch` bytes per upcall when `batch` is set (then
/// answers `Again`). Closes on end of stream.
struct StreamReader {
    stream: UnixStream,
    tx: Sender<Ev>,
    batch: Option<usize>,
}

impl StreamReader {
    fn new(stream: UnixStream, tx: Sender<Ev>, batch: Option<usize>) -> Self {
        stream.set_nonblocking(true).expect("nonblocking");
        StreamReader { stream, tx, batch }
    }
}

impl EventHandler for StreamReader {
    fn handle(&self) -> Option<BorrowedFd<'_>> {
        Some(self.stream.as_fd())
    }

    fn handle_input(&mut self, _ctx: &mut dyn Context) -> Disposition {
        let mut buf = [0u8; 4096];
        let limit = self.batch.unwrap_or(buf.len());
        let mut read_this_upcall = 0;
        loop {
            let want = (limit - read_this_upcall).min(buf.len());
            if want == 0 {
                return Disposition::Again;
            }
            match self.stream.read(&mut buf[..want]) {
                Ok(0) => {
                    let _ = self.tx.send(Ev::Eof);
                    return Disposition::Close;
                }
                Ok(n) => {
                    read_this_upcall += n;
                    let _ = self.tx.send(Ev::Input(buf[..n].to_vec()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Disposition::Continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => panic!("read: {e}"),
            }
        }
    }

    fn handle_output(&mut self, _ctx: &mut dyn Context) -> Disposition {
        let _ = self.tx.send(Ev::Output);
        Disposition::Continue
    }

    fn handle_close(&mut self, _ctx: &mut dyn Context, reason: CloseReason) {
        let _ = self.tx.send(Ev::Close(reason));
    }
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn collect_input(rx: &Receiver<Ev>, len: usize) -> Vec<u8> {
    let mut got = Vec::new();
    while got.len() < len {
        match next(rx, "input") {
            Ev::Input(b) => got.extend(b),
            other => panic!("expected input, got {other:?}"),
        }
    }
    got
}

/// Every byte written reaches `handle_input`, in order; end of stream closes once.
pub fn input_until_end_of_stream<D: Dispatcher + 'static>(make: &dyn Fn() -> D) {
    let r = Running::start(make());
    let (ours, mut theirs) = UnixStream::pair().expect("socketpair");
    let (tx, rx) = mpsc::channel();
    r.register(StreamReader::new(ours, tx, None), Interest::READ);
    let data = pattern(256 * 1024);
    let writer = {
        let data = data.clone();
        thread::spawn(move || {
            for chunk in data.chunks(1000) {
                theirs.write_all(chunk).expect("write");
            }
        })
    };
    assert_eq!(collect_input(&rx, data.len()), data);
    writer.join().expect("writer");
    assert_eq!(next(&rx, "eof"), Ev::Eof);
    assert_eq!(next(&rx, "close"), Ev::Close(CloseReason::Requested));
    r.stop();
    assert_eq!(rest(rx), vec![]);
}

/// A handler may stop at a short read; when the peer's close came with the data, the
/// dispatcher upcalls input once more, and the handler sees end of stream.
pub fn short_read_then_end_of_stream<D: Dispatcher + 'static>(make: &dyn Fn() -> D) {
    struct ShortReader {
        stream: UnixStream,
        tx: Sender<Ev>,
    }
    impl EventHandler for ShortReader {
        fn handle(&self) -> Option<BorrowedFd<'_>> {
            Some(self.stream.as_fd())
        }
        fn handle_input(&mut self, _ctx: &mut dyn Context) -> Disposition {
            let mut buf = [0u8; 4096];
            loop {
                match self.stream.read(&mut buf) {
                    Ok(0) => {
                        let _ = self.tx.send(Ev::Eof);
                        return Disposition::Close;
                    }
                    Ok(n) => {
                        let _ = self.tx.send(Ev::Input(buf[..n].to_vec()));
                        if n < buf.len() {
                            // Drained for now: no read to WouldBlock (nor to end of stream).
                            return Disposition::Continue;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        return Disposition::Continue;
                    }
                    Err(e) => panic!("read: {e}"),
                }
            }
        }
        fn handle_close(&mut self, _ctx: &mut dyn Context, reason: CloseReason) {
            let _ = self.tx.send(Ev::Close(reason));
        }
    }
    let r = Running::start(make());
    let (ours, mut theirs) = UnixStream::pair().expect("socketpair");
    ours.set_nonblocking(true).expect("nonblocking");
    // Data and close arrive together, before registration: one readiness report covers both.
    theirs.write_all(b"last words").expect("write");
    drop(theirs);
    let (tx, rx) = mpsc::channel();
    r.register(ShortReader { stream: ours, tx }, Interest::READ);
    assert_eq!(next(&rx, "input"), Ev::Input(b"last words".to_vec()));
    assert_eq!(next(&rx, "end of stream after a short read"), Ev::Eof);
    assert_eq!(next(&rx, "close"), Ev::Close(CloseReason::Requested));
    r.stop();
    assert_eq!(rest(rx), vec![]);
}

/// A handler answering `Again` is upcalled again without new readiness, until drained.
pub fn again_is_upcalled_without_new_edge<D: Dispatcher + 'static>(make: &dyn Fn() -> D) {
    let r = Running::start(make());
    let (ours, mut theirs) = UnixStream::pair().expect("socketpair");
    let (tx, rx) = mpsc::channel();
    r.register(StreamReader::new(ours, tx, Some(7)), Interest::READ);
    let data = pattern(1000);
    // One write, one edge; the reader takes 7 bytes per upcall. The peer stays open, so no
    // further readiness arrives: only `Again` can bring the rest.
    theirs.write_all(&data).expect("write");
    assert_eq!(collect_input(&rx, data.len()), data);
    r.stop();
    drop(theirs);
    assert_eq!(rest(rx), vec![Ev::Close(CloseReason::Shutdown)]);
}

/// No I/O upcall while suspended; readiness that arrived meanwhile is delivered on resume.
pub fn suspend_keeps_readiness_for_resume<D: Dispatcher + 'static>(make: &dyn Fn() -> D) {
    struct Gate {
        inner: StreamReader,
        suspended: Arc<AtomicBool>,
    }
    impl EventHandler for Gate {
        fn handle(&self) -> Option<BorrowedFd<'_>> {
            self.inner.handle()
        }
        fn handle_input(&mut self, ctx: &mut dyn Context) -> Disposition {
            assert!(
                !self.suspended.load(Ordering::SeqCst),
                "input upcall while suspended"
            );
            self.inner.handle_input(ctx)
        }
        fn handle_notify(&mut self, _ctx: &mut dyn Context, m: Message) -> Disposition {
            let _ = self
                .inner
                .tx
                .send(Ev::Notify(*m.downcast::<u64>().expect("u64")));
            Disposition::Continue
        }
        fn handle_close(&mut self, ctx: &mut dyn Context, reason: CloseReason) {
            self.inner.handle_close(ctx, reason);
        }
    }
    let r = Running::start(make());
    let (ours, mut theirs) = UnixStream::pair().expect("socketpair");
    let (tx, rx) = mpsc::channel();
    let suspended = Arc::new(AtomicBool::new(false));
    let gate = Gate {
        inner: StreamReader::new(ours, tx, None),
        suspended: suspended.clone(),
    };
    let t = r.register(gate, Interest::READ);
    {
        let suspended = suspended.clone();
        r.call(move |ctx| {
            suspended.store(true, Ordering::SeqCst);
            ctx.suspend(t)
        })
        .expect("suspend");
    }
    theirs.write_all(b"while suspended").expect("write");
    // Notifications still run while suspended; two round trips through the loop give the
    // demultiplexer every chance to report the readiness, which must be held back.
    notify(&r, t, 2);
    assert_eq!(next(&rx, "notify while suspended"), Ev::Notify(2));
    notify(&r, t, 3);
    assert_eq!(next(&rx, "notify while suspended"), Ev::Notify(3));
    r.call(move |ctx| {
        suspended.store(false, Ordering::SeqCst);
        ctx.resume(t)
    })
    .expect("resume");
    assert_eq!(collect_input(&rx, 15), b"while suspended");
    r.stop();
    assert_eq!(rest(rx), vec![Ev::Close(CloseReason::Shutdown)]);
}

/// Changing the interest takes effect: adding `WRITE` brings an output upcall; the
/// [`Context::interest`] getter reads back what was registered and set.
pub fn set_interest_takes_effect<D: Dispatcher + 'static>(make: &dyn Fn() -> D) {
    let r = Running::start(make());
    let (ours, theirs) = UnixStream::pair().expect("socketpair");
    let (tx, rx) = mpsc::channel();
    let t = r.register(StreamReader::new(ours, tx, None), Interest::READ);
    assert_eq!(
        r.call(move |ctx| ctx.interest(t).ok()),
        Some(Interest::READ)
    );
    r.call(move |ctx| ctx.set_interest(t, Interest::READ | Interest::WRITE))
        .expect("set interest");
    assert_eq!(next(&rx, "output after adding WRITE"), Ev::Output);
    assert_eq!(
        r.call(move |ctx| ctx.interest(t).ok()),
        Some(Interest::READ | Interest::WRITE)
    );
    r.call(move |ctx| ctx.set_interest(t, Interest::READ))
        .expect("set interest");
    r.stop();
    drop(theirs);
    let rest = rest(rx);
    assert_eq!(rest.last(), Some(&Ev::Close(CloseReason::Shutdown)));
    assert!(rest[..rest.len() - 1].iter().all(|e| *e == Ev::Output));
}

/// Upcalls of one handler never overlap: notifications from four threads, a periodic timer
/// and I/O all hit one handler while it checks an in-handler flag.
pub fn no_concurrent_upcalls<D: Dispatcher + 'static>(make: &dyn Fn() -> D) {
    struct Busy {
        stream: UnixStream,
        flag: Arc<AtomicBool>,
        upcalls: Arc<AtomicUsize>,
        bytes: usize,
        done: Sender<usize>,
        notified: usize,
        all_notified: Sender<usize>,
    }
    impl Busy {
        fn enter(&self) {
            assert!(
                !self.flag.swap(true, Ordering::SeqCst),
                "two upcalls of one handler overlapped"
            );
            self.upcalls.fetch_add(1, Ordering::SeqCst);
            std::hint::black_box((0..200).sum::<u32>());
        }
        fn leave(&self) {
            self.flag.store(false, Ordering::SeqCst);
        }
    }
    impl EventHandler for Busy {
        fn handle(&self) -> Option<BorrowedFd<'_>> {
            Some(self.stream.as_fd())
        }
        fn handle_input(&mut self, _ctx: &mut dyn Context) -> Disposition {
            self.enter();
            let mut buf = [0u8; 512];
            let d = loop {
                match self.stream.read(&mut buf) {
                    Ok(0) => {
                        let _ = self.done.send(self.bytes);
                        break Disposition::Continue;
                    }
                    Ok(n) => self.bytes += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Disposition::Continue,
                    Err(e) => panic!("read: {e}"),
                }
            };
            self.leave();
            d
        }
        fn handle_notify(&mut self, _ctx: &mut dyn Context, _m: Message) -> Disposition {
            self.enter();
            self.notified += 1;
            if self.notified == 8000 {
                let _ = self.all_notified.send(self.notified);
            }
            self.leave();
            Disposition::Continue
        }
        fn handle_timeout(
            &mut self,
            _ctx: &mut dyn Context,
            _t: TimerId,
            _a: &mut (dyn Any + Send),
        ) -> Disposition {
            self.enter();
            self.leave();
            Disposition::Continue
        }
    }
    let r = Running::start(make());
    let (ours, mut theirs) = UnixStream::pair().expect("socketpair");
    ours.set_nonblocking(true).expect("nonblocking");
    let flag = Arc::new(AtomicBool::new(false));
    let upcalls = Arc::new(AtomicUsize::new(0));
    let (done_tx, done_rx) = mpsc::channel();
    let (all_tx, all_rx) = mpsc::channel();
    let busy = Busy {
        stream: ours,
        flag,
        upcalls: upcalls.clone(),
        bytes: 0,
        done: done_tx,
        notified: 0,
        all_notified: all_tx,
    };
    let t = r.register(busy, Interest::READ);
    r.call(move |ctx| {
        ctx.schedule_timer(
            t,
            Duration::ZERO,
            Some(Duration::from_micros(200)),
            Box::new(()),
        )
    })
    .expect("periodic timer");
    let start = Arc::new(Barrier::new(5));
    let senders: Vec<_> = (0..4)
        .map(|_| {
            let remote = r.remote.clone();
            let start = start.clone();
            thread::spawn(move || {
                start.wait();
                for n in 0..2000u64 {
                    remote.notify(t, Box::new(n)).expect("notify");
                }
            })
        })
        .collect();
    let writer = {
        let start = start.clone();
        thread::spawn(move || {
            start.wait();
            for _ in 0..2000 {
                theirs.write_all(&[7u8; 64]).expect("write");
            }
        })
    };
    for s in senders {
        s.join().expect("sender");
    }
    writer.join().expect("writer");
    assert_eq!(
        done_rx.recv_timeout(PATIENCE).expect("end of stream seen"),
        2000 * 64
    );
    assert_eq!(
        all_rx
            .recv_timeout(PATIENCE)
            .expect("every notification upcalled"),
        8000
    );
    r.stop();
    // 8000 notifications, at least one input upcall, at least one timeout.
    assert!(upcalls.load(Ordering::SeqCst) >= 8002);
}

/// `end` from inside an upcall stops the loop; live handlers are closed with `Shutdown`.
pub fn end_from_inside_an_upcall<D: Dispatcher + 'static>(make: &dyn Fn() -> D) {
    struct Ender(Sender<Ev>);
    impl EventHandler for Ender {
        fn handle_notify(&mut self, ctx: &mut dyn Context, _m: Message) -> Disposition {
            ctx.end();
            Disposition::Continue
        }
        fn handle_close(&mut self, _ctx: &mut dyn Context, reason: CloseReason) {
            let _ = self.0.send(Ev::Close(reason));
        }
    }
    let mut d = make();
    let (tx, rx) = mpsc::channel();
    let t = d
        .register(Box::new(Ender(tx)), Interest::NONE)
        .expect("register");
    let remote = d.remote();
    let loop_thread = thread::spawn(move || d.run());
    remote.notify(t, Box::new(())).expect("notify");
    assert_eq!(
        next(&rx, "shutdown close"),
        Ev::Close(CloseReason::Shutdown)
    );
    loop_thread.join().expect("loop thread").expect("run");
    assert_eq!(rest(rx), vec![]);
}

/// Waits until every sender of `rx` is gone (the dispatcher dropped the handlers holding
/// them), at most [`PATIENCE`] in all, and returns what arrived meanwhile. A handler that is
/// never dropped fails the test with `what` instead of hanging it.
fn drain<T>(rx: &Receiver<T>, what: &str) -> Vec<T> {
    let deadline = std::time::Instant::now() + PATIENCE;
    let mut got = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(x) => got.push(x),
            Err(mpsc::RecvTimeoutError::Disconnected) => return got,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("{what}: a handler was neither dropped nor closed within {PATIENCE:?}")
            }
        }
    }
}

/// Close runs exactly once per registration during shutdown too: a handler that registers a
/// successor from `handle_close(Shutdown)`, twenty deep, sees each registration either
/// refused with [`DispatchError::ShutDown`] or accepted and then closed once with `Shutdown`;
/// none is dropped without its close.
pub fn close_exactly_once_during_shutdown<D: Dispatcher + 'static>(make: &dyn Fn() -> D) {
    const DEPTH: u32 = 20;
    #[derive(Debug, PartialEq, Eq)]
    enum Step {
        Accepted(u32),
        Refused(u32),
        Closed(u32, CloseReason),
        Dropped(u32),
    }
    struct Chain {
        depth: u32,
        tx: Sender<Step>,
    }
    impl EventHandler for Chain {
        fn handle_close(&mut self, ctx: &mut dyn Context, reason: CloseReason) {
            let _ = self.tx.send(Step::Closed(self.depth, reason));
            if reason != CloseReason::Shutdown || self.depth == DEPTH {
                return;
            }
            let next = self.depth + 1;
            let successor = Chain {
                depth: next,
                tx: self.tx.clone(),
            };
            match ctx.register(Box::new(successor), Interest::NONE) {
                Ok(_) => {
                    let _ = self.tx.send(Step::Accepted(next));
                }
                Err(DispatchError::ShutDown) => {
                    let _ = self.tx.send(Step::Refused(next));
                }
                Err(e) => panic!("registration from handle_close failed with {e}"),
            }
        }
    }
    impl Drop for Chain {
        fn drop(&mut self) {
            let _ = self.tx.send(Step::Dropped(self.depth));
        }
    }
    let r = Running::start(make());
    let (tx, rx) = mpsc::channel();
    r.register(Chain { depth: 0, tx }, Interest::NONE);
    r.stop();
    let steps = drain(&rx, "shutdown");
    for depth in 0..=DEPTH {
        let accepted = depth == 0 || steps.contains(&Step::Accepted(depth));
        let refused = steps.contains(&Step::Refused(depth));
        let closes = steps
            .iter()
            .filter(|s| matches!(s, Step::Closed(d, _) if *d == depth))
            .count();
        let drops = steps
            .iter()
            .filter(|s| matches!(s, Step::Dropped(d) if *d == depth))
            .count();
        if accepted {
            assert_eq!(
                closes, 1,
                "registration {depth} was accepted during shutdown and closed {closes} times \
                 (exactly once expected); steps: {steps:?}"
            );
            assert!(
                steps.contains(&Step::Closed(depth, CloseReason::Shutdown)),
                "registration {depth} closed for another reason than Shutdown: {steps:?}"
            );
            assert_eq!(drops, 1, "registration {depth} dropped {drops} times");
        } else if refused {
            assert_eq!(
                closes, 0,
                "refused registration {depth} was closed: {steps:?}"
            );
            assert_eq!(drops, 1, "refused handler {depth} dropped {drops} times");
        } else {
            // The chain stopped earlier: nothing of this depth exists.
            assert_eq!((closes, drops), (0, 0), "registration {depth}: {steps:?}");
        }
    }
}

/// After [`Dispatcher::run`] returned, [`Dispatcher::register`] either refuses with
/// [`DispatchError::ShutDown`] (dropping the handler at once) or accepts, and then dropping the
/// dispatcher closes the registration once with `Shutdown`; a [`Remote`] still alive keeps
/// neither from happening.
pub fn registration_after_run_is_refused_or_closed<D: Dispatcher + 'static>(make: &dyn Fn() -> D) {
    let d = make();
    let remote = d.remote();
    let loop_thread = thread::Builder::new()
        .name("conformance-loop".into())
        .spawn(move || {
            let mut d = d;
            let result = d.run();
            (d, result)
        })
        .expect("spawn loop thread");
    remote.end();
    let (mut d, result) = loop_thread.join().expect("loop thread panicked");
    result.expect("run returned an error");
    let (h, rx) = reporter();
    match d.register(Box::new(h), Interest::NONE) {
        Err(DispatchError::ShutDown) => {
            assert_eq!(
                drain(&rx, "a registration refused after run"),
                vec![],
                "a refused handler must not be upcalled"
            );
            drop(d);
        }
        Ok(_) => {
            drop(d);
            assert_eq!(
                drain(
                    &rx,
                    "a registration accepted after run, its dispatcher dropped"
                ),
                vec![Ev::Close(CloseReason::Shutdown)],
                "a registration accepted after run is closed once when the dispatcher goes"
            );
        }
        Err(e) => panic!("register after run failed with {e}, not ShutDown"),
    }
    // The remote outlived everything above on purpose.
    drop(remote);
}

/// Order within an iteration holds for work that arrives while the handler is busy: an upcall
/// that schedules itself a zero-delay timer, posts itself a notification and makes its own
/// socket readable is upcalled next for the timeout, then the notification, then input.
pub fn order_per_iteration_when_busy<D: Dispatcher + 'static>(make: &dyn Fn() -> D) {
    const ROUNDS: u64 = 20;
    struct SelfStarter {
        ours: UnixStream,
        theirs: UnixStream,
        tx: Sender<Ev>,
    }
    impl EventHandler for SelfStarter {
        fn handle(&self) -> Option<BorrowedFd<'_>> {
            Some(self.ours.as_fd())
        }
        fn handle_notify(&mut self, ctx: &mut dyn Context, message: Message) -> Disposition {
            let n = *message.downcast::<u64>().expect("kit sends u64");
            if n >= 1000 {
                let _ = self.tx.send(Ev::Notify(n));
                return Disposition::Continue;
            }
            let me = ctx.current().expect("an upcall knows its token");
            ctx.schedule_timer(me, Duration::ZERO, None, Box::new(format!("round {n}")))
                .expect("schedule a zero-delay timer");
            ctx.notify(me, Box::new(1000 + n)).expect("notify self");
            self.theirs
                .write_all(&[n as u8])
                .expect("make our socket readable");
            Disposition::Continue
        }
        fn handle_timeout(
            &mut self,
            _ctx: &mut dyn Context,
            _timer: TimerId,
            act: &mut (dyn Any + Send),
        ) -> Disposition {
            let label = act.downcast_ref::<String>().cloned().unwrap_or_default();
            let _ = self.tx.send(Ev::Timeout(label));
            Disposition::Continue
        }
        fn handle_input(&mut self, _ctx: &mut dyn Context) -> Disposition {
            let mut buf = [0u8; 64];
            loop {
                match self.ours.read(&mut buf) {
                    Ok(0) => return Disposition::Close,
                    Ok(n) => {
                        let _ = self.tx.send(Ev::Input(buf[..n].to_vec()));
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        return Disposition::Continue;
                    }
                    Err(e) => panic!("read: {e}"),
                }
            }
        }
        fn handle_close(&mut self, _ctx: &mut dyn Context, reason: CloseReason) {
            let _ = self.tx.send(Ev::Close(reason));
        }
    }
    let r = Running::start(make());
    let (ours, theirs) = UnixStream::pair().expect("socketpair");
    ours.set_nonblocking(true).expect("nonblocking");
    let (tx, rx) = mpsc::channel();
    let t = r.register(SelfStarter { ours, theirs, tx }, Interest::READ);
    for round in 2..2 + ROUNDS {
        notify(&r, t, round);
        let got = [
            next(&rx, "the first upcall after the round"),
            next(&rx, "the second upcall after the round"),
            next(&rx, "the third upcall after the round"),
        ];
        assert_eq!(
            got,
            [
                Ev::Timeout(format!("round {round}")),
                Ev::Notify(1000 + round),
                Ev::Input(vec![round as u8]),
            ],
            "round {round}: timers, then notifications, then I/O"
        );
    }
    r.stop();
    assert_eq!(rest(rx), vec![Ev::Close(CloseReason::Shutdown)]);
}

/// With one handler blocked in an upcall, a dispatcher that runs several threads still serves
/// the others: two notifications posted back to back, the first to the handler that blocks,
/// the second to another, both arrive while the first upcall waits (no lost wake-up).
/// Only for dispatchers with two or more threads ([`conformance_tests!`] with `; parallel`).
pub fn blocked_upcall_does_not_stall_others<D: Dispatcher + 'static>(make: &dyn Fn() -> D) {
    const ROUNDS: u64 = 500;
    struct Blocker {
        started: Sender<u64>,
        release: Receiver<()>,
    }
    impl EventHandler for Blocker {
        fn handle_notify(&mut self, _ctx: &mut dyn Context, message: Message) -> Disposition {
            let n = *message.downcast::<u64>().expect("kit sends u64");
            let _ = self.started.send(n);
            // Bounded, so that a dispatcher that loses B's wake-up fails the test, not hangs.
            let _ = self.release.recv_timeout(PATIENCE * 2);
            Disposition::Continue
        }
    }
    let r = Running::start(make());
    let (started_tx, started_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel();
    let a = r.register(
        Blocker {
            started: started_tx,
            release: release_rx,
        },
        Interest::NONE,
    );
    let (b, b_rx) = reporter();
    let b = r.register(b, Interest::NONE);
    for round in 2..2 + ROUNDS {
        // Every other round starts after a round trip through the pool, the others right
        // after A's release: the pool's threads are caught in different states.
        if round % 2 == 0 {
            r.call(|_| ());
        }
        notify(&r, a, round);
        notify(&r, b, round);
        assert_eq!(
            b_rx.recv_timeout(PATIENCE).unwrap_or_else(|_| panic!(
                "round {round}: B's notification waited {PATIENCE:?} while A's upcall \
                     blocked and another pool thread was free"
            )),
            Ev::Notify(round)
        );
        assert_eq!(
            started_rx
                .recv_timeout(PATIENCE)
                .expect("A's upcall started"),
            round
        );
        release_tx.send(()).expect("A waits for its release");
    }
    r.stop();
    assert_eq!(rest(b_rx), vec![Ev::Close(CloseReason::Shutdown)]);
}

/// A registration removed while its upcall runs is ending: a second removal is refused, as
/// after the registration has gone, and the first decides how it ends (here quietly).
pub fn second_removal_during_an_upcall_is_refused<D: Dispatcher + 'static>(make: &dyn Fn() -> D) {
    struct Twice(Sender<Ev>);
    impl EventHandler for Twice {
        fn handle_notify(&mut self, ctx: &mut dyn Context, _m: Message) -> Disposition {
            let me = ctx.current().expect("an upcall knows its token");
            ctx.remove(me, Removal::Quiet).expect("the first removal");
            let second = ctx.remove(me, Removal::Close);
            assert!(
                matches!(second, Err(DispatchError::UnknownToken(_))),
                "a second removal was accepted: {second:?}"
            );
            let _ = self.0.send(Ev::Notify(2));
            Disposition::Continue
        }
        fn handle_close(&mut self, _ctx: &mut dyn Context, reason: CloseReason) {
            let _ = self.0.send(Ev::Close(reason));
        }
    }
    let r = Running::start(make());
    let (tx, rx) = mpsc::channel();
    let t = r.register(Twice(tx), Interest::NONE);
    notify(&r, t, 2);
    assert_eq!(
        next(&rx, "the upcall that removes itself twice"),
        Ev::Notify(2)
    );
    r.stop();
    assert_eq!(
        drain(&rx, "a registration removed during its upcall"),
        vec![],
        "the quiet removal came first: no close upcall"
    );
}

/// A handler that reports signals and close, and answers `Close` to the signal `close_on`.
struct SignalReporter {
    tx: Sender<Ev>,
    close_on: Option<i32>,
}

impl EventHandler for SignalReporter {
    fn handle_signal(&mut self, _ctx: &mut dyn Context, signal: i32) -> Disposition {
        let _ = self.tx.send(Ev::Signal(signal));
        if self.close_on == Some(signal) {
            Disposition::Close
        } else {
            Disposition::Continue
        }
    }

    fn handle_close(&mut self, _ctx: &mut dyn Context, reason: CloseReason) {
        let _ = self.tx.send(Ev::Close(reason));
    }
}

/// A signal sent to the process reaches every handler watching it, once each, and no other;
/// a handler answering `Close` to a signal is closed once and watches nothing after.
///
/// Not part of [`conformance_tests!`]: signals belong to the whole process. Call it from a test
/// binary with `harness = false` whose `main` blocks both signals before any thread exists
/// (threads inherit the mask), so that no thread takes their default action and the
/// dispatcher's signal fd reads them. `raise` sends a signal to the process (`kill(2)` on its
/// own pid), and the two signals must differ (SIGUSR1 and SIGUSR2 suit).
pub fn signals_reach_their_watchers<D: Dispatcher + 'static>(
    make: &dyn Fn() -> D,
    (first, second): (i32, i32),
    raise: &dyn Fn(i32),
) {
    assert_ne!(first, second, "two different signals");
    let r = Running::start(make());
    let (tx_a, rx_a) = mpsc::channel();
    let (tx_b, rx_b) = mpsc::channel();
    let a = r.register(
        SignalReporter {
            tx: tx_a,
            close_on: None,
        },
        Interest::NONE,
    );
    let b = r.register(
        SignalReporter {
            tx: tx_b,
            close_on: Some(second),
        },
        Interest::NONE,
    );
    r.call(move |ctx| {
        ctx.watch_signal(a, first)?;
        ctx.watch_signal(b, first)?;
        ctx.watch_signal(b, second)
    })
    .expect("watch signals of live registrations");
    raise(first);
    assert_eq!(next(&rx_a, "the first signal at a"), Ev::Signal(first));
    assert_eq!(next(&rx_b, "the first signal at b"), Ev::Signal(first));
    raise(second);
    assert_eq!(next(&rx_b, "the second signal at b"), Ev::Signal(second));
    assert_eq!(
        next(&rx_b, "b closed by its answer"),
        Ev::Close(CloseReason::Requested)
    );
    // a does not watch the second signal: its next upcall is the first signal again (a
    // dispatcher queues a signal's upcalls in the order it reads the signals).
    raise(first);
    assert_eq!(
        next(&rx_a, "the first signal again at a"),
        Ev::Signal(first)
    );
    r.stop();
    assert_eq!(rest(rx_a), vec![Ev::Close(CloseReason::Shutdown)]);
    assert_eq!(rest(rx_b), vec![], "upcalls after close");
}
