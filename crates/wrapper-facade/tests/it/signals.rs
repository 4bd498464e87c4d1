//! Signals: EINTR inside a blocking recv, and signals delivered through a signalfd.
//!
//! Tests run as threads of one process, so nothing here sends a process-directed signal: a
//! process-directed SIGTERM could land in any test thread and kill the whole run. Every signal is
//! thread-directed (`tgkill`) at a thread that either blocks it (signalfd tests) or has a handler.

use std::io;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};
use wrapper_facade::process::{ExitStatus, Process, ProcessOptions, Redirect};
use wrapper_facade::signal::{
    self, Restart, Signal, SignalFd, SignalSet, ThreadTarget, delivery_count,
};

use super::tcp_pair;

/// Waits until the kernel reports `tid` as sleeping (state `S`), i.e. blocked in a system call.
/// This polls an observable state; it is not a sleep standing in for synchronisation.
fn wait_until_blocked(tid: i32) {
    let path = format!("/proc/self/task/{tid}/stat");
    let give_up = Instant::now() + Duration::from_secs(30);
    loop {
        let stat = std::fs::read_to_string(&path).unwrap();
        // The state follows the parenthesised command name, which may itself contain spaces.
        let state = stat
            .rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .next()
            .unwrap();
        if state == "S" {
            return;
        }
        assert!(
            Instant::now() < give_up,
            "thread {tid} never blocked (state {state})"
        );
        std::thread::yield_now();
    }
}

/// Waits until the counting handler for `signal` has run more than `before` times.
fn wait_for_delivery(signal: Signal, before: u64) {
    let give_up = Instant::now() + Duration::from_secs(30);
    while delivery_count(signal) <= before {
        assert!(Instant::now() < give_up, "{signal} was never delivered");
        std::thread::yield_now();
    }
}

#[test]
fn a_signal_interrupting_a_blocking_recv_is_retried_by_the_facade() {
    // No SA_RESTART: the kernel makes a blocked recv fail with EINTR when the handler runs.
    signal::install_counting_handler(Signal::USR1, Restart::Disabled).unwrap();

    // Control: the raw C call really does fail with EINTR in this setup.
    let (client, server) = tcp_pair();
    // A safety net so that a broken setup fails instead of hanging; per signal(7) a socket
    // timeout does not change the outcome (an interrupted recv with a timeout reports EINTR).
    server
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let raw_receiver = std::thread::spawn(move || {
        tx.send(ThreadTarget::current()).unwrap();
        let mut buf = [0u8; 8];
        use std::os::fd::AsRawFd;
        // SAFETY: `buf` is writable for its length during the call.
        let rc = unsafe { libc::recv(server.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        (rc, io::Error::last_os_error().raw_os_error())
    });
    let target = rx.recv().unwrap();
    wait_until_blocked(target.tid());
    let before = delivery_count(Signal::USR1);
    target.send(Signal::USR1).unwrap();
    assert_eq!(raw_receiver.join().unwrap(), (-1, Some(libc::EINTR)));
    assert!(delivery_count(Signal::USR1) > before);
    drop(client);

    // The facade: the same interruption is absorbed, and the data that follows is received.
    let (client, server) = tcp_pair();
    let (tx, rx) = mpsc::channel();
    let receiver = std::thread::spawn(move || {
        tx.send(ThreadTarget::current()).unwrap();
        let mut buf = [0u8; 5];
        server.recv_n(&mut buf).map(|()| buf)
    });
    let target = rx.recv().unwrap();
    wait_until_blocked(target.tid());
    let before = delivery_count(Signal::USR1);
    target.send(Signal::USR1).unwrap();
    wait_for_delivery(Signal::USR1, before);
    // The handler has run in the receiver; only now does the data arrive.
    client.send_n(b"after").unwrap();
    assert_eq!(&receiver.join().unwrap().unwrap(), b"after");
}

#[test]
fn signals_arrive_through_the_signal_fd_in_a_mio_loop() {
    // A dedicated thread: the mask change stays there and does not disturb other tests.
    std::thread::spawn(|| {
        let set = SignalSet::default().with(Signal::HUP).with(Signal::TERM);
        let mut sfd = SignalFd::new(&set).unwrap();
        assert!(
            SignalSet::blocked_in_current_thread()
                .unwrap()
                .contains(Signal::TERM)
        );
        assert_eq!(sfd.signals(), &set);
        let mut poll = Poll::new().unwrap();
        let mut events = Events::with_capacity(4);
        poll.registry()
            .register(&mut sfd, Token(7), Interest::READABLE)
            .unwrap();

        let me = ThreadTarget::current();
        std::thread::spawn(move || {
            me.send(Signal::TERM).unwrap();
            me.send(Signal::HUP).unwrap();
        })
        .join()
        .unwrap();

        poll.poll(&mut events, Some(Duration::from_secs(30)))
            .unwrap();
        let ev = events.iter().next().expect("the signal fd became readable");
        assert_eq!(ev.token(), Token(7));
        assert!(ev.is_readable());
        // Standard signals are dequeued lowest number first.
        let first = sfd.read().unwrap().unwrap();
        let second = sfd.read().unwrap().unwrap();
        assert_eq!(
            (first.signal(), second.signal()),
            (Signal::HUP, Signal::TERM)
        );
        assert_eq!(first.sender_pid(), std::process::id());
        // SAFETY: getuid cannot fail.
        assert_eq!(first.sender_uid(), unsafe { libc::getuid() });
        assert_eq!(first.code(), libc::SI_TKILL);
        assert_eq!(sfd.read().unwrap(), None); // drained: WouldBlock became None
    })
    .join()
    .unwrap();
}

#[test]
fn signals_outside_the_set_do_not_show_up_on_the_fd() {
    std::thread::spawn(|| {
        let sfd = SignalFd::new(&SignalSet::default().with(Signal::USR2)).unwrap();
        // WINCH is ignored by default, so sending it to this thread is harmless.
        ThreadTarget::current().send(Signal::WINCH).unwrap();
        assert_eq!(sfd.read().unwrap(), None);
        ThreadTarget::current().send(Signal::USR2).unwrap();
        assert_eq!(sfd.read().unwrap().map(|i| i.signal()), Some(Signal::USR2));
    })
    .join()
    .unwrap();
}

#[test]
fn a_child_spawned_from_a_signal_blocking_thread_starts_with_an_empty_mask() {
    std::thread::spawn(|| {
        let _sfd = SignalFd::new(&SignalSet::default().with(Signal::TERM)).unwrap();
        let mut child =
            Process::spawn(ProcessOptions::new("sleep").arg("30").stdin(Redirect::Null)).unwrap();
        // If the child had inherited our blocked SIGTERM, this would not end it.
        child.signal(Signal::TERM).unwrap();
        assert_eq!(
            child.wait_timeout(Duration::from_secs(30)).unwrap(),
            Some(ExitStatus::Signaled(Signal::TERM))
        );
    })
    .join()
    .unwrap();
}
