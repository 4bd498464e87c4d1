//! A Proactor-style executor: a thread pool runs blocking operations and posts each
//! completion, with the ACT it was given, to a completion port on the reactor through notify.
//! Shared by the `act_callbacks` example and the integration tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;

use act::{Callbacks, CompletionToken};
use crossbeam_channel::{Sender, unbounded};
use reactor::{Context, Disposition, EventHandler, ReactorRemote, Remote, Token};

type Work = Box<dyn FnOnce() + Send>;

/// What a worker posts to the completion port: the ACT it was handed, and the result.
pub(crate) struct Done<R> {
    pub(crate) act: CompletionToken,
    pub(crate) result: R,
}

/// Asks the completion port to expire overdue tokens (after its clock moved).
pub(crate) struct Tick;

/// The asynchronous operation processor: worker threads running blocking operations.
/// It holds each ACT opaquely and returns it with the result.
pub(crate) struct Executor {
    jobs: Option<Sender<Work>>,
    workers: Vec<JoinHandle<()>>,
}

impl Executor {
    pub(crate) fn new(threads: usize) -> Self {
        let (jobs, queue) = unbounded::<Work>();
        let workers = (0..threads)
            .map(|_| {
                let queue = queue.clone();
                std::thread::spawn(move || {
                    for work in queue {
                        work();
                    }
                })
            })
            .collect();
        Executor {
            jobs: Some(jobs),
            workers,
        }
    }

    /// Runs `operation` on a worker, then posts `Done { act, result }` to `port`.
    pub(crate) fn start<R: Send + 'static>(
        &self,
        act: CompletionToken,
        operation: impl FnOnce() -> R + Send + 'static,
        remote: &ReactorRemote,
        port: Token,
    ) {
        let remote = remote.clone();
        self.run(move || {
            let result = operation();
            // Fails only when the reactor is gone; then nobody waits for the result.
            let _ = remote.notify(port, Box::new(Done { act, result }));
        });
    }

    /// Runs `work` on a worker with no completion: a service that loses the ACT.
    pub(crate) fn run(&self, work: impl FnOnce() + Send + 'static) {
        if let Some(jobs) = &self.jobs {
            let _ = jobs.send(Box::new(work));
        }
    }
}

impl Drop for Executor {
    fn drop(&mut self) {
        self.jobs = None;
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

/// The completion port on the reactor: turns each posted `Done` back into its completion
/// handler through the token table, on the reactor's thread.
pub(crate) struct CompletionPort<R> {
    callbacks: Callbacks<R>,
    rejected: Arc<AtomicUsize>,
    end_when_idle: bool,
}

impl<R: Send + 'static> CompletionPort<R> {
    pub(crate) fn new(callbacks: Callbacks<R>) -> Self {
        CompletionPort {
            callbacks,
            rejected: Arc::default(),
            end_when_idle: true,
        }
    }

    /// How many posted completions were refused (duplicate, stale or forged tokens).
    pub(crate) fn rejected(&self) -> Arc<AtomicUsize> {
        self.rejected.clone()
    }
}

impl<R: Send + 'static> EventHandler for CompletionPort<R> {
    fn handle_notify(&mut self, ctx: &mut dyn Context, message: reactor::Message) -> Disposition {
        match message.downcast::<Done<R>>() {
            Ok(done) => {
                if self.callbacks.complete(done.act, done.result).is_err() {
                    self.rejected.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(other) => {
                if other.is::<Tick>() {
                    self.callbacks.poll_expired();
                }
            }
        }
        if self.end_when_idle && self.callbacks.is_empty() {
            ctx.end();
        }
        Disposition::Continue
    }
}
