//! The queued-completion-event strategy: completions wait in a queue the initiator drains.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use pattern_core::{Clock, MonotonicClock};

use crate::THREAD;
use crate::{ActError, Completion, CompletionToken, Full, Report, TokenTable};

/// A completion event: the token, the initiator's context it named, and the outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletionEvent<C, R> {
    /// The token the service returned.
    pub token: CompletionToken,
    /// What the initiator stored when it issued the token.
    pub context: C,
    /// The service's result, or why there is none.
    pub completion: Completion<R>,
}

struct State<C, R> {
    table: TokenTable<C>,
    events: VecDeque<CompletionEvent<C, R>>,
}

struct Shared<C, R> {
    state: Mutex<State<C, R>>,
    ready: Condvar,
    limit: usize,
}

/// Demultiplexing by queued completion events: [`complete`](Self::complete) (on any thread)
/// turns the token back into the initiator's context and queues a [`CompletionEvent`]; the
/// initiator takes events when it chooses ([`try_next`](Self::try_next),
/// [`next_timeout`](Self::next_timeout), [`drain`](Self::drain)) and dispatches on the
/// context, on its own thread.
///
/// The limit counts outstanding tokens *and* queued events, so an initiator that stops
/// draining is told [`Full`] instead of growing the queue without bound.
///
/// ```
/// use act::{Completion, CompletionQueue};
///
/// #[derive(Debug, PartialEq)]
/// enum Step { ReadHeader, ReadBody }
///
/// let queue = CompletionQueue::<Step, usize>::with_limit(8);
/// let header = queue.issue(Step::ReadHeader).unwrap();
/// let body = queue.issue(Step::ReadBody).unwrap();
///
/// // A service answers, out of order, from another thread.
/// let service = queue.clone();
/// std::thread::spawn(move || {
///     service.complete(body, 512).unwrap();
///     service.complete(header, 16).unwrap();
/// })
/// .join()
/// .unwrap();
///
/// let events = queue.drain();
/// assert_eq!(events[0].context, Step::ReadBody);
/// assert_eq!(events[0].completion, Completion::Done(512));
/// assert_eq!(events[1].context, Step::ReadHeader);
/// ```
pub struct CompletionQueue<C, R> {
    shared: Arc<Shared<C, R>>,
    clock: Arc<dyn Clock>,
}

impl<C, R> Clone for CompletionQueue<C, R> {
    fn clone(&self) -> Self {
        CompletionQueue {
            shared: self.shared.clone(),
            clock: self.clock.clone(),
        }
    }
}

impl<C, R> fmt::Debug for CompletionQueue<C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.state.lock();
        f.debug_struct("CompletionQueue")
            .field("outstanding", &state.table.len())
            .field("queued", &state.events.len())
            .field("limit", &self.shared.limit)
            .finish_non_exhaustive()
    }
}

impl<C, R> Default for CompletionQueue<C, R> {
    fn default() -> Self {
        Self::with_limit(crate::MAX_SLOTS)
    }
}

impl<C, R> CompletionQueue<C, R> {
    /// At most `limit` tokens outstanding or queued, deadlines on the monotonic clock.
    pub fn with_limit(limit: usize) -> Self {
        Self::with_clock(limit, Arc::new(MonotonicClock))
    }

    /// At most `limit` tokens outstanding or queued, deadlines measured on `clock`.
    pub fn with_clock(limit: usize, clock: Arc<dyn Clock>) -> Self {
        let table = TokenTable::with_limit(limit);
        let limit = table.limit();
        CompletionQueue {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    table,
                    events: VecDeque::new(),
                }),
                ready: Condvar::new(),
                limit,
            }),
            clock,
        }
    }

    fn insert(&self, context: C, deadline: Option<Instant>) -> Result<CompletionToken, Full<C>> {
        seq!(
            THREAD => QUEUE,
            "issue(context){}",
            if deadline.is_some() { " with a deadline" } else { "" }
        );
        let issued = self.insert_untraced(context, deadline);
        match &issued {
            Ok(token) => seq!(reply QUEUE => THREAD, "token {}", short(*token)),
            Err(full) => seq!(fail QUEUE => THREAD, "Err({full}): the context handed back"),
        }
        issued
    }

    fn insert_untraced(
        &self,
        context: C,
        deadline: Option<Instant>,
    ) -> Result<CompletionToken, Full<C>> {
        let mut state = self.shared.state.lock();
        if state.table.len() + state.events.len() >= self.shared.limit {
            return Err(Full::new(context, self.shared.limit));
        }
        match deadline {
            Some(at) => state.table.issue_with_deadline(context, at),
            None => state.table.issue(context),
        }
    }

    /// Starts an operation: stores `context` and returns the token to give the service.
    pub fn issue(&self, context: C) -> Result<CompletionToken, Full<C>> {
        self.insert(context, None)
    }

    /// Like [`issue`](Self::issue); if no result arrives within `timeout` (on the clock), the
    /// next [`poll_expired`](Self::poll_expired) queues a [`Completion::TimedOut`] event.
    pub fn issue_with_timeout(
        &self,
        context: C,
        timeout: Duration,
    ) -> Result<CompletionToken, Full<C>> {
        self.insert(context, Some(self.clock.now() + timeout))
    }

    /// The service's result for `token`: queues its completion event and wakes a waiting
    /// initiator. A duplicate, stale or forged token queues nothing and is refused.
    pub fn complete(&self, token: CompletionToken, result: R) -> Result<(), ActError> {
        seq!(THREAD => QUEUE, "complete(token {}, result)", short(token));
        let mut state = self.shared.state.lock();
        let context = state.table.complete(token).inspect_err(|e| {
            seq!(fail QUEUE => THREAD, "Err({}): nothing queued", kind(e));
        })?;
        seq!(reply QUEUE => THREAD, "Ok: check tag and generation, queue the event, wake the initiator");
        state.events.push_back(CompletionEvent {
            token,
            context,
            completion: Completion::Done(result),
        });
        drop(state);
        self.shared.ready.notify_one();
        Ok(())
    }

    /// Ends an outstanding operation without queueing an event and gives its context back.
    pub fn cancel(&self, token: CompletionToken) -> Result<C, ActError> {
        seq!(THREAD => QUEUE, "cancel(token {})", short(token));
        let cancelled = self.shared.state.lock().table.cancel(token);
        match &cancelled {
            Ok(_) => seq!(reply QUEUE => THREAD, "Ok(context)"),
            Err(e) => seq!(fail QUEUE => THREAD, "Err({})", kind(e)),
        }
        cancelled
    }

    /// Queues a [`Completion::TimedOut`] event for every token whose deadline is at or before
    /// `now`, each exactly once; returns how many.
    pub fn expire(&self, now: Instant) -> usize {
        let mut state = self.shared.state.lock();
        let expired = state.table.expire(now);
        let n = expired.len();
        state
            .events
            .extend(expired.into_iter().map(|(token, context)| CompletionEvent {
                token,
                context,
                completion: Completion::TimedOut,
            }));
        drop(state);
        if n > 0 {
            seq!(note QUEUE, "{n} deadline(s) passed: TimedOut event(s) queued");
            self.shared.ready.notify_all();
        }
        n
    }

    /// [`expire`](Self::expire) at the clock's current time.
    pub fn poll_expired(&self) -> usize {
        self.expire(self.clock.now())
    }

    /// The earliest deadline of an outstanding token.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.shared.state.lock().table.next_deadline()
    }

    /// The next completion event, if one is queued.
    pub fn try_next(&self) -> Option<CompletionEvent<C, R>> {
        seq!(THREAD => QUEUE, "try_next()");
        let event = self.shared.state.lock().events.pop_front();
        match &event {
            Some(e) => seq!(
                reply QUEUE => THREAD,
                "event(token {}, context, {})",
                short(e.token),
                match e.completion {
                    Completion::Done(_) => "Done(result)",
                    Completion::TimedOut => "TimedOut",
                    _ => "Abandoned",
                }
            ),
            None => seq!(reply QUEUE => THREAD, "None"),
        }
        event
    }

    /// The next completion event, waiting up to `timeout` (real time) for one.
    pub fn next_timeout(&self, timeout: Duration) -> Option<CompletionEvent<C, R>> {
        let give_up = Instant::now() + timeout;
        let mut state = self.shared.state.lock();
        loop {
            if let Some(event) = state.events.pop_front() {
                return Some(event);
            }
            if self
                .shared
                .ready
                .wait_until(&mut state, give_up)
                .timed_out()
            {
                return state.events.pop_front();
            }
        }
    }

    /// Every queued completion event, in completion order.
    pub fn drain(&self) -> Vec<CompletionEvent<C, R>> {
        self.shared.state.lock().events.drain(..).collect()
    }

    /// Number of tokens issued and not yet completed, cancelled or expired.
    pub fn outstanding(&self) -> usize {
        self.shared.state.lock().table.len()
    }

    /// Number of completion events waiting to be taken.
    pub fn queued(&self) -> usize {
        self.shared.state.lock().events.len()
    }

    /// The outstanding tokens and their deadlines.
    pub fn report(&self) -> Report {
        self.shared.state.lock().table.report()
    }

    /// The most tokens outstanding or queued.
    pub fn limit(&self) -> usize {
        self.shared.limit
    }
}

/// The queue's name in the sequence diagrams drawn from runs.
const QUEUE: &str = "CompletionQueue (token table)";

/// A token as the sequence diagrams show it: slot and generation (the tag differs per run).
fn short(token: CompletionToken) -> String {
    format!("{}v{}", token.slot(), token.generation())
}

/// An error's kind, without the token's tag.
fn kind(e: &ActError) -> &'static str {
    match e {
        ActError::Duplicate { .. } => "Duplicate",
        ActError::Stale { .. } => "Stale",
        ActError::Forged { .. } => "Forged",
        _ => "refused",
    }
}
