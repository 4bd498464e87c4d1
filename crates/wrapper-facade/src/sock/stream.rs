//! [`SockStream`]: a connected TCP stream, the data-transfer role of a socket.

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::addr::InetAddr;
use crate::error::TransferError;
use crate::sys::{self, cvt_r};

/// The most iovecs one call passes to the kernel (Linux's `IOV_MAX`); the rest wait for the next call.
const MAX_IOV: usize = 1024;

/// A connected stream socket (TCP), obtained from a [`SockAcceptor`](crate::SockAcceptor) or a
/// [`SockConnector`](crate::SockConnector).
///
/// Every operation retries EINTR, passes `WouldBlock` through on a nonblocking stream, and keeps the
/// errno of any other failure. Sends use `MSG_NOSIGNAL`, so a peer that went away yields a
/// `BrokenPipe` error instead of a process-killing SIGPIPE.
/// On a *blocking* stream whose read or write timeout expires, the kernel's EAGAIN is reported as
/// [`io::ErrorKind::TimedOut`], because "would block" makes no sense for a blocking call.
///
/// ```
/// use wrapper_facade::{InetAddr, SockAcceptor, SockConnector};
/// let acceptor = SockAcceptor::bind(&InetAddr::loopback_v4(0))?;
/// let client = SockConnector::default().connect(&acceptor.local_addr()?)?;
/// let (server, peer) = acceptor.accept()?;
/// assert_eq!(peer, client.local_addr()?);
/// client.send_n(b"ping")?;
/// let mut buf = [0u8; 4];
/// server.recv_n(&mut buf)?;
/// assert_eq!(&buf, b"ping");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct SockStream {
    fd: OwnedFd,
    /// Whether a send or receive timeout may be set, so that EAGAIN may mean "timed out".
    /// False for a socket this crate created and nobody set a timeout on: then EAGAIN is
    /// passed through without asking the kernel whether the socket blocks (an `fcntl` that
    /// would otherwise follow every `WouldBlock` of a nonblocking stream in an event loop).
    timeouts: AtomicBool,
}

impl SockStream {
    /// A stream on a socket this crate just created (no timeout set yet).
    pub(crate) fn from_fd(fd: OwnedFd) -> SockStream {
        SockStream {
            fd,
            timeouts: AtomicBool::new(false),
        }
    }

    /// Sends what the kernel takes of `buf` now, returning the count.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        let n = cvt_r(|| {
            // SAFETY: `buf` is readable for `buf.len()` bytes for the whole call.
            unsafe {
                libc::send(
                    self.fd.as_raw_fd(),
                    buf.as_ptr().cast(),
                    buf.len(),
                    libc::MSG_NOSIGNAL,
                )
            }
        })
        .map_err(|e| self.timeout_error(e, "send"))?;
        Ok(n as usize)
    }

    /// Receives what is available into `buf`, returning the count; `Ok(0)` is end of stream.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let n = cvt_r(|| {
            // SAFETY: `buf` is writable for `buf.len()` bytes for the whole call.
            unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) }
        })
        .map_err(|e| self.timeout_error(e, "recv"))?;
        Ok(n as usize)
    }

    /// Sends all of `buf`, looping over short sends.
    ///
    /// On failure the [`TransferError`] says how many bytes went out before it.
    pub fn send_n(&self, buf: &[u8]) -> Result<(), TransferError> {
        let mut done = 0;
        while done < buf.len() {
            match self.send(&buf[done..]) {
                Ok(0) => {
                    return Err(TransferError::new(
                        done,
                        buf.len(),
                        io::ErrorKind::WriteZero.into(),
                    ));
                }
                Ok(n) => done += n,
                Err(e) => return Err(TransferError::new(done, buf.len(), e)),
            }
        }
        Ok(())
    }

    /// Fills all of `buf`, looping over short receives.
    ///
    /// If the peer closes first, the error is [`io::ErrorKind::UnexpectedEof`] and
    /// [`TransferError::transferred`] says how many bytes of `buf` are valid.
    pub fn recv_n(&self, buf: &mut [u8]) -> Result<(), TransferError> {
        let mut done = 0;
        let len = buf.len();
        while done < len {
            match self.recv(&mut buf[done..]) {
                Ok(0) => {
                    return Err(TransferError::new(
                        done,
                        len,
                        io::Error::new(io::ErrorKind::UnexpectedEof, "peer closed the stream"),
                    ));
                }
                Ok(n) => done += n,
                Err(e) => return Err(TransferError::new(done, len, e)),
            }
        }
        Ok(())
    }

    /// Gathers several buffers into one `sendmsg(2)` (at most 1024 of them per call).
    pub fn send_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let count = bufs.len().min(MAX_IOV);
        // SAFETY: msghdr is plain old data; all-zero is a valid "no address, no control" header.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        // IoSlice is guaranteed ABI-compatible with iovec on Unix; sendmsg only reads through it.
        msg.msg_iov = bufs.as_ptr().cast_mut().cast();
        msg.msg_iovlen = count as _;
        let n = cvt_r(|| {
            // SAFETY: `msg` points to `count` valid iovecs that outlive the call.
            unsafe { libc::sendmsg(self.fd.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) }
        })
        .map_err(|e| self.timeout_error(e, "send"))?;
        Ok(n as usize)
    }

    /// Scatters one receive over several buffers with `readv(2)` (at most 1024 per call).
    pub fn recv_vectored(&self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        let count = bufs.len().min(MAX_IOV);
        let n = cvt_r(|| {
            // SAFETY: IoSliceMut is ABI-compatible with iovec; each covers writable memory that
            // outlives the call, and `count` does not exceed the slice.
            unsafe {
                libc::readv(
                    self.fd.as_raw_fd(),
                    bufs.as_mut_ptr().cast(),
                    count as libc::c_int,
                )
            }
        })
        .map_err(|e| self.timeout_error(e, "recv"))?;
        Ok(n as usize)
    }

    /// Half- or fully closes the connection (`shutdown(2)`); the descriptor stays open until drop.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        let how = match how {
            Shutdown::Read => libc::SHUT_RD,
            Shutdown::Write => libc::SHUT_WR,
            Shutdown::Both => libc::SHUT_RDWR,
        };
        // SAFETY: shutdown takes plain integers on an open descriptor.
        sys::cvt(unsafe { libc::shutdown(self.fd.as_raw_fd(), how) })?;
        Ok(())
    }

    /// The local endpoint.
    pub fn local_addr(&self) -> io::Result<InetAddr> {
        super::local_addr(self.fd.as_fd())
    }

    /// The remote endpoint; fails with `NotConnected` while a nonblocking connect is in progress.
    pub fn peer_addr(&self) -> io::Result<InetAddr> {
        super::peer_addr(self.fd.as_fd())
    }

    /// Fetches and clears the pending socket error; how a nonblocking connect reports its outcome.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        super::take_error(self.fd.as_fd())
    }

    /// Switches between blocking and nonblocking mode.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        sys::set_nonblocking(self.fd.as_fd(), nonblocking)
    }

    /// Whether the stream is in nonblocking mode.
    pub fn is_nonblocking(&self) -> io::Result<bool> {
        sys::is_nonblocking(self.fd.as_fd())
    }

    /// Disables (`true`) or enables Nagle's algorithm (`TCP_NODELAY`).
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        super::setsockopt(
            self.fd.as_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            nodelay as libc::c_int,
        )
    }

    /// Whether `TCP_NODELAY` is set.
    pub fn nodelay(&self) -> io::Result<bool> {
        let v: libc::c_int =
            super::getsockopt(self.fd.as_fd(), libc::IPPROTO_TCP, libc::TCP_NODELAY)?;
        Ok(v != 0)
    }

    /// Enables or disables TCP keep-alive probes (`SO_KEEPALIVE`).
    pub fn set_keepalive(&self, keepalive: bool) -> io::Result<()> {
        super::setsockopt(
            self.fd.as_fd(),
            libc::SOL_SOCKET,
            libc::SO_KEEPALIVE,
            keepalive as libc::c_int,
        )
    }

    /// Whether `SO_KEEPALIVE` is set.
    pub fn keepalive(&self) -> io::Result<bool> {
        let v: libc::c_int =
            super::getsockopt(self.fd.as_fd(), libc::SOL_SOCKET, libc::SO_KEEPALIVE)?;
        Ok(v != 0)
    }

    /// Sets `SO_LINGER`: `Some(d)` makes close wait up to `d` (whole seconds) for unsent data;
    /// `Some(Duration::ZERO)` makes close reset the connection; `None` restores the default.
    pub fn set_linger(&self, linger: Option<Duration>) -> io::Result<()> {
        let value = libc::linger {
            l_onoff: linger.is_some() as libc::c_int,
            l_linger: linger.map_or(0, |d| {
                d.as_secs().min(libc::c_int::MAX as u64) as libc::c_int
            }),
        };
        super::setsockopt(self.fd.as_fd(), libc::SOL_SOCKET, libc::SO_LINGER, value)
    }

    /// The `SO_LINGER` setting.
    pub fn linger(&self) -> io::Result<Option<Duration>> {
        let v: libc::linger =
            super::getsockopt(self.fd.as_fd(), libc::SOL_SOCKET, libc::SO_LINGER)?;
        Ok((v.l_onoff != 0).then(|| Duration::from_secs(v.l_linger as u64)))
    }

    /// Requests a send buffer size (`SO_SNDBUF`); Linux doubles it for bookkeeping.
    pub fn set_send_buffer_size(&self, size: usize) -> io::Result<()> {
        let v = size.min(libc::c_int::MAX as usize) as libc::c_int;
        super::setsockopt(self.fd.as_fd(), libc::SOL_SOCKET, libc::SO_SNDBUF, v)
    }

    /// The send buffer size the kernel uses.
    pub fn send_buffer_size(&self) -> io::Result<usize> {
        let v: libc::c_int = super::getsockopt(self.fd.as_fd(), libc::SOL_SOCKET, libc::SO_SNDBUF)?;
        Ok(v as usize)
    }

    /// Requests a receive buffer size (`SO_RCVBUF`); Linux doubles it for bookkeeping.
    pub fn set_recv_buffer_size(&self, size: usize) -> io::Result<()> {
        let v = size.min(libc::c_int::MAX as usize) as libc::c_int;
        super::setsockopt(self.fd.as_fd(), libc::SOL_SOCKET, libc::SO_RCVBUF, v)
    }

    /// The receive buffer size the kernel uses.
    pub fn recv_buffer_size(&self) -> io::Result<usize> {
        let v: libc::c_int = super::getsockopt(self.fd.as_fd(), libc::SOL_SOCKET, libc::SO_RCVBUF)?;
        Ok(v as usize)
    }

    /// Bounds how long a blocking receive waits (`SO_RCVTIMEO`); `None` waits forever.
    /// A zero duration is rejected with `InvalidInput`.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        super::setsockopt(
            self.fd.as_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            sys::timeval(timeout)?,
        )?;
        self.timeouts.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// The receive timeout.
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        let tv: libc::timeval =
            super::getsockopt(self.fd.as_fd(), libc::SOL_SOCKET, libc::SO_RCVTIMEO)?;
        Ok(sys::from_timeval(tv))
    }

    /// Bounds how long a blocking send waits (`SO_SNDTIMEO`); `None` waits forever.
    /// A zero duration is rejected with `InvalidInput`.
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        super::setsockopt(
            self.fd.as_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDTIMEO,
            sys::timeval(timeout)?,
        )?;
        self.timeouts.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// The send timeout.
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        let tv: libc::timeval =
            super::getsockopt(self.fd.as_fd(), libc::SOL_SOCKET, libc::SO_SNDTIMEO)?;
        Ok(sys::from_timeval(tv))
    }

    /// On a blocking socket, EAGAIN means an `SO_RCVTIMEO`/`SO_SNDTIMEO` expired: say so.
    fn timeout_error(&self, e: io::Error, op: &str) -> io::Error {
        if e.raw_os_error() == Some(libc::EAGAIN)
            && self.timeouts.load(Ordering::Relaxed)
            && !self.is_nonblocking().unwrap_or(true)
        {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{op} timed out (socket timeout expired, errno EAGAIN)"),
            )
        } else {
            e
        }
    }
}

impl From<OwnedFd> for SockStream {
    /// Adopts a descriptor that must be a connected stream socket. A timeout may have been set
    /// on it before, so EAGAIN on it is checked as on a stream whose timeouts were set here.
    fn from(fd: OwnedFd) -> Self {
        SockStream {
            fd,
            timeouts: AtomicBool::new(true),
        }
    }
}

impl Read for SockStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.recv(buf)
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.recv_vectored(bufs)
    }
}

impl Read for &SockStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.recv(buf)
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.recv_vectored(bufs)
    }
}

impl Write for SockStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.send(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.send_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for &SockStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.send(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.send_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

crate::impl_fd_traits!(SockStream, fd);
