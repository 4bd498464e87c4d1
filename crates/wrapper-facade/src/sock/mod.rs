//! Socket wrapper facades: [`SockAcceptor`], [`SockConnector`], [`SockStream`], [`SockDgram`].
//!
//! The C socket API is one family of functions for every role; here each role is a type with only
//! the operations that role allows (implementation steps 1 and 2: find the cohesive abstractions,
//! cluster the functions). A passive-mode socket cannot `send`, a stream cannot `accept`.
//! Every socket is created close-on-exec, owned by an [`std::os::fd::OwnedFd`] from the
//! moment the kernel returns it, and usable with mio.

mod acceptor;
mod connector;
mod dgram;
mod stream;

pub use acceptor::{AcceptorOptions, SockAcceptor};
pub use connector::{ConnectProgress, SockConnector};
pub(crate) use dgram::MsgParts;
pub use dgram::{Received, SockDgram};
pub use stream::SockStream;

use std::io;
use std::mem;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use crate::addr::InetAddr;
use crate::sys::{cvt, owned};

/// Creates a close-on-exec socket of `ty` for `addr`'s family, optionally nonblocking.
pub(crate) fn new_socket(
    addr: &InetAddr,
    ty: libc::c_int,
    nonblocking: bool,
) -> io::Result<OwnedFd> {
    let mut flags = ty | libc::SOCK_CLOEXEC;
    if nonblocking {
        flags |= libc::SOCK_NONBLOCK;
    }
    // SAFETY: socket takes plain integers and returns a new descriptor or -1.
    let raw = cvt(unsafe { libc::socket(addr.family(), flags, 0) })?;
    // SAFETY: socket returned a new descriptor that we alone own.
    Ok(unsafe { owned(raw) })
}

/// `bind(2)`.
pub(crate) fn bind(fd: BorrowedFd<'_>, addr: &InetAddr) -> io::Result<()> {
    let (storage, len) = addr.to_raw();
    // SAFETY: `storage` holds a socket address of `len` bytes.
    cvt(unsafe { libc::bind(fd.as_raw_fd(), (&raw const storage).cast(), len) })?;
    Ok(())
}

/// `getsockname(2)`.
pub(crate) fn local_addr(fd: BorrowedFd<'_>) -> io::Result<InetAddr> {
    name(fd, libc::getsockname)
}

/// `getpeername(2)`.
pub(crate) fn peer_addr(fd: BorrowedFd<'_>) -> io::Result<InetAddr> {
    name(fd, libc::getpeername)
}

type NameFn =
    unsafe extern "C" fn(libc::c_int, *mut libc::sockaddr, *mut libc::socklen_t) -> libc::c_int;

fn name(fd: BorrowedFd<'_>, f: NameFn) -> io::Result<InetAddr> {
    // SAFETY: sockaddr_storage is plain old data; all-zero is valid.
    let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let mut len = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `storage` is writable for `len` bytes and `len` is a valid in/out length.
    cvt(unsafe { f(fd.as_raw_fd(), (&raw mut storage).cast(), &mut len) })?;
    InetAddr::from_storage(&storage, len)
}

/// `setsockopt(2)` for a plain value.
pub(crate) fn setsockopt<T: Copy>(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: T,
) -> io::Result<()> {
    // SAFETY: `value` is readable for `size_of::<T>()` bytes; the kernel validates the length.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&raw const value).cast(),
            mem::size_of::<T>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

/// `getsockopt(2)` for a plain value that is valid when zeroed.
pub(crate) fn getsockopt<T: Copy>(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
) -> io::Result<T> {
    let mut value = mem::MaybeUninit::<T>::zeroed();
    let mut len = mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: `value` is writable for `len` bytes.
    cvt(unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            value.as_mut_ptr().cast(),
            &mut len,
        )
    })?;
    // SAFETY: the value was zeroed and every T used here (ints, timeval, linger) is valid when zeroed,
    // so a shorter write by the kernel still leaves a valid value.
    Ok(unsafe { value.assume_init() })
}

/// Fetches and clears the pending socket error (`SO_ERROR`).
pub(crate) fn take_error(fd: BorrowedFd<'_>) -> io::Result<Option<io::Error>> {
    let err: libc::c_int = getsockopt(fd, libc::SOL_SOCKET, libc::SO_ERROR)?;
    Ok((err != 0).then(|| io::Error::from_raw_os_error(err)))
}
