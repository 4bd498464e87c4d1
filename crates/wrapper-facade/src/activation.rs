//! What a service manager hands a daemon, and how a daemon gives up root.
//!
//! - Socket activation (systemd's `sd_listen_fds(3)` protocol): the manager binds the
//!   sockets (a privileged port such as 514 included), starts the daemon with them open from
//!   descriptor 3 on, and says so in `LISTEN_PID`, `LISTEN_FDS` and `LISTEN_FDNAMES`.
//!   [`listen_fds`] takes them, checked and as owned descriptors, with their kind and address.
//! - Dropping privileges: a daemon started as root binds what it must, then becomes an
//!   ordinary user before it reads any input ([`drop_privileges`]).

use std::ffi::CString;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use crate::sys::cvt;

/// The first descriptor the protocol passes (`SD_LISTEN_FDS_START`).
const LISTEN_FDS_START: i32 = 3;
/// More than any real unit passes; a bound on what a corrupt environment can make us touch.
const MAX_LISTEN_FDS: i32 = 1024;

/// The kind of an inherited socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketKind {
    /// `SOCK_STREAM` (TCP).
    Stream,
    /// `SOCK_DGRAM` (UDP).
    Datagram,
}

impl std::fmt::Display for SocketKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SocketKind::Stream => "stream",
            SocketKind::Datagram => "datagram",
        })
    }
}

/// A socket handed over by the service manager.
#[derive(Debug)]
pub struct InheritedSocket {
    /// The descriptor, close-on-exec from now on.
    pub fd: OwnedFd,
    /// Stream or datagram.
    pub kind: SocketKind,
    /// The address it is bound to.
    pub local: SocketAddr,
    /// Its name from `LISTEN_FDNAMES` (systemd's `FileDescriptorName=`), if given.
    pub name: Option<String>,
}

/// Takes the sockets passed by socket activation: none unless `LISTEN_PID` is this process
/// (so a child that inherited the variables does not take its parent's descriptors).
///
/// Every passed descriptor must be an open IPv4 or IPv6 stream or datagram socket; anything
/// else is an error naming the descriptor, not something to guess about. Each is made
/// close-on-exec.
pub fn listen_fds() -> io::Result<Vec<InheritedSocket>> {
    let env = |k: &str| std::env::var(k).ok();
    listen_fds_from(
        env("LISTEN_PID").as_deref(),
        env("LISTEN_FDS").as_deref(),
        env("LISTEN_FDNAMES").as_deref(),
    )
}

fn listen_fds_from(
    pid: Option<&str>,
    fds: Option<&str>,
    names: Option<&str>,
) -> io::Result<Vec<InheritedSocket>> {
    let bad = |m: String| io::Error::new(io::ErrorKind::InvalidInput, m);
    let (Some(pid), Some(fds)) = (pid, fds) else {
        return Ok(Vec::new());
    };
    let pid: u32 = pid
        .parse()
        .map_err(|_| bad(format!("LISTEN_PID `{pid}` is not a process id")))?;
    if pid != std::process::id() {
        return Ok(Vec::new());
    }
    let n: i32 = fds
        .parse()
        .ok()
        .filter(|n| (0..=MAX_LISTEN_FDS).contains(n))
        .ok_or_else(|| bad(format!("LISTEN_FDS `{fds}` is not 0 to {MAX_LISTEN_FDS}")))?;
    let names: Vec<&str> = names.map(|s| s.split(':').collect()).unwrap_or_default();
    let mut out = Vec::with_capacity(n as usize);
    for i in 0..n {
        let raw = LISTEN_FDS_START + i;
        // SAFETY: fcntl(F_GETFD) only queries; it fails with EBADF on a closed descriptor.
        cvt(unsafe { libc::fcntl(raw, libc::F_GETFD) }).map_err(|e| {
            bad(format!(
                "LISTEN_FDS names descriptor {raw}, which is not open: {e}"
            ))
        })?;
        // SAFETY: the descriptor is open (checked above) and the protocol hands it to this
        // process alone; nothing else in the process owns it, and from here `OwnedFd` does.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: F_SETFD with FD_CLOEXEC on an open descriptor we own.
        cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) })?;
        let kind = match socket_type(&fd) {
            Ok(libc::SOCK_STREAM) => SocketKind::Stream,
            Ok(libc::SOCK_DGRAM) => SocketKind::Datagram,
            Ok(t) => return Err(bad(format!("descriptor {raw} is a socket of type {t}"))),
            Err(e) => return Err(bad(format!("descriptor {raw} is not a socket: {e}"))),
        };
        let local = match kind {
            SocketKind::Stream => std::net::TcpListener::from(fd.try_clone()?).local_addr(),
            SocketKind::Datagram => std::net::UdpSocket::from(fd.try_clone()?).local_addr(),
        }
        .map_err(|e| bad(format!("descriptor {raw} is not an IP socket: {e}")))?;
        let name = names
            .get(i as usize)
            .filter(|s| !s.is_empty())
            .map(|s| s.to_string());
        out.push(InheritedSocket {
            fd,
            kind,
            local,
            name,
        });
    }
    Ok(out)
}

fn socket_type(fd: &OwnedFd) -> io::Result<i32> {
    let mut ty: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `ty` and `len` are valid for writes of a c_int, the size given in `len`.
    cvt(unsafe {
        libc::getsockopt(
            fd.as_fd().as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TYPE,
            (&mut ty as *mut libc::c_int).cast(),
            &mut len,
        )
    })?;
    Ok(ty)
}

/// A user and group to run as, looked up by name or given as numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The user id.
    pub uid: u32,
    /// The group id.
    pub gid: u32,
}

impl Identity {
    /// Looks up `user` (a name, or a number) and `group` (default: the user's primary group).
    pub fn lookup(user: &str, group: Option<&str>) -> io::Result<Identity> {
        let (uid, primary) = lookup_user(user)?;
        let gid = match group {
            Some(g) => lookup_group(g)?,
            None => primary,
        };
        Ok(Identity { uid, gid })
    }
}

fn not_found(what: &str, name: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("no {what} named `{name}`"))
}

fn lookup_user(name: &str) -> io::Result<(u32, u32)> {
    let c = CString::new(name).map_err(|_| not_found("user", name))?;
    let mut buf = vec![0u8; 16 * 1024];
    // SAFETY: an all-zero passwd is a valid value of the plain C struct; getpwnam_r fills it.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call: the name is NUL-terminated, `buf` has the
    // length passed, `pwd` and `result` are writable.
    let rc = unsafe {
        libc::getpwnam_r(
            c.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    if result.is_null() {
        // A number that is no user's name is taken as a uid, with gid = uid.
        return name
            .parse::<u32>()
            .map(|n| (n, n))
            .map_err(|_| not_found("user", name));
    }
    Ok((pwd.pw_uid, pwd.pw_gid))
}

fn lookup_group(name: &str) -> io::Result<u32> {
    let c = CString::new(name).map_err(|_| not_found("group", name))?;
    let mut buf = vec![0u8; 16 * 1024];
    // SAFETY: an all-zero group is a valid value of the plain C struct; getgrnam_r fills it.
    let mut grp: libc::group = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::group = std::ptr::null_mut();
    // SAFETY: as in `lookup_user`.
    let rc = unsafe {
        libc::getgrnam_r(
            c.as_ptr(),
            &mut grp,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    if result.is_null() {
        return name.parse::<u32>().map_err(|_| not_found("group", name));
    }
    Ok(grp.gr_gid)
}

/// Becomes `who` for good: supplementary groups replaced by its group, then the group id,
/// then the user id (in that order: after `setuid` the others would be refused). glibc
/// applies each change to every thread of the process.
///
/// Afterwards it checks that root cannot be regained (`setuid(0)` must fail unless `who` is
/// root), so a half-done drop is an error, never silently ignored.
pub fn drop_privileges(who: &Identity) -> io::Result<()> {
    let gid = who.gid as libc::gid_t;
    // SAFETY: one valid gid_t for a list of length 1.
    cvt(unsafe { libc::setgroups(1, &gid) })?;
    // SAFETY: setgid/setuid take plain ids and have no memory effects.
    cvt(unsafe { libc::setgid(gid) })?;
    // SAFETY: as above.
    cvt(unsafe { libc::setuid(who.uid as libc::uid_t) })?;
    // SAFETY: as above; this call is expected to fail.
    if who.uid != 0 && unsafe { libc::setuid(0) } == 0 {
        return Err(io::Error::other(
            "root could be regained after dropping privileges",
        ));
    }
    // SAFETY: getuid/getgid cannot fail and have no preconditions.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    if uid != who.uid || gid != who.gid {
        return Err(io::Error::other(format!(
            "running as uid {uid} gid {gid}, not {} {}",
            who.uid, who.gid
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_kinds_read_as_words_in_messages() {
        assert_eq!(SocketKind::Stream.to_string(), "stream");
        assert_eq!(SocketKind::Datagram.to_string(), "datagram");
    }

    #[test]
    fn no_variables_or_another_pid_means_no_sockets() {
        assert!(listen_fds_from(None, None, None).unwrap().is_empty());
        let other = (std::process::id() + 1).to_string();
        assert!(
            listen_fds_from(Some(&other), Some("2"), None)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn malformed_variables_are_errors() {
        let me = std::process::id().to_string();
        for (pid, n) in [
            ("x", "1"),
            (me.as_str(), "-1"),
            (me.as_str(), "99999"),
            (me.as_str(), "two"),
        ] {
            assert!(
                listen_fds_from(Some(pid), Some(n), None).is_err(),
                "{pid} {n}"
            );
        }
    }

    #[test]
    fn users_and_groups_are_looked_up_by_name_or_number() {
        let root = Identity::lookup("root", None).unwrap();
        assert_eq!(root, Identity { uid: 0, gid: 0 });
        assert_eq!(
            Identity::lookup("4242", Some("4343")).unwrap(),
            Identity {
                uid: 4242,
                gid: 4343
            }
        );
        let e = Identity::lookup("no-such-user-here", None).unwrap_err();
        assert_eq!(e.to_string(), "no user named `no-such-user-here`");
        assert!(Identity::lookup("a\0b", None).is_err());
    }
}
