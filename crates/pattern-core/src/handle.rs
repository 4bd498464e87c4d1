//! Handles, interest sets, tokens and timer ids: the identifiers of the contract.

use std::fmt;
use std::ops::{BitOr, BitOrAssign};
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

/// The operating-system handle a registration waits on, recorded when the handler is registered.
///
/// Handlers own their descriptors (std's [`OwnedFd`](std::os::fd::OwnedFd) or a type holding one)
/// and lend them through [`EventHandler::handle`](crate::EventHandler::handle) as a
/// [`BorrowedFd`]; a dispatcher keeps only this copy of the number, to deregister it later.
/// The contract requires the handler to keep the same descriptor open for as long as it is
/// registered, which is what owning it gives for free.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Handle(RawFd);

impl Handle {
    /// Records the number of a borrowed descriptor.
    pub fn of(fd: BorrowedFd<'_>) -> Self {
        Handle(fd.as_raw_fd())
    }

    /// The descriptor number.
    pub fn raw(self) -> RawFd {
        self.0
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Handle({})", self.0)
    }
}

/// The set of events a handler waits for (ACE's `ACE_Reactor_Mask`).
///
/// `ACCEPT` is readiness to read on a listening socket and `CONNECT` readiness to write on a
/// connecting one; they are kept apart from `READ` and `WRITE` because the pattern names them,
/// and a dispatcher maps them onto its demultiplexer's read and write readiness.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Interest(u8);

impl Interest {
    /// No I/O events: a handler that only receives timers, notifications or signals.
    pub const NONE: Interest = Interest(0);
    /// Data (or end of stream) to read.
    pub const READ: Interest = Interest(1);
    /// Room to write.
    pub const WRITE: Interest = Interest(1 << 1);
    /// A connection to accept on a listening socket.
    pub const ACCEPT: Interest = Interest(1 << 2);
    /// A nonblocking connect has completed (or failed).
    pub const CONNECT: Interest = Interest(1 << 3);
    /// Urgent (out-of-band, priority) data, delivered to `handle_exception`.
    pub const PRIORITY: Interest = Interest(1 << 4);

    /// Whether every event of `other` is in `self`.
    pub const fn contains(self, other: Interest) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether `self` and `other` share an event.
    pub const fn intersects(self, other: Interest) -> bool {
        self.0 & other.0 != 0
    }

    /// Whether no event is selected.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// `self` with the events of `other` added.
    pub const fn add(self, other: Interest) -> Interest {
        Interest(self.0 | other.0)
    }

    /// `self` with the events of `other` taken out.
    pub const fn remove(self, other: Interest) -> Interest {
        Interest(self.0 & !other.0)
    }

    /// Whether a dispatcher must wait for read readiness (`READ` or `ACCEPT`).
    pub const fn wants_read(self) -> bool {
        self.intersects(Interest(Self::READ.0 | Self::ACCEPT.0))
    }

    /// Whether a dispatcher must wait for write readiness (`WRITE` or `CONNECT`).
    pub const fn wants_write(self) -> bool {
        self.intersects(Interest(Self::WRITE.0 | Self::CONNECT.0))
    }

    /// Whether a dispatcher must wait for priority data.
    pub const fn wants_priority(self) -> bool {
        self.contains(Self::PRIORITY)
    }
}

impl BitOr for Interest {
    type Output = Interest;
    fn bitor(self, rhs: Interest) -> Interest {
        self.add(rhs)
    }
}

impl BitOrAssign for Interest {
    fn bitor_assign(&mut self, rhs: Interest) {
        *self = self.add(rhs);
    }
}

impl fmt::Debug for Interest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [(Interest, &str); 5] = [
            (Interest::READ, "READ"),
            (Interest::WRITE, "WRITE"),
            (Interest::ACCEPT, "ACCEPT"),
            (Interest::CONNECT, "CONNECT"),
            (Interest::PRIORITY, "PRIORITY"),
        ];
        if self.is_empty() {
            return f.write_str("NONE");
        }
        let mut first = true;
        for (bit, name) in NAMES {
            if self.contains(bit) {
                if !first {
                    f.write_str(" | ")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

/// Names one registration: a slot index and the generation of the slot at registration time.
///
/// When a registration ends its slot's generation moves on, so a token kept by anyone (an event
/// already read from the kernel for a descriptor that was closed and reused, a notification in
/// flight, a stale copy in user code) no longer matches and is refused instead of reaching the
/// handler that took the slot next.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Token {
    index: u32,
    generation: u32,
}

impl Token {
    /// The largest slot index a token can carry; dispatchers reserve the values above it.
    pub const MAX_INDEX: u32 = u32::MAX - 16;

    /// A token for slot `index` at `generation`.
    pub const fn new(index: u32, generation: u32) -> Self {
        Token { index, generation }
    }

    /// The slot index.
    pub const fn index(self) -> u32 {
        self.index
    }

    /// The slot's generation when this registration was made.
    pub const fn generation(self) -> u32 {
        self.generation
    }

    /// Packs the token into 64 bits (generation high, index low), e.g. for `mio::Token`.
    pub const fn to_u64(self) -> u64 {
        ((self.generation as u64) << 32) | self.index as u64
    }

    /// Unpacks a token made by [`Token::to_u64`].
    pub const fn from_u64(bits: u64) -> Self {
        Token {
            index: bits as u32,
            generation: (bits >> 32) as u32,
        }
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token({}v{})", self.index, self.generation)
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Names one scheduled timer; like [`Token`] it carries a generation, so a cancelled or
/// expired id never names a later timer.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct TimerId(u64);

impl TimerId {
    /// Builds an id from a slot index and generation.
    pub const fn new(index: u32, generation: u32) -> Self {
        TimerId(((generation as u64) << 32) | index as u64)
    }

    /// The slot index.
    pub const fn index(self) -> u32 {
        self.0 as u32
    }

    /// The generation.
    pub const fn generation(self) -> u32 {
        (self.0 >> 32) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interest_set_algebra() {
        let i = Interest::READ | Interest::PRIORITY;
        assert!(i.contains(Interest::READ));
        assert!(!i.contains(Interest::WRITE));
        assert!(i.wants_read() && i.wants_priority() && !i.wants_write());
        assert!(Interest::ACCEPT.wants_read());
        assert!(Interest::CONNECT.wants_write());
        assert_eq!(i.remove(Interest::READ), Interest::PRIORITY);
        assert!(Interest::NONE.is_empty());
        assert_eq!(format!("{i:?}"), "READ | PRIORITY");
        assert_eq!(format!("{:?}", Interest::NONE), "NONE");
    }

    #[test]
    fn token_round_trips_through_u64() {
        for t in [
            Token::new(0, 0),
            Token::new(7, 3),
            Token::new(Token::MAX_INDEX, u32::MAX),
        ] {
            assert_eq!(Token::from_u64(t.to_u64()), t);
        }
        assert_ne!(Token::new(1, 1).to_u64(), Token::new(1, 2).to_u64());
        let id = TimerId::new(9, 4);
        assert_eq!((id.index(), id.generation()), (9, 4));
    }
}
