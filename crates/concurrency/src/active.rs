//! Active Object: method invocation on a proxy, method execution on the object's own thread.
//!
//! The [`ActiveObject`] is the generic part of the proxy: a typed proxy wraps it and turns each
//! of its methods into a [`MethodRequest`] (`invoke`, `invoke_guarded`), which goes into the
//! activation queue (a [`MonitorQueue`]) and hands the client an [`Eventual`]. The scheduler,
//! a thread that owns the servant, takes requests out in order, runs each one whose guard holds
//! on the servant, and keeps the others waiting until a later request changes the servant's
//! state.

use crate::THREAD;
use std::fmt;
use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};

use crate::error::Cancelled;
use crate::future::{Eventual, Promise, promise};
use crate::monitor::MonitorQueue;

/// What a method request does, behind a trait object so that requests of every result type
/// share one activation queue.
trait Call<S>: Send {
    fn can_run(&self, servant: &S) -> bool;
    fn call(self: Box<Self>, servant: &mut S);
    fn cancel(self: Box<Self>, reason: Cancelled);
}

/// A method request bound to its arguments (captured by `body`) and its promise.
struct Bound<S, T, G, F> {
    guard: G,
    body: F,
    promise: Promise<T>,
    servant: PhantomData<fn(&mut S)>,
}

impl<S, T, G, F> Call<S> for Bound<S, T, G, F>
where
    T: Send,
    G: Fn(&S) -> bool + Send,
    F: FnOnce(&mut S) -> T + Send,
{
    fn can_run(&self, servant: &S) -> bool {
        (self.guard)(servant)
    }

    fn call(self: Box<Self>, servant: &mut S) {
        let Bound { body, promise, .. } = *self;
        // If `body` panics, `promise` is dropped while unwinding and the client sees
        // `Cancelled::Abandoned`.
        let value = body(servant);
        promise.fulfil(value);
    }

    fn cancel(self: Box<Self>, reason: Cancelled) {
        self.promise.cancel(reason);
    }
}

/// One method invocation, reified: its name, its guard (the synchronisation constraint checked
/// against the servant's state), the call on the servant, and the promise of its result.
///
/// ```
/// use concurrency::MethodRequest;
///
/// // A request that may only run when the servant (a buffer of readings) is not empty.
/// let (request, eventual) =
///     MethodRequest::guarded("take", |b: &Vec<u32>| !b.is_empty(), |b: &mut Vec<u32>| b.pop());
/// let mut servant = Vec::new();
/// assert!(!request.can_run(&servant));
/// servant.push(7);
/// assert!(request.can_run(&servant));
/// request.call(&mut servant);
/// assert_eq!(eventual.wait(), Ok(Some(7)));
/// ```
pub struct MethodRequest<S> {
    name: &'static str,
    call: Box<dyn Call<S>>,
}

impl<S: 'static> MethodRequest<S> {
    /// A request that may always run, and the future of its result.
    pub fn new<T, F>(name: &'static str, body: F) -> (Self, Eventual<T>)
    where
        T: Send + 'static,
        F: FnOnce(&mut S) -> T + Send + 'static,
    {
        Self::guarded(name, |_: &S| true, body)
    }

    /// A request that may run only when `guard` holds on the servant, and the future of its
    /// result.
    pub fn guarded<T, G, F>(name: &'static str, guard: G, body: F) -> (Self, Eventual<T>)
    where
        T: Send + 'static,
        G: Fn(&S) -> bool + Send + 'static,
        F: FnOnce(&mut S) -> T + Send + 'static,
    {
        let (promise, eventual) = promise();
        let call = Box::new(Bound {
            guard,
            body,
            promise,
            servant: PhantomData,
        });
        (MethodRequest { name, call }, eventual)
    }
}

impl<S> MethodRequest<S> {
    /// The method's name, for tracing and narration.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Whether the request's guard holds on `servant` now.
    pub fn can_run(&self, servant: &S) -> bool {
        self.call.can_run(servant)
    }

    /// Runs the method on `servant` and fulfils the future.
    pub fn call(self, servant: &mut S) {
        self.call.call(servant);
    }

    /// Resolves the future with `reason` without running the method.
    pub fn cancel(self, reason: Cancelled) {
        self.call.cancel(reason);
    }
}

impl<S> fmt::Debug for MethodRequest<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MethodRequest")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// How [`ActiveObject::shutdown`] treats the requests still pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Shutdown {
    /// Run every queued request whose guard holds (in order, re-checking waiting requests after
    /// each one); cancel the rest with [`Cancelled::ShutDown`].
    Drain,
    /// Run nothing more than the request already running; cancel every pending request with
    /// [`Cancelled::ShutDown`].
    Cancel,
}

/// What the scheduler did, handed back with the servant when the active object shuts down.
#[derive(Debug)]
#[non_exhaustive]
pub struct ShutdownReport<S> {
    /// The servant, with the state the executed requests left it in.
    pub servant: S,
    /// How many requests ran (including any that panicked).
    pub executed: usize,
    /// How many requests were resolved with a [`Cancelled`] reason by the scheduler.
    pub cancelled: usize,
}

/// The scheduler: owns the servant and the list of requests whose guard did not hold yet.
struct Scheduler<S> {
    servant: S,
    queue: Arc<MonitorQueue<MethodRequest<S>>>,
    cancel: Arc<AtomicBool>,
    waiting: Vec<MethodRequest<S>>,
    waiting_limit: usize,
    executed: usize,
    cancelled: usize,
}

impl<S> Scheduler<S> {
    fn run(mut self) -> ShutdownReport<S> {
        loop {
            if self.cancel.load(Ordering::Acquire) {
                break;
            }
            self.run_waiting();
            let next = self.queue.pop();
            if self.cancel.load(Ordering::Acquire) {
                if let Some(request) = next {
                    self.cancel_one(request, Cancelled::ShutDown);
                }
                break;
            }
            match next {
                Some(request) => self.dispatch(request),
                // Closed and drained: a draining shutdown.
                None => {
                    self.run_waiting();
                    break;
                }
            }
        }
        // Every request still pending gets its defined result.
        for request in self.queue.drain() {
            self.cancel_one(request, Cancelled::ShutDown);
        }
        for request in std::mem::take(&mut self.waiting) {
            self.cancel_one(request, Cancelled::ShutDown);
        }
        ShutdownReport {
            servant: self.servant,
            executed: self.executed,
            cancelled: self.cancelled,
        }
    }

    /// Runs `request` if its guard holds, else keeps it waiting (or refuses it if the waiting
    /// list is full).
    fn dispatch(&mut self, request: MethodRequest<S>) {
        match self.guard(&request) {
            Some(true) => self.execute(request),
            Some(false) if self.waiting.len() < self.waiting_limit => {
                seq!(note THREAD, "{}: guard false, kept waiting", request.name());
                self.waiting.push(request)
            }
            Some(false) => self.cancel_one(request, Cancelled::Backlog),
            // The guard panicked: the request is dropped and its client sees `Abandoned`.
            None => self.executed += 1,
        }
    }

    /// Runs waiting requests whose guard now holds, oldest first, re-checking from the oldest
    /// after each one since it may have changed the servant's state.
    fn run_waiting(&mut self) {
        loop {
            let found = (0..self.waiting.len())
                .map(|i| (i, self.guard(&self.waiting[i])))
                .find(|(_, g)| *g != Some(false));
            let Some((i, guard)) = found else { return };
            let request = self.waiting.remove(i);
            if guard.is_some() {
                self.execute(request);
            } else {
                // The guard panicked: dropping the request abandons its future.
                drop(request);
                self.executed += 1;
            }
        }
    }

    /// The request's guard, or `None` if evaluating it panicked.
    fn guard(&self, request: &MethodRequest<S>) -> Option<bool> {
        seq!(THREAD => SERVANT, "{}: can_run?", request.name());
        panic::catch_unwind(AssertUnwindSafe(|| request.can_run(&self.servant))).ok()
    }

    fn execute(&mut self, request: MethodRequest<S>) {
        seq!(THREAD => SERVANT, "{}: call, then fulfil its promise", request.name());
        // A panicking method abandons its own future; the scheduler goes on with the next.
        let _ = panic::catch_unwind(AssertUnwindSafe(|| request.call(&mut self.servant)));
        self.executed += 1;
    }

    fn cancel_one(&mut self, request: MethodRequest<S>, reason: Cancelled) {
        seq!(note THREAD, "{}: promise resolved Err({reason:?})", request.name());
        request.cancel(reason);
        self.cancelled += 1;
    }
}

/// The servant's name in the sequence diagrams drawn from runs.
const SERVANT: &str = "servant";

/// An active object: a servant running on a scheduler thread of its own, reached through
/// method requests queued in a bounded activation queue.
///
/// A typed proxy wraps it, one method per servant method, each returning an [`Eventual`]:
///
/// ```
/// use concurrency::{ActiveObject, Eventual, Shutdown};
///
/// /// The servant: a gateway's store of log records, touched only by the scheduler thread.
/// #[derive(Default)]
/// struct Store {
///     records: Vec<String>,
/// }
///
/// /// The proxy: what clients call, from any thread.
/// struct StoreProxy(ActiveObject<Store>);
///
/// impl StoreProxy {
///     fn append(&self, record: &str) -> Eventual<usize> {
///         let record = record.to_string();
///         self.0.invoke("append", move |s: &mut Store| {
///             s.records.push(record);
///             s.records.len()
///         })
///     }
/// }
///
/// let proxy = StoreProxy(ActiveObject::new(Store::default(), 8));
/// let first = proxy.append("sensor-1: 21.5 C");
/// let second = proxy.append("sensor-2: 19.0 C");
/// assert_eq!(first.wait(), Ok(1));
/// assert_eq!(second.wait(), Ok(2));
/// let report = proxy.0.shutdown(Shutdown::Drain);
/// assert_eq!(report.servant.records.len(), 2);
/// ```
pub struct ActiveObject<S: Send + 'static> {
    queue: Arc<MonitorQueue<MethodRequest<S>>>,
    cancel: Arc<AtomicBool>,
    scheduler: Option<JoinHandle<ShutdownReport<S>>>,
}

impl<S: Send + 'static> ActiveObject<S> {
    /// Starts the scheduler thread with `servant` and an activation queue of `capacity`
    /// requests. At most `capacity` further requests may wait for their guard; beyond that a
    /// request whose guard does not hold is refused with [`Cancelled::Backlog`].
    ///
    /// # Panics
    ///
    /// If `capacity` is zero, or if the OS refuses a new thread.
    pub fn new(servant: S, capacity: usize) -> Self {
        let queue = Arc::new(MonitorQueue::new(capacity));
        let cancel = Arc::new(AtomicBool::new(false));
        let scheduler = Scheduler {
            servant,
            queue: queue.clone(),
            cancel: cancel.clone(),
            waiting: Vec::new(),
            waiting_limit: capacity,
            executed: 0,
            cancelled: 0,
        };
        let handle = thread::Builder::new()
            .name("active-object".into())
            .spawn(move || scheduler.run())
            .expect("spawn the active object's scheduler thread");
        ActiveObject {
            queue,
            cancel,
            scheduler: Some(handle),
        }
    }

    /// Queues `request`, waiting while the activation queue is full. A request that arrives
    /// after shutdown began is resolved with [`Cancelled::Closed`] at once.
    pub fn enqueue(&self, request: MethodRequest<S>) {
        seq!(THREAD => "ActiveObject (proxy)", "{}()", request.name());
        seq!("ActiveObject (proxy)" => THREAD, "Eventual (its promise goes with the request)");
        if let Err(refused) = self.queue.push(request) {
            refused.into_inner().cancel(Cancelled::Closed);
        }
    }

    /// Queues a call of `body` on the servant and returns the future of its result.
    pub fn invoke<T, F>(&self, name: &'static str, body: F) -> Eventual<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut S) -> T + Send + 'static,
    {
        let (request, eventual) = MethodRequest::new(name, body);
        self.enqueue(request);
        eventual
    }

    /// Queues a call of `body` that runs only once `guard` holds on the servant.
    pub fn invoke_guarded<T, G, F>(&self, name: &'static str, guard: G, body: F) -> Eventual<T>
    where
        T: Send + 'static,
        G: Fn(&S) -> bool + Send + 'static,
        F: FnOnce(&mut S) -> T + Send + 'static,
    {
        let (request, eventual) = MethodRequest::guarded(name, guard, body);
        self.enqueue(request);
        eventual
    }

    /// The number of requests in the activation queue (not counting those waiting for their
    /// guard inside the scheduler).
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Begins shutting down without waiting: new requests are refused from now on, and the
    /// scheduler treats pending ones as `mode` says.
    pub fn close(&self, mode: Shutdown) {
        if mode == Shutdown::Cancel {
            self.cancel.store(true, Ordering::Release);
        }
        self.queue.close();
    }

    /// Shuts down as `mode` says, waits for the scheduler thread, and hands back the servant.
    /// Every future ever returned is resolved by the time this returns.
    pub fn shutdown(mut self, mode: Shutdown) -> ShutdownReport<S> {
        self.close(mode);
        let handle = self
            .scheduler
            .take()
            .expect("the scheduler runs until shutdown");
        match handle.join() {
            Ok(report) => report,
            Err(panic) => panic::resume_unwind(panic),
        }
    }
}

impl<S: Send + 'static> Drop for ActiveObject<S> {
    /// Dropping the active object drains it ([`Shutdown::Drain`]) and waits for the scheduler.
    fn drop(&mut self) {
        if let Some(handle) = self.scheduler.take() {
            self.close(Shutdown::Drain);
            let _ = handle.join();
        }
    }
}

impl<S: Send + 'static> fmt::Debug for ActiveObject<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActiveObject")
            .field("queue", &self.queue)
            .finish_non_exhaustive()
    }
}
