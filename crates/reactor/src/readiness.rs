//! Readiness bits: how a dispatcher remembers what an edge-triggered demultiplexer reported.
//!
//! mio (epoll in edge-triggered mode) reports a readiness once per edge. A dispatcher keeps
//! these bits per registration, clears one when an upcall answers `Continue` (the handle was
//! drained) and keeps it on `Again`, which gives handlers level-like semantics. Shared by the
//! reactor and the thread-pool dispatchers of `leader-followers`.

use pattern_core::Interest;

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
