//! The interaction events the pattern crates emit, from which runs draw sequence diagrams.
//!
//! A pattern crate calls [`seq!`] at each interaction point of its participants: who calls
//! whom with what, and what comes back. The event is a `tracing` event with the target
//! [`TARGET`]; `pattern_core::diagram` records such events and writes a mermaid sequence
//! diagram of a run (`cargo xtask demo --diagrams`). Without a subscriber an event costs a
//! relaxed load of tracing's global maximum level and a compare; nothing is formatted.
//!
//! This crate is the one home of the macro and its names. It depends on no workspace crate,
//! so that the crates which may use no other (the GoF crates, `pattern-core` and the
//! bottom of the POSA2 stack) may use it: docs/ARCHITECTURE.md's dependency rules name it.
//!
//! | form | arrow |
//! |---|---|
//! | `seq!(from => to, "message {}", x)` | a call or a message, `->>` |
//! | `seq!(reply from => to, ...)` | a return, `-->>` |
//! | `seq!(fail from => to, ...)` | a failure (an error, a panic), `--x` |
//! | `seq!(note over, ...)` | a note over `over` |
//!
//! `from`, `to` and `over` are anything that implements `Display`; [`THREAD`] stands for the
//! thread that emits the event.
//!
//! ```
//! use posa_seq::seq;
//!
//! let reading = 21.5;
//! seq!("Subject" => "Observer", "update({reading})");
//! seq!(reply "Observer" => "Subject", "ok");
//! seq!(note posa_seq::THREAD, "the observers are notified");
//! ```
#![forbid(unsafe_code)]

#[doc(hidden)]
pub use tracing;

/// The `tracing` target of interaction events.
pub const TARGET: &str = "posa_seq";

/// A participant name that stands for the thread emitting the event.
pub const THREAD: &str = "@thread";

/// Emits an interaction event (target [`TARGET`], level `TRACE`); see the crate's docs for the
/// forms.
#[macro_export]
macro_rules! seq {
    (note $over:expr, $($msg:tt)+) => {
        $crate::tracing::trace!(target: "posa_seq", from = %$over, kind = "note", $($msg)+)
    };
    (reply $from:expr => $to:expr, $($msg:tt)+) => {
        $crate::tracing::trace!(target: "posa_seq", from = %$from, to = %$to, kind = "reply", $($msg)+)
    };
    (fail $from:expr => $to:expr, $($msg:tt)+) => {
        $crate::tracing::trace!(target: "posa_seq", from = %$from, to = %$to, kind = "fail", $($msg)+)
    };
    ($from:expr => $to:expr, $($msg:tt)+) => {
        $crate::tracing::trace!(target: "posa_seq", from = %$from, to = %$to, $($msg)+)
    };
}

/// Whether interaction events are being recorded: for work done only to draw (a snapshot of
/// participants' names, say) that a run without a recorder should not pay for.
pub fn enabled() -> bool {
    tracing::enabled!(target: "posa_seq", tracing::Level::TRACE)
}

/// A type's name without its path and generic parameters, as diagrams show participants
/// (`Subject` for `gof_behavioral::observer::Subject<Reading>`).
pub fn short<T: ?Sized>() -> &'static str {
    let name = std::any::type_name::<T>();
    let name = name.split('<').next().unwrap_or(name);
    name.rsplit("::").next().unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_drop_the_path_and_the_parameters() {
        struct Sensor;
        assert_eq!(short::<Sensor>(), "Sensor");
        assert_eq!(short::<Vec<std::string::String>>(), "Vec");
        assert_eq!(short::<u8>(), "u8");
    }

    /// Records each event's target and fields, as `pattern_core::diagram`'s recorder reads them.
    /// An event: its target and its fields (name, value).
    type Recorded = (String, Vec<(String, String)>);

    #[derive(Clone, Default)]
    struct Seen(std::sync::Arc<std::sync::Mutex<Vec<Recorded>>>);

    struct Fields(Vec<(String, String)>);

    impl tracing::field::Visit for Fields {
        fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
            self.0.push((field.name().to_owned(), format!("{value:?}")));
        }
    }

    impl tracing::Subscriber for Seen {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, event: &tracing::Event<'_>) {
            let mut fields = Fields(Vec::new());
            event.record(&mut fields);
            let target = event.metadata().target().to_owned();
            self.0.lock().unwrap().push((target, fields.0));
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }

    #[test]
    fn each_form_emits_an_event_of_the_target_with_its_kind() {
        assert!(!enabled(), "no subscriber yet");
        let seen = Seen::default();
        tracing::subscriber::with_default(seen.clone(), || {
            assert!(enabled());
            let n = 3;
            seq!("A" => "B", "call {n}");
            seq!(reply "B" => "A", "ok");
            seq!(fail "B" => "A", "Err");
            seq!(note THREAD, "a note");
        });
        let field = |f: &[(String, String)], name: &str| {
            f.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        };
        let seen = seen.0.lock().unwrap();
        let got: Vec<_> = seen
            .iter()
            .map(|(target, f)| {
                (
                    target.as_str(),
                    field(f, "from"),
                    field(f, "to"),
                    field(f, "kind"),
                    field(f, "message"),
                )
            })
            .collect();
        let s = |v: &str| Some(v.to_owned());
        assert_eq!(
            got,
            [
                (TARGET, s("A"), s("B"), None, s("call 3")),
                (TARGET, s("B"), s("A"), s("\"reply\""), s("ok")),
                (TARGET, s("B"), s("A"), s("\"fail\""), s("Err")),
                (TARGET, s(THREAD), None, s("\"note\""), s("a note")),
            ]
        );
    }
}
