//! Cross-thread notification descriptors: [`EventFd`] (a kernel counter) and [`Pipe`] (a byte channel).
//!
//! Both wake an event loop that sleeps in `epoll_wait`: one thread writes, the loop's descriptor
//! becomes readable, the loop drains it. Both are close-on-exec and implement [`AsFd`] and
//! [`mio::event::Source`].

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};

use crate::sys::{self, cvt, owned};

/// A nonblocking `eventfd(2)` counter: [`notify`](Self::notify) adds one, [`drain`](Self::drain) takes everything.
///
/// Many notifications before a drain coalesce into one readable event, which is what a reactor's
/// "wake up" needs.
///
/// ```
/// use wrapper_facade::notify::EventFd;
/// let efd = EventFd::new()?;
/// assert_eq!(efd.drain()?, 0); // nothing yet: WouldBlock is absorbed
/// efd.notify()?;
/// efd.notify()?;
/// assert_eq!(efd.drain()?, 2);
/// assert_eq!(efd.drain()?, 0);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct EventFd {
    fd: OwnedFd,
}

impl EventFd {
    /// Opens a counter at zero, nonblocking and close-on-exec.
    pub fn new() -> io::Result<EventFd> {
        // SAFETY: eventfd takes plain integers and returns a new descriptor or -1.
        let raw = cvt(unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) })?;
        Ok(EventFd {
            // SAFETY: eventfd returned a new descriptor that we alone own.
            fd: unsafe { owned(raw) },
        })
    }

    /// Adds one to the counter, making the descriptor readable.
    ///
    /// If the counter is saturated (2^64 - 2 pending), the write would block; a wake-up is already
    /// pending then, so that case counts as success.
    pub fn notify(&self) -> io::Result<()> {
        match sys::write(self.fd.as_fd(), &1u64.to_ne_bytes()) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Takes every pending notification and returns how many there were (0 if none).
    ///
    /// One `read(2)`: without `EFD_SEMAPHORE` the kernel hands over the whole count and resets it
    /// to zero, so a second read could only report `WouldBlock`. A notify racing with this call
    /// is either counted here or left pending (the descriptor readable again).
    pub fn drain(&self) -> io::Result<u64> {
        let mut buf = [0u8; 8];
        match sys::read(self.fd.as_fd(), &mut buf) {
            Ok(8) => Ok(u64::from_ne_bytes(buf)),
            Ok(_) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "short read from eventfd",
            )),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
            Err(e) => Err(e),
        }
    }
}

crate::impl_fd_traits!(EventFd, fd);

/// A unidirectional `pipe2(2)`: a [`PipeReader`] and a [`PipeWriter`], both close-on-exec.
///
/// ```
/// use std::io::{Read, Write};
/// use wrapper_facade::notify::Pipe;
/// let (mut reader, mut writer) = Pipe::new()?.into_parts();
/// writer.write_all(b"wake")?;
/// drop(writer); // the reader then sees end of file
/// let mut s = String::new();
/// reader.read_to_string(&mut s)?;
/// assert_eq!(s, "wake");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Pipe {
    reader: PipeReader,
    writer: PipeWriter,
}

impl Pipe {
    /// Opens a blocking pipe.
    pub fn new() -> io::Result<Pipe> {
        Pipe::with_flags(libc::O_CLOEXEC)
    }

    /// Opens a pipe whose both ends are nonblocking, for use in an event loop.
    pub fn nonblocking() -> io::Result<Pipe> {
        Pipe::with_flags(libc::O_CLOEXEC | libc::O_NONBLOCK)
    }

    fn with_flags(flags: libc::c_int) -> io::Result<Pipe> {
        let mut fds = [-1; 2];
        // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
        cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), flags) })?;
        // SAFETY: pipe2 succeeded, so both are new descriptors that we alone own.
        let (r, w) = unsafe { (owned(fds[0]), owned(fds[1])) };
        Ok(Pipe {
            reader: PipeReader { fd: r },
            writer: PipeWriter { fd: w },
        })
    }

    /// The read end.
    pub fn reader(&self) -> &PipeReader {
        &self.reader
    }

    /// The write end.
    pub fn writer(&self) -> &PipeWriter {
        &self.writer
    }

    /// Splits the pipe into its two ends, to hand them to different owners.
    pub fn into_parts(self) -> (PipeReader, PipeWriter) {
        (self.reader, self.writer)
    }
}

/// The read end of a [`Pipe`].
#[derive(Debug)]
pub struct PipeReader {
    fd: OwnedFd,
}

impl PipeReader {
    /// Reads into `buf`; `Ok(0)` is end of file (every writer closed). EINTR is retried.
    pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        sys::read(self.fd.as_fd(), buf)
    }

    /// Switches the read end between blocking and nonblocking mode.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        sys::set_nonblocking(self.fd.as_fd(), nonblocking)
    }
}

impl Read for PipeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        PipeReader::read(self, buf)
    }
}

crate::impl_fd_traits!(PipeReader, fd);

/// The write end of a [`Pipe`].
#[derive(Debug)]
pub struct PipeWriter {
    fd: OwnedFd,
}

impl PipeWriter {
    /// Writes from `buf`, returning how much was taken. EINTR is retried.
    ///
    /// Writing to a pipe without readers fails with `BrokenPipe` only if SIGPIPE is ignored or blocked
    /// (see [`crate::signal::ignore`]); otherwise SIGPIPE's default action ends the process.
    pub fn write(&self, buf: &[u8]) -> io::Result<usize> {
        sys::write(self.fd.as_fd(), buf)
    }

    /// Switches the write end between blocking and nonblocking mode.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        sys::set_nonblocking(self.fd.as_fd(), nonblocking)
    }
}

impl Write for PipeWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        PipeWriter::write(self, buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

crate::impl_fd_traits!(PipeWriter, fd);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonblocking_pipe_reports_would_block() {
        let pipe = Pipe::nonblocking().unwrap();
        let mut buf = [0u8; 4];
        let err = pipe.reader().read(&mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        assert_eq!(err.raw_os_error(), Some(libc::EAGAIN));
        assert_eq!(pipe.writer().write(b"ab").unwrap(), 2);
        assert_eq!(pipe.reader().read(&mut buf).unwrap(), 2);
    }
}
