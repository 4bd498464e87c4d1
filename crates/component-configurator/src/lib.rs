//! The Component Configurator pattern: link, configure, suspend, resume, upgrade and unlink
//! components at run time, from a configuration file, without rebuilding or restarting the
//! program that hosts them.
//!
//! A component offers one uniform control interface ([`Component`]: init with arguments,
//! fini, suspend, resume, info). A [`ServiceRepository`] keeps the configured ones by name.
//! A [`Configurator`] reads directives in ACE's svc.conf syntax ([`svc_conf`]), validates all
//! of them before applying any, and then applies only the difference from what is running,
//! so it also does live reconfiguration (on SIGHUP through [`ReconfigureOnHangup`], or on a
//! command to an [`AdminSocket`]).
//! Components are linked in (static, registered by name) or loaded from `cdylib` plugins
//! through a checked C ABI ([`abi`]): a library that is not ours, or built for another ABI,
//! is refused before any of its code runs, and a panicking plugin is an error, not a crash.
//!
//! | Participant (POSA2)           | Here                                                      |
//! |-------------------------------|-----------------------------------------------------------|
//! | Component                     | [`Component`]                                             |
//! | Concrete components           | static ones you register; plugins such as `cc-echo`, `cc-time`, `cc-stats` ([`export_components!`]) |
//! | Component repository          | [`ServiceRepository`] (with [`Record`], [`ComponentState`]) |
//! | Component configurator        | [`Configurator`], [`ReconfigureOnHangup`], [`AdminSocket`] |
//! | Configuration script          | svc.conf, parsed by [`svc_conf::parse`]                   |
//! | Dynamically linked unit       | [`LoadedLibrary`], [`DynamicComponent`]                   |
//!
//! # Example
//!
//! A static component configured, suspended and reconfigured with new arguments:
//!
//! ```
//! use component_configurator::{Change, Component, ComponentError, ComponentState, Configurator};
//!
//! #[derive(Debug, Default)]
//! struct Clock { zone: String }
//! impl Component for Clock {
//!     fn init(&mut self, args: &[String]) -> Result<(), ComponentError> {
//!         self.zone = args.join(" ");
//!         Ok(())
//!     }
//!     fn fini(&mut self) -> Result<(), ComponentError> { Ok(()) }
//!     fn info(&self) -> String { format!("clock in {}", self.zone) }
//! }
//!
//! let dir = std::env::temp_dir().join(format!("cc-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let conf = dir.join("svc.conf");
//! std::fs::write(&conf, "static Clock \"UTC\"\n")?;
//!
//! let mut cfg = Configurator::default();
//! cfg.register_static("Clock", || Box::new(Clock::default()));
//! cfg.process_file(&conf)?;
//! assert_eq!(cfg.repository().find("Clock")?.component().info(), "clock in UTC");
//!
//! std::fs::write(&conf, "static Clock inactive \"CET\"\n")?;
//! let report = cfg.reconfigure()?;
//! assert_eq!(report.changes, vec![
//!     Change::Reinitialised { name: "Clock".into() },
//!     Change::Suspended { name: "Clock".into() },
//! ]);
//! assert_eq!(cfg.repository().get("Clock").unwrap().state(), ComponentState::Suspended);
//! std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

/// The `seq!` macro of the interaction events drawn as sequence diagrams (`posa-seq`).
#[macro_use]
extern crate posa_seq;

pub mod abi;
mod component;
mod configurator;
mod dynamic;
pub mod elf;
mod error;
pub mod ext;
mod repository;
pub mod service;
mod signal;
pub mod svc_conf;

pub use component::{Component, ComponentError};
pub use configurator::{Change, Configurator, DirectiveError, Environment, Report, StaticFactory};
pub use dynamic::{
    DynamicComponent, LoadedLibrary, PluginTrust, SharedRecordFilter, Unloaded, is_mapped, resolve,
};
pub use error::{Error, Result};
pub use repository::{ComponentState, Listing, Origin, Record, Removal, ServiceRepository};
pub use signal::{AdminSocket, ReconfigureObserver, ReconfigureOnHangup};
