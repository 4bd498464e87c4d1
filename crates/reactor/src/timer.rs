//! The timer queue: an indexed binary heap with O(log n) schedule, cancel and expiry, used by
//! the [`Reactor`](crate::Reactor) and by the thread pools of the `leader-followers` crate.
//!
//! A timer is in one of three states between [`schedule`](TimerQueue::schedule) and the moment
//! it leaves the queue:
//!
//! - *waiting*: in the heap, until its deadline;
//! - *expired*: taken out of the heap by [`expire`](TimerQueue::expire), its ACT still held by
//!   the queue, until the dispatcher can upcall its owner (a thread pool keeps it queued on a
//!   busy owner meanwhile);
//! - *firing*: its ACT lent to the timeout upcall by [`take_act`](TimerQueue::take_act), until
//!   [`finish`](TimerQueue::finish) takes the ACT back and re-arms a periodic timer.
//!
//! Only a waiting timer is in the heap, so a periodic timer never expires again before its
//! upcall has finished. A cancel takes the timer out of the queue in any state: it gives a
//! waiting or expired timer's ACT back, and a firing timer is not re-armed.
//!
//! Each owner (a registration) keeps the head of a doubly linked list of its timers, threaded
//! through the queue's entries: the queue reports every change of that head as a [`Head`], and
//! [`cancel_list`](TimerQueue::cancel_list) cancels all of an owner's timers without a scan.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use reactor::Token;
//! use reactor::timer::{Finished, Head, TimerQueue};
//!
//! let secs = Duration::from_secs;
//! let owner = Token::new(0, 0);
//! let mut head = None; // kept by the owner, beside its other state
//! let mut timers = TimerQueue::with_limit(64);
//! let t0 = Instant::now();
//!
//! let beat = timers.schedule(owner, head, t0 + secs(1), Some(secs(1)), Box::new(0u32)).unwrap();
//! head = Some(beat);
//! let bye = timers.schedule(owner, head, t0 + secs(9), None, Box::new("bye")).unwrap();
//! head = Some(bye);
//!
//! // At t0 + 1 s the heartbeat expires; its ACT is lent to the upcall, then given back.
//! let mut expired = Vec::new();
//! timers.expire(t0 + secs(1), &mut expired);
//! assert_eq!((expired[0].id, expired[0].owner), (beat, owner));
//! let mut act = timers.take_act(beat).unwrap();
//! *act.downcast_mut::<u32>().unwrap() += 1; // what the upcall does with it
//! assert!(matches!(timers.finish(beat, act, t0 + secs(1)), Finished::Rearmed));
//! assert_eq!(timers.next_deadline(), Some(t0 + secs(2)));
//!
//! // A cancel gives the ACT back and says how the owner's list head moves.
//! let gone = timers.cancel(bye).unwrap();
//! assert_eq!(*gone.act.unwrap().downcast::<&str>().unwrap(), "bye");
//! assert_eq!(gone.head, Head::Becomes(Some(beat)));
//! if let Head::Becomes(new) = gone.head {
//!     head = new;
//! }
//!
//! // The owner closes: its remaining timers go, their ACTs handed to the closure.
//! let mut acts = Vec::new();
//! timers.cancel_list(head, |act| acts.push(act));
//! assert_eq!(*acts[0].downcast_ref::<u32>().unwrap(), 1);
//! assert!(timers.is_empty());
//! ```

use std::time::{Duration, Instant};

use pattern_core::{Act, Slab, TimerId, Token};

#[derive(Debug)]
struct Entry {
    deadline: Instant,
    /// Tie-breaker: timers with equal deadlines expire in scheduling order.
    seq: u64,
    interval: Option<Duration>,
    owner: Token,
    /// `None` while the ACT is lent to a running timeout upcall.
    act: Option<Act>,
    /// Position in `heap`, or `NOT_QUEUED` once the timer expired.
    pos: usize,
    /// The owner's other timers, as a doubly linked list whose head the owner keeps: closing
    /// a handler cancels its timers without a scan, and cancelling one unlinks it in O(1).
    prev: Option<TimerId>,
    next: Option<TimerId>,
}

/// How an owner's list head changes when one of its timers leaves the queue.
///
/// The owner stores the head of its list of timers (`Option<TimerId>`, `None` for no timers)
/// and passes it to [`TimerQueue::schedule`]; whenever a timer leaves the queue the owner
/// applies the `Head` it is given, so that the head it stores stays the first of its timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Head {
    /// The timer was not the head: the owner's head stays.
    Unchanged,
    /// The timer was the head: the owner's head becomes this (`None` when it had no other).
    Becomes(Option<TimerId>),
}

/// A timer taken out of the queue by [`TimerQueue::cancel`].
#[derive(Debug)]
pub struct Cancelled {
    /// The timer's ACT, or `None` when it is lent to the timer's running upcall (it comes
    /// back through [`TimerQueue::finish`], as [`Finished::Gone`]).
    pub act: Option<Act>,
    /// The registration the timer belonged to.
    pub owner: Token,
    /// The change to the owner's list head.
    pub head: Head,
}

/// A timer that [`TimerQueue::expire`] took out of the heap.
///
/// Its id stays valid until [`TimerQueue::finish`] (or a cancel): lend its ACT to the upcall
/// with [`TimerQueue::take_act`], which answers `None` if the timer was cancelled meanwhile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expired {
    /// The timer.
    pub id: TimerId,
    /// The registration to upcall.
    pub owner: Token,
}

/// What [`TimerQueue::finish`] did with a timer whose upcall returned.
#[derive(Debug)]
pub enum Finished {
    /// The timer is periodic: it waits in the heap again, holding its ACT.
    Rearmed,
    /// The timer was a one-shot: it left the queue. Its ACT comes back for the caller to drop
    /// (after releasing any lock it holds: dropping an ACT runs user code).
    Fired {
        /// The ACT the upcall had.
        act: Act,
        /// The change to the owner's list head.
        head: Head,
    },
    /// No timer of that id was firing: it was cancelled during its upcall (which already
    /// reported the change to the owner's list head). The ACT comes back, to be dropped.
    Gone(Act),
}

const NOT_QUEUED: usize = usize::MAX;

#[derive(Debug, Clone, Copy)]
struct HeapItem {
    /// Deadline, then scheduling order.
    key: (Instant, u64),
    id: TimerId,
}

/// Pending timers in a binary min-heap of slab indices, at most `limit` of them.
///
/// Each entry knows its heap position, so cancelling removes it at once instead of leaving a
/// tombstone: the heap never holds more than the waiting timers, and a loop that schedules and
/// cancels timers (idle timeouts, typically) does not grow it. Schedule, cancel and expiry are
/// O(log n); timers with equal deadlines expire in scheduling order. See the
/// [module docs](self) for the states a timer goes through and an example.
#[derive(Debug)]
pub struct TimerQueue {
    entries: Slab<Entry>,
    /// The heap keeps each timer's key beside its id, so that comparisons while sifting read
    /// only this array and not the (much larger, scattered) entries.
    heap: Vec<HeapItem>,
    seq: u64,
}

fn slab_token(id: TimerId) -> Token {
    Token::new(id.index(), id.generation())
}

impl TimerQueue {
    /// An empty queue that holds at most `limit` timers.
    pub fn with_limit(limit: usize) -> Self {
        TimerQueue {
            entries: Slab::with_limit(limit),
            heap: Vec::new(),
            seq: 0,
        }
    }

    /// The most timers the queue holds.
    pub fn limit(&self) -> usize {
        self.entries.limit()
    }

    /// Timers in the queue: waiting, expired or firing.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the queue holds no timer.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Timers waiting in the heap for their deadline (expired and firing ones excluded).
    pub fn waiting(&self) -> usize {
        self.heap.len()
    }

    /// Schedules a timer for `owner`, due at `deadline` and then every `interval` if given;
    /// `head` is the owner's list head, and the new timer becomes the head (the owner stores
    /// the id returned as its new head). When the queue is full the ACT is handed back.
    ///
    /// # Panics
    ///
    /// If `head` names no timer in the queue: the owner lost track of its list.
    pub fn schedule(
        &mut self,
        owner: Token,
        head: Option<TimerId>,
        deadline: Instant,
        interval: Option<Duration>,
        act: Act,
    ) -> Result<TimerId, Act> {
        self.seq += 1;
        let entry = Entry {
            deadline,
            seq: self.seq,
            interval,
            owner,
            act: Some(act),
            pos: 0,
            prev: None,
            next: head,
        };
        let t = self
            .entries
            .insert(entry)
            .map_err(|e| e.act.expect("act just stored"))?;
        let id = TimerId::new(t.index(), t.generation());
        if let Some(h) = head {
            let first = self
                .entries
                .get_mut(slab_token(h))
                .expect("`head` names a timer in the queue");
            debug_assert!(first.prev.is_none(), "`head` is the first of its list");
            first.prev = Some(id);
        }
        self.push(id);
        Ok(id)
    }

    /// Takes a timer out of the queue, whatever its state; `None` when `id` names no timer
    /// (it fired, was cancelled, or never existed). The ACT comes back unless it is lent to the
    /// timer's running upcall: then the timer is not re-armed, and
    /// [`finish`](Self::finish) hands the ACT back as [`Finished::Gone`].
    pub fn cancel(&mut self, id: TimerId) -> Option<Cancelled> {
        let entry = self.entries.remove(slab_token(id))?;
        if entry.pos != NOT_QUEUED {
            self.remove_at(entry.pos);
        }
        let head = self.unlink(entry.prev, entry.next);
        Some(Cancelled {
            act: entry.act,
            owner: entry.owner,
            head,
        })
    }

    /// Cancels every timer of the list starting at `head` (its owner is closing), in O(k log n)
    /// for k timers, and hands each ACT not lent to an upcall to `acts` (pass `drop` to drop
    /// them at once, or collect them to drop later).
    ///
    /// Given a timer further down an owner's list, it cancels that timer and the ones after
    /// it, and the list keeps the ones before.
    pub fn cancel_list(&mut self, head: Option<TimerId>, mut acts: impl FnMut(Act)) {
        let mut next = head;
        let mut first = true;
        while let Some(id) = next {
            let Some(entry) = self.entries.remove(slab_token(id)) else {
                break;
            };
            if std::mem::take(&mut first)
                && let Some(p) = entry.prev
            {
                self.entry_mut(p).next = None;
            }
            if entry.pos != NOT_QUEUED {
                self.remove_at(entry.pos);
            }
            if let Some(act) = entry.act {
                acts(act);
            }
            next = entry.next;
        }
    }

    fn unlink(&mut self, prev: Option<TimerId>, next: Option<TimerId>) -> Head {
        if let Some(n) = next {
            self.entry_mut(n).prev = prev;
        }
        match prev {
            Some(p) => {
                self.entry_mut(p).next = next;
                Head::Unchanged
            }
            None => Head::Becomes(next),
        }
    }

    /// Changes a timer's interval, effective when it is next re-armed (`None`: it leaves the
    /// queue after its next upcall). `false` when `id` names no timer.
    pub fn set_interval(&mut self, id: TimerId, interval: Option<Duration>) -> bool {
        match self.entries.get_mut(slab_token(id)) {
            Some(e) => {
                e.interval = interval;
                true
            }
            None => false,
        }
    }

    /// The earliest deadline of a waiting timer.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.heap.first().map(|item| item.key.0)
    }

    /// Takes every waiting timer due at `now` out of the heap, earliest first, and appends
    /// them to `out`. Their ids stay valid (so [`take_act`](Self::take_act) and
    /// [`cancel`](Self::cancel) work on them) until [`finish`](Self::finish).
    pub fn expire(&mut self, now: Instant, out: &mut Vec<Expired>) {
        while let Some(&HeapItem {
            key: (deadline, _),
            id,
        }) = self.heap.first()
        {
            if deadline > now {
                break;
            }
            let owner = self.entry(id).owner;
            self.remove_at(0);
            out.push(Expired { id, owner });
        }
    }

    /// Lends the ACT of an expired timer to its upcall; `None` when the timer was cancelled
    /// meanwhile (or is not expired, or its ACT is lent already). Give the ACT back with
    /// [`finish`](Self::finish).
    pub fn take_act(&mut self, id: TimerId) -> Option<Act> {
        self.entries
            .get_mut(slab_token(id))
            .filter(|e| e.pos == NOT_QUEUED)
            .and_then(|e| e.act.take())
    }

    /// Takes the ACT back after the upcall. A periodic timer waits in the heap again: at its
    /// previous deadline plus the interval, or at `now` plus the interval when the dispatcher
    /// fell that far behind, so that a late loop does not fire a burst of catch-up expiries.
    /// A one-shot leaves the queue and its ACT comes back, as does the ACT of a timer
    /// cancelled during its upcall.
    pub fn finish(&mut self, id: TimerId, act: Act, now: Instant) -> Finished {
        let Some(e) = self
            .entries
            .get_mut(slab_token(id))
            .filter(|e| e.act.is_none() && e.pos == NOT_QUEUED)
        else {
            return Finished::Gone(act);
        };
        match e.interval {
            Some(interval) => {
                let next = e.deadline + interval;
                e.deadline = if next < now { now + interval } else { next };
                e.act = Some(act);
                self.push(id);
                Finished::Rearmed
            }
            None => {
                let entry = self
                    .entries
                    .remove(slab_token(id))
                    .expect("found just above");
                let head = self.unlink(entry.prev, entry.next);
                Finished::Fired { act, head }
            }
        }
    }

    /// Removes every timer; their ACTs (those not lent) are dropped.
    pub fn clear(&mut self) {
        for t in self.entries.tokens() {
            self.entries.remove(t);
        }
        self.heap.clear();
    }

    fn entry(&self, id: TimerId) -> &Entry {
        self.entries
            .get(slab_token(id))
            .expect("the heap holds live timers")
    }

    fn entry_mut(&mut self, id: TimerId) -> &mut Entry {
        self.entries
            .get_mut(slab_token(id))
            .expect("the heap holds live timers")
    }

    fn less(&self, a: usize, b: usize) -> bool {
        self.heap[a].key < self.heap[b].key
    }

    fn push(&mut self, id: TimerId) {
        let pos = self.heap.len();
        let e = self.entry_mut(id);
        e.pos = pos;
        let key = (e.deadline, e.seq);
        self.heap.push(HeapItem { key, id });
        self.sift_up(pos);
    }

    fn remove_at(&mut self, pos: usize) {
        let removed = self.heap.swap_remove(pos).id;
        if let Some(e) = self.entries.get_mut(slab_token(removed)) {
            e.pos = NOT_QUEUED;
        }
        if pos < self.heap.len() {
            let moved = self.heap[pos].id;
            self.entry_mut(moved).pos = pos;
            self.sift_down(pos);
            self.sift_up(pos);
        }
    }

    fn sift_up(&mut self, mut pos: usize) {
        while pos > 0 {
            let parent = (pos - 1) / 2;
            if !self.less(pos, parent) {
                break;
            }
            self.swap(pos, parent);
            pos = parent;
        }
    }

    fn sift_down(&mut self, mut pos: usize) {
        loop {
            let left = 2 * pos + 1;
            if left >= self.heap.len() {
                break;
            }
            let right = left + 1;
            let child = if right < self.heap.len() && self.less(right, left) {
                right
            } else {
                left
            };
            if !self.less(child, pos) {
                break;
            }
            self.swap(pos, child);
            pos = child;
        }
    }

    fn swap(&mut self, a: usize, b: usize) {
        self.heap.swap(a, b);
        let (ia, ib) = (self.heap[a].id, self.heap[b].id);
        self.entry_mut(ia).pos = a;
        self.entry_mut(ib).pos = b;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner() -> Token {
        Token::new(1, 0)
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Follows the owner's list from `head` and checks both directions of every link.
    fn list(q: &TimerQueue, head: Option<TimerId>) -> Vec<TimerId> {
        let mut out = Vec::new();
        let mut prev = None;
        let mut next = head;
        while let Some(id) = next {
            let e = q.entry(id);
            assert_eq!(e.prev, prev, "back link of {id:?}");
            out.push(id);
            prev = Some(id);
            next = e.next;
        }
        out
    }

    /// Heap order, and every entry's position matches its place in the heap.
    fn check_heap(q: &TimerQueue) {
        for (pos, item) in q.heap.iter().enumerate() {
            assert_eq!(q.entry(item.id).pos, pos);
            let e = q.entry(item.id);
            assert_eq!(item.key, (e.deadline, e.seq));
            if pos > 0 {
                assert!(q.heap[(pos - 1) / 2].key <= item.key, "heap order at {pos}");
            }
        }
    }

    fn apply(head: &mut Option<TimerId>, change: Head) {
        if let Head::Becomes(h) = change {
            *head = h;
        }
    }

    #[test]
    fn expires_in_deadline_order_and_rearms_periodic() {
        let mut q = TimerQueue::with_limit(8);
        let t0 = Instant::now();
        let late = q
            .schedule(owner(), None, t0 + ms(20), None, Box::new(2u8))
            .unwrap();
        let soon = q
            .schedule(
                owner(),
                Some(late),
                t0 + ms(10),
                Some(ms(15)),
                Box::new(1u8),
            )
            .unwrap();
        let mut out = Vec::new();
        q.expire(t0 + ms(12), &mut out);
        assert_eq!(
            out,
            vec![Expired {
                id: soon,
                owner: owner()
            }]
        );
        // Expired but not re-armed: the next deadline is the one-shot's, and a later expiry
        // does not take the periodic timer out a second time.
        assert_eq!(q.next_deadline(), Some(t0 + ms(20)));
        assert_eq!((q.len(), q.waiting()), (2, 1));
        let act = q.take_act(soon).unwrap();
        out.clear();
        q.expire(t0 + ms(100), &mut out);
        assert_eq!(out.iter().map(|e| e.id).collect::<Vec<_>>(), vec![late]);
        assert!(matches!(
            q.finish(soon, act, t0 + ms(12)),
            Finished::Rearmed
        ));
        assert_eq!(q.next_deadline(), Some(t0 + ms(25)));
        check_heap(&q);
    }

    #[test]
    fn equal_deadlines_expire_in_scheduling_order() {
        let mut q = TimerQueue::with_limit(8);
        let t0 = Instant::now();
        let mut head = None;
        let ids: Vec<TimerId> = (0..5u8)
            .map(|i| {
                let id = q.schedule(owner(), head, t0, None, Box::new(i)).unwrap();
                head = Some(id);
                id
            })
            .collect();
        let mut out = Vec::new();
        q.expire(t0, &mut out);
        assert_eq!(out.iter().map(|e| e.id).collect::<Vec<_>>(), ids);
    }

    #[test]
    fn cancel_gives_the_act_back_unless_it_is_lent() {
        let mut q = TimerQueue::with_limit(8);
        let t0 = Instant::now();
        let a = q.schedule(owner(), None, t0, None, Box::new(7u8)).unwrap();
        let b = q
            .schedule(owner(), Some(a), t0, None, Box::new(8u8))
            .unwrap();
        let gone = q.cancel(a).unwrap();
        assert_eq!(*gone.act.unwrap().downcast::<u8>().unwrap(), 7);
        assert_eq!((gone.owner, gone.head), (owner(), Head::Unchanged));
        let mut out = Vec::new();
        q.expire(t0, &mut out);
        assert_eq!(out.iter().map(|e| e.id).collect::<Vec<_>>(), vec![b]);
        let lent = q.take_act(b).unwrap();
        assert!(q.take_act(b).is_none(), "lent once");
        let gone = q.cancel(b).unwrap();
        assert!(gone.act.is_none(), "the ACT is out in the upcall");
        assert_eq!(gone.head, Head::Becomes(None));
        match q.finish(b, lent, t0) {
            Finished::Gone(act) => assert_eq!(*act.downcast::<u8>().unwrap(), 8),
            other => panic!("a cancelled timer is not re-armed: {other:?}"),
        }
        assert!(q.is_empty());
        assert!(q.cancel(b).is_none());
    }

    #[test]
    fn cancelling_an_expired_timer_gives_its_act_back() {
        let mut q = TimerQueue::with_limit(8);
        let t0 = Instant::now();
        let a = q
            .schedule(owner(), None, t0, Some(ms(1)), Box::new(3u8))
            .unwrap();
        let mut out = Vec::new();
        q.expire(t0, &mut out);
        let gone = q.cancel(a).unwrap();
        assert_eq!(*gone.act.unwrap().downcast::<u8>().unwrap(), 3);
        assert!(q.take_act(a).is_none(), "skipped by whoever queued it");
        assert!(q.is_empty());
    }

    #[test]
    fn a_waiting_timer_lends_no_act() {
        let mut q = TimerQueue::with_limit(8);
        let t0 = Instant::now();
        let a = q.schedule(owner(), None, t0, None, Box::new(1u8)).unwrap();
        assert!(q.take_act(a).is_none());
        match q.finish(a, Box::new(2u8), t0) {
            Finished::Gone(act) => assert_eq!(*act.downcast::<u8>().unwrap(), 2),
            other => panic!("not firing: {other:?}"),
        }
        assert_eq!(q.waiting(), 1);
        check_heap(&q);
    }

    #[test]
    fn full_queue_gives_the_act_back() {
        let mut q = TimerQueue::with_limit(1);
        let t0 = Instant::now();
        let a = q.schedule(owner(), None, t0, None, Box::new(1u8)).unwrap();
        let back = q
            .schedule(owner(), Some(a), t0, None, Box::new(2u8))
            .unwrap_err();
        assert_eq!(*back.downcast::<u8>().unwrap(), 2);
        assert_eq!(list(&q, Some(a)), vec![a], "the list is untouched");
    }

    #[test]
    fn a_late_periodic_timer_rearms_from_now() {
        let mut q = TimerQueue::with_limit(8);
        let t0 = Instant::now();
        let a = q
            .schedule(owner(), None, t0 + ms(10), Some(ms(10)), Box::new(()))
            .unwrap();
        let mut out = Vec::new();
        // Less than an interval late: the period holds.
        q.expire(t0 + ms(15), &mut out);
        let act = q.take_act(a).unwrap();
        q.finish(a, act, t0 + ms(15));
        assert_eq!(q.next_deadline(), Some(t0 + ms(20)));
        // More than an interval late: one expiry, the next an interval from now.
        q.expire(t0 + ms(47), &mut out);
        let act = q.take_act(a).unwrap();
        q.finish(a, act, t0 + ms(47));
        assert_eq!(q.next_deadline(), Some(t0 + ms(57)));
    }

    #[test]
    fn schedule_and_cancel_churn_keeps_only_the_pending_timers() {
        let mut q = TimerQueue::with_limit(1 << 20);
        let t0 = Instant::now();
        let far = t0 + Duration::from_secs(3600);
        let mut head = None;
        for i in 0..10u64 {
            head = Some(
                q.schedule(owner(), head, far + ms(i), None, Box::new(i))
                    .unwrap(),
            );
        }
        for i in 0..100_000u64 {
            let id = q
                .schedule(owner(), head, far + ms(i % 977), None, Box::new(i))
                .unwrap();
            let gone = q.cancel(id).unwrap();
            assert_eq!(gone.head, Head::Becomes(head));
        }
        assert_eq!((q.len(), q.waiting()), (10, 10));
        assert!(
            q.heap.capacity() < 64,
            "the heap never held the cancelled timers"
        );
        // Many scheduled, then all cancelled: nothing stays behind.
        let mut ids = Vec::new();
        for i in 0..100_000u64 {
            let id = q
                .schedule(owner(), head, far + ms(i % 977), None, Box::new(i))
                .unwrap();
            head = Some(id);
            ids.push(id);
        }
        for id in ids.into_iter().rev() {
            apply(&mut head, q.cancel(id).unwrap().head);
        }
        assert_eq!((q.len(), q.waiting()), (10, 10));
        assert_eq!(list(&q, head).len(), 10);
        check_heap(&q);
    }

    #[test]
    fn the_owner_list_follows_cancels_and_finishes() {
        let mut q = TimerQueue::with_limit(16);
        let t0 = Instant::now();
        let mut head = None;
        let ids: Vec<TimerId> = (0..6u64)
            .map(|i| {
                let id = q
                    .schedule(owner(), head, t0 + ms(i), None, Box::new(i))
                    .unwrap();
                head = Some(id);
                id
            })
            .collect();
        // Newest first.
        assert_eq!(
            list(&q, head),
            ids.iter().rev().copied().collect::<Vec<_>>()
        );
        // Middle, then head, then tail.
        apply(&mut head, q.cancel(ids[3]).unwrap().head);
        apply(&mut head, q.cancel(ids[5]).unwrap().head);
        apply(&mut head, q.cancel(ids[0]).unwrap().head);
        assert_eq!(list(&q, head), vec![ids[4], ids[2], ids[1]]);
        // A one-shot that fires leaves the list too.
        let mut out = Vec::new();
        q.expire(t0 + ms(1), &mut out);
        let act = q.take_act(ids[1]).unwrap();
        match q.finish(ids[1], act, t0 + ms(1)) {
            Finished::Fired { act, head: change } => {
                assert_eq!(*act.downcast::<u64>().unwrap(), 1);
                apply(&mut head, change);
            }
            other => panic!("a one-shot leaves: {other:?}"),
        }
        assert_eq!(list(&q, head), vec![ids[4], ids[2]]);
        check_heap(&q);
    }

    #[test]
    fn cancel_list_takes_every_state_and_leaves_other_owners_alone() {
        let mut q = TimerQueue::with_limit(64);
        let t0 = Instant::now();
        let other = Token::new(2, 0);
        let (mut mine, mut theirs) = (None, None);
        for i in 0..10u64 {
            mine = Some(
                q.schedule(owner(), mine, t0 + ms(i), Some(ms(5)), Box::new(i))
                    .unwrap(),
            );
            theirs = Some(
                q.schedule(other, theirs, t0 + ms(i), None, Box::new(i))
                    .unwrap(),
            );
        }
        // Some expired, one of them firing.
        let mut out = Vec::new();
        q.expire(t0 + ms(3), &mut out);
        let firing = out.iter().find(|e| e.owner == owner()).unwrap().id;
        let lent = q.take_act(firing).unwrap();
        let mut handed = Vec::new();
        q.cancel_list(mine, |act| handed.push(*act.downcast::<u64>().unwrap()));
        handed.sort();
        assert_eq!(
            handed,
            vec![1, 2, 3, 4, 5, 6, 7, 8, 9],
            "all but the lent one"
        );
        assert!(matches!(
            q.finish(firing, lent, t0 + ms(3)),
            Finished::Gone(_)
        ));
        assert_eq!(q.len(), 10);
        assert_eq!(list(&q, theirs).len(), 10);
        check_heap(&q);
    }

    #[test]
    fn cancel_list_from_the_middle_keeps_the_front() {
        let mut q = TimerQueue::with_limit(8);
        let t0 = Instant::now();
        let mut head = None;
        let ids: Vec<TimerId> = (0..4u8)
            .map(|i| {
                let id = q.schedule(owner(), head, t0, None, Box::new(i)).unwrap();
                head = Some(id);
                id
            })
            .collect();
        q.cancel_list(Some(ids[1]), drop);
        assert_eq!(list(&q, head), vec![ids[3], ids[2]]);
        apply(&mut head, q.cancel(ids[2]).unwrap().head);
        assert_eq!(list(&q, head), vec![ids[3]]);
    }

    /// Random operations (a fixed LCG, so the run is reproducible) against a plain model: the
    /// heap order, positions, lists and ACTs stay right throughout.
    #[test]
    fn random_operations_match_a_model() {
        use std::collections::BTreeMap;

        #[derive(Debug, Clone, Copy, PartialEq)]
        enum State {
            Waiting,
            Expired,
            Firing,
        }
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut rand = move |n: u64| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) % n
        };
        let owners = [Token::new(1, 0), Token::new(2, 0), Token::new(3, 0)];
        let mut heads: [Option<TimerId>; 3] = [None; 3];
        // id -> (owner index, label, state)
        let mut model: BTreeMap<u64, (usize, u64, State)> = BTreeMap::new();
        let mut lent: Vec<(TimerId, Act)> = Vec::new();
        let mut q = TimerQueue::with_limit(200);
        let t0 = Instant::now();
        let mut now = t0;
        let key = |id: TimerId| (u64::from(id.generation()) << 32) | u64::from(id.index());
        let mut live = Vec::<TimerId>::new();
        for step in 0..20_000u64 {
            match rand(7) {
                0 | 1 => {
                    let o = rand(3) as usize;
                    let interval = (rand(3) == 0).then(|| ms(1 + rand(20)));
                    let deadline = now + ms(rand(50));
                    match q.schedule(owners[o], heads[o], deadline, interval, Box::new(step)) {
                        Ok(id) => {
                            heads[o] = Some(id);
                            model.insert(key(id), (o, step, State::Waiting));
                            live.push(id);
                        }
                        Err(act) => {
                            assert_eq!(q.len(), 200);
                            assert_eq!(*act.downcast::<u64>().unwrap(), step);
                        }
                    }
                }
                2 if !live.is_empty() => {
                    let id = live.swap_remove(rand(live.len() as u64) as usize);
                    let (o, label, state) = model.remove(&key(id)).unwrap();
                    let gone = q.cancel(id).unwrap();
                    assert_eq!(gone.owner, owners[o]);
                    match state {
                        State::Firing => assert!(gone.act.is_none()),
                        _ => assert_eq!(*gone.act.unwrap().downcast::<u64>().unwrap(), label),
                    }
                    apply(&mut heads[o], gone.head);
                    assert!(q.cancel(id).is_none());
                }
                3 => {
                    now += ms(rand(10));
                    let mut out = Vec::new();
                    q.expire(now, &mut out);
                    for e in out {
                        let m = model.get_mut(&key(e.id)).unwrap();
                        assert_eq!(m.2, State::Waiting);
                        assert_eq!(owners[m.0], e.owner);
                        m.2 = State::Expired;
                    }
                }
                4 => {
                    let expired: Vec<u64> = model
                        .iter()
                        .filter(|(_, m)| m.2 == State::Expired)
                        .map(|(k, _)| *k)
                        .collect();
                    if let Some(&k) = expired.first() {
                        let id = *live.iter().find(|id| key(**id) == k).unwrap();
                        let act = q.take_act(id).unwrap();
                        model.get_mut(&k).unwrap().2 = State::Firing;
                        lent.push((id, act));
                    }
                }
                5 if !lent.is_empty() => {
                    let (id, act) = lent.swap_remove(rand(lent.len() as u64) as usize);
                    match q.finish(id, act, now) {
                        Finished::Rearmed => {
                            model.get_mut(&key(id)).unwrap().2 = State::Waiting;
                        }
                        Finished::Fired { act, head } => {
                            let (o, label, _) = model.remove(&key(id)).unwrap();
                            assert_eq!(*act.downcast::<u64>().unwrap(), label);
                            apply(&mut heads[o], head);
                            live.retain(|l| *l != id);
                        }
                        Finished::Gone(_) => assert!(!model.contains_key(&key(id))),
                    }
                }
                6 if rand(50) == 0 => {
                    let o = rand(3) as usize;
                    q.cancel_list(heads[o].take(), drop);
                    model.retain(|_, m| m.0 != o);
                    live.retain(|id| model.contains_key(&key(*id)));
                }
                _ => {}
            }
            assert_eq!(q.len(), model.len());
            let waiting = model.values().filter(|m| m.2 == State::Waiting).count();
            assert_eq!(q.waiting(), waiting);
            if step % 97 == 0 {
                check_heap(&q);
                for (o, head) in heads.iter().enumerate() {
                    let on_list = list(&q, *head);
                    assert_eq!(on_list.len(), model.values().filter(|m| m.0 == o).count());
                    assert!(on_list.iter().all(|id| q.entry(*id).owner == owners[o]));
                }
            }
        }
    }
}
