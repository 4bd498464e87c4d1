//! [`LeaderFollowers`]: a pool of threads taking turns on one demultiplexer.

use std::io;
use std::sync::Arc;

use pattern_core::{
    Clock, DispatchError, Dispatcher, EventHandler, Interest, MonotonicClock, Remote, Token,
};

use crate::PoolMonitor;
use crate::engine::{Config, Core, Mode};

/// Configures a [`LeaderFollowers`] pool.
#[derive(Debug, Clone)]
pub struct LeaderFollowersBuilder {
    threads: usize,
    /// `None`: a fixed pool.
    max_threads: Option<usize>,
    strict: bool,
    config: Config,
}

impl Default for LeaderFollowersBuilder {
    fn default() -> Self {
        LeaderFollowersBuilder {
            threads: 4,
            max_threads: None,
            strict: false,
            config: Config {
                clock: Arc::new(MonotonicClock),
                max_handlers: 1 << 20,
                max_timers: 1 << 22,
                events: 256,
                batch: 32,
            },
        }
    }
}

impl LeaderFollowersBuilder {
    /// Threads in the pool at start, the thread calling [`Dispatcher::run`] included
    /// (at least 1).
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = n.max(1);
        self
    }

    /// Lets the pool grow up to `max` threads: when every thread is busy in an upcall and
    /// nobody is left to lead, a new leader is generated (TAO's new-leader generator), so that
    /// a blocking upcall cannot stall the event loop. Threads started this way stay until the
    /// pool ends. `max` no larger than the start size means a fixed pool (the default).
    pub fn grow_up_to(mut self, max: usize) -> Self {
        self.max_threads = Some(max);
        self
    }

    /// The clock timers run on.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.config.clock = clock;
        self
    }

    /// At most this many live registrations.
    pub fn max_handlers(mut self, max: usize) -> Self {
        self.config.max_handlers = max;
        self
    }

    /// At most this many pending timers.
    pub fn max_timers(mut self, max: usize) -> Self {
        self.config.max_timers = max;
        self
    }

    /// Readiness events taken from the kernel per wait.
    pub fn events_per_wait(mut self, n: usize) -> Self {
        self.config.events = n.max(1);
        self
    }

    /// Runs POSA2's protocol strictly (off by default): the leader waits for one event at a
    /// time, takes it out of the handle set (deregistered while it is processed, registered
    /// again after the upcalls, which reports what arrived meanwhile), promotes a follower,
    /// and only then processes; a follower takes no work until it is promoted, so exactly
    /// one thread waits on the handle set and only the leader takes work. The default hybrid
    /// (ACE's TP_Reactor) lets followers take events already demultiplexed, and keeps busy
    /// handles in the set, deactivated in user space. See the page for when each wins.
    ///
    /// ```
    /// use leader_followers::LeaderFollowers;
    /// let pool = LeaderFollowers::builder().threads(2).strict(true).build()?;
    /// assert!(pool.is_strict());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }

    /// Upcalls one thread makes for one registration before serving the others (at least 1).
    pub fn batch(mut self, n: usize) -> Self {
        self.config.batch = n.max(1);
        self
    }

    /// Builds the pool: an epoll instance (through mio) and an eventfd waker. No thread starts
    /// before [`Dispatcher::run`].
    pub fn build(self) -> io::Result<LeaderFollowers> {
        Ok(LeaderFollowers {
            core: Core::new(
                self.config,
                Mode::LeaderFollowers {
                    max: self.max_threads.unwrap_or(self.threads).max(self.threads),
                    strict: self.strict,
                },
            )?,
            threads: self.threads,
        })
    }
}

/// The Leader/Followers dispatcher: `threads` threads share one mio `Poll`.
///
/// One thread, the leader, waits for events; the others are followers, waiting for their turn.
/// When the leader gets an event it promotes a follower to leader, then processes the event
/// itself (no hand-off to another thread), and rejoins the pool as a follower.
/// Upcalls of one handler never overlap: a registration being processed is marked busy, and
/// events arriving meanwhile are kept for the thread that holds it.
/// It runs any [`EventHandler`] under the `pattern_core` contract.
///
/// ```
/// use std::sync::mpsc;
/// use leader_followers::LeaderFollowers;
/// use pattern_core::{Context, Dispatcher, Disposition, EventHandler, Interest, Message};
///
/// struct Greeter(mpsc::Sender<String>);
/// impl EventHandler for Greeter {
///     fn handle_notify(&mut self, ctx: &mut dyn Context, m: Message) -> Disposition {
///         let name = m.downcast::<&str>().unwrap();
///         self.0.send(format!("hello, {name}")).unwrap();
///         ctx.end();
///         Disposition::Continue
///     }
/// }
///
/// let (tx, rx) = mpsc::channel();
/// let mut pool = LeaderFollowers::builder().threads(3).build()?;
/// let token = pool.register(Box::new(Greeter(tx)), Interest::NONE)?;
/// pool.remote().notify(token, Box::new("pool"))?;
/// pool.run()?;
/// assert_eq!(rx.recv()?, "hello, pool");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct LeaderFollowers {
    core: Arc<Core>,
    threads: usize,
}

impl LeaderFollowers {
    /// A pool of `threads` threads with the default configuration, fixed size.
    pub fn new(threads: usize) -> io::Result<LeaderFollowers> {
        LeaderFollowersBuilder::default().threads(threads).build()
    }

    /// Configures a pool.
    pub fn builder() -> LeaderFollowersBuilder {
        LeaderFollowersBuilder::default()
    }

    /// Whether the pool runs the strict protocol ([`LeaderFollowersBuilder::strict`]).
    pub fn is_strict(&self) -> bool {
        self.core.is_strict()
    }

    /// The pool's counters, readable from any thread while it runs.
    pub fn monitor(&self) -> PoolMonitor {
        PoolMonitor {
            core: self.core.clone(),
        }
    }

    /// Threads at start.
    pub fn threads(&self) -> usize {
        self.threads
    }
}

impl Dispatcher for LeaderFollowers {
    fn register(
        &mut self,
        handler: Box<dyn EventHandler>,
        interest: Interest,
    ) -> Result<Token, DispatchError> {
        self.core.register(handler, interest)
    }

    fn remote(&self) -> Arc<dyn Remote> {
        self.core.remote()
    }

    /// Runs the pool on the calling thread and `threads - 1` more until the end, joins every
    /// pool thread, then closes each live registration with `Shutdown`.
    fn run(&mut self) -> io::Result<()> {
        self.core.run(self.threads)
    }
}

impl Drop for LeaderFollowers {
    fn drop(&mut self) {
        self.core.close_if_open();
    }
}
