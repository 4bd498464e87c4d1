//! Private helpers shared by every wrapper: turning C return codes into `io::Result`, EINTR retry, descriptor flags.
//!
//! This is implementation step 4 of the pattern (an error-handling mechanism) in one place:
//! every wrapper calls the C API through [`cvt`] or [`cvt_r`], so `-1` plus `errno` always becomes an
//! [`io::Error`] that keeps the raw errno, and EINTR is retried only where the call may simply be restarted.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// A C return value that signals failure with `-1`.
pub(crate) trait IsMinusOne: Copy {
    /// Whether this value is the C failure marker `-1`.
    fn is_minus_one(self) -> bool;
}

macro_rules! impl_is_minus_one {
    ($($t:ty)*) => {$(
        impl IsMinusOne for $t {
            fn is_minus_one(self) -> bool {
                self == -1
            }
        }
    )*};
}
impl_is_minus_one! { i32 i64 isize }

/// Converts a C return value into `io::Result`, reading `errno` on `-1`.
pub(crate) fn cvt<T: IsMinusOne>(ret: T) -> io::Result<T> {
    if ret.is_minus_one() {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Calls `f` until it does not fail with EINTR.
///
/// Use only for calls that POSIX allows to restart with the same arguments
/// (read, write, send, recv, accept, waitpid, flock, ...); not for `connect` or `close`.
pub(crate) fn cvt_r<T: IsMinusOne>(mut f: impl FnMut() -> T) -> io::Result<T> {
    loop {
        match cvt(f()) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Wraps a freshly returned descriptor in an [`OwnedFd`] so that it is closed on every later error path.
///
/// # Safety
/// `fd` must be a valid, open descriptor that nothing else owns.
pub(crate) unsafe fn owned(fd: RawFd) -> OwnedFd {
    debug_assert!(fd >= 0);
    // SAFETY: the caller guarantees that `fd` is open and unowned.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Sets or clears `O_NONBLOCK` on a descriptor.
pub(crate) fn set_nonblocking(fd: BorrowedFd<'_>, nonblocking: bool) -> io::Result<()> {
    let raw = fd.as_raw_fd();
    // SAFETY: F_GETFL on a borrowed (thus open) descriptor reads flags and has no memory effects.
    let flags = cvt(unsafe { libc::fcntl(raw, libc::F_GETFL) })?;
    let new = if nonblocking {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    if new != flags {
        // SAFETY: F_SETFL with an int argument on an open descriptor.
        cvt(unsafe { libc::fcntl(raw, libc::F_SETFL, new) })?;
    }
    Ok(())
}

/// Reads whether `O_NONBLOCK` is set on a descriptor.
pub(crate) fn is_nonblocking(fd: BorrowedFd<'_>) -> io::Result<bool> {
    // SAFETY: F_GETFL on a borrowed (thus open) descriptor reads flags and has no memory effects.
    let flags = cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) })?;
    Ok(flags & libc::O_NONBLOCK != 0)
}

/// `read(2)` with EINTR retried; `WouldBlock` and other errors passed through.
pub(crate) fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    let n = cvt_r(|| {
        // SAFETY: `buf` is a valid, writable region of `buf.len()` bytes for the whole call.
        unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) }
    })?;
    Ok(n as usize)
}

/// `write(2)` with EINTR retried; `WouldBlock` and other errors passed through.
pub(crate) fn write(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    let n = cvt_r(|| {
        // SAFETY: `buf` is a valid, readable region of `buf.len()` bytes for the whole call.
        unsafe { libc::write(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len()) }
    })?;
    Ok(n as usize)
}

/// Waits with `poll(2)` until `fd` shows one of `events` or `deadline` passes.
///
/// EINTR is absorbed by recomputing the remaining time, so a signal never shortens or extends the wait.
/// Returns the `revents` seen, or `Ok(None)` when the deadline passed first.
pub(crate) fn poll_until(
    fd: BorrowedFd<'_>,
    events: libc::c_short,
    deadline: Option<Instant>,
) -> io::Result<Option<libc::c_short>> {
    loop {
        let timeout_ms: libc::c_int = match deadline {
            None => -1,
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    return Ok(None);
                }
                millis_rounded_up(d - now)
            }
        };
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events,
            revents: 0,
        };
        // SAFETY: `pfd` is a valid array of one pollfd for the whole call.
        match cvt(unsafe { libc::poll(&mut pfd, 1, timeout_ms) }) {
            Ok(0) => continue, // the deadline check at the top of the loop decides
            Ok(_) => return Ok(Some(pfd.revents)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Converts a duration to poll's milliseconds, rounding up so that we never wake before the deadline.
fn millis_rounded_up(d: Duration) -> libc::c_int {
    let ms = d.as_nanos().div_ceil(1_000_000);
    ms.min(libc::c_int::MAX as u128) as libc::c_int
}

/// Converts an optional duration to a `timeval` for `SO_RCVTIMEO`/`SO_SNDTIMEO`.
///
/// `None` means "no timeout" (all zeros); a zero duration is rejected because the kernel would read it as "none".
pub(crate) fn timeval(d: Option<Duration>) -> io::Result<libc::timeval> {
    match d {
        None => Ok(libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        }),
        Some(d) if d.is_zero() => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a zero timeout is not allowed (use None for no timeout)",
        )),
        Some(d) => {
            let secs = d.as_secs().min(libc::time_t::MAX as u64) as libc::time_t;
            let mut usec = d.subsec_micros() as libc::suseconds_t;
            if secs == 0 && usec == 0 {
                usec = 1; // below a microsecond: round up rather than become "no timeout"
            }
            Ok(libc::timeval {
                tv_sec: secs,
                tv_usec: usec,
            })
        }
    }
}

/// Converts a `timeval` read back from the kernel into an optional duration.
pub(crate) fn from_timeval(tv: libc::timeval) -> Option<Duration> {
    if tv.tv_sec == 0 && tv.tv_usec == 0 {
        None
    } else {
        Some(Duration::new(tv.tv_sec as u64, tv.tv_usec as u32 * 1000))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_round_up_never_wakes_early() {
        assert_eq!(millis_rounded_up(Duration::from_nanos(1)), 1);
        assert_eq!(millis_rounded_up(Duration::from_millis(5)), 5);
        assert_eq!(millis_rounded_up(Duration::from_micros(5001)), 6);
        assert_eq!(
            millis_rounded_up(Duration::from_secs(u64::MAX)),
            libc::c_int::MAX
        );
    }

    #[test]
    fn timeval_round_trip_and_zero_rejected() {
        assert!(timeval(Some(Duration::ZERO)).is_err());
        let tv = timeval(Some(Duration::from_millis(1500))).unwrap();
        assert_eq!((tv.tv_sec, tv.tv_usec), (1, 500_000));
        assert_eq!(from_timeval(tv), Some(Duration::from_millis(1500)));
        assert_eq!(from_timeval(timeval(None).unwrap()), None);
        let tiny = timeval(Some(Duration::from_nanos(10))).unwrap();
        assert_eq!((tiny.tv_sec, tiny.tv_usec), (0, 1));
    }

    #[test]
    fn cvt_keeps_errno() {
        // SAFETY: closing an fd number that is certainly not open only sets errno.
        let err = cvt(unsafe { libc::close(-1) }).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EBADF));
    }
}
