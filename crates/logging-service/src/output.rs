//! The output as an Active Object: the sinks (the file store, the forwarder) run on a thread
//! of their own, so that writing files and `fdatasync` (`--fsync batch`) never run on a
//! dispatcher thread, and connections hand their batches over through a bounded Monitor
//! Object queue.
//!
//! | Participant (POSA2) | Here |
//! |---|---|
//! | proxy | [`Output`]: `write`, `write_then`, `write_acknowledged`, `tick`, `settle`, `flush`, `reopen`, `stats` |
//! | method request | the private `Request` (write a batch with an optional completion, tick, barrier, flush, reopen) |
//! | activation list | a [`concurrency::MonitorQueue`] of [`QUEUE`] requests, and an express lane for acknowledged writes |
//! | scheduler | the `logd-store` thread: takes every request queued (at most [`QUEUE`]) in one monitor entry and runs them as one group |
//! | servant | the sinks, each a [`RecordSink`], owned by that thread alone |
//! | future | [`concurrency::Eventual`] for `flush`, `reopen` and `settle`; for writes, a completion run once the batch's group is durable, which the handlers turn into a notification on their dispatcher (`Remote::notify`) |
//!
//! Group commit: the scheduler brackets each group with [`RecordSink::begin_group`] and
//! [`RecordSink::end_group`], so under `--fsync batch` the batches that queued up while the
//! last group was synced share one `fdatasync` per file; every batch is synced before its
//! completion runs, as before. Acknowledged writes ([`Output::write_acknowledged`]: RELP
//! sessions, proactor connections) run before the next queued request, in a group of their
//! own, so their round trip does not wait for the queue of plain writes.
//!
//! Back-pressure: a TCP connection that finds the queue full ([`Output::wait_for_room`]) is
//! suspended and woken by the scheduler's next pop, so the other connections of its
//! dispatcher thread go on; any other writer that finds it full waits on the monitor's
//! `not_full` condition (a timed wait that warns while the stall lasts). Memory stays bounded
//! and nothing read is dropped. When a sink is backlogged (records held after failed writes),
//! [`Output::backlogged`] is true and TCP connections stop reading, as before.

use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use concurrency::{Eventual, MonitorQueue, Promise, PushError, promise};
use parking_lot::Mutex;
use synchronization::{Guarded, LockStrategy, MutexLock};

use crate::intercept::{Chain, Point};
use crate::record::RecordBatch;
use crate::store::{RecordSink, Stats};

/// Requests the store's activation queue holds; batches of up to a read budget each (256 KiB
/// of input), so the queue bounds the memory of records in flight. Small, because a record
/// waits behind every batch queued before it (a RELP answer's round trip): a few are enough
/// to keep the store's thread busy while the dispatcher reads the next.
pub const QUEUE: usize = 2;

/// How long a writer waits on a full queue before it says so (and goes on waiting).
const STALL_WARNING: Duration = Duration::from_secs(1);

/// What a write's completion is told: whether every record of the batch is in its place in
/// every sink (written, and synced under `--fsync batch`; queued in the spool).
type Done = Box<dyn FnOnce(bool) + Send>;

/// What a connection waiting for room in the queue is woken with.
pub type Waker = Box<dyn FnOnce() + Send>;

/// An emptied batch, its box and buffers kept for the next write: reusing the box too is
/// what keeps a write request free of allocations once the output is warm.
struct Spare(Box<RecordBatch>);

/// A method request on the sinks.
enum Request {
    Write {
        /// Boxed (and the boxes reused through `Shared::free`), so the queue's slots stay small.
        batch: Box<RecordBatch>,
        done: Option<Done>,
    },
    /// Wakes the scheduler for the timer's work (see [`Output::tick`]).
    Tick,
    /// Answered once every request before it is done.
    Barrier(Promise<io::Result<()>>),
    Flush(Promise<io::Result<()>>),
    Reopen(Promise<io::Result<()>>),
    /// A sink attached at run time (a svc.conf component): it gets every batch from here on.
    Attach(Box<dyn RecordSink>, Promise<io::Result<()>>),
    /// The sink a component attached, taken out (answered at once, its group ended).
    Detach(String, Promise<Option<Box<dyn RecordSink>>>),
    /// A detached sink kept for its counters (answered once they are published).
    Retire(Box<dyn RecordSink>, Promise<io::Result<()>>),
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Request::Write { .. } => "Write",
            Request::Tick => "Tick",
            Request::Barrier(_) => "Barrier",
            Request::Flush(_) => "Flush",
            Request::Reopen(_) => "Reopen",
            Request::Attach(..) => "Attach",
            Request::Detach(..) => "Detach",
            Request::Retire(..) => "Retire",
        })
    }
}

/// What the dispatcher's side and the store's thread share.
#[derive(Default)]
struct Shared {
    /// The dispatcher's counters (`count`), and the sinks' as of the scheduler's last group.
    counters: Counters,
    /// A sink was backlogged after the last group.
    backlogged: AtomicBool,
    /// Records in the queue (`Stats::store_queued`).
    queued_records: AtomicU64,
    /// The timer asked for a tick that the scheduler has not run yet.
    tick_due: AtomicBool,
    /// Emptied batches, back from the scheduler for the next writes.
    free: Mutex<Vec<Spare>>,
    /// Wakers of connections that stopped reading because the queue was full
    /// ([`Output::wait_for_room`]); run by the scheduler after it takes a group.
    room_waiters: Mutex<Vec<Waker>>,
    /// The express lane: acknowledged writes ([`Output::write_acknowledged`]), run before
    /// the next request of the queue.
    express: Mutex<std::collections::VecDeque<Request>>,
}

/// The output's counters, written with the Thread-Safe Interface pattern over a strategized
/// lock: each method below takes the lock once and calls the internal methods of
/// [`CounterState`], which take `&mut` state (only a held lock gives it) and have no way back
/// to the lock. The strategy is a mutex: the dispatcher's threads, the store's thread and the
/// readers of `stats` share the counters under every concurrency model.
#[derive(Debug, Default)]
struct Counters<L: LockStrategy = MutexLock> {
    state: Guarded<CounterState, L>,
}

/// The counters' state and its internal methods (the lock is held).
#[derive(Debug, Default)]
struct CounterState {
    /// Counted by the connections and the scheduler (`records`).
    base: Stats,
    /// What the sinks' `add_stats` said after the last group.
    sinks: Stats,
}

impl CounterState {
    fn total(&self) -> Stats {
        let mut s = self.base;
        s += self.sinks;
        s
    }

    fn take_group(&mut self, records: u64, sinks: Stats) {
        self.base.records += records;
        self.sinks = sinks;
    }
}

impl<L: LockStrategy> Counters<L> {
    /// Runs `f` on the connections' counters. `f` gets the state, not the component: a
    /// call back into a method of `Counters` (or of [`Output`]) from `f` would take the lock
    /// `f` runs under, which no lock here allows (see the tests).
    fn count(&self, f: impl FnOnce(&mut Stats)) {
        f(&mut self.state.write().base);
    }

    /// Every counter, the sinks' as of the last group.
    fn total(&self) -> Stats {
        self.state.read().total()
    }

    /// A group's records and the sinks' counters after it, in one critical section.
    fn publish(&self, records: u64, sinks: Stats) {
        self.state.write().take_group(records, sinks);
    }
}

/// Every sink behind one proxy, run by the store's thread (see the [module
/// documentation](self)), with the counters: what the handlers share.
pub struct Output {
    /// The interception points (`crate::intercept`).
    chain: Arc<Chain>,
    shared: Arc<Shared>,
    queue: Arc<MonitorQueue<Request>>,
    scheduler: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Output")
            .field("queue", &self.queue)
            .field("backlogged", &self.backlogged())
            .finish_non_exhaustive()
    }
}

impl Output {
    /// An output writing to `sinks`, in order, on a thread of their own.
    pub fn new(sinks: Vec<Box<dyn RecordSink>>) -> Arc<Self> {
        Self::with_chain(sinks, Arc::default())
    }

    /// An output whose records pass `chain`'s "record decoded" point (the sinks may be
    /// wrapped in its other points, [`crate::intercept::Intercepted`]).
    ///
    /// # Panics
    ///
    /// If the OS refuses the store's thread.
    pub fn with_chain(sinks: Vec<Box<dyn RecordSink>>, chain: Arc<Chain>) -> Arc<Self> {
        let shared = Arc::new(Shared::default());
        let queue = Arc::new(MonitorQueue::new(QUEUE));
        let scheduler = Scheduler {
            sinks,
            retired: Vec::new(),
            chain: chain.clone(),
            shared: shared.clone(),
            queue: queue.clone(),
            passed: RecordBatch::new(),
            records: 0,
            answers: Vec::new(),
            emptied: Vec::new(),
        };
        let handle = std::thread::Builder::new()
            .name("logd-store".into())
            .spawn(move || scheduler.run())
            .expect("start the store's thread");
        Arc::new(Output {
            chain,
            shared,
            queue,
            scheduler: Some(handle),
        })
    }

    /// Hands a copy of `batch` to the store's thread and returns: the records are written in
    /// the order of the calls (per connection, in the order read).
    pub fn write(&self, batch: &RecordBatch) {
        self.submit(batch, None);
    }

    /// As [`write`](Self::write), and runs `done` on the store's thread once the batch's group
    /// is done, with whether every record of it is in its place in every sink (written to its
    /// file, and synced under `--fsync batch`; queued in the forwarder's spool): what an
    /// acknowledging input (RELP) answers on. Since the store takes requests in order, `done`
    /// also says that every batch written before is done (an empty batch is only that).
    pub fn write_then(&self, batch: &RecordBatch, done: impl FnOnce(bool) + Send + 'static) {
        self.submit(batch, Some(Box::new(done)));
    }

    /// As [`write_then`](Self::write_then), for a writer that has at most one batch in the
    /// store and waits for its answer (a RELP session): the batch takes
    /// the express lane, run before the next request of the queue and answered in a group of
    /// its own, so its round trip waits for the request in progress, not for the queue of
    /// plain writes. Its order with the writer's own plain writes and barriers is not kept.
    pub fn write_acknowledged(
        &self,
        batch: &RecordBatch,
        done: impl FnOnce(bool) + Send + 'static,
    ) {
        let request = self.request(batch, Some(Box::new(done)));
        self.shared.express.lock().push_back(request);
        // Wakes an idle store; a full queue means it is busy and looks at the lane anyway.
        let _ = self.queue.try_push(Request::Tick);
    }

    /// Whether the queue is full now; if so, `waker()` is kept and run once the store's thread
    /// has taken requests out (made room), and the caller should stop reading until then.
    ///
    /// This is how a connection on the dispatcher yields to the others instead of waiting
    /// in [`write`](Self::write) on a full queue (which holds up every connection of its
    /// dispatcher thread): it is suspended and resumed by the waker's notification.
    pub fn wait_for_room(&self, waker: impl FnOnce() -> Waker) -> bool {
        let mut waiters = self.shared.room_waiters.lock();
        // Checked under the waiters' lock, which the scheduler takes after each pop: a
        // pop either comes before this check (room: no wait) or runs the waker.
        if self.queue.len() < QUEUE {
            return false;
        }
        waiters.push(waker());
        true
    }

    /// A write request with a copy of `batch`, counted as queued.
    fn request(&self, batch: &RecordBatch, done: Option<Done>) -> Request {
        let mut copy = self
            .shared
            .free
            .lock()
            .pop()
            .map_or_else(Box::default, |s| s.0);
        copy.copy_from(batch);
        self.shared
            .queued_records
            .fetch_add(batch.len() as u64, Ordering::AcqRel);
        Request::Write { batch: copy, done }
    }

    fn submit(&self, batch: &RecordBatch, done: Option<Done>) {
        if batch.is_empty() && done.is_none() {
            return;
        }
        let records = batch.len() as u64;
        let mut request = self.request(batch, done);
        let mut since: Option<Instant> = None;
        loop {
            match self.queue.push_timeout(request, STALL_WARNING) {
                Ok(()) => break,
                Err(PushError::Timeout(r)) => {
                    let since = *since.get_or_insert_with(Instant::now);
                    tracing::warn!(
                        waited = ?since.elapsed() + STALL_WARNING,
                        "the store's queue is full: its thread is not keeping up; waiting"
                    );
                    request = r;
                }
                // Closed only by the drop, which no caller outlives.
                Err(refused) => {
                    self.shared
                        .queued_records
                        .fetch_sub(records, Ordering::AcqRel);
                    if let Request::Write {
                        done: Some(done), ..
                    } = refused.into_inner()
                    {
                        done(false);
                    }
                    return;
                }
            }
        }
    }

    /// The interception points.
    pub fn chain(&self) -> &Arc<Chain> {
        &self.chain
    }

    /// Updates the counters.
    pub fn count(&self, f: impl FnOnce(&mut Stats)) {
        self.shared.counters.count(f);
    }

    /// The counters so far: the connections', and the sinks' as of the store's last group
    /// (taken there together with the records they account for, so `Stats::store_balances`
    /// holds in every snapshot).
    pub fn stats(&self) -> Stats {
        let mut s = self.shared.counters.total();
        s.store_queued = self.shared.queued_records.load(Ordering::Acquire);
        self.chain.add_stats(&mut s);
        s
    }

    /// Whether TCP readers should pause: a sink was backlogged after the store's last group.
    pub fn backlogged(&self) -> bool {
        self.shared.backlogged.load(Ordering::Acquire)
    }

    /// The sinks' timer work (retries, interval syncs, checks), on the store's thread: run
    /// after the group it is in or the next one, so a busy store runs it too.
    pub fn tick(&self) {
        self.shared.tick_due.store(true, Ordering::Release);
        // A full queue means a group is coming anyway.
        let _ = self.queue.try_push(Request::Tick);
    }

    /// Waits until every batch written before is done (written, synced, answered).
    pub fn settle(&self) {
        let _ = self.call(Request::Barrier);
    }

    /// Flushes every sink (at shutdown: files synced, forwarder drained), after every batch
    /// written before; every sink is flushed, the first error is returned.
    pub fn flush(&self) -> io::Result<()> {
        self.call(Request::Flush)
    }

    /// Reopens every sink's files, after every batch written before.
    pub fn reopen(&self) -> io::Result<()> {
        self.call(Request::Reopen)
    }

    /// Adds a sink at run time (a svc.conf component): it gets every batch written after
    /// this call, on the store's thread like the others.
    pub fn attach(&self, sink: Box<dyn RecordSink>) {
        let (p, answer) = promise();
        if self.queue.push(Request::Attach(sink, p)).is_ok() {
            let _ = answer.wait();
        }
    }

    /// Takes out the sink `component` attached: it gets no batch written after this call. The
    /// caller flushes it, and gives it to [`retire`](Self::retire) to keep its counters.
    pub fn detach(&self, component: &str) -> Option<Box<dyn RecordSink>> {
        let (p, answer) = promise();
        self.queue
            .push(Request::Detach(component.to_owned(), p))
            .ok()?;
        answer.wait().ok().flatten()
    }

    /// Keeps a detached sink's counters in [`stats`](Self::stats): once this returns, they
    /// are there.
    pub fn retire(&self, sink: Box<dyn RecordSink>) {
        let (p, answer) = promise();
        if self.queue.push(Request::Retire(sink, p)).is_ok() {
            let _ = answer.wait();
        }
    }

    /// Queues a request with a future and waits for it.
    fn call(&self, make: fn(Promise<io::Result<()>>) -> Request) -> io::Result<()> {
        let (p, answer): (_, Eventual<io::Result<()>>) = promise();
        if let Err(refused) = self.queue.push(make(p)) {
            drop(refused);
        }
        answer
            .wait()
            .unwrap_or_else(|c| Err(io::Error::other(format!("the store's thread: {c}"))))
    }
}

impl Drop for Output {
    /// Closes the queue; the store's thread runs what is queued and ends.
    fn drop(&mut self) {
        self.queue.close();
        if let Some(handle) = self.scheduler.take() {
            let _ = handle.join();
        }
    }
}

/// An answer the scheduler gives once its group's counters are published.
enum Answer {
    Done(Done, bool),
    Promise(Promise<io::Result<()>>, io::Result<()>),
}

/// The store's thread: owns the sinks (the servant), takes groups of requests from the queue.
struct Scheduler {
    sinks: Vec<Box<dyn RecordSink>>,
    /// Sinks detached at run time, kept for their counters.
    retired: Vec<Box<dyn RecordSink>>,
    chain: Arc<Chain>,
    shared: Arc<Shared>,
    queue: Arc<MonitorQueue<Request>>,
    /// Scratch batch for the "record decoded" point.
    passed: RecordBatch,
    /// The group so far: records taken, answers to give, batches to recycle.
    records: u64,
    answers: Vec<Answer>,
    emptied: Vec<Spare>,
}

impl Scheduler {
    fn run(mut self) {
        let mut group = Vec::with_capacity(QUEUE);
        while self.queue.pop_into(&mut group, QUEUE) {
            let woken = std::mem::take(&mut *self.shared.room_waiters.lock());
            for wake in woken {
                wake();
            }
            self.each_sink(|s| s.begin_group());
            for request in group.drain(..) {
                // Acknowledged writes go first, in a group of their own, so that their
                // round trip waits for at most the request in progress.
                if self.run_express() {
                    self.end_group();
                    self.each_sink(|s| s.begin_group());
                }
                self.run_one(request);
            }
            self.run_express();
            self.end_group();
        }
    }

    /// Runs the express lane's requests; whether there were any.
    fn run_express(&mut self) -> bool {
        let mut ran = false;
        loop {
            let next = self.shared.express.lock().pop_front();
            let Some(request) = next else { return ran };
            self.run_one(request);
            ran = true;
        }
    }

    fn run_one(&mut self, request: Request) {
        match request {
            Request::Write { mut batch, done } => {
                let placed = self.write(&batch);
                self.records += batch.len() as u64;
                if let Some(done) = done {
                    self.answers.push(Answer::Done(done, placed));
                }
                batch.clear();
                self.emptied.push(Spare(batch));
            }
            Request::Tick => {}
            Request::Barrier(p) => self.answers.push(Answer::Promise(p, Ok(()))),
            Request::Flush(p) => {
                self.each_sink(|s| s.end_group());
                let r = self.each_sink_result(|s| s.flush());
                self.answers.push(Answer::Promise(p, r));
                self.each_sink(|s| s.begin_group());
            }
            Request::Reopen(p) => {
                self.each_sink(|s| s.end_group());
                let r = self.each_sink_result(|s| s.reopen());
                self.answers.push(Answer::Promise(p, r));
                self.each_sink(|s| s.begin_group());
            }
            Request::Attach(mut sink, p) => {
                sink.begin_group();
                self.sinks.push(sink);
                self.answers.push(Answer::Promise(p, Ok(())));
            }
            Request::Detach(component, p) => {
                let at = self
                    .sinks
                    .iter()
                    .position(|s| s.component() == Some(component.as_str()));
                let sink = at.map(|i| {
                    let mut sink = self.sinks.remove(i);
                    sink.end_group();
                    sink
                });
                p.fulfil(sink);
            }
            Request::Retire(sink, p) => {
                self.retired.push(sink);
                self.answers.push(Answer::Promise(p, Ok(())));
            }
        }
    }

    /// Ends a group: makes it durable, runs the timer's work if due, publishes the counters,
    /// then answers (so an answer's receiver sees the counters of its batch).
    fn end_group(&mut self) {
        self.each_sink(|s| s.end_group());
        if self.shared.tick_due.swap(false, Ordering::AcqRel) {
            let now = Instant::now();
            self.each_sink(|s| s.tick(now));
        }
        let records = std::mem::take(&mut self.records);
        self.publish(records);
        for a in self.answers.drain(..) {
            match a {
                Answer::Done(done, placed) => {
                    if panic::catch_unwind(AssertUnwindSafe(|| done(placed))).is_err() {
                        tracing::error!("a write's completion panicked");
                    }
                }
                Answer::Promise(p, r) => p.fulfil(r),
            }
        }
        let mut free = self.shared.free.lock();
        let room = (2 * QUEUE).saturating_sub(free.len());
        free.extend(self.emptied.drain(..).take(room));
        self.emptied.clear();
    }

    /// Writes one batch through the "record decoded" point to every sink; whether every
    /// record is in its place.
    fn write(&mut self, batch: &RecordBatch) -> bool {
        let chain = &self.chain;
        let passed = &mut self.passed;
        let sinks = &mut self.sinks;
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
            // Interception point "record decoded": nothing when it is empty.
            passed.clear();
            let batch = chain.filter(Point::Decoded, batch, passed).unwrap_or(batch);
            let mut ok = true;
            for s in sinks.iter_mut().filter(|_| !batch.is_empty()) {
                if let Err(e) = s.write_batch(batch) {
                    tracing::error!(records = batch.len(), error = %e, "storing records failed");
                    ok = false;
                }
                ok &= s.unplaced() == 0;
            }
            ok
        }));
        outcome.unwrap_or_else(|_| {
            tracing::error!(
                records = batch.len(),
                "a sink panicked while writing a batch"
            );
            false
        })
    }

    /// Runs `f` on every sink; a panicking sink is logged and the others go on.
    fn each_sink(&mut self, mut f: impl FnMut(&mut dyn RecordSink)) {
        for s in &mut self.sinks {
            if panic::catch_unwind(AssertUnwindSafe(|| f(s.as_mut()))).is_err() {
                tracing::error!(sink = ?s, "a sink panicked");
            }
        }
    }

    /// Runs `f` on every sink; the first error is returned after all were tried.
    fn each_sink_result(
        &mut self,
        mut f: impl FnMut(&mut dyn RecordSink) -> io::Result<()>,
    ) -> io::Result<()> {
        let mut first_err = None;
        self.each_sink(|s| {
            if let Err(e) = f(s) {
                first_err.get_or_insert(e);
            }
        });
        first_err.map_or(Ok(()), Err)
    }

    /// Publishes the group: the records taken and the sinks' counters in one critical
    /// section, then the queue's gauges and the backlog.
    fn publish(&mut self, records: u64) {
        let mut sinks = Stats::default();
        for s in self.sinks.iter().chain(&self.retired) {
            s.add_stats(&mut sinks);
        }
        self.shared.counters.publish(records, sinks);
        self.shared
            .queued_records
            .fetch_sub(records, Ordering::AcqRel);
        let backlogged = self.sinks.iter().any(|s| s.backlogged());
        self.shared.backlogged.store(backlogged, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::LogRecord;
    use crossbeam_channel::{Receiver, Sender, bounded, unbounded};

    /// What the test sink saw, in order.
    #[derive(Debug, PartialEq, Eq)]
    enum Seen {
        Begin,
        Write(usize),
        End,
        Tick,
    }

    /// A sink whose writes wait for the test's go-ahead (a slow disk), and which reports every
    /// call.
    #[derive(Debug)]
    struct Gate {
        go: Receiver<()>,
        seen: Sender<Seen>,
    }

    impl RecordSink for Gate {
        fn write_batch(&mut self, batch: &RecordBatch) -> io::Result<()> {
            self.go.recv().expect("the test lets the write go");
            let _ = self.seen.send(Seen::Write(batch.len()));
            Ok(())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
        fn tick(&mut self, _now: Instant) {
            let _ = self.seen.send(Seen::Tick);
        }
        fn begin_group(&mut self) {
            let _ = self.seen.send(Seen::Begin);
        }
        fn end_group(&mut self) {
            let _ = self.seen.send(Seen::End);
        }
    }

    fn batch(n: usize) -> RecordBatch {
        let mut b = RecordBatch::new();
        for _ in 0..n {
            b.push(&LogRecord {
                time: "2026-01-01T00:00:00.000000Z",
                host: "h",
                app: "a",
                pid: "1",
                facility: 1,
                severity: 6,
                sent: "-",
                msgid: "-",
                structured_data: "-",
                message: "m",
            });
        }
        b
    }

    fn gated() -> (Arc<Output>, Sender<()>, Receiver<Seen>) {
        let (go_tx, go) = unbounded();
        let (seen, seen_rx) = unbounded();
        (
            Output::new(vec![Box::new(Gate { go, seen })]),
            go_tx,
            seen_rx,
        )
    }

    /// A sink of a svc.conf component, counting the records it got.
    #[derive(Debug)]
    struct Counted(Arc<std::sync::atomic::AtomicU64>);

    impl RecordSink for Counted {
        fn write_batch(&mut self, batch: &RecordBatch) -> io::Result<()> {
            self.0.fetch_add(batch.len() as u64, Ordering::Relaxed);
            Ok(())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
        fn add_stats(&self, stats: &mut Stats) {
            stats.clickhouse_received += self.0.load(Ordering::Relaxed);
        }
        fn component(&self) -> Option<&str> {
            Some("counted")
        }
    }

    /// Attaching and detaching are method requests in the queue's order: an attached sink
    /// gets the batches written after `attach`, none after `detach`, and a retired one keeps
    /// its counters in the stats.
    #[test]
    fn a_sink_attached_at_run_time_gets_the_batches_between_attach_and_detach() {
        let output = Output::new(Vec::new());
        let got = Arc::new(std::sync::atomic::AtomicU64::new(0));
        output.write(&batch(1));
        output.attach(Box::new(Counted(got.clone())));
        output.write(&batch(2));
        output.settle();
        assert_eq!(got.load(Ordering::Relaxed), 2);
        assert!(output.detach("another").is_none());
        let sink = output.detach("counted").expect("attached");
        output.write(&batch(4));
        output.retire(sink);
        output.settle();
        assert_eq!(got.load(Ordering::Relaxed), 2);
        let stats = output.stats();
        assert_eq!((stats.records, stats.clickhouse_received), (7, 2));
    }

    /// The dispatcher's side returns while the store's thread is stuck in a write; the
    /// completions come in the order of the writes once the store goes on.
    #[test]
    fn writes_return_while_the_store_is_busy_and_complete_in_order() {
        let (output, go, seen) = gated();
        let (done_tx, done) = unbounded();
        for n in 1..=3 {
            let done_tx = done_tx.clone();
            output.write_then(&batch(n), move |placed| done_tx.send((n, placed)).unwrap());
        }
        // Every call above returned; the first write is still waiting for its go-ahead.
        assert_eq!(seen.recv().unwrap(), Seen::Begin);
        assert!(
            done.try_recv().is_err(),
            "nothing is done before the store writes"
        );
        assert_eq!(output.stats().store_queued + output.stats().records, 6);
        for _ in 1..=3 {
            go.send(()).unwrap();
        }
        let order: Vec<_> = (0..3).map(|_| done.recv().unwrap()).collect();
        assert_eq!(order, [(1, true), (2, true), (3, true)]);
        assert_eq!(
            (output.stats().records, output.stats().store_queued),
            (6, 0)
        );
    }

    /// Group commit: the batches that queued up while the store was busy are taken in one
    /// monitor entry and bracketed by one `begin_group`/`end_group` (one sync per file under
    /// `--fsync batch`), and their completions run after `end_group`.
    #[test]
    fn batches_queued_behind_a_busy_store_share_one_group() {
        let (output, go, seen) = gated();
        let (done_tx, done) = bounded(8);
        let d = done_tx.clone();
        output.write_then(&batch(1), move |_| d.send(1).unwrap());
        assert_eq!(seen.recv().unwrap(), Seen::Begin);
        // The store is inside the first group: these two wait in the queue (its capacity).
        for n in [2, 3] {
            let d = done_tx.clone();
            output.write_then(&batch(n), move |_| d.send(n).unwrap());
        }
        for _ in 0..3 {
            go.send(()).unwrap();
        }
        let all: Vec<_> = (0..3).map(|_| done.recv().unwrap()).collect();
        assert_eq!(all, [1, 2, 3]);
        let calls: Vec<Seen> = seen.try_iter().collect();
        assert_eq!(
            calls,
            [
                Seen::Write(1),
                Seen::End,
                Seen::Begin,
                Seen::Write(2),
                Seen::Write(3),
                Seen::End
            ]
        );
    }

    /// The express lane: an acknowledged write handed over behind a queue of plain writes
    /// runs right after the write in progress, and is answered before the plain writes
    /// queued ahead of it.
    #[test]
    fn an_acknowledged_write_passes_the_queued_plain_writes() {
        let (output, go, seen) = gated();
        let (done_tx, done) = unbounded();
        for n in [1, 2, 3] {
            let d = done_tx.clone();
            output.write_then(&batch(n), move |_| d.send(n).unwrap());
            if n == 1 {
                assert_eq!(seen.recv().unwrap(), Seen::Begin, "the store took 1");
            }
        }
        let d = done_tx.clone();
        output.write_acknowledged(&batch(4), move |placed| {
            d.send(4 * u8::from(placed) as usize).unwrap()
        });
        for _ in 0..4 {
            go.send(()).unwrap();
        }
        let order: Vec<usize> = (0..4).map(|_| done.recv().unwrap()).collect();
        assert_eq!(order, [1, 4, 2, 3]);
        let writes: Vec<Seen> = seen
            .try_iter()
            .filter(|s| matches!(s, Seen::Write(_)))
            .collect();
        assert_eq!(
            writes,
            [
                Seen::Write(1),
                Seen::Write(4),
                Seen::Write(2),
                Seen::Write(3)
            ]
        );
    }

    /// Thread-Safe Interface: a public method locks once (counted by the `Counting`
    /// strategy), and a re-entrant call through the public interface from inside a critical
    /// section finds the lock held: with the mutex it would wait for itself forever (seen
    /// here with `try_write`, never a hang), with the null lock it panics. The closure's way is
    /// the internal one: the `&mut` state it was given.
    #[test]
    fn the_counters_lock_once_and_a_reentrant_public_call_would_deadlock() {
        use synchronization::{Counting, NullLock};
        let c: Counters<Counting<MutexLock>> = Counters::default();
        c.count(|s| {
            assert!(
                c.state.try_write().is_none(),
                "`c.total()` here would take the lock this closure runs under: a self-deadlock"
            );
            s.records += 1;
        });
        c.publish(2, Stats::default());
        assert_eq!(c.total().records, 3);
        assert_eq!(c.state.acquisitions(), 3, "count, publish, total: one each");
        let single: Counters<NullLock> = Counters::default();
        let reentrant = panic::catch_unwind(AssertUnwindSafe(|| {
            single.count(|_| {
                single.total();
            })
        }));
        assert!(
            reentrant.is_err(),
            "the null lock refuses the nested borrow"
        );
    }

    /// A connection that finds the queue full is told to wait, and woken once the store
    /// takes requests out; with room, it is not kept.
    #[test]
    fn a_full_queue_keeps_a_waker_and_the_next_pop_runs_it() {
        let (output, go, seen) = gated();
        let (woke_tx, woke) = unbounded();
        assert!(!output.wait_for_room(|| unreachable!("there is room")));
        output.write(&batch(1));
        assert_eq!(seen.recv().unwrap(), Seen::Begin, "the store took 1");
        output.write(&batch(2));
        output.write(&batch(3));
        assert!(output.wait_for_room(move || Box::new(move || woke_tx.send(()).unwrap())));
        assert!(woke.try_recv().is_err(), "still full");
        go.send(()).unwrap();
        woke.recv().unwrap();
        for _ in 0..2 {
            go.send(()).unwrap();
        }
        output.settle();
        assert_eq!(output.stats().records, 6);
    }

    /// The timer's tick runs on the store's thread, and `settle` waits for everything
    /// handed over before it.
    #[test]
    fn tick_runs_on_the_store_thread_and_settle_waits_for_earlier_writes() {
        let (output, go, seen) = gated();
        output.write(&batch(2));
        output.tick();
        go.send(()).unwrap();
        output.settle();
        assert_eq!(output.stats().records, 2);
        let calls: Vec<Seen> = seen.try_iter().collect();
        assert!(calls.contains(&Seen::Tick), "{calls:?}");
        assert!(calls.contains(&Seen::Write(2)), "{calls:?}");
    }
}
