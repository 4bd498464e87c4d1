//! The component repository (implementation step 2): initialised components by name, in
//! insertion order, with their state and origin.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::component::Component;
use crate::dynamic::{LoadedLibrary, Unloaded};
use crate::error::{Error, Result};

/// A component's state in the repository (inactive components are not in it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComponentState {
    /// Initialised and serving.
    Active,
    /// Initialised, not serving until resumed.
    Suspended,
}

/// Where a component came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A factory registered with the configurator under the component's name.
    Static,
    /// A factory exported by a plugin library.
    Dynamic {
        /// The library as the directive wrote it (after expansion).
        spec: String,
        /// The factory's name.
        factory: String,
    },
}

/// One component in the repository.
#[derive(Debug)]
pub struct Record {
    name: String,
    state: ComponentState,
    origin: Origin,
    args: Vec<String>,
    component: Box<dyn Component>,
    library: Option<Arc<LoadedLibrary>>,
}

impl std::fmt::Debug for dyn Component {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<component>")
    }
}

impl Record {
    /// Packs an initialised component with what the repository records about it.
    pub fn new(
        name: impl Into<String>,
        component: Box<dyn Component>,
        origin: Origin,
        args: Vec<String>,
    ) -> Record {
        Record {
            name: name.into(),
            state: ComponentState::Active,
            origin,
            args,
            component,
            library: None,
        }
    }

    /// Records the library the component lives in, so removal can unload it.
    pub fn with_library(mut self, library: Arc<LoadedLibrary>) -> Record {
        self.library = Some(library);
        self
    }

    /// Records that the component was suspended before insertion.
    pub fn suspended(mut self) -> Record {
        self.state = ComponentState::Suspended;
        self
    }

    /// The component's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Active or suspended.
    pub fn state(&self) -> ComponentState {
        self.state
    }

    /// Static or from which library and factory.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// The arguments it was initialised with.
    pub fn args(&self) -> &[String] {
        &self.args
    }

    /// The component.
    pub fn component(&self) -> &dyn Component {
        &*self.component
    }

    /// The component, mutably.
    pub fn component_mut(&mut self) -> &mut dyn Component {
        &mut *self.component
    }

    /// The library path, for dynamic components.
    pub fn library_path(&self) -> Option<PathBuf> {
        self.library.as_ref().map(|l| l.path().to_owned())
    }

    pub(crate) fn library_arc(&self) -> Option<Arc<LoadedLibrary>> {
        self.library.clone()
    }

    pub(crate) fn set_args(&mut self, args: Vec<String>) {
        self.args = args;
    }

    pub(crate) fn set_state(&mut self, state: ComponentState) {
        self.state = state;
    }
}

/// A line of [`ServiceRepository::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    /// The name.
    pub name: String,
    /// Active or suspended.
    pub state: ComponentState,
    /// What the component says about itself.
    pub info: String,
}

/// What removing a component did.
#[derive(Debug)]
pub struct Removal {
    /// The component's name.
    pub name: String,
    /// What its `fini` answered.
    pub fini: std::result::Result<(), crate::ComponentError>,
    /// For a dynamic component whose library had no other user: the unload report.
    pub unloaded: Option<Unloaded>,
}

/// The repository: components by name, kept in insertion order so that finalisation runs
/// in reverse order of insertion, also after removals from the middle.
///
/// ```
/// use component_configurator::{Component, ComponentError, ComponentState, Origin, Record, ServiceRepository, Error};
///
/// #[derive(Debug)]
/// struct Quiet;
/// impl Component for Quiet {
///     fn init(&mut self, _: &[String]) -> Result<(), ComponentError> { Ok(()) }
///     fn fini(&mut self) -> Result<(), ComponentError> { Ok(()) }
///     fn info(&self) -> String { "quiet".into() }
/// }
///
/// let mut repo = ServiceRepository::default();
/// repo.insert(Record::new("a", Box::new(Quiet), Origin::Static, vec![]))?;
/// repo.suspend("a")?;
/// assert!(matches!(repo.find("a"), Err(Error::Suspended(_))));
/// assert!(matches!(repo.find("b"), Err(Error::NotFound(_))));
/// repo.resume("a")?;
/// assert_eq!(repo.find("a")?.state(), ComponentState::Active);
/// let removed = repo.remove("a")?;
/// assert!(removed.fini.is_ok());
/// # Ok::<(), Error>(())
/// ```
#[derive(Debug, Default)]
pub struct ServiceRepository {
    records: Vec<Record>,
    /// Name to position in `records`, rebuilt when positions shift.
    index: HashMap<String, usize>,
}

impl ServiceRepository {
    /// Adds an initialised component; refuses a name already present.
    pub fn insert(&mut self, record: Record) -> Result<()> {
        if self.get(&record.name).is_some() {
            return Err(Error::Duplicate(record.name));
        }
        self.index.insert(record.name.clone(), self.records.len());
        self.records.push(record);
        Ok(())
    }

    /// The active component called `name`; tells a missing one from a suspended one.
    pub fn find(&self, name: &str) -> Result<&Record> {
        match self.get(name) {
            None => Err(Error::NotFound(name.to_owned())),
            Some(r) if r.state == ComponentState::Suspended => {
                Err(Error::Suspended(name.to_owned()))
            }
            Some(r) => Ok(r),
        }
    }

    /// The component called `name`, whatever its state.
    pub fn get(&self, name: &str) -> Option<&Record> {
        self.index.get(name).map(|&i| &self.records[i])
    }

    /// The component called `name`, mutably.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut Record> {
        self.index.get(name).map(|&i| &mut self.records[i])
    }

    fn reindex(&mut self) {
        self.index.clear();
        for (i, r) in self.records.iter().enumerate() {
            self.index.insert(r.name.clone(), i);
        }
    }

    /// Names in insertion order.
    pub fn names(&self) -> Vec<String> {
        self.records.iter().map(|r| r.name.clone()).collect()
    }

    /// How many components are configured.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether no component is configured.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Suspends an active component (suspending a suspended one does nothing).
    pub fn suspend(&mut self, name: &str) -> Result<()> {
        let r = self
            .get_mut(name)
            .ok_or_else(|| Error::NotFound(name.to_owned()))?;
        if r.state == ComponentState::Suspended {
            return Ok(());
        }
        seq!("ServiceRepository" => name, "suspend()");
        r.component.suspend().map_err(|error| Error::Component {
            name: name.to_owned(),
            operation: "suspend",
            error,
        })?;
        r.state = ComponentState::Suspended;
        Ok(())
    }

    /// Resumes a suspended component (resuming an active one does nothing).
    pub fn resume(&mut self, name: &str) -> Result<()> {
        let r = self
            .get_mut(name)
            .ok_or_else(|| Error::NotFound(name.to_owned()))?;
        if r.state == ComponentState::Active {
            return Ok(());
        }
        seq!("ServiceRepository" => name, "resume()");
        r.component.resume().map_err(|error| Error::Component {
            name: name.to_owned(),
            operation: "resume",
            error,
        })?;
        r.state = ComponentState::Active;
        Ok(())
    }

    /// Takes a component out without finalising it (for replacement).
    pub fn take(&mut self, name: &str) -> Option<Record> {
        let at = self.index_of(name)?;
        let record = self.records.remove(at);
        self.reindex();
        Some(record)
    }

    /// Puts a record back at `index` in insertion order (clamped).
    pub(crate) fn put_at(&mut self, index: usize, record: Record) {
        let index = index.min(self.records.len());
        self.records.insert(index, record);
        self.reindex();
    }

    /// Where `name` sits in insertion order.
    pub(crate) fn index_of(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// Removes a component in order: quiesce (suspend), `fini`, drop the object, then let go
    /// of its library, unloading it if nothing else holds it.
    pub fn remove(&mut self, name: &str) -> Result<Removal> {
        let record = self
            .take(name)
            .ok_or_else(|| Error::NotFound(name.to_owned()))?;
        Ok(retire(record))
    }

    /// Lists every component with its state and `info`, in insertion order.
    pub fn list(&self) -> Vec<Listing> {
        self.records
            .iter()
            .map(|r| Listing {
                name: r.name.clone(),
                state: r.state,
                info: r.component.info(),
            })
            .collect()
    }

    /// Finalises and removes every component, newest first.
    pub fn close(&mut self) -> Vec<Removal> {
        let mut out = Vec::new();
        while let Some(record) = self.records.pop() {
            self.index.remove(&record.name);
            out.push(retire(record));
        }
        out
    }
}

/// The ordered end of a component: quiesce, fini, drop the object, then the library.
pub(crate) fn retire(mut record: Record) -> Removal {
    if record.state == ComponentState::Active {
        // Quiesce first so no new work arrives while it finalises; fini runs regardless.
        seq!("ServiceRepository" => record.name, "suspend()");
        if let Err(e) = record.component.suspend() {
            tracing::warn!(component = %record.name, error = %e, "suspend before fini failed");
        }
    }
    seq!("ServiceRepository" => record.name, "fini(), then drop it and let go of its library");
    let fini = record.component.fini();
    let Record {
        name,
        component,
        library,
        ..
    } = record;
    drop(component);
    let unloaded = library.and_then(|l| LoadedLibrary::unload(l).ok());
    Removal {
        name,
        fini,
        unloaded,
    }
}

impl Drop for ServiceRepository {
    fn drop(&mut self) {
        for removal in self.close() {
            if let Err(e) = removal.fini {
                tracing::warn!(component = %removal.name, error = %e, "fini failed at shutdown");
            }
        }
    }
}
