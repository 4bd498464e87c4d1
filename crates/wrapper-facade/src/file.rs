//! Files for a logging server: [`AppendFile`] (O_APPEND with an [`FsyncPolicy`]) and [`FileLock`] (advisory `flock(2)`).

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::sys::{self, cvt, cvt_r, owned};

/// When an [`AppendFile`] forces its data to stable storage (`fdatasync(2)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FsyncPolicy {
    /// Leave it to the kernel's write-back (fastest; a crash may lose recent records).
    Never,
    /// After every append (slowest; nothing acknowledged is lost).
    EveryWrite,
    /// After an append when at least this long has passed since the last sync.
    Interval(Duration),
    /// After an append when at least this many bytes are unsynced.
    Bytes(u64),
}

impl FsyncPolicy {
    /// Whether a sync is due, given the time since the last one and the bytes written since.
    ///
    /// ```
    /// use std::time::Duration;
    /// use wrapper_facade::file::FsyncPolicy;
    /// let p = FsyncPolicy::Interval(Duration::from_secs(1));
    /// assert!(!p.is_due(Duration::from_millis(999), 10));
    /// assert!(p.is_due(Duration::from_secs(1), 10));
    /// assert!(FsyncPolicy::Bytes(4096).is_due(Duration::ZERO, 4096));
    /// ```
    pub fn is_due(&self, since_last_sync: Duration, unsynced_bytes: u64) -> bool {
        if unsynced_bytes == 0 {
            return false;
        }
        match *self {
            FsyncPolicy::Never => false,
            FsyncPolicy::EveryWrite => true,
            FsyncPolicy::Interval(every) => since_last_sync >= every,
            FsyncPolicy::Bytes(limit) => unsynced_bytes >= limit,
        }
    }
}

/// A file opened for appending only: every write lands at the current end, even with other writers.
///
/// ```
/// use wrapper_facade::file::{AppendFile, FsyncPolicy};
/// let path = std::env::temp_dir().join(format!("wf-append-doc-{}", std::process::id()));
/// let mut log = AppendFile::open(&path, FsyncPolicy::EveryWrite)?;
/// log.append(b"one\n")?;
/// log.append(b"two\n")?;
/// assert_eq!(log.sync_count(), 2);
/// assert_eq!(std::fs::read(&path)?, b"one\ntwo\n");
/// # std::fs::remove_file(&path)?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct AppendFile {
    fd: OwnedFd,
    policy: FsyncPolicy,
    last_sync: Instant,
    unsynced: u64,
    syncs: u64,
}

impl AppendFile {
    /// Opens (creating with mode 0644 if needed) `path` with `O_WRONLY | O_APPEND | O_CLOEXEC`.
    pub fn open(path: impl AsRef<Path>, policy: FsyncPolicy) -> io::Result<AppendFile> {
        let c_path = c_path(path.as_ref())?;
        let raw = cvt_r(|| {
            // SAFETY: `c_path` is NUL-terminated; the mode argument is passed as the C varargs expect.
            unsafe {
                libc::open(
                    c_path.as_ptr(),
                    libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT | libc::O_CLOEXEC,
                    0o644 as libc::c_uint,
                )
            }
        })?;
        Ok(AppendFile {
            // SAFETY: open returned a new descriptor that we alone own.
            fd: unsafe { owned(raw) },
            policy,
            last_sync: Instant::now(),
            unsynced: 0,
            syncs: 0,
        })
    }

    /// Opens like [`open`](Self::open) (read-write, so that the last byte can be read), and when
    /// the file does not end with a newline (a line torn by a crash or a failed write that could
    /// not be rolled back) appends one, so that the next append starts a line of its own.
    /// Returns the file and whether it ended a torn line.
    ///
    /// ```
    /// use wrapper_facade::file::{AppendFile, FsyncPolicy};
    /// let path = std::env::temp_dir().join(format!("wf-append-lines-doc-{}", std::process::id()));
    /// std::fs::write(&path, b"whole\ntor")?;
    /// let (mut log, repaired) = AppendFile::open_lines(&path, FsyncPolicy::Never)?;
    /// assert!(repaired);
    /// log.append(b"next\n")?;
    /// assert_eq!(std::fs::read(&path)?, b"whole\ntor\nnext\n");
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn open_lines(
        path: impl AsRef<Path>,
        policy: FsyncPolicy,
    ) -> io::Result<(AppendFile, bool)> {
        let c_path = c_path(path.as_ref())?;
        let raw = cvt_r(|| {
            // SAFETY: `c_path` is NUL-terminated; the mode argument is passed as the C varargs expect.
            unsafe {
                libc::open(
                    c_path.as_ptr(),
                    libc::O_RDWR | libc::O_APPEND | libc::O_CREAT | libc::O_CLOEXEC,
                    0o644 as libc::c_uint,
                )
            }
        })?;
        let mut file = AppendFile {
            // SAFETY: open returned a new descriptor that we alone own.
            fd: unsafe { owned(raw) },
            policy,
            last_sync: Instant::now(),
            unsynced: 0,
            syncs: 0,
        };
        let size = file.len()?;
        if size == 0 {
            return Ok((file, false));
        }
        let mut last = 0u8;
        let n = cvt_r(|| {
            // SAFETY: `last` is valid for a write of one byte; pread leaves the file offset alone.
            unsafe {
                libc::pread(
                    file.fd.as_raw_fd(),
                    (&mut last as *mut u8).cast(),
                    1,
                    (size - 1) as libc::off_t,
                )
            }
        })?;
        if n == 1 && last == b'\n' {
            return Ok((file, false));
        }
        file.append(b"\n")?;
        Ok((file, true))
    }

    /// Appends all of `record`, then syncs if the policy says so.
    ///
    /// A record that fits in one `write(2)` is placed atomically. When a write fails after
    /// part of the record was written (a full disk, a file-size limit), the part is cut off
    /// again (`ftruncate` to the length before this append), so the file never keeps a torn
    /// record, and the write's error is returned. The cut assumes no other process appended
    /// meanwhile (logd holds its data directory's lock); if the cut itself fails, the error
    /// of the write is still returned and [`open_lines`](Self::open_lines) repairs the tail.
    pub fn append(&mut self, record: &[u8]) -> io::Result<()> {
        let mut done = 0;
        while done < record.len() {
            let failure = match sys::write(self.fd.as_fd(), &record[done..]) {
                Ok(0) => io::Error::from(io::ErrorKind::WriteZero),
                Ok(n) => {
                    done += n;
                    continue;
                }
                Err(e) => e,
            };
            if done > 0 {
                // Best effort: the caller learns of the write's failure either way.
                let _ = self.cut(done as u64);
            }
            return Err(failure);
        }
        self.unsynced += record.len() as u64;
        if self.policy.is_due(self.last_sync.elapsed(), self.unsynced) {
            self.sync()?;
        }
        Ok(())
    }

    /// Cuts the last `written` bytes off the file (a partial append).
    fn cut(&mut self, written: u64) -> io::Result<()> {
        let end = self.len()?;
        let keep = end.saturating_sub(written);
        // SAFETY: ftruncate on an open descriptor; `keep` is not past the end.
        cvt_r(|| unsafe { libc::ftruncate(self.fd.as_raw_fd(), keep as libc::off_t) })?;
        Ok(())
    }

    /// The file's identity, `(device, inode)` (`fstat`): it tells whether a path still names
    /// this file (or was renamed away and replaced, as logrotate does).
    pub fn file_id(&self) -> io::Result<(u64, u64)> {
        let st = fstat(self.fd.as_fd())?;
        Ok((st.st_dev, st.st_ino))
    }

    /// Forces written data to stable storage now (`fdatasync`).
    pub fn sync(&mut self) -> io::Result<()> {
        // SAFETY: fdatasync on an open descriptor.
        cvt_r(|| unsafe { libc::fdatasync(self.fd.as_raw_fd()) })?;
        self.last_sync = Instant::now();
        self.unsynced = 0;
        self.syncs += 1;
        Ok(())
    }

    /// The policy in force.
    pub fn policy(&self) -> FsyncPolicy {
        self.policy
    }

    /// How many times this handle synced.
    pub fn sync_count(&self) -> u64 {
        self.syncs
    }

    /// Bytes appended since the last sync.
    pub fn unsynced_bytes(&self) -> u64 {
        self.unsynced
    }

    /// The file's current size (`fstat`), which includes other writers' appends.
    pub fn len(&self) -> io::Result<u64> {
        file_size(self.fd.as_fd())
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }
}

crate::impl_fd_traits!(AppendFile, fd);

/// Shared or exclusive advisory lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// Many holders at once (readers).
    Shared,
    /// One holder (a writer).
    Exclusive,
}

impl LockMode {
    fn op(self) -> libc::c_int {
        match self {
            LockMode::Shared => libc::LOCK_SH,
            LockMode::Exclusive => libc::LOCK_EX,
        }
    }
}

/// An advisory `flock(2)` on an open file, held until the guard drops.
///
/// Locks belong to the open file description, so two separate `open`s of one path conflict even in
/// one process, and cooperating processes (a second `logd`) are kept out. Advisory means a process
/// that does not ask for the lock is not stopped.
///
/// ```
/// use wrapper_facade::file::{FileLock, LockMode};
/// let path = std::env::temp_dir().join(format!("wf-lock-doc-{}", std::process::id()));
/// let first = std::fs::File::create(&path)?;
/// let second = std::fs::File::open(&path)?;
/// let held = FileLock::acquire(&first, LockMode::Exclusive)?;
/// let err = FileLock::try_acquire(&second, LockMode::Shared).unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
/// drop(held);
/// assert!(FileLock::try_acquire(&second, LockMode::Shared).is_ok());
/// # std::fs::remove_file(&path)?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct FileLock<'a> {
    fd: BorrowedFd<'a>,
    mode: LockMode,
}

impl<'a> FileLock<'a> {
    /// Blocks until the lock is granted (EINTR retried).
    pub fn acquire(file: &'a impl AsFd, mode: LockMode) -> io::Result<FileLock<'a>> {
        let fd = file.as_fd();
        // SAFETY: flock on a borrowed (thus open) descriptor.
        cvt_r(|| unsafe { libc::flock(fd.as_raw_fd(), mode.op()) })?;
        Ok(FileLock { fd, mode })
    }

    /// Takes the lock only if it is free now; `WouldBlock` otherwise.
    pub fn try_acquire(file: &'a impl AsFd, mode: LockMode) -> io::Result<FileLock<'a>> {
        let fd = file.as_fd();
        // SAFETY: flock on a borrowed (thus open) descriptor.
        cvt_r(|| unsafe { libc::flock(fd.as_raw_fd(), mode.op() | libc::LOCK_NB) })?;
        Ok(FileLock { fd, mode })
    }

    /// The mode held.
    pub fn mode(&self) -> LockMode {
        self.mode
    }
}

impl Drop for FileLock<'_> {
    fn drop(&mut self) {
        // SAFETY: flock on a descriptor still borrowed by this guard. An unlock cannot usefully fail,
        // and closing the file would release the lock anyway.
        unsafe { libc::flock(self.fd.as_raw_fd(), libc::LOCK_UN) };
    }
}

pub(crate) fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL byte in path"))
}

fn fstat(fd: BorrowedFd<'_>) -> io::Result<libc::stat> {
    // SAFETY: stat is plain old data; fstat overwrites it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is valid for writes.
    cvt(unsafe { libc::fstat(fd.as_raw_fd(), &mut st) })?;
    Ok(st)
}

pub(crate) fn file_size(fd: BorrowedFd<'_>) -> io::Result<u64> {
    Ok(fstat(fd)?.st_size as u64)
}

/// Sets this process's soft limit on the size of files it writes (`RLIMIT_FSIZE`); the hard
/// limit stays. Past it, a write fails with `EFBIG` once SIGXFSZ is ignored (else the signal
/// kills the process). Process-wide: tests that use it run in a child process.
pub fn set_file_size_limit(bytes: u64) -> io::Result<()> {
    // SAFETY: rlimit is plain old data; getrlimit overwrites it.
    let mut lim: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: `lim` is valid for writes.
    cvt(unsafe { libc::getrlimit(libc::RLIMIT_FSIZE, &mut lim) })?;
    lim.rlim_cur = (bytes as libc::rlim_t).min(lim.rlim_max);
    // SAFETY: `lim` is a valid rlimit read above.
    cvt(unsafe { libc::setrlimit(libc::RLIMIT_FSIZE, &lim) })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `test` (this module's test of that name) in a child process with `CHILD_ENV` set,
    /// where it may change process-wide state; asserts the child passed.
    fn in_child(test: &str) {
        let _forking = crate::process::spawning();
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                &format!("file::tests::{test}"),
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, "1")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("1 passed"),
            "{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    const CHILD_ENV: &str = "WF_FILE_TEST_CHILD";

    /// A write cut short by the file-size limit (EFBIG, as ENOSPC cuts one short) leaves no
    /// torn record: the part written is cut off again, and the next record starts a line.
    #[test]
    fn a_partial_append_is_rolled_back() {
        if std::env::var_os(CHILD_ENV).is_none() {
            return in_child("a_partial_append_is_rolled_back");
        }
        crate::signal::ignore(crate::signal::Signal::from_raw(libc::SIGXFSZ).unwrap()).unwrap();
        let path = std::env::temp_dir().join(format!("wf-append-efbig-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let mut f = AppendFile::open(&path, FsyncPolicy::Never).unwrap();
        f.append(b"first line\n").unwrap();
        set_file_size_limit(16).unwrap();
        let err = f.append(b"0123456789abcdefghi\n").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EFBIG), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"first line\n");
        f.append(b"ok\n").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"first line\nok\n");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn open_lines_ends_a_torn_line_once() {
        let path = std::env::temp_dir().join(format!("wf-append-torn-{}", std::process::id()));
        std::fs::write(&path, b"a\nb").unwrap();
        let (mut f, repaired) = AppendFile::open_lines(&path, FsyncPolicy::Never).unwrap();
        assert!(repaired);
        f.append(b"c\n").unwrap();
        drop(f);
        let (_, repaired) = AppendFile::open_lines(&path, FsyncPolicy::Never).unwrap();
        assert!(!repaired);
        assert_eq!(std::fs::read(&path).unwrap(), b"a\nb\nc\n");
        std::fs::remove_file(&path).unwrap();
        let (f, repaired) = AppendFile::open_lines(&path, FsyncPolicy::Never).unwrap();
        assert!(!repaired && f.is_empty().unwrap());
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn policies() {
        assert!(!FsyncPolicy::Never.is_due(Duration::MAX, u64::MAX));
        assert!(FsyncPolicy::EveryWrite.is_due(Duration::ZERO, 1));
        assert!(!FsyncPolicy::EveryWrite.is_due(Duration::MAX, 0));
        assert!(!FsyncPolicy::Bytes(10).is_due(Duration::MAX, 9));
    }

    #[test]
    fn bytes_policy_counts_syncs() {
        let path = std::env::temp_dir().join(format!("wf-append-unit-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let mut f = AppendFile::open(&path, FsyncPolicy::Bytes(8)).unwrap();
        f.append(b"1234").unwrap();
        assert_eq!((f.sync_count(), f.unsynced_bytes()), (0, 4));
        f.append(b"5678").unwrap();
        assert_eq!((f.sync_count(), f.unsynced_bytes()), (1, 0));
        assert_eq!(f.len().unwrap(), 8);
        std::fs::remove_file(&path).unwrap();
    }
}
