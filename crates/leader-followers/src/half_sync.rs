//! [`HalfSyncHalfAsync`]: a reactor thread, a bounded queue and a pool of synchronous workers.

use std::io;
use std::sync::Arc;

use pattern_core::{
    Clock, DispatchError, Dispatcher, EventHandler, Interest, MonotonicClock, Remote, Token,
};

use crate::PoolMonitor;
use crate::engine::{Config, Core, Mode};

/// Configures a [`HalfSyncHalfAsync`] dispatcher.
#[derive(Debug, Clone)]
pub struct HalfSyncHalfAsyncBuilder {
    workers: usize,
    queue: usize,
    config: Config,
}

impl Default for HalfSyncHalfAsyncBuilder {
    fn default() -> Self {
        HalfSyncHalfAsyncBuilder {
            workers: 4,
            queue: 1024,
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

impl HalfSyncHalfAsyncBuilder {
    /// Synchronous worker threads (at least 1), besides the reactor thread.
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n.max(1);
        self
    }

    /// At most this many ready registrations wait in the queue between the layers (at least 1);
    /// when it is full the reactor thread stops reading the kernel until workers catch up.
    pub fn queue(mut self, n: usize) -> Self {
        self.queue = n.max(1);
        self
    }

    /// The clock timers run on.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.config.clock = clock;
        self
    }

    /// Upcalls one worker makes for one registration before serving the others (at least 1).
    pub fn batch(mut self, n: usize) -> Self {
        self.config.batch = n.max(1);
        self
    }

    /// Builds the dispatcher. No thread starts before [`Dispatcher::run`].
    pub fn build(self) -> io::Result<HalfSyncHalfAsync> {
        Ok(HalfSyncHalfAsync {
            core: Core::new(self.config, Mode::HalfSync { queue: self.queue })?,
            workers: self.workers,
        })
    }
}

/// The Half-Sync/Half-Async dispatcher: the thread calling [`Dispatcher::run`] becomes the
/// asynchronous layer (it only waits on mio and queues ready registrations); `workers` threads
/// form the synchronous layer and run the handlers' upcalls, under the same contract and the
/// same per-handler serialisation as [`LeaderFollowers`](crate::LeaderFollowers).
///
/// ```
/// use std::sync::mpsc;
/// use leader_followers::HalfSyncHalfAsync;
/// use pattern_core::{Context, Dispatcher, Disposition, EventHandler, Interest, Message};
///
/// struct Doubler(mpsc::Sender<u32>);
/// impl EventHandler for Doubler {
///     fn handle_notify(&mut self, ctx: &mut dyn Context, m: Message) -> Disposition {
///         self.0.send(2 * *m.downcast::<u32>().unwrap()).unwrap();
///         ctx.end();
///         Disposition::Continue
///     }
/// }
///
/// let (tx, rx) = mpsc::channel();
/// let mut d = HalfSyncHalfAsync::builder().workers(2).queue(16).build()?;
/// let token = d.register(Box::new(Doubler(tx)), Interest::NONE)?;
/// d.remote().notify(token, Box::new(21u32))?;
/// d.run()?;
/// assert_eq!(rx.recv()?, 42);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct HalfSyncHalfAsync {
    core: Arc<Core>,
    workers: usize,
}

impl HalfSyncHalfAsync {
    /// `workers` workers and a queue of `queue` entries.
    pub fn new(workers: usize, queue: usize) -> io::Result<HalfSyncHalfAsync> {
        HalfSyncHalfAsyncBuilder::default()
            .workers(workers)
            .queue(queue)
            .build()
    }

    /// Configures a dispatcher.
    pub fn builder() -> HalfSyncHalfAsyncBuilder {
        HalfSyncHalfAsyncBuilder::default()
    }

    /// The dispatcher's counters, readable from any thread while it runs.
    pub fn monitor(&self) -> PoolMonitor {
        PoolMonitor {
            core: self.core.clone(),
        }
    }
}

impl Dispatcher for HalfSyncHalfAsync {
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

    /// Runs the reactor thread on the calling thread and starts the workers; at the end joins
    /// them and closes each live registration with `Shutdown`.
    fn run(&mut self) -> io::Result<()> {
        self.core.run(self.workers)
    }
}

impl Drop for HalfSyncHalfAsync {
    fn drop(&mut self) {
        self.core.close_if_open();
    }
}
