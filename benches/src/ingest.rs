//! Log-record ingest load: N TCP connections each sending R records, in ACE's logging wire
//! format or as RFC 5424 syslog with RFC 6587 octet counting, then counting the records that
//! reached the server's files.
//!
//! The `ingest` binary wraps [`run`]; `cargo xtask bench-logging` starts each logging server
//! (logd, `ace_netsvcs`, rsyslog, syslog-ng) and points `ingest` at it. One client for every
//! server keeps the comparison about the servers.
//!
//! The clock starts once every connection is open and stops when the files hold every record
//! sent: what is measured is end-to-end ingest, "records per second counted in the stored
//! files". Each record carries a marker, and only lines holding it are counted, so a server's
//! own chatter (ACE logs its accepts to the same file) is never mistaken for a record.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, BufRead, Read, Seek, SeekFrom, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use logging_service::ace::{self, AceRecord, ByteOrder, SecondsLayout};
use serde_json::json;

/// Usage of the `ingest` binary.
pub const USAGE: &str = "\
usage: ingest --addr HOST:PORT --format ace|syslog --count-dir DIR [--connections N]
              [--records R] [--message-bytes B] [--marker WORD] [--connect-gap-ms MS]
              [--timeout SECS] [--hold]

Opens N connections (one at a time, MS apart), then sends R records on each, as fast as the
server takes them, and waits until the files under DIR hold N*R lines with the marker (at
most SECS). Prints one JSON line: connections, records sent, records counted, seconds until
everything was sent, seconds until everything was stored, records per second.

  --format ace      ACE's logging protocol (little-endian CDR, 8-byte seconds)
  --format syslog   RFC 5424 with RFC 6587 octet counting
  --connections N   default 1
  --records R       records per connection, default 10000
  --message-bytes B bytes of message text per record, default 64
  --marker WORD     the word each record carries and the count looks for, default blmark
  --connect-gap-ms  pause between connects (ace_netsvcs listens with a backlog of 5), default 2
  --timeout SECS    bound on the wait for the count, default 120
  --hold            after the count, print HOLDING and keep every connection open
                    until stdin reaches end of file (for memory measurements)
";

/// The wire format of the records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// ACE's logging protocol: an 8-byte CDR header and a CDR `ACE_Log_Record`.
    Ace,
    /// RFC 5424 syslog, framed by RFC 6587 octet counting.
    Syslog,
}

impl Format {
    /// Parses `ace` or `syslog`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ace" => Some(Self::Ace),
            "syslog" => Some(Self::Syslog),
            _ => None,
        }
    }
}

/// What `ingest` was asked to do.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestArgs {
    /// The server.
    pub addr: SocketAddr,
    /// The wire format.
    pub format: Format,
    /// The directory whose files are counted.
    pub count_dir: PathBuf,
    /// Number of connections.
    pub connections: usize,
    /// Records per connection.
    pub records: usize,
    /// Bytes of message text per record.
    pub message_bytes: usize,
    /// The word every record carries.
    pub marker: String,
    /// Pause between connects.
    pub connect_gap: Duration,
    /// Bound on the wait for the count.
    pub timeout: Duration,
    /// Keep the connections open after the count until stdin closes.
    pub hold: bool,
}

/// The result of parsing a command line.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    /// `-h` or `--help`.
    Help,
    /// Run with these arguments.
    Run(IngestArgs),
}

impl IngestArgs {
    /// Parses the arguments after the program name.
    pub fn parse(args: &[String]) -> Result<Parsed, String> {
        let mut addr = None;
        let mut format = None;
        let mut count_dir = None;
        let mut out = IngestArgs {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            format: Format::Ace,
            count_dir: PathBuf::new(),
            connections: 1,
            records: 10_000,
            message_bytes: 64,
            marker: "blmark".to_owned(),
            connect_gap: Duration::from_millis(2),
            timeout: Duration::from_secs(120),
            hold: false,
        };
        let mut iter = args.iter();
        while let Some(flag) = iter.next() {
            match flag.as_str() {
                "-h" | "--help" => return Ok(Parsed::Help),
                "--hold" => {
                    out.hold = true;
                    continue;
                }
                _ => {}
            }
            let value = iter
                .next()
                .ok_or_else(|| format!("`{flag}` needs a value"))?;
            let number = || {
                value
                    .parse::<u64>()
                    .map_err(|_| format!("`{flag}` takes a number, not `{value}`"))
            };
            match flag.as_str() {
                "--addr" => {
                    addr = Some(
                        value
                            .parse()
                            .map_err(|_| format!("`--addr` takes HOST:PORT, not `{value}`"))?,
                    );
                }
                "--format" => {
                    format =
                        Some(Format::parse(value).ok_or_else(|| {
                            format!("`--format` takes ace or syslog, not `{value}`")
                        })?);
                }
                "--count-dir" => count_dir = Some(PathBuf::from(value)),
                "--connections" => out.connections = number()? as usize,
                "--records" => out.records = number()? as usize,
                "--message-bytes" => out.message_bytes = number()? as usize,
                "--connect-gap-ms" => out.connect_gap = Duration::from_millis(number()?),
                "--timeout" => out.timeout = Duration::from_secs(number()?),
                "--marker" => {
                    if value.is_empty() || value.contains(char::is_whitespace) {
                        return Err("`--marker` takes one non-empty word".to_owned());
                    }
                    out.marker = value.clone();
                }
                _ => return Err(format!("unknown option `{flag}`")),
            }
        }
        out.addr = addr.ok_or("`--addr` is required")?;
        out.format = format.ok_or("`--format` is required")?;
        out.count_dir = count_dir.ok_or("`--count-dir` is required")?;
        if out.connections == 0 || out.records == 0 {
            return Err("`--connections` and `--records` must be at least 1".to_owned());
        }
        Ok(Parsed::Run(out))
    }
}

/// The message text of record `seq` on connection `conn`: the marker first, then padding to
/// `bytes` (never shorter than the marker and the two numbers).
pub fn message(marker: &str, conn: usize, seq: usize, bytes: usize) -> String {
    let mut text = format!("{marker} c{conn} r{seq} ");
    while text.len() < bytes {
        text.push((b'a' + (text.len() % 26) as u8) as char);
    }
    text
}

/// One record on the wire.
pub fn frame(format: Format, marker: &str, conn: usize, seq: usize, bytes: usize) -> Vec<u8> {
    let text = message(marker, conn, seq, bytes);
    match format {
        Format::Ace => {
            // ACE's own clients end their messages with a newline, which its server then
            // prints as is: one record, one line.
            let record = AceRecord {
                priority: 8, // LM_INFO
                pid: 4242,
                seconds: 1_764_000_000,
                micros: 0,
                message: format!("{text}\n"),
            };
            ace::encode(&record, ByteOrder::Little, SecondsLayout::Wide)
        }
        Format::Syslog => {
            let body =
                format!("<14>1 2026-11-26T06:00:00.000Z bench-host ingest {conn} - - {text}");
            let mut out = format!("{} ", body.len()).into_bytes();
            out.extend(body.as_bytes());
            out
        }
    }
}

/// Counts, across appends, the complete lines of one file that hold a marker.
///
/// Files are append-only, so each poll reads only what was added; a line cut by the end of
/// what has been written so far is kept until its newline arrives.
#[derive(Debug, Clone)]
pub struct LineCounter {
    marker: Vec<u8>,
    carry: Vec<u8>,
    count: usize,
}

impl LineCounter {
    /// A counter for lines holding `marker`.
    pub fn new(marker: &str) -> Self {
        Self {
            marker: marker.as_bytes().to_vec(),
            carry: Vec::new(),
            count: 0,
        }
    }

    /// Feeds the next bytes of the file; returns the total of marked lines so far.
    pub fn feed(&mut self, bytes: &[u8]) -> usize {
        let mut start = 0;
        for nl in memchr_all(bytes) {
            let line = &bytes[start..nl];
            let marked = if self.carry.is_empty() {
                contains(line, &self.marker)
            } else {
                self.carry.extend_from_slice(line);
                let marked = contains(&self.carry, &self.marker);
                self.carry.clear();
                marked
            };
            self.count += usize::from(marked);
            start = nl + 1;
        }
        self.carry.extend_from_slice(&bytes[start..]);
        self.count
    }

    /// The marked lines counted so far.
    pub fn count(&self) -> usize {
        self.count
    }
}

/// Positions of every newline.
fn memchr_all(bytes: &[u8]) -> impl Iterator<Item = usize> + '_ {
    bytes
        .iter()
        .enumerate()
        .filter(|&(_, &b)| b == b'\n')
        .map(|(i, _)| i)
}

/// Whether `needle` occurs in `hay`.
fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// Counts marked lines in every regular file under a directory (not recursive), reading
/// only what each file gained since the last poll.
#[derive(Debug)]
pub struct DirTally {
    dir: PathBuf,
    marker: String,
    files: BTreeMap<PathBuf, (u64, LineCounter)>,
}

impl DirTally {
    /// A tally of `dir`, which need not exist yet.
    pub fn new(dir: &Path, marker: &str) -> Self {
        Self {
            dir: dir.to_path_buf(),
            marker: marker.to_owned(),
            files: BTreeMap::new(),
        }
    }

    /// Reads what was appended since the last call; returns the total of marked lines.
    pub fn poll(&mut self) -> io::Result<usize> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        let mut buf = Vec::new();
        for entry in entries {
            let entry = entry?;
            if !entry.file_type()?.is_file() {
                continue;
            }
            let path = entry.path();
            let (offset, counter) = self
                .files
                .entry(path.clone())
                .or_insert_with(|| (0, LineCounter::new(&self.marker)));
            let mut file = fs::File::open(&path)?;
            file.seek(SeekFrom::Start(*offset))?;
            buf.clear();
            file.read_to_end(&mut buf)?;
            *offset += buf.len() as u64;
            counter.feed(&buf);
        }
        Ok(self.files.values().map(|(_, c)| c.count()).sum())
    }
}

/// What one run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestReport {
    /// Connections used.
    pub connections: usize,
    /// Records sent, over all connections.
    pub sent: usize,
    /// Marked lines found in the files when the wait ended.
    pub stored: usize,
    /// Seconds from the start of sending until the last byte was written to the sockets.
    pub send_secs: f64,
    /// Seconds from the start of sending until the files held every record (or the bound).
    pub store_secs: f64,
}

impl IngestReport {
    /// Records stored per second of the end-to-end time.
    pub fn records_per_sec(&self) -> f64 {
        if self.store_secs > 0.0 {
            self.stored as f64 / self.store_secs
        } else {
            0.0
        }
    }

    /// The report as one JSON line.
    pub fn to_json(&self) -> String {
        json!({
            "connections": self.connections,
            "sent": self.sent,
            "stored": self.stored,
            "send_secs": self.send_secs,
            "store_secs": self.store_secs,
            "records_per_sec": self.records_per_sec(),
        })
        .to_string()
    }
}

/// How often the files are polled while waiting.
const POLL: Duration = Duration::from_millis(2);

/// Up to this many connections, each sends from a thread of its own.
const MAX_SENDER_THREADS: usize = 64;

/// Sends each payload on its stream from a thread of its own, all released together;
/// returns when the sending started and the streams, still open.
fn send_in_parallel(
    streams: Vec<TcpStream>,
    payloads: Vec<Vec<u8>>,
) -> io::Result<(Instant, Vec<TcpStream>)> {
    let go = Arc::new(Barrier::new(streams.len() + 1));
    let senders: Vec<_> = streams
        .into_iter()
        .zip(payloads)
        .map(|(mut stream, payload)| {
            let go = Arc::clone(&go);
            thread::spawn(move || -> io::Result<TcpStream> {
                go.wait();
                stream.write_all(&payload)?;
                Ok(stream)
            })
        })
        .collect();
    go.wait();
    let start = Instant::now();
    let mut held = Vec::with_capacity(senders.len());
    for sender in senders {
        let stream = sender
            .join()
            .map_err(|_| io::Error::other("a sender thread panicked"))??;
        held.push(stream);
    }
    Ok((start, held))
}

/// Connects, sends, and waits for the count; see [`USAGE`].
pub fn run(args: &IngestArgs) -> io::Result<IngestReport> {
    let mut tally = DirTally::new(&args.count_dir, &args.marker);
    let before = tally.poll()?;

    // Every record is encoded before the clock starts.
    let payloads: Vec<Vec<u8>> = (0..args.connections)
        .map(|conn| {
            (0..args.records)
                .flat_map(|seq| frame(args.format, &args.marker, conn, seq, args.message_bytes))
                .collect()
        })
        .collect();

    let mut streams = Vec::with_capacity(args.connections);
    for i in 0..args.connections {
        if i > 0 && !args.connect_gap.is_zero() {
            thread::sleep(args.connect_gap);
        }
        let stream = TcpStream::connect(args.addr)?;
        stream.set_nodelay(true)?;
        streams.push(stream);
    }

    let (start, mut held) = if args.connections <= MAX_SENDER_THREADS {
        send_in_parallel(streams, payloads)?
    } else {
        // Thousands of connections (the idle-memory run) send one after the other.
        let start = Instant::now();
        for (stream, payload) in streams.iter_mut().zip(&payloads) {
            stream.write_all(payload)?;
        }
        (start, streams)
    };
    let send_secs = start.elapsed().as_secs_f64();
    if !args.hold {
        // Closing is part of a client's life; servers must still store what was sent.
        drop(held.drain(..));
    }

    let sent = args.connections * args.records;
    let deadline = start + args.timeout;
    let stored = loop {
        let stored = tally.poll()? - before;
        if stored >= sent || Instant::now() >= deadline {
            break stored;
        }
        thread::sleep(POLL);
    };
    let store_secs = start.elapsed().as_secs_f64();

    if args.hold {
        let mut stdout = io::stdout().lock();
        writeln!(stdout, "HOLDING {}", held.len())?;
        stdout.flush()?;
        let mut line = String::new();
        let stdin = io::stdin();
        while stdin.lock().read_line(&mut line)? > 0 {
            line.clear();
        }
    }
    Ok(IngestReport {
        connections: args.connections,
        sent,
        stored,
        send_secs,
        store_secs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn parse_reads_every_option() {
        let parsed = IngestArgs::parse(&strings(&[
            "--addr",
            "127.0.0.1:9",
            "--format",
            "syslog",
            "--count-dir",
            "/tmp/x",
            "--connections",
            "16",
            "--records",
            "5",
            "--message-bytes",
            "10",
            "--marker",
            "mk",
            "--connect-gap-ms",
            "7",
            "--timeout",
            "3",
            "--hold",
        ]))
        .unwrap();
        let Parsed::Run(a) = parsed else {
            panic!("expected a run")
        };
        assert_eq!(a.addr, "127.0.0.1:9".parse().unwrap());
        assert_eq!(a.format, Format::Syslog);
        assert_eq!(a.count_dir, PathBuf::from("/tmp/x"));
        assert_eq!((a.connections, a.records, a.message_bytes), (16, 5, 10));
        assert_eq!(a.marker, "mk");
        assert_eq!(a.connect_gap, Duration::from_millis(7));
        assert_eq!(a.timeout, Duration::from_secs(3));
        assert!(a.hold);
    }

    #[test]
    fn parse_refuses_missing_and_bad_values() {
        assert!(IngestArgs::parse(&strings(&["--format", "ace", "--count-dir", "d"])).is_err());
        let base = ["--addr", "127.0.0.1:9", "--count-dir", "d", "--format"];
        let mut bad = strings(&base);
        bad.push("gelf".into());
        assert!(IngestArgs::parse(&bad).unwrap_err().contains("gelf"));
        let mut zero = strings(&base);
        zero.extend(strings(&["ace", "--records", "0"]));
        assert!(IngestArgs::parse(&zero).is_err());
        let mut spaced = strings(&base);
        spaced.extend(strings(&["ace", "--marker", "a b"]));
        assert!(IngestArgs::parse(&spaced).is_err());
        assert_eq!(IngestArgs::parse(&strings(&["-h"])), Ok(Parsed::Help));
    }

    #[test]
    fn messages_carry_the_marker_and_reach_the_size() {
        let m = message("mk", 3, 17, 40);
        assert!(m.starts_with("mk c3 r17 "));
        assert_eq!(m.len(), 40);
        assert_eq!(message("mk", 0, 0, 1), "mk c0 r0 ");
    }

    #[test]
    fn ace_frames_decode_back_to_the_record() {
        let bytes = frame(Format::Ace, "mk", 2, 9, 32);
        let len = u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize;
        assert_eq!(bytes[0], 1);
        assert_eq!(bytes.len(), 8 + len);
        let record = ace::decode_payload(&bytes[8..], ByteOrder::Little).unwrap();
        assert_eq!(record.message, format!("{}\n", message("mk", 2, 9, 32)));
        assert_eq!(record.pid, 4242);
    }

    #[test]
    fn syslog_frames_are_octet_counted() {
        let bytes = frame(Format::Syslog, "mk", 1, 2, 20);
        let text = String::from_utf8(bytes).unwrap();
        let (len, body) = text.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), body.len());
        assert!(body.starts_with("<14>1 "));
        assert!(body.ends_with(&message("mk", 1, 2, 20)));
    }

    #[test]
    fn counter_counts_marked_lines_across_cut_points() {
        let text = b"noise\nmk one\nmk two\nother\nmk three\npartial mk";
        for cut in 0..=text.len() {
            let mut counter = LineCounter::new("mk");
            counter.feed(&text[..cut]);
            assert_eq!(counter.feed(&text[cut..]), 3, "cut at {cut}");
        }
        // The unfinished last line counts once its newline arrives.
        let mut counter = LineCounter::new("mk");
        counter.feed(text);
        assert_eq!(counter.feed(b" tail\n"), 4);
    }

    #[test]
    fn counter_finds_a_marker_split_between_feeds() {
        let mut counter = LineCounter::new("marker");
        assert_eq!(counter.feed(b"x mar"), 0);
        assert_eq!(counter.feed(b"ker y\n"), 1);
    }

    #[test]
    fn tally_reads_only_appends_and_sums_files() {
        let dir = std::env::temp_dir().join(format!("ingest-tally-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let mut tally = DirTally::new(&dir, "mk");
        assert_eq!(tally.poll().unwrap(), 0);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("a.log"), "mk 1\nmk 2\nnoise\n").unwrap();
        assert_eq!(tally.poll().unwrap(), 2);
        let mut a = fs::OpenOptions::new()
            .append(true)
            .open(dir.join("a.log"))
            .unwrap();
        a.write_all(b"mk 3\nmk").unwrap();
        fs::write(dir.join("b.log"), "mk b\n").unwrap();
        assert_eq!(tally.poll().unwrap(), 4);
        a.write_all(b" 4\n").unwrap();
        assert_eq!(tally.poll().unwrap(), 5);
        fs::remove_dir_all(&dir).unwrap();
    }

    /// A toy server: decodes octet-counted frames and appends one line per record.
    fn toy_syslog_server(listener: std::net::TcpListener, dir: PathBuf, conns: usize) {
        let file = Arc::new(std::sync::Mutex::new(
            fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join("toy.log"))
                .unwrap(),
        ));
        for _ in 0..conns {
            let (stream, _) = listener.accept().unwrap();
            let file = Arc::clone(&file);
            thread::spawn(move || {
                let mut reader = io::BufReader::new(stream);
                loop {
                    let mut len = Vec::new();
                    if reader.read_until(b' ', &mut len).unwrap() == 0 {
                        return;
                    }
                    let n: usize = std::str::from_utf8(&len).unwrap().trim().parse().unwrap();
                    let mut body = vec![0; n];
                    reader.read_exact(&mut body).unwrap();
                    body.push(b'\n');
                    file.lock().unwrap().write_all(&body).unwrap();
                }
            });
        }
    }

    #[test]
    fn run_counts_every_record_a_server_stores() {
        let dir = std::env::temp_dir().join(format!("ingest-run-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server_dir = dir.clone();
        thread::spawn(move || toy_syslog_server(listener, server_dir, 3));
        let report = run(&IngestArgs {
            addr,
            format: Format::Syslog,
            count_dir: dir.clone(),
            connections: 3,
            records: 200,
            message_bytes: 40,
            marker: "toymark".to_owned(),
            connect_gap: Duration::ZERO,
            timeout: Duration::from_secs(60),
            hold: false,
        })
        .unwrap();
        assert_eq!(report.sent, 600);
        assert_eq!(report.stored, 600);
        let text = fs::read_to_string(dir.join("toy.log")).unwrap();
        assert_eq!(text.lines().count(), 600);
        assert!(text.lines().all(|l| l.contains("toymark")));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn report_rate_is_stored_over_time() {
        let r = IngestReport {
            connections: 2,
            sent: 10,
            stored: 10,
            send_secs: 0.5,
            store_secs: 2.0,
        };
        assert_eq!(r.records_per_sec(), 5.0);
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["stored"], 10);
        assert_eq!(v["records_per_sec"], 5.0);
    }
}
