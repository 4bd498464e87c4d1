//! The pools' wake-up protocol as a state machine without I/O: who is waiting, who was
//! already woken, and whom to wake when work appears or is taken.
//!
//! The engine keeps one [`Wakeup`] behind its state mutex and carries out the [`Wake`] each
//! decision returns (a condition-variable signal, a write to the poller's waker, a new
//! thread). The loom model in `tests/loom.rs` drives this same type under every
//! interleaving, which is why it is public (and hidden from the docs).
//!
//! The rule that keeps wake-ups from being lost: a follower that was signalled and has not yet
//! run is not counted again (two signals never go to one thread), and a thread that takes work
//! while more is queued and someone else polls wakes one more thread (a free follower, else
//! the poller), so queued work never waits behind a thread that blocks in its upcall.

/// Whom a decision wakes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Wake {
    /// Nobody: the work is covered by a thread already awake.
    Nobody,
    /// One waiting follower (or idle worker): signal the followers' condition variable once.
    Follower,
    /// The thread waiting on the demultiplexer: write to the waker.
    Poller,
    /// Nobody is free: start a thread if the pool may grow.
    Grow,
}

/// Which pool the decisions are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Leader/followers: the thread that polls also processes, so it may be woken for work.
    LeaderFollowers,
    /// Half-sync/half-async: the polling thread never processes; only workers take work.
    HalfSync,
    /// Leader/followers as POSA2 draws it: only the leader takes work (a follower waits until
    /// it is promoted), so work added while someone polls wakes the poller, never a follower.
    StrictLeaderFollowers,
}

/// The waiting threads of a pool, as the wake-up decisions need them.
#[derive(Debug)]
pub struct Wakeup {
    role: Role,
    /// Threads waiting on the followers' condition variable, signalled or not.
    followers: usize,
    /// Of those, the ones signalled that have not yet run: they will look for work, and must
    /// not be counted as free again (parking_lot's condition variable has no spurious
    /// wake-ups, so each signal wakes a thread still waiting, and each wakes once).
    signalled: usize,
    /// A thread waits on the demultiplexer.
    polling: bool,
    /// That wait blocks (a nonblocking look at the kernel needs no waking).
    blocking: bool,
    /// The poller was woken since its wait began.
    woken: bool,
}

impl Wakeup {
    /// Nobody waits yet.
    pub fn new(role: Role) -> Wakeup {
        Wakeup {
            role,
            followers: 0,
            signalled: 0,
            polling: false,
            blocking: false,
            woken: false,
        }
    }

    /// A thread is about to wait on the followers' condition variable.
    pub fn follower_waits(&mut self) {
        self.followers += 1;
    }

    /// A thread came back from waiting on the followers' condition variable.
    pub fn follower_runs(&mut self) {
        self.followers -= 1;
        self.signalled = self.signalled.saturating_sub(1);
    }

    /// Every follower was signalled at once (`notify_all`).
    pub fn all_followers_woken(&mut self) {
        self.signalled = self.followers;
    }

    /// Followers waiting and not yet signalled.
    pub fn free_followers(&self) -> usize {
        self.followers - self.signalled.min(self.followers)
    }

    /// A thread waits on the demultiplexer from now, blocking or not.
    pub fn poll_begins(&mut self, blocking: bool) {
        self.polling = true;
        self.blocking = blocking;
        self.woken = false;
    }

    /// The wait on the demultiplexer returned.
    pub fn poll_ends(&mut self) {
        self.polling = false;
    }

    /// Whether a thread waits on the demultiplexer.
    pub fn polling(&self) -> bool {
        self.polling
    }

    fn follower(&mut self) -> Wake {
        self.signalled += 1;
        Wake::Follower
    }

    /// Wakes the poller unless it was woken already or does not block.
    pub fn poller(&mut self) -> Wake {
        if self.polling && self.blocking && !self.woken {
            self.woken = true;
            Wake::Poller
        } else {
            Wake::Nobody
        }
    }

    /// Work was added from outside the pool's loop (a notification, a post, a resume): a free
    /// follower takes it, else the leader is woken from its wait; with nobody free, the pool
    /// may grow.
    pub fn work_added(&mut self) -> Wake {
        if self.role == Role::StrictLeaderFollowers {
            // The leader takes it: the one polling, or a follower promoted now.
            return if self.polling {
                self.poller()
            } else if self.free_followers() > 0 {
                self.follower()
            } else {
                Wake::Grow
            };
        }
        if self.free_followers() > 0 {
            self.follower()
        } else if self.polling {
            match self.role {
                Role::LeaderFollowers | Role::StrictLeaderFollowers => self.poller(),
                Role::HalfSync => Wake::Nobody,
            }
        } else {
            Wake::Grow
        }
    }

    /// A thread took a piece of work and is about to process it; `work_left` says whether more
    /// is queued. Leader/followers: with nobody polling, a follower is promoted to leader (or
    /// the pool grows); with someone polling and work left, one more thread is woken for it.
    /// Half-sync/half-async: work left wakes one more free worker.
    pub fn work_taken(&mut self, work_left: bool) -> Wake {
        match self.role {
            // Strict: the taker was the leader; it promotes a follower before processing.
            Role::StrictLeaderFollowers | Role::LeaderFollowers if !self.polling => {
                if self.free_followers() > 0 {
                    self.follower()
                } else {
                    Wake::Grow
                }
            }
            Role::LeaderFollowers if work_left => {
                if self.free_followers() > 0 {
                    self.follower()
                } else {
                    self.poller()
                }
            }
            Role::HalfSync if work_left && self.free_followers() > 0 => self.follower(),
            _ => Wake::Nobody,
        }
    }

    /// A timer was scheduled. `before_wait_ends`: its deadline comes before the poller's
    /// wait would end; `due_now`: it is due already. The poller recomputes its timeout when
    /// woken; with nobody polling, a free follower expires a timer due now.
    pub fn timer_scheduled(&mut self, before_wait_ends: bool, due_now: bool) -> Wake {
        if self.polling {
            if before_wait_ends {
                self.poller()
            } else {
                Wake::Nobody
            }
        } else if due_now && self.free_followers() > 0 {
            self.follower()
        } else {
            Wake::Nobody
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_kicks_never_signal_the_same_follower() {
        let mut w = Wakeup::new(Role::LeaderFollowers);
        w.poll_begins(true);
        w.follower_waits();
        assert_eq!(w.work_added(), Wake::Follower);
        assert_eq!(w.work_added(), Wake::Poller, "the follower is spoken for");
        assert_eq!(w.work_added(), Wake::Nobody, "the poller was woken already");
        w.follower_runs();
        assert_eq!(w.free_followers(), 0);
    }

    #[test]
    fn work_left_behind_while_someone_polls_wakes_one_more() {
        let mut w = Wakeup::new(Role::LeaderFollowers);
        w.poll_begins(true);
        assert_eq!(w.work_taken(false), Wake::Nobody);
        assert_eq!(w.work_taken(true), Wake::Poller);
        w.follower_waits();
        w.poll_begins(true);
        assert_eq!(w.work_taken(true), Wake::Follower);
    }

    #[test]
    fn a_nonblocking_poll_is_not_woken() {
        let mut w = Wakeup::new(Role::LeaderFollowers);
        w.poll_begins(false);
        assert_eq!(w.work_added(), Wake::Nobody);
        assert_eq!(w.work_taken(true), Wake::Nobody);
    }

    #[test]
    fn strict_work_goes_to_the_leader_never_to_a_follower_while_someone_polls() {
        let mut w = Wakeup::new(Role::StrictLeaderFollowers);
        w.follower_waits();
        w.poll_begins(true);
        assert_eq!(w.work_added(), Wake::Poller, "the leader takes it");
        assert_eq!(w.work_added(), Wake::Nobody, "the leader was woken already");
        w.poll_ends();
        // The leader took an event: it promotes the follower before processing.
        assert_eq!(w.work_taken(true), Wake::Follower);
        assert_eq!(
            w.work_added(),
            Wake::Grow,
            "no follower is free, nobody polls"
        );
    }

    #[test]
    fn half_sync_never_wakes_the_reactor_thread_for_work() {
        let mut w = Wakeup::new(Role::HalfSync);
        w.poll_begins(true);
        assert_eq!(w.work_added(), Wake::Nobody);
        w.follower_waits();
        w.follower_waits();
        assert_eq!(w.work_added(), Wake::Follower);
        assert_eq!(w.work_taken(true), Wake::Follower);
        assert_eq!(
            w.work_taken(true),
            Wake::Nobody,
            "both workers are spoken for"
        );
        w.all_followers_woken();
        w.follower_runs();
        w.follower_runs();
        assert_eq!((w.free_followers(), w.signalled), (0, 0));
    }
}
