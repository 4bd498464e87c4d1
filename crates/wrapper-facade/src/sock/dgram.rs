//! [`SockDgram`]: a UDP socket, connectionless datagrams with their source address.

use std::io;
use std::mem;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::ptr;
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

/// One datagram received by [`SockDgram::recv_counting_drops`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Received {
    /// Bytes of the datagram placed in the buffer.
    pub len: usize,
    /// Whether the datagram was longer than the buffer and cut (`MSG_TRUNC`).
    pub truncated: bool,
    /// The sender.
    pub from: InetAddr,
    /// The kernel's count of datagrams this socket has dropped since it was opened (its
    /// receive buffer full, a bad checksum), as of when this datagram was queued: Linux
    /// attaches it (`SO_RXQ_OVFL`) once the count is not zero, so `None` means none dropped
    /// before this one, or counting is off ([`SockDgram::set_drop_counting`]).
    pub drops: Option<u32>,
}

/// Room for the control messages of one receive: `SO_RXQ_OVFL`'s `u32` and a few others a
/// caller might have enabled (timestamps), 8-byte aligned as `cmsghdr` needs.
const CONTROL_WORDS: usize = 16;

/// The parts of one `recvmsg(2)`: the message header and what it points to (the sender's
/// address, one iovec, room for control messages). On the stack for
/// [`SockDgram::recv_counting_drops`]; boxed for io_uring's receive
/// ([`crate::uring::Op::RecvMsg`]), whose addresses must stay put while the kernel holds them.
pub(crate) struct MsgParts {
    msg: libc::msghdr,
    storage: libc::sockaddr_storage,
    iov: libc::iovec,
    control: [u64; CONTROL_WORDS],
}

impl MsgParts {
    pub(crate) fn new() -> MsgParts {
        MsgParts {
            // SAFETY: msghdr, sockaddr_storage and iovec are plain old data (integers and
            // pointers); all-zero is a valid value of each, and `aim` sets every pointer
            // before the kernel sees one.
            msg: unsafe { mem::zeroed() },
            // SAFETY: as above.
            storage: unsafe { mem::zeroed() },
            iov: libc::iovec {
                iov_base: ptr::null_mut(),
                iov_len: 0,
            },
            control: [0; CONTROL_WORDS],
        }
    }

    /// Points the header at these parts and at `buf`, and returns it: valid as long as
    /// neither `self` nor `buf` moves or is dropped.
    pub(crate) fn aim(&mut self, buf: &mut [u8]) -> *mut libc::msghdr {
        self.iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        self.msg.msg_name = (&raw mut self.storage).cast();
        self.msg.msg_namelen = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        self.msg.msg_iov = &raw mut self.iov;
        self.msg.msg_iovlen = 1;
        self.msg.msg_control = self.control.as_mut_ptr().cast();
        self.msg.msg_controllen = mem::size_of_val(&self.control) as _;
        self.msg.msg_flags = 0;
        &raw mut self.msg
    }

    /// What a receive of `len` bytes through the header [`aim`](Self::aim) returned reported:
    /// the sender, whether the datagram was cut, and the kernel's drop counter.
    pub(crate) fn received(&self, len: usize) -> io::Result<Received> {
        let msg = &raw const self.msg;
        let mut drops = None;
        // SAFETY: the kernel filled the header in a successful receive: `msg_control` and
        // `msg_controllen` describe the control messages it wrote into `self.control`, which
        // the CMSG_* macros walk without leaving it.
        let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(msg) };
        while !cmsg.is_null() {
            // SAFETY: a non-null header from CMSG_FIRSTHDR/CMSG_NXTHDR lies within `control`
            // (cmsghdr-aligned, since `control` is an array of u64).
            let header = unsafe { &*cmsg };
            // SAFETY: CMSG_LEN is arithmetic on its argument.
            let want = unsafe { libc::CMSG_LEN(mem::size_of::<u32>() as u32) } as usize;
            if header.cmsg_level == libc::SOL_SOCKET
                && header.cmsg_type == libc::SO_RXQ_OVFL
                && header.cmsg_len as usize >= want
            {
                // SAFETY: the header says its data holds at least a u32 (checked against
                // CMSG_LEN above), within `control`; read_unaligned needs no alignment.
                drops = Some(unsafe { ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<u32>()) });
            }
            // SAFETY: `cmsg` is a header within the control messages `msg` describes.
            cmsg = unsafe { libc::CMSG_NXTHDR(msg, cmsg) };
        }
        Ok(Received {
            len,
            truncated: self.msg.msg_flags & libc::MSG_TRUNC != 0,
            from: InetAddr::from_storage(&self.storage, self.msg.msg_namelen)?,
            drops,
        })
    }
}

impl std::fmt::Debug for MsgParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MsgParts").finish_non_exhaustive()
    }
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

    /// Asks the kernel to attach its drop counter to each datagram received (`SO_RXQ_OVFL`),
    /// which [`recv_counting_drops`](Self::recv_counting_drops) returns.
    pub fn set_drop_counting(&self, on: bool) -> io::Result<()> {
        super::setsockopt(
            self.fd.as_fd(),
            libc::SOL_SOCKET,
            libc::SO_RXQ_OVFL,
            on as libc::c_int,
        )
    }

    /// Whether the kernel attaches its drop counter (`SO_RXQ_OVFL`).
    pub fn drop_counting(&self) -> io::Result<bool> {
        let v: libc::c_int =
            super::getsockopt(self.fd.as_fd(), libc::SOL_SOCKET, libc::SO_RXQ_OVFL)?;
        Ok(v != 0)
    }

    /// Receives one datagram with its source and the kernel's drop counter (`recvmsg` with
    /// the `SO_RXQ_OVFL` control message); a datagram longer than `buf` is cut and says so.
    ///
    /// ```
    /// use wrapper_facade::{InetAddr, SockDgram};
    /// let a = SockDgram::bind(&InetAddr::loopback_v4(0))?;
    /// let b = SockDgram::bind(&InetAddr::loopback_v4(0))?;
    /// b.set_drop_counting(true)?;
    /// a.send_to(b"hello", &b.local_addr()?)?;
    /// let mut buf = [0u8; 16];
    /// let r = b.recv_counting_drops(&mut buf)?;
    /// assert_eq!((&buf[..r.len], r.from, r.drops), (&b"hello"[..], a.local_addr()?, None));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn recv_counting_drops(&self, buf: &mut [u8]) -> io::Result<Received> {
        let mut parts = MsgParts::new();
        let n = cvt_r(|| {
            let msg = parts.aim(buf);
            // SAFETY: `msg` points at the parts' address storage, one iovec describing `buf`
            // (writable for its length) and the parts' control buffer, all of which outlive
            // the call (`parts` does not move while `msg` is used).
            unsafe { libc::recvmsg(self.fd.as_raw_fd(), msg, 0) }
        })?;
        parts.received(n as usize)
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
