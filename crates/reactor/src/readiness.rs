//! Readiness bits: how a dispatcher remembers what an edge-triggered demultiplexer reported.
//!
//! mio (epoll in edge-triggered mode) reports a readiness once per edge. A dispatcher keeps
//! these bits per registration, clears one when an upcall answers `Continue` (the handle was
//! drained) and keeps it on `Again`, which gives handlers level-like semantics. Shared by the
//! reactor and the thread-pool dispatchers of `leader-followers`.
//!
//! mio's poll(2) backend (forced with `--cfg mio_unsupported_force_poll_poll`, the default on
//! a few systems without epoll or kqueue) is level-triggered and emulates edges by taking a
//! reported interest off the descriptor until it is registered again: mio's own I/O types do
//! that when an operation answers `WouldBlock`, but a dispatcher waiting on raw descriptors
//! (`SourceFd`) must do it itself, or each descriptor is reported once. [`Registration`] does
//! it where [`REARM`] says the backend needs it, and costs nothing on epoll.

use std::io;
use std::os::fd::RawFd;

use mio::unix::SourceFd;
use pattern_core::{DispatchError, Interest};

/// Whether mio's backend takes a descriptor's interest off once it reports it, so that a
/// dispatcher must re-register what its handlers drained (mio's poll(2) selector, chosen on
/// the systems listed in mio's `sys/unix/mod.rs` or forced by its cfg).
pub const REARM: bool = cfg!(any(
    mio_unsupported_force_poll_poll,
    target_os = "aix",
    target_os = "espidf",
    target_os = "nuttx",
    target_os = "fuchsia",
    target_os = "haiku",
    target_os = "hermit",
    target_os = "hurd",
    target_os = "nto",
    target_os = "vita",
    target_os = "cygwin",
    target_os = "wasi",
    target_os = "horizon"
));

/// A set of readiness kinds: input, output, exception.
///
/// ```
/// use reactor::readiness::Readiness;
///
/// let mut pending = Readiness::READ | Readiness::WRITE;
/// assert!(pending.intersects(Readiness::WRITE));
/// pending.remove(Readiness::WRITE);
/// assert_eq!(pending, Readiness::READ);
/// ```
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Readiness(u8);

impl Readiness {
    /// Nothing ready.
    pub const NONE: Readiness = Readiness(0);
    /// Input readiness: readable, read side closed, or an error.
    pub const READ: Readiness = Readiness(1);
    /// Output readiness: writable, write side closed, or an error.
    pub const WRITE: Readiness = Readiness(2);
    /// Exception readiness: priority data, or an error.
    pub const EXCEPT: Readiness = Readiness(4);
    /// Every kind, in the order a dispatcher upcalls them.
    pub const KINDS: [Readiness; 3] = [Readiness::READ, Readiness::WRITE, Readiness::EXCEPT];

    /// Whether nothing is set.
    #[inline]
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether any kind is in both sets.
    #[inline]
    pub fn intersects(self, other: Readiness) -> bool {
        self.0 & other.0 != 0
    }

    /// Takes `other`'s kinds out of this set.
    #[inline]
    pub fn remove(&mut self, other: Readiness) {
        self.0 &= !other.0;
    }
}

impl std::ops::BitOr for Readiness {
    type Output = Readiness;
    #[inline]
    fn bitor(self, other: Readiness) -> Readiness {
        Readiness(self.0 | other.0)
    }
}

impl std::ops::BitOrAssign for Readiness {
    #[inline]
    fn bitor_assign(&mut self, other: Readiness) {
        self.0 |= other.0;
    }
}

impl std::ops::BitAnd for Readiness {
    type Output = Readiness;
    #[inline]
    fn bitand(self, other: Readiness) -> Readiness {
        Readiness(self.0 & other.0)
    }
}

/// The readiness an interest lets through to upcalls.
#[inline]
pub fn mask_of(interest: Interest) -> Readiness {
    let mut m = Readiness::NONE;
    if interest.wants_read() {
        m |= Readiness::READ;
    }
    if interest.wants_write() {
        m |= Readiness::WRITE;
    }
    if interest.wants_priority() {
        m |= Readiness::EXCEPT;
    }
    m
}

/// The mio interest to register for; `None` when no I/O is wanted.
pub fn mio_interest(interest: Interest) -> Option<mio::Interest> {
    let mut out: Option<mio::Interest> = None;
    let mut add = |i: mio::Interest| out = Some(out.map_or(i, |o| o.add(i)));
    if interest.wants_read() {
        add(mio::Interest::READABLE);
    }
    if interest.wants_write() {
        add(mio::Interest::WRITABLE);
    }
    if interest.wants_priority() {
        add(mio::Interest::PRIORITY);
    }
    out
}

/// Whether a mio event reports the peer's close or an error: the dispatcher then owes the
/// handler one more input upcall after an input upcall answering `Continue`, so a handler
/// that stopped at a short read still sees the end of stream.
pub fn closed(event: &mio::event::Event) -> bool {
    event.is_read_closed() || event.is_error()
}

/// The readiness a mio event reports.
#[inline]
pub fn bits_of(event: &mio::event::Event) -> Readiness {
    let mut b = Readiness::NONE;
    if event.is_readable() || event.is_read_closed() {
        b |= Readiness::READ;
    }
    if event.is_writable() || event.is_write_closed() {
        b |= Readiness::WRITE;
    }
    if event.is_priority() {
        b |= Readiness::EXCEPT;
    }
    if event.is_error() {
        // The error surfaces from the next read or write, whichever the handler does.
        b |= Readiness::READ | Readiness::WRITE | Readiness::EXCEPT;
    }
    b
}

/// Registers `fd` for `interest` (`None`: takes it out of the set), whether or not it is in the
/// set now; returns whether it is in the set afterwards.
///
/// A descriptor that mio's poll(2) backend dropped from its set after a hang-up or an error
/// (it does so by itself) answers `NotFound` to a re-registration or a removal: it is
/// registered afresh, or taken as removed.
fn place(
    registry: &mio::Registry,
    fd: RawFd,
    in_poll: bool,
    token: mio::Token,
    interest: Option<mio::Interest>,
) -> io::Result<bool> {
    let source = &mut SourceFd(&fd);
    match (interest, in_poll) {
        (Some(i), true) => match registry.reregister(source, token, i) {
            Err(e) if REARM && e.kind() == io::ErrorKind::NotFound => {
                registry.register(source, token, i)?
            }
            r => r?,
        },
        (Some(i), false) => registry.register(source, token, i)?,
        (None, true) => match registry.deregister(source) {
            Err(e) if REARM && e.kind() == io::ErrorKind::NotFound => {}
            r => r?,
        },
        (None, false) => {}
    }
    Ok(interest.is_some())
}

/// How a dispatcher keeps one registration's descriptor in mio's set: whether it is there, and
/// (on a backend that disarms what it reported, see [`REARM`]) which readiness is still armed.
#[derive(Debug, Clone, Copy)]
pub struct Registration {
    fd: Option<RawFd>,
    in_poll: bool,
    armed: Readiness,
}

impl Registration {
    /// A descriptor (or none) not yet in the set.
    pub fn new(fd: Option<RawFd>) -> Registration {
        Registration {
            fd,
            in_poll: false,
            armed: Readiness::NONE,
        }
    }

    /// Puts the descriptor in the set for `interest`, re-registers it, or takes it out
    /// (no I/O interest). With I/O interest and no descriptor: [`DispatchError::NoHandle`].
    pub fn set_interest(
        &mut self,
        registry: &mio::Registry,
        token: mio::Token,
        interest: Interest,
    ) -> Result<(), DispatchError> {
        let wanted = mio_interest(interest);
        match self.fd {
            None if wanted.is_some() => return Err(DispatchError::NoHandle(interest)),
            None => {}
            Some(fd) => {
                self.in_poll = place(registry, fd, self.in_poll, token, wanted)?;
                self.armed = mask_of(interest);
            }
        }
        Ok(())
    }

    /// Takes the descriptor out of the set (before its handler closes it); errors are moot.
    pub fn deregister(&mut self, registry: &mio::Registry) {
        if let (true, Some(fd)) = (self.in_poll, self.fd) {
            let _ = place(registry, fd, true, mio::Token(0), None);
        }
        self.in_poll = false;
    }

    /// Takes the descriptor out of the set for a while (a strict leader/followers pool does,
    /// while it processes the handle); [`set_interest`](Self::set_interest) puts it back.
    pub fn deactivate(&mut self, registry: &mio::Registry) {
        self.deregister(registry);
        self.armed = Readiness::NONE;
    }

    /// Notes what an event reported: on a backend that disarms it ([`REARM`]), those kinds
    /// are no longer armed.
    #[inline]
    pub fn reported(&mut self, bits: Readiness) {
        if REARM {
            self.armed.remove(bits);
        }
    }

    /// After the handler consumed readiness (its upcalls answered): on a backend that disarms
    /// what it reported ([`REARM`]), arms again the kinds `interest` wants that are not
    /// `pending` (those still pending would be reported again at once by a level-triggered
    /// wait, a busy loop while the handler is suspended or asked to come `Again`). A
    /// descriptor the backend dropped after a hang-up or an error stays out, as epoll reports
    /// no new edge for it: only a change of interest registers it again. Does nothing on epoll.
    pub fn rearm(
        &mut self,
        registry: &mio::Registry,
        token: mio::Token,
        interest: Interest,
        pending: Readiness,
    ) {
        if !REARM || !self.in_poll {
            return;
        }
        let Some(fd) = self.fd else { return };
        let mut want = mask_of(interest);
        want.remove(pending);
        if want.is_empty() || (want & self.armed) == want {
            return;
        }
        let Some(i) = mio_interest(interest_of(want)) else {
            return;
        };
        match registry.reregister(&mut SourceFd(&fd), token, i) {
            Ok(()) => self.armed = want,
            Err(e) if e.kind() == io::ErrorKind::NotFound => self.in_poll = false,
            Err(e) => tracing::warn!(error = %e, ?token, "re-arming a descriptor failed"),
        }
    }
}

/// Re-arms a dispatcher's own source (its wake-up or signal descriptor) after it drained it, on
/// a backend that disarms what it reported ([`REARM`]); nothing on epoll.
pub fn rearm_own(registry: &mio::Registry, fd: RawFd, token: mio::Token) {
    if REARM && let Err(e) = registry.reregister(&mut SourceFd(&fd), token, mio::Interest::READABLE)
    {
        tracing::warn!(error = %e, ?token, "re-arming a dispatcher's own descriptor failed");
    }
}

/// The interest that asks for exactly the kinds in `bits`.
fn interest_of(bits: Readiness) -> Interest {
    let mut i = Interest::NONE;
    if bits.intersects(Readiness::READ) {
        i |= Interest::READ;
    }
    if bits.intersects(Readiness::WRITE) {
        i |= Interest::WRITE;
    }
    if bits.intersects(Readiness::EXCEPT) {
        i |= Interest::PRIORITY;
    }
    i
}
