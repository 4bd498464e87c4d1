//! A loom model of the promotion protocol (run with
//! `RUSTFLAGS="--cfg loom" cargo test -p leader-followers --release --test it loom`).
//!
//! The engine's leader/followers loop, reduced to its synchronisation: a state mutex, the
//! followers' condition variable, a ready set with rounds, per-handle busy/queued/pending state,
//! and a "kernel" (the demultiplexer) that the leader waits on without the state lock, woken by
//! new readiness or by the waker. Loom explores every interleaving (within a preemption bound)
//! and fails on a deadlock (a lost wakeup leaves a thread waiting forever), on two upcalls of
//! one handle overlapping, and on an event that is never processed.
//! It is a model of the protocol, written beside the engine, not the engine itself: the engine
//! uses parking_lot and mio, which loom cannot instrument.

use std::collections::VecDeque;

use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;

const HANDLES: usize = 2;

struct State {
    polling: bool,
    followers: usize,
    round: usize,
    ready: VecDeque<usize>,
    busy: [bool; HANDLES],
    queued: [bool; HANDLES],
    pending: [u32; HANDLES],
    processed: usize,
    total: usize,
    ended: bool,
}

struct Kernel {
    events: Vec<usize>,
    woken: bool,
    ended: bool,
}

struct Pool {
    state: Mutex<State>,
    followers_cv: Condvar,
    kernel: Mutex<Kernel>,
    kernel_cv: Condvar,
    in_upcall: [AtomicBool; HANDLES],
    /// With `blocking`, handle 0's upcall waits until handle 1's upcall opens the gate: a
    /// blocking upcall that only another pool thread can release.
    blocking: bool,
    gate: Mutex<bool>,
    gate_cv: Condvar,
}

impl Pool {
    fn new(total: usize, blocking: bool) -> Arc<Pool> {
        Arc::new(Pool {
            state: Mutex::new(State {
                polling: false,
                followers: 0,
                round: 0,
                ready: VecDeque::new(),
                busy: [false; HANDLES],
                queued: [false; HANDLES],
                pending: [0; HANDLES],
                processed: 0,
                total,
                ended: false,
            }),
            followers_cv: Condvar::new(),
            kernel: Mutex::new(Kernel {
                events: Vec::new(),
                woken: false,
                ended: false,
            }),
            kernel_cv: Condvar::new(),
            in_upcall: [AtomicBool::new(false), AtomicBool::new(false)],
            blocking,
            gate: Mutex::new(false),
            gate_cv: Condvar::new(),
        })
    }

    /// Work was added: an idle follower takes it, else the leader is woken from its wait.
    fn kick(&self, st: &mut State) {
        if st.followers > 0 {
            self.followers_cv.notify_one();
        } else if st.polling {
            let mut k = self.kernel.lock().unwrap();
            k.woken = true;
            self.kernel_cv.notify_one();
        }
    }

    /// Queues `h` when it is idle and has work; wakes someone only when asked (work from
    /// outside the pool), as a leader keeps what it demultiplexed and promotes one at a time.
    fn make_runnable(&self, st: &mut State, h: usize, wake: bool) {
        if !st.busy[h] && !st.queued[h] && st.pending[h] > 0 {
            st.queued[h] = true;
            st.ready.push_back(h);
            if wake {
                self.kick(st);
            }
        }
    }

    fn end(&self, st: &mut State) {
        st.ended = true;
        self.followers_cv.notify_all();
        let mut k = self.kernel.lock().unwrap();
        k.ended = true;
        self.kernel_cv.notify_all();
    }

    /// A pool thread: follower, leader, processing, and back.
    fn thread(&self) {
        let mut st = self.state.lock().unwrap();
        loop {
            if st.ended {
                break;
            }
            let idle = st.ready.is_empty();
            if st.round > 0 || st.polling || idle {
                if let Some(h) = st.ready.pop_front() {
                    st.round = st.round.saturating_sub(1);
                    st.queued[h] = false;
                    if st.busy[h] {
                        continue;
                    }
                    st.busy[h] = true;
                    st.pending[h] -= 1;
                    // Promote a follower before processing.
                    if !st.polling && st.followers > 0 {
                        self.followers_cv.notify_one();
                    }
                    drop(st);
                    assert!(
                        !self.in_upcall[h].swap(true, Ordering::SeqCst),
                        "two upcalls of one handle overlap"
                    );
                    self.upcall(h);
                    self.in_upcall[h].store(false, Ordering::SeqCst);
                    st = self.state.lock().unwrap();
                    st.busy[h] = false;
                    st.processed += 1;
                    self.make_runnable(&mut st, h, false);
                    if st.processed == st.total {
                        self.end(&mut st);
                    }
                    continue;
                }
            }
            if st.polling {
                st.followers += 1;
                st = self.followers_cv.wait(st).unwrap();
                st.followers -= 1;
                continue;
            }
            // Lead: wait on the kernel without the state lock.
            st.polling = true;
            let nonblocking = !idle;
            drop(st);
            let events = {
                let mut k = self.kernel.lock().unwrap();
                while !nonblocking && k.events.is_empty() && !k.woken && !k.ended {
                    k = self.kernel_cv.wait(k).unwrap();
                }
                k.woken = false;
                std::mem::take(&mut k.events)
            };
            st = self.state.lock().unwrap();
            st.polling = false;
            for h in events {
                st.pending[h] += 1;
                self.make_runnable(&mut st, h, false);
            }
            st.round = st.ready.len();
        }
    }

    fn upcall(&self, h: usize) {
        if !self.blocking {
            return;
        }
        let mut open = self.gate.lock().unwrap();
        if h == 0 {
            while !*open {
                open = self.gate_cv.wait(open).unwrap();
            }
        } else {
            *open = true;
            self.gate_cv.notify_all();
        }
    }

    /// Readiness arrives on handle `h` (the kernel's side).
    fn readiness(&self, h: usize) {
        let mut k = self.kernel.lock().unwrap();
        k.events.push(h);
        self.kernel_cv.notify_one();
    }

    /// A notification for `h` from another thread (the Remote's side).
    fn notify(&self, h: usize) {
        let mut st = self.state.lock().unwrap();
        st.pending[h] += 1;
        self.make_runnable(&mut st, h, true);
    }
}

fn model(
    kernel_events: &'static [usize],
    notifications: &'static [usize],
    threads: usize,
    blocking: bool,
) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(2);
    builder.check(move || {
        let pool = Pool::new(kernel_events.len() + notifications.len(), blocking);
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let pool = pool.clone();
                thread::spawn(move || pool.thread())
            })
            .collect();
        let injector = {
            let pool = pool.clone();
            thread::spawn(move || {
                for &h in kernel_events {
                    pool.readiness(h);
                }
            })
        };
        for &h in notifications {
            pool.notify(h);
        }
        injector.join().unwrap();
        for w in workers {
            w.join().unwrap();
        }
        let st = pool.state.lock().unwrap();
        assert_eq!(st.processed, st.total, "an event was lost");
    });
}

#[test]
fn loom_two_threads_one_handle_readiness_and_notification() {
    model(&[0], &[0], 2, false);
}

#[test]
fn loom_two_threads_two_handles_readiness() {
    model(&[0, 1], &[], 2, false);
}

#[test]
fn loom_two_threads_busy_handle_gets_more_work() {
    model(&[0, 0], &[1], 2, false);
}

/// Handle 0's upcall blocks until handle 1 is processed: only a promoted follower can do it,
/// so a missing promotion (or a lost wakeup) deadlocks, and loom reports it.
#[test]
fn loom_blocked_leader_is_relieved_by_a_promoted_follower() {
    model(&[0, 1], &[], 2, true);
}

/// The same with the second event posted as a notification from another thread.
#[test]
fn loom_blocked_leader_and_a_notification() {
    model(&[0], &[1], 2, true);
}
