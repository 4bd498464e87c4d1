//! logd's interceptor chain (the Interceptor pattern, crate `interceptor`): filter, redact,
//! route and rate-limit records at four interception points, configured in svc.conf.
//!
//! | Interception point | where logd dispatches it | context object |
//! |---|---|---|
//! | `decoded` ("record decoded") | [`crate::store::Output::write`], before the records fan out to the sinks | [`RecordContext`] |
//! | `store` ("before store") | [`Intercepted`] wrapped around the file store | [`RecordContext`] |
//! | `forward` ("before forward") | [`Intercepted`] wrapped around the forwarder | [`RecordContext`] |
//! | `connection` ("connection opened/closed") | `server::ConnectionFactory` (opened; a veto closes it), the connection's drop (closed) | [`ConnectionContext`] |
//!
//! The chain is one component of the configurator, `Interceptors`, whose argument string
//! lists interceptors separated by `;`, each a kind and `key=value` settings:
//!
//! ```text
//! static Interceptors "drop severity=debug ; redact pattern='password=\S+' with='password=<redacted>' ; route app=audit dir=/var/log/logd-audit ; rate-limit burst=100 per-second=50"
//! ```
//!
//! | kind | settings | does |
//! |---|---|---|
//! | `drop` | `host=RE`, `app=RE`, `severity=A[-B]` (numbers 0-7 or `emerg`..`debug`) | vetoes the records matching every condition given |
//! | `keep` | as `drop` | vetoes the records not matching |
//! | `redact` | `pattern=RE`, `with=TEXT` (`$1` refers to a group) | rewrites the message text (the `regex` crate) |
//! | `route` | `dir=PATH` and conditions as `drop` | takes matching records to a file store of its own at `PATH` (a second data directory); only at `store` |
//! | `rate-limit` | `burst=N`, `per-second=R` (default 0: no refill) | a token bucket per host; records over it are dropped |
//! | `deny` | `host=RE` | refuses connections from peers matching (only at `connection`) |
//! | `plugin` | `library=PATH`, `factory=NAME`, `args='...'` | a component of a plugin library that exports the record filter interface (Extension Interface, `component_configurator::ext::RecordFilter`): it may pass, drop or rewrite each record |
//!
//! Every kind takes `at=decoded|store|forward` (default `decoded`; `route` is always `store`,
//! `deny` always `connection`) and `order=N` (default: ten times its place in the list).
//! The arguments are checked whole when the svc.conf is (re)read: a bad pattern or setting
//! is reported with the svc.conf's file and line, and the running chain stays as it was.
//!
//! Nothing an interceptor takes goes uncounted: [`crate::store::Stats`] has `intercepted`
//! (dropped at `decoded` or `store`, `rate_limited` included), `rate_limited`, `routed`,
//! `forward_intercepted` and `connections_vetoed`, and the metrics export them.

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use component_configurator::ext::{FilterInput, FilterVerdict, RecordFilter};
use component_configurator::{Component, ComponentError, LoadedLibrary, SharedRecordFilter};
use interceptor::{Dispatcher, Interceptor, Outcome, Verdict};
use parking_lot::{Mutex, RwLock};
use regex::Regex;

use crate::record::{LogRecord, RecordBatch};
use crate::store::{FileStore, RecordSink, Stats, StoreConfig};

/// The name of the static component holding the chain in svc.conf.
pub const INTERCEPTORS: &str = "Interceptors";

/// What became of a record an interceptor vetoed, for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Fate {
    /// Not taken (a veto without a note is a drop).
    #[default]
    Passed,
    /// Taken to another store by a `route` interceptor.
    Routed,
    /// Dropped by a rate limiter.
    RateLimited,
}

/// The context object of the record interception points: one record, owned, which
/// interceptors may change.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecordContext {
    /// RFC 3339 time.
    pub time: String,
    /// The client host.
    pub host: String,
    /// The application.
    pub app: String,
    /// The process id, or `-`.
    pub pid: String,
    /// Syslog facility.
    pub facility: u8,
    /// Syslog severity (0 emergency ..= 7 debug).
    pub severity: u8,
    /// The sender's own timestamp, as sent.
    pub sent: String,
    /// RFC 5424 MSGID, or empty.
    pub msgid: String,
    /// RFC 5424 STRUCTURED-DATA, as sent, or empty.
    pub structured_data: String,
    /// The message text.
    pub message: String,
    /// Set by an interceptor that takes the record rather than dropping it.
    pub fate: Fate,
}

impl RecordContext {
    /// An owned copy of `r`.
    pub fn of(r: &LogRecord<'_>) -> Self {
        RecordContext {
            time: r.time.to_owned(),
            host: r.host.to_owned(),
            app: r.app.to_owned(),
            pid: r.pid.to_owned(),
            facility: r.facility,
            severity: r.severity,
            sent: r.sent.to_owned(),
            msgid: r.msgid.to_owned(),
            structured_data: r.structured_data.to_owned(),
            message: r.message.to_owned(),
            fate: Fate::Passed,
        }
    }

    /// A view of it, as the batch and the store take records.
    pub fn view(&self) -> LogRecord<'_> {
        LogRecord {
            time: &self.time,
            host: &self.host,
            app: &self.app,
            pid: &self.pid,
            facility: self.facility,
            severity: self.severity,
            sent: &self.sent,
            msgid: &self.msgid,
            structured_data: &self.structured_data,
            message: &self.message,
        }
    }
}

/// Whether a connection is opening or closing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionEvent {
    /// Accepted; a veto closes it before anything is read.
    Opened,
    /// Closed (a veto has no effect).
    Closed,
}

/// The context object of the connection interception point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionContext {
    /// The peer's address.
    pub peer: String,
    /// Opened or closed.
    pub event: ConnectionEvent,
}

/// logd's interception points, their dispatchers and their counters.
#[derive(Debug)]
pub struct Chain {
    /// "record decoded".
    pub record_decoded: Dispatcher<RecordContext>,
    /// "before store".
    pub before_store: Dispatcher<RecordContext>,
    /// "before forward".
    pub before_forward: Dispatcher<RecordContext>,
    /// "connection opened/closed".
    pub connection: Dispatcher<ConnectionContext>,
    intercepted: AtomicU64,
    rate_limited: AtomicU64,
    routed: AtomicU64,
    forward_intercepted: AtomicU64,
    connections_vetoed: AtomicU64,
}

impl Default for Chain {
    fn default() -> Self {
        Chain {
            record_decoded: Dispatcher::new("record decoded"),
            before_store: Dispatcher::new("before store"),
            before_forward: Dispatcher::new("before forward"),
            connection: Dispatcher::new("connection opened/closed"),
            intercepted: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
            routed: AtomicU64::new(0),
            forward_intercepted: AtomicU64::new(0),
            connections_vetoed: AtomicU64::new(0),
        }
    }
}

/// Which record point a batch passes, for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    /// "record decoded".
    Decoded,
    /// "before store".
    Store,
    /// "before forward".
    Forward,
}

impl Chain {
    fn dispatcher(&self, point: Point) -> &Dispatcher<RecordContext> {
        match point {
            Point::Decoded => &self.record_decoded,
            Point::Store => &self.before_store,
            Point::Forward => &self.before_forward,
        }
    }

    /// Runs `point`'s interceptors on every record of `batch`; `None` when the point has
    /// none (the batch goes on as it is), else the records that passed, in `out`.
    pub fn filter<'o>(
        &self,
        point: Point,
        batch: &RecordBatch,
        out: &'o mut RecordBatch,
    ) -> Option<&'o RecordBatch> {
        let d = self.dispatcher(point);
        if d.is_empty() {
            return None;
        }
        out.clear();
        for r in batch.iter() {
            let mut ctx = RecordContext::of(&r);
            match d.dispatch(&mut ctx) {
                Outcome::Completed => out.push(&ctx.view()),
                _ => self.count_veto(point, ctx.fate),
            }
        }
        Some(out)
    }

    fn count_veto(&self, point: Point, fate: Fate) {
        let add = |c: &AtomicU64| c.fetch_add(1, Ordering::Relaxed);
        match (point, fate) {
            (Point::Forward, _) => add(&self.forward_intercepted),
            (_, Fate::Routed) => add(&self.routed),
            (_, Fate::RateLimited) => {
                add(&self.rate_limited);
                add(&self.intercepted)
            }
            _ => add(&self.intercepted),
        };
    }

    /// The "connection opened" point: false when an interceptor refuses the connection
    /// (counted in `connections_vetoed`).
    pub fn connection_opened(&self, peer: &str) -> bool {
        if self.connection.is_empty() {
            return true;
        }
        let mut ctx = ConnectionContext {
            peer: peer.to_owned(),
            event: ConnectionEvent::Opened,
        };
        let ok = !self.connection.dispatch(&mut ctx).is_vetoed();
        if !ok {
            self.connections_vetoed.fetch_add(1, Ordering::Relaxed);
        }
        ok
    }

    /// The "connection closed" point.
    pub fn connection_closed(&self, peer: &str) {
        if self.connection.is_empty() {
            return;
        }
        let mut ctx = ConnectionContext {
            peer: peer.to_owned(),
            event: ConnectionEvent::Closed,
        };
        let _ = self.connection.dispatch(&mut ctx);
    }

    /// Adds the chain's counters to `s`.
    pub fn add_stats(&self, s: &mut Stats) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        s.intercepted += get(&self.intercepted);
        s.rate_limited += get(&self.rate_limited);
        s.routed += get(&self.routed);
        s.forward_intercepted += get(&self.forward_intercepted);
        s.connections_vetoed += get(&self.connections_vetoed);
    }

    /// Empties every point.
    pub fn clear(&self) {
        self.record_decoded.replace(Vec::new());
        self.before_store.replace(Vec::new());
        self.before_forward.replace(Vec::new());
        self.connection.replace(Vec::new());
    }
}

/// A sink behind an interception point: the "before store" and "before forward" points
/// are the file store and the forwarder wrapped in one of these.
pub struct Intercepted {
    chain: Arc<Chain>,
    point: Point,
    inner: Box<dyn RecordSink>,
    scratch: RecordBatch,
    /// Whether the last batch reached the inner sink (else nothing of it is unplaced).
    wrote: bool,
}

impl std::fmt::Debug for Intercepted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Intercepted")
            .field("point", &self.point)
            .finish_non_exhaustive()
    }
}

impl Intercepted {
    /// `inner`, its batches passing `point` of `chain` first.
    pub fn new(chain: Arc<Chain>, point: Point, inner: Box<dyn RecordSink>) -> Self {
        Intercepted {
            chain,
            point,
            inner,
            scratch: RecordBatch::new(),
            wrote: false,
        }
    }
}

impl RecordSink for Intercepted {
    fn write_batch(&mut self, batch: &RecordBatch) -> io::Result<()> {
        self.wrote = true;
        match self.chain.filter(self.point, batch, &mut self.scratch) {
            None => self.inner.write_batch(batch),
            Some(passed) if passed.is_empty() => {
                self.wrote = false;
                Ok(())
            }
            Some(passed) => self.inner.write_batch(passed),
        }
    }
    fn unplaced(&self) -> u64 {
        if self.wrote { self.inner.unplaced() } else { 0 }
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
    fn reopen(&mut self) -> io::Result<()> {
        self.inner.reopen()
    }
    fn backlogged(&self) -> bool {
        self.inner.backlogged()
    }
    fn tick(&mut self, now: Instant) {
        self.inner.tick(now)
    }
    fn add_stats(&self, stats: &mut Stats) {
        self.inner.add_stats(stats)
    }
    fn begin_group(&mut self) {
        self.inner.begin_group()
    }
    fn end_group(&mut self) {
        self.inner.end_group()
    }
}

// ---------------------------------------------------------------------------------------
// The concrete interceptors.

/// Conditions on a record: every one given must hold.
#[derive(Debug, Clone, Default)]
struct Matcher {
    host: Option<Regex>,
    app: Option<Regex>,
    severity: Option<(u8, u8)>,
}

impl Matcher {
    fn matches(&self, r: &RecordContext) -> bool {
        self.host.as_ref().is_none_or(|re| re.is_match(&r.host))
            && self.app.as_ref().is_none_or(|re| re.is_match(&r.app))
            && self
                .severity
                .is_none_or(|(lo, hi)| (lo..=hi).contains(&r.severity))
    }
}

/// `drop` and `keep`.
#[derive(Debug)]
struct Filter {
    name: String,
    matcher: Matcher,
    keep: bool,
}

impl Interceptor<RecordContext> for Filter {
    fn name(&self) -> &str {
        &self.name
    }
    fn intercept(&self, r: &mut RecordContext) -> Verdict {
        if self.matcher.matches(r) == self.keep {
            Verdict::Continue
        } else {
            Verdict::Stop
        }
    }
}

/// `redact`.
#[derive(Debug)]
struct Redact {
    name: String,
    pattern: Regex,
    with: String,
}

impl Interceptor<RecordContext> for Redact {
    fn name(&self) -> &str {
        &self.name
    }
    fn intercept(&self, r: &mut RecordContext) -> Verdict {
        if let std::borrow::Cow::Owned(m) = self.pattern.replace_all(&r.message, &self.with) {
            r.message = m;
        }
        Verdict::Continue
    }
}

/// `route`: a file store of its own, opened by the component's `init`.
struct Route {
    name: String,
    matcher: Matcher,
    store: Mutex<(FileStore, RecordBatch)>,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Route")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Interceptor<RecordContext> for Route {
    fn name(&self) -> &str {
        &self.name
    }
    fn intercept(&self, r: &mut RecordContext) -> Verdict {
        if !self.matcher.matches(r) {
            return Verdict::Continue;
        }
        let mut guard = self.store.lock();
        let (store, batch) = &mut *guard;
        batch.clear();
        batch.push(&r.view());
        // The file store never fails a batch: what it cannot write it holds, retries and
        // counts in its own statistics (see `info`).
        let _ = store.write_batch(batch);
        r.fate = Fate::Routed;
        Verdict::Stop
    }
}

/// Hosts a rate limiter keeps buckets for; beyond it the least recently seen is forgotten.
const MAX_BUCKETS: usize = 4096;

/// `rate-limit`: a token bucket per host, made the first time the host is seen.
///
/// The buckets are shared per-host state made lazily under contention: "record decoded" runs
/// on every thread that runs upcalls (a leader/followers pool's), so the first records of a
/// new host can reach the limiter on several threads at once. Double-Checked Locking
/// Optimization: the first check looks the host up under the map's shared lock, which every
/// record of a known host takes together with the others and goes no further than its own
/// bucket's lock; only a host not found takes the exclusive lock, checks again (another
/// thread may have made the bucket between the two locks: without that second check its
/// bucket, and the tokens already taken from it, would be replaced) and makes the bucket
/// once. The host's name is copied only then, not per record. Rust's `OnceLock` is the
/// pattern's idiomatic form for one value; a map of values made on demand needs the locks
/// written out (`RwLock` for the map, `Mutex` per bucket), with the same two checks.
#[derive(Debug)]
struct RateLimit {
    name: String,
    burst: f64,
    per_second: f64,
    buckets: RwLock<HashMap<String, Mutex<Bucket>>>,
    /// Buckets made (the slow path's critical section run).
    made: AtomicU64,
}

/// A host's tokens, and when it was last seen.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    seen: Instant,
}

impl RateLimit {
    fn new(name: String, burst: f64, per_second: f64) -> Self {
        RateLimit {
            name,
            burst,
            per_second,
            buckets: RwLock::new(HashMap::new()),
            made: AtomicU64::new(0),
        }
    }

    /// Runs `f` on `host`'s bucket, making it first if the host is new.
    fn with_bucket<R>(&self, host: &str, now: Instant, f: impl FnOnce(&mut Bucket) -> R) -> R {
        match self.first_check(host, f) {
            Ok(r) => r,
            Err(f) => self.second_check(host, now, f),
        }
    }

    /// The first check, under the shared lock: `f`'s result, or `f` back if the host is new.
    fn first_check<R, F: FnOnce(&mut Bucket) -> R>(&self, host: &str, f: F) -> Result<R, F> {
        match self.buckets.read().get(host) {
            Some(bucket) => Ok(f(&mut bucket.lock())),
            None => Err(f),
        }
    }

    /// The slow path: the exclusive lock, the second check (whoever made the bucket since the
    /// first check is done with it), and the bucket made once.
    fn second_check<R>(&self, host: &str, now: Instant, f: impl FnOnce(&mut Bucket) -> R) -> R {
        let mut buckets = self.buckets.write();
        if !buckets.contains_key(host) {
            if buckets.len() >= MAX_BUCKETS {
                let oldest = buckets
                    .iter()
                    .min_by_key(|(_, b)| b.lock().seen)
                    .map(|(h, _)| h.clone());
                if let Some(h) = oldest {
                    buckets.remove(&h);
                }
            }
            let fresh = Bucket {
                tokens: self.burst,
                seen: now,
            };
            buckets.insert(host.to_owned(), Mutex::new(fresh));
            self.made.fetch_add(1, Ordering::Relaxed);
        }
        f(&mut buckets[host].lock())
    }
}

impl Interceptor<RecordContext> for RateLimit {
    fn name(&self) -> &str {
        &self.name
    }
    fn intercept(&self, r: &mut RecordContext) -> Verdict {
        let now = Instant::now();
        let passed = self.with_bucket(&r.host, now, |b| {
            let refill = now.saturating_duration_since(b.seen).as_secs_f64() * self.per_second;
            b.tokens = (b.tokens + refill).min(self.burst);
            b.seen = now;
            if b.tokens >= 1.0 {
                b.tokens -= 1.0;
                true
            } else {
                false
            }
        });
        if passed {
            Verdict::Continue
        } else {
            r.fate = Fate::RateLimited;
            Verdict::Stop
        }
    }
}

/// `plugin`: a plugin component's record filter, owned by the interceptor (dropping it
/// finalises and destroys the component; the library stays mapped while it lives).
#[derive(Debug)]
struct PluginFilter {
    name: String,
    filter: SharedRecordFilter,
}

impl Interceptor<RecordContext> for PluginFilter {
    fn name(&self) -> &str {
        &self.name
    }
    fn intercept(&self, r: &mut RecordContext) -> Verdict {
        let input = FilterInput {
            host: &r.host,
            app: &r.app,
            severity: r.severity,
            message: &r.message,
        };
        match self.filter.filter(&input) {
            FilterVerdict::Drop => Verdict::Stop,
            FilterVerdict::Rewrite(text) => {
                r.message = text;
                Verdict::Continue
            }
            _ => Verdict::Continue,
        }
    }
}

/// Loads `library`, makes its `factory`'s component, initialises it with `args`, and keeps
/// its record filter.
fn load_plugin(
    name: &str,
    library: &std::path::Path,
    factory: &str,
    args: &[String],
) -> Result<PluginFilter, ComponentError> {
    let fail = |e: &dyn std::fmt::Display| ComponentError::new(format!("{name}: {e}"));
    let lib = LoadedLibrary::open(library).map_err(|e| fail(&e))?;
    let mut component = lib.create(factory).map_err(|e| fail(&e))?;
    let iid = component_configurator::ext::record_filter::IID;
    // Asked before `init`: a component without the interface is never started.
    if !component.exports(iid) {
        return Err(fail(&format_args!(
            "{factory} in {} does not export {iid}",
            library.display()
        )));
    }
    component.init(args).map_err(|e| fail(&e))?;
    let filter = component
        .into_record_filter()
        .map_err(|_| fail(&format_args!("{factory} lost its {iid}")))?;
    Ok(PluginFilter {
        name: name.to_owned(),
        filter,
    })
}

/// `deny`: refuses connections.
#[derive(Debug)]
struct Deny {
    name: String,
    host: Regex,
}

impl Interceptor<ConnectionContext> for Deny {
    fn name(&self) -> &str {
        &self.name
    }
    fn intercept(&self, c: &mut ConnectionContext) -> Verdict {
        if c.event == ConnectionEvent::Opened && self.host.is_match(&c.peer) {
            Verdict::Stop
        } else {
            Verdict::Continue
        }
    }
}

// ---------------------------------------------------------------------------------------
// The configuration: parsing the argument string, building the chain.

/// One interceptor as configured, before anything is opened.
#[derive(Debug, Clone)]
enum Kind {
    Filter {
        matcher: Matcher,
        keep: bool,
    },
    Redact {
        pattern: Regex,
        with: String,
    },
    Route {
        matcher: Matcher,
        dir: PathBuf,
    },
    RateLimit {
        burst: f64,
        per_second: f64,
    },
    Deny {
        host: Regex,
    },
    Plugin {
        library: PathBuf,
        factory: String,
        args: Vec<String>,
    },
}

#[derive(Debug, Clone)]
struct Spec {
    name: String,
    at: Option<Point>,
    order: i32,
    kind: Kind,
}

const SEVERITIES: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

fn severity(s: &str) -> Result<u8, String> {
    if let Ok(n) = s.parse::<u8>()
        && n <= 7
    {
        return Ok(n);
    }
    SEVERITIES
        .iter()
        .position(|&n| n == s)
        .map(|i| i as u8)
        .ok_or_else(|| {
            format!(
                "bad severity `{s}` (0-7 or emerg, alert, crit, err, warning, notice, info, debug)"
            )
        })
}

fn regex(key: &str, s: &str) -> Result<Regex, String> {
    // Bounded so that a hostile pattern cannot take unbounded memory.
    regex::RegexBuilder::new(s)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| format!("{key}: bad pattern `{s}`: {e}"))
}

fn number(key: &str, s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(n) if n.is_finite() && (0.0..=1e9).contains(&n) => Ok(n),
        _ => Err(format!("{key}: bad number `{s}` (0 to 1e9)")),
    }
}

/// Parses one interceptor: `KIND key=value...`, the `index`th of the list.
fn parse_one(words: &[String], index: usize) -> Result<Spec, String> {
    let (kind, settings) = words
        .split_first()
        .ok_or("an empty interceptor (two `;` in a row?)")?;
    let mut map: Vec<(&str, &str)> = Vec::new();
    for w in settings {
        let (k, v) = w
            .split_once('=')
            .ok_or_else(|| format!("{kind}: expected key=value, got `{w}`"))?;
        if map.iter().any(|(seen, _)| *seen == k) {
            return Err(format!("{kind}: `{k}` given twice"));
        }
        map.push((k, v));
    }
    let mut take = |k: &str| {
        map.iter()
            .position(|(seen, _)| *seen == k)
            .map(|i| map.remove(i).1.to_owned())
    };
    let at = match take("at").as_deref() {
        None => None,
        Some("decoded") => Some(Point::Decoded),
        Some("store") => Some(Point::Store),
        Some("forward") => Some(Point::Forward),
        Some(other) => {
            return Err(format!(
                "{kind}: at: unknown interception point `{other}` (decoded, store, forward)"
            ));
        }
    };
    let order = match take("order") {
        None => i32::try_from(index * 10).unwrap_or(i32::MAX),
        Some(o) => o
            .parse()
            .map_err(|_| format!("{kind}: order: bad number `{o}`"))?,
    };
    let matcher = |take: &mut dyn FnMut(&str) -> Option<String>| -> Result<Matcher, String> {
        let host = take("host").map(|h| regex("host", &h)).transpose()?;
        let app = take("app").map(|a| regex("app", &a)).transpose()?;
        let severity = match take("severity") {
            None => None,
            Some(s) => {
                let (lo, hi) = s.split_once('-').unwrap_or((&s, &s));
                let (lo, hi) = (severity(lo)?, severity(hi)?);
                if lo > hi {
                    return Err(format!("severity: empty range `{s}`"));
                }
                Some((lo, hi))
            }
        };
        Ok(Matcher {
            host,
            app,
            severity,
        })
    };
    let kind_spec = match kind.as_str() {
        "drop" | "keep" => Kind::Filter {
            matcher: matcher(&mut take)?,
            keep: kind == "keep",
        },
        "redact" => Kind::Redact {
            pattern: regex(
                "pattern",
                &take("pattern").ok_or("redact: needs pattern=RE")?,
            )?,
            with: take("with").unwrap_or_default(),
        },
        "route" => {
            if at.is_some_and(|p| p != Point::Store) {
                return Err("route: only at=store".to_owned());
            }
            let dir = take("dir").ok_or("route: needs dir=PATH")?;
            if dir.is_empty() {
                return Err("route: dir is empty".to_owned());
            }
            Kind::Route {
                matcher: matcher(&mut take)?,
                dir: PathBuf::from(dir),
            }
        }
        "rate-limit" => {
            let burst = number("burst", &take("burst").ok_or("rate-limit: needs burst=N")?)?;
            let per_second = take("per-second")
                .map(|r| number("per-second", &r))
                .transpose()?
                .unwrap_or(0.0);
            Kind::RateLimit { burst, per_second }
        }
        "plugin" => {
            let library = take("library").ok_or("plugin: needs library=PATH")?;
            if !library.contains('/') {
                return Err(format!(
                    "plugin: library=`{library}` must be a path (with a `/`)"
                ));
            }
            Kind::Plugin {
                library: PathBuf::from(library),
                factory: take("factory").ok_or("plugin: needs factory=NAME")?,
                args: take("args")
                    .map(|a| a.split_whitespace().map(str::to_owned).collect())
                    .unwrap_or_default(),
            }
        }
        "deny" => {
            if at.is_some() {
                return Err("deny: always at the connection point; no at=".to_owned());
            }
            Kind::Deny {
                host: regex("host", &take("host").ok_or("deny: needs host=RE")?)?,
            }
        }
        other => {
            return Err(format!(
                "unknown interceptor `{other}` (drop, keep, redact, route, rate-limit, deny, plugin)"
            ));
        }
    };
    if let Some((k, _)) = map.first() {
        return Err(format!("{kind}: unknown setting `{k}`"));
    }
    let at = match kind_spec {
        Kind::Route { .. } => Some(Point::Store),
        Kind::Deny { .. } => None,
        _ => Some(at.unwrap_or(Point::Decoded)),
    };
    Ok(Spec {
        name: format!("{kind}#{}", index + 1),
        at,
        order,
        kind: kind_spec,
    })
}

/// Parses the component's arguments: interceptors separated by `;` words.
fn parse(args: &[String]) -> Result<Vec<Spec>, String> {
    if args.is_empty() {
        return Ok(Vec::new());
    }
    args.split(|a| a == ";")
        .enumerate()
        .map(|(i, words)| parse_one(words, i))
        .collect()
}

/// The chain as a component of the configurator (`static Interceptors "..."`).
///
/// `check` parses the whole argument string (patterns compiled, numbers in range), so a
/// reload with a bad chain is refused before anything changes; `init` builds the
/// interceptors (opening the stores of `route`) and installs each point's chain in one step;
/// `fini` empties the points and flushes the route stores.
#[derive(Debug)]
pub struct InterceptorsService {
    chain: Arc<Chain>,
    specs: Vec<Spec>,
    routes: Vec<Arc<Route>>,
}

impl InterceptorsService {
    /// A component configuring `chain`.
    pub fn new(chain: Arc<Chain>) -> Self {
        InterceptorsService {
            chain,
            specs: Vec::new(),
            routes: Vec::new(),
        }
    }
}

type Entries<C> = Vec<(i32, Arc<dyn Interceptor<C>>)>;

impl Component for InterceptorsService {
    fn check(&self, args: &[String]) -> Result<(), ComponentError> {
        parse(args).map(drop).map_err(ComponentError::new)
    }

    fn init(&mut self, args: &[String]) -> Result<(), ComponentError> {
        let specs = parse(args).map_err(ComponentError::new)?;
        let (mut decoded, mut store, mut forward): (
            Entries<RecordContext>,
            Entries<RecordContext>,
            Entries<RecordContext>,
        ) = Default::default();
        let mut connection: Entries<ConnectionContext> = Vec::new();
        let mut routes = Vec::new();
        for s in &specs {
            let name = s.name.clone();
            let record: Arc<dyn Interceptor<RecordContext>> = match &s.kind {
                Kind::Filter { matcher, keep } => Arc::new(Filter {
                    name,
                    matcher: matcher.clone(),
                    keep: *keep,
                }),
                Kind::Redact { pattern, with } => Arc::new(Redact {
                    name,
                    pattern: pattern.clone(),
                    with: with.clone(),
                }),
                Kind::Route { matcher, dir } => {
                    let fs = FileStore::open(StoreConfig::new(dir)).map_err(|e| {
                        ComponentError::io(
                            format_args!("{}: cannot open {}", s.name, dir.display()),
                            &e,
                        )
                    })?;
                    let route = Arc::new(Route {
                        name,
                        matcher: matcher.clone(),
                        store: Mutex::new((fs, RecordBatch::new())),
                    });
                    routes.push(Arc::clone(&route));
                    route
                }
                Kind::Plugin {
                    library,
                    factory,
                    args,
                } => Arc::new(load_plugin(&name, library, factory, args)?),
                Kind::RateLimit { burst, per_second } => {
                    Arc::new(RateLimit::new(name, *burst, *per_second))
                }
                Kind::Deny { host } => {
                    connection.push((
                        s.order,
                        Arc::new(Deny {
                            name,
                            host: host.clone(),
                        }),
                    ));
                    continue;
                }
            };
            match s.at {
                Some(Point::Store) => store.push((s.order, record)),
                Some(Point::Forward) => forward.push((s.order, record)),
                _ => decoded.push((s.order, record)),
            }
        }
        self.flush_routes();
        self.chain.record_decoded.replace(decoded);
        self.chain.before_store.replace(store);
        self.chain.before_forward.replace(forward);
        self.chain.connection.replace(connection);
        self.specs = specs;
        self.routes = routes;
        Ok(())
    }

    fn fini(&mut self) -> Result<(), ComponentError> {
        self.chain.clear();
        self.flush_routes();
        self.routes.clear();
        self.specs.clear();
        Ok(())
    }

    fn info(&self) -> String {
        let names: Vec<&str> = self.specs.iter().map(|s| s.name.as_str()).collect();
        let mut routed = Stats::default();
        for r in &self.routes {
            r.store.lock().0.add_stats(&mut routed);
        }
        format!(
            "interceptors: [{}]; route stores: {} stored, {} held",
            names.join(", "),
            routed.stored,
            routed.held
        )
    }
}

impl InterceptorsService {
    fn flush_routes(&self) {
        for r in &self.routes {
            if let Err(e) = r.store.lock().0.flush() {
                tracing::warn!(route = %r.name, error = %e, "flushing a route store failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    fn record(host: &str, app: &str, severity: u8, message: &str) -> RecordContext {
        RecordContext {
            time: "t".into(),
            host: host.into(),
            app: app.into(),
            pid: "-".into(),
            facility: 1,
            severity,
            message: message.into(),
            ..RecordContext::default()
        }
    }

    #[test]
    fn the_argument_string_parses_into_points_and_orders() {
        let specs = parse(&args(
            "drop severity=debug ; redact pattern=pw=\\S+ with=pw=*** at=store ; rate-limit burst=3 order=-1 ; deny host=^10\\.",
        ))
        .unwrap();
        let summary: Vec<(String, Option<Point>, i32)> = specs
            .iter()
            .map(|s| (s.name.clone(), s.at, s.order))
            .collect();
        assert_eq!(
            summary,
            [
                ("drop#1".into(), Some(Point::Decoded), 0),
                ("redact#2".into(), Some(Point::Store), 10),
                ("rate-limit#3".into(), Some(Point::Decoded), -1),
                ("deny#4".into(), None, 30),
            ]
        );
    }

    #[test]
    fn bad_settings_are_refused_with_what_is_wrong() {
        for (input, expected) in [
            ("drop severity=loud", "bad severity `loud`"),
            ("drop severity=7-0", "empty range"),
            ("redact with=x", "needs pattern"),
            ("redact pattern=(", "bad pattern `(`"),
            ("route app=a", "needs dir"),
            ("route dir=/x at=decoded", "only at=store"),
            ("rate-limit burst=-1", "bad number"),
            ("rate-limit burst=NaN", "bad number"),
            ("drop hots=a", "unknown setting `hots`"),
            ("drop host=a host=b", "given twice"),
            ("drop at=disk", "unknown interception point"),
            ("shout", "unknown interceptor `shout`"),
            ("drop ; ; drop", "empty interceptor"),
            ("drop nonsense", "expected key=value"),
            ("plugin factory=_make", "needs library"),
            ("plugin library=cc_gate factory=_make", "must be a path"),
            ("plugin library=/x.so", "needs factory"),
        ] {
            let e = parse(&args(input)).unwrap_err();
            assert!(e.contains(expected), "{input}: {e}");
        }
    }

    #[test]
    fn a_hostile_pattern_is_refused_not_compiled_without_bound() {
        let e = parse(&args("redact pattern=(a{1000}){1000}")).unwrap_err();
        assert!(e.contains("bad pattern"), "{e}");
    }

    #[test]
    fn filters_match_on_every_condition_given() {
        let specs = parse(&args("drop host=^db app=^cron$ severity=info-debug")).unwrap();
        let Kind::Filter { matcher, keep } = &specs[0].kind else {
            panic!()
        };
        assert!(!keep);
        assert!(matcher.matches(&record("db1", "cron", 7, "")));
        assert!(!matcher.matches(&record("web1", "cron", 7, "")));
        assert!(!matcher.matches(&record("db1", "cron", 3, "")));
        assert!(!matcher.matches(&record("db1", "cronx", 6, "")));
    }

    #[test]
    fn the_rate_limiter_keeps_a_bucket_per_host() {
        let rl = RateLimit::new("rl".into(), 2.0, 0.0);
        let mut verdicts = Vec::new();
        for host in ["a", "a", "a", "b", "a", "b"] {
            let mut r = record(host, "x", 6, "m");
            verdicts.push(rl.intercept(&mut r) == Verdict::Continue);
        }
        assert_eq!(verdicts, [true, true, false, true, false, true]);
    }

    /// The interleaving the second check exists for, made on one thread: a caller misses at
    /// the first check, another makes the host's bucket and spends its tokens, then the first
    /// caller takes the slow path: it finds that bucket (no tokens left) rather than making a
    /// fresh one with a full burst. Without the second check this fails (`made` is 2 and
    /// 2 tokens are back).
    #[test]
    fn the_second_check_finds_the_bucket_made_between_the_two_locks() {
        let rl = RateLimit::new("rl".into(), 2.0, 0.0);
        let missed = rl.first_check("h", |b| b.tokens);
        let Err(late) = missed else {
            panic!("a new host is not found at the first check");
        };
        let passed: Vec<bool> = (0..3)
            .map(|_| rl.intercept(&mut record("h", "x", 6, "m")) == Verdict::Continue)
            .collect();
        assert_eq!(passed, [true, true, false]);
        assert_eq!(rl.second_check("h", Instant::now(), late), 0.0);
        assert_eq!(rl.made.load(Ordering::Relaxed), 1);
        // Known from now on: the first check alone.
        assert!(rl.first_check("h", |_| ()).is_ok());
    }

    /// Double-Checked Locking on the per-host buckets under contention: eight threads,
    /// released together, send the first records of one new host; its bucket is made once and
    /// exactly `burst` records pass. (How often the threads actually meet between the two
    /// locks depends on the machine; the test above makes that interleaving on purpose.)
    #[test]
    fn a_new_hosts_bucket_is_made_once_under_contention_and_its_tokens_are_shared() {
        const THREADS: usize = 8;
        const EACH: usize = 50;
        for round in 0..20 {
            let rl = RateLimit::new("rl".into(), 100.0, 0.0);
            let start = std::sync::Barrier::new(THREADS);
            let passed: usize = std::thread::scope(|s| {
                let handles: Vec<_> = (0..THREADS)
                    .map(|_| {
                        s.spawn(|| {
                            start.wait();
                            (0..EACH)
                                .filter(|_| {
                                    let mut r = record("new-host", "x", 6, "m");
                                    rl.intercept(&mut r) == Verdict::Continue
                                })
                                .count()
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).sum()
            });
            assert_eq!(rl.made.load(Ordering::Relaxed), 1, "round {round}");
            assert_eq!(passed, 100, "round {round}");
        }
    }
}
