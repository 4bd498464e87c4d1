//! Dynamic components: checked loading of plugin libraries, and the host-side component
//! that calls a plugin through its vtable while keeping its library mapped.

use std::ffi::c_void;
use std::fs::{File, Metadata};
use std::os::fd::{AsRawFd, IntoRawFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::abi::{
    self, ByteSink, Created, DESCRIPTOR_SIZE, DESCRIPTOR_SYMBOL, Descriptor, Factory, HostApi,
    QUERY_SYMBOL, Query, STATUS_NO_STATE, STATUS_OK, STATUS_PANIC, Str, VTable,
};
use crate::component::{Component, ComponentError};
use crate::elf;
use crate::error::{Error, Result};
use crate::ext::{self, Extension, FilterInput, FilterVerdict, RecordFilter, Statistics};

unsafe extern "C" fn host_log(level: u32, target: Str, message: Str) {
    // SAFETY: the plugin passes slices valid for this call.
    let (target, message) = unsafe { (target.bytes(), message.bytes()) };
    let target = String::from_utf8_lossy(target);
    let message = String::from_utf8_lossy(message);
    match level {
        abi::level::ERROR => {
            tracing::error!(target: "plugin", plugin_target = %target, "{message}")
        }
        abi::level::WARN => tracing::warn!(target: "plugin", plugin_target = %target, "{message}"),
        abi::level::INFO => tracing::info!(target: "plugin", plugin_target = %target, "{message}"),
        abi::level::DEBUG => {
            tracing::debug!(target: "plugin", plugin_target = %target, "{message}")
        }
        _ => tracing::trace!(target: "plugin", plugin_target = %target, "{message}"),
    }
}

/// The most verbose level any of the host's subscribers wants, numbered for the ABI.
fn max_level() -> u32 {
    use tracing::level_filters::LevelFilter;
    match LevelFilter::current() {
        LevelFilter::OFF => 0,
        LevelFilter::ERROR => abi::level::ERROR,
        LevelFilter::WARN => abi::level::WARN,
        LevelFilter::INFO => abi::level::INFO,
        LevelFilter::DEBUG => abi::level::DEBUG,
        _ => abi::level::TRACE,
    }
}

/// The host's side of the ABI, passed to every factory (with the current level).
const HOST_API: HostApi = HostApi {
    size: std::mem::size_of::<HostApi>() as u32,
    max_level: abi::level::TRACE,
    log: host_log,
};

/// Whether `path` appears in this process's memory map (`/proc/self/maps`).
pub fn is_mapped(path: &Path) -> bool {
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return false;
    };
    let needle = path.to_string_lossy();
    maps.lines().any(|l| l.ends_with(needle.as_ref()))
}

/// Who may have written a plugin library: checked before any of its code runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PluginTrust {
    /// Like sshd's `StrictModes`: refuse a library, or the directory it sits in, that is
    /// owned by a user other than root and this process's effective user, or that anyone
    /// but its owner may write (group or world write; a directory with the sticky bit, such
    /// as `/tmp`, is accepted, since others cannot replace what they do not own there).
    #[default]
    Strict,
    /// Skip the ownership and mode check (`--insecure-plugins`): for development trees only.
    Insecure,
}

impl PluginTrust {
    /// Checks the opened library (`file`, the descriptor that will be loaded) and the
    /// directory it sits in.
    fn check(self, path: &Path, file: &File) -> Result<()> {
        if self == PluginTrust::Insecure {
            return Ok(());
        }
        let refuse = |what: &Path, reason: String| Error::UntrustedLibrary {
            path: what.to_owned(),
            reason,
        };
        let euid = effective_uid();
        let file_meta = file
            .metadata()
            .map_err(|e| refuse(path, format!("cannot inspect it: {e}")))?;
        let dir = path.parent().unwrap_or(Path::new("/"));
        let dir_meta = std::fs::metadata(dir)
            .map_err(|e| refuse(dir, format!("cannot inspect its directory: {e}")))?;
        for (what, meta, is_dir) in [(path, &file_meta, false), (dir, &dir_meta, true)] {
            if let Some(reason) = untrusted(meta, is_dir, euid) {
                return Err(refuse(what, reason));
            }
        }
        Ok(())
    }
}

/// Why `meta` is not trusted for a plugin (`None`: it is).
fn untrusted(meta: &Metadata, is_dir: bool, euid: u32) -> Option<String> {
    let (uid, mode) = (meta.uid(), meta.mode());
    if uid != 0 && uid != euid {
        return Some(format!(
            "owned by uid {uid}, neither root nor this process's user (uid {euid})"
        ));
    }
    let sticky = is_dir && mode & 0o1000 != 0;
    if mode & 0o022 != 0 && !sticky {
        let who = if mode & 0o002 != 0 {
            "anyone"
        } else {
            "its group"
        };
        return Some(format!(
            "writable by {who} (mode {:04o}); only its owner and root may write it",
            mode & 0o7777
        ));
    }
    None
}

fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// A plugin library, mapped after its descriptor was checked.
///
/// Components hold it through an `Arc`, so it stays mapped while any object from it lives.
#[derive(Debug)]
pub struct LoadedLibrary {
    path: PathBuf,
    descriptor: Descriptor,
    library: Option<libloading::os::unix::Library>,
    /// The descriptor that was checked and loaded (through `/proc/self/fd/N`). It stays open
    /// while the library is mapped, so that no other library gets the same number, and with
    /// it the same name, which the dynamic loader would take for this one.
    file: Option<File>,
}

/// What happened when a library's last user let go of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unloaded {
    /// The library.
    pub path: PathBuf,
    /// Whether it was gone from the process's memory map after `dlclose`.
    /// `false` means something still pins it (see the docs: thread-local destructors).
    pub unmapped: bool,
}

impl LoadedLibrary {
    /// [`open_with`](Self::open_with) under [`PluginTrust::Strict`].
    pub fn open(path: &Path) -> Result<Arc<LoadedLibrary>> {
        Self::open_with(path, PluginTrust::Strict)
    }

    /// Opens the file once, checks who may have written it (`trust`) and the descriptor in
    /// it, maps the library from that same open file (`/proc/self/fd/N`, so a file swapped
    /// in after the check is never loaded), and checks the descriptor again in memory.
    ///
    /// A file that fails a check is refused before `dlopen`, so none of its code (not even
    /// its constructors) runs.
    pub fn open_with(path: &Path, trust: PluginTrust) -> Result<Arc<LoadedLibrary>> {
        let path = path.canonicalize().map_err(|_| Error::LibraryNotFound {
            spec: path.display().to_string(),
            looked: vec![path.to_owned()],
        })?;
        let file = File::open(&path).map_err(|e| Error::Load {
            path: path.clone(),
            message: e.to_string(),
        })?;
        trust.check(&path, &file)?;
        let bytes = elf::read_symbol(&file, DESCRIPTOR_SYMBOL, DESCRIPTOR_SIZE).map_err(|e| {
            Error::NotAComponentLibrary {
                path: path.clone(),
                reason: e.to_string(),
            }
        })?;
        let descriptor =
            Descriptor::from_bytes(&bytes).ok_or_else(|| Error::NotAComponentLibrary {
                path: path.clone(),
                reason: "short descriptor".to_owned(),
            })?;
        check(&path, &descriptor)?;
        let flags = libc_flags();
        // The loader maps the file that was checked, through its descriptor, not the path
        // (which could name another file by now). glibc matches loaded objects by name
        // first, so the descriptor stays open while the library is mapped: no other library
        // can get the same number, and with it the same name.
        let target = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
        // SAFETY: the file carries our descriptor with matching versions, so it is a plugin
        // built against this ABI; loading it runs only Rust's own runtime constructors.
        let library = unsafe { libloading::os::unix::Library::open(Some(&target), flags) }
            .map_err(|e| Error::Load {
                path: path.clone(),
                message: format!("{e} (loading through {})", target.display()),
            })?;
        // SAFETY: the symbol is a `Descriptor` static (checked in the file above); we copy it.
        let in_memory = unsafe {
            library
                .get::<*const Descriptor>(DESCRIPTOR_SYMBOL.as_bytes())
                .map(|s| *(*s))
        }
        .map_err(|e| Error::NotAComponentLibrary {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let loaded = LoadedLibrary {
            path,
            descriptor,
            library: Some(library),
            file: Some(file),
        };
        if in_memory != descriptor {
            return Err(Error::NotAComponentLibrary {
                path: loaded.path.clone(),
                reason: "the descriptor in memory differs from the file's".to_owned(),
            });
        }
        Ok(Arc::new(loaded))
    }

    /// The canonical path of the library.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The plugin's name from its descriptor.
    pub fn plugin_name(&self) -> String {
        abi::unpadded(&self.descriptor.plugin_name)
    }

    /// Creates a component with the exported `factory`.
    pub fn create(self: &Arc<Self>, factory: &str) -> Result<DynamicComponent> {
        let missing = || Error::MissingSymbol {
            path: self.path.clone(),
            factory: factory.to_owned(),
        };
        let library = self.library.as_ref().ok_or_else(missing)?;
        // SAFETY: a symbol exported by a checked plugin under a factory's name has the
        // `Factory` signature (that is what the descriptor's versions promise).
        let make: Factory = unsafe { library.get::<Factory>(factory.as_bytes()).map(|s| *s) }
            .map_err(|_| missing())?;
        let mut created = Created {
            vtable: std::ptr::null(),
            object: std::ptr::null_mut(),
        };
        let mut err = Vec::new();
        let host = HostApi {
            max_level: max_level(),
            ..HOST_API
        };
        // SAFETY: `host`, `created` and `err` live across the call (the plugin copies what
        // it keeps of `host`: the level and the `'static` callback).
        let status = unsafe { make(&host, &mut created, ByteSink::to_vec(&mut err)) };
        if status != STATUS_OK || created.vtable.is_null() || created.object.is_null() {
            return Err(Error::Component {
                name: factory.to_owned(),
                operation: "create",
                error: to_error(status, err),
            });
        }
        // SAFETY: the factory returned a pointer to its 'static vtable.
        let size = unsafe { (*created.vtable).size } as usize;
        if size != std::mem::size_of::<VTable>() {
            return Err(Error::AbiMismatch {
                path: self.path.clone(),
                field: "the vtable size",
                expected: std::mem::size_of::<VTable>().to_string(),
                found: size.to_string(),
            });
        }
        // SAFETY: a symbol exported under the query's name by a checked plugin has the
        // `Query` signature; plugins built before it existed simply lack it.
        let query: Option<Query> =
            unsafe { library.get::<Query>(QUERY_SYMBOL.as_bytes()).map(|s| *s) }.ok();
        let mut component = DynamicComponent {
            object: created.object,
            vtable: created.vtable,
            library: Arc::clone(self),
            factory: factory.to_owned(),
            query,
            statistics: None,
            record_filter: None,
        };
        component.statistics = component
            .interface::<ext::statistics::VTable>(ext::statistics::IID)
            .map(|vtable| ForeignStatistics {
                object: component.object,
                vtable,
            });
        component.record_filter = component
            .interface::<ext::record_filter::VTable>(ext::record_filter::IID)
            .map(|vtable| ForeignRecordFilter {
                object: component.object,
                vtable,
            });
        Ok(component)
    }

    /// Unmaps the library now if `this` is its last holder, reporting whether it is gone
    /// from the memory map; gives the `Arc` back when others still hold it.
    pub fn unload(this: Arc<Self>) -> std::result::Result<Unloaded, Arc<Self>> {
        let mut lib = Arc::try_unwrap(this)?;
        let unmapped = lib.close();
        Ok(Unloaded {
            path: lib.path.clone(),
            unmapped,
        })
    }

    /// Closes the library and reports whether it is gone from the memory map. Its descriptor
    /// is closed only then: while the loader still has the library (pinned, see the docs),
    /// the number, which is the library's name to the loader, stays taken.
    fn close(&mut self) -> bool {
        if let Some(l) = self.library.take() {
            // A failing dlclose leaves the library mapped, which the check below reports.
            let _ = l.close();
        }
        let unmapped = !is_mapped(&self.path);
        if let Some(file) = self.file.take()
            && !unmapped
        {
            // Deliberately never closed: see above.
            let _reserved = file.into_raw_fd();
        }
        unmapped
    }
}

impl Drop for LoadedLibrary {
    fn drop(&mut self) {
        self.close();
    }
}

fn libc_flags() -> std::ffi::c_int {
    libloading::os::unix::RTLD_NOW | libloading::os::unix::RTLD_LOCAL
}

fn check(path: &Path, d: &Descriptor) -> Result<()> {
    match d.mismatch() {
        None => Ok(()),
        Some(("magic", _, _)) => Err(Error::NotAComponentLibrary {
            path: path.to_owned(),
            reason: "the descriptor has the wrong magic".to_owned(),
        }),
        Some((field, expected, found)) => Err(Error::AbiMismatch {
            path: path.to_owned(),
            field,
            expected,
            found,
        }),
    }
}

fn to_error(status: u32, message: Vec<u8>) -> ComponentError {
    let message = String::from_utf8_lossy(&message).into_owned();
    if status == STATUS_PANIC {
        ComponentError::panic(message)
    } else {
        ComponentError::new(message)
    }
}

/// A component living in a plugin library, called through its vtable.
///
/// Dropping it destroys the object first and only then lets go of the library.
#[derive(Debug)]
pub struct DynamicComponent {
    object: *mut c_void,
    vtable: *const VTable,
    library: Arc<LoadedLibrary>,
    /// The factory that made it: the query names the component type by it.
    factory: String,
    /// The plugin's query function, if it has one (Extension Interface).
    query: Option<Query>,
    statistics: Option<ForeignStatistics>,
    record_filter: Option<ForeignRecordFilter>,
}

/// A plugin's statistics interface, called through its vtable.
#[derive(Debug)]
struct ForeignStatistics {
    object: *mut c_void,
    vtable: *const ext::statistics::VTable,
}

// SAFETY: the plugin hands out this vtable only for types implementing `Statistics`, which
// is `Send + Sync`; the object lives as long as the `DynamicComponent` holding this.
unsafe impl Send for ForeignStatistics {}
// SAFETY: as above.
unsafe impl Sync for ForeignStatistics {}

impl Statistics for ForeignStatistics {
    fn counters(&self) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        // SAFETY: the vtable is a static of the library the component keeps mapped, and
        // `object` is live while the component is; `out` outlives the call.
        let status = unsafe { ((*self.vtable).counters)(self.object, ByteSink::to_vec(&mut out)) };
        if status != STATUS_OK {
            tracing::warn!(status, "a plugin's statistics interface failed");
            return Vec::new();
        }
        ext::statistics::parse(&out)
    }
}

/// A plugin's record filter interface, called through its vtable.
#[derive(Debug)]
struct ForeignRecordFilter {
    object: *mut c_void,
    vtable: *const ext::record_filter::VTable,
}

// SAFETY: the plugin hands out this vtable only for types implementing `RecordFilter`,
// which is `Send + Sync`; the object lives as long as the `DynamicComponent` holding this.
unsafe impl Send for ForeignRecordFilter {}
// SAFETY: as above.
unsafe impl Sync for ForeignRecordFilter {}

impl RecordFilter for ForeignRecordFilter {
    fn filter(&self, r: &FilterInput<'_>) -> FilterVerdict {
        use ext::record_filter::{DROP, PASS, REWRITE};
        let mut verdict = u32::MAX;
        let mut rewritten = Vec::new();
        // SAFETY: as in `ForeignStatistics::counters`; the slices, `verdict` and the sink
        // outlive the call.
        let status = unsafe {
            ((*self.vtable).filter)(
                self.object,
                Str::of(r.host.as_bytes()),
                Str::of(r.app.as_bytes()),
                u32::from(r.severity),
                Str::of(r.message.as_bytes()),
                &mut verdict,
                ByteSink::to_vec(&mut rewritten),
            )
        };
        match (status, verdict) {
            (STATUS_OK, PASS) => FilterVerdict::Pass,
            (STATUS_OK, DROP) => FilterVerdict::Drop,
            (STATUS_OK, REWRITE) => {
                FilterVerdict::Rewrite(String::from_utf8_lossy(&rewritten).into_owned())
            }
            // A failing or confused filter lets the record through: losing records to a
            // broken plugin would be worse.
            _ => {
                tracing::warn!(
                    status,
                    verdict,
                    "a plugin's record filter failed; the record passes"
                );
                FilterVerdict::Pass
            }
        }
    }
}

// SAFETY: plugin objects are `Component`s, which are `Send`; the vtable is immutable static
// data and the library handle is shared through an `Arc`.
unsafe impl Send for DynamicComponent {}

impl DynamicComponent {
    /// The interfaces the host has wrappers for, found at creation (`query_interface`'s answer).
    fn query_interface_untraced(&self, iid: &str) -> Option<Extension<'_>> {
        match iid {
            ext::statistics::IID => self
                .statistics
                .as_ref()
                .map(|s| Extension::Statistics(s as &dyn Statistics)),
            ext::record_filter::IID => self
                .record_filter
                .as_ref()
                .map(|f| Extension::RecordFilter(f as &dyn RecordFilter)),
            _ => None,
        }
    }

    /// The library the component came from.
    pub fn library(&self) -> &Arc<LoadedLibrary> {
        &self.library
    }

    /// Whether the plugin says the component exports the interface `iid`: any identifier,
    /// also ones this host has no wrapper for. A plugin without a query (built before it
    /// existed) or whose query panics answers no.
    pub fn exports(&self, iid: &str) -> bool {
        self.raw_interface(iid).is_some()
    }

    fn raw_interface(&self, iid: &str) -> Option<*const c_void> {
        let query = self.query?;
        let mut out: *const c_void = std::ptr::null();
        // SAFETY: the strings and `out` outlive the call.
        let status = unsafe {
            query(
                Str::of(self.factory.as_bytes()),
                Str::of(iid.as_bytes()),
                &mut out,
            )
        };
        let host = format!("DynamicComponent {} (host)", self.factory);
        seq!(host => "POSA_COMPONENT_QUERY (plugin)", "query({}, {iid})", self.factory);
        if status != STATUS_OK {
            tracing::warn!(library = %self.library.path.display(), iid, status, "a plugin's interface query failed; taken as none");
            seq!(fail "POSA_COMPONENT_QUERY (plugin)" => host, "status {status}: taken as none");
            return None;
        }
        seq!(
            reply "POSA_COMPONENT_QUERY (plugin)" => host,
            "{}", if out.is_null() { "null: not exported" } else { "&vtable (size checked next)" }
        );
        (!out.is_null()).then_some(out)
    }

    /// The vtable of interface `iid` if the plugin exports it with the layout this host
    /// knows (its `size` field, first in every interface vtable, must match).
    fn interface<V>(&self, iid: &str) -> Option<*const V> {
        let vtable = self.raw_interface(iid)?;
        // SAFETY: every interface vtable starts with its `u32` size, and the plugin returned
        // a pointer to a static vtable of the library, which stays mapped.
        let size = unsafe { *(vtable as *const u32) } as usize;
        if size != std::mem::size_of::<V>() {
            tracing::warn!(
                iid,
                size,
                expected = std::mem::size_of::<V>(),
                "a plugin's interface has another layout; taken as none"
            );
            return None;
        }
        Some(vtable as *const V)
    }

    fn vt(&self) -> &VTable {
        // SAFETY: the vtable is a static in the library, which `self.library` keeps mapped.
        unsafe { &*self.vtable }
    }

    fn call(
        &mut self,
        f: unsafe extern "C" fn(*mut c_void, ByteSink) -> u32,
    ) -> Result<(), ComponentError> {
        let mut err = Vec::new();
        // SAFETY: `object` is live (destroyed only in Drop) and `err` outlives the call.
        let status = unsafe { f(self.object, ByteSink::to_vec(&mut err)) };
        if status == STATUS_OK {
            Ok(())
        } else {
            Err(to_error(status, err))
        }
    }
}

impl Component for DynamicComponent {
    fn init(&mut self, args: &[String]) -> Result<(), ComponentError> {
        let argv: Vec<Str> = args.iter().map(|a| Str::of(a.as_bytes())).collect();
        let mut err = Vec::new();
        let init = self.vt().init;
        // SAFETY: `argv` and the strings it borrows outlive the call; `object` is live.
        let status = unsafe {
            init(
                self.object,
                argv.as_ptr(),
                argv.len(),
                ByteSink::to_vec(&mut err),
            )
        };
        if status == STATUS_OK {
            Ok(())
        } else {
            Err(to_error(status, err))
        }
    }

    fn fini(&mut self) -> Result<(), ComponentError> {
        let f = self.vt().fini;
        self.call(f)
    }

    fn suspend(&mut self) -> Result<(), ComponentError> {
        let f = self.vt().suspend;
        self.call(f)
    }

    fn resume(&mut self) -> Result<(), ComponentError> {
        let f = self.vt().resume;
        self.call(f)
    }

    fn info(&self) -> String {
        let mut out = Vec::new();
        let f = self.vt().info;
        // SAFETY: `object` is live; `out` outlives the call.
        let status = unsafe { f(self.object, ByteSink::to_vec(&mut out)) };
        let text = String::from_utf8_lossy(&out).into_owned();
        if status == STATUS_OK {
            text
        } else {
            format!("<info failed: {text}>")
        }
    }

    fn export_state(&self) -> Result<Option<Vec<u8>>, ComponentError> {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let f = self.vt().export_state;
        // SAFETY: `object` is live; both buffers outlive the call.
        let status = unsafe {
            f(
                self.object,
                ByteSink::to_vec(&mut out),
                ByteSink::to_vec(&mut err),
            )
        };
        match status {
            STATUS_OK => Ok(Some(out)),
            STATUS_NO_STATE => Ok(None),
            s => Err(to_error(s, err)),
        }
    }

    fn query_interface(&self, iid: &str) -> Option<Extension<'_>> {
        let host = format!("DynamicComponent {} (host)", self.factory);
        seq!("Client" => host, "query_interface({iid})");
        let found = self.query_interface_untraced(iid);
        seq!(
            reply host => "Client",
            "{}",
            match &found {
                Some(Extension::Statistics(_)) => "Some(Extension::Statistics)",
                Some(Extension::RecordFilter(_)) => "Some(Extension::RecordFilter)",
                None => "None",
            }
        );
        found
    }

    fn import_state(&mut self, state: &[u8]) -> Result<(), ComponentError> {
        let mut err = Vec::new();
        let f = self.vt().import_state;
        // SAFETY: `object` is live; `state` and `err` outlive the call.
        let status = unsafe { f(self.object, Str::of(state), ByteSink::to_vec(&mut err)) };
        if status == STATUS_OK {
            Ok(())
        } else {
            Err(to_error(status, err))
        }
    }
}

/// A plugin component owned for its record filter alone, and shareable between threads
/// (logd's interceptor chain calls it from every thread of a pool).
///
/// Made by [`DynamicComponent::into_record_filter`] from an initialised component; dropping
/// it finalises the component (`fini`) and destroys it.
#[derive(Debug)]
pub struct SharedRecordFilter {
    component: DynamicComponent,
}

// SAFETY: through `&SharedRecordFilter` only `RecordFilter::filter` is reachable, and a plugin
// hands out that interface only for types that are `Send + Sync` (the bound of
// `ext::record_filter::vtable`); the control interface, which needs no `Sync`, is reached
// only through `&mut` by the owner (in `Drop`).
unsafe impl Sync for SharedRecordFilter {}

impl DynamicComponent {
    /// Gives the component up for its record filter; the component back if it exports none.
    pub fn into_record_filter(self) -> std::result::Result<SharedRecordFilter, DynamicComponent> {
        if self.record_filter.is_some() {
            Ok(SharedRecordFilter { component: self })
        } else {
            Err(self)
        }
    }
}

impl RecordFilter for SharedRecordFilter {
    fn filter(&self, r: &FilterInput<'_>) -> FilterVerdict {
        match &self.component.record_filter {
            Some(f) => f.filter(r),
            None => FilterVerdict::Pass,
        }
    }
}

impl Drop for SharedRecordFilter {
    fn drop(&mut self) {
        if let Err(e) = self.component.fini() {
            tracing::warn!(library = %self.component.library.path.display(), error = %e, "a plugin filter's fini failed");
        }
    }
}

impl Drop for DynamicComponent {
    fn drop(&mut self) {
        let destroy = self.vt().destroy;
        // SAFETY: destroy runs once, here, with the object the factory made; the library
        // (`self.library`) is dropped only after this, when the fields drop.
        let status = unsafe { destroy(self.object) };
        if status != STATUS_OK {
            tracing::warn!(library = %self.library.path.display(), "a plugin panicked while dropping its component");
        }
    }
}

/// Where a library named in a directive is looked for, in order: a spec with a `/` is a
/// path (tried as is, then with `.so`); a bare name is tried in each search directory as
/// `lib<name>.so`, `<name>.so`, `<name>`, then a versioned `lib<name>-*.so`.
pub fn resolve(spec: &str, search: &[PathBuf]) -> Result<PathBuf> {
    let mut looked = Vec::new();
    let try_path = |p: PathBuf, looked: &mut Vec<PathBuf>| {
        let ok = p.is_file();
        looked.push(p.clone());
        ok.then_some(p)
    };
    if spec.contains('/') {
        let p = PathBuf::from(spec);
        if let Some(p) = try_path(p.clone(), &mut looked) {
            return Ok(p);
        }
        if let Some(p) = try_path(PathBuf::from(format!("{spec}.so")), &mut looked) {
            return Ok(p);
        }
    } else {
        for dir in search {
            for candidate in [
                format!("lib{spec}.so"),
                format!("{spec}.so"),
                spec.to_owned(),
            ] {
                if let Some(p) = try_path(dir.join(candidate), &mut looked) {
                    return Ok(p);
                }
            }
            let prefix = format!("lib{spec}-");
            if let Ok(entries) = std::fs::read_dir(dir) {
                let mut versioned: Vec<PathBuf> = entries
                    .filter_map(|e| e.ok())
                    .map(|e| e.path())
                    .filter(|p| {
                        p.file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".so"))
                    })
                    .collect();
                versioned.sort();
                if let Some(p) = versioned.pop() {
                    return Ok(p);
                }
            }
        }
    }
    Err(Error::LibraryNotFound {
        spec: spec.to_owned(),
        looked,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_searches_names_in_order_and_takes_paths_as_given() {
        let dir = std::env::temp_dir().join(format!("cc-resolve-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let touch = |n: &str| std::fs::write(dir.join(n), b"").unwrap();
        touch("libalpha.so");
        touch("alpha.so");
        touch("beta.so");
        touch("libgamma-7.0.8.so");
        touch("libgamma-6.0.0.so");
        let search = vec![PathBuf::from("/nonexistent-dir"), dir.clone()];
        assert_eq!(resolve("alpha", &search).unwrap(), dir.join("libalpha.so"));
        assert_eq!(resolve("beta", &search).unwrap(), dir.join("beta.so"));
        assert_eq!(
            resolve("gamma", &search).unwrap(),
            dir.join("libgamma-7.0.8.so")
        );
        let explicit = dir.join("alpha");
        assert_eq!(
            resolve(&explicit.display().to_string(), &search).unwrap(),
            dir.join("alpha.so")
        );
        match resolve("delta", &search) {
            Err(Error::LibraryNotFound { spec, looked }) => {
                assert_eq!(spec, "delta");
                assert!(looked.contains(&dir.join("libdelta.so")));
            }
            other => panic!("unexpected {other:?}"),
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
