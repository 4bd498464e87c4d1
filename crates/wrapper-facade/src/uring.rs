//! io_uring behind a safe facade: a [`Ring`] that owns every buffer, address and timespec of
//! an operation from the moment its submission entry is pushed until its final completion is
//! reaped, so nothing the kernel reads or writes can be freed or moved while it does.
//!
//! The `io-uring` crate gives the rings; pushing an entry is `unsafe` there because the entry
//! holds raw pointers. Here each [`Op`] carries its resources by value, [`Ring::push`] moves
//! them into the ring's table of operations in flight (heap allocations whose addresses do not
//! change when the table moves), and [`Ring::reap`] hands them back in the [`Cqe`] that ends
//! the operation. Dropping the ring cancels what is still in flight and waits for it; if the
//! kernel never answers, the resources are leaked rather than freed under it.
//!
//! ```
//! use std::os::fd::AsRawFd;
//! use std::os::unix::net::UnixStream;
//! use wrapper_facade::uring::{Op, Ring};
//!
//! let (a, b) = UnixStream::pair().unwrap();
//! let mut ring = Ring::new(8).unwrap();
//! ring.push(1, Op::Write { fd: a.as_raw_fd(), buf: b"ping".to_vec() }).unwrap();
//! ring.push(2, Op::Read { fd: b.as_raw_fd(), buf: vec![0; 16] }).unwrap();
//! let mut done = Vec::new();
//! while done.len() < 2 {
//!     ring.submit_and_wait(1).unwrap();
//!     ring.reap(&mut done);
//! }
//! let read = done.iter().find(|c| c.user_data == 2).unwrap();
//! assert_eq!(read.result, 4);
//! let Some(Op::Read { buf, .. }) = &read.op else { panic!() };
//! assert_eq!(&buf[..4], b"ping");
//! ```

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::io;
use std::mem;
use std::net::SocketAddr;
use std::ops::Deref;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::rc::Rc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use io_uring::{IoUring, cqueue, opcode, squeue, types};

use crate::sock::{MsgParts, Received};

/// Why a ring could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// The kernel has no io_uring, or refuses it to this process (`io_uring_disabled` sysctl,
    /// a seccomp filter, a container policy): `ENOSYS`, `EPERM` or `EACCES`.
    #[error(
        "io_uring is unavailable here (errno {errno}: {name}; kernel without io_uring, io_uring_disabled sysctl or seccomp)"
    )]
    Unsupported {
        /// The errno of `io_uring_setup`.
        errno: i32,
        /// Its symbolic name.
        name: &'static str,
    },
    /// The kernel refused these ring parameters (e.g. `EINVAL` for an entry count above its
    /// limit, `ENOMEM` when locked memory runs out).
    #[error("io_uring_setup refused {entries} entries (errno {errno}: {name})")]
    Refused {
        /// The requested submission queue size.
        entries: u32,
        /// The errno of `io_uring_setup`.
        errno: i32,
        /// Its symbolic name.
        name: &'static str,
    },
}

impl SetupError {
    /// Classifies the error of `io_uring_setup` for a ring of `entries` entries.
    ///
    /// ```
    /// use std::io;
    /// use wrapper_facade::uring::SetupError;
    ///
    /// let e = SetupError::from_io(&io::Error::from_raw_os_error(38), 8);
    /// assert!(matches!(e, SetupError::Unsupported { errno: 38, name: "ENOSYS" }));
    /// ```
    pub fn from_io(err: &io::Error, entries: u32) -> SetupError {
        let errno = err.raw_os_error().unwrap_or(0);
        let name = errno_name(errno);
        match errno {
            libc::ENOSYS | libc::EPERM | libc::EACCES => SetupError::Unsupported { errno, name },
            _ => SetupError::Refused {
                entries,
                errno,
                name,
            },
        }
    }

    /// The errno the kernel answered.
    pub fn errno(&self) -> i32 {
        match self {
            SetupError::Unsupported { errno, .. } | SetupError::Refused { errno, .. } => *errno,
        }
    }
}

fn errno_name(errno: i32) -> &'static str {
    match errno {
        libc::ENOSYS => "ENOSYS",
        libc::EPERM => "EPERM",
        libc::EACCES => "EACCES",
        libc::EINVAL => "EINVAL",
        libc::ENOMEM => "ENOMEM",
        libc::EFAULT => "EFAULT",
        libc::EMFILE => "EMFILE",
        libc::ENFILE => "ENFILE",
        _ => "unknown errno",
    }
}

/// Refuses io_uring to the calling thread and every thread it starts from now on: a seccomp
/// filter makes `io_uring_setup`, `io_uring_enter` and `io_uring_register` fail with `EPERM`,
/// as a container runtime's default profile does. Other threads are not affected; the filter
/// cannot be lifted. This is how the fallback paths (a proactor that cannot be built, logd
/// falling back to the reactor) are tested on a kernel that has io_uring.
pub fn refuse_in_this_thread() -> io::Result<()> {
    use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, TargetArch};
    let arch = TargetArch::try_from(std::env::consts::ARCH)
        .map_err(|e| io::Error::new(io::ErrorKind::Unsupported, e.to_string()))?;
    let rules = [
        libc::SYS_io_uring_setup,
        libc::SYS_io_uring_enter,
        libc::SYS_io_uring_register,
    ]
    .into_iter()
    .map(|nr| (nr, Vec::new()))
    .collect();
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .map_err(|e| io::Error::other(e.to_string()))?;
    let program: BpfProgram = filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| io::Error::other(e.to_string()))?;
    seccompiler::apply_filter(&program).map_err(|e| io::Error::other(e.to_string()))
}

/// The errno of a cancelled operation's completion.
pub const ECANCELED: i32 = libc::ECANCELED;
/// The errno of a multishot receive that ran out of provided buffers.
pub const ENOBUFS: i32 = libc::ENOBUFS;
/// The errno of an expired [`Op::Timeout`].
pub const ETIME: i32 = libc::ETIME;

/// How to set a ring up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingParams {
    /// Submission queue entries (the kernel rounds up to a power of two, at most 32768).
    pub entries: u32,
    /// Ask for `IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN` (completions are
    /// processed only when the owning thread enters the kernel); without them if refused.
    pub defer_taskrun: bool,
    /// Ask for `IORING_SETUP_SQPOLL` with this idle time in milliseconds: a kernel thread
    /// polls the submission queue, so submitting needs no system call while it is awake.
    /// Takes precedence over `defer_taskrun` (the kernel refuses the two together).
    pub sqpoll: Option<u32>,
}

impl RingParams {
    /// `entries` entries, no special setup flags.
    pub fn new(entries: u32) -> Self {
        RingParams {
            entries,
            defer_taskrun: false,
            sqpoll: None,
        }
    }
}

/// One asynchronous operation with the resources it lends the kernel.
#[derive(Debug)]
#[non_exhaustive]
pub enum Op {
    /// Accept a connection on the listening socket `fd` (`accept4` with `SOCK_CLOEXEC`);
    /// the result is the new descriptor, owned by whoever reaps it ([`Cqe::take_fd`]).
    Accept {
        /// The listening socket.
        fd: RawFd,
    },
    /// Accept connections on `fd` until cancelled or failed, one completion each
    /// (`IORING_ACCEPT_MULTISHOT`); intermediate completions have [`Cqe::more`] set.
    AcceptMulti {
        /// The listening socket.
        fd: RawFd,
    },
    /// Receive on `fd` until cancelled, end of stream or error, into buffers the kernel picks
    /// from the provided-buffer group `group` ([`Ring::provide_buffers`]); each chunk is lent
    /// to the application in place as a [`ProvidedBuf`] ([`Cqe::data`]), and its buffer goes
    /// back to the kernel when that is dropped.
    RecvMulti {
        /// The socket.
        fd: RawFd,
        /// The provided-buffer group.
        group: u16,
    },
    /// Connect the socket `fd` to `addr`.
    Connect {
        /// The socket.
        fd: RawFd,
        /// The peer.
        addr: SocketAddr,
    },
    /// Read into `buf` (its length is the most read); the result is the count read.
    Read {
        /// The descriptor.
        fd: RawFd,
        /// The buffer, handed back in the completion.
        buf: Vec<u8>,
    },
    /// Write all of `buf` (or some: the result is the count written).
    Write {
        /// The descriptor.
        fd: RawFd,
        /// The bytes, handed back in the completion.
        buf: Vec<u8>,
    },
    /// Send all of `buf` (or some: the result is the count sent) on the socket `fd`, with
    /// `MSG_NOSIGNAL` (a closed peer is `EPIPE`, never `SIGPIPE`); cheaper than
    /// [`Op::Write`] on a socket, whose path goes through the file layer first.
    Send {
        /// The socket.
        fd: RawFd,
        /// The bytes, handed back in the completion.
        buf: Vec<u8>,
    },
    /// Send the bytes of a lent provided buffer (as [`Op::Send`]), without copying them out:
    /// the buffer goes back to the kernel's ring once the completion hands it back and it is
    /// dropped, so a received chunk can be echoed or forwarded from where the kernel put it.
    SendProvided {
        /// The socket.
        fd: RawFd,
        /// The bytes, handed back in the completion.
        buf: ProvidedBuf,
    },
    /// Receive one datagram on the socket `fd` into `buf` (`recvmsg(2)`): the completion's
    /// result is its length in `buf`, and [`Cqe::received`] says who sent it, whether it was
    /// cut to fit, and the kernel's drop counter (`SO_RXQ_OVFL`, when turned on).
    RecvMsg {
        /// The socket.
        fd: RawFd,
        /// The buffer, handed back in the completion.
        buf: Vec<u8>,
    },
    /// Completes with `-ETIME` once `after` has passed.
    Timeout {
        /// The delay.
        after: Duration,
    },
    /// Asks the kernel to cancel the operation submitted with `target` as its user data.
    Cancel {
        /// The user data of the operation to cancel.
        target: u64,
    },
    /// Completes at once with result 0: a completion posted by the application itself.
    Nop,
}

/// The heap-pinned form of an operation's resources while the kernel may use them.
#[derive(Debug)]
enum Held {
    Plain(Op),
    Connect(Op, Box<libc::sockaddr_storage>),
    Timeout(Op, Box<types::Timespec>),
    RecvMsg(Op, Box<MsgParts>),
}

impl Held {
    fn into_op(self) -> Op {
        match self {
            Held::Plain(op)
            | Held::Connect(op, _)
            | Held::Timeout(op, _)
            | Held::RecvMsg(op, _) => op,
        }
    }
}

/// A completion as reaped from the ring.
#[derive(Debug)]
pub struct Cqe {
    /// The user data the operation was pushed with.
    pub user_data: u64,
    /// The kernel's result: non-negative on success, `-errno` on failure.
    pub result: i32,
    /// Whether more completions of this (multishot) operation follow.
    pub more: bool,
    /// The operation, with its buffer, when this completion ends it; `None` for an
    /// intermediate completion of a multishot operation, or a completion whose user data the
    /// ring does not know.
    pub op: Option<Op>,
    /// For [`Op::RecvMulti`]: the bytes received, in the provided buffer the kernel picked,
    /// lent until the [`ProvidedBuf`] is dropped.
    pub data: Option<ProvidedBuf>,
    /// For a successful [`Op::RecvMsg`]: the datagram's sender, whether it was cut, and the
    /// kernel's drop counter.
    pub received: Option<Received>,
    /// The descriptor a successful accept created, owned from the moment it is reaped.
    fd: Option<OwnedFd>,
}

impl Cqe {
    /// The result as `io::Result`: `Ok(n)` or the errno as an error.
    pub fn io_result(&self) -> io::Result<u32> {
        if self.result < 0 {
            Err(io::Error::from_raw_os_error(-self.result))
        } else {
            Ok(self.result as u32)
        }
    }

    /// For a successful [`Op::Accept`] or [`Op::AcceptMulti`] completion, the accepted
    /// descriptor, now owned by the caller (`None` for anything else, or once taken).
    /// A descriptor nobody takes is closed with the `Cqe`.
    pub fn take_fd(&mut self) -> Option<OwnedFd> {
        self.fd.take()
    }
}

/// Why [`Ring::push`] refused an operation; the operation is handed back.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PushError {
    /// An operation with this user data is already in flight.
    #[error("user data {user_data:#x} is already in flight")]
    Duplicate {
        /// The user data.
        user_data: u64,
        /// The refused operation.
        op: Op,
    },
    /// `u64::MAX` is the ring's own user data (for the cancellations it sends when dropped).
    #[error("user data u64::MAX is reserved for the ring")]
    Reserved {
        /// The refused operation.
        op: Op,
    },
    /// The submission queue was full and submitting to make room failed.
    #[error("submission queue full and submit failed")]
    Submit {
        /// The refused operation.
        op: Op,
        /// The error of `io_uring_enter`.
        source: io::Error,
    },
}

impl PushError {
    /// The refused operation, handed back with its resources.
    pub fn into_op(self) -> Op {
        match self {
            PushError::Duplicate { op, .. }
            | PushError::Reserved { op }
            | PushError::Submit { op, .. } => op,
        }
    }
}

/// Hashes the ring's `u64` user data with one multiplication (Fibonacci hashing). The keys
/// are the application's own tokens, not an attacker's, so SipHash's flood resistance buys
/// nothing here, and it was a third of the dispatcher's user-space time.
#[derive(Debug, Default, Clone, Copy)]
struct UserDataHasher(u64);

impl Hasher for UserDataHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

type InFlight = HashMap<u64, Held, BuildHasherDefault<UserDataHasher>>;

/// The user data the ring keeps for itself.
const RESERVED: u64 = u64::MAX;

/// An io_uring instance that owns the resources of its operations in flight.
pub struct Ring {
    ring: IoUring,
    in_flight: InFlight,
    deferred: bool,
    /// Declared after `ring`: freed only after the ring's descriptor is closed.
    groups: HashMap<u16, Rc<BufRing>>,
}

impl fmt::Debug for Ring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ring")
            .field("sq_entries", &self.ring.params().sq_entries())
            .field("in_flight", &self.in_flight.len())
            .field("defer_taskrun", &self.deferred)
            .finish()
    }
}

impl Ring {
    /// A ring of `entries` submission entries, no special setup flags.
    pub fn new(entries: u32) -> Result<Ring, SetupError> {
        Self::with_params(RingParams::new(entries))
    }

    /// A ring set up with `params`.
    pub fn with_params(params: RingParams) -> Result<Ring, SetupError> {
        if let Some(idle) = params.sqpoll {
            let ring = IoUring::builder()
                .setup_sqpoll(idle)
                .build(params.entries)
                .map_err(|e| SetupError::from_io(&e, params.entries))?;
            return Ok(Self::from_ring(ring, false));
        }
        if params.defer_taskrun {
            let ring = IoUring::builder()
                .setup_single_issuer()
                .setup_defer_taskrun()
                .build(params.entries);
            if let Ok(ring) = ring {
                return Ok(Self::from_ring(ring, true));
            }
        }
        let ring = IoUring::builder()
            .build(params.entries)
            .map_err(|e| SetupError::from_io(&e, params.entries))?;
        Ok(Self::from_ring(ring, false))
    }

    fn from_ring(ring: IoUring, deferred: bool) -> Ring {
        Ring {
            ring,
            in_flight: InFlight::default(),
            deferred,
            groups: HashMap::new(),
        }
    }

    /// Whether the ring runs with `SINGLE_ISSUER | DEFER_TASKRUN`.
    pub fn defer_taskrun(&self) -> bool {
        self.deferred
    }

    /// Number of operations pushed whose final completion has not been reaped.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Whether the operation with this user data is in flight.
    pub fn is_in_flight(&self, user_data: u64) -> bool {
        self.in_flight.contains_key(&user_data)
    }

    /// Registers provided-buffer group `group`: `count` buffers (a power of two, at most
    /// 32768) of `size` bytes each, for [`Op::RecvMulti`]. A group can be registered once.
    pub fn provide_buffers(&mut self, group: u16, count: u16, size: usize) -> io::Result<()> {
        if self.groups.contains_key(&group) {
            return Err(io::Error::from(io::ErrorKind::AlreadyExists));
        }
        let bufs = Rc::new(BufRing::new(count, size)?);
        // SAFETY: the ring memory is page-aligned, holds `count` entries, and is owned by
        // `self.groups` (and by any `ProvidedBuf` still lent) until the ring is dropped, after
        // its descriptor is closed, or leaked.
        unsafe {
            self.ring.submitter().register_buf_ring_with_flags(
                bufs.ring_addr(),
                count,
                group,
                0,
            )?;
        }
        self.groups.insert(group, bufs);
        Ok(())
    }

    /// How many buffers of group `group` the kernel can pick from now: the group's count less
    /// those it filled that are not yet given back (lent as [`ProvidedBuf`]s, or reaped but
    /// not yet looked at). `None` for a group not registered.
    pub fn buffers_available(&self, group: u16) -> Option<u16> {
        self.groups.get(&group).map(|g| g.count - g.lent.get())
    }

    /// Queues `op` with `user_data` (submitted by the next [`submit`](Self::submit)).
    pub fn push(&mut self, user_data: u64, op: Op) -> Result<(), PushError> {
        if user_data == RESERVED {
            return Err(PushError::Reserved { op });
        }
        if self.in_flight.contains_key(&user_data) {
            return Err(PushError::Duplicate { user_data, op });
        }
        let mut held = hold(op);
        let entry = entry_for(&mut held).user_data(user_data);
        // The table entry is inserted first: its boxes and vectors keep their heap
        // addresses from here on, which are the addresses the entry points to.
        self.in_flight.insert(user_data, held);
        loop {
            // (Descriptors are plain integers: a closed or reused one makes the operation fail
            // or act on another file, never touch freed memory.)
            // SAFETY: every pointer in `entry` points into heap memory owned by
            // `self.in_flight[user_data]` (a Vec's buffer, a boxed sockaddr or timespec),
            // removed only by `reap` at the final completion or leaked by `Drop`.
            let pushed = unsafe { self.ring.submission().push(&entry) };
            if pushed.is_ok() {
                return Ok(());
            }
            if let Err(source) = self.submit() {
                let op = self.in_flight.remove(&user_data).map(Held::into_op);
                return Err(PushError::Submit {
                    op: op.unwrap_or(Op::Nop),
                    source,
                });
            }
        }
    }

    /// Submits what is queued; returns how many entries the kernel took.
    pub fn submit(&mut self) -> io::Result<usize> {
        self.submit_and_wait(0)
    }

    /// Submits what is queued and waits until at least `want` completions are ready
    /// (interrupted waits are retried; a full completion queue returns to let you reap).
    pub fn submit_and_wait(&mut self, want: usize) -> io::Result<usize> {
        loop {
            match self.ring.submit_and_wait(want) {
                Ok(n) => return Ok(n),
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => return Ok(0),
                Err(e) => return Err(e),
            }
        }
    }

    /// Moves every ready completion into `out`; a completion that ends an operation carries
    /// the operation and its resources back. Returns how many were reaped.
    pub fn reap(&mut self, out: &mut Vec<Cqe>) -> usize {
        let before = out.len();
        let mut cq = self.ring.completion();
        cq.sync();
        for cqe in &mut cq {
            let user_data = cqe.user_data();
            let result = cqe.result();
            let more = cqueue::more(cqe.flags());
            let (accepts, group) = match self.in_flight.get(&user_data) {
                _ if user_data == RESERVED => (false, None),
                Some(Held::Plain(Op::Accept { .. } | Op::AcceptMulti { .. })) => (true, None),
                Some(Held::Plain(Op::RecvMulti { group, .. })) => (false, Some(*group)),
                _ => (false, None),
            };
            let data = match (group, cqueue::buffer_select(cqe.flags())) {
                (Some(group), Some(bid)) => self
                    .groups
                    .get(&group)
                    .and_then(|g| BufRing::lend(g, bid, result.max(0) as usize)),
                _ => None,
            };
            let fd = (accepts && result >= 0).then(|| {
                // SAFETY: the kernel created this descriptor for our accept and nothing else
                // owns it; it is wrapped exactly once, here.
                unsafe { OwnedFd::from_raw_fd(result) }
            });
            let held = if more || user_data == RESERVED {
                None
            } else {
                self.in_flight.remove(&user_data)
            };
            let received = match &held {
                Some(Held::RecvMsg(_, parts)) if result >= 0 => {
                    parts.received(result as usize).ok()
                }
                _ => None,
            };
            out.push(Cqe {
                user_data,
                result,
                more,
                op: held.map(Held::into_op),
                data,
                received,
                fd,
            });
        }
        out.len() - before
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        if self.in_flight.is_empty() {
            return;
        }
        let targets: Vec<u64> = self.in_flight.keys().copied().collect();
        for target in targets {
            let cancel = opcode::AsyncCancel::new(target).build().user_data(RESERVED);
            // SAFETY: a cancel entry holds no pointer.
            let _ = unsafe { self.ring.submission().push(&cancel) };
        }
        let mut out = Vec::new();
        for _ in 0..1000 {
            if self.in_flight.is_empty() || self.submit_and_wait(1).is_err() {
                break;
            }
            self.reap(&mut out);
        }
        // Whatever the kernel still holds is leaked, never freed under it.
        if !self.in_flight.is_empty() {
            mem::forget(mem::take(&mut self.groups));
        }
        mem::forget(mem::take(&mut self.in_flight));
    }
}

fn hold(op: Op) -> Held {
    match op {
        Op::Connect { addr, .. } => {
            let storage = Box::new(sockaddr_of(&addr));
            Held::Connect(op, storage)
        }
        Op::Timeout { after } => Held::Timeout(op, Box::new(types::Timespec::from(after))),
        op @ Op::RecvMsg { .. } => Held::RecvMsg(op, Box::new(MsgParts::new())),
        op => Held::Plain(op),
    }
}

fn entry_for(held: &mut Held) -> squeue::Entry {
    match held {
        Held::Plain(Op::Accept { fd }) => {
            opcode::Accept::new(types::Fd(*fd), std::ptr::null_mut(), std::ptr::null_mut())
                .flags(libc::SOCK_CLOEXEC)
                .build()
        }
        Held::Plain(Op::Read { fd, buf }) => {
            let len = u32::try_from(buf.len()).unwrap_or(u32::MAX);
            opcode::Read::new(types::Fd(*fd), buf.as_mut_ptr(), len)
                .offset(u64::MAX)
                .build()
        }
        Held::Plain(Op::Write { fd, buf }) => {
            let len = u32::try_from(buf.len()).unwrap_or(u32::MAX);
            opcode::Write::new(types::Fd(*fd), buf.as_ptr(), len)
                .offset(u64::MAX)
                .build()
        }
        Held::Plain(Op::Send { fd, buf }) => {
            let len = u32::try_from(buf.len()).unwrap_or(u32::MAX);
            opcode::Send::new(types::Fd(*fd), buf.as_ptr(), len)
                .flags(libc::MSG_NOSIGNAL)
                .build()
        }
        Held::Plain(Op::SendProvided { fd, buf }) => {
            let len = u32::try_from(buf.len()).unwrap_or(u32::MAX);
            opcode::Send::new(types::Fd(*fd), buf.as_ptr(), len)
                .flags(libc::MSG_NOSIGNAL)
                .build()
        }
        Held::Plain(Op::AcceptMulti { fd }) => opcode::AcceptMulti::new(types::Fd(*fd))
            .flags(libc::SOCK_CLOEXEC)
            .build(),
        Held::Plain(Op::RecvMulti { fd, group }) => {
            opcode::RecvMulti::new(types::Fd(*fd), *group).build()
        }
        Held::Plain(Op::Cancel { target }) => opcode::AsyncCancel::new(*target).build(),
        Held::Connect(Op::Connect { fd, addr }, storage) => {
            let len = match addr {
                SocketAddr::V4(_) => mem::size_of::<libc::sockaddr_in>(),
                SocketAddr::V6(_) => mem::size_of::<libc::sockaddr_in6>(),
            };
            opcode::Connect::new(
                types::Fd(*fd),
                (&raw const **storage).cast::<libc::sockaddr>(),
                len as libc::socklen_t,
            )
            .build()
        }
        Held::Timeout(_, ts) => opcode::Timeout::new(&raw const **ts).build(),
        Held::RecvMsg(Op::RecvMsg { fd, buf }, parts) => {
            // The header points into the box and at the vector's heap buffer: neither moves
            // while the operation is in the ring's table.
            let msg = parts.aim(buf);
            opcode::RecvMsg::new(types::Fd(*fd), msg).build()
        }
        _ => opcode::Nop::new().build(),
    }
}

fn sockaddr_of(addr: &SocketAddr) -> libc::sockaddr_storage {
    // SAFETY: sockaddr_storage is plain old data; all zeroes is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
    match addr {
        SocketAddr::V4(v4) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: v4.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(v4.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe { (&raw mut storage).cast::<libc::sockaddr_in>().write(sin) };
        }
        SocketAddr::V6(v6) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: v6.port().to_be(),
                sin6_flowinfo: v6.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: v6.ip().octets(),
                },
                sin6_scope_id: v6.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            unsafe { (&raw mut storage).cast::<libc::sockaddr_in6>().write(sin6) };
        }
    }
    storage
}

/// One entry of a provided-buffer ring, as the kernel reads it (`struct io_uring_buf`);
/// the `resv` field of entry 0 is the ring's tail.
#[repr(C)]
struct RawBuf {
    addr: u64,
    len: u32,
    bid: u16,
    resv: u16,
}

/// A provided-buffer ring: `count` buffers of `size` bytes that the kernel picks from for
/// [`Op::RecvMulti`]. Its memory is owned here, shared (`Rc`) by the [`Ring`] and every
/// [`ProvidedBuf`] lent out of it, and freed when the last of them is gone.
struct BufRing {
    entries: NonNull<RawBuf>,
    entries_layout: Layout,
    bufs: NonNull<u8>,
    bufs_layout: Layout,
    count: u16,
    size: usize,
    tail: Cell<u16>,
    /// Buffers the kernel filled and reported that are not back in the ring yet.
    lent: Cell<u16>,
}

impl fmt::Debug for BufRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BufRing")
            .field("count", &self.count)
            .field("size", &self.size)
            .field("lent", &self.lent.get())
            .finish()
    }
}

impl BufRing {
    fn new(count: u16, size: usize) -> io::Result<BufRing> {
        let invalid = || io::Error::from(io::ErrorKind::InvalidInput);
        if !count.is_power_of_two() || count > 32768 || size == 0 || size > u32::MAX as usize {
            return Err(invalid());
        }
        let entries_layout =
            Layout::from_size_align(usize::from(count) * mem::size_of::<RawBuf>(), 4096)
                .map_err(|_| invalid())?;
        let bufs_layout =
            Layout::from_size_align(usize::from(count) * size, 64).map_err(|_| invalid())?;
        // SAFETY: both layouts have a non-zero size (count ≥ 1, size ≥ 1).
        let (entries, bufs) = unsafe { (alloc_zeroed(entries_layout), alloc_zeroed(bufs_layout)) };
        let (Some(entries), Some(bufs)) =
            (NonNull::new(entries.cast::<RawBuf>()), NonNull::new(bufs))
        else {
            return Err(io::Error::from(io::ErrorKind::OutOfMemory));
        };
        let ring = BufRing {
            entries,
            entries_layout,
            bufs,
            bufs_layout,
            count,
            size,
            tail: Cell::new(0),
            lent: Cell::new(0),
        };
        for bid in 0..count {
            ring.push(bid);
        }
        ring.publish();
        Ok(ring)
    }

    /// Puts buffer `bid` at the tail (not yet visible to the kernel: see `publish`).
    fn push(&self, bid: u16) {
        let tail = self.tail.get();
        let index = usize::from(tail & (self.count - 1));
        // At most `count` buffers are ever in the ring: a buffer is pushed once at the start,
        // then once per time the kernel reported it (and a lent one only when given back).
        // SAFETY: `index < count`, inside the entries allocation; the slot at the tail is one
        // the kernel consumed (or never saw) and reads only once the tail is published past it.
        // Fields are written through raw pointers, never a reference the kernel could alias;
        // `resv` (the tail, in entry 0) is not touched here.
        unsafe {
            let entry = self.entries.as_ptr().add(index);
            (&raw mut (*entry).addr)
                .write(self.bufs.as_ptr().add(usize::from(bid) * self.size) as u64);
            (&raw mut (*entry).len).write(self.size as u32);
            (&raw mut (*entry).bid).write(bid);
        }
        self.tail.set(tail.wrapping_add(1));
    }

    /// Makes the pushed buffers visible to the kernel.
    fn publish(&self) {
        // SAFETY: entry 0's `resv` field is the ring's tail, a u16 the kernel only reads; it
        // is aligned for an atomic u16, and stored with release ordering after the entries.
        let tail = unsafe { AtomicU16::from_ptr(&raw mut (*self.entries.as_ptr()).resv) };
        tail.store(self.tail.get(), Ordering::Release);
    }

    /// Lends buffer `bid`, which the kernel has filled with `len` bytes and handed over, to
    /// the application; `None` for a buffer id the ring never gave out.
    fn lend(this: &Rc<BufRing>, bid: u16, len: usize) -> Option<ProvidedBuf> {
        if bid >= this.count {
            return None;
        }
        this.lent.set(this.lent.get() + 1);
        Some(ProvidedBuf {
            ring: Rc::clone(this),
            bid,
            start: 0,
            end: len.min(this.size),
        })
    }

    fn ring_addr(&self) -> u64 {
        self.entries.as_ptr() as u64
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with these layouts; the last `Rc` of a BufRing is dropped
        // only once the kernel can no longer use it (its Ring's descriptor is closed with no
        // operation in flight, or the Ring leaked it) and no `ProvidedBuf` points into it.
        unsafe {
            dealloc(self.entries.as_ptr().cast(), self.entries_layout);
            dealloc(self.bufs.as_ptr(), self.bufs_layout);
        }
    }
}

/// A chunk received by an [`Op::RecvMulti`], in the provided buffer the kernel put it in,
/// lent to the application: it derefs to the bytes, can be sent on without a copy
/// ([`Op::SendProvided`]), and gives the buffer back to the kernel's ring when dropped.
///
/// While it is held, the kernel has one buffer fewer to receive into; when the group runs
/// dry a multishot receive ends with `ENOBUFS` ([`Ring::buffers_available`] says how many are
/// left). It is tied to the ring's thread (`!Send`), as the ring is.
pub struct ProvidedBuf {
    ring: Rc<BufRing>,
    bid: u16,
    start: usize,
    end: usize,
}

impl ProvidedBuf {
    /// Drops the first `n` bytes (at most all of them): what a partial send has sent.
    pub fn advance(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
    }

    /// The buffer's id in its group (the kernel's `bid`).
    pub fn id(&self) -> u16 {
        self.bid
    }
}

impl Deref for ProvidedBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        // SAFETY: buffer `bid` lies inside the buffers allocation, which `self.ring` keeps
        // alive; the kernel reported it in a completion, so it wrote bytes `..end` and will not
        // touch the buffer again until `drop` below pushes it back. No reference to the rest of
        // the allocation is made, and nothing writes this buffer meanwhile (a `ProvidedBuf` is
        // made once per report and neither cloned nor `Send`).
        unsafe {
            std::slice::from_raw_parts(
                self.ring
                    .bufs
                    .as_ptr()
                    .add(usize::from(self.bid) * self.ring.size + self.start),
                self.end - self.start,
            )
        }
    }
}

impl fmt::Debug for ProvidedBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProvidedBuf")
            .field("bid", &self.bid)
            .field("len", &self.len())
            .finish()
    }
}

impl Drop for ProvidedBuf {
    fn drop(&mut self) {
        self.ring.push(self.bid);
        self.ring.publish();
        self.ring.lent.set(self.ring.lent.get() - 1);
    }
}

/// A new TCP socket (blocking, close-on-exec) of `addr`'s family, to connect with
/// [`Op::Connect`].
pub fn tcp_socket_for(addr: &SocketAddr) -> io::Result<OwnedFd> {
    let family = match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    };
    // SAFETY: socket(2) takes no pointer; a non-negative result is a descriptor we own.
    let fd = unsafe { libc::socket(family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just created and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read as _, Write as _};
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    fn wait_for(ring: &mut Ring, n: usize) -> Vec<Cqe> {
        let mut out = Vec::new();
        while out.len() < n {
            ring.submit_and_wait(1).unwrap();
            ring.reap(&mut out);
        }
        out
    }

    #[test]
    fn an_absurd_entry_count_is_refused_with_the_errno() {
        let err = Ring::new(u32::MAX).unwrap_err();
        assert!(
            matches!(
                err,
                SetupError::Refused {
                    errno: libc::EINVAL,
                    entries: u32::MAX,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("EINVAL"), "{err}");
    }

    #[test]
    fn unavailable_io_uring_is_reported_as_unsupported_naming_the_errno() {
        for (errno, name) in [
            (libc::ENOSYS, "ENOSYS"),
            (libc::EPERM, "EPERM"),
            (libc::EACCES, "EACCES"),
        ] {
            let err = SetupError::from_io(&io::Error::from_raw_os_error(errno), 8);
            assert!(matches!(err, SetupError::Unsupported { .. }));
            assert_eq!(err.errno(), errno);
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn a_thread_refused_io_uring_gets_unsupported_eperm_and_others_do_not() {
        let refused = std::thread::spawn(|| {
            refuse_in_this_thread().expect("seccomp filter");
            let inner = std::thread::spawn(|| Ring::new(8).map(drop))
                .join()
                .unwrap();
            (Ring::new(8).map(drop), inner)
        })
        .join()
        .unwrap();
        for result in [refused.0, refused.1] {
            let err = result.expect_err("io_uring refused");
            assert!(matches!(err, SetupError::Unsupported { .. }), "{err:?}");
            assert_eq!(err.errno(), libc::EPERM);
            assert!(err.to_string().contains("EPERM"), "{err}");
        }
        Ring::new(8).expect("this thread still has io_uring");
    }

    #[test]
    fn an_sqpoll_ring_submits_through_the_kernel_poller() {
        let mut params = RingParams::new(8);
        params.sqpoll = Some(10);
        params.defer_taskrun = true;
        let mut ring = Ring::with_params(params).expect("SQPOLL ring");
        assert!(!ring.defer_taskrun(), "SQPOLL takes precedence");
        ring.push(7, Op::Nop).unwrap();
        ring.submit_and_wait(1).unwrap();
        let mut out = Vec::new();
        ring.reap(&mut out);
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].user_data, out[0].result), (7, 0));
    }

    #[test]
    fn defer_taskrun_is_requested_or_fallen_back_from() {
        let mut params = RingParams::new(8);
        params.defer_taskrun = true;
        let mut ring = Ring::with_params(params).unwrap();
        // Linux 6.1 added DEFER_TASKRUN: from there on it must be in force, not fallen back from.
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let mut numbers = release
            .split(['.', '-'])
            .map(|n| n.parse::<u32>().unwrap_or(0));
        let version = (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0));
        if version >= (6, 1) {
            assert!(ring.defer_taskrun(), "kernel {}", release.trim());
        }
        ring.push(9, Op::Nop).unwrap();
        let done = wait_for(&mut ring, 1);
        assert_eq!((done[0].user_data, done[0].result), (9, 0));
    }

    #[test]
    fn read_and_write_hand_their_buffers_back() {
        let (mut a, b) = UnixStream::pair().unwrap();
        let mut ring = Ring::new(8).unwrap();
        ring.push(
            1,
            Op::Read {
                fd: b.as_raw_fd(),
                buf: vec![0; 8],
            },
        )
        .unwrap();
        ring.push(
            2,
            Op::Write {
                fd: b.as_raw_fd(),
                buf: b"pong".to_vec(),
            },
        )
        .unwrap();
        ring.submit().unwrap();
        a.write_all(b"hi").unwrap();
        let done = wait_for(&mut ring, 2);
        assert_eq!(ring.in_flight(), 0);
        for c in &done {
            match (&c.op, c.user_data) {
                (Some(Op::Read { buf, .. }), 1) => {
                    assert_eq!((c.result, &buf[..2]), (2, &b"hi"[..]))
                }
                (Some(Op::Write { buf, .. }), 2) => {
                    assert_eq!((c.result, &buf[..]), (4, &b"pong"[..]))
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        let mut got = [0; 4];
        a.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"pong");
    }

    #[test]
    fn a_duplicate_user_data_in_flight_is_refused_and_the_op_returned() {
        let (_a, b) = UnixStream::pair().unwrap();
        let mut ring = Ring::new(8).unwrap();
        ring.push(
            5,
            Op::Read {
                fd: b.as_raw_fd(),
                buf: vec![0; 8],
            },
        )
        .unwrap();
        let err = ring
            .push(
                5,
                Op::Read {
                    fd: b.as_raw_fd(),
                    buf: vec![1; 3],
                },
            )
            .unwrap_err();
        let PushError::Duplicate {
            op: Op::Read { buf, .. },
            ..
        } = err
        else {
            panic!("{err:?}")
        };
        assert_eq!(buf, vec![1; 3]);
        ring.push(6, Op::Cancel { target: 5 }).unwrap();
        let done = wait_for(&mut ring, 2);
        let read = done.iter().find(|c| c.user_data == 5).unwrap();
        assert_eq!(read.result, -libc::ECANCELED);
        assert!(matches!(read.op, Some(Op::Read { .. })));
    }

    #[test]
    fn accept_connect_and_timeout_complete() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let sock = tcp_socket_for(&addr).unwrap();
        let mut ring = Ring::new(8).unwrap();
        ring.push(
            1,
            Op::Accept {
                fd: listener.as_raw_fd(),
            },
        )
        .unwrap();
        ring.push(
            2,
            Op::Connect {
                fd: sock.as_raw_fd(),
                addr,
            },
        )
        .unwrap();
        ring.push(
            3,
            Op::Timeout {
                after: Duration::from_millis(1),
            },
        )
        .unwrap();
        let mut done = wait_for(&mut ring, 3);
        done.sort_by_key(|c| c.user_data);
        let fd = done[0].take_fd().expect("accepted descriptor");
        assert_eq!(done[1].result, 0);
        assert_eq!(done[2].result, -libc::ETIME);
        let accepted = TcpStream::from(fd);
        let client = TcpStream::from(sock);
        assert_eq!(accepted.peer_addr().unwrap(), client.local_addr().unwrap());
    }

    #[test]
    fn a_multishot_accept_completes_once_per_connection_until_cancelled() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut ring = Ring::new(8).unwrap();
        ring.push(
            1,
            Op::AcceptMulti {
                fd: listener.as_raw_fd(),
            },
        )
        .unwrap();
        ring.submit().unwrap();
        let clients: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
        let mut done = wait_for(&mut ring, 3);
        assert!(done.iter().all(|c| c.more && c.op.is_none()));
        let mut peers: Vec<_> = done
            .iter_mut()
            .map(|c| TcpStream::from(c.take_fd().unwrap()).peer_addr().unwrap())
            .collect();
        peers.sort();
        let mut locals: Vec<_> = clients.iter().map(|c| c.local_addr().unwrap()).collect();
        locals.sort();
        assert_eq!(peers, locals);
        assert!(ring.is_in_flight(1));
        ring.push(2, Op::Cancel { target: 1 }).unwrap();
        let done = wait_for(&mut ring, 2);
        let last = done.iter().find(|c| c.user_data == 1).unwrap();
        assert!(!last.more);
        assert_eq!(last.result, -ECANCELED);
        assert!(matches!(last.op, Some(Op::AcceptMulti { .. })));
    }

    #[test]
    fn a_multishot_recv_lends_chunks_in_provided_buffers_and_recycles_them_when_dropped() {
        let (mut a, b) = UnixStream::pair().unwrap();
        let mut ring = Ring::new(8).unwrap();
        ring.provide_buffers(3, 2, 4).unwrap();
        assert!(
            ring.provide_buffers(3, 2, 4).is_err(),
            "a group is registered once"
        );
        ring.push(
            1,
            Op::RecvMulti {
                fd: b.as_raw_fd(),
                group: 3,
            },
        )
        .unwrap();
        ring.submit().unwrap();
        // Five chunks through two buffers: each is recycled before the next is needed.
        let mut got = Vec::new();
        for chunk in [&b"ab"[..], b"cdef", b"g", b"hi", b"jk"] {
            a.write_all(chunk).unwrap();
            let done = wait_for(&mut ring, 1);
            for c in done {
                assert!(c.more, "{c:?}");
                got.extend_from_slice(&c.data.unwrap());
            }
        }
        assert_eq!(got, b"abcdefghijk");
        drop(a);
        let done = wait_for(&mut ring, 1);
        assert_eq!((done[0].result, done[0].more), (0, false));
        assert!(matches!(done[0].op, Some(Op::RecvMulti { .. })));
    }

    fn recv_multi(ring: &mut Ring, user_data: u64, fd: RawFd, group: u16) {
        ring.push(user_data, Op::RecvMulti { fd, group }).unwrap();
        ring.submit().unwrap();
    }

    #[test]
    fn a_lent_buffer_is_not_received_into_again_until_it_is_dropped() {
        let (mut a, b) = UnixStream::pair().unwrap();
        let mut ring = Ring::new(8).unwrap();
        ring.provide_buffers(0, 2, 8).unwrap();
        assert_eq!(ring.buffers_available(0), Some(2));
        assert_eq!(ring.buffers_available(1), None);
        recv_multi(&mut ring, 1, b.as_raw_fd(), 0);
        let mut held = Vec::new();
        for chunk in [&b"first"[..], b"second"] {
            a.write_all(chunk).unwrap();
            let mut done = wait_for(&mut ring, 1);
            held.push(done[0].data.take().unwrap());
        }
        assert_eq!((&*held[0], &*held[1]), (&b"first"[..], &b"second"[..]));
        assert_ne!(held[0].id(), held[1].id());
        assert_eq!(ring.buffers_available(0), Some(0));
        // Both buffers are lent: the next chunk finds none, and the receive ends for want of
        // one; the lent bytes are untouched.
        a.write_all(b"third").unwrap();
        let done = wait_for(&mut ring, 1);
        assert_eq!((done[0].result, done[0].more), (-ENOBUFS, false));
        assert_eq!((&*held[0], &*held[1]), (&b"first"[..], &b"second"[..]));
        // One given back: the receive, started again, gets the waiting bytes in it.
        let given_back = held.remove(0).id();
        assert_eq!(ring.buffers_available(0), Some(1));
        recv_multi(&mut ring, 2, b.as_raw_fd(), 0);
        let mut done = wait_for(&mut ring, 1);
        let third = done[0].data.take().unwrap();
        assert_eq!((&*third, third.id()), (&b"third"[..], given_back));
        assert_eq!(&*held[0], b"second");
    }

    #[test]
    fn a_lent_buffer_is_sent_in_place_and_goes_back_after_the_send() {
        let (mut a, b) = UnixStream::pair().unwrap();
        let (c, mut d) = UnixStream::pair().unwrap();
        let mut ring = Ring::new(8).unwrap();
        ring.provide_buffers(0, 1, 64).unwrap();
        recv_multi(&mut ring, 1, b.as_raw_fd(), 0);
        a.write_all(b"0123456789").unwrap();
        let mut done = wait_for(&mut ring, 1);
        let mut buf = done[0].data.take().unwrap();
        buf.advance(4);
        assert_eq!(&*buf, b"456789");
        ring.push(
            2,
            Op::SendProvided {
                fd: c.as_raw_fd(),
                buf,
            },
        )
        .unwrap();
        let mut done = wait_for(&mut ring, 1);
        let sent = done.remove(0);
        assert_eq!((sent.user_data, sent.result), (2, 6));
        // Held by the completion until dropped; the only buffer, so none is free meanwhile.
        assert_eq!(ring.buffers_available(0), Some(0));
        drop(sent);
        assert_eq!(ring.buffers_available(0), Some(1));
        let mut got = [0; 6];
        d.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"456789");
        // The buffer is back in the kernel's hands: the receive goes on into it.
        a.write_all(b"again").unwrap();
        let mut done = wait_for(&mut ring, 1);
        assert_eq!(&*done[0].data.take().unwrap(), b"again");
    }

    #[test]
    fn a_lent_buffer_outlives_its_ring() {
        let (mut a, b) = UnixStream::pair().unwrap();
        let mut ring = Ring::new(8).unwrap();
        ring.provide_buffers(0, 2, 16).unwrap();
        recv_multi(&mut ring, 1, b.as_raw_fd(), 0);
        a.write_all(b"kept").unwrap();
        let mut done = wait_for(&mut ring, 1);
        let kept = done[0].data.take().unwrap();
        drop(done);
        drop(ring);
        assert_eq!(&*kept, b"kept");
        drop(kept);
    }

    #[test]
    fn a_recvmsg_hands_back_the_datagram_its_sender_a_cut_and_the_drop_counter() {
        use crate::{InetAddr, SockDgram};
        let server = SockDgram::bind(&InetAddr::loopback_v4(0)).unwrap();
        server.set_drop_counting(true).unwrap();
        let client = SockDgram::bind(&InetAddr::loopback_v4(0)).unwrap();
        let to = server.local_addr().unwrap();
        let mut ring = Ring::new(8).unwrap();
        let fd = server.as_raw_fd();
        ring.push(
            1,
            Op::RecvMsg {
                fd,
                buf: vec![0; 8],
            },
        )
        .unwrap();
        client.send_to(b"hello", &to).unwrap();
        let done = wait_for(&mut ring, 1);
        assert_eq!(done[0].result, 5);
        let r = done[0].received.unwrap();
        assert_eq!(
            (r.len, r.truncated, r.from, r.drops),
            (5, false, client.local_addr().unwrap(), None)
        );
        let Some(Op::RecvMsg { buf, .. }) = &done[0].op else {
            panic!("{:?}", done[0])
        };
        assert_eq!(&buf[..5], b"hello");
        // Longer than the buffer: cut, and it says so.
        ring.push(
            2,
            Op::RecvMsg {
                fd,
                buf: vec![0; 4],
            },
        )
        .unwrap();
        client.send_to(b"truncated", &to).unwrap();
        let done = wait_for(&mut ring, 1);
        let r = done[0].received.unwrap();
        assert_eq!((done[0].result, r.truncated), (4, true));
        // A flood past a tiny receive buffer, what fitted drained: a datagram queued after
        // carries the kernel's count of those it dropped.
        server.set_recv_buffer_size(1).unwrap();
        for _ in 0..2000 {
            let _ = client.send_to(&[7; 512], &to);
        }
        server.set_nonblocking(true).unwrap();
        let mut scratch = [0; 1024];
        while server.recv_from(&mut scratch).is_ok() {}
        ring.push(
            3,
            Op::RecvMsg {
                fd,
                buf: vec![0; 1024],
            },
        )
        .unwrap();
        client.send_to(b"after", &to).unwrap();
        let done = wait_for(&mut ring, 1);
        let r = done[0].received.unwrap();
        assert_eq!(r.len, 5);
        assert!(r.drops.is_some_and(|d| d > 0), "{r:?}");
    }

    #[test]
    fn a_provided_buffer_group_must_be_a_power_of_two() {
        let mut ring = Ring::new(8).unwrap();
        assert!(ring.provide_buffers(1, 3, 16).is_err());
        assert!(ring.provide_buffers(1, 4, 0).is_err());
    }

    #[test]
    fn an_unknown_completion_carries_no_op() {
        let mut ring = Ring::new(8).unwrap();
        ring.push(7, Op::Nop).unwrap();
        let done = wait_for(&mut ring, 1);
        assert!(matches!(done[0].op, Some(Op::Nop)));
        assert!(!ring.is_in_flight(7));
    }

    #[test]
    fn dropping_a_ring_with_reads_in_flight_cancels_them() {
        let (_a, b) = UnixStream::pair().unwrap();
        let mut ring = Ring::new(8).unwrap();
        for i in 0..4 {
            ring.push(
                i,
                Op::Read {
                    fd: b.as_raw_fd(),
                    buf: vec![0; 64],
                },
            )
            .unwrap();
        }
        ring.submit().unwrap();
        assert_eq!(ring.in_flight(), 4);
        drop(ring);
    }
}
