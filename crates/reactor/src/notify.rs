//! The notification queue: an unbounded user-space queue behind one wakeup.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use parking_lot::Mutex;
use pattern_core::{DispatchError, Job, Message, Remote, Token};
use wrapper_facade::notify::EventFd;

/// One posted item.
pub(crate) enum Notice {
    /// A message for a handler's `handle_notify`.
    Message(Token, Message),
    /// A closure to run on the loop.
    Job(Job),
}

/// State shared between the loop and every [`ReactorRemote`].
pub(crate) struct Shared {
    queue: Mutex<VecDeque<Notice>>,
    /// The loop's wake-up: registered with the loop's poll, readable when written.
    waker: EventFd,
    /// Set when a wakeup is in flight, so that a burst of posts costs one `write` to the eventfd.
    woken: AtomicBool,
    ended: AtomicBool,
    closed: AtomicBool,
    /// The queue's length, kept beside it so that the loop learns "nothing posted" without
    /// taking the lock (it asks twice per iteration). Changed only under the lock.
    queued: AtomicUsize,
}

impl Shared {
    pub(crate) fn new(waker: EventFd) -> Self {
        Shared {
            queue: Mutex::new(VecDeque::new()),
            waker,
            woken: AtomicBool::new(false),
            ended: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            queued: AtomicUsize::new(0),
        }
    }

    pub(crate) fn push(&self, notice: Notice) -> Result<(), DispatchError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(DispatchError::ShutDown);
        }
        self.push_local(notice);
        self.wake();
        Ok(())
    }

    /// Pushes from the loop thread itself: the loop checks the queue before it waits, so no
    /// wakeup is needed.
    pub(crate) fn push_local(&self, notice: Notice) {
        let mut q = self.queue.lock();
        q.push_back(notice);
        self.queued.store(q.len(), Ordering::SeqCst);
    }

    pub(crate) fn wake(&self) {
        if !self.woken.swap(true, Ordering::SeqCst) {
            // A failed wake can only mean the eventfd counter is saturated, which the loop's
            // drain after each wake-up rules out; nothing else can fail on a live eventfd.
            let _ = self.waker.notify();
        }
    }

    /// Called by the loop when the wake-up fired: resets the eventfd's counter (one `read`), so
    /// that it never saturates and every later write raises a new edge.
    pub(crate) fn woke(&self) {
        let _ = self.waker.drain();
    }

    /// The wake-up's descriptor, for re-arming it on a backend that disarms what it reported.
    pub(crate) fn waker_fd(&self) -> std::os::fd::RawFd {
        std::os::fd::AsRawFd::as_raw_fd(&self.waker)
    }

    /// Called by the loop before it drains: posts from now on wake it again.
    pub(crate) fn rearm(&self) {
        self.woken.store(false, Ordering::SeqCst);
    }

    /// Takes up to `max` notices, in posting order.
    pub(crate) fn take(&self, max: usize, out: &mut VecDeque<Notice>) {
        if !self.has_pending() {
            return;
        }
        let mut q = self.queue.lock();
        let n = max.min(q.len());
        out.extend(q.drain(..n));
        self.queued.store(q.len(), Ordering::SeqCst);
    }

    /// Whether anything is queued. A post racing with this call is either seen here or wakes
    /// the loop: the loop re-arms the wakeup, then reads this count; a poster stores the count,
    /// then takes the wakeup. Both orders are sequentially consistent (a Dekker pair), so one
    /// side always sees the other's store.
    pub(crate) fn has_pending(&self) -> bool {
        self.queued.load(Ordering::SeqCst) > 0
    }

    /// Drops the messages pending for `token`; returns how many.
    pub(crate) fn purge(&self, token: Token) -> usize {
        let mut q = self.queue.lock();
        let before = q.len();
        q.retain(|n| !matches!(n, Notice::Message(t, _) if *t == token));
        self.queued.store(q.len(), Ordering::SeqCst);
        before - q.len()
    }

    pub(crate) fn end(&self) {
        self.ended.store(true, Ordering::Release);
        self.wake();
    }

    pub(crate) fn is_ended(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }

    pub(crate) fn reset(&self) {
        self.ended.store(false, Ordering::Release);
    }

    /// The reactor is gone: refuse new posts, drop what is queued.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let drained: Vec<Notice> = {
            let mut q = self.queue.lock();
            self.queued.store(0, Ordering::SeqCst);
            q.drain(..).collect()
        };
        drop(drained);
    }
}

/// A `Send + Sync + Clone` handle on a [`Reactor`](crate::Reactor): any thread posts
/// messages to handlers or closures to the loop, and ends it.
///
/// Posting never blocks on the loop and has no capacity limit (the queue is in user space,
/// behind a single eventfd wakeup), so a burst from many threads cannot deadlock against a
/// full pipe, which is a known hazard of ACE's pipe-based notification.
#[derive(Clone)]
pub struct ReactorRemote {
    pub(crate) shared: Arc<Shared>,
}

impl fmt::Debug for ReactorRemote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReactorRemote")
            .field("ended", &self.shared.is_ended())
            .field("pending", &self.shared.queue.lock().len())
            .finish()
    }
}

impl ReactorRemote {
    /// Drops the messages still queued for `token` (they will not be upcalled); returns how many.
    pub fn purge(&self, token: Token) -> usize {
        self.shared.purge(token)
    }

    /// Whether the loop was asked to end.
    pub fn is_done(&self) -> bool {
        self.shared.is_ended()
    }
}

impl Remote for ReactorRemote {
    fn post(&self, job: Job) -> Result<(), DispatchError> {
        self.shared.push(Notice::Job(job))
    }

    fn notify(&self, token: Token, message: Message) -> Result<(), DispatchError> {
        self.shared.push(Notice::Message(token, message))
    }

    fn end(&self) {
        self.shared.end();
    }
}
