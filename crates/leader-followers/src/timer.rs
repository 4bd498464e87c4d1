//! The pool's timer queue: a binary heap of deadlines over a generational table of timers.
//!
//! A timer is in one of three places: waiting in the heap, due (its id queued on its owner's
//! registration, waiting for the owner to be free), or firing (its ACT lent to the upcall).
//! Only a waiting timer has a live heap entry, so a periodic timer never fires twice at once.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use pattern_core::{Act, Slab, TimerId, Token};

struct Entry {
    owner: Token,
    deadline: Instant,
    interval: Option<Duration>,
    /// `None` while the timer fires (its ACT is lent to the upcall).
    act: Option<Act>,
    /// Bumped on every (re)arm; heap entries with an older value are stale.
    arm: u64,
}

/// Deadlines for every registration of one dispatcher.
pub(crate) struct TimerQueue {
    entries: Slab<Entry>,
    heap: BinaryHeap<Reverse<(Instant, u64, u64)>>,
    arms: u64,
}

fn id_of(t: Token) -> TimerId {
    TimerId::new(t.index(), t.generation())
}

fn token_of(id: TimerId) -> Token {
    Token::new(id.index(), id.generation())
}

impl TimerQueue {
    pub(crate) fn with_limit(limit: usize) -> Self {
        TimerQueue {
            entries: Slab::with_limit(limit),
            heap: BinaryHeap::new(),
            arms: 0,
        }
    }

    pub(crate) fn limit(&self) -> usize {
        self.entries.limit()
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    fn push(&mut self, id: TimerId) {
        self.arms += 1;
        let arm = self.arms;
        let entry = self
            .entries
            .get_mut(token_of(id))
            .expect("armed timer is live");
        entry.arm = arm;
        let bits = token_of(id).to_u64();
        self.heap.push(Reverse((entry.deadline, arm, bits)));
    }

    /// Schedules a timer for `owner`; gives the ACT back when the queue is full.
    pub(crate) fn schedule(
        &mut self,
        owner: Token,
        deadline: Instant,
        interval: Option<Duration>,
        act: Act,
    ) -> Result<TimerId, Act> {
        let entry = Entry {
            owner,
            deadline,
            interval,
            act: Some(act),
            arm: 0,
        };
        let id = id_of(
            self.entries
                .insert(entry)
                .map_err(|e| e.act.expect("just built"))?,
        );
        self.push(id);
        Ok(id)
    }

    /// The registration a timer belongs to.
    pub(crate) fn owner(&self, id: TimerId) -> Option<Token> {
        self.entries.get(token_of(id)).map(|e| e.owner)
    }

    /// Removes a timer. `Some(act)` for a waiting or due timer, `Some(None)` for a timer whose
    /// ACT is lent to a running upcall (it is dropped when the upcall returns), `None` when the
    /// timer does not exist.
    pub(crate) fn cancel(&mut self, id: TimerId) -> Option<Option<Act>> {
        self.entries.remove(token_of(id)).map(|e| e.act)
    }

    /// Changes a timer's interval.
    pub(crate) fn set_interval(&mut self, id: TimerId, interval: Option<Duration>) -> bool {
        match self.entries.get_mut(token_of(id)) {
            Some(e) => {
                e.interval = interval;
                true
            }
            None => false,
        }
    }

    fn drop_stale_top(&mut self) {
        while let Some(Reverse((_, arm, bits))) = self.heap.peek() {
            match self.entries.get(Token::from_u64(*bits)) {
                Some(e) if e.arm == *arm && e.act.is_some() => return,
                _ => {
                    self.heap.pop();
                }
            }
        }
    }

    /// The earliest deadline of a waiting timer.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        self.drop_stale_top();
        self.heap.peek().map(|Reverse((d, _, _))| *d)
    }

    /// Takes every timer whose deadline has passed out of the heap: they become due.
    pub(crate) fn expire(&mut self, now: Instant, out: &mut Vec<(TimerId, Token)>) {
        loop {
            self.drop_stale_top();
            match self.heap.peek() {
                Some(Reverse((d, _, bits))) if *d <= now => {
                    let t = Token::from_u64(*bits);
                    self.heap.pop();
                    let entry = self.entries.get_mut(t).expect("checked live");
                    // A due timer has no live heap entry until it is re-armed.
                    entry.arm = 0;
                    out.push((id_of(t), entry.owner));
                }
                _ => return,
            }
        }
    }

    /// Lends a due timer's ACT to its upcall; `None` when it was cancelled meanwhile.
    pub(crate) fn take_act(&mut self, id: TimerId) -> Option<Act> {
        self.entries.get_mut(token_of(id))?.act.take()
    }

    /// Gives the ACT back after the upcall: a periodic timer is re-armed one interval after its
    /// deadline (or after `now`, when it fell behind); a one-shot is removed. Returns whether
    /// the timer is still pending.
    pub(crate) fn finish(&mut self, id: TimerId, act: Act, now: Instant) -> bool {
        let Some(entry) = self.entries.get_mut(token_of(id)) else {
            return false;
        };
        match entry.interval {
            Some(interval) => {
                entry.deadline = (entry.deadline + interval).max(now);
                entry.act = Some(act);
                self.push(id);
                true
            }
            None => {
                self.entries.remove(token_of(id));
                false
            }
        }
    }

    /// Drops every timer.
    pub(crate) fn clear(&mut self) {
        for t in self.entries.tokens() {
            self.entries.remove(t);
        }
        self.heap.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner() -> Token {
        Token::new(1, 0)
    }

    #[test]
    fn expires_in_deadline_order_and_rearms_periodic() {
        let mut q = TimerQueue::with_limit(8);
        let t0 = Instant::now();
        let late = q
            .schedule(owner(), t0 + Duration::from_millis(20), None, Box::new(2u8))
            .unwrap();
        let soon = q
            .schedule(
                owner(),
                t0 + Duration::from_millis(10),
                Some(Duration::from_millis(15)),
                Box::new(1u8),
            )
            .unwrap();
        let mut out = Vec::new();
        q.expire(t0 + Duration::from_millis(12), &mut out);
        assert_eq!(out, vec![(soon, owner())]);
        // Due but not re-armed: the next deadline is the one-shot's.
        assert_eq!(q.next_deadline(), Some(t0 + Duration::from_millis(20)));
        let act = q.take_act(soon).unwrap();
        assert!(q.finish(soon, act, t0 + Duration::from_millis(12)));
        out.clear();
        q.expire(t0 + Duration::from_millis(30), &mut out);
        assert_eq!(out, vec![(late, owner()), (soon, owner())]);
    }

    #[test]
    fn cancel_gives_the_act_back_unless_it_is_lent() {
        let mut q = TimerQueue::with_limit(8);
        let t0 = Instant::now();
        let a = q.schedule(owner(), t0, None, Box::new(7u8)).unwrap();
        let b = q.schedule(owner(), t0, None, Box::new(8u8)).unwrap();
        let act = q.cancel(a).unwrap().unwrap();
        assert_eq!(*act.downcast::<u8>().unwrap(), 7);
        let mut out = Vec::new();
        q.expire(t0, &mut out);
        assert_eq!(out, vec![(b, owner())]);
        let lent = q.take_act(b).unwrap();
        assert!(
            q.cancel(b).unwrap().is_none(),
            "the ACT is out in the upcall"
        );
        assert!(!q.finish(b, lent, t0), "a cancelled timer is not re-armed");
        assert_eq!(q.len(), 0);
        assert!(q.cancel(b).is_none());
    }

    #[test]
    fn full_queue_gives_the_act_back() {
        let mut q = TimerQueue::with_limit(1);
        let t0 = Instant::now();
        q.schedule(owner(), t0, None, Box::new(1u8)).unwrap();
        let back = q.schedule(owner(), t0, None, Box::new(2u8)).unwrap_err();
        assert_eq!(*back.downcast::<u8>().unwrap(), 2);
    }
}
