//! Sequence diagrams drawn from real runs (feature `diagram`).
//!
//! The pattern crates emit `tracing` events with the target [`TARGET`] at their interaction
//! points (with the `seq!` macro of the `posa-seq` crate): who calls whom, with what, and what
//! comes back. Without a subscriber such an event costs a relaxed load of tracing's global
//! maximum level; nothing is formatted.
//! An example that wants its run drawn calls [`Diagram::from_env`] first thing: when the
//! `POSA_DIAGRAM` environment variable names a file (`cargo xtask demo` sets it), a recording
//! subscriber is installed, and [`Diagram::finish`] writes what it saw there as a mermaid
//! sequence diagram; the xtask compares it with `docs/patterns/generated/<example>.md`.
//!
//! The fields an event carries:
//!
//! | field     | meaning                                                                  |
//! |-----------|--------------------------------------------------------------------------|
//! | `from`    | the caller (a participant's name; [`THREAD`] for the calling thread)     |
//! | `to`      | the callee (same; absent for a note)                                     |
//! | `message` | the text of the arrow, the event's format string                         |
//! | `kind`    | `"call"` (default, `->>`), `"reply"` (`-->>`), `"fail"` (`--x`), `"note"` |
//!
//! ```
//! tracing::trace!(target: "posa_seq", from = "Subject", to = "Observer", "update(21.5)");
//! tracing::trace!(target: "posa_seq", from = "Observer", to = "Subject", kind = "reply", "ok");
//! ```
//!
//! Threads make a run's order vary; a diagram must not. The recorder names a thread that
//! says [`THREAD`] by its name, or by the order in which unnamed (and
//! [numbered](Diagram::number_threads)) threads first spoke (`T1`, `T2`, ...); the examples
//! drive their threads one interaction at a time, waiting ([`Diagram::wait_for`]) for the last
//! event of one before starting the next, and fix the order of a race by holding a thread at
//! an interaction point until another has reached its own ([`Diagram::hold`]), so that the
//! same run draws the same picture.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tracing::field::{Field, Visit};
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::layer::{Context as LayerContext, Layer, SubscriberExt};
use tracing_subscriber::registry::Registry;

/// The `tracing` target of interaction events, and the participant name that stands for the
/// thread emitting one: the names the pattern crates' `posa_seq::seq!` events use.
pub use posa_seq::{TARGET, THREAD};
/// The environment variable naming the file the diagram is written to.
pub const ENV: &str = "POSA_DIAGRAM";

/// The arrow an event draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A call or a message: `->>`.
    Call,
    /// A return: `-->>`.
    Reply,
    /// A failure (a panic, an error): `--x`.
    Fail,
    /// A note over `from`.
    Note,
}

/// One recorded interaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The caller (or the participant a note is over).
    pub from: String,
    /// The callee; empty for a note.
    pub to: String,
    /// The arrow's text.
    pub message: String,
    /// The arrow.
    pub kind: Kind,
    /// The thread that emitted it (its name, or `T1`, `T2`, ... in the order unnamed threads first spoke).
    pub thread: String,
}

/// Which steps a [`Hold`] holds.
type StepTest = Box<dyn Fn(&Step) -> bool + Send + Sync>;
/// What the recording must show before a held step goes on.
type RecordingTest = Box<dyn Fn(&[Step]) -> bool + Send + Sync>;

/// A rule of [`Diagram::hold`]: which steps wait, and for what.
struct Hold {
    step: StepTest,
    until: RecordingTest,
}

#[derive(Default)]
struct Log {
    steps: Vec<Step>,
    threads: Vec<std::thread::ThreadId>,
    paused: bool,
    /// Threads whose names start with this are numbered like unnamed ones.
    numbered: Option<String>,
    holds: Vec<Hold>,
}

impl Log {
    /// The calling thread's name, unless it is numbered by appearance.
    fn name_of(&self, me: &std::thread::Thread) -> Option<String> {
        me.name()
            .filter(|name| {
                !self
                    .numbered
                    .as_ref()
                    .is_some_and(|p| name.starts_with(p.as_str()))
            })
            .map(str::to_owned)
    }

    /// The calling thread's label if it has one yet (its name, or the number it was given),
    /// else an empty string; gives no number.
    fn known_label(&self) -> String {
        let me = std::thread::current();
        if let Some(name) = self.name_of(&me) {
            return name;
        }
        self.threads
            .iter()
            .position(|t| *t == me.id())
            .map_or_else(String::new, |n| format!("T{}", n + 1))
    }

    /// The label of the calling thread: its name, else `T<n>` by order of first appearance.
    fn thread_label(&mut self) -> String {
        let me = std::thread::current();
        if let Some(name) = self.name_of(&me) {
            return name;
        }
        let n = match self.threads.iter().position(|t| *t == me.id()) {
            Some(n) => n,
            None => {
                self.threads.push(me.id());
                self.threads.len() - 1
            }
        };
        format!("T{}", n + 1)
    }
}

/// The most steps a recording keeps (a diagram shows far fewer; this only bounds memory).
const KEEP: usize = 100_000;

/// The longest a step waits for its [`Diagram::hold`]: past it, the step is recorded in the
/// order that happened, which the demo then reports as a diagram different from the one drawn
/// before, rather than a hang.
const HOLD_AT_MOST: Duration = Duration::from_secs(10);

#[derive(Default)]
struct Shared {
    log: Mutex<Log>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Default)]
struct Fields {
    from: Option<String>,
    to: Option<String>,
    message: String,
    kind: Option<String>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.set(field, value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.set(field, format!("{value:?}"));
    }
}

impl Fields {
    fn set(&mut self, field: &Field, value: String) {
        match field.name() {
            "from" => self.from = Some(value),
            "to" => self.to = Some(value),
            "kind" => self.kind = Some(value),
            "message" => self.message = value,
            _ => {}
        }
    }
}

struct Recorder(Arc<Shared>);

impl<S: Subscriber> Layer<S> for Recorder {
    fn enabled(&self, metadata: &Metadata<'_>, _ctx: LayerContext<'_, S>) -> bool {
        metadata.target() == TARGET
    }

    fn on_event(&self, event: &Event<'_>, _ctx: LayerContext<'_, S>) {
        if event.metadata().target() != TARGET {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let kind = match fields.kind.as_deref() {
            Some("reply") => Kind::Reply,
            Some("fail") => Kind::Fail,
            Some("note") => Kind::Note,
            _ => Kind::Call,
        };
        let mut log = self.0.lock();
        if log.paused {
            return;
        }
        let step = |thread: String| {
            let name = |who: &Option<String>| -> String {
                match who.as_deref() {
                    Some(THREAD) => thread.clone(),
                    Some(other) => other.to_owned(),
                    None => String::new(),
                }
            };
            Step {
                from: name(&fields.from),
                to: name(&fields.to),
                message: fields.message.clone(),
                kind,
                thread,
            }
        };
        // A held step's thread waits here, before its step is recorded and before it goes on.
        // A thread numbered by appearance gets its number once it is recorded, not while
        // held (its label is empty till then), so the numbers follow the drawing.
        let tentative = step(log.known_label());
        let deadline = Instant::now() + HOLD_AT_MOST;
        while log
            .holds
            .iter()
            .any(|h| (h.step)(&tentative) && !(h.until)(&log.steps))
        {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            log = self
                .0
                .changed
                .wait_timeout(log, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        let step = step(log.thread_label());
        if log.steps.len() < KEEP {
            log.steps.push(step);
        }
        drop(log);
        self.0.changed.notify_all();
    }
}

/// A recording of one run, or nothing when `POSA_DIAGRAM` is not set.
pub struct Diagram {
    example: String,
    target: Option<(PathBuf, Arc<Shared>)>,
    aliases: Vec<(String, String)>,
    limit: usize,
    by_thread: bool,
}

impl fmt::Debug for Diagram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Diagram")
            .field("example", &self.example)
            .field("recording", &self.recording())
            .finish()
    }
}

/// The number of interactions a diagram shows unless [`Diagram::from_env_limited`] says otherwise.
pub const DEFAULT_LIMIT: usize = 80;

impl Diagram {
    /// Starts recording when `POSA_DIAGRAM` is set (installing the global subscriber).
    pub fn from_env(example: &str) -> Self {
        Self::from_env_limited(example, DEFAULT_LIMIT)
    }

    /// As [`Diagram::from_env`], keeping at most `limit` interactions (the rest are counted
    /// as "more of the same" at the end).
    pub fn from_env_limited(example: &str, limit: usize) -> Self {
        let target = std::env::var_os(ENV).and_then(|path| {
            let shared = Arc::new(Shared::default());
            let subscriber = Registry::default().with(Recorder(shared.clone()));
            tracing::subscriber::set_global_default(subscriber)
                .ok()
                .map(|()| (PathBuf::from(path), shared))
        });
        Self {
            example: example.to_owned(),
            target,
            aliases: Vec::new(),
            limit,
            by_thread: false,
        }
    }

    /// Whether a run is being recorded.
    pub fn recording(&self) -> bool {
        self.target.is_some()
    }

    /// Shows participant `raw` (as the code names it) as `shown`, in messages too.
    pub fn alias(&mut self, raw: impl Into<String>, shown: impl Into<String>) {
        self.aliases.push((raw.into(), shown.into()));
    }

    /// Draws each thread's steps together, threads in the order of their labels, instead of
    /// the order in which they happened: for threads that do not interact, whose interleaving
    /// is the scheduler's whim and nothing the pattern decides.
    pub fn group_by_thread(&mut self) {
        self.by_thread = true;
    }

    /// Labels the threads whose names start with `prefix` as unnamed ones are labelled, `T1`,
    /// `T2`, ... in the order they first speak: for a pool whose threads' names say in which
    /// order they were started, not which role each plays first.
    pub fn number_threads(&self, prefix: &str) {
        if let Some((_, shared)) = &self.target {
            shared.lock().numbered = Some(prefix.to_owned());
        }
    }

    /// Fixes the order of a race: a thread about to emit a step for which `step` holds waits,
    /// before the step is recorded and before it goes on, until the steps recorded so far
    /// satisfy `until` (ten seconds at most). The wait is real: the thread is held at its
    /// interaction point, so every run takes the same interleaving and draws the same picture
    /// of it, an interleaving the scheduler could have chosen.
    ///
    /// A step is held only where its thread holds no lock another step of `until` needs:
    /// events emitted by a thread of the code under study while it holds its own lock would
    /// stall the others until the ten seconds pass (and the drawing would show it).
    pub fn hold(
        &self,
        step: impl Fn(&Step) -> bool + Send + Sync + 'static,
        until: impl Fn(&[Step]) -> bool + Send + Sync + 'static,
    ) {
        if let Some((_, shared)) = &self.target {
            shared.lock().holds.push(Hold {
                step: Box::new(step),
                until: Box::new(until),
            });
        }
    }

    /// Stops recording until [`Diagram::resume`] (for set-up and tear-down the page need not show).
    pub fn pause(&self) {
        if let Some((_, shared)) = &self.target {
            shared.lock().paused = true;
        }
    }

    /// Records again after [`Diagram::pause`].
    pub fn resume(&self) {
        if let Some((_, shared)) = &self.target {
            shared.lock().paused = false;
        }
    }

    /// Adds a note over `over`: what the example did that the code under study cannot say.
    pub fn note(&self, over: &str, text: &str) {
        if let Some((_, shared)) = &self.target {
            let mut log = shared.lock();
            if !log.paused {
                let thread = log.thread_label();
                log.steps.push(Step {
                    from: over.to_owned(),
                    to: String::new(),
                    message: text.to_owned(),
                    kind: Kind::Note,
                    thread,
                });
                drop(log);
                shared.changed.notify_all();
            }
        }
    }

    /// Waits until `done` holds for the steps recorded so far, or `timeout` passes; `false` on
    /// the timeout. Returns `true` at once when nothing is recorded.
    pub fn wait_for(&self, timeout: Duration, done: impl Fn(&[Step]) -> bool) -> bool {
        let Some((_, shared)) = &self.target else {
            return true;
        };
        let deadline = Instant::now() + timeout;
        let mut log = shared.lock();
        loop {
            if done(&log.steps) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            log = shared
                .changed
                .wait_timeout(log, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Waits until at least `n` steps whose message contains `message` are recorded (see
    /// [`Diagram::wait_for`]; ten seconds at most).
    pub fn wait_for_count(&self, message: &str, n: usize) -> bool {
        self.wait_for(Duration::from_secs(10), |steps| {
            steps.iter().filter(|s| s.message.contains(message)).count() >= n
        })
    }

    /// The steps recorded so far (empty when nothing is recorded).
    pub fn steps(&self) -> Vec<Step> {
        self.target
            .as_ref()
            .map(|(_, shared)| shared.lock().steps.clone())
            .unwrap_or_default()
    }

    /// Writes the diagram to the file `POSA_DIAGRAM` names (nothing when it is not set).
    pub fn finish(self) -> io::Result<()> {
        let Some((path, shared)) = &self.target else {
            return Ok(());
        };
        let steps = shared.lock().steps.clone();
        let (steps, dropped) = arrange(steps, self.by_thread, self.limit);
        std::fs::write(path, render(&self.example, &steps, dropped, &self.aliases))
    }
}

/// The steps a diagram shows: grouped per thread (a stable sort, so each thread's own order
/// stays) when asked, then the first `limit`; with the number left out.
fn arrange(mut steps: Vec<Step>, by_thread: bool, limit: usize) -> (Vec<Step>, usize) {
    if by_thread {
        steps.sort_by(|a, b| a.thread.cmp(&b.thread));
    }
    let dropped = steps.len().saturating_sub(limit);
    steps.truncate(limit);
    (steps, dropped)
}

/// Text safe inside a mermaid message or note (`;`, `#`, `<`, `>` would be read as syntax).
fn clean(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            ';' => ",".to_owned(),
            '#' => "#35;".to_owned(),
            '<' => "#lt;".to_owned(),
            '>' => "#gt;".to_owned(),
            '\n' | '\r' => " ".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

/// The mermaid page of `steps`: participants in the order they first appear.
pub fn render(
    example: &str,
    steps: &[Step],
    dropped: usize,
    aliases: &[(String, String)],
) -> String {
    let show = |raw: &str| -> String {
        aliases
            .iter()
            .find(|(r, _)| r == raw)
            .map_or_else(|| raw.to_owned(), |(_, s)| s.clone())
    };
    let mut participants: Vec<String> = Vec::new();
    let id = |name: &str, participants: &mut Vec<String>| -> String {
        let n = match participants.iter().position(|p| p == name) {
            Some(n) => n,
            None => {
                participants.push(name.to_owned());
                participants.len() - 1
            }
        };
        format!("P{}", n + 1)
    };
    let mut body = String::new();
    for step in steps {
        let from = id(&show(&step.from), &mut participants);
        let message = clean(
            &aliases
                .iter()
                .fold(step.message.clone(), |m, (raw, shown)| {
                    m.replace(raw.as_str(), shown)
                }),
        );
        if step.kind == Kind::Note {
            body.push_str(&format!("    Note over {from}: {message}\n"));
            continue;
        }
        let to = id(&show(&step.to), &mut participants);
        let arrow = match step.kind {
            Kind::Call | Kind::Note => "->>",
            Kind::Reply => "-->>",
            Kind::Fail => "--x",
        };
        body.push_str(&format!("    {from}{arrow}{to}: {message}\n"));
    }
    if dropped > 0 {
        let first = id(&show(&steps[0].from), &mut participants);
        body.push_str(&format!(
            "    Note over {first}: the run goes on: {dropped} more interactions not drawn\n"
        ));
    }
    let mut out = format!(
        "<!-- generated by `cargo xtask demo --diagrams` from a run of {example}: do not edit -->\n\n```mermaid\nsequenceDiagram\n"
    );
    for (n, name) in participants.iter().enumerate() {
        out.push_str(&format!("    participant P{} as {}\n", n + 1, clean(name)));
    }
    out.push_str(&body);
    out.push_str("```\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(from: &str, to: &str, message: &str, kind: Kind) -> Step {
        Step {
            from: from.into(),
            to: to.into(),
            message: message.into(),
            kind,
            thread: "main".into(),
        }
    }

    #[test]
    fn steps_render_as_arrows_between_participants_in_order_of_appearance() {
        let steps = [
            step("Client", "Subject", "set_state(3); now <#>", Kind::Call),
            step("Subject", "", "changed", Kind::Note),
            step("Subject", "Observer", "update", Kind::Call),
            step("Observer", "Subject", "panicked", Kind::Fail),
            step("Subject", "Client", "ok", Kind::Reply),
        ];
        let aliases = [("Observer".to_owned(), "Display".to_owned())];
        let text = render("ex", &steps, 2, &aliases);
        assert_eq!(
            text,
            "<!-- generated by `cargo xtask demo --diagrams` from a run of ex: do not edit -->\n\n```mermaid\nsequenceDiagram\n\
             \x20   participant P1 as Client\n    participant P2 as Subject\n    participant P3 as Display\n\
             \x20   P1->>P2: set_state(3), now #lt;#35;#gt;\n    Note over P2: changed\n    P2->>P3: update\n    P3--xP2: panicked\n    P2-->>P1: ok\n\
             \x20   Note over P1: the run goes on: 2 more interactions not drawn\n```\n"
        );
    }

    #[test]
    fn grouping_by_thread_keeps_each_threads_order_and_the_limit_counts_the_rest() {
        let on = |thread: &str, message: &str| Step {
            thread: thread.into(),
            ..step("A", "B", message, Kind::Call)
        };
        let steps = vec![
            on("w-2", "a"),
            on("w-1", "b"),
            on("w-2", "c"),
            on("w-1", "d"),
        ];
        let (kept, dropped) = arrange(steps.clone(), true, 3);
        let messages: Vec<&str> = kept.iter().map(|s| s.message.as_str()).collect();
        assert_eq!((messages, dropped), (vec!["b", "d", "a"], 1));
        let (kept, dropped) = arrange(steps, false, 10);
        assert_eq!((kept.len(), dropped), (4, 0));
        assert_eq!(kept[0].message, "a");
    }

    /// A diagram recording into `shared` without the global subscriber (tests install their own).
    fn recording(shared: &Arc<Shared>) -> Diagram {
        Diagram {
            example: "test".into(),
            target: Some((PathBuf::new(), shared.clone())),
            aliases: Vec::new(),
            limit: DEFAULT_LIMIT,
            by_thread: false,
        }
    }

    #[test]
    fn a_held_step_waits_for_its_condition_and_numbered_threads_go_by_appearance() {
        let shared = Arc::new(Shared::default());
        let diagram = recording(&shared);
        diagram.number_threads("pool-");
        // "late" is emitted first in time, but its thread waits until "early" is recorded.
        diagram.hold(
            |s| s.message == "late",
            |steps| steps.iter().any(|s| s.message == "early"),
        );
        let dispatch = tracing::Dispatch::new(Registry::default().with(Recorder(shared.clone())));
        let emit = |name: &str, message: &'static str| {
            let dispatch = dispatch.clone();
            std::thread::Builder::new()
                .name(name.into())
                .spawn(move || {
                    tracing::dispatcher::with_default(&dispatch, || {
                        tracing::trace!(target: "posa_seq", from = THREAD, to = "X", "{message}")
                    })
                })
                .unwrap()
        };
        let late = emit("pool-7", "late");
        // The held thread is waiting: nothing is recorded until "early" comes.
        assert!(!diagram.wait_for(Duration::from_millis(50), |steps| !steps.is_empty()));
        let early = emit("pool-3", "early");
        late.join().unwrap();
        early.join().unwrap();
        emit("named", "other").join().unwrap();
        let seen: Vec<(String, String)> = diagram
            .steps()
            .into_iter()
            .map(|s| (s.from, s.message))
            .collect();
        let pair = |a: &str, b: &str| (a.to_owned(), b.to_owned());
        assert_eq!(
            seen,
            [
                pair("T1", "early"),
                pair("T2", "late"),
                pair("named", "other")
            ]
        );
    }

    #[test]
    fn the_recorder_keeps_only_its_target_and_names_threads() {
        let shared = Arc::new(Shared::default());
        let dispatch = tracing::Dispatch::new(Registry::default().with(Recorder(shared.clone())));
        tracing::dispatcher::with_default(&dispatch, || {
            tracing::trace!(target: "posa_seq", from = THREAD, to = "B", "one");
            tracing::info!(from = "X", to = "Y", "another target");
            std::thread::scope(|s| {
                s.spawn(|| {
                    tracing::dispatcher::with_default(
                        &dispatch,
                        || tracing::trace!(target: "posa_seq", from = THREAD, to = "B", "unnamed"),
                    )
                });
            });
            std::thread::scope(|s| {
                std::thread::Builder::new().name("worker".into()).spawn_scoped(s, || {
                    tracing::dispatcher::with_default(&dispatch, || {
                        tracing::trace!(target: "posa_seq", from = "B", to = THREAD, kind = "reply", "two")
                    })
                }).unwrap();
            });
            tracing::trace!(target: "posa_seq", from = THREAD, kind = "note", "three");
            tracing::trace!(target: "posa_seq", from = "A", to = "B", "four");
        });
        let log = shared.lock();
        let seen: Vec<(&str, &str, &str, Kind, &str)> = log
            .steps
            .iter()
            .map(|s| (&*s.from, &*s.to, &*s.message, s.kind, &*s.thread))
            .collect();
        // The test thread is named by the test harness.
        let me = std::thread::current().name().unwrap_or("T1").to_owned();
        let unnamed = if me == "T1" { "T2" } else { "T1" };
        assert_eq!(
            seen,
            [
                (&*me, "B", "one", Kind::Call, &*me),
                (unnamed, "B", "unnamed", Kind::Call, unnamed),
                ("B", "worker", "two", Kind::Reply, "worker"),
                (&*me, "", "three", Kind::Note, &*me),
                ("A", "B", "four", Kind::Call, &*me),
            ]
        );
    }
}
