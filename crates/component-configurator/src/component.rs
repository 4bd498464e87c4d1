//! The component configuration and control interface (implementation step 1).

use std::fmt;

/// What a component reports when an operation fails; `panicked` tells a caught panic apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentError {
    /// What went wrong, in the component's words.
    pub message: String,
    /// True when the component panicked and the panic was caught.
    pub panicked: bool,
    /// The kind of the OS error behind the failure, when there was one (a port in use, a
    /// permission refused), so a host can tell "the host lacks something" from "the
    /// configuration is wrong" without parsing the message.
    pub io_kind: Option<std::io::ErrorKind>,
}

impl ComponentError {
    /// An ordinary failure with `message`.
    pub fn new(message: impl Into<String>) -> Self {
        ComponentError {
            message: message.into(),
            panicked: false,
            io_kind: None,
        }
    }

    /// A failure caused by the OS: `context` says what was being done, `error` why.
    pub fn io(context: impl fmt::Display, error: &std::io::Error) -> Self {
        ComponentError {
            message: format!("{context}: {error}"),
            panicked: false,
            io_kind: Some(error.kind()),
        }
    }

    /// A caught panic whose payload said `message`.
    pub fn panic(message: impl Into<String>) -> Self {
        ComponentError {
            message: message.into(),
            panicked: true,
            io_kind: None,
        }
    }
}

impl fmt::Display for ComponentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.panicked {
            write!(f, "panicked: {}", self.message)
        } else {
            f.write_str(&self.message)
        }
    }
}

impl std::error::Error for ComponentError {}

/// The uniform interface every component offers its configurator.
///
/// The lifecycle is `init` → (`suspend` ⇄ `resume`)* → `fini`; a component may be initialised
/// again after `fini` (a reconfiguration with new arguments does exactly that).
/// Components run their own services (threads, event loops); these calls only control them.
///
/// ```
/// use component_configurator::{Component, ComponentError};
///
/// #[derive(Debug, Default)]
/// struct Greeter { greeting: String, serving: bool }
///
/// impl Component for Greeter {
///     fn init(&mut self, args: &[String]) -> Result<(), ComponentError> {
///         self.greeting = args.first().cloned().unwrap_or_else(|| "hello".into());
///         self.serving = true;
///         Ok(())
///     }
///     fn fini(&mut self) -> Result<(), ComponentError> { self.serving = false; Ok(()) }
///     fn info(&self) -> String { format!("greeter saying {:?}", self.greeting) }
/// }
///
/// let mut g = Greeter::default();
/// g.init(&["hi".to_owned()])?;
/// assert_eq!(g.info(), "greeter saying \"hi\"");
/// # Ok::<(), ComponentError>(())
/// ```
pub trait Component: Send {
    /// Starts the component with its argv (from the directive's quoted arguments).
    fn init(&mut self, args: &[String]) -> Result<(), ComponentError>;

    /// Checks `args` as [`init`](Self::init) would parse them, without acquiring anything
    /// (no port bound, no thread started).
    ///
    /// The configurator calls it on a fresh, uninitialised instance for every directive
    /// before it applies any of them, so a bad argument refuses the whole configuration and
    /// leaves running components as they were. Resources that can only be tried by taking
    /// them (a port someone else holds) still fail in `init`. The default accepts anything.
    fn check(&self, args: &[String]) -> Result<(), ComponentError> {
        let _ = args;
        Ok(())
    }

    /// Stops the component and releases what `init` acquired (ports, threads).
    fn fini(&mut self) -> Result<(), ComponentError>;

    /// Stops serving for a while, keeping the resources needed to resume.
    fn suspend(&mut self) -> Result<(), ComponentError> {
        Ok(())
    }

    /// Serves again after [`suspend`](Self::suspend).
    fn resume(&mut self) -> Result<(), ComponentError> {
        Ok(())
    }

    /// A one-line description (ACE's `info`): what it is and where it serves.
    fn info(&self) -> String;

    /// A snapshot of the state worth keeping across a hot upgrade (a memento), if any.
    fn export_state(&self) -> Result<Option<Vec<u8>>, ComponentError> {
        Ok(None)
    }

    /// Extension Interface: the interface named `iid` (e.g.
    /// [`crate::ext::statistics::IID`]) if the component exports it, `None` otherwise. The
    /// default exports none.
    fn query_interface(&self, iid: &str) -> Option<crate::ext::Extension<'_>> {
        let _ = iid;
        None
    }

    /// Takes over the state a previous instance exported; called before `init`.
    fn import_state(&mut self, state: &[u8]) -> Result<(), ComponentError> {
        let _ = state;
        Err(ComponentError::new("this component does not import state"))
    }
}
