//! The timer queue: an indexed binary heap, O(log n) schedule, cancel and expiry.

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
    /// Position in `heap`, or `NOT_QUEUED` while the timer is firing.
    pos: usize,
    /// The owner's other timers, as a doubly linked list whose head the owner keeps: closing
    /// a handler cancels its timers without a scan, and cancelling one unlinks it in O(1).
    prev: Option<TimerId>,
    next: Option<TimerId>,
}

/// How the owner's list head changes when a timer leaves the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Head {
    /// The timer was not the head: the owner's head stays.
    Unchanged,
    /// The timer was the head: the owner's head becomes this.
    Becomes(Option<TimerId>),
}

/// A timer taken out of the queue by a cancel.
#[derive(Debug)]
pub(crate) struct Cancelled {
    /// Its ACT, unless lent to its running upcall.
    pub(crate) act: Option<Act>,
    pub(crate) owner: Token,
    pub(crate) head: Head,
}

const NOT_QUEUED: usize = usize::MAX;

#[derive(Debug, Clone, Copy)]
struct HeapItem {
    /// Deadline, then scheduling order.
    key: (Instant, u64),
    id: TimerId,
}

/// A timer that expired: who owns it and the ACT to lend to the upcall.
#[derive(Debug)]
pub(crate) struct Expired {
    pub(crate) id: TimerId,
    pub(crate) owner: Token,
}

/// Pending timers in a binary min-heap of slab indices; each entry knows its heap position,
/// so cancelling removes it at once instead of leaving a tombstone: the queue never holds
/// more than the pending timers.
#[derive(Debug)]
pub(crate) struct TimerQueue {
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
    pub(crate) fn with_limit(limit: usize) -> Self {
        TimerQueue {
            entries: Slab::with_limit(limit),
            heap: Vec::new(),
            seq: 0,
        }
    }

    pub(crate) fn limit(&self) -> usize {
        self.entries.limit()
    }

    /// Number of timers scheduled (pending or firing).
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Schedules a timer for `owner`, whose list of timers starts at `head`; the new timer
    /// becomes the head of that list.
    pub(crate) fn schedule(
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
            self.entry_mut(h).prev = Some(id);
        }
        self.push(id);
        Ok(id)
    }

    /// Removes a timer. Gives its ACT back, unless the ACT is lent to the timer's running
    /// upcall (then the timer is still removed and will not repeat).
    pub(crate) fn cancel(&mut self, id: TimerId) -> Option<Cancelled> {
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

    /// Cancels every timer of the list starting at `head` (its owner is closing).
    pub(crate) fn cancel_list(&mut self, mut head: Option<TimerId>) {
        while let Some(id) = head {
            let Some(entry) = self.entries.remove(slab_token(id)) else {
                break;
            };
            if entry.pos != NOT_QUEUED {
                self.remove_at(entry.pos);
            }
            head = entry.next;
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

    pub(crate) fn set_interval(&mut self, id: TimerId, interval: Option<Duration>) -> bool {
        match self.entries.get_mut(slab_token(id)) {
            Some(e) => {
                e.interval = interval;
                true
            }
            None => false,
        }
    }

    /// The earliest pending deadline.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.heap.first().map(|item| item.key.0)
    }

    /// Takes every timer due at `now` out of the heap, earliest first. Their entries stay in
    /// the table (so ids stay valid) until [`finish`](Self::finish).
    pub(crate) fn expire(&mut self, now: Instant, out: &mut Vec<Expired>) {
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

    /// Lends the ACT of a firing timer to its upcall.
    pub(crate) fn take_act(&mut self, id: TimerId) -> Option<Act> {
        self.entries
            .get_mut(slab_token(id))
            .and_then(|e| e.act.take())
    }

    /// After the upcall: a periodic timer that was not cancelled is queued again with its ACT
    /// (at its previous deadline plus the interval, or `now` plus the interval when it fell
    /// behind, so that a late loop does not fire a burst); a one-shot one leaves the queue,
    /// and what that changes in its owner's list is returned.
    pub(crate) fn finish(&mut self, id: TimerId, act: Act, now: Instant) -> Option<Cancelled> {
        let e = self.entries.get_mut(slab_token(id))?;
        match e.interval {
            Some(interval) => {
                let next = e.deadline + interval;
                e.deadline = if next < now { now + interval } else { next };
                e.act = Some(act);
                self.push(id);
                None
            }
            None => self.cancel(id),
        }
    }

    /// Removes every timer; their ACTs are dropped.
    pub(crate) fn clear(&mut self) {
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
