//! The [`Context`] upcalls and posted jobs get from a pool, and the cross-thread [`Remote`].
//!
//! `PoolContext` implements every `Context` operation itself; [`Core`] keeps only the ones that
//! the pools' `Dispatcher` and `Remote` need as well (register, notify, post, end).

use super::*;

impl Core {
    pub(crate) fn register(
        self: &Arc<Self>,
        handler: Box<dyn EventHandler>,
        interest: Interest,
    ) -> Result<Token, DispatchError> {
        let fd = handler.handle().map(|fd| fd.as_raw_fd());
        let wanted = mio_interest(interest);
        if wanted.is_some() && fd.is_none() {
            return Err(DispatchError::NoHandle(interest));
        }
        let slot = Slot {
            handler: Some(handler),
            reg: Registration::new(fd),
            interest,
            suspended: false,
            pending: Readiness::NONE,
            hup: false,
            queued: false,
            due: VecDeque::new(),
            notices: VecDeque::new(),
            signals: VecDeque::new(),
            timers: None,
            doomed: None,
        };
        let mut st = self.state.lock();
        if st.closed {
            // After run, or from a handle_close during shutdown: the pool upcalls nothing any
            // more, so it takes no handler it could never close.
            drop(st);
            drop(slot);
            return Err(DispatchError::ShutDown);
        }
        let capacity = st.slots.limit();
        let token = match st.slots.insert(slot) {
            Ok(t) => t,
            Err(slot) => {
                drop(st);
                drop(slot);
                return Err(DispatchError::Full {
                    what: "handler table",
                    capacity,
                });
            }
        };
        let mio_token = mio::Token(token.to_u64() as usize);
        // epoll_ctl is safe while another thread waits in epoll_wait: registration from any
        // thread needs no wakeup of the leader (mio's poll(2) backend wakes it by itself).
        let slot = st.slots.get_mut(token).expect("just inserted");
        if let Err(e) = slot.reg.set_interest(&self.registry, mio_token, interest) {
            let slot = st.slots.remove(token);
            drop(st);
            drop(slot);
            return Err(e);
        }
        Ok(token)
    }

    pub(super) fn notify(
        self: &Arc<Self>,
        token: Token,
        message: Message,
    ) -> Result<(), DispatchError> {
        let mut st = self.state.lock();
        let Some(slot) = st.slots.get_mut(token) else {
            drop(st);
            drop(message);
            return Err(DispatchError::UnknownToken(token));
        };
        slot.notices.push_back(message);
        self.make_runnable(&mut st, token);
        Ok(())
    }

    pub(super) fn post(self: &Arc<Self>, job: Job) -> Result<(), DispatchError> {
        let mut st = self.state.lock();
        if st.closed {
            drop(st);
            drop(job);
            return Err(DispatchError::ShutDown);
        }
        st.jobs.push_back(job);
        self.kick(&mut st);
        Ok(())
    }
}

/// The [`Context`] an upcall or a posted job gets from a pool.
pub(super) struct PoolContext<'a> {
    pub(super) core: &'a Arc<Core>,
    pub(super) current: Option<Token>,
}

impl PoolContext<'_> {
    fn set_suspended(&mut self, token: Token, suspended: bool) -> Result<(), DispatchError> {
        let core = self.core;
        let mut st = core.state.lock();
        st.slots
            .get_mut(token)
            .ok_or(DispatchError::UnknownToken(token))?
            .suspended = suspended;
        if !suspended {
            core.make_runnable(&mut st, token);
        }
        Ok(())
    }
}

impl Context for PoolContext<'_> {
    fn current(&self) -> Option<Token> {
        self.current
    }

    fn now(&self) -> Instant {
        self.core.clock.now()
    }

    fn register(
        &mut self,
        handler: Box<dyn EventHandler>,
        interest: Interest,
    ) -> Result<Token, DispatchError> {
        self.core.register(handler, interest)
    }

    fn remove(&mut self, token: Token, how: Removal) -> Result<(), DispatchError> {
        let core = self.core;
        let mut st = core.state.lock();
        let slot = st
            .slots
            .get_mut(token)
            .ok_or(DispatchError::UnknownToken(token))?;
        match slot.handler.take() {
            // Removed already while busy: the first removal decides how it ends (close or
            // quiet), and this one is refused, as after the registration has gone.
            None if slot.doomed.is_some() => return Err(DispatchError::UnknownToken(token)),
            // Busy (in this upcall or on another thread): its thread closes it on return.
            None => slot.doomed = Some(how),
            Some(h) => {
                let _st =
                    core.close_taken(st, token, h, CloseReason::Removed, how == Removal::Quiet);
            }
        }
        Ok(())
    }

    fn set_interest(&mut self, token: Token, interest: Interest) -> Result<(), DispatchError> {
        let core = self.core;
        let mut st = core.state.lock();
        let slot = st
            .slots
            .get_mut(token)
            .ok_or(DispatchError::UnknownToken(token))?;
        let mio_token = mio::Token(token.to_u64() as usize);
        slot.reg.set_interest(&core.registry, mio_token, interest)?;
        slot.interest = interest;
        core.make_runnable(&mut st, token);
        Ok(())
    }

    fn interest(&self, token: Token) -> Result<Interest, DispatchError> {
        let core = self.core;
        let st = core.state.lock();
        st.slots
            .get(token)
            .map(|slot| slot.interest)
            .ok_or(DispatchError::UnknownToken(token))
    }

    fn suspend(&mut self, token: Token) -> Result<(), DispatchError> {
        self.set_suspended(token, true)
    }

    fn resume(&mut self, token: Token) -> Result<(), DispatchError> {
        self.set_suspended(token, false)
    }

    fn schedule_timer(
        &mut self,
        token: Token,
        delay: Duration,
        interval: Option<Duration>,
        act: Act,
    ) -> Result<TimerId, DispatchError> {
        let core = self.core;
        let mut st = core.state.lock();
        if !st.slots.contains(token) {
            return Err(DispatchError::UnknownToken(token));
        }
        let head = st.slots.get(token).expect("checked").timers;
        let deadline = core.clock.now() + delay;
        let capacity = st.timers.limit();
        let id = match st.timers.schedule(token, head, deadline, interval, act) {
            Ok(id) => id,
            Err(act) => {
                drop(st);
                drop(act);
                return Err(DispatchError::Full {
                    what: "timer queue",
                    capacity,
                });
            }
        };
        st.slots.get_mut(token).expect("checked").timers = Some(id);
        // The waiting thread computed its timeout from the earlier deadlines.
        let before_wait_ends = st.poll_deadline.is_none_or(|p| deadline < p);
        let wake = st.wake.timer_scheduled(before_wait_ends, delay.is_zero());
        core.carry_out(&mut st, wake);
        Ok(id)
    }

    fn cancel_timer(&mut self, timer: TimerId) -> Option<Act> {
        let core = self.core;
        let mut st = core.state.lock();
        let gone = st.timers.cancel(timer)?;
        if let Head::Becomes(head) = gone.head
            && let Some(slot) = st.slots.get_mut(gone.owner)
        {
            slot.timers = head;
        }
        drop(st);
        gone.act
    }

    fn reset_timer_interval(
        &mut self,
        timer: TimerId,
        interval: Option<Duration>,
    ) -> Result<(), DispatchError> {
        let core = self.core;
        if core.state.lock().timers.set_interval(timer, interval) {
            Ok(())
        } else {
            Err(DispatchError::UnknownTimer(timer))
        }
    }

    fn notify(&mut self, token: Token, message: Message) -> Result<(), DispatchError> {
        self.core.notify(token, message)
    }

    fn watch_signal(&mut self, token: Token, signal: i32) -> Result<(), DispatchError> {
        let core = self.core;
        let mut st = core.state.lock();
        if !st.slots.contains(token) {
            return Err(DispatchError::UnknownToken(token));
        }
        let sig = Signal::from_raw(signal).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{signal} is not a signal"),
            )
        })?;
        let mut set: SignalSet = st
            .signal_fd
            .as_ref()
            .map(|fd| *fd.signals())
            .unwrap_or_default();
        if !set.contains(sig) {
            set.insert(sig);
            // signalfd's set is fixed at creation: open one for the wider set, retire the old.
            let mut fd = SignalFd::new(&set)?;
            core.registry
                .register(&mut fd, SIGNALS, mio::Interest::READABLE)?;
            if let Some(mut old) = st.signal_fd.replace(fd) {
                let _ = core.registry.deregister(&mut old);
            }
            // Every pool thread blocks the wider set at its next turn round the loop: wake the
            // idle ones now. (A thread busy in an upcall blocks it when the upcall returns;
            // to close that window, block the signals before `run`, as threads inherit masks.)
            core.sig_epoch.fetch_add(1, Ordering::AcqRel);
            st.wake.all_followers_woken();
            core.followers_cv.notify_all();
            core.wake_poller(&mut st);
            core.read_signals(&mut st);
            if !st.ready.is_empty() {
                core.kick(&mut st);
            }
        }
        if !st.watchers.contains(&(signal, token)) {
            st.watchers.push((signal, token));
        }
        Ok(())
    }

    fn end(&mut self) {
        self.core.end();
    }

    fn remote(&self) -> Arc<dyn Remote> {
        self.core.remote()
    }
}

/// The cross-thread handle on a pool.
pub(super) struct PoolRemote {
    pub(super) core: Arc<Core>,
}

impl std::fmt::Debug for PoolRemote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolRemote")
            .field("core", &self.core)
            .finish()
    }
}

impl Remote for PoolRemote {
    fn post(&self, job: Job) -> Result<(), DispatchError> {
        self.core.post(job)
    }

    fn notify(&self, token: Token, message: Message) -> Result<(), DispatchError> {
        if self.core.lock().closed {
            return Err(DispatchError::ShutDown);
        }
        match self.core.notify(token, message) {
            // A stale token loses its message, as the contract allows.
            Err(DispatchError::UnknownToken(_)) => Ok(()),
            other => other,
        }
    }

    fn end(&self) {
        self.core.end();
    }
}
