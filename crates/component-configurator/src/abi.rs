//! The C ABI between the host and plugin libraries: a descriptor, a factory, a vtable.
//!
//! A plugin exports one static, [`DESCRIPTOR_SYMBOL`], of type [`Descriptor`], and one
//! `extern "C"` [`Factory`] per component kind.
//! The host reads the descriptor from the file before the library is mapped, and again from
//! memory after, and calls nothing unless magic, ABI version, size, interface version and
//! (when Rust types cross) the compiler version all match.
//! A factory fills a [`Created`]: a [`VTable`] of `extern "C"` functions and an opaque object.
//! Only C types cross: byte slices ([`Str`]), byte sinks ([`ByteSink`]) through which the plugin
//! writes strings and state into host-owned buffers, and `u32` status codes.
//! Every function a plugin exports catches panics and reports them as [`STATUS_PANIC`].
//!
//! Plugins do not write these by hand: [`export_components!`](crate::export_components)
//! generates the descriptor, the factories and the vtable from [`Component`] implementations.

use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::component::{Component, ComponentError};

/// The name of the exported descriptor static.
pub const DESCRIPTOR_SYMBOL: &str = "POSA_COMPONENT_DESCRIPTOR";
/// The descriptor's first eight bytes.
pub const MAGIC: [u8; 8] = *b"POSA-CC\x01";
/// The layout version of [`Descriptor`], [`HostApi`], [`Created`] and [`VTable`].
pub const ABI_VERSION: u32 = 1;
/// The version of the [`Component`] contract behind the vtable.
pub const INTERFACE_VERSION: u32 = 1;
/// Descriptor flag: Rust types cross the boundary, so the compiler versions must match.
pub const FLAG_RUST_TYPES: u32 = 1;
/// The compiler that built this crate (and, through the macro, every plugin using it).
pub const RUSTC_VERSION: &str = env!("CC_RUSTC_VERSION");

/// The call succeeded.
pub const STATUS_OK: u32 = 0;
/// The call failed; the message was written to the error sink.
pub const STATUS_ERROR: u32 = 1;
/// The call panicked; the panic's message was written to the error sink.
pub const STATUS_PANIC: u32 = 2;
/// `export_state` had no state to give.
pub const STATUS_NO_STATE: u32 = 3;

/// The name of the optional query function (Extension Interface, [`crate::ext`]): a plugin
/// without it is one built before it existed, and exports no extension interface.
pub const QUERY_SYMBOL: &str = "POSA_COMPONENT_QUERY";

/// The query: for the component made by `factory`, the vtable of interface `iid`, written
/// to `out` (null: the component does not export it). Returns [`STATUS_OK`], or
/// [`STATUS_PANIC`] (and `out` stays null).
pub type Query = unsafe extern "C" fn(factory: Str, iid: Str, out: *mut *const c_void) -> u32;

/// Plugin side: runs a query's lookup, catching a panic, and writes its answer to `out`.
///
/// # Safety
/// `out` must be writable.
pub unsafe fn answer_query(out: *mut *const c_void, lookup: impl FnOnce() -> *const c_void) -> u32 {
    // SAFETY: the caller passes a writable `out`.
    unsafe { out.write(std::ptr::null()) };
    match catch_unwind(AssertUnwindSafe(lookup)) {
        Ok(vtable) => {
            // SAFETY: as above.
            unsafe { out.write(vtable) };
            STATUS_OK
        }
        Err(payload) => {
            std::mem::forget(payload);
            STATUS_PANIC
        }
    }
}

/// The exported descriptor: plain bytes and integers, so it can be read from the file.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Descriptor {
    /// [`MAGIC`].
    pub magic: [u8; 8],
    /// [`ABI_VERSION`].
    pub abi_version: u32,
    /// `size_of::<Descriptor>()` as the plugin saw it.
    pub size: u32,
    /// [`INTERFACE_VERSION`].
    pub interface_version: u32,
    /// [`FLAG_RUST_TYPES`] or 0.
    pub flags: u32,
    /// The compiler's `--version`, NUL-padded.
    pub rustc_version: [u8; 64],
    /// The plugin's name, NUL-padded.
    pub plugin_name: [u8; 32],
}

/// Size of [`Descriptor`] in bytes.
pub const DESCRIPTOR_SIZE: usize = std::mem::size_of::<Descriptor>();

/// Copies `s` into a NUL-padded array, truncating (usable in statics).
pub const fn padded<const N: usize>(s: &str) -> [u8; N] {
    let bytes = s.as_bytes();
    let mut out = [0u8; N];
    let mut i = 0;
    while i < bytes.len() && i < N {
        out[i] = bytes[i];
        i += 1;
    }
    out
}

/// The text of a NUL-padded array.
pub fn unpadded(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

impl Descriptor {
    /// The descriptor this crate's version writes for a plugin called `name`.
    pub const fn current(name: &str) -> Descriptor {
        Descriptor {
            magic: MAGIC,
            abi_version: ABI_VERSION,
            size: DESCRIPTOR_SIZE as u32,
            interface_version: INTERFACE_VERSION,
            flags: 0,
            rustc_version: padded(RUSTC_VERSION),
            plugin_name: padded(name),
        }
    }

    /// Decodes a descriptor from its bytes (as read from a file), if there are enough.
    pub fn from_bytes(bytes: &[u8]) -> Option<Descriptor> {
        if bytes.len() < DESCRIPTOR_SIZE {
            return None;
        }
        let u32_at =
            |i: usize| u32::from_ne_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        let mut d = Descriptor {
            magic: [0; 8],
            abi_version: u32_at(8),
            size: u32_at(12),
            interface_version: u32_at(16),
            flags: u32_at(20),
            rustc_version: [0; 64],
            plugin_name: [0; 32],
        };
        d.magic.copy_from_slice(&bytes[0..8]);
        d.rustc_version.copy_from_slice(&bytes[24..88]);
        d.plugin_name.copy_from_slice(&bytes[88..120]);
        Some(d)
    }

    /// The first field that differs from what this host needs: (field, expected, found).
    pub fn mismatch(&self) -> Option<(&'static str, String, String)> {
        if self.magic != MAGIC {
            return Some(("magic", format!("{MAGIC:?}"), format!("{:?}", self.magic)));
        }
        if self.abi_version != ABI_VERSION {
            return Some((
                "the ABI version",
                ABI_VERSION.to_string(),
                self.abi_version.to_string(),
            ));
        }
        if self.size as usize != DESCRIPTOR_SIZE {
            return Some((
                "the descriptor size",
                DESCRIPTOR_SIZE.to_string(),
                self.size.to_string(),
            ));
        }
        if self.interface_version != INTERFACE_VERSION {
            return Some((
                "the interface version",
                INTERFACE_VERSION.to_string(),
                self.interface_version.to_string(),
            ));
        }
        if self.flags & FLAG_RUST_TYPES != 0 && unpadded(&self.rustc_version) != RUSTC_VERSION {
            return Some((
                "the compiler version",
                RUSTC_VERSION.to_owned(),
                unpadded(&self.rustc_version),
            ));
        }
        None
    }
}

const _: () = assert!(DESCRIPTOR_SIZE == 120);

/// A borrowed byte slice crossing the boundary.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct Str {
    /// First byte (may dangle when `len` is 0).
    pub ptr: *const u8,
    /// Length in bytes.
    pub len: usize,
}

impl Str {
    /// Borrows `s` for the duration of a call.
    pub fn of(s: &[u8]) -> Str {
        Str {
            ptr: s.as_ptr(),
            len: s.len(),
        }
    }

    /// The bytes.
    ///
    /// # Safety
    /// `ptr` must point at `len` readable bytes that outlive `'a`.
    pub unsafe fn bytes<'a>(self) -> &'a [u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: the caller promises `ptr..ptr+len` is readable for 'a.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

/// Where the callee writes bytes the caller keeps (messages, info, state): the caller owns
/// the buffer, so no allocation crosses the boundary.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ByteSink {
    /// The caller's buffer (a `*mut Vec<u8>` on our side).
    pub ctx: *mut c_void,
    /// Appends `len` bytes at `ptr` to the buffer.
    pub write: unsafe extern "C" fn(ctx: *mut c_void, ptr: *const u8, len: usize),
}

unsafe extern "C" fn vec_write(ctx: *mut c_void, ptr: *const u8, len: usize) {
    if len == 0 {
        return;
    }
    // SAFETY: `ctx` was made by `ByteSink::to_vec` from a live `&mut Vec<u8>` and the
    // callee passes `len` readable bytes at `ptr` for the duration of this call.
    unsafe {
        let v = &mut *(ctx as *mut Vec<u8>);
        v.extend_from_slice(std::slice::from_raw_parts(ptr, len));
    }
}

impl ByteSink {
    /// A sink appending to `v`; valid while `v` is borrowed.
    pub fn to_vec(v: &mut Vec<u8>) -> ByteSink {
        ByteSink {
            ctx: v as *mut Vec<u8> as *mut c_void,
            write: vec_write,
        }
    }

    /// Writes `bytes` into the sink.
    ///
    /// # Safety
    /// The sink must be one the caller made valid for this call.
    pub unsafe fn put(self, bytes: &[u8]) {
        // SAFETY: the caller guarantees the sink is live; the slice is valid for the call.
        unsafe { (self.write)(self.ctx, bytes.as_ptr(), bytes.len()) }
    }
}

/// Log levels on the wire (tracing's, numbered).
pub mod level {
    /// `ERROR`.
    pub const ERROR: u32 = 1;
    /// `WARN`.
    pub const WARN: u32 = 2;
    /// `INFO`.
    pub const INFO: u32 = 3;
    /// `DEBUG`.
    pub const DEBUG: u32 = 4;
    /// `TRACE`.
    pub const TRACE: u32 = 5;
}

/// What the host offers plugins: a callback for log records, so a plugin's `tracing` events
/// reach the host's subscriber (the plugin has its own copy of `tracing`'s globals).
///
/// It is valid for the duration of the factory call; the plugin copies the level and the
/// callback, which is a `'static` function of the host.
#[repr(C)]
#[derive(Debug)]
pub struct HostApi {
    /// `size_of::<HostApi>()`.
    pub size: u32,
    /// The most verbose [`level`] the host wants.
    pub max_level: u32,
    /// Receives one event: level, target and the formatted message with its fields.
    pub log: unsafe extern "C" fn(level: u32, target: Str, message: Str),
}

/// A factory's output.
#[repr(C)]
#[derive(Debug)]
pub struct Created {
    /// The component's functions (a `'static` table inside the library).
    pub vtable: *const VTable,
    /// The component object, owned by the host until it calls `destroy`.
    pub object: *mut c_void,
}

/// A factory: `extern "C" fn(host, out, err) -> status`.
pub type Factory =
    unsafe extern "C" fn(host: *const HostApi, out: *mut Created, err: ByteSink) -> u32;

/// The component's functions, one per [`Component`] operation, plus `destroy`.
#[repr(C)]
#[derive(Debug)]
pub struct VTable {
    /// `size_of::<VTable>()`.
    pub size: u32,
    /// [`Component::init`] with `argc` arguments at `argv`.
    pub init: unsafe extern "C" fn(*mut c_void, *const Str, usize, ByteSink) -> u32,
    /// [`Component::fini`].
    pub fini: unsafe extern "C" fn(*mut c_void, ByteSink) -> u32,
    /// [`Component::suspend`].
    pub suspend: unsafe extern "C" fn(*mut c_void, ByteSink) -> u32,
    /// [`Component::resume`].
    pub resume: unsafe extern "C" fn(*mut c_void, ByteSink) -> u32,
    /// [`Component::info`], written to the sink.
    pub info: unsafe extern "C" fn(*mut c_void, ByteSink) -> u32,
    /// [`Component::export_state`] into the first sink; errors to the second.
    pub export_state: unsafe extern "C" fn(*mut c_void, ByteSink, ByteSink) -> u32,
    /// [`Component::import_state`].
    pub import_state: unsafe extern "C" fn(*mut c_void, Str, ByteSink) -> u32,
    /// Drops the object.
    pub destroy: unsafe extern "C" fn(*mut c_void) -> u32,
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_owned()
    }
}

/// Runs `f`, turning its error or panic into a status and a message in `err`.
fn guarded(err: ByteSink, f: impl FnOnce() -> Result<(), ComponentError>) -> u32 {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => STATUS_OK,
        Ok(Err(e)) => {
            // SAFETY: the host passed a sink valid for this call.
            unsafe { err.put(e.message.as_bytes()) };
            if e.panicked {
                STATUS_PANIC
            } else {
                STATUS_ERROR
            }
        }
        Err(payload) => {
            let message = panic_message(&*payload);
            // Dropping the payload could itself panic; forget it rather than unwind here.
            std::mem::forget(payload);
            // SAFETY: as above.
            unsafe { err.put(message.as_bytes()) };
            STATUS_PANIC
        }
    }
}

/// The vtable and shims for one component type, generated in the plugin.
#[derive(Debug)]
pub struct Shims<T>(std::marker::PhantomData<T>);

impl<T: Component + 'static> Shims<T> {
    /// The vtable for `T`.
    pub const VTABLE: VTable = VTable {
        size: std::mem::size_of::<VTable>() as u32,
        init: Self::init,
        fini: Self::fini,
        suspend: Self::suspend,
        resume: Self::resume,
        info: Self::info,
        export_state: Self::export_state,
        import_state: Self::import_state,
        destroy: Self::destroy,
    };

    /// # Safety
    /// `obj` must come from `create` for this `T` and not be destroyed.
    unsafe fn obj<'a>(obj: *mut c_void) -> &'a mut T {
        // SAFETY: per this function's contract the pointer is a live, unaliased Box<T>.
        unsafe { &mut *(obj as *mut T) }
    }

    /// Boxes `make()` into `out`, catching panics.
    ///
    /// # Safety
    /// `out` must be writable and `err` valid for the call.
    pub unsafe fn create(make: fn() -> T, out: *mut Created, err: ByteSink) -> u32 {
        let mut made: Option<T> = None;
        let status = guarded(err, || {
            made = Some(make());
            Ok(())
        });
        if let Some(t) = made {
            let object = Box::into_raw(Box::new(t)) as *mut c_void;
            // SAFETY: the host passed a writable `Created`.
            unsafe {
                out.write(Created {
                    vtable: &Self::VTABLE,
                    object,
                })
            };
        }
        status
    }

    unsafe extern "C" fn init(
        obj: *mut c_void,
        argv: *const Str,
        argc: usize,
        err: ByteSink,
    ) -> u32 {
        guarded(err, || {
            // SAFETY: the host passes `argc` valid `Str`s that live for the call.
            let raw = if argc == 0 {
                &[][..]
            } else {
                unsafe { std::slice::from_raw_parts(argv, argc) }
            };
            let args: Vec<String> = raw
                // SAFETY: each `Str` points at bytes valid for the call.
                .iter()
                .map(|s| String::from_utf8_lossy(unsafe { s.bytes() }).into_owned())
                .collect();
            // SAFETY: the host passes the object it got from `create`.
            unsafe { Self::obj(obj) }.init(&args)
        })
    }

    unsafe extern "C" fn fini(obj: *mut c_void, err: ByteSink) -> u32 {
        // SAFETY: the host passes the object it got from `create`.
        guarded(err, || unsafe { Self::obj(obj) }.fini())
    }

    unsafe extern "C" fn suspend(obj: *mut c_void, err: ByteSink) -> u32 {
        // SAFETY: as in `fini`.
        guarded(err, || unsafe { Self::obj(obj) }.suspend())
    }

    unsafe extern "C" fn resume(obj: *mut c_void, err: ByteSink) -> u32 {
        // SAFETY: as in `fini`.
        guarded(err, || unsafe { Self::obj(obj) }.resume())
    }

    unsafe extern "C" fn info(obj: *mut c_void, out: ByteSink) -> u32 {
        guarded(out, || {
            // SAFETY: as in `fini`; `out` is valid for the call.
            unsafe { out.put(Self::obj(obj).info().as_bytes()) };
            Ok(())
        })
    }

    unsafe extern "C" fn export_state(obj: *mut c_void, out: ByteSink, err: ByteSink) -> u32 {
        let mut none = false;
        let status = guarded(err, || {
            // SAFETY: as in `fini`.
            match unsafe { Self::obj(obj) }.export_state()? {
                // SAFETY: `out` is valid for the call.
                Some(state) => unsafe { out.put(&state) },
                None => none = true,
            }
            Ok(())
        });
        if status == STATUS_OK && none {
            STATUS_NO_STATE
        } else {
            status
        }
    }

    unsafe extern "C" fn import_state(obj: *mut c_void, state: Str, err: ByteSink) -> u32 {
        // SAFETY: as in `fini`; `state` is valid for the call.
        guarded(err, || unsafe {
            Self::obj(obj).import_state(state.bytes())
        })
    }

    unsafe extern "C" fn destroy(obj: *mut c_void) -> u32 {
        let result = catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: the host calls destroy once, with the object from `create`.
            drop(unsafe { Box::from_raw(obj as *mut T) })
        }));
        match result {
            Ok(()) => STATUS_OK,
            Err(payload) => {
                std::mem::forget(payload);
                STATUS_PANIC
            }
        }
    }
}

/// Plugin side: forwards this library's `tracing` events to the host's callback.
#[derive(Debug)]
pub struct LogForwarder {
    log: unsafe extern "C" fn(u32, Str, Str),
    max_level: u32,
}

fn level_number(l: &tracing::Level) -> u32 {
    match *l {
        tracing::Level::ERROR => level::ERROR,
        tracing::Level::WARN => level::WARN,
        tracing::Level::INFO => level::INFO,
        tracing::Level::DEBUG => level::DEBUG,
        _ => level::TRACE,
    }
}

struct Fields(String);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write;
        if field.name() == "message" {
            let rest = std::mem::take(&mut self.0);
            let _ = write!(self.0, "{value:?}");
            self.0.push_str(&rest);
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

impl tracing::Subscriber for LogForwarder {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        level_number(metadata.level()) <= self.max_level
    }
    fn new_span(&self, _span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _span: &tracing::span::Id, _values: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _span: &tracing::span::Id, _follows: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut fields = Fields(String::new());
        event.record(&mut fields);
        let meta = event.metadata();
        // SAFETY: the host's callback lives as long as the host; the slices live for the call.
        unsafe {
            (self.log)(
                level_number(meta.level()),
                Str::of(meta.target().as_bytes()),
                Str::of(fields.0.as_bytes()),
            )
        };
    }
    fn enter(&self, _span: &tracing::span::Id) {}
    fn exit(&self, _span: &tracing::span::Id) {}
}

/// Plugin side: makes the host's log callback this library's global `tracing` subscriber
/// (once; later calls are ignored).
///
/// # Safety
/// `host` must be null or point at a valid [`HostApi`] that outlives the library.
pub unsafe fn install_log_forwarder(host: *const HostApi) {
    if host.is_null() {
        return;
    }
    // SAFETY: non-null and valid per the contract.
    let host = unsafe { &*host };
    if (host.size as usize) < std::mem::size_of::<HostApi>() {
        return;
    }
    let forwarder = LogForwarder {
        log: host.log,
        max_level: host.max_level,
    };
    // The global default (not a thread-local one) keeps the library free of thread-local
    // destructors on host threads, which would pin it in memory.
    if tracing::subscriber::set_global_default(forwarder).is_ok() {
        // This library's copy of std has its own panic hook. Its default one names the
        // current thread, which registers a thread-local destructor on the host's thread and
        // so pins the library; this one reports through the host's log instead.
        std::panic::set_hook(Box::new(|info| {
            tracing::error!(target: "plugin_panic", "plugin panicked: {info}");
        }));
    }
}

/// Exports components from a plugin library: the descriptor and one factory per component.
///
/// ```
/// use component_configurator::{Component, ComponentError};
///
/// #[derive(Debug, Default)]
/// struct Nop;
/// impl Component for Nop {
///     fn init(&mut self, _: &[String]) -> Result<(), ComponentError> { Ok(()) }
///     fn fini(&mut self) -> Result<(), ComponentError> { Ok(()) }
///     fn info(&self) -> String { "nop".into() }
/// }
///
/// component_configurator::export_components! {
///     plugin: "nop",
///     _make_nop => Nop::default,
/// }
/// assert_eq!(POSA_COMPONENT_DESCRIPTOR.mismatch(), None);
/// ```
/// Each factory is `#[unsafe(no_mangle)] extern "C"`; in a plugin crate built as a `cdylib`
/// named `cc_nop`, svc.conf names it as `cc_nop:_make_nop()`.
///
/// An `interfaces` section lists, per factory, the component's type and the extension
/// interfaces it exports (modules of [`crate::ext`]: `statistics`, `record_filter`); the
/// macro then also exports [`QUERY_SYMBOL`]. Without the section there is no query symbol,
/// as in plugins built before it existed.
///
/// ```
/// use component_configurator::ext::Statistics;
/// use component_configurator::{Component, ComponentError};
///
/// #[derive(Debug, Default)]
/// struct Counted;
/// impl Component for Counted {
///     fn init(&mut self, _: &[String]) -> Result<(), ComponentError> { Ok(()) }
///     fn fini(&mut self) -> Result<(), ComponentError> { Ok(()) }
///     fn info(&self) -> String { "counted".into() }
/// }
/// impl Statistics for Counted {
///     fn counters(&self) -> Vec<(String, u64)> { vec![("calls".into(), 1)] }
/// }
///
/// component_configurator::export_components! {
///     plugin: "counted",
///     _make_counted => Counted::default;
///     interfaces: { _make_counted: Counted => [statistics] },
/// }
/// let mut out = std::ptr::null();
/// let iid = component_configurator::ext::statistics::IID;
/// let status = unsafe {
///     POSA_COMPONENT_QUERY(
///         component_configurator::abi::Str::of(b"_make_counted"),
///         component_configurator::abi::Str::of(iid.as_bytes()),
///         &mut out,
///     )
/// };
/// assert_eq!((status, out.is_null()), (0, false));
/// ```
#[macro_export]
macro_rules! export_components {
    (plugin: $plugin:expr, $($factory:ident => $make:expr),+ $(,)? ;
     interfaces: { $($qf:ident : $ty:ty => [$($iface:ident),* $(,)?]),* $(,)? } $(,)?) => {
        $crate::export_components! { plugin: $plugin, $($factory => $make),+ }

        /// The Extension Interface query (see `component_configurator::ext`).
        ///
        /// # Safety
        /// Called by the host with slices valid for the call and a writable `out`.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn POSA_COMPONENT_QUERY(
            factory: $crate::abi::Str,
            iid: $crate::abi::Str,
            out: *mut *const ::std::ffi::c_void,
        ) -> u32 {
            // SAFETY: the host passes a writable `out` and slices valid for the call.
            unsafe {
                $crate::abi::answer_query(out, || {
                    let (factory, iid) = (factory.bytes(), iid.bytes());
                    $(
                        if factory == stringify!($qf).as_bytes() {
                            $(
                                if iid == $crate::ext::$iface::IID.as_bytes() {
                                    return $crate::ext::$iface::vtable::<$ty>();
                                }
                            )*
                        }
                    )*
                    ::std::ptr::null()
                })
            }
        }
    };
    (plugin: $plugin:expr, $($factory:ident => $make:expr),+ $(,)?) => {
        /// The descriptor the host reads before running any code of this library.
        #[unsafe(no_mangle)]
        #[used]
        pub static POSA_COMPONENT_DESCRIPTOR: $crate::abi::Descriptor =
            $crate::abi::Descriptor::current($plugin);

        $(
            /// A component factory for the host (see `component_configurator::abi`).
            ///
            /// # Safety
            /// Called by the host with a valid `HostApi`, `Created` and sink.
            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn $factory(
                host: *const $crate::abi::HostApi,
                out: *mut $crate::abi::Created,
                err: $crate::abi::ByteSink,
            ) -> u32 {
                // SAFETY: the host passes a HostApi that outlives this library.
                unsafe { $crate::abi::install_log_forwarder(host) };
                fn make() -> impl $crate::Component + 'static { ($make)() }
                // SAFETY: the host passes a writable `out` and a valid sink.
                unsafe { create_with(make, out, err) }
            }
        )+

        unsafe fn create_with<T: $crate::Component + 'static>(
            make: fn() -> T,
            out: *mut $crate::abi::Created,
            err: $crate::abi::ByteSink,
        ) -> u32 {
            // SAFETY: forwarded from the factory's contract.
            unsafe { $crate::abi::Shims::<T>::create(make, out, err) }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes_of(d: &Descriptor) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&d.magic);
        for x in [d.abi_version, d.size, d.interface_version, d.flags] {
            v.extend_from_slice(&x.to_ne_bytes());
        }
        v.extend_from_slice(&d.rustc_version);
        v.extend_from_slice(&d.plugin_name);
        v
    }

    #[test]
    fn the_current_descriptor_matches_and_round_trips_through_bytes() {
        let d = Descriptor::current("echo");
        assert_eq!(d.mismatch(), None);
        assert_eq!(unpadded(&d.plugin_name), "echo");
        assert_eq!(unpadded(&d.rustc_version), RUSTC_VERSION);
        let bytes = bytes_of(&d);
        assert_eq!(bytes.len(), DESCRIPTOR_SIZE);
        assert_eq!(Descriptor::from_bytes(&bytes), Some(d));
        assert_eq!(Descriptor::from_bytes(&bytes[..DESCRIPTOR_SIZE - 1]), None);
    }

    #[test]
    fn each_field_is_checked() {
        let base = Descriptor::current("x");
        let field = |d: Descriptor| d.mismatch().map(|(f, _, _)| f);
        assert_eq!(
            field(Descriptor {
                magic: *b"ELSEWHAT",
                ..base
            }),
            Some("magic")
        );
        assert_eq!(
            field(Descriptor {
                abi_version: ABI_VERSION + 1,
                ..base
            }),
            Some("the ABI version")
        );
        assert_eq!(
            field(Descriptor { size: 64, ..base }),
            Some("the descriptor size")
        );
        assert_eq!(
            field(Descriptor {
                interface_version: 0,
                ..base
            }),
            Some("the interface version")
        );
        // The compiler version matters only when Rust types cross.
        let other_rustc = Descriptor {
            rustc_version: padded("rustc 0.0.1 (from another world)"),
            ..base
        };
        assert_eq!(field(other_rustc), None);
        let (f, expected, found) = Descriptor {
            flags: FLAG_RUST_TYPES,
            ..other_rustc
        }
        .mismatch()
        .unwrap();
        assert_eq!(f, "the compiler version");
        assert_eq!(expected, RUSTC_VERSION);
        assert_eq!(found, "rustc 0.0.1 (from another world)");
    }

    #[test]
    fn padding_truncates_and_stops_at_nul() {
        let p: [u8; 4] = padded("abcdef");
        assert_eq!(&p, b"abcd");
        assert_eq!(unpadded(b"ab\0cd"), "ab");
    }

    #[test]
    fn panics_and_errors_become_statuses() {
        let mut err = Vec::new();
        assert_eq!(guarded(ByteSink::to_vec(&mut err), || Ok(())), STATUS_OK);
        let status = guarded(ByteSink::to_vec(&mut err), || {
            Err(ComponentError::new("no port"))
        });
        assert_eq!((status, err.as_slice()), (STATUS_ERROR, &b"no port"[..]));
        let mut err = Vec::new();
        let status = guarded(ByteSink::to_vec(&mut err), || panic!("boom {}", 7));
        assert_eq!((status, err.as_slice()), (STATUS_PANIC, &b"boom 7"[..]));
    }
}
