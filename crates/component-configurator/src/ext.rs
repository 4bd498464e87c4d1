//! The Extension Interface pattern: a component exports several interfaces beside its
//! control interface ([`Component`](crate::Component)), and clients ask it for one by its
//! identifier ([`Component::query_interface`](crate::Component::query_interface)).
//!
//! Each extension interface is a Rust trait ([`Statistics`], [`RecordFilter`]), an
//! identifier that carries its version ([`statistics::IID`], [`record_filter::IID`]), and
//! for plugins a `#[repr(C)]` vtable. A component asked for an interface it does not export
//! answers `None`; so does a plugin built before the query existed (it has no
//! [`QUERY_SYMBOL`](crate::abi::QUERY_SYMBOL)), and a plugin whose query panics.
//! A new interface (or a new version of one, under a new identifier) is added beside the
//! others: no existing interface, component or client changes.
//!
//! A plugin names the interfaces each component type exports in
//! [`export_components!`](crate::export_components)'s `interfaces` section:
//!
//! ```text
//! component_configurator::export_components! {
//!     plugin: "gate",
//!     _make_gate => Gate::default;
//!     interfaces: { _make_gate: Gate => [statistics, record_filter] },
//! }
//! ```

use std::ffi::c_void;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::abi::{ByteSink, STATUS_OK, STATUS_PANIC, Str};

/// The statistics interface: named counters.
pub trait Statistics: Send + Sync {
    /// The counters, by name.
    fn counters(&self) -> Vec<(String, u64)>;
}

/// One record as a filter sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FilterInput<'a> {
    /// The client host.
    pub host: &'a str,
    /// The application.
    pub app: &'a str,
    /// Syslog severity (0 ..= 7).
    pub severity: u8,
    /// The message text.
    pub message: &'a str,
}

/// What a filter answers.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FilterVerdict {
    /// Let the record through unchanged.
    Pass,
    /// Drop it.
    Drop,
    /// Let it through with this message text.
    Rewrite(String),
}

/// The record filter interface: an interceptor for log records.
pub trait RecordFilter: Send + Sync {
    /// Looks at one record.
    fn filter(&self, record: &FilterInput<'_>) -> FilterVerdict;
}

/// An extension interface a component exports, as [`Component::query_interface`] hands it
/// out.
///
/// [`Component::query_interface`]: crate::Component::query_interface
#[derive(Clone, Copy)]
#[non_exhaustive]
pub enum Extension<'a> {
    /// [`statistics::IID`].
    Statistics(&'a dyn Statistics),
    /// [`record_filter::IID`].
    RecordFilter(&'a dyn RecordFilter),
}

impl std::fmt::Debug for Extension<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Extension::Statistics(_) => "Extension::Statistics",
            Extension::RecordFilter(_) => "Extension::RecordFilter",
        })
    }
}

impl<'a> Extension<'a> {
    /// The statistics interface, if this is it.
    pub fn statistics(self) -> Option<&'a dyn Statistics> {
        match self {
            Extension::Statistics(s) => Some(s),
            _ => None,
        }
    }

    /// The record filter interface, if this is it.
    pub fn record_filter(self) -> Option<&'a dyn RecordFilter> {
        match self {
            Extension::RecordFilter(f) => Some(f),
            _ => None,
        }
    }
}

/// The identifiers of every interface this host knows, for listings.
pub const KNOWN: &[&str] = &[statistics::IID, record_filter::IID];

/// Runs `f`, turning a panic into [`STATUS_PANIC`] (plugin side).
fn no_unwind(f: impl FnOnce() -> u32) -> u32 {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(status) => status,
        Err(payload) => {
            std::mem::forget(payload);
            STATUS_PANIC
        }
    }
}

/// The statistics interface across the C ABI.
pub mod statistics {
    use super::*;

    /// Its identifier: name and version.
    pub const IID: &str = "posa.statistics/1";

    /// Its vtable.
    #[repr(C)]
    #[derive(Debug)]
    pub struct VTable {
        /// `size_of::<VTable>()`.
        pub size: u32,
        /// Writes the counters to the sink as `name value\n` lines.
        pub counters: unsafe extern "C" fn(object: *mut c_void, out: ByteSink) -> u32,
    }

    /// The plugin-side shims for `T`.
    #[derive(Debug)]
    pub struct Shims<T>(PhantomData<T>);

    impl<T: Statistics + 'static> Shims<T> {
        /// The vtable for `T`.
        pub const VTABLE: VTable = VTable {
            size: std::mem::size_of::<VTable>() as u32,
            counters: Self::counters,
        };

        unsafe extern "C" fn counters(object: *mut c_void, out: ByteSink) -> u32 {
            no_unwind(|| {
                // SAFETY: the host passes the object the factory made for this `T`.
                let t = unsafe { &*(object as *const T) };
                let mut text = String::new();
                for (name, value) in t.counters() {
                    // Names are single words on the wire.
                    let name: String = name
                        .chars()
                        .map(|c| if c.is_whitespace() { '_' } else { c })
                        .collect();
                    text.push_str(&format!("{name} {value}\n"));
                }
                // SAFETY: the sink is valid for this call.
                unsafe { out.put(text.as_bytes()) };
                STATUS_OK
            })
        }
    }

    /// The vtable for `T`, as the query hands it out.
    pub fn vtable<T: Statistics + 'static>() -> *const c_void {
        &Shims::<T>::VTABLE as *const VTable as *const c_void
    }

    /// Parses what `counters` wrote; malformed lines are skipped.
    pub fn parse(text: &[u8]) -> Vec<(String, u64)> {
        String::from_utf8_lossy(text)
            .lines()
            .filter_map(|l| {
                let (name, value) = l.rsplit_once(' ')?;
                Some((name.to_owned(), value.parse().ok()?))
            })
            .collect()
    }
}

/// The record filter interface across the C ABI.
pub mod record_filter {
    use super::*;

    /// Its identifier: name and version.
    pub const IID: &str = "posa.record-filter/1";

    /// Verdict code: pass.
    pub const PASS: u32 = 0;
    /// Verdict code: drop.
    pub const DROP: u32 = 1;
    /// Verdict code: rewrite (the new text is in the sink).
    pub const REWRITE: u32 = 2;

    /// Its vtable.
    #[repr(C)]
    #[derive(Debug)]
    pub struct VTable {
        /// `size_of::<VTable>()`.
        pub size: u32,
        /// Filters one record: writes the verdict code to `verdict` and, for a rewrite, the
        /// new text to `rewritten`.
        pub filter: unsafe extern "C" fn(
            object: *mut c_void,
            host: Str,
            app: Str,
            severity: u32,
            message: Str,
            verdict: *mut u32,
            rewritten: ByteSink,
        ) -> u32,
    }

    /// The plugin-side shims for `T`.
    #[derive(Debug)]
    pub struct Shims<T>(PhantomData<T>);

    impl<T: RecordFilter + 'static> Shims<T> {
        /// The vtable for `T`.
        pub const VTABLE: VTable = VTable {
            size: std::mem::size_of::<VTable>() as u32,
            filter: Self::filter,
        };

        unsafe extern "C" fn filter(
            object: *mut c_void,
            host: Str,
            app: Str,
            severity: u32,
            message: Str,
            verdict: *mut u32,
            rewritten: ByteSink,
        ) -> u32 {
            no_unwind(|| {
                // SAFETY: the host passes the object the factory made for this `T`, slices
                // valid for the call, a writable `verdict` and a live sink.
                unsafe {
                    let t = &*(object as *const T);
                    let (host, app, message) = (
                        String::from_utf8_lossy(host.bytes()),
                        String::from_utf8_lossy(app.bytes()),
                        String::from_utf8_lossy(message.bytes()),
                    );
                    let input = FilterInput {
                        host: &host,
                        app: &app,
                        severity: severity.min(7) as u8,
                        message: &message,
                    };
                    let code = match t.filter(&input) {
                        FilterVerdict::Pass => PASS,
                        FilterVerdict::Drop => DROP,
                        FilterVerdict::Rewrite(text) => {
                            rewritten.put(text.as_bytes());
                            REWRITE
                        }
                    };
                    verdict.write(code);
                }
                STATUS_OK
            })
        }
    }

    /// The vtable for `T`, as the query hands it out.
    pub fn vtable<T: RecordFilter + 'static>() -> *const c_void {
        &Shims::<T>::VTABLE as *const VTable as *const c_void
    }
}
