//! Proxy: surrogates that keep a field device's interface while controlling access to it.
//!
//! | Course participant | Here |
//! |---|---|
//! | Subject (the interface) | [`DeviceService`] |
//! | Real subject | [`FieldDevice`] |
//! | Virtual proxy | [`VirtualProxy`]: creates the subject on first use, once, thread-safely |
//! | Protection proxy | [`ProtectionProxy`] with an [`AccessPolicy`] such as [`RolePolicy`] |
//! | Smart proxy (smart reference) | [`SmartProxy`]: counts users and accesses, releases the subject with its last user |
//! | Remote proxy | [`RemoteDevice`] (client stub) over a [`Transport`]: [`InProcessTransport`] or [`TcpTransport`]; [`DeviceSkeleton`] and [`TcpDeviceServer`] on the far side |
//!
//! Every proxy implements [`DeviceService`] itself, so a client written against the trait runs
//! unchanged against the real device or any proxy, and proxies stack
//! (a protection proxy in front of a smart proxy in front of a remote stub, for instance).
//! The reusable parts are generic: `VirtualProxy<T, F>`, `ProtectionProxy<S, P>` and `SmartProxy<T>`
//! work for any subject, with [`VirtualProxy::get`], [`ProtectionProxy::guard`] and `Deref`
//! as the forwarding primitives; the `DeviceService` impls show how a subject trait is forwarded.
//!
//! ```
//! use std::sync::Arc;
//! use gof_structural::proxy::{registers, DeviceService, FieldDevice, ProtectionProxy, Role, RolePolicy, SmartProxy, VirtualProxy};
//!
//! // A client that only knows the subject interface.
//! fn setpoint(device: &impl DeviceService) -> u32 {
//!     device.read_register(registers::SETPOINT).unwrap()
//! }
//!
//! let real = FieldDevice::new("TC-100", 7);
//! let lazy = VirtualProxy::new(|| FieldDevice::new("TC-100", 8));
//! let counted = SmartProxy::new(FieldDevice::new("TC-100", 9));
//! let guarded = ProtectionProxy::new(Arc::new(FieldDevice::new("TC-100", 10)), RolePolicy::default(), Role::Observer);
//! assert_eq!(setpoint(&real), 20_000);
//! assert_eq!(setpoint(&lazy), 20_000);
//! assert_eq!(setpoint(&counted), 20_000);
//! assert_eq!(setpoint(&guarded), 20_000);
//! ```

mod device;
mod protection;
mod remote;
mod smart;
mod tcp;
mod virtual_proxy;
pub mod wire;

pub use device::{DeviceOperation, DeviceService, FieldDevice, registers};
pub use protection::{AccessPolicy, ProtectionProxy, Role, RolePolicy};
pub use remote::{DeviceSkeleton, InProcessTransport, RemoteDevice, Transport};
pub use smart::SmartProxy;
pub use tcp::{TcpConfig, TcpDeviceServer, TcpTransport};
pub use virtual_proxy::VirtualProxy;
