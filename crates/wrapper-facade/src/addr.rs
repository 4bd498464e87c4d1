//! [`InetAddr`]: an IPv4 or IPv6 endpoint that knows how to become a C `sockaddr` and back.
//!
//! The C API spreads one idea over `sockaddr_in`, `sockaddr_in6`, `sockaddr_storage`, `socklen_t`,
//! `htons`, `inet_pton` and `getaddrinfo`; here it is one value type.

use std::ffi::{CStr, CString};
use std::fmt;
use std::io;
use std::mem;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::str::FromStr;

use crate::error::Error;

/// An Internet endpoint: IPv4 or IPv6 address plus port.
///
/// ```
/// use wrapper_facade::InetAddr;
/// let a: InetAddr = "127.0.0.1:7".parse()?;
/// assert!(a.is_ipv4());
/// assert_eq!(a.port(), 7);
/// let b: InetAddr = "[::1]:8080".parse()?;
/// assert!(b.is_ipv6());
/// assert_eq!(InetAddr::loopback_v4(7), a);
/// # Ok::<(), wrapper_facade::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InetAddr(SocketAddr);

impl InetAddr {
    /// An IPv4 endpoint.
    pub fn new_v4(ip: Ipv4Addr, port: u16) -> InetAddr {
        InetAddr(SocketAddr::V4(SocketAddrV4::new(ip, port)))
    }

    /// An IPv6 endpoint (flow info and scope id zero).
    pub fn new_v6(ip: Ipv6Addr, port: u16) -> InetAddr {
        InetAddr(SocketAddr::V6(SocketAddrV6::new(ip, port, 0, 0)))
    }

    /// `127.0.0.1:port`.
    pub fn loopback_v4(port: u16) -> InetAddr {
        InetAddr::new_v4(Ipv4Addr::LOCALHOST, port)
    }

    /// `[::1]:port`.
    pub fn loopback_v6(port: u16) -> InetAddr {
        InetAddr::new_v6(Ipv6Addr::LOCALHOST, port)
    }

    /// `0.0.0.0:port`: every IPv4 interface.
    pub fn any_v4(port: u16) -> InetAddr {
        InetAddr::new_v4(Ipv4Addr::UNSPECIFIED, port)
    }

    /// Parses `ip:port` or `[ipv6]:port`.
    pub fn parse(s: &str) -> Result<InetAddr, Error> {
        s.parse()
    }

    /// Resolves `host` (a name or a literal) with `getaddrinfo(3)`, for TCP, and returns every
    /// address found, in the resolver's order, each with `port`.
    ///
    /// ```
    /// use wrapper_facade::InetAddr;
    /// let addrs = InetAddr::resolve("127.0.0.1", 80)?;
    /// assert_eq!(addrs, [InetAddr::loopback_v4(80)]);
    /// # Ok::<(), wrapper_facade::Error>(())
    /// ```
    pub fn resolve(host: &str, port: u16) -> Result<Vec<InetAddr>, Error> {
        let c_host = CString::new(host).map_err(|_| Error::AddrParse {
            input: host.to_owned(),
        })?;
        // SAFETY: addrinfo is plain old data; all-zero is the documented way to start hints.
        let mut hints: libc::addrinfo = unsafe { mem::zeroed() };
        hints.ai_family = libc::AF_UNSPEC;
        hints.ai_socktype = libc::SOCK_STREAM;
        let mut res: *mut libc::addrinfo = std::ptr::null_mut();
        // SAFETY: `c_host` is NUL-terminated, `hints` is initialised, `res` is valid for writes.
        let rc = unsafe { libc::getaddrinfo(c_host.as_ptr(), std::ptr::null(), &hints, &mut res) };
        if rc != 0 {
            let message = if rc == libc::EAI_SYSTEM {
                io::Error::last_os_error().to_string()
            } else {
                // SAFETY: gai_strerror returns a pointer to a static NUL-terminated string.
                unsafe { CStr::from_ptr(libc::gai_strerror(rc)) }
                    .to_string_lossy()
                    .into_owned()
            };
            return Err(Error::Resolve {
                host: host.to_owned(),
                code: rc,
                message,
            });
        }
        // The list is freed by this guard on every path out, the early ones included.
        struct List(*mut libc::addrinfo);
        impl Drop for List {
            fn drop(&mut self) {
                // SAFETY: the pointer came from a successful getaddrinfo and is freed once.
                unsafe { libc::freeaddrinfo(self.0) }
            }
        }
        let list = List(res);
        let mut out = Vec::new();
        let mut cur = list.0;
        while !cur.is_null() {
            // SAFETY: `cur` is a node of the list owned by `list`, alive until it drops.
            let ai = unsafe { &*cur };
            if !ai.ai_addr.is_null() {
                // SAFETY: `ai_addr` points to `ai_addrlen` bytes of a sockaddr of family `ai_family`.
                let parsed = unsafe { InetAddr::from_raw(ai.ai_addr, ai.ai_addrlen) };
                if let Some(mut a) = parsed {
                    a.set_port(port);
                    if !out.contains(&a) {
                        out.push(a);
                    }
                }
            }
            cur = ai.ai_next;
        }
        Ok(out)
    }

    /// The IP address.
    pub fn ip(&self) -> IpAddr {
        self.0.ip()
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.0.port()
    }

    /// Replaces the port.
    pub fn set_port(&mut self, port: u16) {
        self.0.set_port(port);
    }

    /// Whether this is an IPv4 endpoint.
    pub fn is_ipv4(&self) -> bool {
        self.0.is_ipv4()
    }

    /// Whether this is an IPv6 endpoint.
    pub fn is_ipv6(&self) -> bool {
        self.0.is_ipv6()
    }

    /// The same endpoint as a std address.
    pub fn to_socket_addr(&self) -> SocketAddr {
        self.0
    }

    /// The address family, `AF_INET` or `AF_INET6`.
    pub(crate) fn family(&self) -> libc::c_int {
        match self.0 {
            SocketAddr::V4(_) => libc::AF_INET,
            SocketAddr::V6(_) => libc::AF_INET6,
        }
    }

    /// Encodes the endpoint as a C `sockaddr_storage` and the length to pass with it.
    pub(crate) fn to_raw(self) -> (libc::sockaddr_storage, libc::socklen_t) {
        // SAFETY: sockaddr_storage is plain old data; all-zero is valid.
        let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
        let len = match self.0 {
            SocketAddr::V4(a) => {
                let sin = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: a.port().to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from_ne_bytes(a.ip().octets()),
                    },
                    sin_zero: [0; 8],
                };
                // SAFETY: sockaddr_storage is larger than and suitably aligned for sockaddr_in.
                unsafe { std::ptr::write((&raw mut storage).cast(), sin) };
                mem::size_of::<libc::sockaddr_in>()
            }
            SocketAddr::V6(a) => {
                let sin6 = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: a.port().to_be(),
                    sin6_flowinfo: a.flowinfo(),
                    sin6_addr: libc::in6_addr {
                        s6_addr: a.ip().octets(),
                    },
                    sin6_scope_id: a.scope_id(),
                };
                // SAFETY: sockaddr_storage is larger than and suitably aligned for sockaddr_in6.
                unsafe { std::ptr::write((&raw mut storage).cast(), sin6) };
                mem::size_of::<libc::sockaddr_in6>()
            }
        };
        (storage, len as libc::socklen_t)
    }

    /// Decodes a C socket address; `None` for families other than IPv4 and IPv6.
    ///
    /// # Safety
    /// `addr` must point to at least `len` readable bytes holding a socket address.
    pub(crate) unsafe fn from_raw(
        addr: *const libc::sockaddr,
        len: libc::socklen_t,
    ) -> Option<InetAddr> {
        let len = len as usize;
        if len < mem::size_of::<libc::sa_family_t>() {
            return None;
        }
        // SAFETY: the caller guarantees `len` readable bytes, and we checked that the family fits.
        let family = unsafe { (*addr).sa_family } as libc::c_int;
        match family {
            libc::AF_INET if len >= mem::size_of::<libc::sockaddr_in>() => {
                // SAFETY: the family and the length say this is a whole sockaddr_in; read unaligned to be safe.
                let sin = unsafe { std::ptr::read_unaligned(addr.cast::<libc::sockaddr_in>()) };
                Some(InetAddr::new_v4(
                    Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes()),
                    u16::from_be(sin.sin_port),
                ))
            }
            libc::AF_INET6 if len >= mem::size_of::<libc::sockaddr_in6>() => {
                // SAFETY: the family and the length say this is a whole sockaddr_in6; read unaligned to be safe.
                let sin6 = unsafe { std::ptr::read_unaligned(addr.cast::<libc::sockaddr_in6>()) };
                Some(InetAddr(SocketAddr::V6(SocketAddrV6::new(
                    Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                    u16::from_be(sin6.sin6_port),
                    sin6.sin6_flowinfo,
                    sin6.sin6_scope_id,
                ))))
            }
            _ => None,
        }
    }

    /// Decodes an address the kernel wrote into a `sockaddr_storage`.
    pub(crate) fn from_storage(
        storage: &libc::sockaddr_storage,
        len: libc::socklen_t,
    ) -> io::Result<InetAddr> {
        let len = len.min(mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t);
        // SAFETY: `storage` is a whole sockaddr_storage and `len` does not exceed it.
        unsafe { InetAddr::from_raw((storage as *const libc::sockaddr_storage).cast(), len) }
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the kernel returned a non-Internet address",
                )
            })
    }
}

impl FromStr for InetAddr {
    type Err = Error;

    fn from_str(s: &str) -> Result<InetAddr, Error> {
        s.parse::<SocketAddr>()
            .map(InetAddr)
            .map_err(|_| Error::AddrParse {
                input: s.to_owned(),
            })
    }
}

impl From<SocketAddr> for InetAddr {
    fn from(a: SocketAddr) -> Self {
        InetAddr(a)
    }
}

impl From<InetAddr> for SocketAddr {
    fn from(a: InetAddr) -> Self {
        a.0
    }
}

impl fmt::Debug for InetAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InetAddr({})", self.0)
    }
}

impl fmt::Display for InetAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(a: InetAddr) -> InetAddr {
        let (storage, len) = a.to_raw();
        InetAddr::from_storage(&storage, len).unwrap()
    }

    #[test]
    fn raw_round_trip_v4_and_v6() {
        for s in ["127.0.0.1:80", "10.1.2.3:65535", "[::1]:1", "[fe80::1%3]:9"] {
            let a: InetAddr = s.parse().unwrap();
            assert_eq!(round_trip(a), a, "{s}");
        }
    }

    #[test]
    fn network_byte_order_in_raw_form() {
        let (storage, _) = InetAddr::loopback_v4(0x1234).to_raw();
        // SAFETY: to_raw wrote a sockaddr_in at the start of the storage.
        let sin: libc::sockaddr_in = unsafe { std::ptr::read((&raw const storage).cast()) };
        assert_eq!(sin.sin_port.to_ne_bytes(), [0x12, 0x34]);
        assert_eq!(sin.sin_addr.s_addr.to_ne_bytes(), [127, 0, 0, 1]);
    }

    #[test]
    fn bad_text_is_an_error_value() {
        let e = "localhost".parse::<InetAddr>().unwrap_err();
        assert!(matches!(e, Error::AddrParse { input } if input == "localhost"));
        assert!(InetAddr::parse("1.2.3.4").is_err());
        assert!(InetAddr::resolve("a\0b", 1).is_err());
    }

    #[test]
    fn resolve_localhost_gives_loopback() {
        let addrs = InetAddr::resolve("localhost", 9).unwrap();
        assert!(!addrs.is_empty());
        assert!(addrs.iter().all(|a| a.ip().is_loopback() && a.port() == 9));
    }

    #[test]
    fn resolve_failure_carries_the_resolver_code() {
        // `.invalid` is reserved (RFC 2606) and never resolves.
        match InetAddr::resolve("no-such-host.invalid", 1) {
            Err(Error::Resolve { code, .. }) => assert_ne!(code, 0),
            other => panic!("expected a resolve error, got {other:?}"),
        }
    }
}
