//! The implementor side of the bridge: links that carry telemetry frames (UDP, serial line, file).

use std::collections::VecDeque;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::Error;

/// The implementor interface: moves one opaque frame to wherever the link leads.
///
/// It is deliberately primitive (bytes in, success or error out): publishers build
/// their policies on top of it, and new links need to know nothing about publishers.
/// `send` takes `&self` so a link can be shared, e.g. behind a [`SwappableLink`].
///
/// ```
/// use gof_structural::bridge::{Link, SerialLine};
///
/// let (tx, rx) = SerialLine::with_capacity(64);
/// tx.send(b"hello")?;
/// assert_eq!(rx.try_recv_frame()?, Some(b"hello".to_vec()));
/// # Ok::<(), gof_structural::Error>(())
/// ```
pub trait Link {
    /// A short description of where frames go, for logs and narratives.
    fn describe(&self) -> String;
    /// Sends one frame.
    fn send(&self, frame: &[u8]) -> Result<(), Error>;
}

impl<L: Link + ?Sized> Link for &L {
    fn describe(&self) -> String {
        (**self).describe()
    }
    fn send(&self, frame: &[u8]) -> Result<(), Error> {
        (**self).send(frame)
    }
}

impl<L: Link + ?Sized> Link for Box<L> {
    fn describe(&self) -> String {
        (**self).describe()
    }
    fn send(&self, frame: &[u8]) -> Result<(), Error> {
        (**self).send(frame)
    }
}

impl<L: Link + ?Sized> Link for Arc<L> {
    fn describe(&self) -> String {
        (**self).describe()
    }
    fn send(&self, frame: &[u8]) -> Result<(), Error> {
        (**self).send(frame)
    }
}

/// A boxed link for the dynamic bridge: the implementation is chosen at run time.
pub type DynLink = Box<dyn Link + Send + Sync>;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded data stays consistent even if a holder panicked: every critical
    // section here is a single push, pop or pointer swap.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A link sending each frame as one UDP datagram to a fixed peer.
///
/// ```
/// use std::net::UdpSocket;
/// use gof_structural::bridge::{Link, UdpLink};
///
/// let collector = UdpSocket::bind("127.0.0.1:0")?;
/// let link = UdpLink::connect(collector.local_addr()?)?;
/// link.send(b"temp 21.5")?;
/// let mut buf = [0; 64];
/// let n = collector.recv(&mut buf)?;
/// assert_eq!(&buf[..n], b"temp 21.5");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct UdpLink {
    socket: UdpSocket,
    peer: SocketAddr,
}

impl UdpLink {
    /// Binds an ephemeral local port of the peer's address family and connects it to `peer`.
    pub fn connect(peer: SocketAddr) -> Result<Self, Error> {
        let local: SocketAddr = if peer.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            ([0u16; 8], 0).into()
        };
        let socket = UdpSocket::bind(local)?;
        socket.connect(peer)?;
        Ok(UdpLink { socket, peer })
    }

    /// The peer datagrams go to.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }
}

impl Link for UdpLink {
    fn describe(&self) -> String {
        format!("udp {}", self.peer)
    }

    fn send(&self, frame: &[u8]) -> Result<(), Error> {
        let sent = self.socket.send(frame).map_err(Error::from_io)?;
        if sent != frame.len() {
            return Err(Error::MalformedFrame(format!(
                "datagram truncated to {sent} of {} bytes",
                frame.len()
            )));
        }
        Ok(())
    }
}

const SLIP_END: u8 = 0xC0;
const SLIP_ESC: u8 = 0xDB;
const SLIP_ESC_END: u8 = 0xDC;
const SLIP_ESC_ESC: u8 = 0xDD;

/// An in-memory serial line: a bounded byte buffer between a transmitting end (a [`Link`])
/// and a receiving end, with frames delimited by SLIP (RFC 1055) byte stuffing, as on a real UART.
#[derive(Debug)]
pub struct SerialLine {
    bytes: Mutex<VecDeque<u8>>,
    capacity: usize,
}

impl SerialLine {
    /// A line that buffers at most `capacity` bytes (the receiver's FIFO); returns both ends.
    pub fn with_capacity(capacity: usize) -> (SerialLink, SerialReceiver) {
        let line = Arc::new(SerialLine {
            bytes: Mutex::new(VecDeque::new()),
            capacity,
        });
        (
            SerialLink {
                line: Arc::clone(&line),
            },
            SerialReceiver { line },
        )
    }
}

/// The transmitting end of a [`SerialLine`].
#[derive(Debug)]
pub struct SerialLink {
    line: Arc<SerialLine>,
}

impl Link for SerialLink {
    fn describe(&self) -> String {
        format!("serial line ({} byte FIFO)", self.line.capacity)
    }

    fn send(&self, frame: &[u8]) -> Result<(), Error> {
        let mut encoded = Vec::with_capacity(frame.len() + 2);
        for &byte in frame {
            match byte {
                SLIP_END => encoded.extend_from_slice(&[SLIP_ESC, SLIP_ESC_END]),
                SLIP_ESC => encoded.extend_from_slice(&[SLIP_ESC, SLIP_ESC_ESC]),
                b => encoded.push(b),
            }
        }
        encoded.push(SLIP_END);
        let mut bytes = lock(&self.line.bytes);
        let free = self.line.capacity - bytes.len();
        if encoded.len() > free {
            // A frame is all or nothing: half a frame on the wire would corrupt the next one.
            return Err(Error::LinkFull {
                needed: encoded.len(),
                capacity: self.line.capacity,
            });
        }
        bytes.extend(encoded);
        Ok(())
    }
}

/// The receiving end of a [`SerialLine`].
#[derive(Debug)]
pub struct SerialReceiver {
    line: Arc<SerialLine>,
}

impl SerialReceiver {
    /// Takes the next complete frame off the line, if one is there.
    /// A bad escape sequence drops the frame and is reported as [`Error::MalformedFrame`].
    pub fn try_recv_frame(&self) -> Result<Option<Vec<u8>>, Error> {
        let mut bytes = lock(&self.line.bytes);
        let Some(end) = bytes.iter().position(|&b| b == SLIP_END) else {
            return Ok(None);
        };
        let raw: Vec<u8> = bytes.drain(..=end).collect();
        drop(bytes);
        let mut frame = Vec::with_capacity(raw.len());
        let mut escaped = false;
        for &b in &raw[..raw.len() - 1] {
            match (escaped, b) {
                (false, SLIP_ESC) => escaped = true,
                (false, b) => frame.push(b),
                (true, SLIP_ESC_END) => {
                    frame.push(SLIP_END);
                    escaped = false;
                }
                (true, SLIP_ESC_ESC) => {
                    frame.push(SLIP_ESC);
                    escaped = false;
                }
                (true, b) => {
                    return Err(Error::MalformedFrame(format!("bad SLIP escape 0x{b:02x}")));
                }
            }
        }
        if escaped {
            return Err(Error::MalformedFrame("SLIP escape at end of frame".into()));
        }
        Ok(Some(frame))
    }

    /// Takes every complete frame off the line.
    pub fn drain_frames(&self) -> Result<Vec<Vec<u8>>, Error> {
        let mut frames = Vec::new();
        while let Some(frame) = self.try_recv_frame()? {
            frames.push(frame);
        }
        Ok(frames)
    }

    /// Bytes waiting on the line.
    pub fn buffered(&self) -> usize {
        lock(&self.line.bytes).len()
    }

    /// Puts raw bytes on the line, as line noise or a foreign transmitter would.
    pub fn inject_raw(&self, raw: &[u8]) {
        lock(&self.line.bytes).extend(raw.iter().copied());
    }
}

/// A link appending each frame, followed by a newline, to a file: a flight recorder.
///
/// ```
/// use gof_structural::bridge::{FileLink, Link};
///
/// let path = std::env::temp_dir().join(format!("gof-structural-doc-{}.log", std::process::id()));
/// let link = FileLink::create(&path)?;
/// link.send(b"temp 21.5")?;
/// assert_eq!(std::fs::read_to_string(&path)?, "temp 21.5\n");
/// # std::fs::remove_file(&path)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct FileLink {
    file: File,
    path: PathBuf,
}

impl FileLink {
    /// Creates (or truncates) the file at `path`.
    pub fn create(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref().to_path_buf();
        let file = File::create(&path)?;
        Ok(FileLink { file, path })
    }

    /// Opens the file at `path` for appending, creating it if needed.
    pub fn append(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref().to_path_buf();
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        Ok(FileLink { file, path })
    }

    /// The file frames are written to.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Link for FileLink {
    fn describe(&self) -> String {
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        format!("file {name}")
    }

    fn send(&self, frame: &[u8]) -> Result<(), Error> {
        // One write per frame, so frames from concurrent senders never interleave.
        let mut line = Vec::with_capacity(frame.len() + 1);
        line.extend_from_slice(frame);
        line.push(b'\n');
        (&self.file).write_all(&line)?;
        Ok(())
    }
}

/// A shared, swappable link: the implementation can be replaced while publishers are running.
///
/// Clones share the same slot, so one clone can live inside a publisher on its own thread while
/// another replaces the link underneath it. A frame goes out entirely on the old link or entirely
/// on the new one; the slot's lock is held only to copy a pointer, never while sending.
///
/// ```
/// use std::sync::Arc;
/// use gof_structural::bridge::{Link, SerialLine, SwappableLink};
///
/// let (serial_a, rx_a) = SerialLine::with_capacity(64);
/// let (serial_b, rx_b) = SerialLine::with_capacity(64);
/// let link = SwappableLink::new(Arc::new(serial_a));
/// link.send(b"one")?;
/// link.swap(Arc::new(serial_b));
/// link.send(b"two")?;
/// assert_eq!(rx_a.drain_frames()?, vec![b"one".to_vec()]);
/// assert_eq!(rx_b.drain_frames()?, vec![b"two".to_vec()]);
/// # Ok::<(), gof_structural::Error>(())
/// ```
#[derive(Clone)]
pub struct SwappableLink {
    slot: Arc<Mutex<Arc<dyn Link + Send + Sync>>>,
    /// How many times the link was swapped (names the link in the sequence diagrams).
    swaps: Arc<std::sync::atomic::AtomicUsize>,
}

impl SwappableLink {
    /// A slot holding `link`.
    pub fn new(link: Arc<dyn Link + Send + Sync>) -> Self {
        SwappableLink {
            slot: Arc::new(Mutex::new(link)),
            swaps: Arc::default(),
        }
    }

    /// Puts `link` in the slot and returns the one it replaces.
    /// Frames already being sent on the old link finish there.
    pub fn swap(&self, link: Arc<dyn Link + Send + Sync>) -> Arc<dyn Link + Send + Sync> {
        seq!("Client" => "SwappableLink", "swap({})", link.describe());
        let old = std::mem::replace(&mut *lock(&self.slot), link);
        self.swaps
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        old
    }

    /// The link currently in the slot.
    pub fn current(&self) -> Arc<dyn Link + Send + Sync> {
        Arc::clone(&lock(&self.slot))
    }
}

impl fmt::Debug for SwappableLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SwappableLink")
            .field("current", &self.current().describe())
            .finish()
    }
}

impl Link for SwappableLink {
    fn describe(&self) -> String {
        format!("swappable ({})", self.current().describe())
    }

    fn send(&self, frame: &[u8]) -> Result<(), Error> {
        // Copy the pointer and release the slot before calling into the link.
        let link = self.current();
        seq!(
            "SwappableLink" => format!(
                "link {} in the slot: {}",
                self.swaps.load(std::sync::atomic::Ordering::Relaxed) + 1,
                link.describe()
            ),
            "send(frame)"
        );
        link.send(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slip_escapes_delimiters_inside_frames() {
        let (tx, rx) = SerialLine::with_capacity(64);
        let payload = [1, SLIP_END, 2, SLIP_ESC, 3];
        tx.send(&payload).unwrap();
        assert_eq!(rx.buffered(), payload.len() + 2 + 1);
        assert_eq!(rx.try_recv_frame().unwrap(), Some(payload.to_vec()));
        assert_eq!(rx.try_recv_frame().unwrap(), None);
    }

    #[test]
    fn a_full_line_rejects_the_whole_frame() {
        let (tx, rx) = SerialLine::with_capacity(8);
        tx.send(b"abcd").unwrap();
        let err = tx.send(b"efgh").unwrap_err();
        assert!(matches!(
            err,
            Error::LinkFull {
                needed: 5,
                capacity: 8
            }
        ));
        assert_eq!(rx.drain_frames().unwrap(), vec![b"abcd".to_vec()]);
        tx.send(b"efgh").unwrap();
    }

    #[test]
    fn line_noise_is_an_error_and_the_line_recovers() {
        let (tx, rx) = SerialLine::with_capacity(64);
        rx.inject_raw(&[b'x', SLIP_ESC, b'y', SLIP_END]);
        tx.send(b"ok").unwrap();
        assert!(matches!(rx.try_recv_frame(), Err(Error::MalformedFrame(_))));
        assert_eq!(rx.try_recv_frame().unwrap(), Some(b"ok".to_vec()));
    }
}
