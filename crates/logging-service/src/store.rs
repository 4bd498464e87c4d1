//! Where records go: per-host files with rotation and an fsync policy (forwarding upstream
//! is in [`crate::forward`]).

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use wrapper_facade::file::{AppendFile, FsyncPolicy};

pub use crate::forward::{ForwardStats, Forwarder, encode_rfc5424};
use crate::record::RecordBatch;

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
    /// Whether the sink asks its producers to pause reading (back-pressure): it cannot take
    /// more without dropping.
    fn backlogged(&self) -> bool {
        false
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

    /// Whether any sink is backlogged: readers that can pause (TCP) should.
    pub fn backlogged(&self) -> bool {
        self.sinks.lock().iter().any(|s| s.backlogged())
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
