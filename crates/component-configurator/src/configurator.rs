//! The (re)configuration mechanism (implementation step 3): sources of directives, the
//! desired state they describe, and applying only the difference to the repository.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};

use crate::component::Component;
use crate::dynamic::{self, LoadedLibrary, PluginTrust, Unloaded};
use crate::error::{Error, Result};
use crate::repository::{ComponentState, Origin, Record, Removal, ServiceRepository};
use crate::svc_conf::{self, Activation, Directive, ParseError, Position};

/// Makes a fresh, uninitialised static component.
pub type StaticFactory = Box<dyn Fn() -> Box<dyn Component> + Send>;

/// Looks up a variable for `$VAR` expansion.
pub type Environment = Box<dyn Fn(&str) -> Option<String> + Send>;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    File(PathBuf),
    Text { name: String, text: String },
}

/// A new, uninitialised component and, for a dynamic one, its library.
type Made = (Box<dyn Component>, Option<Arc<LoadedLibrary>>);

/// One component as the configuration wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Desired {
    name: String,
    origin: Origin,
    activation: Activation,
    args: Vec<String>,
    source: String,
    position: Position,
}

/// One change a (re)configuration made.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Change {
    /// Created, initialised (and suspended if inactive) and inserted.
    Added {
        /// The component.
        name: String,
    },
    /// Finalised and removed; for the last user of a library, whether it was unmapped.
    Removed {
        /// The component.
        name: String,
        /// The library unload, if this was its last user.
        unloaded: Option<Unloaded>,
    },
    /// Suspended.
    Suspended {
        /// The component.
        name: String,
    },
    /// Resumed.
    Resumed {
        /// The component.
        name: String,
    },
    /// Arguments changed: `fini`, then `init` with the new arguments.
    Reinitialised {
        /// The component.
        name: String,
    },
    /// Replaced by a component from another library or factory, with its state handed over.
    Upgraded {
        /// The component.
        name: String,
        /// Size of the state snapshot passed across, if the old instance exported one.
        state_bytes: Option<usize>,
        /// The old library's unload, if it had no other user.
        unloaded: Option<Unloaded>,
    },
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Added { name } => write!(f, "added {name}"),
            Change::Removed { name, unloaded } => match unloaded {
                Some(u) => write!(
                    f,
                    "removed {name} (library {})",
                    if u.unmapped {
                        "unmapped"
                    } else {
                        "still mapped"
                    }
                ),
                None => write!(f, "removed {name}"),
            },
            Change::Suspended { name } => write!(f, "suspended {name}"),
            Change::Resumed { name } => write!(f, "resumed {name}"),
            Change::Reinitialised { name } => write!(f, "re-initialised {name} with new arguments"),
            Change::Upgraded {
                name, state_bytes, ..
            } => match state_bytes {
                Some(n) => write!(f, "upgraded {name} carrying {n} bytes of state"),
                None => write!(f, "upgraded {name} without state"),
            },
        }
    }
}

/// A directive that was valid but could not be carried out (the others went on).
#[derive(Debug)]
pub struct DirectiveError {
    /// The source (file) of the directive.
    pub source: String,
    /// Where the directive starts.
    pub position: Position,
    /// The component it was about.
    pub name: String,
    /// What went wrong.
    pub error: Error,
}

impl fmt::Display for DirectiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}: {}",
            self.source,
            self.position,
            self.name,
            pattern_core::ErrorChain(&self.error)
        )
    }
}

/// What a (re)configuration did: its changes and the directives that failed.
#[derive(Debug, Default)]
pub struct Report {
    /// Changes made, in order.
    pub changes: Vec<Change>,
    /// Directives that could not be carried out.
    pub errors: Vec<DirectiveError>,
}

impl Report {
    /// Whether every directive was carried out.
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }
}

/// The Component Configurator: reads directives, keeps the repository in line with them.
///
/// Sources (files and directives passed through the API) are kept; every operation re-reads
/// them all, validates the whole configuration (a single error applies nothing), then
/// applies only the difference from what runs: components no longer wanted are removed
/// (newest first), new ones added, changed arguments re-initialise, a changed library or
/// factory upgrades with a state hand-off, and activation changes suspend or resume.
/// Components not involved are not touched.
///
/// ```
/// use component_configurator::{Change, Component, ComponentError, Configurator};
///
/// #[derive(Debug, Default)]
/// struct Counter { step: u64 }
/// impl Component for Counter {
///     fn init(&mut self, args: &[String]) -> Result<(), ComponentError> {
///         self.step = args.first().and_then(|a| a.parse().ok()).unwrap_or(1);
///         Ok(())
///     }
///     fn fini(&mut self) -> Result<(), ComponentError> { Ok(()) }
///     fn info(&self) -> String { format!("counter stepping by {}", self.step) }
/// }
///
/// let mut cfg = Configurator::default();
/// cfg.register_static("Counter", || Box::new(Counter::default()));
/// let report = cfg.process_directive("static Counter \"5\"")?;
/// assert_eq!(report.changes, vec![Change::Added { name: "Counter".into() }]);
/// assert_eq!(cfg.repository().find("Counter")?.component().info(), "counter stepping by 5");
/// # Ok::<(), component_configurator::Error>(())
/// ```
pub struct Configurator {
    repository: ServiceRepository,
    statics: HashMap<String, StaticFactory>,
    sources: Vec<Source>,
    search: Vec<PathBuf>,
    env: Environment,
    libraries: HashMap<PathBuf, Weak<LoadedLibrary>>,
    trust: PluginTrust,
    texts: usize,
    /// Bumped whenever a static factory is registered (validation depends on them).
    statics_generation: u64,
    /// The last validated configuration, reused while its inputs are unchanged.
    last: std::cell::RefCell<Option<Validated>>,
}

/// A validated configuration and everything it was computed from: the sources' names and
/// bytes, the variables looked up (with their values) and the static registry's generation.
#[derive(Debug)]
struct Validated {
    inputs: Vec<(String, Vec<u8>)>,
    variables: Vec<(String, Option<String>)>,
    statics_generation: u64,
    desired: Arc<Vec<Desired>>,
}

impl fmt::Debug for Configurator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Configurator")
            .field("repository", &self.repository)
            .field("statics", &self.statics.keys().collect::<Vec<_>>())
            .field("sources", &self.sources)
            .field("search", &self.search)
            .finish_non_exhaustive()
    }
}

impl Default for Configurator {
    fn default() -> Self {
        Configurator {
            repository: ServiceRepository::default(),
            statics: HashMap::new(),
            sources: Vec::new(),
            search: Vec::new(),
            env: Box::new(|name| std::env::var(name).ok()),
            libraries: HashMap::new(),
            trust: PluginTrust::Strict,
            texts: 0,
            statics_generation: 0,
            last: Default::default(),
        }
    }
}

/// The participants' names in the sequence diagrams drawn from runs.
const CFG: &str = "Configurator";
const REPO: &str = "ServiceRepository";
/// Who asks for a (re)configuration through the public API, in the diagrams.
const ADMIN: &str = "admin";

impl Configurator {
    /// Registers a static component factory under `name` (for `static NAME` directives).
    pub fn register_static(
        &mut self,
        name: impl Into<String>,
        factory: impl Fn() -> Box<dyn Component> + Send + 'static,
    ) {
        self.statics.insert(name.into(), Box::new(factory));
        self.statics_generation += 1;
    }

    /// Adds a directory where bare library names are looked for.
    pub fn add_search_dir(&mut self, dir: impl Into<PathBuf>) {
        self.search.push(dir.into());
    }

    /// Who may have written the libraries `dynamic` directives load ([`PluginTrust::Strict`]
    /// unless changed): checked on the opened file before any of its code runs.
    pub fn set_plugin_trust(&mut self, trust: PluginTrust) {
        self.trust = trust;
    }

    /// Replaces the process environment as the source of `$VAR` values.
    pub fn set_env(&mut self, env: impl Fn(&str) -> Option<String> + Send + 'static) {
        self.env = Box::new(env);
    }

    /// The repository.
    pub fn repository(&self) -> &ServiceRepository {
        &self.repository
    }

    /// The repository, mutably (to suspend, resume or remove outside the files).
    pub fn repository_mut(&mut self) -> &mut ServiceRepository {
        &mut self.repository
    }

    /// Adds a svc.conf file and applies the resulting configuration.
    ///
    /// On a read or parse error nothing is applied and the file is not kept.
    pub fn process_file(&mut self, path: impl AsRef<Path>) -> Result<Report> {
        let source = Source::File(path.as_ref().to_owned());
        self.add_source(source)
    }

    /// Adds directives given as text (ACE's `-S`) and applies the resulting configuration.
    ///
    /// A `remove`, `suspend` or `resume` given this way names a component configured
    /// elsewhere; once that component is gone from the files it is ignored.
    pub fn process_directive(&mut self, text: &str) -> Result<Report> {
        self.texts += 1;
        let source = Source::Text {
            name: format!("<directive {}>", self.texts),
            text: text.to_owned(),
        };
        self.add_source(source)
    }

    fn add_source(&mut self, source: Source) -> Result<Report> {
        seq!(ADMIN => CFG, "process a source");
        let mut sources = self.sources.clone();
        if !sources.contains(&source) {
            sources.push(source);
        }
        let desired = self.validate(&sources, ADMIN)?;
        self.sources = sources;
        Ok(self.apply(&desired, ADMIN))
    }

    /// Re-reads every source and applies only what changed.
    ///
    /// The first phase reads and parses every source and has every static component check
    /// its directive's arguments ([`Component::check`]); on any error there nothing is
    /// applied and the running components stay as they are. The second phase applies the
    /// difference; what fails there (a port in use) is reported per directive, and a
    /// component whose new arguments fail is started again with its old ones.
    pub fn reconfigure(&mut self) -> Result<Report> {
        self.reconfigure_for(ADMIN)
    }

    /// [`reconfigure`](Self::reconfigure) on behalf of `caller`, the participant the diagrams
    /// drawn from runs show asking (a reconfiguration trigger's handler).
    pub(crate) fn reconfigure_for(&mut self, caller: &str) -> Result<Report> {
        seq!(caller => CFG, "reconfigure()");
        let sources = self.sources.clone();
        let desired = self.validate(&sources, caller)?;
        Ok(self.apply(&desired, caller))
    }

    /// Validates the configuration that `path` (alone) describes, as the first phase of a
    /// (re)configuration would, and applies nothing: no component is initialised, nothing
    /// running is touched and the file is not kept (`logd --check-config`).
    ///
    /// `remove`, `suspend` and `resume` directives must name components of the same file.
    pub fn check_file(&self, path: impl AsRef<Path>) -> Result<()> {
        self.validate(&[Source::File(path.as_ref().to_owned())], ADMIN)
            .map(drop)
    }

    /// Phase one of every (re)configuration: parse and check everything, change nothing.
    fn validate(&self, sources: &[Source], caller: &str) -> Result<Arc<Vec<Desired>>> {
        seq!(note CFG, "phase 1: read, parse, check every directive (any error: apply nothing)");
        let desired = self
            .desired(sources)
            .inspect_err(|e| seq!(fail CFG => caller, "Err({e})"))?;
        for d in desired.iter() {
            self.check(d)?;
        }
        Ok(desired)
    }

    /// Has a fresh instance of a static component check `d`'s arguments. Dynamic components
    /// are not loaded for this (loading runs a library's code); a running instance from the
    /// same library and factory checks for them, and `init` for the others.
    fn check(&self, d: &Desired) -> Result<()> {
        let outcome = match &d.origin {
            Origin::Static => match self.statics.get(&d.name) {
                Some(make) => make().check(&d.args),
                None => return Err(Error::UnknownStatic(d.name.clone())),
            },
            Origin::Dynamic { .. } => match self.repository.get(&d.name) {
                Some(r) if r.origin() == &d.origin => r.component().check(&d.args),
                _ => Ok(()),
            },
        };
        outcome.map_err(|e| {
            Error::Parse(ParseError {
                source: d.source.clone(),
                position: d.position,
                message: format!("{}: bad arguments: {e}", d.name),
            })
        })
    }

    /// Finalises every component, newest first, and unloads their libraries.
    pub fn close(&mut self) -> Vec<Removal> {
        self.sources.clear();
        self.repository.close()
    }

    fn desired(&self, sources: &[Source]) -> Result<Arc<Vec<Desired>>> {
        let mut inputs = Vec::with_capacity(sources.len());
        for source in sources {
            inputs.push(match source {
                Source::File(path) => {
                    let bytes = std::fs::read(path).map_err(|e| Error::Read {
                        path: path.clone(),
                        source: e,
                    })?;
                    (path.display().to_string(), bytes)
                }
                Source::Text { name, text } => (name.clone(), text.clone().into_bytes()),
            });
        }
        // A reconfiguration mostly re-reads unchanged files: reuse the last validation when
        // nothing it depended on changed. The cache is taken out of its cell first, so no
        // borrow is held while the environment (user code) is consulted.
        let cached = self.last.borrow_mut().take();
        if let Some(c) = cached
            && c.statics_generation == self.statics_generation
            && c.inputs == inputs
            && c.variables.iter().all(|(k, v)| (self.env)(k) == *v)
        {
            let desired = Arc::clone(&c.desired);
            *self.last.borrow_mut() = Some(c);
            return Ok(desired);
        }
        let used = std::cell::RefCell::new(Vec::new());
        let lookup = |v: &str| {
            let value = (self.env)(v);
            used.borrow_mut().push((v.to_owned(), value.clone()));
            value
        };
        let mut out: Vec<Desired> = Vec::new();
        // Name to position in `out`, kept in step with it.
        let mut at: HashMap<String, usize> = HashMap::new();
        for (source, (name, text)) in sources.iter().zip(&inputs) {
            let strict = matches!(source, Source::File(_));
            let name = name.clone();
            let parsed = svc_conf::parse_bytes(&name, text, &lookup)?;
            let fail = |position: Position, message: String| {
                Error::Parse(ParseError {
                    source: name.clone(),
                    position,
                    message,
                })
            };
            for located in parsed {
                let position = located.position;
                let existing = at.get(located.directive.name()).copied();
                match located.directive {
                    Directive::Dynamic {
                        name: component,
                        library,
                        factory,
                        activation,
                        args,
                    } => {
                        if let Some(i) = existing {
                            return Err(fail(position, already(&component, &out[i])));
                        }
                        at.insert(component.clone(), out.len());
                        out.push(Desired {
                            name: component,
                            origin: Origin::Dynamic {
                                spec: library,
                                factory,
                            },
                            activation,
                            args,
                            source: name.clone(),
                            position,
                        });
                    }
                    Directive::Static {
                        name: component,
                        activation,
                        args,
                    } => {
                        if let Some(i) = existing {
                            return Err(fail(position, already(&component, &out[i])));
                        }
                        if !self.statics.contains_key(&component) {
                            return Err(fail(
                                position,
                                format!("no static component is registered as {component:?}"),
                            ));
                        }
                        at.insert(component.clone(), out.len());
                        out.push(Desired {
                            name: component,
                            origin: Origin::Static,
                            activation,
                            args,
                            source: name.clone(),
                            position,
                        });
                    }
                    ref other @ (Directive::Remove { .. }
                    | Directive::Suspend { .. }
                    | Directive::Resume { .. }) => {
                        let Some(i) = existing else {
                            if strict {
                                return Err(fail(
                                    position,
                                    format!(
                                        "no component named {:?} is configured before this directive",
                                        other.name()
                                    ),
                                ));
                            }
                            continue;
                        };
                        match other {
                            Directive::Remove { .. } => {
                                out.remove(i);
                                at.clear();
                                at.extend(out.iter().enumerate().map(|(i, d)| (d.name.clone(), i)));
                            }
                            Directive::Suspend { .. } => out[i].activation = Activation::Inactive,
                            _ => out[i].activation = Activation::Active,
                        }
                    }
                }
            }
        }
        let desired = Arc::new(out);
        *self.last.borrow_mut() = Some(Validated {
            inputs,
            variables: used.into_inner(),
            statics_generation: self.statics_generation,
            desired: Arc::clone(&desired),
        });
        Ok(desired)
    }

    fn apply(&mut self, desired: &[Desired], caller: &str) -> Report {
        let mut report = Report::default();
        // Removals first, newest first, so ports and names are free for what follows.
        let wanted: std::collections::HashSet<&str> =
            desired.iter().map(|d| d.name.as_str()).collect();
        for name in self.repository.names().into_iter().rev() {
            if !wanted.contains(name.as_str())
                && let Ok(removal) = {
                    seq!(CFG => REPO, "remove({name}): no longer wanted");
                    self.repository.remove(&name)
                }
            {
                if let Err(e) = &removal.fini {
                    tracing::warn!(component = %name, error = %e, "fini failed on removal");
                }
                report.changes.push(Change::Removed {
                    name,
                    unloaded: removal.unloaded,
                });
            }
        }
        for d in desired {
            let outcome = match self.repository.get(&d.name) {
                None => self.add(d).map(|()| {
                    report.changes.push(Change::Added {
                        name: d.name.clone(),
                    })
                }),
                Some(r) if r.origin() != &d.origin => {
                    seq!(CFG => d.name, "hot upgrade: another library or factory");
                    self.upgrade(d).map(|c| {
                        seq!(reply d.name => CFG, "{c}");
                        report.changes.push(c)
                    })
                }
                Some(r) if r.args() != d.args.as_slice() => self.reinit(d).map(|()| {
                    report.changes.push(Change::Reinitialised {
                        name: d.name.clone(),
                    })
                }),
                Some(_) => Ok(()),
            }
            .and_then(|()| self.activation(d, &mut report.changes));
            if let Err(error) = &outcome {
                seq!(note CFG, "in the report: {error}");
            }
            if let Err(error) = outcome {
                tracing::warn!(component = %d.name, %error, "directive failed");
                report.errors.push(DirectiveError {
                    source: d.source.clone(),
                    position: d.position,
                    name: d.name.clone(),
                    error,
                });
            }
        }
        seq!(
            reply CFG => caller,
            "Report: {} change(s), {} error(s)",
            report.changes.len(),
            report.errors.len()
        );
        report
    }

    fn activation(&mut self, d: &Desired, changes: &mut Vec<Change>) -> Result<()> {
        let Some(r) = self.repository.get(&d.name) else {
            return Ok(());
        };
        let name = d.name.clone();
        match (r.state(), d.activation) {
            (ComponentState::Active, Activation::Inactive) => {
                seq!(CFG => REPO, "suspend({name})");
                self.repository.suspend(&name)?;
                changes.push(Change::Suspended { name });
            }
            (ComponentState::Suspended, Activation::Active) => {
                seq!(CFG => REPO, "resume({name})");
                self.repository.resume(&name)?;
                changes.push(Change::Resumed { name });
            }
            _ => {}
        }
        Ok(())
    }

    fn library(&mut self, spec: &str) -> Result<Arc<LoadedLibrary>> {
        let path = dynamic::resolve(spec, &self.search)?;
        let canonical = path.canonicalize().unwrap_or(path.clone());
        if let Some(lib) = self.libraries.get(&canonical).and_then(Weak::upgrade) {
            return Ok(lib);
        }
        self.libraries.retain(|_, w| w.strong_count() > 0);
        let lib = LoadedLibrary::open_with(&path, self.trust)?;
        self.libraries.insert(canonical, Arc::downgrade(&lib));
        Ok(lib)
    }

    /// Creates an uninitialised component for `d`, with its library if dynamic.
    fn create(&mut self, d: &Desired) -> Result<Made> {
        match &d.origin {
            Origin::Static => {
                let make = self
                    .statics
                    .get(&d.name)
                    .ok_or_else(|| Error::UnknownStatic(d.name.clone()))?;
                Ok((make(), None))
            }
            Origin::Dynamic { spec, factory } => {
                seq!(
                    CFG => "LoadedLibrary",
                    "open {} (descriptor checked first), create {factory}",
                    spec.rsplit('/').next().unwrap_or(spec)
                );
                let lib = self.library(spec)?;
                let component = lib.create(factory)?;
                Ok((Box::new(component), Some(lib)))
            }
        }
    }

    fn record(
        &self,
        d: &Desired,
        component: Box<dyn Component>,
        lib: Option<Arc<LoadedLibrary>>,
    ) -> Record {
        let record = Record::new(d.name.clone(), component, d.origin.clone(), d.args.clone());
        match lib {
            Some(lib) => record.with_library(lib),
            None => record,
        }
    }

    fn add(&mut self, d: &Desired) -> Result<()> {
        let (mut component, lib) = self.create(d)?;
        seq!(CFG => d.name, "init(args)");
        if let Err(error) = component.init(&d.args) {
            drop(component);
            if let Some(lib) = lib {
                let _ = LoadedLibrary::unload(lib);
            }
            return Err(Error::Component {
                name: d.name.clone(),
                operation: "init",
                error,
            });
        }
        seq!(CFG => REPO, "insert({})", d.name);
        self.repository.insert(self.record(d, component, lib))
    }

    fn reinit(&mut self, d: &Desired) -> Result<()> {
        let record = self
            .repository
            .get_mut(&d.name)
            .ok_or_else(|| Error::NotFound(d.name.clone()))?;
        let was = record.state();
        let fail = |operation, error| Error::Component {
            name: d.name.clone(),
            operation,
            error,
        };
        if was == ComponentState::Active {
            seq!(CFG => d.name, "suspend()");
            record
                .component_mut()
                .suspend()
                .map_err(|e| fail("suspend", e))?;
        }
        seq!(CFG => d.name, "fini()");
        record.component_mut().fini().map_err(|e| fail("fini", e))?;
        seq!(CFG => d.name, "init(new args)");
        match record.component_mut().init(&d.args) {
            Ok(()) => {
                record.set_args(d.args.clone());
                record.set_state(ComponentState::Active);
                Ok(())
            }
            Err(e) => {
                // The new arguments passed `check` but `init` failed (a port in use): start
                // it again with the arguments it ran with, so a reload never loses a
                // running service. Only if that fails too is it taken out, so the
                // repository holds only initialised components.
                let old = record.args().to_vec();
                match record.component_mut().init(&old) {
                    Ok(()) if was == ComponentState::Suspended => {
                        if record.component_mut().suspend().is_err() {
                            record.set_state(ComponentState::Active);
                        }
                    }
                    Ok(()) => record.set_state(ComponentState::Active),
                    Err(again) => {
                        tracing::warn!(component = %d.name, error = %again, "restarting with the old arguments failed");
                        drop(self.repository.take(&d.name));
                    }
                }
                Err(fail("init", e))
            }
        }
    }

    fn upgrade(&mut self, d: &Desired) -> Result<Change> {
        let index = self.repository.index_of(&d.name).unwrap_or(usize::MAX);
        let mut old = self
            .repository
            .take(&d.name)
            .ok_or_else(|| Error::NotFound(d.name.clone()))?;
        let fail = |operation, error| Error::Component {
            name: d.name.clone(),
            operation,
            error,
        };
        // The two instances, as the diagrams drawn from runs name them.
        let (old_name, new_name) = (d.name.as_str(), format!("{} (new)", d.name));
        // Create the new instance before touching the old one: a missing or refused library
        // then leaves the old one serving.
        let (mut new, lib) = match self.create(d) {
            Ok(made) => made,
            Err(e) => {
                self.repository.put_at(index, old);
                return Err(e);
            }
        };
        // How the old instance was before the upgrade: a failed upgrade leaves it so.
        let was = old.state();
        if was == ComponentState::Active {
            seq!(CFG => old_name, "suspend()");
            if let Err(e) = old.component_mut().suspend() {
                self.repository.put_at(index, old);
                return Err(fail("suspend", e));
            }
        }
        seq!(CFG => old_name, "export_state()");
        let state = match old.component().export_state() {
            Ok(s) => {
                match &s {
                    Some(bytes) => seq!(reply old_name => CFG, "{} bytes of state", bytes.len()),
                    None => seq!(reply old_name => CFG, "no state"),
                }
                s
            }
            Err(e) => {
                seq!(fail old_name => CFG, "Err({e})");
                // Only what this upgrade suspended is resumed; a component the configuration
                // had suspended stays suspended.
                if was == ComponentState::Active {
                    seq!(CFG => old_name, "resume(): the upgrade had suspended it");
                    if let Err(again) = old.component_mut().resume() {
                        tracing::warn!(component = %d.name, error = %again, "resuming after a failed export failed");
                        old.set_state(ComponentState::Suspended);
                    }
                } else {
                    seq!(note CFG, "{old_name} stays suspended, as the configuration had it");
                }
                self.repository.put_at(index, old);
                return Err(fail("export_state", e));
            }
        };
        seq!(CFG => old_name, "fini()");
        if let Err(e) = old.component_mut().fini() {
            tracing::warn!(component = %d.name, error = %e, "old instance's fini failed during upgrade");
        }
        let started = match &state {
            Some(bytes) => {
                seq!(CFG => new_name, "import_state({} bytes)", bytes.len());
                new.import_state(bytes).map_err(|e| fail("import_state", e))
            }
            None => Ok(()),
        }
        .and_then(|()| {
            seq!(CFG => new_name, "init(args)");
            new.init(&d.args).map_err(|e| fail("init", e))
        });
        if let Err(e) = started {
            seq!(fail new_name => CFG, "{e}");
            // Roll back: the old instance takes its own exported state back, starts again
            // with its own arguments and returns to the state it was in (active or
            // suspended). Only if that fails is it taken out, so the repository holds only
            // initialised components.
            seq!(note CFG, "roll back: drop {new_name} and let go of its library");
            drop(new);
            if let Some(lib) = lib {
                let _ = LoadedLibrary::unload(lib);
            }
            let args = old.args().to_vec();
            let restarted = match &state {
                Some(bytes) => {
                    seq!(CFG => old_name, "import_state({} bytes): its own state back", bytes.len());
                    old.component_mut().import_state(bytes)
                }
                None => Ok(()),
            }
            .and_then(|()| {
                seq!(CFG => old_name, "init(its own args)");
                old.component_mut().init(&args)
            });
            match restarted {
                Ok(()) => {
                    old.set_state(ComponentState::Active);
                    if was == ComponentState::Suspended {
                        seq!(CFG => old_name, "suspend(): as it was before the upgrade");
                        match old.component_mut().suspend() {
                            Ok(()) => old.set_state(ComponentState::Suspended),
                            Err(again) => {
                                tracing::warn!(component = %d.name, error = %again, "suspending the restored instance failed");
                            }
                        }
                    }
                    seq!(CFG => REPO, "put {old_name} back in its place");
                    self.repository.put_at(index, old);
                }
                Err(again) => {
                    seq!(fail old_name => CFG, "{again}: taken out");
                    tracing::warn!(component = %d.name, error = %again, "restoring the old instance failed");
                    // It was finalised above; `retire` would finalise it a second time.
                    old.set_state(ComponentState::Suspended);
                    let _ = retire_finalised(old);
                }
            }
            return Err(e);
        }
        let record = self.record(d, new, lib);
        // The old instance is finalised: drop its object, then its library.
        seq!(CFG => REPO, "replace {old_name} by {new_name} in place, drop the old instance, let go of its library");
        old.set_state(ComponentState::Suspended);
        let removal = retire_finalised(old);
        self.repository.put_at(index, record);
        Ok(Change::Upgraded {
            name: d.name.clone(),
            state_bytes: state.map(|s| s.len()),
            unloaded: removal,
        })
    }
}

/// Drops an already finalised record's object, then its library.
fn retire_finalised(record: Record) -> Option<Unloaded> {
    let library = record.library_arc();
    drop(record);
    library.and_then(|l| LoadedLibrary::unload(l).ok())
}

fn already(name: &str, d: &Desired) -> String {
    format!(
        "{name:?} is already configured at {}:{}",
        d.source, d.position
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ComponentError;

    #[derive(Debug)]
    struct Nop;
    impl Component for Nop {
        fn init(&mut self, _: &[String]) -> Result<(), ComponentError> {
            Ok(())
        }
        fn fini(&mut self) -> Result<(), ComponentError> {
            Ok(())
        }
        fn info(&self) -> String {
            "nop".into()
        }
    }

    fn cfg() -> Configurator {
        let mut c = Configurator::default();
        for n in ["A", "B"] {
            c.register_static(n, || Box::new(Nop));
        }
        c
    }

    #[test]
    fn duplicates_are_refused_with_both_positions() {
        let err = cfg()
            .process_directive("static A\n  static A")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "<directive 1>:2:3: \"A\" is already configured at <directive 1>:1:1"
        );
    }

    #[test]
    fn remove_then_add_again_in_one_source_is_allowed() {
        let mut c = cfg();
        let report = c
            .process_directive("static A \"1\"\nremove A\nstatic A \"2\"\nstatic B")
            .unwrap();
        assert_eq!(c.repository().names(), ["A", "B"]);
        assert_eq!(c.repository().get("A").unwrap().args(), ["2"]);
        assert_eq!(report.changes.len(), 2);
    }

    #[test]
    fn api_directives_about_vanished_components_are_ignored() {
        let mut c = cfg();
        c.process_directive("static A").unwrap();
        c.process_directive("suspend A").unwrap();
        c.process_directive("remove A").unwrap();
        // "suspend A" now names nothing; it is not an error for an API directive.
        let report = c.reconfigure().unwrap();
        assert!(report.changes.is_empty());
        assert!(c.repository().is_empty());
        // In a file the same would be a validation error (tested in tests/it/reconfigure.rs).
    }

    #[test]
    fn registering_a_static_invalidates_the_cached_validation() {
        let mut c = Configurator::default();
        assert!(c.process_directive("static Late").is_err());
        c.register_static("Late", || Box::new(Nop));
        assert!(c.process_directive("static Late").is_ok());
        assert_eq!(c.repository().names(), ["Late"]);
    }
}
