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

use clap::{Parser, ValueEnum};
use lab_report::IngestReport;
use lab_report::args::at_least_one;
use logging_service::client;

/// `ingest`: log-record load on N connections, counted in the server's files.
///
/// Opens N connections (one at a time, MS apart), then sends R records on each, as fast as the
/// server takes them, and waits until the files under DIR hold N*R lines with the marker (at
/// most SECS). Prints one JSON line: connections, records sent, records counted, seconds until
/// everything was sent, seconds until everything was stored, records per second.
#[derive(Debug, Clone, PartialEq, Parser)]
#[command(name = "ingest")]
pub struct IngestArgs {
    /// The server.
    #[arg(long, value_name = "HOST:PORT")]
    pub addr: SocketAddr,
    /// The wire format.
    #[arg(long, value_enum)]
    pub format: Format,
    /// The directory whose files are counted.
    #[arg(long, value_name = "DIR")]
    pub count_dir: PathBuf,
    /// Number of connections.
    #[arg(long, value_name = "N", default_value = "1", value_parser = at_least_one)]
    pub connections: usize,
    /// Records per connection.
    #[arg(long, value_name = "R", default_value = "10000", value_parser = at_least_one)]
    pub records: usize,
    /// Bytes of message text per record.
    #[arg(long, value_name = "B", default_value = "64")]
    pub message_bytes: usize,
    /// The word every record carries and the count looks for.
    #[arg(long, value_name = "WORD", default_value = "blmark", value_parser = one_word)]
    pub marker: String,
    /// Pause between connects (ace_netsvcs listens with a backlog of 5).
    #[arg(long = "connect-gap-ms", value_name = "MS", default_value = "2", value_parser = millis)]
    pub connect_gap: Duration,
    /// Bound on the wait for the count.
    #[arg(long, value_name = "SECS", default_value = "120", value_parser = whole_seconds)]
    pub timeout: Duration,
    /// After the count, print HOLDING and keep every connection open until stdin reaches end
    /// of file (for memory measurements).
    #[arg(long)]
    pub hold: bool,
}

/// The wire format of the records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// ACE's logging protocol: an 8-byte CDR header and a CDR `ACE_Log_Record`
    /// (little-endian, 8-byte seconds).
    Ace,
    /// RFC 5424 syslog, framed by RFC 6587 octet counting.
    Syslog,
}

fn one_word(text: &str) -> Result<String, String> {
    if text.is_empty() || text.contains(char::is_whitespace) {
        return Err("takes one non-empty word".to_owned());
    }
    Ok(text.to_owned())
}

fn millis(text: &str) -> Result<Duration, String> {
    text.parse()
        .map(Duration::from_millis)
        .map_err(|_| format!("expected whole milliseconds, got `{text}`"))
}

fn whole_seconds(text: &str) -> Result<Duration, String> {
    text.parse()
        .map(Duration::from_secs)
        .map_err(|_| format!("expected whole seconds, got `{text}`"))
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

/// One record on the wire, encoded by `logc`'s library ([`client::encode`]), so the lab
/// loads every server with what an operator's client sends.
pub fn frame(format: Format, marker: &str, conn: usize, seq: usize, bytes: usize) -> Vec<u8> {
    let mut m = client::Message {
        host: "bench-host".into(),
        app: "ingest".into(),
        pid: Some(4242),
        facility: 1, // user
        severity: 6, // info (ACE's LM_INFO)
        msgid: None,
        structured_data: None,
        text: message(marker, conn, seq, bytes),
        time: (1_764_000_000, 0),
    };
    let wire = match format {
        Format::Ace => {
            // ACE's own clients end their messages with a newline, which its server then
            // prints as is: one record, one line.
            m.text.push('\n');
            client::Format::Ace
        }
        Format::Syslog => client::Format::Rfc5424,
    };
    client::encode(&m, wire, client::Transport::Tcp).expect("the bench's fields are valid")
}

/// Counts, across appends, the complete lines of one file that hold a marker.
///
/// Files are append-only, so each poll reads only what was added; a line cut by the end of
/// what has been written so far is kept until its newline arrives.
///
/// The count runs after the last record is sent and is part of the measured time, so it
/// must cost the client little next to the server's work: newlines and the marker are
/// found with `memchr`'s vectorised searches (a window-by-window compare made the count's
/// cost grow with how far into the line the marker sits, which differs between servers'
/// line formats).
#[derive(Debug, Clone)]
pub struct LineCounter {
    marker: memchr::memmem::Finder<'static>,
    carry: Vec<u8>,
    count: usize,
}

impl LineCounter {
    /// A counter for lines holding `marker`.
    pub fn new(marker: &str) -> Self {
        Self {
            marker: memchr::memmem::Finder::new(marker.as_bytes()).into_owned(),
            carry: Vec::new(),
            count: 0,
        }
    }

    /// Feeds the next bytes of the file; returns the total of marked lines so far.
    pub fn feed(&mut self, bytes: &[u8]) -> usize {
        let mut start = 0;
        for nl in memchr::memchr_iter(b'\n', bytes) {
            let line = &bytes[start..nl];
            let marked = if self.carry.is_empty() {
                self.marker.find(line).is_some()
            } else {
                self.carry.extend_from_slice(line);
                let marked = self.marker.find(&self.carry).is_some();
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

/// Connects, sends, and waits for the count; see [`IngestArgs`].
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
    Ok(IngestReport::new(
        args.connections,
        sent as u64,
        stored as u64,
        send_secs,
        store_secs,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<IngestArgs, String> {
        IngestArgs::try_parse_from(std::iter::once("ingest").chain(args.iter().copied()))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn parse_reads_every_option() {
        let a = parse(&[
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
        ])
        .unwrap();
        assert_eq!(a.addr, "127.0.0.1:9".parse().unwrap());
        assert_eq!(a.format, Format::Syslog);
        assert_eq!(a.count_dir, PathBuf::from("/tmp/x"));
        assert_eq!((a.connections, a.records, a.message_bytes), (16, 5, 10));
        assert_eq!(a.marker, "mk");
        assert_eq!(a.connect_gap, Duration::from_millis(7));
        assert_eq!(a.timeout, Duration::from_secs(3));
        assert!(a.hold);
        let d = parse(&[
            "--addr",
            "127.0.0.1:9",
            "--format",
            "ace",
            "--count-dir",
            "d",
        ])
        .unwrap();
        assert_eq!((d.connections, d.records, d.message_bytes), (1, 10_000, 64));
        assert_eq!(
            (d.marker.as_str(), d.connect_gap),
            ("blmark", Duration::from_millis(2))
        );
        assert_eq!((d.timeout, d.hold), (Duration::from_secs(120), false));
    }

    #[test]
    fn parse_refuses_missing_and_bad_values() {
        assert!(
            parse(&["--format", "ace", "--count-dir", "d"])
                .unwrap_err()
                .contains("--addr")
        );
        let with = |extra: &[&str]| {
            let mut args = vec!["--addr", "127.0.0.1:9", "--count-dir", "d"];
            args.extend(extra);
            parse(&args)
        };
        assert!(with(&["--format", "gelf"]).unwrap_err().contains("gelf"));
        assert!(
            with(&["--format", "ace", "--records", "0"])
                .unwrap_err()
                .contains("at least 1")
        );
        assert!(
            with(&["--format", "ace", "--marker", "a b"])
                .unwrap_err()
                .contains("one non-empty word")
        );
        let help = IngestArgs::try_parse_from(["ingest", "-h"]).unwrap_err();
        assert_eq!(help.kind(), clap::error::ErrorKind::DisplayHelp);
    }

    #[test]
    fn messages_carry_the_marker_and_reach_the_size() {
        let m = message("mk", 3, 17, 40);
        assert!(m.starts_with("mk c3 r17 "));
        assert_eq!(m.len(), 40);
        assert_eq!(message("mk", 0, 0, 1), "mk c0 r0 ");
    }

    use logging_service::ace::{self, ByteOrder};

    #[test]
    fn ace_frames_decode_back_to_the_record() {
        let bytes = frame(Format::Ace, "mk", 2, 9, 32);
        let len = u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize;
        assert_eq!(bytes[0], 1);
        assert_eq!(bytes.len(), 8 + len);
        let record = ace::decode_payload(&bytes[8..], ByteOrder::Little).unwrap();
        assert_eq!(record.message, format!("{}\n", message("mk", 2, 9, 32)));
        assert_eq!((record.pid, record.priority), (4242, 8), "LM_INFO");
        assert_eq!(record.seconds, 1_764_000_000);
    }

    #[test]
    fn syslog_frames_are_octet_counted() {
        let bytes = frame(Format::Syslog, "mk", 1, 2, 20);
        let text = String::from_utf8(bytes).unwrap();
        let (len, body) = text.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), body.len());
        assert!(
            body.starts_with("<14>1 2025-11-24T16:00:00.000000Z bench-host ingest 4242 - - "),
            "{body}"
        );
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
}
