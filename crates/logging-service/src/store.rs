//! Where records go: per-host files with rotation and an fsync policy, and an upstream forwarder.

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use parking_lot::Mutex;
use wrapper_facade::file::{AppendFile, FsyncPolicy};

use crate::record::{LogRecord, RecordBatch};

/// A destination for batches of records (the storage strategy).
pub trait RecordSink: Send + std::fmt::Debug {
    /// Takes a batch; every record of it is written (or queued for writing) before this returns.
    fn write_batch(&mut self, batch: &RecordBatch) -> io::Result<()>;
    /// Forces what was written to its final place (disk, upstream).
    fn flush(&mut self) -> io::Result<()>;
    /// Reopens files (after an external rotation), on SIGHUP.
    fn reopen(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// When stored records are forced to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Durability {
    /// Never: the kernel writes back when it likes.
    None,
    /// At most this long after a write.
    Interval(Duration),
    /// After every batch (one read from one connection).
    EveryBatch,
}

impl std::str::FromStr for Durability {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(Durability::None),
            "batch" | "every-batch" => Ok(Durability::EveryBatch),
            ms => ms
                .strip_suffix("ms")
                .and_then(|n| n.parse().ok())
                .map(|n| Durability::Interval(Duration::from_millis(n)))
                .ok_or_else(|| format!("fsync policy `{s}`: expected none, batch or <N>ms")),
        }
    }
}

/// Configuration of a [`FileStore`].
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Directory of the per-host files.
    pub dir: PathBuf,
    /// A host's file is rotated before it would grow past this many bytes.
    pub rotate_bytes: u64,
    /// Rotated files kept per host (`HOST.log.1` newest ..= `HOST.log.N`).
    pub keep: usize,
    /// The fsync policy.
    pub durability: Durability,
}

impl StoreConfig {
    /// The embedded default: `./logd-data`, 16 MiB files, 4 rotated, no forced syncs.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        StoreConfig {
            dir: dir.into(),
            rotate_bytes: 16 << 20,
            keep: 4,
            durability: Durability::None,
        }
    }
}

struct HostFile {
    file: AppendFile,
    size: u64,
}

/// One append-only file per client host, `DIR/HOST.log`, one record per line.
pub struct FileStore {
    cfg: StoreConfig,
    files: HashMap<String, HostFile>,
    line: String,
}

impl std::fmt::Debug for FileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStore")
            .field("cfg", &self.cfg)
            .field("open", &self.files.len())
            .finish()
    }
}

impl FileStore {
    /// Creates the directory if needed.
    pub fn open(cfg: StoreConfig) -> io::Result<Self> {
        std::fs::create_dir_all(&cfg.dir)?;
        Ok(FileStore {
            cfg,
            files: HashMap::new(),
            line: String::new(),
        })
    }

    /// The path of `host`'s current file.
    pub fn path_of(&self, host: &str) -> PathBuf {
        self.cfg.dir.join(format!("{host}.log"))
    }

    fn policy(&self) -> FsyncPolicy {
        match self.cfg.durability {
            Durability::Interval(d) => FsyncPolicy::Interval(d),
            // Batches are synced by `write_batch` itself.
            Durability::None | Durability::EveryBatch => FsyncPolicy::Never,
        }
    }

    fn rotate(&mut self, host: &str) -> io::Result<()> {
        self.files.remove(host);
        let base = self.path_of(host);
        let numbered = |n: usize| PathBuf::from(format!("{}.{n}", base.display()));
        if self.cfg.keep == 0 {
            return std::fs::remove_file(&base);
        }
        let _ = std::fs::remove_file(numbered(self.cfg.keep));
        for n in (1..self.cfg.keep).rev() {
            if numbered(n).exists() {
                std::fs::rename(numbered(n), numbered(n + 1))?;
            }
        }
        std::fs::rename(&base, numbered(1))
    }

    fn file(&mut self, host: &str, incoming: u64) -> io::Result<&mut HostFile> {
        let over = self
            .files
            .get(host)
            .map(|f| f.size)
            .or_else(|| std::fs::metadata(self.path_of(host)).ok().map(|m| m.len()))
            .is_some_and(|size| size > 0 && size + incoming > self.cfg.rotate_bytes);
        if over {
            self.rotate(host)?;
        }
        if !self.files.contains_key(host) {
            let path = self.path_of(host);
            let file = AppendFile::open(&path, self.policy())?;
            let size = file.len()?;
            self.files.insert(host.to_string(), HostFile { file, size });
        }
        Ok(self.files.get_mut(host).expect("just inserted"))
    }
}

impl RecordSink for FileStore {
    fn write_batch(&mut self, batch: &RecordBatch) -> io::Result<()> {
        // One append per host per batch: whole lines, never interleaved with other writers.
        let mut records = batch.iter().peekable();
        while let Some(first) = records.next() {
            let host = first.host;
            let mut line = std::mem::take(&mut self.line);
            line.clear();
            first.write_line(&mut line);
            while let Some(r) = records.next_if(|r| r.host == host) {
                r.write_line(&mut line);
            }
            let durability = self.cfg.durability;
            let f = self.file(host, line.len() as u64)?;
            f.file.append(line.as_bytes())?;
            f.size += line.len() as u64;
            if durability == Durability::EveryBatch {
                f.file.sync()?;
            }
            self.line = line;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        for f in self.files.values_mut() {
            f.file.sync()?;
        }
        Ok(())
    }

    fn reopen(&mut self) -> io::Result<()> {
        self.flush()?;
        self.files.clear();
        Ok(())
    }
}

/// Counters of a [`Forwarder`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ForwardStats {
    /// Records sent upstream.
    pub sent: u64,
    /// Records dropped because the queue was full (upstream down or slow).
    pub dropped: u64,
}

/// Forwards records upstream as RFC 5424 messages with RFC 6587 octet counting over TCP
/// (which another `logd`, rsyslog and syslog-ng all accept), from a thread of its own so that
/// a slow upstream never blocks the dispatcher.
///
/// Records wait in a bounded queue; when it is full, new records are dropped and counted
/// (the local files still have them). A broken connection is re-established with back-off.
pub struct Forwarder {
    tx: Option<Sender<Vec<u8>>>,
    thread: Option<JoinHandle<()>>,
    stats: Arc<Mutex<ForwardStats>>,
}

impl std::fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarder")
            .field("stats", &*self.stats.lock())
            .finish()
    }
}

/// RFC 5424 with octet counting, as a forwarder sends it.
///
/// The header fields are made what RFC 5424 allows, whatever the original sender put in
/// them: printable US-ASCII only (anything else becomes `_`), at most the RFC's length for
/// each (TIMESTAMP 32, HOSTNAME 255, APP-NAME 48, PROCID 128), `-` when empty. The message
/// goes as it is: octet counting frames it.
///
/// ```
/// use logging_service::record::LogRecord;
/// use logging_service::store::encode_rfc5424;
///
/// let r = LogRecord { time: "2023-11-14T22:13:20Z", host: "gw 1", app: "app\nx", pid: "",
///                     facility: 1, severity: 6, message: "hello" };
/// assert_eq!(encode_rfc5424(&r), b"49 <14>1 2023-11-14T22:13:20Z gw_1 app_x - - - hello");
/// ```
pub fn encode_rfc5424(r: &LogRecord<'_>) -> Vec<u8> {
    fn header_field(out: &mut String, s: &str, max: usize) {
        if s.is_empty() {
            out.push('-');
        } else {
            out.extend(
                s.chars()
                    .take(max)
                    .map(|c| if c.is_ascii_graphic() { c } else { '_' }),
            );
        }
        out.push(' ');
    }
    let pri = u16::from(r.facility) * 8 + u16::from(r.severity);
    let mut msg = format!("<{pri}>1 ");
    header_field(&mut msg, r.time, 32);
    header_field(&mut msg, r.host, 255);
    header_field(&mut msg, r.app, 48);
    header_field(&mut msg, r.pid, 128);
    msg.push_str("- - ");
    msg.push_str(r.message);
    let mut out = format!("{} ", msg.len()).into_bytes();
    out.extend(msg.into_bytes());
    out
}

impl Forwarder {
    /// Starts forwarding to `upstream`, with a queue of `capacity` records.
    pub fn start(upstream: SocketAddr, capacity: usize) -> Self {
        let (tx, rx) = crossbeam_channel::bounded(capacity);
        let stats = Arc::new(Mutex::new(ForwardStats::default()));
        let s = stats.clone();
        let thread = std::thread::Builder::new()
            .name("logd-forward".into())
            .spawn(move || forward_loop(upstream, rx, s))
            .expect("spawn forwarder");
        Forwarder {
            tx: Some(tx),
            thread: Some(thread),
            stats,
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> ForwardStats {
        *self.stats.lock()
    }
}

fn forward_loop(upstream: SocketAddr, rx: Receiver<Vec<u8>>, stats: Arc<Mutex<ForwardStats>>) {
    let mut conn: Option<TcpStream> = None;
    let mut backoff = Duration::from_millis(50);
    let mut pending: Option<Vec<u8>> = None;
    let mut closing_deadline: Option<Instant> = None;
    loop {
        let msg = match pending.take() {
            Some(m) => m,
            None => match rx.recv() {
                Ok(m) => m,
                Err(_) => break,
            },
        };
        if conn.is_none() {
            match TcpStream::connect_timeout(&upstream, Duration::from_secs(2)) {
                Ok(c) => {
                    let _ = c.set_write_timeout(Some(Duration::from_secs(5)));
                    conn = Some(c);
                    backoff = Duration::from_millis(50);
                }
                Err(e) => {
                    tracing::warn!(%upstream, error = %e, "forwarding: connect failed");
                    pending = Some(msg);
                    // After shutdown began, give up once the deadline passes.
                    let deadline = *closing_deadline
                        .get_or_insert_with(|| Instant::now() + Duration::from_secs(10));
                    if rx.is_empty() && Instant::now() > deadline {
                        break;
                    }
                    std::thread::park_timeout(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            }
        }
        closing_deadline = None;
        let c = conn.as_mut().expect("connected above");
        match c.write_all(&msg) {
            Ok(()) => stats.lock().sent += 1,
            Err(e) => {
                tracing::warn!(%upstream, error = %e, "forwarding: send failed; reconnecting");
                conn = None;
                pending = Some(msg);
            }
        }
    }
    if let Some(mut c) = conn {
        let _ = c.flush();
    }
}

impl RecordSink for Forwarder {
    fn write_batch(&mut self, batch: &RecordBatch) -> io::Result<()> {
        let Some(tx) = &self.tx else { return Ok(()) };
        for r in batch.iter() {
            match tx.try_send(encode_rfc5424(&r)) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => self.stats.lock().dropped += 1,
                Err(TrySendError::Disconnected(_)) => {
                    return Err(io::Error::other("forwarder thread ended"));
                }
            }
        }
        Ok(())
    }

    /// Stops accepting, sends what is queued, and waits for the thread.
    fn flush(&mut self) -> io::Result<()> {
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            t.join()
                .map_err(|_| io::Error::other("forwarder panicked"))?;
        }
        Ok(())
    }
}

/// Counters of the whole service.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Records stored.
    pub records: u64,
    /// Records that arrived in ACE's format.
    pub ace: u64,
    /// Records that arrived as syslog.
    pub syslog: u64,
    /// Frames or messages refused as malformed.
    pub rejected: u64,
    /// Connections accepted.
    pub connections: u64,
    /// Connections closed for being idle.
    pub idle_closed: u64,
    // Ingest limits (the counters of `crate::limits`), kept in one block.
    /// Connections closed because a frame announced more than `--max-frame` (an RFC 6587
    /// octet count, an ACE header length).
    pub oversized_closed: u64,
    /// UDP datagrams dropped for being larger than `--max-frame`.
    pub udp_oversized: u64,
    /// Connections closed for holding an unfinished frame past the idle timeout (slowloris).
    pub idle_partial: u64,
    /// Connections closed because their partial frame would have passed `--max-buffered`.
    pub buffer_cap_closed: u64,
    /// Bytes held in partial frames across all connections, as of the last change (a gauge).
    pub buffered_bytes: u64,
    /// The most bytes ever held in partial frames at once; never above `--max-buffered`.
    pub buffered_peak: u64,
    /// Times accepting stopped for lack of descriptors (`EMFILE`, `ENFILE`) and was retried.
    pub accept_backoffs: u64,
}

/// Every sink behind one lock, with the counters: what the handlers share.
#[derive(Debug)]
pub struct Output {
    sinks: Mutex<Vec<Box<dyn RecordSink>>>,
    stats: Mutex<Stats>,
}

impl Output {
    /// An output writing to `sinks`, in order.
    pub fn new(sinks: Vec<Box<dyn RecordSink>>) -> Arc<Self> {
        Arc::new(Output {
            sinks: Mutex::new(sinks),
            stats: Mutex::new(Stats::default()),
        })
    }

    /// Writes a batch to every sink; the first error is returned after all were tried.
    pub fn write(&self, batch: &RecordBatch) -> io::Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut first_err = None;
        for s in self.sinks.lock().iter_mut() {
            if let Err(e) = s.write_batch(batch) {
                first_err.get_or_insert(e);
            }
        }
        self.stats.lock().records += batch.len() as u64;
        first_err.map_or(Ok(()), Err)
    }

    /// Updates the counters.
    pub fn count(&self, f: impl FnOnce(&mut Stats)) {
        f(&mut self.stats.lock());
    }

    /// The counters so far.
    pub fn stats(&self) -> Stats {
        *self.stats.lock()
    }

    /// Flushes every sink (at shutdown: files synced, forwarder drained).
    pub fn flush(&self) -> io::Result<()> {
        for s in self.sinks.lock().iter_mut() {
            s.flush()?;
        }
        Ok(())
    }

    /// Reopens every sink's files.
    pub fn reopen(&self) -> io::Result<()> {
        for s in self.sinks.lock().iter_mut() {
            s.reopen()?;
        }
        Ok(())
    }
}

/// Reads every stored line of `dir` (current files only), for tests and the demo.
pub fn read_all(dir: &Path) -> io::Result<Vec<(String, Vec<String>)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "log") {
            let host = path
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let lines = std::fs::read_to_string(&path)?
                .lines()
                .map(str::to_string)
                .collect();
            out.push((host, lines));
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syslog::{Dialect, parse};
    use proptest::prelude::*;

    proptest! {
        /// Whatever the original sender put in a record, what the forwarder sends is one RFC
        /// 5424 message whose header fields are printable US-ASCII within the RFC's lengths.
        #[test]
        fn forwarded_headers_are_what_rfc_5424_allows(
            time in any::<String>(),
            host in any::<String>(),
            app in any::<String>(),
            pid in any::<String>(),
            message in "[^\r\n\0]*",
        ) {
            let r = LogRecord { time: &time, host: &host, app: &app, pid: &pid, facility: 1, severity: 6, message: &message };
            let framed = encode_rfc5424(&r);
            let text = std::str::from_utf8(&framed).unwrap();
            let (count, body) = text.split_once(' ').unwrap();
            prop_assert_eq!(count.parse::<usize>().unwrap(), body.len());
            let m = parse(body.as_bytes()).unwrap();
            prop_assert_eq!(m.dialect, Dialect::Rfc5424);
            for (field, max) in [(&m.timestamp, 32), (&m.hostname, 255), (&m.app, 48), (&m.procid, 128)] {
                if let Some(f) = field {
                    prop_assert!(f.len() <= max && f.chars().all(|c| c.is_ascii_graphic()), "{f:?}");
                }
            }
            prop_assert_eq!(m.message.as_ref(), message.strip_prefix('\u{feff}').unwrap_or(&message));
        }
    }
}
