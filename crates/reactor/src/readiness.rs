//! Readiness bits: how a dispatcher remembers what an edge-triggered demultiplexer reported.
//!
//! mio (epoll in edge-triggered mode) reports a readiness once per edge. A dispatcher keeps
//! these bits per registration, clears one when an upcall answers `Continue` (the handle was
//! drained) and keeps it on `Again`, which gives handlers level-like semantics. Shared by the
//! reactor and the thread-pool dispatchers of `leader-followers`.

use pattern_core::Interest;

/// Input readiness: readable, read side closed, or an error.
pub const READ: u8 = 1;
/// Output readiness: writable, write side closed, or an error.
pub const WRITE: u8 = 2;
/// Exception readiness: priority data, or an error.
pub const EXCEPT: u8 = 4;

/// The readiness bits an interest lets through to upcalls.
pub fn mask_of(interest: Interest) -> u8 {
    let mut m = 0;
    if interest.wants_read() {
        m |= READ;
    }
    if interest.wants_write() {
        m |= WRITE;
    }
    if interest.wants_priority() {
        m |= EXCEPT;
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

/// The readiness bits a mio event reports.
pub fn bits_of(event: &mio::event::Event) -> u8 {
    let mut b = 0;
    if event.is_readable() || event.is_read_closed() {
        b |= READ;
    }
    if event.is_writable() || event.is_write_closed() {
        b |= WRITE;
    }
    if event.is_priority() {
        b |= EXCEPT;
    }
    if event.is_error() {
        // The error surfaces from the next read or write, whichever the handler does.
        b |= READ | WRITE | EXCEPT;
    }
    b
}
