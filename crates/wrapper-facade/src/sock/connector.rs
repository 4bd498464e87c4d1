//! [`SockConnector`]: the active-connection role: blocking, nonblocking-in-progress, or with a deadline.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use super::SockStream;
use crate::addr::InetAddr;
use crate::sys::{self, cvt};

/// The outcome of [`SockConnector::connect_nonblocking`].
#[derive(Debug)]
pub enum ConnectProgress {
    /// The connection completed at once (common on loopback).
    Connected(SockStream),
    /// The handshake is under way: wait until the stream is writable, then call
    /// [`SockConnector::complete`] to learn the outcome.
    InProgress(SockStream),
}

impl ConnectProgress {
    /// The stream, connected or still connecting.
    pub fn into_stream(self) -> SockStream {
        match self {
            ConnectProgress::Connected(s) | ConnectProgress::InProgress(s) => s,
        }
    }
}

/// Actively establishes TCP connections: a factory of connected [`SockStream`]s.
///
/// ```
/// use std::time::{Duration, Instant};
/// use wrapper_facade::{InetAddr, SockAcceptor, SockConnector};
/// let acceptor = SockAcceptor::bind(&InetAddr::loopback_v4(0))?;
/// let connector = SockConnector::default().nodelay(true);
/// let stream = connector.connect_deadline(&acceptor.local_addr()?, Instant::now() + Duration::from_secs(5))?;
/// assert!(stream.nodelay()?);
/// assert!(!stream.is_nonblocking()?); // back in blocking mode after the deadline connect
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct SockConnector {
    local: Option<InetAddr>,
    nodelay: bool,
}

impl SockConnector {
    /// Binds the connecting socket to `local` first (choose the source address or port).
    #[must_use]
    pub fn bind_local(mut self, local: InetAddr) -> Self {
        self.local = Some(local);
        self
    }

    /// Sets `TCP_NODELAY` on the new stream before connecting.
    #[must_use]
    pub fn nodelay(mut self, on: bool) -> Self {
        self.nodelay = on;
        self
    }

    /// Connects, blocking until the handshake completes or fails.
    ///
    /// A signal that interrupts `connect(2)` does not abort it: POSIX says the connection then
    /// completes asynchronously and calling `connect` again is an error (`EALREADY`), so instead of
    /// retrying we wait for writability and read `SO_ERROR`, as a careful C program would.
    pub fn connect(&self, addr: &InetAddr) -> io::Result<SockStream> {
        let fd = self.prepare(addr, false)?;
        match raw_connect(fd.as_fd(), addr) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                wait_connected(fd.as_fd(), None)?;
            }
            Err(e) => return Err(e),
        }
        Ok(SockStream::from_fd(fd))
    }

    /// Starts a nonblocking connect; the stream it returns is nonblocking.
    ///
    /// With [`ConnectProgress::InProgress`], register the stream for writability (it is a
    /// [`mio::event::Source`]) and call [`complete`](Self::complete) when it fires.
    pub fn connect_nonblocking(&self, addr: &InetAddr) -> io::Result<ConnectProgress> {
        let fd = self.prepare(addr, true)?;
        match raw_connect(fd.as_fd(), addr) {
            Ok(()) => Ok(ConnectProgress::Connected(SockStream::from_fd(fd))),
            Err(e)
                if e.raw_os_error() == Some(libc::EINPROGRESS)
                    || e.kind() == io::ErrorKind::Interrupted =>
            {
                Ok(ConnectProgress::InProgress(SockStream::from_fd(fd)))
            }
            Err(e) => Err(e),
        }
    }

    /// Finishes a nonblocking connect once the stream is writable: `Ok(())` if connected, the
    /// connection's error (such as `ConnectionRefused`) otherwise, `WouldBlock` if still in progress.
    pub fn complete(stream: &SockStream) -> io::Result<()> {
        if let Some(e) = stream.take_error()? {
            return Err(e);
        }
        match stream.peer_addr() {
            Ok(_) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => {
                Err(io::Error::from_raw_os_error(libc::EAGAIN))
            }
            Err(e) => Err(e),
        }
    }

    /// Connects, giving up with [`io::ErrorKind::TimedOut`] at `deadline`.
    ///
    /// The socket connects nonblocking and waits with `poll(2)` for the remaining time (signals do
    /// not shorten or extend it); the returned stream is switched back to blocking mode.
    /// On timeout or failure the half-open socket is closed.
    pub fn connect_deadline(&self, addr: &InetAddr, deadline: Instant) -> io::Result<SockStream> {
        seq!(APP => CONNECTOR, "connect_deadline(addr, deadline)");
        let connected = self.connect_deadline_traced(addr, deadline);
        match &connected {
            Ok(_) => seq!(reply CONNECTOR => APP, "Ok(SockStream)"),
            Err(e) => {
                seq!(fail CONNECTOR => APP, "Err({:?}): the OwnedFd dropped closes the socket", e.kind())
            }
        }
        connected
    }

    fn connect_deadline_traced(
        &self,
        addr: &InetAddr,
        deadline: Instant,
    ) -> io::Result<SockStream> {
        let fd = self.prepare(addr, true)?;
        seq!(CONNECTOR => KERNEL, "connect(fd, sockaddr)");
        match raw_connect(fd.as_fd(), addr) {
            Ok(()) => seq!(reply KERNEL => CONNECTOR, "0: connected at once"),
            Err(e)
                if e.raw_os_error() == Some(libc::EINPROGRESS)
                    || e.kind() == io::ErrorKind::Interrupted =>
            {
                seq!(reply KERNEL => CONNECTOR, "-1, EINPROGRESS");
                wait_connected(fd.as_fd(), Some(deadline))?;
            }
            Err(e) => return Err(e),
        }
        seq!(CONNECTOR => KERNEL, "fcntl(F_SETFL, blocking)");
        sys::set_nonblocking(fd.as_fd(), false)?;
        Ok(SockStream::from_fd(fd))
    }

    /// [`connect_deadline`](Self::connect_deadline) with a deadline `timeout` from now.
    pub fn connect_timeout(&self, addr: &InetAddr, timeout: Duration) -> io::Result<SockStream> {
        self.connect_deadline(addr, Instant::now() + timeout)
    }

    fn prepare(&self, addr: &InetAddr, nonblocking: bool) -> io::Result<OwnedFd> {
        seq!(
            CONNECTOR => KERNEL,
            "socket(SOCK_STREAM{} | SOCK_CLOEXEC)",
            if nonblocking { " | SOCK_NONBLOCK" } else { "" }
        );
        let fd = super::new_socket(addr, libc::SOCK_STREAM, nonblocking)?;
        seq!(reply KERNEL => CONNECTOR, "fd (now an OwnedFd)");
        if let Some(local) = &self.local {
            super::bind(fd.as_fd(), local)?;
        }
        if self.nodelay {
            seq!(CONNECTOR => KERNEL, "setsockopt(TCP_NODELAY, 1)");
            super::setsockopt(
                fd.as_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_NODELAY,
                1 as libc::c_int,
            )?;
        }
        Ok(fd)
    }
}

/// The participants' names in the sequence diagrams drawn from runs.
const APP: &str = "Application";
const CONNECTOR: &str = "SockConnector";
const KERNEL: &str = "Kernel (libc)";

fn raw_connect(fd: BorrowedFd<'_>, addr: &InetAddr) -> io::Result<()> {
    let (storage, len) = addr.to_raw();
    // SAFETY: `storage` holds a socket address of `len` bytes.
    cvt(unsafe { libc::connect(fd.as_raw_fd(), (&raw const storage).cast(), len) })?;
    Ok(())
}

/// Waits until a connect in progress finishes, then reports its `SO_ERROR`.
fn wait_connected(fd: BorrowedFd<'_>, deadline: Option<Instant>) -> io::Result<()> {
    seq!(CONNECTOR => KERNEL, "poll(fd, POLLOUT, the remaining time) (again on EINTR)");
    match sys::poll_until(fd, libc::POLLOUT, deadline)? {
        None => {
            seq!(reply KERNEL => CONNECTOR, "0: the deadline passed");
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "connect did not complete before the deadline",
            ))
        }
        Some(_) => {
            seq!(reply KERNEL => CONNECTOR, "writable");
            seq!(CONNECTOR => KERNEL, "getsockopt(SO_ERROR)");
            match super::take_error(fd)? {
                Some(e) => Err(e),
                None => Ok(()),
            }
        }
    }
}
