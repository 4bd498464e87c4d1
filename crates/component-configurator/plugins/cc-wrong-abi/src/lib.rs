//! Test plugin: a well-formed component library whose descriptor reports another ABI
//! version. The host must refuse it before running any of its code, so both its library
//! constructor and its factory abort the process if they ever run.

use component_configurator::abi::{ABI_VERSION, ByteSink, Created, Descriptor, HostApi};

/// The descriptor, claiming an ABI version this host does not speak.
#[unsafe(no_mangle)]
#[used]
pub static POSA_COMPONENT_DESCRIPTOR: Descriptor = Descriptor {
    abi_version: ABI_VERSION + 41,
    ..Descriptor::current("wrong-abi")
};

/// A factory the host must never call.
///
/// # Safety
/// Never safe to call: it aborts.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _make_wrong(
    _host: *const HostApi,
    _out: *mut Created,
    _err: ByteSink,
) -> u32 {
    std::process::abort()
}

extern "C" fn constructor() {
    // Runs at dlopen: a host that maps this library before checking its descriptor dies here.
    if std::env::var_os("CC_WRONG_ABI_CONSTRUCTOR_MAY_RUN").is_none() {
        std::process::abort();
    }
}

#[used]
// SAFETY: a plain `extern "C" fn()` pointer in `.init_array` is what the loader expects.
#[unsafe(link_section = ".init_array")]
static CONSTRUCTOR: extern "C" fn() = constructor;
