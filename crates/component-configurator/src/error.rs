//! The crate's error type.

use std::path::PathBuf;

use crate::component::ComponentError;
use crate::svc_conf::ParseError;

/// Everything that can go wrong while configuring components.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is malformed or inconsistent; nothing was applied.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// A configuration file could not be read; nothing was applied.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// No component of that name is in the repository.
    #[error("no component named {0:?}")]
    NotFound(String),
    /// The component exists but is suspended.
    #[error("component {0:?} is suspended")]
    Suspended(String),
    /// A component of that name is already in the repository.
    #[error("a component named {0:?} is already configured")]
    Duplicate(String),
    /// No static component was registered under that name.
    #[error("no static component is registered as {0:?}")]
    UnknownStatic(String),
    /// The library was not found where it was looked for.
    #[error("library {spec:?} not found (looked at {looked:?})")]
    LibraryNotFound {
        /// The library as written in the directive.
        spec: String,
        /// The paths tried.
        looked: Vec<PathBuf>,
    },
    /// The file is not a component library of ours: it lacks the exported descriptor.
    #[error("{path} is not a component library: {reason} (none of its code was run)")]
    NotAComponentLibrary {
        /// The library.
        path: PathBuf,
        /// What was missing or malformed.
        reason: String,
    },
    /// The library, or its directory, may have been written by someone the process must
    /// not take code from ([`PluginTrust`](crate::PluginTrust)); none of its code was run.
    #[error(
        "refusing {path}: {reason} (none of its code was run; --insecure-plugins skips this check)"
    )]
    UntrustedLibrary {
        /// The library or directory that failed the check.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The library's descriptor does not match this host; none of its code was run.
    #[error(
        "{path} was built for another ABI: {field} is {found}, this host needs {expected} (none of its code was run)"
    )]
    AbiMismatch {
        /// The library.
        path: PathBuf,
        /// Which descriptor field differs.
        field: &'static str,
        /// What the host expects.
        expected: String,
        /// What the library says.
        found: String,
    },
    /// `dlopen` or `dlsym` failed.
    #[error("loading {path}: {message}")]
    Load {
        /// The library.
        path: PathBuf,
        /// The loader's message.
        message: String,
    },
    /// The library lacks the factory the directive names.
    #[error("{path} has no factory {factory:?}")]
    MissingSymbol {
        /// The library.
        path: PathBuf,
        /// The factory asked for.
        factory: String,
    },
    /// A component's operation failed (or panicked, see [`ComponentError::panicked`]).
    #[error("component {name:?}: {operation} failed: {error}")]
    Component {
        /// The component.
        name: String,
        /// `init`, `fini`, `suspend`, ...
        operation: &'static str,
        /// What the component reported.
        error: ComponentError,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
