//! The kernel's clocks by name, for protocols that exchange clock readings with other processes.
//!
//! `std::time::Instant` reads CLOCK_MONOTONIC but hides its epoch, which is right inside one
//! process; a reading sent to another process (systemd's `MONOTONIC_USEC`, a peer comparing
//! timestamps on one machine) needs the clock's own value.

use std::io;
use std::time::Duration;

use crate::sys::cvt;

/// CLOCK_MONOTONIC: time since an unspecified point (boot, on Linux), not counting suspend.
///
/// ```
/// let a = wrapper_facade::clock::monotonic().unwrap();
/// let b = wrapper_facade::clock::monotonic().unwrap();
/// assert!(b >= a && a > std::time::Duration::ZERO);
/// ```
pub fn monotonic() -> io::Result<Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    cvt(unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) })?;
    Ok(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}
