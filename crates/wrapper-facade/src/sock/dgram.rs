//! [`SockDgram`]: a UDP socket, connectionless datagrams with their source address.

use std::io;
use std::mem;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::Duration;

use crate::addr::InetAddr;
use crate::sys::{self, cvt, cvt_r};

/// A UDP socket bound to a local endpoint.
///
/// ```
/// use wrapper_facade::{InetAddr, SockDgram};
/// let a = SockDgram::bind(&InetAddr::loopback_v4(0))?;
/// let b = SockDgram::bind(&InetAddr::loopback_v4(0))?;
/// a.send_to(b"hello", &b.local_addr()?)?;
/// let mut buf = [0u8; 16];
/// let (n, from) = b.recv_from(&mut buf)?;
/// assert_eq!((&buf[..n], from), (&b"hello"[..], a.local_addr()?));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct SockDgram {
    fd: OwnedFd,
}

impl SockDgram {
    /// Opens a blocking UDP socket bound to `addr` (port 0 picks a free port).
    pub fn bind(addr: &InetAddr) -> io::Result<SockDgram> {
        let fd = super::new_socket(addr, libc::SOCK_DGRAM, false)?;
        super::bind(fd.as_fd(), addr)?;
        Ok(SockDgram { fd })
    }

    /// Fixes the default destination and filters incoming datagrams to that peer.
    pub fn connect(&self, addr: &InetAddr) -> io::Result<()> {
        let (storage, len) = addr.to_raw();
        // SAFETY: `storage` holds a socket address of `len` bytes; a UDP connect does not block.
        cvt(unsafe { libc::connect(self.fd.as_raw_fd(), (&raw const storage).cast(), len) })?;
        Ok(())
    }

    /// Sends one datagram to `addr`.
    pub fn send_to(&self, buf: &[u8], addr: &InetAddr) -> io::Result<usize> {
        let (storage, len) = addr.to_raw();
        let n = cvt_r(|| {
            // SAFETY: `buf` is readable for its length; `storage` holds an address of `len` bytes.
            unsafe {
                libc::sendto(
                    self.fd.as_raw_fd(),
                    buf.as_ptr().cast(),
                    buf.len(),
                    libc::MSG_NOSIGNAL,
                    (&raw const storage).cast(),
                    len,
                )
            }
        })?;
        Ok(n as usize)
    }

    /// Receives one datagram and its source; a datagram longer than `buf` is truncated.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, InetAddr)> {
        // SAFETY: sockaddr_storage is plain old data; all-zero is valid.
        let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
        let mut len = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        let n = cvt_r(|| {
            len = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            // SAFETY: `buf` is writable for its length; `storage` is writable for `len` bytes.
            unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    0,
                    (&raw mut storage).cast(),
                    &mut len,
                )
            }
        })?;
        Ok((n as usize, InetAddr::from_storage(&storage, len)?))
    }

    /// Sends one datagram to the connected peer.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        let n = cvt_r(|| {
            // SAFETY: `buf` is readable for `buf.len()` bytes.
            unsafe {
                libc::send(
                    self.fd.as_raw_fd(),
                    buf.as_ptr().cast(),
                    buf.len(),
                    libc::MSG_NOSIGNAL,
                )
            }
        })?;
        Ok(n as usize)
    }

    /// Receives one datagram from the connected peer.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let n = cvt_r(|| {
            // SAFETY: `buf` is writable for `buf.len()` bytes.
            unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) }
        })?;
        Ok(n as usize)
    }

    /// The bound endpoint.
    pub fn local_addr(&self) -> io::Result<InetAddr> {
        super::local_addr(self.fd.as_fd())
    }

    /// Switches between blocking and nonblocking mode.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        sys::set_nonblocking(self.fd.as_fd(), nonblocking)
    }

    /// Allows sending to broadcast addresses (`SO_BROADCAST`).
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        super::setsockopt(
            self.fd.as_fd(),
            libc::SOL_SOCKET,
            libc::SO_BROADCAST,
            on as libc::c_int,
        )
    }

    /// Bounds how long a blocking receive waits; on expiry the kernel reports EAGAIN (`WouldBlock`).
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        super::setsockopt(
            self.fd.as_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            sys::timeval(timeout)?,
        )
    }

    /// Requests a receive buffer size (`SO_RCVBUF`).
    pub fn set_recv_buffer_size(&self, size: usize) -> io::Result<()> {
        let v = size.min(libc::c_int::MAX as usize) as libc::c_int;
        super::setsockopt(self.fd.as_fd(), libc::SOL_SOCKET, libc::SO_RCVBUF, v)
    }

    /// The receive buffer size in force (`SO_RCVBUF`; Linux reports twice what was
    /// requested, the bookkeeping overhead included, capped by `net.core.rmem_max`).
    pub fn recv_buffer_size(&self) -> io::Result<usize> {
        let v: libc::c_int = super::getsockopt(self.fd.as_fd(), libc::SOL_SOCKET, libc::SO_RCVBUF)?;
        Ok(usize::try_from(v).unwrap_or(0))
    }

    /// Fetches and clears the pending socket error (such as an ICMP port-unreachable).
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        super::take_error(self.fd.as_fd())
    }
}

crate::impl_fd_traits!(SockDgram, fd);

/// Takes over a datagram socket bound elsewhere (one passed by socket activation, say); like
/// std's `UdpSocket`, a descriptor that is not a datagram socket makes its calls fail.
impl From<OwnedFd> for SockDgram {
    fn from(fd: OwnedFd) -> Self {
        SockDgram { fd }
    }
}
