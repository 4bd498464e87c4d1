//! Wrapper Facade: the POSIX/Linux C API behind small, owned, safe Rust types.
//!
//! A logging server needs sockets, signals, processes, threads, memory-mapped and append-only files.
//! The C functions that provide them are tedious (sockaddr casts, byte order, `-1` plus `errno`),
//! error-prone (a forgotten `close` on one error path, an unhandled EINTR, a SIGPIPE that kills the
//! server) and not portable. This crate clusters those functions into types whose methods are the
//! only operations that make sense for them, turns every failure into an [`std::io::Error`] that keeps
//! its errno, retries EINTR wherever POSIX allows, and owns every descriptor from the instant the kernel
//! returns it, so that none leaks on any path. It is the only crate of the workspace with `unsafe`
//! (each block carries a `// SAFETY:` comment); everything above it is safe Rust.
//!
//! | Pattern participant | Here |
//! |---|---|
//! | Functions (the low-level C API) | `libc::socket`, `accept4`, `connect`, `send`, `signalfd`, `eventfd`, `posix_spawnp`, `mmap`, `flock`, ... |
//! | Wrapper Facade (cohesive classes) | [`InetAddr`], [`SockAcceptor`], [`SockConnector`], [`SockStream`], [`SockDgram`], [`notify::EventFd`], [`notify::Pipe`], [`signal::SignalFd`], [`process::Process`], [`thread::ThreadRegistry`], [`thread::RawThread`], [`sync::Lock`], [`mmap::MappedFile`], [`file::AppendFile`], [`file::FileLock`] |
//! | Controlled access to implementation details (step 3) | `AsFd`/`AsRawFd`/`Into<OwnedFd>` on every descriptor type, and [`mio::event::Source`] so a reactor can register them |
//! | Error-handling mechanism (step 4) | [`std::io::Error`] with errno, [`TransferError`] (partial count), [`Error`] (parse/resolve) |
//! | Helper classes (step 5) | [`AcceptorOptions`], [`ConnectProgress`], [`signal::SignalSet`], [`process::ProcessOptions`], [`file::FsyncPolicy`], [`thread::CancelToken`] |
//! | Client | the reactor (its Acceptor, Connector and wake-up), leader/followers (its wake-up), the component configurator (its service threads) and the logging service of this workspace |
//!
//! # Example
//! An echo exchange over loopback, and a cross-thread wake-up through an eventfd:
//!
//! ```
//! use wrapper_facade::notify::EventFd;
//! use wrapper_facade::{InetAddr, SockAcceptor, SockConnector};
//!
//! let acceptor = SockAcceptor::bind(&InetAddr::loopback_v4(0))?; // port 0: the kernel picks
//! let addr = acceptor.local_addr()?;
//! let server = std::thread::spawn(move || -> std::io::Result<()> {
//!     let (stream, _peer) = acceptor.accept()?;
//!     let mut buf = [0u8; 5];
//!     stream.recv_n(&mut buf)?; // loops over short reads, retries EINTR
//!     stream.send_n(&buf)?; // MSG_NOSIGNAL: a vanished peer is an error, not a SIGPIPE
//!     Ok(())
//! });
//! let client = SockConnector::default().connect(&addr)?;
//! client.send_n(b"hello")?;
//! let mut echo = [0u8; 5];
//! client.recv_n(&mut echo)?;
//! assert_eq!(&echo, b"hello");
//! server.join().unwrap()?;
//!
//! let wake = EventFd::new()?;
//! wake.notify()?;
//! assert_eq!(wake.drain()?, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

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

/// The `seq!` macro of the interaction events drawn as sequence diagrams (`posa-seq`).
#[macro_use]
extern crate posa_seq;

pub mod activation;
pub mod addr;
pub mod alloc;
pub mod clock;
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
pub mod uring;

pub use addr::InetAddr;
pub use error::{Error, TransferError};
pub use sock::{
    AcceptorOptions, ConnectProgress, Received, SockAcceptor, SockConnector, SockDgram, SockStream,
};
