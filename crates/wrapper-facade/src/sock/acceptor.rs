//! [`SockAcceptor`]: a passive-mode socket that only binds, listens and accepts.

use std::io;
use std::mem;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use super::SockStream;
use crate::addr::InetAddr;
use crate::sys::{self, cvt, cvt_r, owned};

/// How a [`SockAcceptor`] is set up: options that must be in place before `bind`/`listen`.
///
/// ```
/// use wrapper_facade::AcceptorOptions;
/// let opts = AcceptorOptions::default().backlog(16).reuse_port(true).nonblocking(true);
/// assert_eq!(opts.get_backlog(), 16);
/// ```
#[derive(Debug, Clone)]
pub struct AcceptorOptions {
    reuse_addr: bool,
    reuse_port: bool,
    backlog: i32,
    nonblocking: bool,
    accept_nonblocking: bool,
}

impl Default for AcceptorOptions {
    /// `SO_REUSEADDR` on, `SO_REUSEPORT` off, backlog 128, everything blocking.
    fn default() -> Self {
        AcceptorOptions {
            reuse_addr: true,
            reuse_port: false,
            backlog: 128,
            nonblocking: false,
            accept_nonblocking: false,
        }
    }
}

impl AcceptorOptions {
    /// `SO_REUSEADDR`: rebind a port whose old connections linger in TIME_WAIT.
    #[must_use]
    pub fn reuse_addr(mut self, on: bool) -> Self {
        self.reuse_addr = on;
        self
    }

    /// `SO_REUSEPORT`: let several acceptors (of this user) bind the same port and share the load.
    #[must_use]
    pub fn reuse_port(mut self, on: bool) -> Self {
        self.reuse_port = on;
        self
    }

    /// The `listen(2)` backlog: how many completed connections wait for `accept`.
    /// The kernel caps it at `net.core.somaxconn`; Linux queues `backlog + 1`.
    #[must_use]
    pub fn backlog(mut self, backlog: i32) -> Self {
        self.backlog = backlog.max(0);
        self
    }

    /// Whether the listening socket is nonblocking (so `accept` may return `WouldBlock`).
    #[must_use]
    pub fn nonblocking(mut self, on: bool) -> Self {
        self.nonblocking = on;
        self
    }

    /// Whether accepted streams start nonblocking (set atomically by `accept4`).
    #[must_use]
    pub fn accept_nonblocking(mut self, on: bool) -> Self {
        self.accept_nonblocking = on;
        self
    }

    /// The configured backlog.
    pub fn get_backlog(&self) -> i32 {
        self.backlog
    }
}

/// A listening TCP socket: the passive-connection role.
///
/// ```
/// use wrapper_facade::{AcceptorOptions, InetAddr, SockAcceptor};
/// let acceptor = SockAcceptor::open(&InetAddr::loopback_v4(0), &AcceptorOptions::default().nonblocking(true))?;
/// // Nobody connected yet: a nonblocking accept passes WouldBlock through.
/// let err = acceptor.accept().unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct SockAcceptor {
    fd: OwnedFd,
    accept_flags: libc::c_int,
}

impl SockAcceptor {
    /// Binds and listens on `addr` with default options (port 0 picks a free port).
    pub fn bind(addr: &InetAddr) -> io::Result<SockAcceptor> {
        SockAcceptor::open(addr, &AcceptorOptions::default())
    }

    /// Creates the socket, sets the options, binds and listens. On any failure the socket is closed.
    pub fn open(addr: &InetAddr, opts: &AcceptorOptions) -> io::Result<SockAcceptor> {
        let fd = super::new_socket(addr, libc::SOCK_STREAM, opts.nonblocking)?;
        if opts.reuse_addr {
            super::setsockopt(
                fd.as_fd(),
                libc::SOL_SOCKET,
                libc::SO_REUSEADDR,
                1 as libc::c_int,
            )?;
        }
        if opts.reuse_port {
            super::setsockopt(
                fd.as_fd(),
                libc::SOL_SOCKET,
                libc::SO_REUSEPORT,
                1 as libc::c_int,
            )?;
        }
        super::bind(fd.as_fd(), addr)?;
        // SAFETY: listen takes plain integers on an open descriptor.
        cvt(unsafe { libc::listen(fd.as_raw_fd(), opts.backlog) })?;
        let mut accept_flags = libc::SOCK_CLOEXEC;
        if opts.accept_nonblocking {
            accept_flags |= libc::SOCK_NONBLOCK;
        }
        Ok(SockAcceptor { fd, accept_flags })
    }

    /// Accepts one connection and returns it with the peer's address.
    ///
    /// Uses `accept4` so that the new descriptor is close-on-exec from birth. EINTR is retried;
    /// on a nonblocking acceptor, `WouldBlock` means no connection is waiting.
    pub fn accept(&self) -> io::Result<(SockStream, InetAddr)> {
        self.accept_flags(self.accept_flags)
    }

    /// Accepts one connection as a nonblocking stream, whatever
    /// [`AcceptorOptions::accept_nonblocking`] said: what an event loop wants, in the one
    /// `accept4` call (no `fcntl` afterwards).
    pub fn accept_nonblocking(&self) -> io::Result<(SockStream, InetAddr)> {
        self.accept_flags(libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK)
    }

    fn accept_flags(&self, flags: libc::c_int) -> io::Result<(SockStream, InetAddr)> {
        // SAFETY: sockaddr_storage is plain old data; all-zero is valid.
        let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
        let mut len = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        let raw = cvt_r(|| {
            len = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            // SAFETY: `storage` is writable for `len` bytes; `len` is a valid in/out length.
            unsafe {
                libc::accept4(
                    self.fd.as_raw_fd(),
                    (&raw mut storage).cast(),
                    &mut len,
                    flags,
                )
            }
        })?;
        // SAFETY: accept4 returned a new descriptor that we alone own; owning it before decoding
        // the address means it is closed if decoding fails.
        let stream = SockStream::from_fd(unsafe { owned(raw) });
        let peer = InetAddr::from_storage(&storage, len)?;
        Ok((stream, peer))
    }

    /// The bound endpoint (with the actual port when bound to port 0).
    pub fn local_addr(&self) -> io::Result<InetAddr> {
        super::local_addr(self.fd.as_fd())
    }

    /// Switches the listening socket between blocking and nonblocking mode.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        sys::set_nonblocking(self.fd.as_fd(), nonblocking)
    }

    /// Fetches and clears the pending socket error.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        super::take_error(self.fd.as_fd())
    }
}

impl From<OwnedFd> for SockAcceptor {
    /// Adopts a descriptor that must be a listening stream socket (one bound by other code, such
    /// as a `std::net::TcpListener` or a socket inherited from a supervisor). Accepted streams are
    /// close-on-exec and blocking, as with [`AcceptorOptions::default`].
    fn from(fd: OwnedFd) -> Self {
        SockAcceptor {
            fd,
            accept_flags: libc::SOCK_CLOEXEC,
        }
    }
}

crate::impl_fd_traits!(SockAcceptor, fd);
