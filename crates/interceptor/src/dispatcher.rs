//! The interceptor interface, and the dispatcher that keeps one interception point's chain.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use parking_lot::{Mutex, RwLock};

/// What an interceptor answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Verdict {
    /// Go on: the next interceptor, then the framework, see the (possibly changed) context.
    Continue,
    /// Veto the event: no later interceptor runs, and the framework drops the event.
    Stop,
}

/// What became of one dispatch.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// Every interceptor let the event through (or the chain was empty).
    Completed,
    /// An interceptor vetoed the event; later ones did not run.
    Vetoed {
        /// The name of the interceptor that vetoed.
        by: Arc<str>,
    },
}

impl Outcome {
    /// Whether an interceptor vetoed the event.
    pub fn is_vetoed(&self) -> bool {
        matches!(self, Outcome::Vetoed { .. })
    }
}

/// A service plugged into an interception point.
///
/// It is shared by every thread that dispatches events at its point, so it takes `&self`
/// and keeps any state (a rate limiter's buckets, an audit counter) behind its own
/// synchronization.
pub trait Interceptor<C: ?Sized>: Send + Sync {
    /// The interceptor's name, reported in a veto and in listings.
    fn name(&self) -> &str;

    /// Called with the context object each time the event occurs.
    fn intercept(&self, ctx: &mut C) -> Verdict;
}

/// An interceptor made of a name and a closure ([`from_fn`]).
pub struct FnInterceptor<F> {
    name: String,
    f: F,
}

impl<F> std::fmt::Debug for FnInterceptor<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FnInterceptor")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<C: ?Sized, F: Fn(&mut C) -> Verdict + Send + Sync> Interceptor<C> for FnInterceptor<F> {
    fn name(&self) -> &str {
        &self.name
    }
    fn intercept(&self, ctx: &mut C) -> Verdict {
        (self.f)(ctx)
    }
}

/// An interceptor from a closure.
///
/// ```
/// use interceptor::{Dispatcher, Verdict, from_fn};
/// let point: Dispatcher<u32> = Dispatcher::new("tick");
/// point.register(0, from_fn("double", |n: &mut u32| { *n *= 2; Verdict::Continue }));
/// let mut n = 21;
/// let _ = point.dispatch(&mut n);
/// assert_eq!(n, 42);
/// ```
pub fn from_fn<C: ?Sized, F: Fn(&mut C) -> Verdict + Send + Sync>(
    name: impl Into<String>,
    f: F,
) -> FnInterceptor<F> {
    FnInterceptor {
        name: name.into(),
        f,
    }
}

/// Names one registration, for [`Dispatcher::remove`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RegistrationId(u64);

/// A dispatcher's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Events an interceptor vetoed.
    pub vetoed: u64,
    /// Interceptors that panicked (each was removed from the chain).
    pub panicked: u64,
}

struct Entry<C: ?Sized> {
    id: u64,
    order: i32,
    name: Arc<str>,
    interceptor: Arc<dyn Interceptor<C>>,
}

impl<C: ?Sized> Clone for Entry<C> {
    fn clone(&self) -> Self {
        Entry {
            id: self.id,
            order: self.order,
            name: Arc::clone(&self.name),
            interceptor: Arc::clone(&self.interceptor),
        }
    }
}

/// One interception point: its ordered chain of interceptors and the dispatching of events
/// through it.
///
/// Dispatching takes a snapshot of the chain (an `Arc` clone under a read lock) and runs the
/// interceptors with no lock held, so an interceptor may register or remove interceptors,
/// itself included, and other threads may change the chain meanwhile; a change applies from
/// the next dispatch. An empty chain costs one atomic load.
pub struct Dispatcher<C: ?Sized> {
    point: String,
    chain: RwLock<Arc<[Entry<C>]>>,
    len: AtomicUsize,
    next_id: AtomicU64,
    vetoed: AtomicU64,
    panicked: AtomicU64,
    last_panic: Mutex<Option<(Arc<str>, String)>>,
}

impl<C: ?Sized> std::fmt::Debug for Dispatcher<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("point", &self.point)
            .field("chain", &self.names())
            .field("counters", &self.counters())
            .finish()
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_owned()
    }
}

impl<C: ?Sized> Dispatcher<C> {
    /// An empty dispatcher for the interception point named `point`.
    pub fn new(point: impl Into<String>) -> Self {
        Dispatcher {
            point: point.into(),
            chain: RwLock::new(Arc::from(Vec::new())),
            len: AtomicUsize::new(0),
            next_id: AtomicU64::new(1),
            vetoed: AtomicU64::new(0),
            panicked: AtomicU64::new(0),
            last_panic: Mutex::new(None),
        }
    }

    /// The interception point's name.
    pub fn point(&self) -> &str {
        &self.point
    }

    /// Registers `interceptor` at position `order`: lower orders run first, equal orders in
    /// the order they were registered.
    pub fn register<I: Interceptor<C> + 'static>(
        &self,
        order: i32,
        interceptor: I,
    ) -> RegistrationId {
        self.register_shared(order, Arc::new(interceptor))
    }

    /// Registers an interceptor that is shared with other points or with its owner.
    pub fn register_shared(
        &self,
        order: i32,
        interceptor: Arc<dyn Interceptor<C>>,
    ) -> RegistrationId {
        let entry = self.entry(order, interceptor);
        seq!("application" => self.participant(), "register({}, order {order})", entry.name);
        let id = RegistrationId(entry.id);
        let mut chain = self.chain.write();
        let mut next: Vec<Entry<C>> = chain.to_vec();
        let at = next.partition_point(|e| e.order <= order);
        next.insert(at, entry);
        let old = self.install(&mut chain, next);
        drop(chain);
        drop(old);
        id
    }

    /// Replaces the whole chain in one step (a reconfiguration): no event sees half of the
    /// old chain and half of the new one. Returns the new registrations, in chain order.
    pub fn replace(
        &self,
        interceptors: Vec<(i32, Arc<dyn Interceptor<C>>)>,
    ) -> Vec<RegistrationId> {
        let mut next: Vec<Entry<C>> = interceptors
            .into_iter()
            .map(|(order, i)| self.entry(order, i))
            .collect();
        next.sort_by_key(|e| e.order);
        let ids = next.iter().map(|e| RegistrationId(e.id)).collect();
        let mut chain = self.chain.write();
        let old = self.install(&mut chain, next);
        drop(chain);
        drop(old);
        ids
    }

    /// Removes a registration; `None` if it is not (or no longer) in the chain.
    pub fn remove(&self, id: RegistrationId) -> Option<Arc<dyn Interceptor<C>>> {
        let mut chain = self.chain.write();
        let at = chain.iter().position(|e| e.id == id.0)?;
        let mut next = chain.to_vec();
        let gone = next.remove(at);
        seq!(note self.participant(), "{} removed from the chain", gone.name);
        let old = self.install(&mut chain, next);
        drop(chain);
        drop(old);
        Some(gone.interceptor)
    }

    /// The chain in the order it runs: registration, order, name.
    pub fn names(&self) -> Vec<(RegistrationId, i32, Arc<str>)> {
        self.chain
            .read()
            .iter()
            .map(|e| (RegistrationId(e.id), e.order, Arc::clone(&e.name)))
            .collect()
    }

    /// How many interceptors are registered.
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    /// Whether no interceptor is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The counters so far.
    pub fn counters(&self) -> Counters {
        Counters {
            vetoed: self.vetoed.load(Ordering::Relaxed),
            panicked: self.panicked.load(Ordering::Relaxed),
        }
    }

    /// The name and message of the last interceptor that panicked here.
    pub fn last_panic(&self) -> Option<(Arc<str>, String)> {
        self.last_panic.lock().clone()
    }

    /// Runs the chain on `ctx`, in order, until an interceptor vetoes.
    ///
    /// An interceptor that panics is removed from the chain and counted, and the event goes
    /// on to the next one; whatever it changed in `ctx` before panicking stays changed.
    pub fn dispatch(&self, ctx: &mut C) -> Outcome {
        if self.is_empty() {
            return Outcome::Completed;
        }
        let chain = Arc::clone(&self.chain.read());
        // Interaction events for the sequence diagrams drawn from runs, on a point that has
        // interceptors: one check per dispatch when nothing records (this is a per-record path).
        let drawn = posa_seq::enabled();
        if drawn {
            seq!("framework" => self.participant(), "dispatch(&mut ctx)");
        }
        for e in chain.iter() {
            if drawn {
                seq!(self.participant() => e.name, "intercept(ctx)");
            }
            match catch_unwind(AssertUnwindSafe(|| e.interceptor.intercept(ctx))) {
                Ok(Verdict::Continue) => {
                    if drawn {
                        seq!(reply e.name => self.participant(), "Continue");
                    }
                }
                Ok(Verdict::Stop) => {
                    if drawn {
                        seq!(reply e.name => self.participant(), "Stop");
                        seq!(reply self.participant() => "framework", "Vetoed by {}", e.name);
                    }
                    self.vetoed.fetch_add(1, Ordering::Relaxed);
                    return Outcome::Vetoed {
                        by: Arc::clone(&e.name),
                    };
                }
                Err(payload) => {
                    let message = panic_message(&*payload);
                    seq!(fail e.name => self.participant(), "panicked: removed from the chain, counted");
                    // Dropping the payload could panic again; it is a few bytes.
                    std::mem::forget(payload);
                    self.panicked.fetch_add(1, Ordering::Relaxed);
                    *self.last_panic.lock() = Some((Arc::clone(&e.name), message));
                    self.remove(RegistrationId(e.id));
                }
            }
        }
        if drawn {
            seq!(reply self.participant() => "framework", "Completed");
        }
        Outcome::Completed
    }

    /// This dispatcher's name in the sequence diagrams drawn from runs.
    fn participant(&self) -> String {
        format!("Dispatcher \"{}\"", self.point)
    }

    fn entry(&self, order: i32, interceptor: Arc<dyn Interceptor<C>>) -> Entry<C> {
        Entry {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            order,
            name: Arc::from(interceptor.name()),
            interceptor,
        }
    }

    /// Puts `next` in place and hands back the old chain, which the caller drops after
    /// releasing the lock (dropping an interceptor runs its code).
    #[must_use]
    fn install(&self, chain: &mut Arc<[Entry<C>]>, next: Vec<Entry<C>>) -> Arc<[Entry<C>]> {
        self.len.store(next.len(), Ordering::Release);
        std::mem::replace(chain, Arc::from(next))
    }
}
