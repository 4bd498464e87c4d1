//! The remote proxy over TCP: a client transport with deadlines, and a threaded device server.

use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::remote::{DeviceSkeleton, Transport};
use super::{DeviceService, wire};
use crate::Error;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Limits for a [`TcpTransport`]. Every duration must be non-zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpConfig {
    /// How long to wait for a connection to be established.
    pub connect_timeout: Duration,
    /// How long writing one request may take.
    pub write_timeout: Duration,
    /// How long the whole reply may take to arrive, from the end of the request:
    /// a deadline, not a per-read timeout, so a peer trickling bytes cannot stretch it.
    pub reply_timeout: Duration,
    /// The largest frame payload sent or accepted.
    pub max_frame: usize,
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            connect_timeout: Duration::from_secs(2),
            write_timeout: Duration::from_secs(2),
            reply_timeout: Duration::from_secs(2),
            max_frame: wire::DEFAULT_MAX_FRAME,
        }
    }
}

/// A reader that fails with `TimedOut` once a deadline has passed.
struct DeadlineReader<'a> {
    stream: &'a TcpStream,
    deadline: Instant,
}

impl Read for DeadlineReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        self.stream.set_read_timeout(Some(remaining))?;
        (&mut &*self.stream).read(buf)
    }
}

/// A [`Transport`] over one TCP connection, opened on first use.
///
/// Calls are serialised on the connection (one request, then its reply). After any error
/// the connection is dropped, because a late reply could otherwise be taken for the answer to
/// the next request; the next call connects afresh.
///
/// ```
/// use std::net::TcpListener;
/// use gof_structural::proxy::{DeviceService, DeviceSkeleton, FieldDevice, RemoteDevice, TcpConfig, TcpDeviceServer, TcpTransport};
///
/// let server = TcpDeviceServer::spawn(
///     TcpListener::bind("127.0.0.1:0")?,
///     DeviceSkeleton::new(FieldDevice::new("TC-100", 7)),
///     TcpConfig::default().max_frame,
/// )?;
/// let remote = RemoteDevice::new(TcpTransport::new(server.local_addr(), TcpConfig::default()));
/// assert_eq!(remote.identify()?, "TC-100 #7");
/// server.shutdown();
/// assert!(remote.identify().is_err()); // an error, not a hang
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct TcpTransport {
    peer: SocketAddr,
    config: TcpConfig,
    stream: Mutex<Option<TcpStream>>,
    connects: AtomicU64,
}

impl TcpTransport {
    /// A transport to `peer`; nothing is connected until the first call.
    pub fn new(peer: SocketAddr, config: TcpConfig) -> Self {
        TcpTransport {
            peer,
            config,
            stream: Mutex::new(None),
            connects: AtomicU64::new(0),
        }
    }

    /// The server this transport talks to.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// How many connections have been opened so far.
    pub fn connects(&self) -> u64 {
        self.connects.load(Ordering::Relaxed)
    }

    fn connect(&self) -> Result<TcpStream, Error> {
        let stream = TcpStream::connect_timeout(&self.peer, self.config.connect_timeout)
            .map_err(Error::from_io)?;
        stream.set_write_timeout(Some(self.config.write_timeout))?;
        stream.set_nodelay(true)?;
        self.connects.fetch_add(1, Ordering::Relaxed);
        Ok(stream)
    }

    fn exchange(&self, stream: &TcpStream, request: &[u8]) -> Result<Vec<u8>, Error> {
        wire::write_frame(&mut &*stream, request, self.config.max_frame)?;
        let deadline = Instant::now() + self.config.reply_timeout;
        wire::read_frame(
            &mut DeadlineReader { stream, deadline },
            self.config.max_frame,
        )
    }
}

impl Transport for TcpTransport {
    fn round_trip(&self, request: &[u8]) -> Result<Vec<u8>, Error> {
        if request.len() > self.config.max_frame {
            // Refused before touching the connection, which stays usable.
            return Err(Error::FrameTooLarge {
                len: request.len(),
                max: self.config.max_frame,
            });
        }
        // The lock serialises request/reply pairs on the connection; no user code runs under it.
        let mut slot = lock(&self.stream);
        let stream = match slot.take() {
            Some(stream) => stream,
            None => {
                seq!(note "TcpTransport", "no connection: connect");
                self.connect()
                    .inspect_err(|e| seq!(fail "TcpTransport" => "RemoteDevice", "Err({e})"))?
            }
        };
        seq!("TcpTransport" => "DeviceSkeleton", "frame (length + payload)");
        let reply = self.exchange(&stream, request).inspect_err(
            |e| seq!(fail "TcpTransport" => "RemoteDevice", "Err({e}), connection dropped"),
        )?;
        *slot = Some(stream);
        seq!(reply "TcpTransport" => "RemoteDevice", "reply payload");
        Ok(reply)
    }
}

#[derive(Debug, Default)]
struct Connections {
    next_id: u64,
    open: Vec<(u64, TcpStream)>,
    workers: Vec<JoinHandle<()>>,
}

/// A threaded TCP server for a [`DeviceSkeleton`]: one thread accepts, one thread serves each connection.
///
/// [`shutdown`](TcpDeviceServer::shutdown) (or drop) stops accepting, closes every open
/// connection and joins every thread; clients in the middle of a call see [`Error::Disconnected`].
#[derive(Debug)]
pub struct TcpDeviceServer {
    local_addr: SocketAddr,
    stopping: Arc<AtomicBool>,
    connections: Arc<Mutex<Connections>>,
    acceptor: Option<JoinHandle<()>>,
}

impl TcpDeviceServer {
    /// Serves `skeleton` on `listener`, with frames up to `max_frame` bytes.
    pub fn spawn<S>(
        listener: TcpListener,
        skeleton: DeviceSkeleton<S>,
        max_frame: usize,
    ) -> Result<Self, Error>
    where
        S: DeviceService + Send + Sync + 'static,
    {
        let local_addr = listener.local_addr()?;
        let stopping = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(Mutex::new(Connections::default()));
        let skeleton = Arc::new(skeleton);
        let acceptor = {
            let stopping = Arc::clone(&stopping);
            let connections = Arc::clone(&connections);
            thread::Builder::new()
                .name("device-server-accept".into())
                .spawn(move || {
                    accept_loop(&listener, &skeleton, max_frame, &stopping, &connections);
                })?
        };
        Ok(TcpDeviceServer {
            local_addr,
            stopping,
            connections,
            acceptor: Some(acceptor),
        })
    }

    /// The address clients connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// How many connections are open right now.
    pub fn open_connections(&self) -> usize {
        lock(&self.connections).open.len()
    }

    /// Stops the server and waits for all its threads.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let Some(acceptor) = self.acceptor.take() else {
            return;
        };
        self.stopping.store(true, Ordering::SeqCst);
        // Wake the acceptor blocked in `accept` with a connection of our own.
        let _ = TcpStream::connect(self.local_addr);
        let _ = acceptor.join();
        let workers = {
            let mut conns = lock(&self.connections);
            for (_, stream) in &conns.open {
                let _ = stream.shutdown(Shutdown::Both);
            }
            std::mem::take(&mut conns.workers)
        };
        for worker in workers {
            let _ = worker.join();
        }
    }
}

impl Drop for TcpDeviceServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop<S: DeviceService + Send + Sync + 'static>(
    listener: &TcpListener,
    skeleton: &Arc<DeviceSkeleton<S>>,
    max_frame: usize,
    stopping: &AtomicBool,
    connections: &Arc<Mutex<Connections>>,
) {
    for stream in listener.incoming() {
        if stopping.load(Ordering::SeqCst) {
            return;
        }
        // A failed accept (e.g. the peer reset before we got to it) concerns that peer only.
        let Ok(stream) = stream else { continue };
        let Ok(watch) = stream.try_clone() else {
            continue;
        };
        let mut conns = lock(connections);
        conns.workers.retain(|w| !w.is_finished());
        let id = conns.next_id;
        conns.next_id += 1;
        conns.open.push((id, watch));
        let skeleton = Arc::clone(skeleton);
        let registry = Arc::clone(connections);
        let worker = thread::Builder::new()
            .name(format!("device-server-conn-{id}"))
            .spawn(move || {
                let _ = stream.set_nodelay(true);
                // Whatever ends the connection (clean close, bad frame, reset) ends only this one.
                let _ = skeleton.serve(&stream, max_frame);
                let _ = stream.shutdown(Shutdown::Both);
                lock(&registry).open.retain(|(open_id, _)| *open_id != id);
            });
        match worker {
            Ok(worker) => conns.workers.push(worker),
            Err(_) => conns.open.retain(|(open_id, _)| *open_id != id),
        }
    }
}
