//! A durable FIFO of records: a bounded queue in memory that spills to segment files on disk.
//!
//! The spool is what a sink that delivers somewhere else (TCP and RELP forwarding, the
//! ClickHouse sink) keeps its undelivered records in. A producer [`push`](Spool::push)es
//! records; the sender [`peek`](Spool::peek)s a batch, delivers it, and only then
//! [`commit`](Spool::commit)s its [`Position`], which removes the batch. A sender that fails
//! peeks again and gets the same records, so delivery resumes from the last commit.
//! [`Spool::peek_each`] hands the batch's records to a closure instead of copying each out,
//! for a sender that builds one request body from them.
//!
//! # Layout
//!
//! The queue is, oldest first, the records in segment files (`DIR/<id>.seg`, ids increasing)
//! followed by the records in memory. Records go to memory while it holds fewer than
//! `memory_bytes`; when it is full, its oldest records move to the newest segment, so order
//! is kept. A segment is read back whole when it becomes the oldest, and deleted once every
//! record of it is committed. A small `cursor` file records how many records of the oldest
//! segment are committed already. In memory, records lie back to back in chunks of 1 MiB,
//! reused as the oldest go; a segment read back is one buffer, the records read in place
//! (no allocation per record).
//!
//! On disk a record is framed as a 4-byte little-endian length, a 4-byte CRC-32 of the
//! record, then the record. A segment closed for writing (because it is full, or at a
//! graceful stop) gets a `DIR/<id>.count` file beside it: its records and its length.
//!
//! # Opening and checking
//!
//! [`Spool::open`] counts the records an earlier run left. A segment whose `.count` file
//! gives its current length is counted from that file, not read; any other segment (the one
//! being written when the process died, or one an older version wrote) is read whole: a
//! frame cut short or with a wrong checksum ends the segment there (a torn tail, counted in
//! [`SpoolStats::torn_tails`]); the file is truncated to its last whole record and nothing
//! after the tear is ever read as a record.
//!
//! A segment counted from its `.count` file is checked the same way when it is first read
//! back, before any of its records is handed out: a damaged frame (a bit flipped on disk)
//! cuts it there, counts a torn tail, and lowers [`SpoolStats::recovered`] and
//! [`SpoolStats::records`] by the records lost, so that the counters end as a reading open
//! would have left them. Only later records' numbers shift (see [`Position`]); the records in
//! flight are older, since a batch never spans two segments.
//!
//! # Bounds and policies
//!
//! Memory holds at most `memory_bytes` of records, the segment files at most `max_bytes`
//! (8 bytes of framing per record included). When both are full, [`FullPolicy`] says what
//! happens, and every record lost that way is counted under its reason:
//! `Block` refuses the new record (and [`Spool::backlogged`] says so from the moment the
//! disk is full, so that a producer able to pause, a TCP reader, pauses first),
//! `DropNewest` refuses the new record, `DropOldest` removes the oldest records (a whole
//! segment at a time) to make room.
//!
//! A record removed by `DropOldest` while it was being sent, whose batch is then committed,
//! was delivered after all: the commit moves it from the drop counter to the committed one,
//! so every record is counted exactly once.
//!
//! # Crash semantics
//!
//! - [`Spool::persist`] (a graceful stop) writes the memory queue to a segment, even past
//!   `max_bytes` (by at most `memory_bytes`), syncs the files and the cursor, and the next
//!   [`Spool::open`] replays every record in order.
//! - `kill -9` loses the records in memory (a forwarder's records are also in the local
//!   store files) and keeps every record already written to a segment: segment writes go to
//!   the kernel when a batch is pushed, so they survive the process, though not a power
//!   failure (only `persist` syncs).
//! - `kill -9` between a delivery and the write of the cursor makes the next start send the
//!   records since the last cursor write again: duplicates upstream, never losses. A torn
//!   tail loses the one record being written and is counted.
//! - A `.count` file is written after its segment's last record and removed before its
//!   segment: one that is missing, cut short or disagrees with its segment's length makes
//!   open read that segment, as before the `.count` files existed.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// Bytes of framing per record on disk: length and CRC-32.
pub const FRAME_OVERHEAD: u64 = 8;

/// The largest record a segment may hold; a longer length field is taken as a torn tail.
const MAX_RECORD: u32 = 64 << 20;

/// The segment writer's buffer: records reach the kernel in writes of this size.
const WRITE_BUFFER: usize = 256 << 10;

/// The size of a chunk of the memory queue (a larger record gets a chunk of its own size).
const CHUNK: usize = 1 << 20;

/// Emptied chunks a queue keeps for reuse.
const SPARE_CHUNKS: usize = 2;

/// What a full spool does with one more record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum FullPolicy {
    /// Refuse new records and report back-pressure ([`Spool::backlogged`]).
    #[default]
    Block,
    /// Remove the oldest records to make room.
    DropOldest,
    /// Refuse the new record.
    DropNewest,
}

impl std::str::FromStr for FullPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "block" => Ok(FullPolicy::Block),
            "drop-oldest" => Ok(FullPolicy::DropOldest),
            "drop-newest" => Ok(FullPolicy::DropNewest),
            _ => Err(format!(
                "spool policy `{s}`: expected block, drop-oldest or drop-newest"
            )),
        }
    }
}

impl std::fmt::Display for FullPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FullPolicy::Block => "block",
            FullPolicy::DropOldest => "drop-oldest",
            FullPolicy::DropNewest => "drop-newest",
        })
    }
}

/// Configuration of a [`Spool`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolConfig {
    /// Directory of the segment files (created if missing).
    pub dir: PathBuf,
    /// Records kept in memory before they spill to disk, in bytes.
    pub memory_bytes: u64,
    /// Bytes the segment files may hold, framing included.
    pub max_bytes: u64,
    /// What happens when memory and disk are full.
    pub full: FullPolicy,
    /// A segment file is closed for writing once it holds this many bytes.
    pub segment_bytes: u64,
}

impl SpoolConfig {
    /// 8 MiB in memory, 1 GiB on disk in segments of 4 MiB, blocking when full.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        SpoolConfig {
            dir: dir.into(),
            memory_bytes: 8 << 20,
            max_bytes: 1 << 30,
            full: FullPolicy::Block,
            segment_bytes: 4 << 20,
        }
    }
}

/// Counters of a [`Spool`]. Every record pushed or found on disk at open is, at any moment,
/// queued, committed or in exactly one drop counter:
/// `pushed + recovered == records + committed + dropped_block + dropped_oldest + dropped_newest`
/// (a torn tail is not a whole record, so it is counted apart, per tail).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SpoolStats {
    /// Records pushed.
    pub pushed: u64,
    /// Records found in segment files at open (left by an earlier run); lowered when a
    /// segment counted from its `.count` file turns out damaged as it is read back.
    pub recovered: u64,
    /// Records written to segment files.
    pub spooled: u64,
    /// Records committed (delivered) and removed.
    pub committed: u64,
    /// Records refused because the spool was full under [`FullPolicy::Block`].
    pub dropped_block: u64,
    /// Records removed by [`FullPolicy::DropOldest`].
    pub dropped_oldest: u64,
    /// Records refused by [`FullPolicy::DropNewest`].
    pub dropped_newest: u64,
    /// Torn tails found (and cut off) in segment files.
    pub torn_tails: u64,
    /// Records queued now.
    pub records: u64,
    /// Bytes of records in memory now.
    pub memory_bytes: u64,
    /// Bytes of the segment files now.
    pub disk_bytes: u64,
}

/// Where a peeked batch ends: give it back to [`Spool::commit`] once the batch is delivered.
///
/// Records are numbered in queue order since the spool was opened. When a segment left by
/// an earlier run turns out damaged as it is read back, the numbers of the records after
/// it shift down by the records lost; a position peeked before is older than that segment
/// (a batch never spans two segments), so it stays right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    start: u64,
    end: u64,
}

impl Position {
    /// The number (counted since the spool was made) of the batch's first record.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// The number of the record after the batch's last.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// Records in the batch.
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }

    /// From this batch's start to the end of `later` (a batch peeked after it): what a
    /// sender commits when both are delivered.
    pub fn through(self, later: Position) -> Position {
        Position {
            start: self.start.min(later.start),
            end: self.end.max(later.end),
        }
    }
}

impl Batch {
    /// The position of the batch's `i`-th record alone.
    pub fn position_of(&self, i: usize) -> Position {
        let start = self.position.start + i as u64;
        Position {
            start,
            end: start + 1,
        }
    }
}

/// Records taken from the head of a [`Spool`], oldest first, not yet removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// The records.
    pub records: Vec<Vec<u8>>,
    /// What to commit once they are delivered.
    pub position: Position,
}

/// What became of a pushed record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Pushed {
    /// Queued (in memory or on disk).
    Queued,
    /// Refused: the spool is full ([`FullPolicy::Block`] or [`FullPolicy::DropNewest`]).
    Refused,
}

#[derive(Debug)]
struct Segment {
    id: u64,
    /// Records in the file.
    count: u64,
    /// Records of it committed (or dropped) already: the first ones.
    done: u64,
    /// Bytes of the file.
    bytes: u64,
    /// Whether its frames were read and found whole (false: counted from its `.count` file
    /// at open, checked when it is read back).
    checked: bool,
}

/// Records lying back to back in buffers (chunks), oldest first: the memory queue, and the
/// oldest segment's records once read (one chunk, the file, with the records between the
/// frames' headers). A record lies whole in one chunk.
#[derive(Debug, Default)]
struct Records {
    chunks: VecDeque<Vec<u8>>,
    /// The number of `chunks[0]` (chunks are numbered in the order they come).
    first_chunk: u64,
    /// Each record's chunk number, and where it starts and ends in that chunk.
    spans: VecDeque<(u64, usize, usize)>,
    /// Emptied chunks, kept for reuse: neither allocated nor faulted in again.
    spare: Vec<Vec<u8>>,
}

impl Records {
    fn len(&self) -> usize {
        self.spans.len()
    }

    fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    fn slice(&self, (chunk, start, end): (u64, usize, usize)) -> &[u8] {
        &self.chunks[(chunk - self.first_chunk) as usize][start..end]
    }

    fn front(&self) -> Option<&[u8]> {
        self.spans.front().map(|&s| self.slice(s))
    }

    /// The records from the `skip`-th on.
    fn iter_from(&self, skip: usize) -> impl Iterator<Item = &[u8]> {
        self.spans
            .range(skip.min(self.spans.len())..)
            .map(|&s| self.slice(s))
    }

    /// Adds a record at the end of the newest chunk, or of a new one when it does not fit.
    fn push(&mut self, record: &[u8]) {
        let fits = self
            .chunks
            .back()
            .is_some_and(|c| c.capacity() - c.len() >= record.len());
        if !fits {
            let mut chunk = self.spare.pop().unwrap_or_default();
            chunk.clear();
            chunk.reserve(record.len().max(CHUNK));
            self.chunks.push_back(chunk);
        }
        let number = self.first_chunk + self.chunks.len() as u64 - 1;
        let chunk = self.chunks.back_mut().expect("a chunk");
        let start = chunk.len();
        chunk.extend_from_slice(record);
        self.spans.push_back((number, start, chunk.len()));
    }

    /// Removes the `n` oldest records, and the chunks left without one; the bytes they held.
    fn remove_front(&mut self, n: usize) -> u64 {
        let n = n.min(self.spans.len());
        let bytes = self.spans.drain(..n).map(|(_, s, e)| (e - s) as u64).sum();
        let first_kept = self
            .spans
            .front()
            .map_or(self.first_chunk + self.chunks.len() as u64, |s| s.0);
        while self.first_chunk < first_kept {
            let chunk = self.chunks.pop_front().expect("a chunk");
            self.first_chunk += 1;
            self.recycle(chunk);
        }
        bytes
    }

    fn recycle(&mut self, chunk: Vec<u8>) {
        if self.spare.len() < SPARE_CHUNKS {
            self.spare.push(chunk);
        }
    }

    /// Forgets every record, keeping the chunks for reuse.
    fn clear(&mut self) {
        self.remove_front(self.spans.len());
    }

    /// Replaces the records with the whole file at `path`, read into one chunk; its number.
    /// The records' spans are the caller's to add.
    fn read_file(&mut self, path: &Path) -> io::Result<u64> {
        self.clear();
        let mut chunk = self.spare.pop().unwrap_or_default();
        read_into(path, &mut chunk)?;
        self.chunks.push_back(chunk);
        Ok(self.first_chunk)
    }
}

/// The durable FIFO. See the [module documentation](self).
#[derive(Debug)]
pub struct Spool {
    cfg: SpoolConfig,
    segments: VecDeque<Segment>,
    /// The segment being appended to: always the last of `segments`.
    writer: Option<(u64, BufWriter<File>)>,
    next_id: u64,
    /// The segment whose not yet committed records `loaded` holds, once read.
    loaded_id: Option<u64>,
    loaded: Records,
    memory: Records,
    /// Sequence number of the oldest queued record.
    head: u64,
    /// Sequence number of the oldest record in memory (after every record on disk).
    mem_first: u64,
    stats: SpoolStats,
    /// The disk refused a spill: the spool is full.
    disk_full: bool,
}

fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.seg"))
}

fn count_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.count"))
}

/// A segment's `.count` file: its records and its length, on one line.
fn read_count(path: &Path) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(path).ok()?;
    // The newline is written last: a file cut short has none, and is not trusted.
    let (count, bytes) = text.strip_suffix('\n')?.split_once(' ')?;
    Some((count.parse().ok()?, bytes.parse().ok()?))
}

/// Walks the frames at the start of `bytes` (a segment file's contents), handing each whole
/// record's span to `each`, and stops at the end, at a frame cut short or with a wrong
/// checksum, or after a record for which `each` returns `false`. Returns the length of the
/// whole frames walked: shorter than `bytes` means a torn tail (or an early stop).
fn walk_frames(bytes: &[u8], mut each: impl FnMut(usize, usize) -> bool) -> usize {
    let mut at = 0usize;
    while bytes.len() - at >= FRAME_OVERHEAD as usize {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        let crc = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().expect("4 bytes"));
        if len > MAX_RECORD {
            break;
        }
        let start = at + FRAME_OVERHEAD as usize;
        let Some(record) = bytes.get(start..start + len as usize) else {
            break;
        };
        if crc32fast::hash(record) != crc {
            break;
        }
        at = start + len as usize;
        if !each(start, at) {
            break;
        }
    }
    at
}

/// Reads a whole file into `buf` (cleared first, its capacity kept).
fn read_into(path: &Path, buf: &mut Vec<u8>) -> io::Result<()> {
    buf.clear();
    let mut f = File::open(path)?;
    let len = f.metadata()?.len() as usize;
    buf.reserve(len);
    f.read_to_end(buf)?;
    Ok(())
}

fn frame(record: &[u8]) -> u64 {
    FRAME_OVERHEAD + record.len() as u64
}

impl Spool {
    /// Opens the spool in `cfg.dir`, creating it if needed, and finds the records an earlier
    /// run left there (reading the segments without a matching `.count` file, and cutting
    /// off torn tails). They come first, in their order.
    pub fn open(cfg: SpoolConfig) -> io::Result<Spool> {
        std::fs::create_dir_all(&cfg.dir)?;
        let mut ids = Vec::new();
        let mut counted = Vec::new();
        for e in std::fs::read_dir(&cfg.dir)? {
            let name = e?.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(id) = name
                .strip_suffix(".seg")
                .and_then(|n| n.parse::<u64>().ok())
            {
                ids.push(id);
            } else if let Some(id) = name.strip_suffix(".count").and_then(|n| n.parse().ok()) {
                counted.push(id);
            }
        }
        ids.sort_unstable();
        // A `.count` file whose segment is gone (a crash between the two removals).
        for id in counted {
            if ids.binary_search(&id).is_err() {
                std::fs::remove_file(count_path(&cfg.dir, id))?;
            }
        }
        let cursor = std::fs::read_to_string(cfg.dir.join("cursor"))
            .ok()
            .and_then(|s| {
                let (id, done) = s.trim().split_once(' ')?;
                Some((id.parse::<u64>().ok()?, done.parse::<u64>().ok()?))
            });
        let mut spool = Spool {
            next_id: ids.last().map_or(1, |l| l + 1),
            cfg,
            segments: VecDeque::new(),
            writer: None,
            loaded_id: None,
            loaded: Records::default(),
            memory: Records::default(),
            head: 0,
            mem_first: 0,
            stats: SpoolStats::default(),
            disk_full: false,
        };
        let mut buf = Vec::new();
        for id in ids {
            let path = segment_path(&spool.cfg.dir, id);
            let len = std::fs::metadata(&path)?.len();
            let counted = read_count(&count_path(&spool.cfg.dir, id));
            let (count, valid, checked) = match counted {
                Some((count, bytes)) if bytes == len => (count, len, false),
                _ => {
                    let _ = std::fs::remove_file(count_path(&spool.cfg.dir, id));
                    read_into(&path, &mut buf)?;
                    let mut count = 0;
                    let valid = walk_frames(&buf, |_, _| {
                        count += 1;
                        true
                    }) as u64;
                    if valid < len {
                        tracing::warn!(path = %path.display(), valid, len, "spool: torn tail cut off");
                        spool.stats.torn_tails += 1;
                        OpenOptions::new().write(true).open(&path)?.set_len(valid)?;
                    }
                    (count, valid, true)
                }
            };
            let done = match cursor {
                Some((cid, done)) if cid == id => done.min(count),
                _ => 0,
            };
            if done == count {
                spool.remove_segment_files(id)?;
                continue;
            }
            spool.stats.recovered += count - done;
            spool.stats.disk_bytes += valid;
            spool.mem_first += count - done;
            spool.segments.push_back(Segment {
                id,
                count,
                done,
                bytes: valid,
                checked,
            });
        }
        spool.stats.records = spool.mem_first;
        Ok(spool)
    }

    /// Removes a segment's files, its `.count` file first (a `.count` file never outlives
    /// its segment unless a crash comes between the two; open removes such a one).
    fn remove_segment_files(&self, id: u64) -> io::Result<()> {
        match std::fs::remove_file(count_path(&self.cfg.dir, id)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        std::fs::remove_file(segment_path(&self.cfg.dir, id))
    }

    /// The configuration.
    pub fn config(&self) -> &SpoolConfig {
        &self.cfg
    }

    /// The counters so far.
    pub fn stats(&self) -> SpoolStats {
        self.stats
    }

    /// Records queued.
    pub fn len(&self) -> u64 {
        self.stats.records
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.stats.records == 0
    }

    /// Whether the oldest queued records are in a segment file, so that a peek now reads
    /// them from there (rather than from memory): a sender may check what it reads back.
    pub fn oldest_on_disk(&self) -> bool {
        !self.segments.is_empty()
    }

    /// Whether the policy is [`FullPolicy::Block`] and the disk is full or nearly so (less
    /// room left than one segment, or a quarter of the spool if that is less: a high-water
    /// mark, so that a producer that stops in time loses nothing): a producer that can wait
    /// should stop producing until a commit makes room.
    pub fn backlogged(&self) -> bool {
        let headroom = self.cfg.segment_bytes.min(self.cfg.max_bytes / 4);
        self.cfg.full == FullPolicy::Block
            && (self.disk_full || self.stats.disk_bytes + headroom > self.cfg.max_bytes)
    }

    /// Appends a record at the tail.
    ///
    /// Fails only when a segment file cannot be written; the record is then not queued (and
    /// not counted as pushed), and the queue is as it was.
    pub fn push(&mut self, record: &[u8]) -> io::Result<Pushed> {
        self.stats.pushed += 1;
        let len = record.len() as u64;
        loop {
            if self.stats.memory_bytes + len <= self.cfg.memory_bytes {
                self.memory.push(record);
                self.stats.memory_bytes += len;
                self.stats.records += 1;
                return Ok(Pushed::Queued);
            }
            // Memory is full: make room by moving its oldest record to disk, or, when memory
            // is empty (a record larger than all of it), write this one to disk directly.
            let need = match self.memory.front() {
                Some(oldest) => frame(oldest),
                None => frame(record),
            };
            if self.stats.disk_bytes + need <= self.cfg.max_bytes {
                if self.memory.is_empty() {
                    if let Err(e) = self.append(record) {
                        self.stats.pushed -= 1;
                        return Err(e);
                    }
                    self.mem_first += 1;
                    self.stats.records += 1;
                    return Ok(Pushed::Queued);
                }
                // The memory queue lent to `append` (which needs the spool mutably): moving
                // it is a few words, not its records.
                let memory = std::mem::take(&mut self.memory);
                let appended = self.append(memory.front().expect("not empty"));
                self.memory = memory;
                if let Err(e) = appended {
                    // Nothing moved: the oldest stays queued, the new one is refused.
                    self.stats.pushed -= 1;
                    return Err(e);
                }
                self.stats.memory_bytes -= self.memory.remove_front(1);
                self.mem_first += 1;
                continue;
            }
            self.disk_full = true;
            match self.cfg.full {
                FullPolicy::DropOldest if !self.is_empty() => self.drop_oldest()?,
                FullPolicy::Block => {
                    self.stats.dropped_block += 1;
                    return Ok(Pushed::Refused);
                }
                // Drop-newest, or drop-oldest with nothing older to drop (a record larger
                // than the whole spool): the new record goes.
                FullPolicy::DropOldest => {
                    self.stats.dropped_oldest += 1;
                    return Ok(Pushed::Refused);
                }
                FullPolicy::DropNewest => {
                    self.stats.dropped_newest += 1;
                    return Ok(Pushed::Refused);
                }
            }
        }
    }

    /// Writes a record at the end of the newest segment, starting a new one when needed.
    fn append(&mut self, record: &[u8]) -> io::Result<()> {
        let full = self
            .segments
            .back()
            .is_some_and(|s| s.bytes >= self.cfg.segment_bytes);
        if self.writer.is_none() || full {
            self.seal()?;
            let id = self.next_id;
            self.next_id += 1;
            let file = OpenOptions::new()
                .create_new(true)
                .append(true)
                .open(segment_path(&self.cfg.dir, id))?;
            self.writer = Some((id, BufWriter::with_capacity(WRITE_BUFFER, file)));
            self.segments.push_back(Segment {
                id,
                count: 0,
                done: 0,
                bytes: 0,
                checked: true,
            });
        }
        let (_, w) = self.writer.as_mut().expect("opened above");
        let len = u32::try_from(record.len())
            .ok()
            .filter(|&l| l <= MAX_RECORD)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "record too large"))?;
        let mut header = [0u8; FRAME_OVERHEAD as usize];
        header[..4].copy_from_slice(&len.to_le_bytes());
        header[4..].copy_from_slice(&crc32fast::hash(record).to_le_bytes());
        w.write_all(&header)?;
        w.write_all(record)?;
        let seg = self.segments.back_mut().expect("the writer's segment");
        seg.count += 1;
        seg.bytes += frame(record);
        self.stats.disk_bytes += frame(record);
        self.stats.spooled += 1;
        Ok(())
    }

    /// Hands what was written to the kernel (after a batch of pushes), so that it survives
    /// the process.
    pub fn flush(&mut self) -> io::Result<()> {
        if let Some((_, w)) = &mut self.writer {
            w.flush()?;
        }
        Ok(())
    }

    /// Ends writing to the newest segment (later records start a new one), and writes its
    /// `.count` file, so that the next open need not read it to count its records. A `.count`
    /// file that cannot be written costs only that read: it is logged, not an error.
    fn seal(&mut self) -> io::Result<()> {
        let Some((id, mut w)) = self.writer.take() else {
            return Ok(());
        };
        w.flush()?;
        drop(w);
        let Some(seg) = self.segments.iter().rev().find(|s| s.id == id) else {
            return Ok(());
        };
        let path = count_path(&self.cfg.dir, id);
        let written = File::create(&path)
            .and_then(|mut f| f.write_all(format!("{} {}\n", seg.count, seg.bytes).as_bytes()));
        if let Err(e) = written {
            tracing::warn!(path = %path.display(), "spool: cannot write a segment's count ({e}); the next start reads the segment instead");
            let _ = std::fs::remove_file(&path);
        }
        Ok(())
    }

    /// Removes the oldest records: the oldest segment, or the oldest record in memory.
    fn drop_oldest(&mut self) -> io::Result<()> {
        let n = match self.segments.pop_front() {
            Some(seg) => {
                if self.writer.as_ref().is_some_and(|(id, _)| *id == seg.id) {
                    self.writer = None;
                }
                if self.loaded_id == Some(seg.id) {
                    self.loaded_id = None;
                    self.loaded.clear();
                }
                self.remove_segment_files(seg.id)?;
                self.stats.disk_bytes -= seg.bytes;
                seg.count - seg.done
            }
            None => {
                self.stats.memory_bytes -= self.memory.remove_front(1);
                self.mem_first += 1;
                1
            }
        };
        self.head += n;
        self.stats.records -= n;
        self.stats.dropped_oldest += n;
        Ok(())
    }

    /// The oldest records, at most `max_records` and `max_bytes` (but at least one when any
    /// is queued), without removing them. Peeking again before a commit gives the same ones.
    pub fn peek(&mut self, max_records: usize, max_bytes: usize) -> io::Result<Batch> {
        self.peek_after(0, max_records, max_bytes)
    }

    /// Like [`peek`](Self::peek), after the first `skip` queued records (those a windowed
    /// sender has in flight). The batch stops at the end of the oldest segment (or of
    /// memory), so it may be empty while more records are queued: the sender then waits
    /// for its records in flight to be committed.
    pub fn peek_after(
        &mut self,
        skip: u64,
        max_records: usize,
        max_bytes: usize,
    ) -> io::Result<Batch> {
        let mut records = Vec::new();
        let position = self.peek_each(skip, max_records, max_bytes, |r| {
            records.push(r.to_vec());
            true
        })?;
        Ok(Batch { records, position })
    }

    /// Like [`peek_after`](Self::peek_after), handing each record of the batch to `each`,
    /// oldest first, instead of copying it out; `each` returning `false` ends the batch
    /// before that record (so a batch can end where its records change kind, even before
    /// its first). Returns the batch's position.
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("spool-doc-{}", std::process::id()));
    /// use logging_service::spool::{Spool, SpoolConfig};
    /// let mut spool = Spool::open(SpoolConfig::new(&dir)).unwrap();
    /// for r in ["a1\n", "a2\n", "b3\n"] {
    ///     spool.push(r.as_bytes()).unwrap();
    /// }
    /// // One body of the records starting with `a`, copied once.
    /// let mut body = Vec::new();
    /// let position = spool.peek_each(0, 100, 1 << 20, |r| {
    ///     r[0] == b'a' && { body.extend_from_slice(r); true }
    /// }).unwrap();
    /// assert_eq!((body.as_slice(), position.len()), (&b"a1\na2\n"[..], 2));
    /// spool.commit(position).unwrap();
    /// assert_eq!(spool.len(), 1);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn peek_each(
        &mut self,
        skip: u64,
        max_records: usize,
        max_bytes: usize,
        mut each: impl FnMut(&[u8]) -> bool,
    ) -> io::Result<Position> {
        let max_records = max_records.max(1);
        let from = if self.load_oldest()? {
            &self.loaded
        } else {
            &self.memory
        };
        let (mut n, mut bytes) = (0usize, 0usize);
        for r in from.iter_from(usize::try_from(skip).unwrap_or(usize::MAX)) {
            if n >= max_records || (n > 0 && bytes + r.len() > max_bytes) || !each(r) {
                break;
            }
            n += 1;
            bytes += r.len();
        }
        let start = self.head + skip;
        Ok(Position {
            start,
            end: start + n as u64,
        })
    }

    /// Makes `loaded` hold the oldest segment's remaining records, reading its file the
    /// first time; `false` when no segment is queued (the oldest records are in memory).
    ///
    /// A segment counted from its `.count` file is checked here: a damaged frame ends it,
    /// as [`Spool::open`] would have ended it (see the module documentation).
    fn load_oldest(&mut self) -> io::Result<bool> {
        loop {
            let Some(seg) = self.segments.front() else {
                return Ok(false);
            };
            let id = seg.id;
            if self.loaded_id == Some(id) {
                return Ok(true);
            }
            if self.writer.as_ref().is_some_and(|(w, _)| *w == id) {
                self.seal()?;
            }
            self.loaded_id = None;
            let path = segment_path(&self.cfg.dir, id);
            let chunk = self.loaded.read_file(&path)?;
            let seg = self.segments.front().expect("a segment");
            let count = seg.count;
            let bytes = &self.loaded.chunks[0];
            let len = bytes.len() as u64;
            let spans = &mut self.loaded.spans;
            let valid = walk_frames(bytes, |start, end| {
                spans.push_back((chunk, start, end));
                (spans.len() as u64) < count
            }) as u64;
            let found = self.loaded.spans.len() as u64;
            if seg.checked && found < count {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("spool segment {id} holds {found} records, {count} were written"),
                ));
            }
            if !seg.checked && (found < count || valid < len) {
                self.cut_damaged(found, valid)?;
            }
            let seg = self.segments.front_mut().expect("a segment");
            seg.checked = true;
            if seg.done == seg.count {
                let seg = self.segments.pop_front().expect("front");
                self.remove_segment_files(seg.id)?;
                self.stats.disk_bytes -= seg.bytes;
                self.disk_full = false;
                self.loaded.clear();
                continue;
            }
            self.loaded.remove_front(seg.done as usize);
            self.loaded_id = Some(id);
            return Ok(true);
        }
    }

    /// The oldest segment, counted from its `.count` file at open, holds only `found` whole
    /// records in its first `valid` bytes: cuts it there and counts what was lost, as open
    /// counts a torn tail.
    fn cut_damaged(&mut self, found: u64, valid: u64) -> io::Result<()> {
        let seg = self.segments.front_mut().expect("a segment");
        let path = segment_path(&self.cfg.dir, seg.id);
        tracing::warn!(path = %path.display(), found, count = seg.count, valid, len = seg.bytes,
            "spool: a damaged segment cut off where its first bad frame starts");
        self.stats.torn_tails += 1;
        let kept = found.max(seg.done);
        let lost = seg.count - kept;
        seg.count = kept;
        self.stats.records -= lost;
        self.stats.recovered -= lost;
        self.mem_first -= lost;
        self.stats.disk_bytes -= seg.bytes - valid;
        seg.bytes = valid;
        let _ = std::fs::remove_file(count_path(&self.cfg.dir, seg.id));
        OpenOptions::new().write(true).open(&path)?.set_len(valid)
    }

    /// Removes the records of a delivered batch (and any older ones). Returns how many
    /// records this commit delivered.
    pub fn commit(&mut self, position: Position) -> io::Result<u64> {
        // Records of the batch that drop-oldest removed while they were being sent were
        // delivered after all.
        let redelivered = position.end.min(self.head).saturating_sub(position.start);
        self.stats.dropped_oldest -= redelivered.min(self.stats.dropped_oldest);
        self.stats.committed += redelivered;
        let mut n = position
            .end
            .saturating_sub(self.head)
            .min(self.stats.records);
        let delivered = redelivered + n;
        let mut cursor = None;
        while n > 0 {
            if let Some(seg) = self.segments.front_mut() {
                let take = n.min(seg.count - seg.done);
                seg.done += take;
                if self.loaded_id == Some(seg.id) {
                    self.loaded.remove_front(take as usize);
                }
                self.head += take;
                self.stats.records -= take;
                self.stats.committed += take;
                n -= take;
                if seg.done == seg.count {
                    let seg = self.segments.pop_front().expect("front");
                    if self.writer.as_ref().is_some_and(|(id, _)| *id == seg.id) {
                        self.writer = None;
                    }
                    if self.loaded_id == Some(seg.id) {
                        self.loaded_id = None;
                        self.loaded.clear();
                    }
                    self.remove_segment_files(seg.id)?;
                    self.stats.disk_bytes -= seg.bytes;
                    self.disk_full = false;
                    cursor = None;
                } else {
                    cursor = Some((seg.id, seg.done));
                }
            } else {
                let take = n.min(self.memory.len() as u64);
                self.stats.memory_bytes -= self.memory.remove_front(take as usize);
                self.head += take;
                self.mem_first += take;
                self.stats.records -= take;
                self.stats.committed += take;
                n -= take;
            }
        }
        if let Some((id, done)) = cursor {
            self.write_cursor(id, done, false)?;
        }
        if self.segments.is_empty() {
            self.disk_full = false;
        }
        Ok(delivered)
    }

    fn write_cursor(&self, id: u64, done: u64, sync: bool) -> io::Result<()> {
        let tmp = self.cfg.dir.join("cursor.tmp");
        let mut f = File::create(&tmp)?;
        f.write_all(format!("{id} {done}\n").as_bytes())?;
        if sync {
            f.sync_all()?;
        }
        std::fs::rename(tmp, self.cfg.dir.join("cursor"))
    }

    /// Writes every record in memory to disk (past `max_bytes` if need be: a stop loses
    /// nothing), syncs the segment files and the cursor, so that [`Spool::open`] finds every
    /// queued record in order. Call it at a graceful stop.
    pub fn persist(&mut self) -> io::Result<()> {
        let mut memory = std::mem::take(&mut self.memory);
        let (mut moved, mut appended) = (0, Ok(()));
        for r in memory.iter_from(0) {
            appended = self.append(r);
            if appended.is_err() {
                break;
            }
            moved += 1;
        }
        self.stats.memory_bytes -= memory.remove_front(moved);
        self.mem_first += moved as u64;
        self.memory = memory;
        appended?;
        self.seal()?;
        for seg in &self.segments {
            File::open(segment_path(&self.cfg.dir, seg.id))?.sync_all()?;
        }
        match self.segments.front() {
            Some(seg) => self.write_cursor(seg.id, seg.done, true)?,
            None => {
                let _ = std::fs::remove_file(self.cfg.dir.join("cursor"));
            }
        }
        File::open(&self.cfg.dir)?.sync_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Dir(PathBuf);
    impl Dir {
        fn new() -> Dir {
            static N: AtomicUsize = AtomicUsize::new(0);
            let d = std::env::temp_dir().join(format!(
                "logd-spool-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::SeqCst)
            ));
            let _ = std::fs::remove_dir_all(&d);
            Dir(d)
        }
        fn cfg(&self, memory: u64, max: u64, full: FullPolicy) -> SpoolConfig {
            SpoolConfig {
                dir: self.0.clone(),
                memory_bytes: memory,
                max_bytes: max,
                full,
                segment_bytes: 64,
            }
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn rec(i: usize) -> Vec<u8> {
        format!("record {i:04}").into_bytes()
    }

    fn drain(s: &mut Spool) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            let b = s.peek(3, 1000).unwrap();
            if b.records.is_empty() {
                return out;
            }
            s.commit(b.position).unwrap();
            out.extend(b.records);
        }
    }

    fn balance(s: &SpoolStats) {
        assert_eq!(
            s.pushed + s.recovered,
            s.records + s.committed + s.dropped_block + s.dropped_oldest + s.dropped_newest,
            "{s:?}"
        );
    }

    #[test]
    fn order_is_kept_across_memory_and_disk() {
        let d = Dir::new();
        let mut s = Spool::open(d.cfg(40, 1 << 20, FullPolicy::Block)).unwrap();
        for i in 0..50 {
            assert_eq!(s.push(&rec(i)).unwrap(), Pushed::Queued);
        }
        assert!(s.stats().spooled > 0, "memory of 40 bytes spilled");
        assert!(s.stats().memory_bytes <= 40);
        // A peek gives the same records until they are committed.
        let first = s.peek(5, 1000).unwrap();
        assert_eq!(s.peek(5, 1000).unwrap(), first);
        assert_eq!(drain(&mut s), (0..50).map(rec).collect::<Vec<_>>());
        let st = s.stats();
        balance(&st);
        assert_eq!((st.committed, st.disk_bytes, st.records), (50, 0, 0));
        assert_eq!(
            std::fs::read_dir(&d.0)
                .unwrap()
                .filter(|e| e
                    .as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "seg"))
                .count(),
            0
        );
    }

    /// A windowed sender peeks past its records in flight and commits record by record;
    /// with no memory queue (as RELP forwarding runs it) every record is on disk, and a peek
    /// stops at the end of the oldest segment until that is committed.
    #[test]
    fn peek_after_skips_the_records_in_flight_and_commits_per_record() {
        for memory in [1 << 20, 0] {
            let d = Dir::new();
            let cfg = SpoolConfig {
                segment_bytes: 100,
                ..d.cfg(memory, 1 << 20, FullPolicy::Block)
            };
            let mut s = Spool::open(cfg).unwrap();
            for i in 0..20 {
                s.push(&rec(i)).unwrap();
            }
            s.flush().unwrap();
            let first = s.peek_after(0, 3, 1 << 20).unwrap();
            assert_eq!(first.records, (0..3).map(rec).collect::<Vec<_>>());
            let next = s.peek_after(3, 2, 1 << 20).unwrap();
            assert!(next.records.len() <= 2);
            assert_eq!(
                next.records,
                (3..3 + next.records.len()).map(rec).collect::<Vec<_>>()
            );
            // Records 0 and 1 acknowledged: commit them alone, through the second one.
            let span = first.position_of(0).through(first.position_of(1));
            assert_eq!(s.commit(span).unwrap(), 2);
            assert_eq!(s.len(), 18);
            assert_eq!(s.peek(1, 1 << 20).unwrap().records, vec![rec(2)]);
            assert_eq!(drain(&mut s), (2..20).map(rec).collect::<Vec<_>>());
            if memory == 0 {
                assert_eq!(s.stats().spooled, 20, "every record went to disk");
            }
        }
    }

    #[test]
    fn bounds_hold_and_block_refuses_and_reports_backlog() {
        let d = Dir::new();
        let mut s = Spool::open(d.cfg(33, 60, FullPolicy::Block)).unwrap();
        let mut refused = 0;
        for i in 0..20 {
            if s.push(&rec(i)).unwrap() == Pushed::Refused {
                refused += 1;
            }
            assert!(s.stats().memory_bytes <= 33 && s.stats().disk_bytes <= 60);
        }
        // 11-byte records: 3 fit in memory, 3 frames of 19 bytes on disk.
        assert_eq!((s.len(), refused), (6, 14));
        assert!(s.backlogged());
        assert_eq!(s.stats().dropped_block, 14);
        balance(&s.stats());
        assert_eq!(drain(&mut s), (0..6).map(rec).collect::<Vec<_>>());
        assert!(!s.backlogged());
    }

    #[test]
    fn block_reports_backlog_before_it_must_refuse() {
        let d = Dir::new();
        let cfg = SpoolConfig {
            segment_bytes: 100,
            ..d.cfg(33, 1000, FullPolicy::Block)
        };
        let mut s = Spool::open(cfg).unwrap();
        let mut i = 0;
        while !s.backlogged() {
            assert_eq!(s.push(&rec(i)).unwrap(), Pushed::Queued);
            i += 1;
        }
        // Past the high-water mark (less than a segment of room), nothing refused yet.
        assert!(s.stats().disk_bytes + 100 > 1000 && s.stats().disk_bytes <= 1000);
        assert_eq!(s.stats().dropped_block, 0);
        balance(&s.stats());
        assert_eq!(drain(&mut s), (0..i).map(rec).collect::<Vec<_>>());
        assert!(!s.backlogged());
    }

    #[test]
    fn drop_newest_keeps_the_oldest() {
        let d = Dir::new();
        let mut s = Spool::open(d.cfg(33, 60, FullPolicy::DropNewest)).unwrap();
        for i in 0..20 {
            s.push(&rec(i)).unwrap();
        }
        assert_eq!(s.stats().dropped_newest, 14);
        assert!(!s.backlogged(), "only block reports back-pressure");
        balance(&s.stats());
        assert_eq!(drain(&mut s), (0..6).map(rec).collect::<Vec<_>>());
    }

    #[test]
    fn drop_oldest_keeps_the_newest_and_counts_exactly() {
        let d = Dir::new();
        let mut s = Spool::open(d.cfg(33, 60, FullPolicy::DropOldest)).unwrap();
        for i in 0..20 {
            s.push(&rec(i)).unwrap();
            assert!(s.stats().memory_bytes <= 33 && s.stats().disk_bytes <= 60);
        }
        let st = s.stats();
        balance(&st);
        let kept = drain(&mut s);
        assert_eq!(kept.len() as u64 + st.dropped_oldest, 20);
        assert_eq!(kept, (20 - kept.len()..20).map(rec).collect::<Vec<_>>());
    }

    #[test]
    fn a_dropped_record_that_was_delivered_counts_as_delivered() {
        let d = Dir::new();
        let mut s = Spool::open(d.cfg(11, 19, FullPolicy::DropOldest)).unwrap();
        s.push(&rec(0)).unwrap();
        s.push(&rec(1)).unwrap();
        let inflight = s.peek(1, 1000).unwrap();
        assert_eq!(inflight.records, [rec(0)]);
        s.push(&rec(2)).unwrap(); // drops record 0 (on disk) while it is being sent
        assert_eq!(s.stats().dropped_oldest, 1);
        assert_eq!(s.commit(inflight.position).unwrap(), 1);
        assert_eq!(s.stats().dropped_oldest, 0);
        balance(&s.stats());
        assert_eq!(drain(&mut s), [rec(1), rec(2)]);
    }

    #[test]
    fn a_restart_replays_in_order_without_committed_records() {
        let d = Dir::new();
        let cfg = d.cfg(40, 1 << 20, FullPolicy::Block);
        let mut s = Spool::open(cfg.clone()).unwrap();
        for i in 0..30 {
            s.push(&rec(i)).unwrap();
        }
        let b = s.peek(4, 1000).unwrap();
        s.commit(b.position).unwrap();
        s.persist().unwrap();
        drop(s);
        let mut s = Spool::open(cfg.clone()).unwrap();
        assert_eq!(s.stats().recovered, 26);
        s.push(&rec(30)).unwrap();
        let b = s.peek(2, 1000).unwrap();
        s.commit(b.position).unwrap();
        // A commit inside a segment is kept in the cursor; without persist, kill -9 style.
        s.flush().unwrap();
        drop(s);
        let mut s = Spool::open(cfg).unwrap();
        assert_eq!(
            drain(&mut s),
            (6..30).map(rec).collect::<Vec<_>>(),
            "record 30 was only in memory"
        );
    }

    #[test]
    fn a_torn_tail_is_cut_off_and_counted() {
        let d = Dir::new();
        let cfg = SpoolConfig {
            segment_bytes: 1 << 20,
            ..d.cfg(0, 1 << 20, FullPolicy::Block)
        };
        let mut s = Spool::open(cfg.clone()).unwrap();
        for i in 0..5 {
            s.push(&rec(i)).unwrap();
        }
        s.persist().unwrap();
        drop(s);
        let seg = std::fs::read_dir(&d.0)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|x| x == "seg"))
            .unwrap();
        // Half a record at the end, as a kill in the middle of a write leaves it.
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(&[11, 0, 0, 0, 1, 2, 3, 4, b'r', b'e']).unwrap();
        drop(f);
        let mut s = Spool::open(cfg.clone()).unwrap();
        assert_eq!((s.stats().torn_tails, s.stats().recovered), (1, 5));
        s.push(&rec(5)).unwrap();
        s.persist().unwrap();
        drop(s);
        // A flipped bit in the last record of the first segment (record 4; record 5 went to a
        // new segment) is a torn tail too: that record is cut off, never read wrong.
        let mut bytes = std::fs::read(&seg).unwrap();
        let n = bytes.len();
        bytes[n - 1] ^= 1;
        std::fs::write(&seg, bytes).unwrap();
        let mut s = Spool::open(cfg).unwrap();
        assert_eq!((s.stats().torn_tails, s.stats().recovered), (1, 5));
        assert_eq!(drain(&mut s), [rec(0), rec(1), rec(2), rec(3), rec(5)]);
    }

    fn files(d: &Dir, ext: &str) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(&d.0)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == ext))
            .collect();
        v.sort();
        v
    }

    /// A segment closed for writing is counted at open from its `.count` file, without
    /// reading it; a bit flipped inside it since is found when it is read back, before any
    /// record of it is handed out: the segment ends at the damaged frame, a torn tail is
    /// counted, and `recovered` ends as a reading open would have left it.
    #[test]
    fn a_sealed_segment_is_counted_unread_and_checked_when_read_back() {
        let d = Dir::new();
        let cfg = SpoolConfig {
            segment_bytes: 1 << 20,
            ..d.cfg(0, 1 << 20, FullPolicy::Block)
        };
        let mut s = Spool::open(cfg.clone()).unwrap();
        for i in 0..10 {
            s.push(&rec(i)).unwrap();
        }
        s.persist().unwrap();
        drop(s);
        let [seg] = &files(&d, "seg")[..] else {
            panic!("one segment")
        };
        assert_eq!(files(&d, "count").len(), 1);
        // Record 6's last byte flipped: the length of the file does not change.
        let mut bytes = std::fs::read(seg).unwrap();
        let frame = FRAME_OVERHEAD as usize + rec(0).len();
        bytes[7 * frame - 1] ^= 1;
        std::fs::write(seg, &bytes).unwrap();
        let mut s = Spool::open(cfg.clone()).unwrap();
        assert_eq!(
            (s.stats().recovered, s.stats().torn_tails, s.len()),
            (10, 0, 10),
            "counted from the .count file, not read"
        );
        s.push(&rec(10)).unwrap();
        let first = s.peek(100, 1 << 20).unwrap();
        assert_eq!(first.records, (0..6).map(rec).collect::<Vec<_>>());
        assert_eq!((first.position.start(), first.position.end()), (0, 6));
        let st = s.stats();
        assert_eq!(
            (st.recovered, st.torn_tails, st.records),
            (6, 1, 7),
            "{st:?}"
        );
        balance(&st);
        assert_eq!(std::fs::metadata(seg).unwrap().len(), 6 * frame as u64);
        assert!(
            files(&d, "count").is_empty(),
            "the cut segment's count is gone"
        );
        s.commit(first.position).unwrap();
        // The record pushed after the damage came next, numbered right after the cut.
        let next = s.peek(100, 1 << 20).unwrap();
        assert_eq!((next.records, next.position.start()), (vec![rec(10)], 6));
        s.commit(next.position).unwrap();
        balance(&s.stats());
        assert!(s.is_empty());
    }

    /// A damaged segment whose committed records (the cursor's) reach past the damage is
    /// removed whole; a `.count` file cut short is not trusted (open reads the segment), one
    /// naming more records than its segment holds is corrected when the segment is read
    /// back, and one without a segment is removed.
    #[test]
    fn count_files_are_trusted_only_when_they_fit() {
        let d = Dir::new();
        let cfg = SpoolConfig {
            segment_bytes: 1 << 20,
            ..d.cfg(0, 1 << 20, FullPolicy::Block)
        };
        let mut s = Spool::open(cfg.clone()).unwrap();
        for i in 0..10 {
            s.push(&rec(i)).unwrap();
        }
        let b = s.peek(4, 1 << 20).unwrap();
        s.commit(b.position).unwrap();
        s.persist().unwrap();
        drop(s);
        let [seg] = &files(&d, "seg")[..] else {
            panic!("one segment")
        };
        let frame = FRAME_OVERHEAD as usize + rec(0).len();
        // Record 2 (committed) damaged: nothing after it is whole, so nothing is left.
        let mut bytes = std::fs::read(seg).unwrap();
        bytes[3 * frame - 1] ^= 1;
        std::fs::write(seg, &bytes).unwrap();
        let mut s = Spool::open(cfg.clone()).unwrap();
        assert_eq!(s.stats().recovered, 6);
        assert!(s.peek(100, 1 << 20).unwrap().records.is_empty());
        let st = s.stats();
        assert_eq!(
            (st.recovered, st.torn_tails, st.records, st.disk_bytes),
            (0, 1, 0, 0)
        );
        balance(&st);
        assert!(files(&d, "seg").is_empty() && files(&d, "count").is_empty());
        for i in 0..5 {
            s.push(&rec(i)).unwrap();
        }
        s.persist().unwrap();
        drop(s);
        let [_] = &files(&d, "seg")[..] else {
            panic!("one segment")
        };
        let [count] = &files(&d, "count")[..] else {
            panic!("one count file")
        };
        let text = std::fs::read_to_string(count).unwrap();
        assert_eq!(text, format!("5 {}\n", 5 * frame));
        // Cut short (no newline): not trusted, the segment is read, the file removed.
        std::fs::write(count, &text[..text.len() - 2]).unwrap();
        let s = Spool::open(cfg.clone()).unwrap();
        assert_eq!((s.stats().recovered, s.stats().torn_tails), (5, 0));
        assert!(!count.exists());
        drop(s);
        // The right length and a count the file does not hold: trusted at open, corrected
        // when read back (the 4 missing records are a torn tail).
        std::fs::write(count, format!("9 {}\n", 5 * frame)).unwrap();
        let mut s = Spool::open(cfg.clone()).unwrap();
        assert_eq!((s.stats().recovered, s.stats().torn_tails), (9, 0));
        assert_eq!(drain(&mut s), (0..5).map(rec).collect::<Vec<_>>());
        assert_eq!((s.stats().recovered, s.stats().torn_tails), (5, 1));
        balance(&s.stats());
        drop(s);
        // A count file without a segment (a crash between the two removals) is removed.
        std::fs::write(d.0.join(format!("{:020}.count", 77)), "1 9\n").unwrap();
        let s = Spool::open(cfg).unwrap();
        assert!(s.is_empty());
        assert!(files(&d, "count").is_empty());
    }

    /// The memory queue keeps its records back to back in chunks and reuses them as the
    /// oldest go: megabytes pushed and committed in interleaved batches come out in order,
    /// and the chunks held stay within what the queued records need.
    #[test]
    fn the_memory_queue_reuses_its_chunks_and_keeps_order() {
        let d = Dir::new();
        let mut s = Spool::open(d.cfg(8 << 20, 1 << 30, FullPolicy::Block)).unwrap();
        let row = |i: usize| {
            let mut r = format!("{i}:").into_bytes();
            r.resize(100 + i % 200, b'x');
            r
        };
        let (mut pushed, mut next) = (0, 0);
        let mut first_chunks = Vec::new();
        // About 4 MB queued throughout, 200 kB in and out per round.
        for round in 0..60 {
            for _ in 0..if round == 0 { 20_000 } else { 1000 } {
                s.push(&row(pushed)).unwrap();
                pushed += 1;
            }
            let mut body = Vec::new();
            let p = s
                .peek_each(0, 1000, usize::MAX, |r| {
                    body.push(r.to_vec());
                    true
                })
                .unwrap();
            assert_eq!(body, (next..next + body.len()).map(row).collect::<Vec<_>>());
            s.commit(p).unwrap();
            next += body.len();
            first_chunks.push(s.memory.first_chunk);
            let held: usize = s.memory.chunks.iter().map(Vec::capacity).sum();
            assert!(
                held <= s.stats().memory_bytes as usize + 2 * CHUNK,
                "{held}"
            );
            assert!(s.memory.spare.len() <= SPARE_CHUNKS);
        }
        assert!(first_chunks.windows(2).filter(|w| w[0] < w[1]).count() >= 2);
        assert_eq!(s.stats().spooled, 0, "it all fit in memory");
        assert_eq!(drain(&mut s), (next..pushed).map(row).collect::<Vec<_>>());
        assert!(s.memory.chunks.is_empty());
        balance(&s.stats());
    }

    #[derive(Debug, Clone)]
    enum Op {
        Push(usize),
        Peek(usize),
        Commit,
        Reopen,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0usize..40).prop_map(Op::Push),
            2 => (1usize..6).prop_map(Op::Peek),
            2 => Just(Op::Commit),
            1 => Just(Op::Reopen),
        ]
    }

    proptest! {
        /// Any sequence of pushes, peeks, commits and graceful restarts behaves like a
        /// `VecDeque`: a peek gives the oldest records, a commit removes exactly them.
        #[test]
        fn behaves_like_a_vecdeque(ops in proptest::collection::vec(op(), 1..80), memory in 0u64..80) {
            let d = Dir::new();
            let cfg = SpoolConfig { segment_bytes: 50, ..d.cfg(memory, 1 << 20, FullPolicy::Block) };
            let mut s = Spool::open(cfg.clone()).unwrap();
            let mut model: VecDeque<Vec<u8>> = VecDeque::new();
            let mut peeked: Option<Batch> = None;
            let mut n = 0;
            for op in ops {
                match op {
                    Op::Push(len) => {
                        let r: Vec<u8> = format!("{n}:").bytes().chain(std::iter::repeat_n(b'x', len)).collect();
                        n += 1;
                        prop_assert_eq!(s.push(&r).unwrap(), Pushed::Queued);
                        model.push_back(r);
                    }
                    Op::Peek(k) => {
                        let b = s.peek(k, usize::MAX).unwrap();
                        let want: Vec<_> = model.iter().take(b.records.len()).cloned().collect();
                        prop_assert_eq!(&b.records, &want);
                        prop_assert_eq!(b.records.is_empty(), model.is_empty());
                        peeked = Some(b);
                    }
                    Op::Commit => {
                        if let Some(b) = peeked.take() {
                            s.commit(b.position).unwrap();
                            model.drain(..b.records.len());
                        }
                    }
                    Op::Reopen => {
                        s.persist().unwrap();
                        s = Spool::open(cfg.clone()).unwrap();
                        peeked = None;
                    }
                }
                prop_assert_eq!(s.len(), model.len() as u64);
                prop_assert!(s.stats().memory_bytes <= memory);
            }
            let rest = drain(&mut s);
            prop_assert_eq!(rest, model.into_iter().collect::<Vec<_>>());
        }
    }
}
