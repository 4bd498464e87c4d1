//! Where records go: per-host files with rotation and an fsync policy (forwarding upstream
//! is in [`crate::forward`]).

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt::Write as _;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use wrapper_facade::file::{AppendFile, FileLock, FsyncPolicy, LockMode};

pub use crate::forward::{ForwardStats, Forwarder, encode_rfc5424};
pub use crate::line::{StoredRecord, parse_line};
pub use crate::output::Output;
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
    /// Whether the sink holds so much that readers should stop reading for now (TCP
    /// connections pause, so that the kernel's socket buffers and TCP slow the senders).
    fn backlogged(&self) -> bool {
        false
    }
    /// Called from the dispatcher's timer every [`StoreConfig::tick_period`], input or not:
    /// retries, interval syncs, checks.
    fn tick(&mut self, _now: Instant) {}
    /// Adds the sink's own counters to `stats`.
    fn add_stats(&self, _stats: &mut Stats) {}
    /// Records of the last [`write_batch`](Self::write_batch) that are not in their place
    /// yet: held for a retry, refused or dropped. An acknowledging input (RELP) answers a
    /// batch only when every sink says 0.
    fn unplaced(&self) -> u64 {
        0
    }
    /// Group commit: the batches written between this and [`end_group`](Self::end_group)
    /// are answered together, after `end_group`, so a sink that syncs after every batch may
    /// sync each file once at `end_group` instead (the store's thread brackets every group
    /// of requests it takes from its queue).
    fn begin_group(&mut self) {}
    /// Ends a group: what [`begin_group`](Self::begin_group) let wait is made durable now.
    fn end_group(&mut self) {}
    /// The svc.conf component that attached this sink at run time ([`Output::attach`]),
    /// so that removing the component detaches it.
    fn component(&self) -> Option<&str> {
        None
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
    /// After every batch (one read from one connection), before the batch is answered
    /// (a RELP acknowledgement): batches that queued up together for the store's thread share
    /// one `fdatasync` per file (group commit).
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
    /// Host files kept open at once (a least-recently-used cache; others are reopened on
    /// demand).
    pub max_open_files: usize,
    /// Distinct host files in the data directory (those found at start included); records of
    /// further hosts go to `_overflow.log`.
    pub max_hosts: usize,
    /// Records held in memory while their files cannot be written; beyond it they are dropped
    /// and counted. TCP readers pause from half of it on.
    pub max_pending: usize,
    /// The longest wait between two retries of held records.
    pub retry_max: Duration,
    /// How records are written: text lines or JSON lines (see [`crate::line`]).
    pub format: StoreFormat,
    /// Permission bits of the files logd creates (0640); the directories it creates get
    /// [`dir_mode`] of it (0750).
    pub file_mode: u32,
}

/// The format of the store's lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum StoreFormat {
    /// The text grammar of [`crate::line`].
    #[default]
    Text,
    /// One JSON object per line, with the same fields.
    Json,
}

/// The mode of a directory logd creates for files of `file_mode`: the file's bits, plus search
/// (`x`) for every class that may read (0640 gives 0750, 0600 gives 0700, 0644 gives 0755).
///
/// ```
/// use logging_service::store::dir_mode;
/// assert_eq!((dir_mode(0o640), dir_mode(0o600), dir_mode(0o644)), (0o750, 0o700, 0o755));
/// ```
pub fn dir_mode(file_mode: u32) -> u32 {
    let m = file_mode & 0o777;
    m | ((m & 0o444) >> 2)
}

impl StoreConfig {
    /// The embedded default: `./logd-data`, 16 MiB files, 4 rotated, no forced syncs, 256 open
    /// files, 10,000 hosts, 100,000 held records, retries at least every 5 s, text lines,
    /// files 0640 (directories 0750).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        StoreConfig {
            dir: dir.into(),
            rotate_bytes: 16 << 20,
            keep: 4,
            durability: Durability::None,
            max_open_files: 256,
            max_hosts: 10_000,
            max_pending: 100_000,
            retry_max: Duration::from_secs(5),
            format: StoreFormat::Text,
            file_mode: 0o640,
        }
    }

    /// How often the store's timer runs: 100 ms, or half the fsync interval when that is
    /// shorter (so that every append is synced within the interval).
    pub fn tick_period(&self) -> Duration {
        let base = Duration::from_millis(100);
        match self.durability {
            Durability::Interval(d) => (d / 2).clamp(Duration::from_millis(1), base),
            _ => base,
        }
    }
}

/// The longest file stem: `STEM.log.N` stays within `NAME_MAX` (255) for any `--keep` of up
/// to ten digits.
pub const MAX_STEM: usize = 255 - ".log.".len() - 10;

/// The stem of the file that records go to once `max_hosts` host files exist.
pub const OVERFLOW_STEM: &str = "_overflow";

/// FNV-1a, 64 bits: a stable hash (the same in every run and on every machine), so that a
/// host keeps its file across restarts.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn stem_byte_ok(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_')
}

/// The file stem of `host`'s files (`STEM.log`, `STEM.log.1`, ...): the host itself when it is
/// made of `[A-Za-z0-9._-]`, does not start with `.` or `-` and fits in [`MAX_STEM`]; otherwise
/// the host with every other character made `_`, a leading `.` or `-` made `_`, cut to fit, and
/// then `~` and a stable 64-bit hash of the whole host name. Since `~` is never in a host's own
/// stem, two hosts never share a file (`hôst-ü` and `hôst-ö` differ in their hash), no name is
/// hidden, special or taken for an option (`.x`, `..`, `/`, empty, NUL, `-rf`) and every host
/// name RFC 5424 allows (up to 255 characters) fits.
///
/// ```
/// use logging_service::store::file_stem;
/// assert_eq!(file_stem("gateway-1"), "gateway-1");
/// assert_ne!(file_stem("hôst-ü"), file_stem("hôst-ö"));
/// assert!(file_stem(".x").starts_with("_x~"));
/// assert!(file_stem(&"a".repeat(255)).len() <= 240);
/// ```
pub fn file_stem(host: &str) -> String {
    let b = host.as_bytes();
    if !b.is_empty()
        && b.len() <= MAX_STEM
        && b[0] != b'.'
        && b[0] != b'-'
        && b.iter().all(|&c| stem_byte_ok(c))
        && host != OVERFLOW_STEM
    {
        return host.to_string();
    }
    // 1 for `~`, 16 for the hash.
    let mut stem: String = host
        .chars()
        .map(|c| {
            if c.is_ascii() && stem_byte_ok(c as u8) {
                c
            } else {
                '_'
            }
        })
        .take(MAX_STEM - 17)
        .collect();
    if stem.starts_with(['.', '-']) {
        stem.replace_range(..1, "_");
    }
    let _ = write!(stem, "~{:016x}", fnv1a(b));
    stem
}

/// The stems of the host files in `dir` (`STEM.log`, or only rotated ones `STEM.log.N`),
/// the overflow file's aside: what an earlier run made, which counts against `max_hosts`.
fn existing_stems(dir: &Path) -> HashSet<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return HashSet::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let stem = name.strip_suffix(".log").or_else(|| {
                let (stem, n) = name.rsplit_once(".log.")?;
                (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())).then_some(stem)
            })?;
            (!stem.is_empty() && stem != OVERFLOW_STEM).then(|| stem.to_owned())
        })
        .collect()
}

/// Opens a host file for appending; a file that does not exist yet is created with exactly
/// `mode` (whatever the umask).
fn open_host_file(path: &Path, mode: u32) -> io::Result<(AppendFile, bool)> {
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
    {
        Ok(f) => f.set_permissions(std::fs::Permissions::from_mode(mode))?,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    AppendFile::open_lines(path, FsyncPolicy::Never)
}

/// An open host file in the cache.
struct HostFile {
    file: AppendFile,
    /// Our idea of its size: what we appended since opening it plus its size then.
    size: u64,
    /// When it was last used (the cache's clock), for evicting the least recently used.
    used: u64,
    /// Since when it holds unsynced appends.
    dirty_since: Option<Instant>,
}

/// Records that could not be written yet, for one file, in arrival order.
struct Held {
    stem: String,
    host: String,
    text: String,
    records: u64,
}

/// A storage failure that is going on: reported once when it starts and once when it ends.
struct Outage {
    since: Instant,
    /// Records held during the episode, for the recovery message.
    held: u64,
    /// Records dropped during the episode (the bound was exceeded), for the recovery message.
    dropped: u64,
}

/// The store's own counters, added to [`Stats`] by [`Output::stats`].
#[derive(Debug, Default, Clone, Copy)]
struct StoreCounters {
    stored: u64,
    dropped_pending_full: u64,
    dropped_write_failed: u64,
    overflow: u64,
    write_errors: u64,
    torn_repaired: u64,
    syncs: u64,
    dir_recreated: u64,
    rotate_failures: u64,
}

/// Per-host append-only files, `DIR/STEM.log` (see [`file_stem`]), one record per line.
///
/// Open files are kept in a least-recently-used cache of `max_open_files` descriptors and
/// reopened on demand; at most `max_hosts` host files exist, counting those found in the
/// directory at start (a restart does not start the count again), records of further hosts go
/// to `_overflow.log` (their lines name their host). A write that fails leaves no
/// partial line ([`AppendFile::append`] cuts it off), and its records are held in memory (at
/// most `max_pending`) and retried with capped exponential back-off, from later writes and
/// from [`tick`](RecordSink::tick); other hosts go on meanwhile. The data directory is locked
/// (`flock`) while the store is open, and recreated if it disappears.
pub struct FileStore {
    cfg: StoreConfig,
    /// The open data directory, holding its lock; `None` once closed.
    lock: Option<std::fs::File>,
    /// `(device, inode)` of the locked directory, to notice it being removed or replaced.
    dir_id: Option<(u64, u64)>,
    last_dir_check: Instant,
    files: HashMap<String, HostFile>,
    clock: u64,
    /// Host name to stem, for the hosts of this run that have a host file.
    stems: HashMap<String, String>,
    /// The stems that have a host file: found in the directory at start, or made since (at
    /// most `max_hosts`, unless more were found).
    host_files: HashSet<String>,
    held: VecDeque<Held>,
    held_records: u64,
    /// Records held per stem: a stem with held records gets new ones behind them, in order.
    held_stems: HashMap<String, u64>,
    outage: Option<Outage>,
    backoff: Duration,
    next_retry: Instant,
    counters: StoreCounters,
    line: String,
    /// Records of the last batch held instead of written.
    unplaced: u64,
    /// Inside a group ([`RecordSink::begin_group`]): `--fsync batch` syncs at its end.
    group: bool,
}

impl std::fmt::Debug for FileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStore")
            .field("cfg", &self.cfg)
            .field("open", &self.files.len())
            .field("held", &self.held_records)
            .finish()
    }
}

/// The first retry of a failed write waits this long; each further failure doubles it, up to
/// [`StoreConfig::retry_max`].
const FIRST_RETRY: Duration = Duration::from_millis(20);

/// How often the data directory's identity is checked from the timer.
const DIR_CHECK: Duration = Duration::from_millis(200);

fn errno_of(e: &io::Error) -> String {
    e.raw_os_error()
        .map_or_else(|| "-".to_string(), |n| n.to_string())
}

impl FileStore {
    /// Creates the directory if needed and takes its lock; a directory locked by another
    /// `logd` is refused with an error naming it.
    pub fn open(cfg: StoreConfig) -> io::Result<Self> {
        let now = Instant::now();
        let mut store = FileStore {
            unplaced: 0,
            group: false,
            cfg,
            lock: None,
            dir_id: None,
            last_dir_check: now,
            files: HashMap::new(),
            clock: 0,
            stems: HashMap::new(),
            host_files: HashSet::new(),
            held: VecDeque::new(),
            held_records: 0,
            held_stems: HashMap::new(),
            outage: None,
            backoff: FIRST_RETRY,
            next_retry: now,
            counters: StoreCounters::default(),
            line: String::new(),
        };
        store.lock_dir()?;
        store.host_files = existing_stems(&store.cfg.dir);
        Ok(store)
    }

    /// Creates the data directory if needed, opens it and takes its exclusive lock.
    fn lock_dir(&mut self) -> io::Result<()> {
        let dir = &self.cfg.dir;
        let existed = dir.is_dir();
        let mode = dir_mode(self.cfg.file_mode);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(mode)
            .create(dir)
            .and_then(|()| {
                // The umask may have taken bits away: the directory made here gets them all.
                if existed {
                    Ok(())
                } else {
                    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
                }
            })
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot create data directory {}: {e}", dir.display()),
                )
            })?;
        let handle = std::fs::File::open(dir).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot open data directory {}: {e}", dir.display()),
            )
        })?;
        match FileLock::try_acquire(&handle, LockMode::Exclusive) {
            // The lock belongs to the open directory, so it is held as long as `handle` is
            // open: the guard, which would unlock when dropped, is forgotten.
            Ok(guard) => std::mem::forget(guard),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    format!(
                        "data directory {} is in use by another logd (its lock is held)",
                        dir.display()
                    ),
                ));
            }
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("cannot lock data directory {}: {e}", dir.display()),
                ));
            }
        }
        let meta = handle.metadata()?;
        self.dir_id = Some((meta.dev(), meta.ino()));
        self.lock = Some(handle);
        Ok(())
    }

    /// Notices a data directory that was removed or replaced: closes every file (they are in
    /// the old directory) and makes and locks a new one.
    fn check_dir(&mut self) {
        let now_id = std::fs::metadata(&self.cfg.dir)
            .ok()
            .map(|m| (m.dev(), m.ino()));
        if self.lock.is_some() && now_id.is_some() && now_id == self.dir_id {
            return;
        }
        if self.lock.is_some() {
            tracing::warn!(dir = %self.cfg.dir.display(), "the data directory was removed or replaced; making it again");
            self.counters.dir_recreated += 1;
        }
        self.close_files();
        self.lock = None;
        self.dir_id = None;
        if let Err(e) = self.lock_dir() {
            tracing::debug!(error = %e, "data directory not usable yet");
        }
    }

    /// The path of `host`'s current file.
    pub fn path_of(&self, host: &str) -> PathBuf {
        self.path_of_stem(&file_stem(host))
    }

    fn path_of_stem(&self, stem: &str) -> PathBuf {
        self.cfg.dir.join(format!("{stem}.log"))
    }

    /// The stem `host`'s records go to now: its own, or the overflow file's once `max_hosts`
    /// host files exist.
    fn stem_for(&mut self, host: &str) -> (String, bool) {
        if let Some(s) = self.stems.get(host) {
            return (s.clone(), false);
        }
        let stem = file_stem(host);
        if !self.host_files.contains(&stem) {
            if self.host_files.len() >= self.cfg.max_hosts {
                return (OVERFLOW_STEM.to_string(), true);
            }
            self.host_files.insert(stem.clone());
        }
        self.stems.insert(host.to_string(), stem.clone());
        (stem, false)
    }

    fn close_files(&mut self) {
        let files = std::mem::take(&mut self.files);
        for (_, f) in files {
            self.close_file(f);
        }
    }

    /// Closes a cached file, syncing it first when the fsync policy promises it.
    fn close_file(&mut self, mut f: HostFile) {
        if f.dirty_since.is_some() && self.cfg.durability != Durability::None {
            match f.file.sync() {
                Ok(()) => self.counters.syncs += 1,
                Err(e) => tracing::warn!(error = %e, "sync before closing failed"),
            }
        }
    }

    /// Rotates `stem`'s file: `STEM.log` becomes `STEM.log.1`, older ones shift, `keep` stay.
    /// A file that is no longer at its path (moved away by logrotate) is not rotated again: a
    /// new one is simply opened. A failed rename keeps writing to the current file (it grows
    /// past the limit) rather than lose anything.
    fn rotate(&mut self, stem: &str) {
        let current = self.files.remove(stem);
        let base = self.path_of_stem(stem);
        let moved_away = match (&current, std::fs::metadata(&base)) {
            (_, Err(_)) => true,
            (Some(f), Ok(m)) => f.file.file_id().ok() != Some((m.dev(), m.ino())),
            (None, Ok(_)) => false,
        };
        if let Some(f) = current {
            self.close_file(f);
        }
        if moved_away {
            return;
        }
        let numbered = |n: usize| PathBuf::from(format!("{}.{n}", base.display()));
        let result = (|| {
            if self.cfg.keep == 0 {
                return std::fs::remove_file(&base);
            }
            match std::fs::remove_file(numbered(self.cfg.keep)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            for n in (1..self.cfg.keep).rev() {
                match std::fs::rename(numbered(n), numbered(n + 1)) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
            std::fs::rename(&base, numbered(1))
        })();
        if let Err(e) = result {
            self.counters.rotate_failures += 1;
            tracing::warn!(path = %base.display(), errno = %errno_of(&e), error = %e,
                "rotation failed; appending to the current file");
        }
    }

    /// Opens (or finds in the cache) `stem`'s file, rotating it first when `incoming` bytes
    /// would take it past `rotate_bytes`.
    fn file(&mut self, stem: &str, incoming: u64) -> io::Result<&mut HostFile> {
        self.clock += 1;
        let limit = self.cfg.rotate_bytes;
        let over = match self.files.get_mut(stem) {
            Some(f) if f.size > 0 && f.size + incoming > limit => {
                // `copytruncate` may have emptied the file under us: look before rotating.
                f.size = f.file.len()?;
                f.size > 0 && f.size + incoming > limit
            }
            Some(_) => false,
            None => std::fs::metadata(self.path_of_stem(stem))
                .is_ok_and(|m| m.len() > 0 && m.len() + incoming > limit),
        };
        if over {
            self.rotate(stem);
        }
        if !self.files.contains_key(stem) {
            if self.files.len() >= self.cfg.max_open_files.max(1) {
                let lru = self
                    .files
                    .iter()
                    .min_by_key(|(_, f)| f.used)
                    .map(|(s, _)| s.clone())
                    .expect("the cache is not empty");
                let f = self.files.remove(&lru).expect("just found");
                self.close_file(f);
            }
            let path = self.path_of_stem(stem);
            let mode = self.cfg.file_mode;
            let (file, repaired) = match open_host_file(&path, mode) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    // The directory went away: make it again and write there.
                    self.check_dir();
                    open_host_file(&path, mode)?
                }
                other => other?,
            };
            if repaired {
                self.counters.torn_repaired += 1;
                tracing::warn!(path = %path.display(), "the file ended in a torn line; ended it with a newline");
            }
            let size = file.len()?;
            self.files.insert(
                stem.to_string(),
                HostFile {
                    file,
                    size,
                    used: 0,
                    dirty_since: None,
                },
            );
        }
        let f = self.files.get_mut(stem).expect("just inserted");
        f.used = self.clock;
        Ok(f)
    }

    /// Appends `text` (whole lines) to `stem`'s file. On failure nothing of it is in the file
    /// and the descriptor is closed (the next attempt reopens, and finds a replaced file).
    fn append(&mut self, stem: &str, text: &str) -> io::Result<()> {
        let sync_now = self.cfg.durability == Durability::EveryBatch && !self.group;
        let f = self.file(stem, text.len() as u64)?;
        match f.file.append(text.as_bytes()) {
            Ok(()) => {
                f.size += text.len() as u64;
                f.dirty_since.get_or_insert_with(Instant::now);
                if sync_now {
                    match f.file.sync() {
                        Ok(()) => {
                            f.dirty_since = None;
                            self.counters.syncs += 1;
                        }
                        Err(e) => {
                            tracing::warn!(stem, error = %e, "fdatasync failed; the records are written");
                        }
                    }
                }
                Ok(())
            }
            Err(e) => {
                // Earlier appends of this group to the file are synced before it is dropped.
                if let Some(f) = self.files.remove(stem) {
                    self.close_file(f);
                }
                Err(e)
            }
        }
    }

    /// Syncs every file with unsynced appends (the end of a group under `--fsync batch`).
    fn sync_dirty(&mut self) {
        for (stem, f) in &mut self.files {
            if f.dirty_since.is_some() {
                match f.file.sync() {
                    Ok(()) => {
                        f.dirty_since = None;
                        self.counters.syncs += 1;
                    }
                    Err(e) => {
                        tracing::warn!(stem, error = %e, "fdatasync failed; the records are written");
                    }
                }
            }
        }
    }

    /// Writes one host's lines, or holds them when the write fails (or earlier ones of that
    /// file are still held, so that a file's records stay in order).
    fn store(&mut self, host: &str, stem: String, text: String, records: u64) -> String {
        if self.lock.is_none() {
            self.check_dir();
        }
        if !self.held_stems.contains_key(&stem) {
            match self.append(&stem, &text) {
                Ok(()) => {
                    self.counters.stored += records;
                    return text;
                }
                Err(e) => self.failed(host, &stem, &e),
            }
        }
        self.unplaced += records;
        self.hold(host, stem, text.clone(), records);
        text
    }

    /// Counts a failed write and reports it once per episode.
    fn failed(&mut self, host: &str, stem: &str, e: &io::Error) {
        self.counters.write_errors += 1;
        if self.outage.is_none() {
            tracing::warn!(
                host,
                path = %self.path_of_stem(stem).display(),
                errno = %errno_of(e),
                error = %e,
                "storing records failed; holding them in memory and retrying"
            );
            self.outage = Some(Outage {
                since: Instant::now(),
                held: 0,
                dropped: 0,
            });
            self.backoff = FIRST_RETRY;
            self.next_retry = Instant::now() + self.backoff;
        } else {
            tracing::debug!(host, stem, error = %e, "storing records failed again");
        }
    }

    fn hold(&mut self, host: &str, stem: String, text: String, records: u64) {
        let outage = self.outage.get_or_insert_with(|| Outage {
            since: Instant::now(),
            held: 0,
            dropped: 0,
        });
        let room = (self.cfg.max_pending as u64).saturating_sub(self.held_records);
        let (text, records) = if records <= room {
            (text, records)
        } else {
            // Keep the first `room` records (one line each) and drop the rest.
            let cut = match room {
                0 => 0,
                n => text
                    .match_indices('\n')
                    .nth(n as usize - 1)
                    .map_or(0, |(i, _)| i + 1),
            };
            let dropped = records - room;
            if outage.dropped == 0 {
                tracing::error!(
                    host,
                    path = %self.cfg.dir.join(format!("{stem}.log")).display(),
                    records = dropped,
                    held = self.held_records + room,
                    "records dropped: the held records reached --max-pending"
                );
            }
            outage.dropped += dropped;
            self.counters.dropped_pending_full += dropped;
            let mut text = text;
            text.truncate(cut);
            (text, room)
        };
        if records == 0 {
            return;
        }
        outage.held += records;
        self.held_records += records;
        *self.held_stems.entry(stem.clone()).or_default() += records;
        match self.held.back_mut() {
            // Consecutive batches of one host become one write on retry.
            Some(last) if last.stem == stem && last.text.len() < 1 << 20 => {
                last.text.push_str(&text);
                last.records += records;
            }
            _ => self.held.push_back(Held {
                stem,
                host: host.to_string(),
                text,
                records,
            }),
        }
    }

    /// Tries the held records again, oldest first; a file that fails again keeps its records
    /// (and the ones behind them) while the others are written.
    fn retry(&mut self, now: Instant, force: bool) {
        if self.held.is_empty() || (!force && now < self.next_retry) {
            return;
        }
        self.check_dir();
        let mut failed: HashMap<String, ()> = HashMap::new();
        let held = std::mem::take(&mut self.held);
        for h in held {
            if !failed.contains_key(&h.stem) {
                match self.append(&h.stem, &h.text) {
                    Ok(()) => {
                        self.counters.stored += h.records;
                        self.held_records -= h.records;
                        let left = self.held_stems.get_mut(&h.stem).expect("counted when held");
                        *left -= h.records;
                        if *left == 0 {
                            self.held_stems.remove(&h.stem);
                        }
                        continue;
                    }
                    Err(e) => {
                        self.counters.write_errors += 1;
                        tracing::debug!(host = %h.host, stem = %h.stem, error = %e, "retry failed");
                        failed.insert(h.stem.clone(), ());
                    }
                }
            }
            self.held.push_back(h);
        }
        if self.held.is_empty() {
            if let Some(o) = self.outage.take() {
                tracing::info!(
                    held = o.held,
                    dropped = o.dropped,
                    seconds = o.since.elapsed().as_secs_f64(),
                    "storage recovered; every held record is stored"
                );
            }
            self.backoff = FIRST_RETRY;
        } else {
            self.backoff = (self.backoff * 2).min(self.cfg.retry_max.max(FIRST_RETRY));
            self.next_retry = now + self.backoff;
        }
    }

    /// Syncs the files whose oldest unsynced append would otherwise pass the interval before
    /// the next tick.
    fn sync_due(&mut self, now: Instant) {
        let Durability::Interval(every) = self.cfg.durability else {
            return;
        };
        let tick = self.cfg.tick_period();
        for (stem, f) in &mut self.files {
            if f.dirty_since
                .is_some_and(|t| now.saturating_duration_since(t) + tick >= every)
            {
                match f.file.sync() {
                    Ok(()) => {
                        f.dirty_since = None;
                        self.counters.syncs += 1;
                    }
                    Err(e) => tracing::warn!(stem, error = %e, "fdatasync failed"),
                }
            }
        }
    }
}

impl RecordSink for FileStore {
    fn write_batch(&mut self, batch: &RecordBatch) -> io::Result<()> {
        // One append per host per batch: whole lines, never interleaved with other writers.
        // A host whose write fails costs only its own records, which are held and retried.
        let now = Instant::now();
        self.retry(now, false);
        self.unplaced = 0;
        let mut records = batch.iter().peekable();
        while let Some(first) = records.next() {
            let host = first.host;
            let mut line = std::mem::take(&mut self.line);
            line.clear();
            let write = match self.cfg.format {
                StoreFormat::Text => LogRecord::write_line,
                StoreFormat::Json => LogRecord::write_json,
            };
            write(&first, &mut line);
            let mut n = 1;
            while let Some(r) = records.next_if(|r| r.host == host) {
                write(&r, &mut line);
                n += 1;
            }
            let (stem, overflow) = self.stem_for(host);
            if overflow {
                self.counters.overflow += n;
            }
            self.line = self.store(host, stem, line, n);
        }
        Ok(())
    }

    /// The last chance: retries what is held, syncs and closes every file and releases the
    /// directory's lock; records still held are counted as dropped (`dropped_write_failed`).
    fn flush(&mut self) -> io::Result<()> {
        self.retry(Instant::now(), true);
        if self.held_records > 0 {
            let hosts: Vec<&str> = self.held.iter().map(|h| h.host.as_str()).collect();
            tracing::error!(
                records = self.held_records,
                dir = %self.cfg.dir.display(),
                ?hosts,
                "records lost: they could not be written before the stop"
            );
            self.counters.dropped_write_failed += self.held_records;
            self.held.clear();
            self.held_stems.clear();
            self.held_records = 0;
        }
        let mut first_err = None;
        for (_, mut f) in std::mem::take(&mut self.files) {
            if f.dirty_since.is_some() {
                match f.file.sync() {
                    Ok(()) => self.counters.syncs += 1,
                    Err(e) => {
                        first_err.get_or_insert(e);
                    }
                }
            }
        }
        self.lock = None;
        first_err.map_or(Ok(()), Err)
    }

    /// Closes every cached descriptor (the next write reopens by path), syncing first only
    /// when the fsync policy asks for it, and retries held records at once.
    fn reopen(&mut self) -> io::Result<()> {
        self.close_files();
        self.check_dir();
        self.retry(Instant::now(), true);
        Ok(())
    }

    fn backlogged(&self) -> bool {
        self.held_records > 0 && self.held_records >= (self.cfg.max_pending as u64 / 2).max(1)
    }

    fn tick(&mut self, now: Instant) {
        if now.saturating_duration_since(self.last_dir_check) >= DIR_CHECK {
            self.last_dir_check = now;
            self.check_dir();
        }
        self.retry(now, false);
        self.sync_due(now);
    }

    fn add_stats(&self, stats: &mut Stats) {
        let c = &self.counters;
        stats.stored += c.stored;
        stats.held += self.held_records;
        stats.dropped_pending_full += c.dropped_pending_full;
        stats.dropped_write_failed += c.dropped_write_failed;
        stats.overflow += c.overflow;
        stats.write_errors += c.write_errors;
        stats.torn_repaired += c.torn_repaired;
        stats.syncs += c.syncs;
        stats.dir_recreated += c.dir_recreated;
        stats.rotate_failures += c.rotate_failures;
        stats.open_files += self.files.len() as u64;
    }

    fn unplaced(&self) -> u64 {
        self.unplaced
    }

    fn begin_group(&mut self) {
        self.group = true;
    }

    fn end_group(&mut self) {
        self.group = false;
        if self.cfg.durability == Durability::EveryBatch {
            self.sync_dirty();
        }
    }
}

/// Counters of the whole service.
///
/// Every record the output took is accounted for by the file store:
/// `records == stored + held + dropped_pending_full + dropped_write_failed`
/// (see [`Stats::store_balances`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Records received: read, decoded and taken by the output's store thread (see
    /// [`Output`]), whatever became of them.
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
    /// Records written to a store file as whole lines.
    pub stored: u64,
    /// Records held in memory now, because their file could not be written (retried).
    pub held: u64,
    /// Records read and handed to the store's thread, not yet taken by it (a gauge; they
    /// are counted in `records` once it takes them).
    pub store_queued: u64,
    /// Records dropped because the held records had reached `max_pending`.
    pub dropped_pending_full: u64,
    /// Records still held at the stop, which could not be written: lost (logd exits non-zero).
    pub dropped_write_failed: u64,
    /// Records stored in `_overflow.log` because `max_hosts` host files existed (also in
    /// `stored`).
    pub overflow: u64,
    /// Writes that failed (their records were held and retried).
    pub write_errors: u64,
    /// Torn last lines found when opening a file, ended with a newline.
    pub torn_repaired: u64,
    /// `fdatasync` calls.
    pub syncs: u64,
    /// Times the data directory was found removed or replaced, and made again.
    pub dir_recreated: u64,
    /// Records that arrived over RELP (syslog messages in `syslog` frames).
    pub relp: u64,
    /// RELP sessions closed without acknowledging a batch, because a record of it was not
    /// in its place (held for a retry, refused by a full spool): the sender sends it again.
    pub relp_unacked_closes: u64,
    // Forwarding (`crate::forward`), when configured.
    /// Records delivered upstream and removed from the spool (over RELP: acknowledged).
    pub forwarded: u64,
    /// Records waiting for the upstream now, in memory or in the spool (a gauge).
    pub forward_queued: u64,
    /// RELP: records sent upstream and not yet acknowledged now (a gauge).
    pub relp_in_flight: u64,
    /// RELP: records sent upstream again after a session broke with them unacknowledged.
    pub relp_resent: u64,
    /// RELP: acknowledgements for no record in flight (forged or stale), refused.
    pub relp_bad_txnr: u64,
    // The ClickHouse sink (`crate::clickhouse`), when configured (every instance of this run).
    /// Records handed to the ClickHouse sink.
    pub clickhouse_received: u64,
    /// Rows found in the ClickHouse spool at start.
    pub clickhouse_recovered: u64,
    /// Rows ClickHouse answered 200 for.
    pub clickhouse_inserted: u64,
    /// Rows waiting for ClickHouse now (a gauge).
    pub clickhouse_queued: u64,
    /// Rows the ClickHouse spool dropped (full, its disk refused them, or unreadable).
    pub clickhouse_dropped: u64,
    /// Spooled rows the ClickHouse sink could not read back, dropped (also in
    /// `clickhouse_dropped`).
    pub clickhouse_unreadable: u64,
    /// Inserts ClickHouse answered 200 for.
    pub clickhouse_batches: u64,
    /// Inserts that failed.
    pub clickhouse_failed: u64,
    /// Batches sent again after a failed insert (possible duplicates, found by `(logd, seq)`).
    pub clickhouse_retried: u64,
    /// The forwarder's own counters (spooled, dropped by reason, upstream up or down,
    /// outages), when logd forwards.
    pub forwarder: Option<ForwardStats>,
    /// Size rotations that failed (the file went on growing; nothing was lost).
    pub rotate_failures: u64,
    /// Host files open now (at most `max_open_files`).
    pub open_files: u64,
    /// Times a TCP connection stopped reading because the output was backlogged.
    pub pauses: u64,
    // Ingest limits (the counters of `crate::limits`), kept in one block.
    /// Connections closed because a frame announced more than `--max-frame` (an RFC 6587
    /// octet count, an ACE header length).
    pub oversized_closed: u64,
    /// UDP datagrams dropped for being larger than `--max-frame`.
    pub udp_oversized: u64,
    /// UDP datagrams the kernel dropped because the syslog socket's receive buffer was full
    /// (its `SO_RXQ_OVFL` counter, which arrives with the next datagram received).
    pub udp_kernel_drops: u64,
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
    // Metrics (`crate::metrics`).
    /// Records that arrived as syslog over UDP (also in `syslog`).
    pub syslog_udp: u64,
    /// Reconfigurations asked for (SIGHUP, [`crate::logd::Logd::reconfigure`]).
    pub reconfigurations: u64,
    /// Reconfigurations refused or failed in part (also in `reconfigurations`).
    pub reconfigurations_failed: u64,
    // Interceptors (`crate::intercept`).
    /// Records an interceptor dropped at "record decoded" or "before store" (rate-limited
    /// ones included).
    pub intercepted: u64,
    /// Records a rate limiter dropped (also in `intercepted`).
    pub rate_limited: u64,
    /// Records a `route` interceptor took to its own store instead of this one.
    pub routed: u64,
    /// Records an interceptor kept from the forwarder ("before forward").
    pub forward_intercepted: u64,
    /// Connections an interceptor refused when they opened.
    pub connections_vetoed: u64,
    // TLS and per-peer limits (`crate::tls_conn`).
    /// TLS sessions established and admitted.
    pub tls_sessions: u64,
    /// TLS connections refused before any record: failed handshakes (no or a bad
    /// certificate, a protocol error, a close), names off the allow-list, timeouts.
    pub tls_handshake_failures: u64,
    /// Of `tls_handshake_failures`: certificates whose names are not permitted.
    pub tls_not_permitted: u64,
    /// Of `tls_handshake_failures`: handshakes not finished within the handshake timeout.
    pub tls_handshake_timeouts: u64,
    /// TLS configurations reloaded (SIGHUP).
    pub tls_reloads: u64,
    /// TLS reloads that failed (the running configuration stayed).
    pub tls_reload_failures: u64,
    /// Connections closed at once because their peer had `--max-connections-per-peer` open.
    pub peer_connections_refused: u64,
    /// Times a connection stopped reading because its peer was over `--max-rate-per-peer`.
    pub peer_rate_pauses: u64,
    // What became of everything read, per input (see [`InputCounts`]).
    /// ACE over TCP.
    pub ace_input: InputCounts,
    /// Syslog over TCP.
    pub syslog_tcp_input: InputCounts,
    /// Syslog over UDP.
    pub syslog_udp_input: InputCounts,
}

/// What became of the frames (TCP) or datagrams (UDP) one input read: each is a record
/// handed to the output, or counted under one reason. `read` is counted where a frame ends
/// or a datagram arrives, the outcome where it is decoded, so
/// `read == records + rejected + oversized + unfinished` checks that no path skips a counter.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct InputCounts {
    /// Frames or datagrams read (a frame cut off by a close counts as read once).
    pub read: u64,
    /// Records decoded and handed to the output (the store's `records` sums them).
    pub records: u64,
    /// Reason `malformed`: refused by the decoder.
    pub rejected: u64,
    /// Reason `oversized`: over `--max-frame` (a UDP datagram, or the frame that closed a
    /// TCP connection).
    pub oversized: u64,
    /// Reason `unfinished`: a partial frame discarded when its connection closed (end of
    /// stream, idle timeout, `--max-buffered`, a reset).
    pub unfinished: u64,
}

impl InputCounts {
    /// Frames or datagrams that did not become records, all reasons.
    pub fn dropped(&self) -> u64 {
        self.rejected + self.oversized + self.unfinished
    }

    /// Whether everything read is a record or counted as dropped.
    pub fn balances(&self) -> bool {
        self.read == self.records + self.dropped()
    }
}

/// Adds every field of `$o` to `$s`; destructured, so that a field added to the struct and
/// forgotten here does not compile.
macro_rules! add_fields {
    ($s:ident, $o:ident, $ty:ident { $($f:ident),* $(,)? }) => {{
        let $ty { $($f),* } = $o;
        $( $s.$f += $f; )*
    }};
    // `$x`: fields that are not sums, bound (so they are named here too) and left to the caller.
    ($s:ident, $o:ident, $ty:ident { $($f:ident),* $(,)? } else { $($x:ident),* $(,)? }) => {{
        let $ty { $($f,)* $($x),* } = $o;
        $( $s.$f += $f; )*
        ($($x),*)
    }};
}

impl std::ops::AddAssign for InputCounts {
    fn add_assign(&mut self, o: InputCounts) {
        add_fields!(
            self,
            o,
            InputCounts {
                read,
                records,
                rejected,
                oversized,
                unfinished
            }
        );
    }
}

/// Field by field: how the counters of the dispatcher's side and of the store's thread
/// (each kept where it is counted) become one [`Stats`].
impl std::ops::AddAssign for Stats {
    fn add_assign(&mut self, o: Stats) {
        let forwarder = add_fields!(
            self,
            o,
            Stats {
                records,
                ace,
                syslog,
                rejected,
                connections,
                idle_closed,
                stored,
                held,
                store_queued,
                dropped_pending_full,
                dropped_write_failed,
                overflow,
                write_errors,
                torn_repaired,
                syncs,
                dir_recreated,
                relp,
                relp_unacked_closes,
                forwarded,
                forward_queued,
                relp_in_flight,
                relp_resent,
                relp_bad_txnr,
                clickhouse_received,
                clickhouse_recovered,
                clickhouse_inserted,
                clickhouse_queued,
                clickhouse_dropped,
                clickhouse_unreadable,
                clickhouse_batches,
                clickhouse_failed,
                clickhouse_retried,
                rotate_failures,
                open_files,
                pauses,
                oversized_closed,
                udp_oversized,
                udp_kernel_drops,
                idle_partial,
                buffer_cap_closed,
                buffered_bytes,
                buffered_peak,
                accept_backoffs,
                syslog_udp,
                reconfigurations,
                reconfigurations_failed,
                intercepted,
                rate_limited,
                routed,
                forward_intercepted,
                connections_vetoed,
                tls_sessions,
                tls_handshake_failures,
                tls_not_permitted,
                tls_handshake_timeouts,
                tls_reloads,
                tls_reload_failures,
                peer_connections_refused,
                peer_rate_pauses,
                ace_input,
                syslog_tcp_input,
                syslog_udp_input,
            } else {
                forwarder
            }
        );
        // A snapshot, not a sum: the forwarder's counters come from one side only (the
        // sinks'); the newer one wins.
        self.forwarder = forwarder.or(self.forwarder);
    }
}

impl Stats {
    /// Records dropped, whatever the reason.
    pub fn dropped(&self) -> u64 {
        self.dropped_pending_full + self.dropped_write_failed
    }

    /// Whether every record the ClickHouse sink took or found in its spool is queued,
    /// inserted or dropped under a counted reason (see [`crate::clickhouse::ClickHouseStats`]).
    pub fn clickhouse_balances(&self) -> bool {
        self.clickhouse_received + self.clickhouse_recovered
            == self.clickhouse_queued + self.clickhouse_inserted + self.clickhouse_dropped
    }

    /// Whether every record received is stored, held, counted as dropped, or taken by an
    /// interceptor (dropped or routed).
    pub fn store_balances(&self) -> bool {
        self.records == self.stored + self.held + self.dropped() + self.intercepted + self.routed
    }

    /// The inputs by name: `ace`, `syslog_tcp`, `syslog_udp`.
    pub fn inputs(&self) -> [(&'static str, InputCounts); 3] {
        [
            ("ace", self.ace_input),
            ("syslog_tcp", self.syslog_tcp_input),
            ("syslog_udp", self.syslog_udp_input),
        ]
    }

    /// The invariant: every frame or datagram read is a record or a counted drop, per input;
    /// the records of all inputs are what the store received; and every record received is
    /// stored, held for a retry, or dropped under a counted reason. The error names the
    /// first equation that does not hold.
    pub fn balances(&self) -> Result<(), String> {
        for (name, i) in self.inputs() {
            if !i.balances() {
                return Err(format!(
                    "input {name}: read {} != records {} + rejected {} + oversized {} + unfinished {}",
                    i.read, i.records, i.rejected, i.oversized, i.unfinished
                ));
            }
        }
        // RELP sessions count their records in `relp` (frames that end a session are counted
        // as closed sessions, not per frame).
        let decoded: u64 = self.inputs().iter().map(|(_, i)| i.records).sum::<u64>() + self.relp;
        if decoded != self.records + self.store_queued {
            return Err(format!(
                "the inputs decoded {decoded} records, the store received {} (and has {} queued)",
                self.records, self.store_queued
            ));
        }
        if !self.store_balances() {
            return Err(format!(
                "received {} != stored {} + held {} + dropped {} + intercepted {} + routed {}",
                self.records,
                self.stored,
                self.held,
                self.dropped(),
                self.intercepted,
                self.routed
            ));
        }
        Ok(())
    }
}

/// Every record of the store file `path`, parsed with [`parse_line`]; a line that is not a
/// record (or is longer than [`crate::line::MAX_LINE`]) is an `InvalidData` error naming the file
/// and the line.
pub fn read_file(path: &Path) -> io::Result<Vec<StoredRecord>> {
    use std::io::{BufRead, Read};
    let mut reader = io::BufReader::new(std::fs::File::open(path)?);
    let mut out = Vec::new();
    let mut buf = Vec::new();
    for n in 1.. {
        buf.clear();
        let got = (&mut reader)
            .take(crate::line::MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)?;
        if got == 0 {
            break;
        }
        let bad = |e: &dyn std::fmt::Display| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}:{n}: {e}", path.display()),
            )
        };
        let text = std::str::from_utf8(&buf).map_err(|e| bad(&e))?;
        out.push(parse_line(text).map_err(|e| bad(&e))?);
    }
    Ok(out)
}

/// Every record of the current files of `dir` (`STEM.log`), per stem, parsed with
/// [`parse_line`]: how tests, the demo and `logc read` read the store.
pub fn read_records(dir: &Path) -> io::Result<Vec<(String, Vec<StoredRecord>)>> {
    store_files(dir, false)?
        .into_iter()
        .map(|(stem, path)| Ok((stem, read_file(&path)?)))
        .collect()
}

/// The store files of `dir` with their stems, sorted: `STEM.log`, and with `rotated` also
/// `STEM.log.N`.
pub fn store_files(dir: &Path, rotated: bool) -> io::Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let stem = match name.rsplit_once(".log") {
            Some((stem, "")) => stem,
            Some((stem, n))
                if rotated
                    && n.strip_prefix('.').is_some_and(|n| {
                        !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
                    }) =>
            {
                stem
            }
            _ => continue,
        };
        if path.is_file() {
            out.push((stem.to_string(), path.clone()));
        }
    }
    out.sort();
    Ok(out)
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

    #[test]
    fn balances_names_the_first_equation_that_fails() {
        let input = InputCounts {
            read: 5,
            records: 3,
            rejected: 1,
            oversized: 0,
            unfinished: 1,
        };
        let mut s = Stats {
            ace_input: input,
            records: 3,
            stored: 2,
            held: 1,
            ..Stats::default()
        };
        assert_eq!(s.balances(), Ok(()));
        s.ace_input.unfinished = 0;
        assert!(s.balances().unwrap_err().starts_with("input ace: read 5"));
        s.ace_input.unfinished = 1;
        s.syslog_udp_input = InputCounts {
            read: 1,
            records: 1,
            ..InputCounts::default()
        };
        assert!(s.balances().unwrap_err().contains("decoded 4 records"));
        s.records = 4;
        assert!(
            s.balances()
                .unwrap_err()
                .starts_with("received 4 != stored 2")
        );
        s.dropped_pending_full = 1;
        assert_eq!(s.balances(), Ok(()));
    }
    use super::*;
    use crate::record::LogRecord;

    /// A fresh directory under the temp dir, removed first.
    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("logd-store-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    /// The time of every test record.
    const T: &str = "2026-01-01T00:00:00.000000Z";

    fn record<'a>(host: &'a str, message: &'a str) -> LogRecord<'a> {
        LogRecord {
            time: T,
            host,
            app: "a",
            pid: "1",
            facility: 1,
            severity: 6,
            sent: "-",
            msgid: "-",
            structured_data: "-",
            message,
        }
    }

    fn batch_of(records: &[(&str, &str)]) -> RecordBatch {
        let mut b = RecordBatch::new();
        for (host, message) in records {
            b.push(&record(host, message));
        }
        b
    }

    fn stats_of(store: &FileStore, received: u64) -> Stats {
        let mut s = Stats {
            records: received,
            ..Stats::default()
        };
        store.add_stats(&mut s);
        s
    }

    /// The records of `path` as `HOST MESSAGE`, read with the store's parser; none when it
    /// does not exist.
    fn lines(path: &Path) -> Vec<String> {
        if !path.exists() {
            return Vec::new();
        }
        read_file(path)
            .unwrap()
            .into_iter()
            .map(|r| format!("{} {}", r.host, r.message))
            .collect()
    }

    /// Runs the test named `test` of this module in a child process with `CHILD_ENV` set,
    /// where it may change process-wide limits; asserts that it passed.
    fn in_child(test: &str) {
        let _forking = wrapper_facade::process::spawning();
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                &format!("store::tests::{test}"),
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

    const CHILD_ENV: &str = "LOGD_STORE_TEST_CHILD";

    /// A full file system (here the file-size limit, EFBIG, in a child process): the records
    /// are not counted as stored, no partial line is left, they are held within the bound
    /// (beyond it dropped and counted), the store asks for back-pressure, retries from its
    /// timer without new input, and stores them all once there is room again.
    #[test]
    fn a_full_disk_holds_records_and_recovers_by_itself() {
        if std::env::var_os(CHILD_ENV).is_none() {
            return in_child("a_full_disk_holds_records_and_recovers_by_itself");
        }
        wrapper_facade::signal::ignore(
            wrapper_facade::signal::Signal::from_raw(libc_sigxfsz()).unwrap(),
        )
        .unwrap();
        let dir = scratch("full");
        let mut cfg = StoreConfig::new(&dir);
        cfg.max_pending = 4;
        let mut store = FileStore::open(cfg).unwrap();
        store.write_batch(&batch_of(&[("h", "first")])).unwrap();
        let path = dir.join("h.log");
        let size = std::fs::metadata(&path).unwrap().len();
        wrapper_facade::file::set_file_size_limit(size + 30).unwrap();
        let big = "x".repeat(20);
        store
            .write_batch(&batch_of(&[("h", &big), ("h", &big), ("h", &big)]))
            .unwrap();
        let s = stats_of(&store, 4);
        assert_eq!((s.stored, s.held, s.dropped()), (1, 3, 0), "{s:?}");
        assert!(s.write_errors >= 1 && s.store_balances(), "{s:?}");
        assert!(store.backlogged());
        assert_eq!(lines(&path), ["h first"]);
        // Up to the bound held, past it dropped and counted.
        store
            .write_batch(&batch_of(&[("h", "a"), ("h", "b")]))
            .unwrap();
        let s = stats_of(&store, 6);
        assert_eq!(
            (s.stored, s.held, s.dropped_pending_full),
            (1, 4, 1),
            "{s:?}"
        );
        assert!(s.store_balances());
        // Still full: the retry fails and keeps them.
        store.tick(Instant::now() + Duration::from_secs(60));
        assert_eq!(stats_of(&store, 6).held, 4);
        assert_eq!(lines(&path).len(), 1);
        // Room again: the timer's retry stores them, in order, as whole lines.
        wrapper_facade::file::set_file_size_limit(u64::MAX).unwrap();
        store.tick(Instant::now() + Duration::from_secs(120));
        let s = stats_of(&store, 6);
        assert_eq!((s.stored, s.held, s.dropped()), (5, 0, 1), "{s:?}");
        assert!(s.store_balances() && !store.backlogged());
        let expected = format!("h {big}");
        assert_eq!(
            lines(&path),
            ["h first", &expected, &expected, &expected, "h a"]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn libc_sigxfsz() -> i32 {
        // SIGXFSZ is 25 on every Linux architecture Rust supports but MIPS and SPARC.
        if cfg!(any(
            target_arch = "mips",
            target_arch = "mips64",
            target_arch = "sparc64"
        )) {
            30
        } else {
            25
        }
    }

    /// One host that cannot be written (its path is a directory: EISDIR, which stops root
    /// too) costs no other host a record, and its own records are held until it can be.
    #[test]
    fn one_bad_host_costs_only_itself_and_nothing_is_lost_at_a_stop() {
        let dir = scratch("badhost");
        let mut store = FileStore::open(StoreConfig::new(&dir)).unwrap();
        std::fs::create_dir_all(dir.join("bad.log").join("sub")).unwrap();
        store
            .write_batch(&batch_of(&[
                ("a", "1"),
                ("bad", "2"),
                ("c", "3"),
                ("bad", "4"),
            ]))
            .unwrap();
        let s = stats_of(&store, 4);
        assert_eq!((s.stored, s.held), (2, 2), "{s:?}");
        assert_eq!(lines(&dir.join("a.log")), ["a 1"]);
        assert_eq!(lines(&dir.join("c.log")), ["c 3"]);
        // At the stop, what could not be written is counted as lost.
        store.flush().unwrap();
        let s = stats_of(&store, 4);
        assert_eq!(
            (s.stored, s.held, s.dropped_write_failed),
            (2, 0, 2),
            "{s:?}"
        );
        assert!(s.store_balances());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_torn_last_line_is_ended_before_anything_is_appended() {
        let dir = scratch("torn");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("h.log"),
            format!("{T} h a[1] user.info - - - whole\n{T} h a[1] user.info - - - cut sh"),
        )
        .unwrap();
        let mut store = FileStore::open(StoreConfig::new(&dir)).unwrap();
        store.write_batch(&batch_of(&[("h", "next")])).unwrap();
        assert_eq!(lines(&dir.join("h.log")), ["h whole", "h cut sh", "h next"]);
        assert_eq!(stats_of(&store, 1).torn_repaired, 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Host names RFC 5424 allows (up to 255 characters), names that sanitise alike, hidden
    /// and special names: each gets a file of its own that rotates, and its lines keep the
    /// whole claimed host.
    #[test]
    fn every_host_name_gets_a_file_of_its_own() {
        let dir = scratch("names");
        let mut cfg = StoreConfig::new(&dir);
        cfg.rotate_bytes = 400;
        let mut store = FileStore::open(cfg).unwrap();
        let hosts = [
            "a".repeat(255),
            "b".repeat(252),
            "c".repeat(250),
            "hôst-ü".to_string(),
            "hôst-ö".to_string(),
            ".x".to_string(),
            "..".to_string(),
            "_overflow".to_string(),
        ];
        for round in 0..3 {
            let records: Vec<(&str, String)> = hosts
                .iter()
                .map(|h| (h.as_str(), format!("r{round}")))
                .collect();
            let refs: Vec<(&str, &str)> = records.iter().map(|(h, m)| (*h, m.as_str())).collect();
            store.write_batch(&batch_of(&refs)).unwrap();
        }
        let s = stats_of(&store, 3 * hosts.len() as u64);
        assert_eq!((s.stored, s.write_errors), (24, 0), "{s:?}");
        let mut stems: Vec<String> = hosts.iter().map(|h| file_stem(h)).collect();
        stems.sort();
        stems.dedup();
        assert_eq!(stems.len(), hosts.len());
        for host in &hosts {
            let stem = file_stem(host);
            assert!(!stem.starts_with('.') && stem.len() <= MAX_STEM, "{stem}");
            // A line of a long host is longer than half the rotation size: every round rotates.
            let current = lines(&dir.join(format!("{stem}.log")));
            let rotated = lines(&dir.join(format!("{stem}.log.1")));
            let older = lines(&dir.join(format!("{stem}.log.2")));
            if host.len() >= 250 {
                assert_eq!(current, [format!("{host} r2")]);
                assert_eq!(rotated, [format!("{host} r1")]);
                assert_eq!(older, [format!("{host} r0")]);
            } else {
                let all: Vec<String> = [older, rotated, current].concat();
                assert_eq!(all.len(), 3, "{host}");
                assert!(all.iter().all(|l| l.starts_with(&format!("{host} "))));
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Many hosts: at most `max_open_files` descriptors, at most `max_hosts` host files, the
    /// rest in the overflow file with their hosts in the lines; a reopen with `--fsync none`
    /// syncs nothing.
    #[test]
    fn descriptors_and_host_files_are_bounded() {
        let dir = scratch("bounded");
        let mut cfg = StoreConfig::new(&dir);
        cfg.max_open_files = 4;
        cfg.max_hosts = 10;
        let mut store = FileStore::open(cfg).unwrap();
        let hosts: Vec<String> = (0..30).map(|i| format!("h{i}")).collect();
        for round in 0..2 {
            let refs: Vec<(&str, &str)> = hosts
                .iter()
                .map(|h| (h.as_str(), if round == 0 { "0" } else { "1" }))
                .collect();
            store.write_batch(&batch_of(&refs)).unwrap();
        }
        let s = stats_of(&store, 60);
        assert_eq!((s.stored, s.overflow, s.open_files), (60, 40, 4), "{s:?}");
        for h in &hosts[..10] {
            assert_eq!(lines(&dir.join(format!("{h}.log"))).len(), 2);
        }
        let overflow = lines(&dir.join("_overflow.log"));
        assert_eq!(overflow.len(), 40);
        for h in &hosts[10..] {
            assert_eq!(
                overflow
                    .iter()
                    .filter(|l| l.starts_with(&format!("{h} ")))
                    .count(),
                2
            );
        }
        store.reopen().unwrap();
        let s = stats_of(&store, 60);
        assert_eq!((s.open_files, s.syncs), (0, 0), "{s:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// `max_hosts` counts the host files an earlier run left (current or only rotated ones):
    /// a restart does not allow another `max_hosts` of them. Hosts that have a file keep it.
    #[test]
    fn the_host_file_cap_holds_across_a_restart() {
        let dir = scratch("hosts-restart");
        let mut cfg = StoreConfig::new(&dir);
        cfg.max_hosts = 10;
        let hosts: Vec<String> = (0..20).map(|i| format!("h{i}.log.{i}")).collect();
        let refs = |r: std::ops::Range<usize>| -> Vec<(&str, &str)> {
            hosts[r].iter().map(|h| (h.as_str(), "m")).collect()
        };
        let mut first = FileStore::open(cfg.clone()).unwrap();
        first.write_batch(&batch_of(&refs(0..6))).unwrap();
        first.flush().unwrap();
        drop(first);
        // One host's file was rotated away by logrotate's numbering: it still counts.
        std::fs::rename(
            dir.join(format!("{}.log", hosts[5])),
            dir.join(format!("{}.log.1", hosts[5])),
        )
        .unwrap();
        // The spool's directory and other files are not host files.
        std::fs::create_dir_all(dir.join("spool")).unwrap();
        std::fs::write(dir.join("notes.txt"), "x").unwrap();
        let mut second = FileStore::open(cfg).unwrap();
        // New hosts first: without counting the files found, they would take the whole cap
        // and the hosts that have files would be sent to the overflow file.
        second
            .write_batch(&batch_of(&[refs(6..20), refs(0..6)].concat()))
            .unwrap();
        let s = stats_of(&second, 20);
        // h0..h5 keep their files, 4 new ones reach the cap of 10, the other 10 overflow.
        assert_eq!((s.stored, s.overflow), (20, 10), "{s:?}");
        // One line from each run, but where the first run's file was rotated away.
        for (i, h) in hosts[..10].iter().enumerate() {
            let runs = if i < 5 { 2 } else { 1 };
            assert_eq!(
                lines(&dir.join(format!("{h}.log"))),
                vec![format!("{h} m"); runs]
            );
        }
        let overflow = lines(&dir.join("_overflow.log"));
        let expected: Vec<String> = hosts[10..].iter().map(|h| format!("{h} m")).collect();
        assert_eq!(overflow, expected);
        drop(second);
        // A third run finds the overflow file too, which is no host file.
        let mut cfg = StoreConfig::new(&dir);
        cfg.max_hosts = 11;
        let mut third = FileStore::open(cfg).unwrap();
        third.write_batch(&batch_of(&refs(10..12))).unwrap();
        let s = stats_of(&third, 2);
        assert_eq!((s.stored, s.overflow), (2, 1), "{s:?}");
        drop(third);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_second_store_on_the_same_directory_is_refused_until_the_first_closes() {
        let dir = scratch("lock");
        let mut first = FileStore::open(StoreConfig::new(&dir)).unwrap();
        let err = FileStore::open(StoreConfig::new(&dir)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        assert!(
            err.to_string().contains(&dir.display().to_string())
                && err.to_string().contains("in use"),
            "{err}"
        );
        first.flush().unwrap();
        FileStore::open(StoreConfig::new(&dir)).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_removed_data_directory_is_made_again() {
        let dir = scratch("gone");
        let mut store = FileStore::open(StoreConfig::new(&dir)).unwrap();
        store.write_batch(&batch_of(&[("h", "before")])).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        store.tick(Instant::now() + Duration::from_secs(1));
        assert!(dir.is_dir());
        store.write_batch(&batch_of(&[("h", "after")])).unwrap();
        assert_eq!(lines(&dir.join("h.log")), ["h after"]);
        let s = stats_of(&store, 2);
        assert_eq!((s.stored, s.dir_recreated), (2, 1), "{s:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn interval_fsync_syncs_a_quiet_file_from_the_timer() {
        let dir = scratch("interval");
        let mut cfg = StoreConfig::new(&dir);
        cfg.durability = Durability::Interval(Duration::from_millis(50));
        let mut store = FileStore::open(cfg).unwrap();
        store
            .write_batch(&batch_of(&[("h", "last before a quiet spell")]))
            .unwrap();
        assert_eq!(stats_of(&store, 1).syncs, 0);
        store.tick(Instant::now() + Duration::from_millis(50));
        assert_eq!(stats_of(&store, 1).syncs, 1);
        // Nothing more to sync.
        store.tick(Instant::now() + Duration::from_millis(100));
        assert_eq!(stats_of(&store, 1).syncs, 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Group commit under `--fsync batch`: alone, each batch is synced; inside a group, each
    /// file is synced once at its end, and only files that were written.
    #[test]
    fn every_batch_fsync_syncs_once_per_file_per_group() {
        let dir = scratch("group");
        let mut cfg = StoreConfig::new(&dir);
        cfg.durability = Durability::EveryBatch;
        let mut store = FileStore::open(cfg).unwrap();
        store.write_batch(&batch_of(&[("a", "alone")])).unwrap();
        assert_eq!(stats_of(&store, 1).syncs, 1);
        store.begin_group();
        for m in ["one", "two", "three"] {
            store.write_batch(&batch_of(&[("a", m), ("b", m)])).unwrap();
        }
        assert_eq!(
            stats_of(&store, 7).syncs,
            1,
            "nothing synced inside the group"
        );
        store.end_group();
        assert_eq!(stats_of(&store, 7).syncs, 3, "a and b, once each");
        store.begin_group();
        store.end_group();
        assert_eq!(stats_of(&store, 7).syncs, 3, "an empty group syncs nothing");
        assert_eq!(lines(&dir.join("b.log")).len(), 3);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn all_lines(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_file() {
                out.extend(lines(&p));
            }
        }
        out.sort();
        out
    }

    fn numbered(n: usize) -> String {
        format!("{n:04}")
    }

    /// Size rotation with logrotate's `mv` (with and without SIGHUP's reopen) and
    /// `copytruncate`, interleaved: every record is in exactly one file, once.
    #[test]
    fn rotation_and_logrotate_together_lose_nothing() {
        let dir = scratch("logrotate");
        let mut cfg = StoreConfig::new(&dir);
        // A line is 20 bytes: five lines a file.
        cfg.rotate_bytes = 100;
        cfg.keep = 50;
        let mut store = FileStore::open(cfg).unwrap();
        let path = dir.join("vm.log");
        let mut n = 0;
        let mut write = |store: &mut FileStore, k: usize| {
            for _ in 0..k {
                store
                    .write_batch(&batch_of(&[("vm", &numbered(n))]))
                    .unwrap();
                n += 1;
            }
        };
        write(&mut store, 3);
        // logrotate's `create` mode without the SIGHUP yet: the next size rotation must not
        // rename the moved file's new name away or lose the file.
        std::fs::rename(&path, dir.join("vm.log.moved1")).unwrap();
        write(&mut store, 7);
        // `mv` then SIGHUP.
        std::fs::rename(&path, dir.join("vm.log.moved2")).unwrap();
        store.reopen().unwrap();
        write(&mut store, 4);
        // copytruncate: copy, then empty the file under the open descriptor.
        std::fs::copy(&path, dir.join("vm.log.copied")).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(0)
            .unwrap();
        write(&mut store, 9);
        // A rotation that fails (the oldest rotated name is a directory, which cannot be
        // removed as a file) keeps appending to the current file.
        std::fs::create_dir_all(dir.join("vm.log.50").join("x")).unwrap();
        write(&mut store, 6);
        let s = stats_of(&store, 29);
        assert_eq!((s.stored, s.write_errors), (29, 0), "{s:?}");
        assert!(s.rotate_failures >= 1, "{s:?}");
        let expected: Vec<String> = (0..29).map(|i| format!("vm {}", numbered(i))).collect();
        assert_eq!(all_lines(&dir), expected);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
