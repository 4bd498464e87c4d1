//! Waking threads: carrying out the decisions of [`Wakeup`], promoting a follower, growing the pool.

use super::*;

impl Core {
    /// Work was added from outside the pool loop: wake someone to take it.
    pub(super) fn kick(self: &Arc<Self>, st: &mut State) {
        let wake = st.wake.work_added();
        self.carry_out(st, wake);
    }

    /// Carries out a wake-up decision of [`Wakeup`].
    pub(super) fn carry_out(self: &Arc<Self>, st: &mut State, wake: Wake) {
        match wake {
            Wake::Nobody => {}
            Wake::Follower => {
                self.followers_cv.notify_one();
            }
            Wake::Poller => {
                // Cannot fail on a live eventfd: saturation is ruled out by the drain below.
                let _ = self.waker.notify();
            }
            Wake::Grow => self.grow_if_stalled(st),
        }
    }

    pub(super) fn wake_poller(self: &Arc<Self>, st: &mut State) {
        let wake = st.wake.poller();
        self.carry_out(st, wake);
    }

    /// A thread took a piece of work and is about to process it. Leader/followers: with
    /// nobody polling it was the leader, so it promotes a follower to leader (or, when every
    /// thread is busy in an upcall and growth is on, generates a new leader); with someone
    /// polling and more work queued, it wakes one more thread for that work, so that the work
    /// never waits behind an upcall that blocks. Half-sync/half-async: work left wakes a free
    /// worker.
    pub(super) fn promote(self: &Arc<Self>, st: &mut State) {
        let work_left = !st.ready.is_empty() || !st.jobs.is_empty();
        let wake = st.wake.work_taken(work_left);
        if wake == Wake::Follower && matches!(self.mode, Mode::LeaderFollowers { .. }) {
            self.stats.promotions.fetch_add(1, Ordering::Relaxed);
            seq!(
                posa_seq::THREAD => threads::FOLLOWERS,
                "promote one (notify_one): the new leader waits on the handle set"
            );
        }
        self.carry_out(st, wake);
    }

    pub(super) fn grow_if_stalled(self: &Arc<Self>, st: &mut State) {
        let Mode::LeaderFollowers { max, .. } = self.mode else {
            return;
        };
        if self.ended() || st.threads == 0 || st.threads >= max || st.busy < st.threads {
            return;
        }
        self.spawn_thread(st);
    }

    pub(crate) fn spawn_thread(self: &Arc<Self>, st: &mut State) {
        st.threads += 1;
        let n = self.stats.threads_started.fetch_add(1, Ordering::Relaxed);
        let core = self.clone();
        let name = match self.mode {
            Mode::LeaderFollowers { .. } => format!("lf-{n}"),
            Mode::HalfSync { .. } => format!("hsha-worker-{n}"),
        };
        let spawned = std::thread::Builder::new()
            .name(name)
            .spawn(move || match core.mode {
                Mode::LeaderFollowers { .. } => core.lf_thread(),
                Mode::HalfSync { .. } => core.worker_thread(),
            });
        match spawned {
            Ok(h) => self.handles.lock().push(h),
            Err(e) => {
                st.threads -= 1;
                tracing::warn!(error = %e, "could not start a pool thread");
            }
        }
    }

    pub(crate) fn lock(&self) -> Guard<'_> {
        self.state.lock()
    }
}
