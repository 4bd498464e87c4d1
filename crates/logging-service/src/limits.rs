//! What slow or hostile clients may cost: the ranges of logd's numeric options, and the
//! global budget of bytes held in unfinished frames across all connections.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The largest `--max-frame`: 16 MiB. A connection holds at most one unfinished frame, so
/// this bounds what one client can park.
pub const MAX_FRAME_LIMIT: usize = 16 << 20;
/// The largest `--max-buffered`: 64 GiB.
pub const MAX_BUFFERED_LIMIT: u64 = 64 << 30;
/// The default `--max-buffered`: 64 MiB across all connections.
pub const DEFAULT_MAX_BUFFERED: usize = 64 << 20;
/// The longest `--idle-timeout`: a week. Longer values overflow no arithmetic here, but
/// there is no use for them and the timer queue's deadlines stay far from `Instant`'s end.
pub const MAX_IDLE: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// The most threads a thread-pool concurrency model may have.
pub const MAX_THREADS: usize = 1024;
/// The largest `--backlog` (the kernel caps it at `net.core.somaxconn` anyway).
pub const MAX_BACKLOG: i32 = 65_535;
/// The backlog when `/proc/sys/net/core/somaxconn` cannot be read.
pub const FALLBACK_BACKLOG: i32 = 4096;

/// The default listen backlog: as large as the kernel allows (`net.core.somaxconn`), so a
/// burst of connects waits in the queue instead of in SYN retransmits.
pub fn default_backlog() -> i32 {
    std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
        .map_or(FALLBACK_BACKLOG, |n| n.clamp(1, MAX_BACKLOG))
}

/// Parses `value` as a number in `range`, naming `flag` and the range when it is not.
pub fn parse_in<T>(flag: &str, value: &str, range: std::ops::RangeInclusive<T>) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let n: T = value.trim().parse().map_err(|_| {
        format!(
            "{flag}: `{value}` is not a number from {} to {}",
            range.start(),
            range.end()
        )
    })?;
    if range.contains(&n) {
        Ok(n)
    } else {
        Err(format!(
            "{flag}: {n} is out of range (from {} to {})",
            range.start(),
            range.end()
        ))
    }
}

/// Parses a size: a number of bytes, or with a binary suffix `K`, `M`, `G`, `T` (optionally
/// followed by `iB` or `B`): `16M` is 16 MiB. Refuses overflow and trailing junk.
///
/// ```
/// use logging_service::limits::parse_size;
/// assert_eq!(parse_size("16M"), Ok(16 << 20));
/// assert_eq!(parse_size("64KiB"), Ok(64 << 10));
/// assert_eq!(parse_size("4096"), Ok(4096));
/// assert!(parse_size("16Q").is_err() && parse_size("99999999T").is_err());
/// ```
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    let (num, unit) = t.split_at(digits);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size (bytes, or with K, M, G or T: `16M`)"))?;
    let shift = match unit.trim_end_matches("iB").trim_end_matches('B') {
        "" => 0,
        "K" | "k" => 10,
        "M" | "m" => 20,
        "G" | "g" => 30,
        "T" | "t" => 40,
        _ => return Err(format!("`{s}`: unknown size unit `{unit}` (K, M, G or T)")),
    };
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("`{s}` is too large"))
}

/// Parses a duration: a number with `ms`, `s`, `m`, `h` or `d`, or a plain number of seconds.
///
/// ```
/// use logging_service::limits::parse_duration;
/// use std::time::Duration;
/// assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
/// assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
/// assert_eq!(parse_duration("300"), Ok(Duration::from_secs(300)));
/// assert!(parse_duration("5 fortnights").is_err() && parse_duration("18446744073709551615d").is_err());
/// ```
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    let (num, unit) = t.split_at(digits);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (`300ms`, `5s`, `2m`, `1h`, `7d`)"))?;
    let ms_per = match unit {
        "ms" => 1,
        "" | "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("`{s}`: unknown unit `{unit}` (ms, s, m, h or d)")),
    };
    n.checked_mul(ms_per)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("`{s}` is too long"))
}

/// The bytes all connections may hold in unfinished frames together (`--max-buffered`).
///
/// A connection reserves what its framer holds beyond what it reserved before and gives it
/// back as frames complete and when it closes; a reservation that would pass the cap is
/// refused, and that connection is closed. Without it, 2,000 clients each parking a frame
/// one byte short of 64 KiB took logd from 3 to 140 MiB.
#[derive(Debug)]
pub struct BufferBudget {
    cap: usize,
    used: AtomicUsize,
    peak: AtomicUsize,
}

impl BufferBudget {
    /// A budget of `cap` bytes.
    pub fn new(cap: usize) -> Self {
        BufferBudget {
            cap,
            used: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        }
    }

    /// Reserves `n` more bytes; false (and nothing reserved) when that would pass the cap.
    pub fn try_grow(&self, n: usize) -> bool {
        let grown = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                u.checked_add(n).filter(|&t| t <= self.cap)
            });
        match grown {
            Ok(before) => {
                self.peak.fetch_max(before + n, Ordering::AcqRel);
                true
            }
            Err(_) => false,
        }
    }

    /// Gives back `n` bytes reserved before.
    pub fn shrink(&self, n: usize) {
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                Some(u.saturating_sub(n))
            });
    }

    /// Bytes reserved now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    /// The most bytes ever reserved at once.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Acquire)
    }

    /// The cap.
    pub fn cap(&self) -> usize {
        self.cap
    }
}

impl Default for BufferBudget {
    /// [`DEFAULT_MAX_BUFFERED`].
    fn default() -> Self {
        BufferBudget::new(DEFAULT_MAX_BUFFERED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_refuses_past_its_cap_and_keeps_the_peak() {
        let b = BufferBudget::new(100);
        assert!(b.try_grow(60));
        assert!(!b.try_grow(41), "61 + 40 would pass 100");
        assert_eq!(b.used(), 60);
        assert!(b.try_grow(40));
        assert!(!b.try_grow(1));
        b.shrink(70);
        assert_eq!((b.used(), b.peak()), (30, 100));
        assert!(!b.try_grow(usize::MAX), "no overflow");
        b.shrink(1000);
        assert_eq!(b.used(), 0);
    }

    #[test]
    fn numbers_out_of_range_or_malformed_are_refused_with_the_range() {
        assert_eq!(parse_in("--threads", "8", 1..=1024usize), Ok(8));
        for bad in ["0", "100000", "-1", "", "1e3", "18446744073709551616", " x"] {
            let e = parse_in("--threads", bad, 1..=1024usize).unwrap_err();
            assert!(
                e.starts_with("--threads: ") && e.contains("1 to 1024"),
                "{e}"
            );
        }
        let e = parse_in(
            "--idle-timeout",
            "18446744073709551615",
            0..=MAX_IDLE.as_secs(),
        )
        .unwrap_err();
        assert!(e.contains("out of range"), "{e}");
    }

    #[test]
    fn the_default_backlog_is_the_kernels_or_the_fallback() {
        let b = default_backlog();
        assert!((1..=MAX_BACKLOG).contains(&b));
        match std::fs::read_to_string("/proc/sys/net/core/somaxconn") {
            Ok(s) => assert_eq!(b, s.trim().parse::<i32>().unwrap().clamp(1, MAX_BACKLOG)),
            Err(_) => assert_eq!(b, FALLBACK_BACKLOG),
        }
    }
}
