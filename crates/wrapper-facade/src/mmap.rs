//! Memory-mapped files: [`MappedFile`] (read-only) and [`MappedFileMut`] (read-write, shared with the file).
//!
//! # Soundness and other processes
//! A mapping is a `&[u8]` whose bytes live in the page cache: if another process truncates or
//! rewrites the file meanwhile, reads see changed bytes or fault with SIGBUS, which no Rust API can
//! prevent. To exclude *cooperating* processes, each mapping holds an advisory lock on the file for
//! its whole life (shared for [`MappedFile`], exclusive for [`MappedFileMut`]); opening fails with
//! `WouldBlock` while a conflicting mapping exists. Processes that ignore `flock` are out of reach.
//! A `flock` lock belongs to the open file description, so a child process that another thread
//! spawns holds a copy of it from its fork until its exec (the descriptor is close-on-exec): a
//! mapping dropped in that window still excludes a conflicting one for that long (see
//! [`crate::process::without_spawns`]).

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;
use std::ptr::NonNull;

use crate::file::{c_path, file_size};
use crate::sys::{cvt, cvt_r, owned};

/// A region returned by `mmap`, unmapped on drop. Zero-length files get no mapping at all.
#[derive(Debug)]
struct Region {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the region is plain memory; the wrappers hand out `&[u8]`/`&mut [u8]` under Rust's
// borrowing rules, so sending or sharing it between threads is as safe as for a Vec<u8>.
unsafe impl Send for Region {}
// SAFETY: see above.
unsafe impl Sync for Region {}

impl Region {
    fn map(fd: &OwnedFd, len: usize, prot: libc::c_int) -> io::Result<Region> {
        if len == 0 {
            // mmap rejects length 0; an empty slice needs no pages.
            return Ok(Region {
                ptr: NonNull::dangling(),
                len: 0,
            });
        }
        // SAFETY: a fresh shared mapping of an open descriptor; the kernel picks the address.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                prot,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Region {
            ptr: NonNull::new(ptr.cast()).ok_or_else(|| io::Error::other("mmap returned NULL"))?,
            len,
        })
    }

    fn as_slice(&self) -> &[u8] {
        // SAFETY: `ptr` is valid for `len` readable bytes while the region lives (or dangling with len 0).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as above, mapped writable by MappedFileMut, and `&mut self` makes the borrow unique.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }

    fn sync(&self, flags: libc::c_int) -> io::Result<()> {
        if self.len == 0 {
            return Ok(());
        }
        // SAFETY: msync over exactly the region we mapped.
        cvt(unsafe { libc::msync(self.ptr.as_ptr().cast(), self.len, flags) })?;
        Ok(())
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        if self.len != 0 {
            // SAFETY: unmapping exactly the region we mapped, once; no slice outlives `self`.
            unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
        }
    }
}

fn open(path: &Path, flags: libc::c_int, lock: libc::c_int) -> io::Result<OwnedFd> {
    let c_path = c_path(path)?;
    let raw = cvt_r(|| {
        // SAFETY: `c_path` is NUL-terminated; the mode argument is passed as the C varargs expect.
        unsafe {
            libc::open(
                c_path.as_ptr(),
                flags | libc::O_CLOEXEC,
                0o644 as libc::c_uint,
            )
        }
    })?;
    // SAFETY: open returned a new descriptor that we alone own.
    let fd = unsafe { owned(raw) };
    // SAFETY: flock on an open descriptor; the lock lives as long as `fd`.
    cvt_r(|| unsafe { libc::flock(fd.as_raw_fd(), lock | libc::LOCK_NB) })?;
    Ok(fd)
}

fn to_len(size: u64) -> io::Result<usize> {
    usize::try_from(size)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file too large to map"))
}

/// A read-only view of a whole file.
///
/// ```
/// use wrapper_facade::mmap::MappedFile;
/// let path = std::env::temp_dir().join(format!("wf-mmap-doc-{}", std::process::id()));
/// std::fs::write(&path, b"mapped bytes")?;
/// let map = MappedFile::open(&path)?;
/// assert_eq!(map.as_slice(), b"mapped bytes");
/// # std::fs::remove_file(&path)?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct MappedFile {
    region: Region,
    fd: OwnedFd,
}

impl MappedFile {
    /// Maps `path` read-only, holding a shared advisory lock on it.
    pub fn open(path: impl AsRef<Path>) -> io::Result<MappedFile> {
        let fd = open(path.as_ref(), libc::O_RDONLY, libc::LOCK_SH)?;
        let len = to_len(file_size(fd.as_fd())?)?;
        let region = Region::map(&fd, len, libc::PROT_READ)?;
        Ok(MappedFile { region, fd })
    }

    /// The file's bytes.
    pub fn as_slice(&self) -> &[u8] {
        self.region.as_slice()
    }

    /// The mapped length.
    pub fn len(&self) -> usize {
        self.region.len
    }

    /// Whether the file was empty.
    pub fn is_empty(&self) -> bool {
        self.region.len == 0
    }
}

crate::impl_fd_traits!(MappedFile, fd);

/// A read-write view of a whole file; writes reach the file (flush to force them to disk).
///
/// ```
/// use wrapper_facade::mmap::MappedFileMut;
/// let path = std::env::temp_dir().join(format!("wf-mmapmut-doc-{}", std::process::id()));
/// let mut map = MappedFileMut::create(&path, 5)?;
/// map.as_mut_slice().copy_from_slice(b"hello");
/// map.flush()?;
/// drop(map);
/// assert_eq!(std::fs::read(&path)?, b"hello");
/// # std::fs::remove_file(&path)?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct MappedFileMut {
    region: Region,
    fd: OwnedFd,
}

impl MappedFileMut {
    /// Maps an existing file read-write at its current size, holding an exclusive advisory lock.
    pub fn open(path: impl AsRef<Path>) -> io::Result<MappedFileMut> {
        let fd = open(path.as_ref(), libc::O_RDWR, libc::LOCK_EX)?;
        let len = to_len(file_size(fd.as_fd())?)?;
        let region = Region::map(&fd, len, libc::PROT_READ | libc::PROT_WRITE)?;
        Ok(MappedFileMut { region, fd })
    }

    /// Creates (or opens) `path`, sets its size to `len` bytes (new bytes are zero), and maps it.
    pub fn create(path: impl AsRef<Path>, len: u64) -> io::Result<MappedFileMut> {
        let fd = open(path.as_ref(), libc::O_RDWR | libc::O_CREAT, libc::LOCK_EX)?;
        let off = libc::off_t::try_from(len)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "length too large"))?;
        // SAFETY: ftruncate on an open descriptor we hold the exclusive lock on.
        cvt_r(|| unsafe { libc::ftruncate(fd.as_raw_fd(), off) })?;
        let region = Region::map(&fd, to_len(len)?, libc::PROT_READ | libc::PROT_WRITE)?;
        Ok(MappedFileMut { region, fd })
    }

    /// The file's bytes.
    pub fn as_slice(&self) -> &[u8] {
        self.region.as_slice()
    }

    /// The file's bytes, writable.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        self.region.as_mut_slice()
    }

    /// Writes dirty pages to the file and waits (`msync(MS_SYNC)`).
    pub fn flush(&self) -> io::Result<()> {
        self.region.sync(libc::MS_SYNC)
    }

    /// Schedules dirty pages for writing without waiting (`msync(MS_ASYNC)`).
    pub fn flush_async(&self) -> io::Result<()> {
        self.region.sync(libc::MS_ASYNC)
    }

    /// The mapped length.
    pub fn len(&self) -> usize {
        self.region.len
    }

    /// Whether the mapping is empty.
    pub fn is_empty(&self) -> bool {
        self.region.len == 0
    }
}

crate::impl_fd_traits!(MappedFileMut, fd);
