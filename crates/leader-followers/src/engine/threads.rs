//! The pool threads: the leader/followers loop, the half-sync/half-async worker and reactor
//! threads, the wait on the handle set, a thread's turn on one registration, and closing.

use super::*;

/// The participants of the sequence diagrams drawn from runs: each pool thread is itself
/// ([`THREAD`](posa_seq::THREAD)), whatever role it plays at the moment; the handle set, the
/// followers' condition and the half-sync/half-async queue are named.
const THREAD: &str = posa_seq::THREAD;
const HANDLE_SET: &str = "handle set (mio Poll)";
pub(super) const FOLLOWERS: &str = "followers (condition)";
const QUEUE: &str = "queue (ready registrations)";

/// A registration's name in the sequence diagrams drawn from runs (examples alias it).
fn participant(token: Token) -> String {
    format!("handler {token}")
}

impl Core {
    pub(super) fn block_signals(&self, epoch: &mut u64, st: &State) {
        let now = self.sig_epoch.load(Ordering::Acquire);
        if now != *epoch {
            *epoch = now;
            if let Some(fd) = &st.signal_fd {
                let _ = fd.signals().block_current_thread();
            }
        }
    }

    /// A leader/followers pool thread: follower, leader, processing, and back.
    pub(crate) fn lf_thread(self: &Arc<Self>) {
        let mut st = self.state.lock();
        let mut epoch = 0;
        // Whether this thread's last step was a wait on the handle set (for the diagrams:
        // work taken otherwise comes from the ready set as an earlier wait left it).
        let mut polled = false;
        loop {
            if self.ended() {
                break;
            }
            self.block_signals(&mut epoch, &st);
            self.expire_timers(&mut st);
            // Work demultiplexed earlier is taken first, but once a whole round of the ready
            // set (and of the jobs) has been served, the kernel is asked again (without
            // blocking) before more: handlers answering `Again`, or jobs posting jobs, must not
            // starve the others' new events.
            let idle = st.ready.is_empty() && st.jobs.is_empty();
            // Strict: only the leader (the thread free while nobody polls) takes work; the
            // hybrid lets followers take demultiplexed work while someone else polls.
            let may_take = if self.mode.strict() {
                !st.wake.polling() && st.round > 0
            } else {
                st.round > 0 || st.wake.polling() || idle
            };
            if may_take && let Some(work) = self.next_work(&mut st) {
                if !polled && let Work::Turn(token) = &work {
                    seq!(
                        note THREAD,
                        "takes {} from the ready set, without waiting on the handle set first",
                        participant(*token)
                    );
                }
                polled = false;
                // Step 5: promote a follower before processing.
                st.busy += 1;
                self.promote(&mut st);
                st = self.perform(st, work);
                st.busy -= 1;
                continue;
            }
            if st.wake.polling() {
                // Someone leads: wait as a follower.
                seq!(note THREAD, "joins the followers (waits on a condition)");
                st.wake.follower_waits();
                self.followers_cv.wait(&mut st);
                st.wake.follower_runs();
                continue;
            }
            // Lead: wait for events on the shared handle set.
            st = self.poll_once(st, !idle);
            polled = true;
        }
        st.threads -= 1;
        // A thread that leaves may have been the one a promotion woke.
        st.wake.all_followers_woken();
        self.followers_cv.notify_all();
    }

    /// A half-sync/half-async worker: takes queued work, never polls.
    pub(crate) fn worker_thread(self: &Arc<Self>) {
        let mut st = self.state.lock();
        loop {
            if self.ended() {
                break;
            }
            if let Some(work) = self.next_work(&mut st) {
                match &work {
                    Work::Turn(token) => seq!(reply QUEUE => THREAD, "{}", participant(*token)),
                    Work::Job(_) => seq!(reply QUEUE => THREAD, "a posted job"),
                }
                self.stats.handoffs.fetch_add(1, Ordering::Relaxed);
                st.dequeues += 1;
                if st.reactor_waiting {
                    self.reactor_cv.notify_one();
                }
                st.busy += 1;
                self.promote(&mut st);
                st = self.perform(st, work);
                st.busy -= 1;
                continue;
            }
            seq!(note THREAD, "waits on the queue (a condition)");
            st.wake.follower_waits();
            self.followers_cv.wait(&mut st);
            st.wake.follower_runs();
        }
        st.threads -= 1;
    }

    /// The half-sync/half-async reactor thread: demultiplexes and queues, never upcalls.
    pub(crate) fn reactor_thread(self: &Arc<Self>) {
        let Mode::HalfSync { queue } = self.mode else {
            return;
        };
        let mut st = self.state.lock();
        let mut epoch = 0;
        loop {
            if self.ended() {
                break;
            }
            self.block_signals(&mut epoch, &st);
            if st.ready.len() >= queue {
                // The queue is full: stop reading the kernel until a worker takes an entry.
                let seen = st.dequeues;
                while st.dequeues == seen && !self.ended() {
                    st.reactor_waiting = true;
                    self.reactor_cv.wait(&mut st);
                    st.reactor_waiting = false;
                }
            }
            self.expire_timers(&mut st);
            st = self.poll_once(st, false);
        }
    }

    /// One wait on the handle set, then the readiness is recorded in the slots.
    pub(super) fn poll_once<'a>(
        self: &'a Arc<Self>,
        mut st: Guard<'a>,
        nonblocking: bool,
    ) -> Guard<'a> {
        st.wake.poll_begins(!nonblocking);
        if nonblocking {
            seq!(THREAD => HANDLE_SET, "poll without waiting (a round of the ready set is over)");
        } else {
            seq!(THREAD => HANDLE_SET, "wait for events");
        }
        let now = self.clock.now();
        let deadline = st.timers.next_deadline();
        st.poll_deadline = if nonblocking { Some(now) } else { deadline };
        let timeout = if nonblocking {
            Some(Duration::ZERO)
        } else {
            deadline.map(|d| d.saturating_duration_since(now))
        };
        drop(st);
        self.stats.polls.fetch_add(1, Ordering::Relaxed);
        let mut poller = self.poller.lock();
        let Poller { poll, events } = &mut *poller;
        let result = if self.ended() {
            Ok(())
        } else {
            poll.poll(events, timeout)
        };
        if events.iter().any(|e| e.token() == WAKER) {
            // Reset the eventfd's counter (one read, before taking the state lock), so that it
            // never saturates and every later write raises a new edge.
            let _ = self.waker.drain();
            rearm_own(&self.registry, self.waker.as_raw_fd(), WAKER);
        }
        let mut st = self.state.lock();
        st.wake.poll_ends();
        st.poll_deadline = None;
        match result {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => events.clear(),
            Err(e) => {
                tracing::error!(error = %e, "poll failed; ending the pool");
                events.clear();
                *self.error.lock() = Some(e);
                self.ended.store(true, Ordering::Release);
                st.wake.all_followers_woken();
                self.followers_cv.notify_all();
            }
        }
        let mut signals = false;
        for event in events.iter() {
            match event.token() {
                WAKER => {}
                SIGNALS => signals = true,
                t => {
                    let token = Token::from_u64(t.0 as u64);
                    if let Some(slot) = st.slots.get_mut(token) {
                        seq!(
                            reply HANDLE_SET => THREAD,
                            "{} {}",
                            participant(token),
                            if event.is_readable() { "readable" } else { "ready" }
                        );
                        let bits = bits_of(event);
                        slot.pending |= bits;
                        slot.hup |= closed(event);
                        slot.reg.reported(bits);
                        self.demultiplexed(&mut st, token);
                    }
                }
            }
        }
        drop(poller);
        if signals {
            self.read_signals(&mut st);
        }
        st.round = st.ready.len() + st.jobs.len();
        st
    }

    pub(super) fn read_signals(self: &Arc<Self>, st: &mut State) {
        loop {
            let info = match st.signal_fd.as_ref().map(|fd| fd.read()) {
                Some(Ok(Some(info))) => info,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "reading the signal fd failed");
                    return;
                }
                _ => {
                    // Drained: a backend that disarms what it reported must watch it again.
                    if let Some(fd) = &st.signal_fd {
                        rearm_own(&self.registry, fd.as_raw_fd(), SIGNALS);
                    }
                    return;
                }
            };
            let signo = info.signal().as_raw();
            let targets: Vec<Token> = st
                .watchers
                .iter()
                .filter(|(s, _)| *s == signo)
                .map(|(_, t)| *t)
                .collect();
            for t in targets {
                if let Some(slot) = st.slots.get_mut(t) {
                    slot.signals.push_back(signo);
                    self.demultiplexed(st, t);
                }
            }
        }
    }

    pub(super) fn expire_timers(self: &Arc<Self>, st: &mut State) {
        let now = self.clock.now();
        let mut expired = std::mem::take(&mut st.expired);
        st.timers.expire(now, &mut expired);
        for Expired { id, owner } in expired.drain(..) {
            if let Some(slot) = st.slots.get_mut(owner) {
                slot.due.push_back(id);
                self.demultiplexed(st, owner);
            }
        }
        st.expired = expired;
    }

    /// The next piece of work for a pool thread: posted jobs first, then ready registrations.
    pub(super) fn next_work(self: &Arc<Self>, st: &mut State) -> Option<Work> {
        let work = match st.jobs.pop_front() {
            Some(job) => Work::Job(job),
            None => Work::Turn(st.ready.pop_front()?),
        };
        st.round = st.round.saturating_sub(1);
        Some(work)
    }

    /// Queues `token` when it is idle and has work; returns whether it was queued. Wakes a
    /// thread for it.
    pub(super) fn make_runnable(self: &Arc<Self>, st: &mut State, token: Token) -> bool {
        let queued = Self::queue(st, token);
        if queued {
            self.kick(st);
        }
        queued
    }

    /// Queues `token` when it is idle and has work, waking nobody: for the thread that is
    /// about to look for work itself (a leader after its wait, a thread after its turn), which
    /// promotes a follower when it takes an event, one at a time.
    pub(super) fn queue(st: &mut State, token: Token) -> bool {
        let Some(slot) = st.slots.get_mut(token) else {
            return false;
        };
        if slot.queued || slot.handler.is_none() || !slot.has_work() {
            return false;
        }
        slot.queued = true;
        st.ready.push_back(token);
        true
    }

    /// Queues work found by the thread that waits on the demultiplexer: a leader keeps it for
    /// itself and the followers it promotes; the half-sync/half-async reactor thread hands it
    /// to a worker.
    pub(super) fn demultiplexed(self: &Arc<Self>, st: &mut State, token: Token) {
        match self.mode {
            Mode::LeaderFollowers { .. } => {
                Self::queue(st, token);
            }
            Mode::HalfSync { .. } => {
                if self.make_runnable(st, token) {
                    seq!(THREAD => QUEUE, "enqueue {}", participant(token));
                }
            }
        }
    }

    pub(super) fn perform<'a>(self: &'a Arc<Self>, st: Guard<'a>, work: Work) -> Guard<'a> {
        let busy = st.busy;
        self.stats.peak_busy.fetch_max(busy, Ordering::Relaxed);
        match work {
            Work::Job(job) => {
                drop(st);
                let mut ctx = PoolContext {
                    core: self,
                    current: None,
                };
                if catch_unwind(AssertUnwindSafe(|| job(&mut ctx))).is_err() {
                    tracing::warn!("posted job panicked");
                }
                self.state.lock()
            }
            Work::Turn(token) => self.turn(st, token),
        }
    }

    /// The next upcall for a busy registration: due timers, then notifications, then signals,
    /// then I/O.
    pub(super) fn pick(st: &mut State, token: Token) -> Option<Item> {
        let State { slots, timers, .. } = st;
        let slot = slots.get_mut(token)?;
        while let Some(id) = slot.due.pop_front() {
            if let Some(act) = timers.take_act(id) {
                return Some(Item::Timer(id, act));
            }
        }
        if let Some(m) = slot.notices.pop_front() {
            return Some(Item::Notice(m));
        }
        if let Some(s) = slot.signals.pop_front() {
            return Some(Item::Signal(s));
        }
        if slot.suspended {
            return None;
        }
        let mask = mask_of(slot.interest);
        for bit in Readiness::KINDS {
            if (slot.pending & bit).intersects(mask) {
                slot.pending.remove(bit);
                // Taken when the upcall starts, not when it ends: a close reported while it
                // runs may come after data it has not read, and needs an upcall of its own.
                let hup = bit == Readiness::READ && std::mem::take(&mut slot.hup);
                return Some(Item::Io(bit, hup));
            }
        }
        None
    }

    /// Processes one registration: takes its handler out (busy), upcalls it for the work found
    /// in its slot, at most `batch` times, then puts it back (idle) and requeues it if work
    /// arrived meanwhile.
    pub(super) fn turn<'a>(self: &'a Arc<Self>, mut st: Guard<'a>, token: Token) -> Guard<'a> {
        let Some(slot) = st.slots.get_mut(token) else {
            return st;
        };
        slot.queued = false;
        let Some(mut handler) = slot.handler.take() else {
            return st;
        };
        let strict = self.mode.strict();
        if strict {
            // Step 2, strictly: the handle leaves the handle set while it is processed.
            seq!(THREAD => HANDLE_SET, "deactivate {}", participant(token));
            slot.reg.deactivate(&self.registry);
        }
        let mut budget = self.batch;
        loop {
            if budget == 0 || self.ended() {
                break;
            }
            // Timers that fell due while this handler was busy go before the notifications
            // queued meanwhile: the order of an iteration (timers, notifications, I/O) holds
            // for each upcall of a turn, not only for work found at the top of a loop.
            if st
                .timers
                .next_deadline()
                .is_some_and(|d| d <= self.clock.now())
            {
                self.expire_timers(&mut st);
            }
            let Some(item) = Self::pick(&mut st, token) else {
                break;
            };
            budget -= 1;
            drop(st);
            self.stats.upcalls.fetch_add(1, Ordering::Relaxed);
            let mut ctx = PoolContext {
                core: self,
                current: Some(token),
            };
            seq!(
                THREAD => participant(token),
                "{}",
                match &item {
                    Item::Timer(..) => "handle_timeout",
                    Item::Notice(_) => "handle_notify",
                    Item::Signal(_) => "handle_signal",
                    Item::Io(Readiness::READ, _) => "handle_input",
                    Item::Io(Readiness::WRITE, _) => "handle_output",
                    Item::Io(..) => "handle_exception",
                }
            );
            let h = handler.as_mut();
            let mut io_bit = None;
            let mut closed_before = false;
            let mut lent = None;
            let result = match item {
                Item::Timer(id, mut act) => {
                    let r = catch_unwind(AssertUnwindSafe(|| {
                        h.handle_timeout(&mut ctx, id, act.as_mut())
                    }));
                    lent = Some((id, act));
                    r
                }
                Item::Notice(m) => catch_unwind(AssertUnwindSafe(|| h.handle_notify(&mut ctx, m))),
                Item::Signal(s) => catch_unwind(AssertUnwindSafe(|| h.handle_signal(&mut ctx, s))),
                Item::Io(bit, hup) => {
                    io_bit = Some(bit);
                    closed_before = hup;
                    catch_unwind(AssertUnwindSafe(|| match bit {
                        Readiness::READ => h.handle_input(&mut ctx),
                        Readiness::WRITE => h.handle_output(&mut ctx),
                        _ => h.handle_exception(&mut ctx),
                    }))
                }
            };
            match &result {
                Ok(d) => seq!(reply participant(token) => THREAD, "{d:?}"),
                Err(_) => seq!(fail participant(token) => THREAD, "panicked"),
            }
            st = self.state.lock();
            if let Some((id, act)) = lent {
                let now = self.clock.now();
                let spent = match st.timers.finish(id, act, now) {
                    Finished::Rearmed => {
                        if st.wake.polling()
                            && st
                                .timers
                                .next_deadline()
                                .is_some_and(|d| st.poll_deadline.is_none_or(|p| d < p))
                        {
                            self.wake_poller(&mut st);
                        }
                        None
                    }
                    Finished::Fired { act, head } => {
                        if let Head::Becomes(head) = head {
                            st.slots
                                .get_mut(token)
                                .expect("a busy registration stays live")
                                .timers = head;
                        }
                        Some(act)
                    }
                    // Cancelled during the upcall: not re-armed.
                    Finished::Gone(act) => Some(act),
                };
                if let Some(act) = spent {
                    // Dropping the ACT runs user code: not under the lock. The registration
                    // stays busy meanwhile, so nothing else touches its handler.
                    MutexGuard::unlocked(&mut st, || drop(act));
                }
            }
            let slot = st
                .slots
                .get_mut(token)
                .expect("a busy registration stays live");
            let doomed = slot.doomed.take();
            match AfterUpcall::of(result.ok(), doomed) {
                AfterUpcall::Close { reason, quiet } => {
                    if reason == CloseReason::Panicked {
                        tracing::warn!(?token, "upcall panicked; closing its handler");
                    }
                    return self.close_taken(st, token, handler, reason, quiet);
                }
                AfterUpcall::Keep(Disposition::Again) => {
                    if let Some(bit) = io_bit {
                        // Serve the others first, then come back without a new edge.
                        slot.pending |= bit;
                        slot.hup |= closed_before;
                        break;
                    }
                }
                AfterUpcall::Keep(_) => {
                    // A handler may stop at a short read; if the peer had closed before this
                    // upcall started, no new edge will come: upcall input once more.
                    if closed_before {
                        slot.pending |= Readiness::READ;
                    }
                }
            }
        }
        let slot = st
            .slots
            .get_mut(token)
            .expect("a busy registration stays live");
        slot.handler = Some(handler);
        if strict {
            // Back in the handle set, which reports what arrived meanwhile (level-like).
            seq!(THREAD => HANDLE_SET, "activate {} again", participant(token));
            let interest = slot.interest;
            if let Err(e) = slot.reg.set_interest(
                &self.registry,
                mio::Token(token.to_u64() as usize),
                interest,
            ) {
                // The handler keeps its timers and notifications; its I/O is lost, so say so.
                tracing::warn!(error = %e, ?token, "re-registering a handle after its turn failed");
            }
        }
        // What the upcalls drained is watched again (poll(2) backend only).
        slot.reg.rearm(
            &self.registry,
            mio::Token(token.to_u64() as usize),
            slot.interest,
            slot.pending,
        );
        if strict {
            // Only the leader takes work: wake it (or promote one) for what is left.
            self.make_runnable(&mut st, token);
        } else {
            // This thread looks for work next and finds it.
            Self::queue(&mut st, token);
        }
        seq!(note THREAD, "turn over: {} idle again", participant(token));
        st
    }

    /// Ends a registration whose handler this thread holds: deregisters, cancels timers,
    /// then upcalls close without the lock.
    pub(super) fn close_taken<'a>(
        self: &'a Arc<Self>,
        mut st: Guard<'a>,
        token: Token,
        mut handler: Box<dyn EventHandler>,
        reason: CloseReason,
        quiet: bool,
    ) -> Guard<'a> {
        let Some(slot) = st.slots.remove(token) else {
            return st;
        };
        // The handler, still alive, keeps the descriptor open until after this.
        let mut reg = slot.reg;
        reg.deregister(&self.registry);
        let mut acts = Vec::new();
        st.timers.cancel_list(slot.timers, |act| acts.push(act));
        st.watchers.retain(|(_, t)| *t != token);
        drop(st);
        // Pending notifications and the timers' ACTs are user values: drop them without the
        // lock.
        drop(slot);
        drop(acts);
        if !quiet {
            let mut ctx = PoolContext {
                core: self,
                current: Some(token),
            };
            if catch_unwind(AssertUnwindSafe(|| handler.handle_close(&mut ctx, reason))).is_err() {
                tracing::warn!(?token, "handle_close panicked");
            }
        }
        drop(handler);
        self.state.lock()
    }

    /// After every pool thread has left: closes each live registration with `Shutdown`, once.
    /// From here on the engine is closed: registrations (from `handle_close` too), posts and
    /// notifications are refused with [`DispatchError::ShutDown`], so the closes below end
    /// the table however handlers react, and nothing is left to drop without its close.
    pub(crate) fn close_all(self: &Arc<Self>) {
        let mut st = self.state.lock();
        st.closed = true;
        loop {
            let tokens = st.slots.tokens();
            if tokens.is_empty() {
                break;
            }
            let mut progress = false;
            for t in tokens {
                let taken = st.slots.get_mut(t).and_then(|s| s.handler.take());
                if let Some(h) = taken {
                    st = self.close_taken(st, t, h, CloseReason::Shutdown, false);
                    progress = true;
                }
            }
            if !progress {
                // Every pool thread has been joined, so no handler is busy; should one be,
                // its thread closes it when the upcall returns (the engine is ended).
                break;
            }
        }
        debug_assert!(st.timers.is_empty(), "every timer has an owner");
        st.timers.clear();
        st.ready.clear();
        let jobs = std::mem::take(&mut st.jobs);
        drop(st);
        // Posted jobs are user values: dropped without the lock.
        drop(jobs);
    }

    /// Closes every registration unless that was done already (a pool dropped unrun).
    pub(crate) fn close_if_open(self: &Arc<Self>) {
        if !self.state.lock().closed {
            self.close_all();
        }
    }

    /// Runs the pool on the calling thread until the end, joins every thread it started,
    /// then closes every registration.
    pub(crate) fn run(self: &Arc<Self>, threads: usize) -> io::Result<()> {
        let threads = threads.max(1);
        match self.mode {
            Mode::LeaderFollowers { .. } => {
                let mut st = self.state.lock();
                // The calling thread is one of the pool.
                st.threads += 1;
                self.stats.threads_started.fetch_add(1, Ordering::Relaxed);
                for _ in 1..threads {
                    self.spawn_thread(&mut st);
                }
                drop(st);
                self.lf_thread();
            }
            Mode::HalfSync { .. } => {
                let mut st = self.state.lock();
                for _ in 0..threads {
                    self.spawn_thread(&mut st);
                }
                drop(st);
                self.reactor_thread();
            }
        }
        loop {
            let next = self.handles.lock().pop();
            match next {
                Some(h) => {
                    if h.join().is_err() {
                        tracing::error!("a pool thread panicked");
                    }
                }
                None => break,
            }
        }
        self.close_all();
        match self.error.lock().take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}
