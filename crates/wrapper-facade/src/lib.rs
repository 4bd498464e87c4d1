//! Wrapper Facade: the POSIX/Linux C API behind small, owned, safe Rust types.
//!
//! (Crate documentation is completed with the socket modules.)

// `unsafe` is the point of this crate, but every block must say why it is sound,
// and an `unsafe fn` body gets no implicit unsafe context.
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

/// Implements the descriptor traits (`AsFd`, `AsRawFd`, `From<T> for OwnedFd`) and
/// `mio::event::Source` for a type that owns an `OwnedFd` in field `$field`.
macro_rules! impl_fd_traits {
    ($ty:ty, $field:ident) => {
        impl ::std::os::fd::AsFd for $ty {
            fn as_fd(&self) -> ::std::os::fd::BorrowedFd<'_> {
                self.$field.as_fd()
            }
        }

        impl ::std::os::fd::AsRawFd for $ty {
            fn as_raw_fd(&self) -> ::std::os::fd::RawFd {
                ::std::os::fd::AsRawFd::as_raw_fd(&self.$field)
            }
        }

        impl ::std::convert::From<$ty> for ::std::os::fd::OwnedFd {
            fn from(value: $ty) -> Self {
                value.$field
            }
        }

        impl ::mio::event::Source for $ty {
            fn register(
                &mut self,
                registry: &::mio::Registry,
                token: ::mio::Token,
                interests: ::mio::Interest,
            ) -> ::std::io::Result<()> {
                let raw = ::std::os::fd::AsRawFd::as_raw_fd(&self.$field);
                ::mio::unix::SourceFd(&raw).register(registry, token, interests)
            }

            fn reregister(
                &mut self,
                registry: &::mio::Registry,
                token: ::mio::Token,
                interests: ::mio::Interest,
            ) -> ::std::io::Result<()> {
                let raw = ::std::os::fd::AsRawFd::as_raw_fd(&self.$field);
                ::mio::unix::SourceFd(&raw).reregister(registry, token, interests)
            }

            fn deregister(&mut self, registry: &::mio::Registry) -> ::std::io::Result<()> {
                let raw = ::std::os::fd::AsRawFd::as_raw_fd(&self.$field);
                ::mio::unix::SourceFd(&raw).deregister(registry)
            }
        }
    };
}
pub(crate) use impl_fd_traits;

pub mod addr;
pub mod error;
pub mod file;
pub mod mmap;
pub mod notify;
pub mod process;
pub mod signal;
pub mod sock;
pub mod sync;
mod sys;
pub mod thread;

pub use addr::InetAddr;
pub use error::{Error, TransferError};
pub use sock::{
    AcceptorOptions, ConnectProgress, SockAcceptor, SockConnector, SockDgram, SockStream,
};
