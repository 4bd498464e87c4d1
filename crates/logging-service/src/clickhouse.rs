//! Shipping records into ClickHouse: logd's scale-out tier, beside the files and the forwarders.
//!
//! The [`ClickHouseSink`] is a [`RecordSink`]: each record becomes one row (every field of the
//! record, the receiving logd's name and a sequence number; [`RowEncoder`]) pushed into a
//! [`Spool`] (memory first, then checksummed segment files). A thread of its own takes up to
//! `batch_rows` rows from the spool once that many are queued or the oldest has waited
//! `batch_age` (or a tenth of them are queued and no record came for 20 ms), copies them
//! straight from the spool's buffers into one request body, and sends them in one
//! `INSERT ... FORMAT RowBinary` over ClickHouse's HTTP interface (or HTTPS, on rustls:
//! [`ClickHouseTls`]). The batch leaves the spool only after ClickHouse answered 200; any
//! other answer, a refused connection or a timeout keeps it, and the thread tries again after
//! a capped, jittered back-off, forever, counting each batch sent again (`retried`). Two
//! inserts are in flight at once, committed in order (see `insert_loop`).
//!
//! A batch whose first attempt reached ClickHouse but whose answer did not reach logd (a
//! crash of ClickHouse after the insert, a timeout) is inserted twice. A plain `MergeTree`
//! does not deduplicate inserts, so each row carries `(logd, seq)`: `seq` counts the rows this
//! sink made, never reused (reserved in blocks in a `sequence` file beside the spool, so a
//! crash skips numbers but never repeats them), which makes duplicates a query away:
//! `SELECT logd, seq, count() FROM logs GROUP BY logd, seq HAVING count() > 1`.
//!
//! # Rows in the spool
//!
//! A spooled row is [`ROW_BINARY_TAG`] followed by the row in ClickHouse's RowBinary: the
//! insert's body is the rows without their tags, and ClickHouse reads numbers and
//! length-prefixed strings instead of parsing and unescaping text. Versions before this one
//! spooled TSV rows, which start with a digit of their year: a spool such a version left is
//! inserted as it is, in `FORMAT TabSeparated` batches (a batch holds rows of one format),
//! before the rows that came after the upgrade. Rows read back from the spool's files are
//! checked first ([`read_row`]): one that is neither (a damaged disk, a newer version's row)
//! is removed, counted in [`ClickHouseStats::unreadable`] and logged, and costs only itself;
//! rows still in memory were made by this run's [`RowEncoder`] and are not checked again.
//!
//! Why RowBinary over plain HTTP (`ureq`, already used by the tests) rather than the official
//! `clickhouse` crate: the sink runs on a blocking thread of its own, as the forwarder does,
//! and the official crate is async (tokio) and needs `with_validation(false)` against the
//! 18.16 server Debian ships. RowBinary rather than TSV: ClickHouse parses a batch with about
//! a fifth less CPU (measured into a `Null` table), and logd's encoding copies fields instead
//! of escaping them (docs/benchmarks.md measures the sink against `clickhouse-client`).

use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use component_configurator::{Component, ComponentError};
use parking_lot::{Condvar, Mutex};

use crate::forward::Backoff;
use crate::record::{LogRecord, RecordBatch, parse_rfc3339};
use crate::spool::{FullPolicy, Position, Pushed, Spool, SpoolConfig};
use crate::store::RecordSink;
use crate::tls::MinVersion;

/// The svc.conf name of the component (see [`crate::services`]).
pub const CLICKHOUSE: &str = "ClickHouse";

/// The table's columns, in the order of the rows.
pub const COLUMNS: &str =
    "time, usec, host, app, pid, facility, severity, sent, msgid, sd, message, logd, seq";

/// Sequence numbers reserved per write of the `sequence` file.
const SEQUENCE_BLOCK: u64 = 1 << 20;

/// How a [`ClickHouseSink`] connects, batches, spools and retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClickHouseOptions {
    /// ClickHouse's HTTP interface, `http://HOST:PORT`, or `https://HOST:PORT` over TLS (`-u`).
    pub url: String,
    /// TLS for an `https://` URL (`--tls-ca`, `--tls-cert`, `--tls-key`).
    pub tls: ClickHouseTls,
    /// The table, `NAME` or `DATABASE.NAME` (`-t`).
    pub table: String,
    /// Create the table at the start if it does not exist (`-c`).
    pub create: bool,
    /// The receiving logd's name, stored in the `logd` column (`-n`; default: the host name).
    pub logd: String,
    /// Rows per insert, at most (`-r`).
    pub batch_rows: usize,
    /// The longest a row waits for its batch to fill (`-a`).
    pub batch_age: Duration,
    /// The spool directory (`-s`; default: `DATA_DIR/clickhouse-spool`).
    pub spool_dir: PathBuf,
    /// Bytes of rows queued in memory before they spill to the spool's files.
    pub memory_bytes: u64,
    /// Bytes the spool's files may hold (`-m`).
    pub spool_max: u64,
    /// What a full spool does.
    pub spool_full: FullPolicy,
    /// The first retry delay; it doubles per failure up to `backoff_cap`.
    pub backoff_base: Duration,
    /// The longest retry delay.
    pub backoff_cap: Duration,
    /// How long one insert may take before it counts as failed.
    pub request_timeout: Duration,
    /// How long a stop (or removal) keeps inserting before it spools the rest (`-w`).
    pub stop_timeout: Duration,
}

impl ClickHouseOptions {
    /// Defaults for a sink whose spool is under `data_dir`: table `logs`, 100,000 rows or 1 s
    /// per batch, 64 MiB in memory (the two batches in flight stay queued until they are
    /// committed, 100,000 rows of about 200 bytes each, and the next one fills meanwhile), 1 GiB
    /// on disk, back-off 100 ms to 10 s.
    pub fn new(url: impl Into<String>, data_dir: &Path) -> Self {
        ClickHouseOptions {
            url: url.into(),
            tls: ClickHouseTls::default(),
            table: "logs".into(),
            create: false,
            logd: default_logd_name(),
            batch_rows: 100_000,
            batch_age: Duration::from_secs(1),
            spool_dir: data_dir.join("clickhouse-spool"),
            memory_bytes: 64 << 20,
            spool_max: 1 << 30,
            spool_full: FullPolicy::Block,
            backoff_base: Duration::from_millis(100),
            backoff_cap: Duration::from_secs(10),
            request_timeout: Duration::from_secs(10),
            stop_timeout: Duration::from_secs(5),
        }
    }

    /// The options of a svc.conf directive's arguments:
    /// `-u URL [-t TABLE] [-c] [-n NAME] [-r ROWS] [-a AGE] [-s SPOOL_DIR] [-m SPOOL_MAX] [-w STOP]
    /// [--tls-ca FILE] [--tls-cert FILE --tls-key FILE] [--tls-min-version 1.2|1.3]`. The TLS
    /// files are read here, so a line naming a broken one is refused when it is checked.
    ///
    /// ```
    /// use logging_service::clickhouse::ClickHouseOptions;
    /// let args: Vec<String> = ["-u", "http://127.0.0.1:8123", "-t", "db.logs", "-c", "-r", "500", "-a", "250ms"]
    ///     .map(String::from).into();
    /// let o = ClickHouseOptions::from_args(&args, std::path::Path::new("/var/lib/logd")).unwrap();
    /// assert_eq!((o.table.as_str(), o.create, o.batch_rows), ("db.logs", true, 500));
    /// assert!(ClickHouseOptions::from_args(&["-t".into(), "x;drop".into()], "/".as_ref()).is_err());
    /// ```
    pub fn from_args(args: &[String], data_dir: &Path) -> Result<Self, String> {
        let mut o = ClickHouseOptions::new("", data_dir);
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            if flag == "-c" {
                o.create = true;
                continue;
            }
            let v = it
                .next()
                .ok_or_else(|| format!("{flag} needs a value"))?
                .as_str();
            match flag.as_str() {
                "-u" => o.url = v.to_owned(),
                "-t" => o.table = v.to_owned(),
                "-n" => o.logd = v.to_owned(),
                "-r" => {
                    o.batch_rows = v
                        .parse()
                        .ok()
                        .filter(|n| (1..=1_000_000).contains(n))
                        .ok_or_else(|| format!("-r: `{v}` is not a row count from 1 to 1000000"))?
                }
                "-a" => {
                    o.batch_age = crate::limits::parse_duration(v)
                        .ok()
                        .filter(|d| !d.is_zero() && *d <= Duration::from_secs(3600))
                        .ok_or_else(|| format!("-a: `{v}` is not an age from 1ms to 1h"))?
                }
                "-s" => o.spool_dir = PathBuf::from(v),
                "--tls-ca" => o.tls.ca = Some(PathBuf::from(v)),
                "--tls-cert" => o.tls.cert = Some(PathBuf::from(v)),
                "--tls-key" => o.tls.key = Some(PathBuf::from(v)),
                "--tls-min-version" => {
                    o.tls.min_version = v.parse().map_err(|e| format!("--tls-min-version: {e}"))?
                }
                "-w" => {
                    o.stop_timeout = crate::limits::parse_duration(v)
                        .ok()
                        .filter(|d| *d <= Duration::from_secs(3600))
                        .ok_or_else(|| format!("-w: `{v}` is not a duration up to 1h"))?
                }
                "-m" => {
                    o.spool_max = crate::limits::parse_size(v)
                        .ok()
                        .filter(|n| *n >= 512)
                        .ok_or_else(|| format!("-m: `{v}` is not a size of at least 512"))?
                }
                other => {
                    return Err(format!(
                        "unknown argument `{other}` (expected -u URL, -t TABLE, -c, -n NAME, -r ROWS, -a AGE, -s DIR, -m SIZE, -w DURATION, --tls-ca FILE, --tls-cert FILE, --tls-key FILE, --tls-min-version 1.2|1.3)"
                    ));
                }
            }
        }
        if o.url.is_empty() {
            return Err("-u URL is required (http://HOST:PORT or https://HOST:PORT)".into());
        }
        check_url(&o.url)?;
        check_table(&o.table)?;
        check_name(&o.logd)?;
        Http::new(&o.url, o.request_timeout, &o.tls)?;
        Ok(o)
    }
}

/// The host name (from `/proc/sys/kernel/hostname`), or `logd`.
fn default_logd_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| check_name(s).is_ok())
        .unwrap_or_else(|| "logd".into())
}

/// `http://HOST:PORT` or `https://HOST:PORT`, with an optional `/`.
///
/// ```
/// use logging_service::clickhouse::check_url;
/// assert!(check_url("https://ch-a.example:8443/").is_ok());
/// assert!(check_url("ftp://ch").is_err() && check_url("http://user@ch:8123").is_err());
/// ```
pub fn check_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| {
            format!("`{url}`: only http://HOST:PORT or https://HOST:PORT is supported")
        })?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
        return Err(format!(
            "`{url}` is not http://HOST:PORT or https://HOST:PORT"
        ));
    }
    Ok(())
}

/// The host of an `http(s)://HOST:PORT` URL (brackets of an IPv6 address removed): the name
/// the server's certificate must carry.
fn url_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or_default();
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or_default();
    }
    authority
        .rsplit_once(':')
        .map_or(authority, |(host, _)| host)
}

/// The CA bundle an `https://` URL is checked against when no `--tls-ca` is given
/// (Debian's `ca-certificates`).
pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// TLS towards ClickHouse (an `https://` URL), on rustls: the CA bundle the server's
/// certificate must chain to, and the client certificate shown to a server that asks for one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClickHouseTls {
    /// CA bundle (PEM) [default: [`SYSTEM_CA_BUNDLE`]].
    pub ca: Option<PathBuf>,
    /// Client certificate chain (PEM), leaf first; with `key`.
    pub cert: Option<PathBuf>,
    /// The client certificate's private key (PEM); with `cert`.
    pub key: Option<PathBuf>,
    /// The oldest protocol version spoken to ClickHouse.
    pub min_version: MinVersion,
}

impl ClickHouseTls {
    /// Whether any TLS option is set.
    pub fn is_set(&self) -> bool {
        self.ca.is_some()
            || self.cert.is_some()
            || self.key.is_some()
            || self.min_version != MinVersion::default()
    }

    /// ureq's TLS configuration for a server named `host`: the files are read and checked
    /// by building a rustls configuration first (a key that does not match its certificate
    /// is an error here, not a panic in the client later). ureq builds its rustls
    /// configuration itself, with every protocol version; the minimum version is set through
    /// the crypto provider it is given, which has no cipher suite older than that version
    /// ([`crate::tls::provider_for`]).
    fn ureq_config(&self, host: &str) -> Result<ureq::tls::TlsConfig, String> {
        use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig, TlsProvider};
        let ca = self
            .ca
            .clone()
            .unwrap_or_else(|| PathBuf::from(SYSTEM_CA_BUNDLE));
        let identity = match (&self.cert, &self.key) {
            (Some(c), Some(k)) => Some((c.as_path(), k.as_path())),
            (None, None) => None,
            _ => return Err("--tls-cert and --tls-key go together".into()),
        };
        crate::client::ClientTls::new(&ca, host, identity).map_err(|e| e.to_string())?;
        let tls = |e: crate::tls::TlsError| e.to_string();
        let roots: Vec<Certificate<'static>> = crate::tls::load_certs(&ca)
            .map_err(tls)?
            .iter()
            .map(|c| Certificate::from_der(c.as_ref()).to_owned())
            .collect();
        let mut b = TlsConfig::builder()
            .provider(TlsProvider::Rustls)
            .unversioned_rustls_crypto_provider(crate::tls::provider_for(self.min_version))
            .root_certs(RootCerts::from(roots));
        if let Some((cert, key)) = identity {
            let chain: Vec<Certificate<'static>> = crate::tls::load_certs(cert)
                .map_err(tls)?
                .iter()
                .map(|c| Certificate::from_der(c.as_ref()).to_owned())
                .collect();
            // The kind of key (PKCS#1, SEC1, PKCS#8) as its PEM label says; read and checked
            // by `ClientTls::new` above.
            let pem = std::fs::read(key).map_err(|e| format!("{}: {e}", key.display()))?;
            let key = PrivateKey::from_pem(&pem).map_err(|e| format!("{}: {e}", key.display()))?;
            b = b.client_cert(Some(ClientCert::new_with_certs(&chain, key)));
        }
        Ok(b.build())
    }
}

/// `NAME` or `DATABASE.NAME`, each an identifier (`[A-Za-z_][A-Za-z0-9_]*`): it goes into SQL.
pub fn check_table(t: &str) -> Result<(), String> {
    let ident = |s: &str| {
        s.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    let ok = match t.split_once('.') {
        Some((db, name)) => ident(db) && ident(name),
        None => ident(t),
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "table `{t}`: expected NAME or DATABASE.NAME of letters, digits and _"
        ))
    }
}

fn check_name(n: &str) -> Result<(), String> {
    if !n.is_empty() && n.len() <= 255 && n.chars().all(|c| c.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(format!(
            "logd name `{n}`: expected 1 to 255 printable characters"
        ))
    }
}

/// The `CREATE TABLE` the sink runs with `-c`: a `MergeTree` ordered by `(host, time)`,
/// partitioned by month, with only types current ClickHouse still accepts. ClickHouse 18.16
/// has no `DateTime64`, so the time is a `DateTime('UTC')` and its microseconds a `UInt32`.
pub fn create_table_sql(table: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {table} (\
time DateTime('UTC'), usec UInt32, host String, app String, pid String, \
facility UInt8, severity UInt8, sent String, msgid String, sd String, message String, \
logd String, seq UInt64\
) ENGINE = MergeTree() PARTITION BY toYYYYMM(time) ORDER BY (host, time)"
    )
}

/// The seconds a `DateTime` can hold: 1970 to 2106.
fn clamp_time(seconds: i64) -> (i64, bool) {
    let c = seconds.clamp(0, i64::from(u32::MAX));
    (c, c != seconds)
}

/// The first byte of a row this version spools: RowBinary follows. Earlier versions spooled
/// TSV rows, which start with a digit of their year, so both can be told apart in one spool.
pub const ROW_BINARY_TAG: u8 = 0x01;

/// The table's columns in the order of [`COLUMNS`], as RowBinary lays them out.
const ROW_BINARY_COLUMNS: [(&str, Column); 13] = [
    ("time", Column::Fixed(4)),
    ("usec", Column::Fixed(4)),
    ("host", Column::String),
    ("app", Column::String),
    ("pid", Column::String),
    ("facility", Column::Fixed(1)),
    ("severity", Column::Fixed(1)),
    ("sent", Column::String),
    ("msgid", Column::String),
    ("sd", Column::String),
    ("message", Column::String),
    ("logd", Column::String),
    ("seq", Column::Fixed(8)),
];

#[derive(Debug, Clone, Copy)]
enum Column {
    /// A number of this many little-endian bytes (`DateTime` and `UInt32` are 4).
    Fixed(usize),
    /// A LEB128 length, then the bytes.
    String,
}

/// The format of a spooled row, and so of the insert that carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RowFormat {
    /// A row of this version: [`ROW_BINARY_TAG`], then RowBinary.
    RowBinary,
    /// A row an earlier version spooled: one TSV line.
    TabSeparated,
}

impl RowFormat {
    /// The name an `INSERT ... FORMAT` gives it.
    pub fn name(self) -> &'static str {
        match self {
            RowFormat::RowBinary => "RowBinary",
            RowFormat::TabSeparated => "TabSeparated",
        }
    }
}

/// Why a spooled row cannot be inserted (it is removed from the spool and counted as
/// unreadable, see [`ClickHouseStats::unreadable`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RowError {
    /// No byte at all.
    #[error("an empty row")]
    Empty,
    /// A first byte that is neither [`ROW_BINARY_TAG`] nor the digit a TSV row starts with.
    #[error("a row starting with byte {0:#04x}: neither RowBinary nor TSV")]
    UnknownTag(u8),
    /// A RowBinary row that ends inside a column (a string's length included: a length
    /// larger than what is left is this error, whatever its size).
    #[error("a RowBinary row cut short in column `{0}`")]
    Truncated(&'static str),
    /// A string length of more than 10 LEB128 bytes or past 64 bits.
    #[error("a RowBinary row with a malformed length in column `{0}`")]
    BadLength(&'static str),
    /// Bytes after the last column.
    #[error("a RowBinary row with {0} bytes after its last column")]
    Trailing(usize),
    /// A TSV row that is not one line of the table's columns.
    #[error("a TSV row {0}")]
    BadTsv(&'static str),
}

/// A string's LEB128 length from the front of `b`, which it then skips.
fn read_length(b: &mut &[u8], column: &'static str) -> Result<u64, RowError> {
    // Most lengths are under 128: one byte.
    if let Some((&byte, rest)) = b.split_first() {
        if byte < 0x80 {
            *b = rest;
            return Ok(u64::from(byte));
        }
    }
    let mut n = 0u64;
    for (i, &byte) in b.iter().enumerate().take(10) {
        // The tenth byte holds bit 63 only.
        if i == 9 && byte > 1 {
            return Err(RowError::BadLength(column));
        }
        n |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            *b = &b[i + 1..];
            return Ok(n);
        }
    }
    Err(if b.len() < 10 {
        RowError::Truncated(column)
    } else {
        RowError::BadLength(column)
    })
}

/// Takes one RowBinary row's columns from the front of `b`: a number's little-endian bytes,
/// a string's bytes without their length. Allocates nothing.
fn take_columns<'a>(b: &mut &'a [u8]) -> Result<[&'a [u8]; 13], RowError> {
    let mut columns: [&[u8]; 13] = [&[]; 13];
    for (out, (name, column)) in columns.iter_mut().zip(ROW_BINARY_COLUMNS) {
        let len = match column {
            Column::Fixed(n) => n,
            Column::String => {
                let n = read_length(b, name)?;
                usize::try_from(n)
                    .ok()
                    .filter(|&n| n <= b.len())
                    .ok_or(RowError::Truncated(name))?
            }
        };
        let (value, rest) = b.split_at_checked(len).ok_or(RowError::Truncated(name))?;
        *out = value;
        *b = rest;
    }
    Ok(columns)
}

/// The columns of a spooled RowBinary row (after its tag): a number's little-endian bytes,
/// a string's bytes without their length. Checks the whole row; allocates nothing.
///
/// ```
/// use logging_service::clickhouse::{RowError, encode_row, row_columns};
/// use logging_service::record::LogRecord;
/// let r = LogRecord { time: "2026-11-26T08:00:01.500000Z", host: "gw-1", app: "mqttd", pid: "812",
///     facility: 1, severity: 4, sent: "-", msgid: "CONN", structured_data: "-", message: "up" };
/// let mut row = Vec::new();
/// encode_row(&r, "edge-a", 7, &mut row);
/// let c = row_columns(&row).unwrap();
/// assert_eq!((c[2], c[10], c[11]), (&b"gw-1"[..], &b"up"[..], &b"edge-a"[..]));
/// assert_eq!(u32::from_le_bytes(c[1].try_into().unwrap()), 500_000);
/// assert_eq!(row_columns(&row[..row.len() - 1]), Err(RowError::Truncated("seq")));
/// ```
pub fn row_columns(row: &[u8]) -> Result<[&[u8]; 13], RowError> {
    let (&tag, mut b) = row.split_first().ok_or(RowError::Empty)?;
    if tag != ROW_BINARY_TAG {
        return Err(RowError::UnknownTag(tag));
    }
    let columns = take_columns(&mut b)?;
    if !b.is_empty() {
        return Err(RowError::Trailing(b.len()));
    }
    Ok(columns)
}

/// The rows of a `FORMAT RowBinary` insert's body (rows back to back, without tags), each
/// checked as [`row_columns`] checks one.
///
/// ```
/// use logging_service::clickhouse::{RowError, encode_row, row_binary_rows};
/// use logging_service::record::LogRecord;
/// let r = LogRecord { time: "-", host: "h", app: "a", pid: "-", facility: 1, severity: 6,
///     sent: "-", msgid: "-", structured_data: "-", message: "m" };
/// let mut body = Vec::new();
/// for seq in 0..3 {
///     let mut row = Vec::new();
///     encode_row(&r, "l", seq, &mut row);
///     body.extend_from_slice(&row[1..]);
/// }
/// assert_eq!(row_binary_rows(&body), Ok(3));
/// assert_eq!(row_binary_rows(&body[..body.len() - 1]), Err(RowError::Truncated("seq")));
/// ```
pub fn row_binary_rows(mut body: &[u8]) -> Result<u64, RowError> {
    let mut rows = 0;
    while !body.is_empty() {
        take_columns(&mut body)?;
        rows += 1;
    }
    Ok(rows)
}

/// Reads a spooled row back: its format, and the bytes an insert in that format carries
/// (a RowBinary row without its tag; a TSV row whole). A RowBinary row is checked column
/// by column ([`row_columns`]); a TSV row (from an earlier version's spool) must be one
/// line of the table's 13 columns.
///
/// ```
/// use logging_service::clickhouse::{RowError, RowFormat, read_row};
/// let tsv = b"2026-11-26 08:00:01\t0\th\ta\t-\t1\t6\t-\t-\t-\tup\tedge\t3\n";
/// assert_eq!(read_row(tsv), Ok((RowFormat::TabSeparated, &tsv[..])));
/// assert_eq!(read_row(b"2026\tshort\n"), Err(RowError::BadTsv("without the table's 13 columns")));
/// assert_eq!(read_row(b"\x7fELF"), Err(RowError::UnknownTag(0x7f)));
/// ```
pub fn read_row(row: &[u8]) -> Result<(RowFormat, &[u8]), RowError> {
    match row.first() {
        None => Err(RowError::Empty),
        Some(&ROW_BINARY_TAG) => {
            row_columns(row)?;
            Ok((RowFormat::RowBinary, &row[1..]))
        }
        Some(b'0'..=b'9') => {
            let Some(line) = row.strip_suffix(b"\n") else {
                return Err(RowError::BadTsv("without its newline"));
            };
            if line.contains(&b'\n') {
                return Err(RowError::BadTsv("of more than one line"));
            }
            if line.iter().filter(|&&b| b == b'\t').count() != ROW_BINARY_COLUMNS.len() - 1 {
                return Err(RowError::BadTsv("without the table's 13 columns"));
            }
            Ok((RowFormat::TabSeparated, row))
        }
        Some(&other) => Err(RowError::UnknownTag(other)),
    }
}

fn push_string(out: &mut Vec<u8>, s: &str) {
    let mut n = s.len() as u64;
    while n >= 0x80 {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
    out.extend_from_slice(s.as_bytes());
}

/// Turns records into the rows the sink spools: [`ROW_BINARY_TAG`], then the columns of
/// [`COLUMNS`] in RowBinary. It remembers the last second it converted: consecutive records
/// nearly always share it, so only their microseconds are read.
#[derive(Debug, Clone, Default)]
pub struct RowEncoder {
    /// `YYYY-MM-DDThh:mm:ss` of the last time in TIME's form, and its seconds.
    second: Option<([u8; 19], u32)>,
}

impl RowEncoder {
    /// Appends the row for `r`, received by `logd`, numbered `seq`. A time outside
    /// `DateTime`'s range (1970 to 2106) is clamped into it, with 0 microseconds, and one that
    /// is no time at all is 1970-01-01 00:00:00; `sent` keeps what the sender said. Absent
    /// fields (host to structured data, as the store's lines) are `-`.
    pub fn encode<'a>(&mut self, r: &LogRecord<'a>, logd: &str, seq: u64, out: &mut Vec<u8>) {
        let (secs, micros) = self.time(r.time);
        out.push(ROW_BINARY_TAG);
        out.extend_from_slice(&secs.to_le_bytes());
        out.extend_from_slice(&micros.to_le_bytes());
        let token = |f: &'a str| if f.is_empty() { "-" } else { f };
        for f in [r.host, r.app, r.pid] {
            push_string(out, token(f));
        }
        out.extend_from_slice(&[r.facility, r.severity]);
        for f in [r.sent, r.msgid, r.structured_data] {
            push_string(out, token(f));
        }
        push_string(out, r.message);
        push_string(out, logd);
        out.extend_from_slice(&seq.to_le_bytes());
    }

    /// `DateTime`'s seconds and the microseconds of an RFC 3339 time.
    fn time(&mut self, t: &str) -> (u32, u32) {
        let b = t.as_bytes();
        // TIME's form, `YYYY-MM-DDThh:mm:ss.ffffffZ`.
        let time_form = b.len() == 27
            && b[10] == b'T'
            && b[19] == b'.'
            && b[26] == b'Z'
            && b[20..26].iter().all(u8::is_ascii_digit);
        if time_form {
            if let Some((head, secs)) = &self.second {
                if head[..] == b[..19] {
                    let micros = b[20..26]
                        .iter()
                        .fold(0, |m, &c| m * 10 + u32::from(c - b'0'));
                    return (*secs, micros);
                }
            }
        }
        let Some((secs, micros)) = parse_rfc3339(t) else {
            return (0, 0);
        };
        let (secs, clamped) = clamp_time(secs);
        // In range, so that it fits a u32.
        let secs = secs as u32;
        if clamped {
            return (secs, 0);
        }
        if time_form {
            let mut head = [0u8; 19];
            head.copy_from_slice(&b[..19]);
            self.second = Some((head, secs));
        }
        (secs, micros)
    }
}

/// Appends the row [`RowEncoder::encode`] makes for `r` (without remembering the second).
///
/// ```
/// use logging_service::clickhouse::{RowFormat, encode_row, read_row, ROW_BINARY_TAG};
/// use logging_service::record::LogRecord;
/// let r = LogRecord { time: "2026-11-26T08:00:01.500000Z", host: "gw-1", app: "mqttd", pid: "812",
///     facility: 1, severity: 4, sent: "2026-11-26T13:30:01.5+05:30", msgid: "CONN",
///     structured_data: r#"[m c="s\]17"]"#, message: "line one\nand\ttab" };
/// let mut row = Vec::new();
/// encode_row(&r, "edge-a", 7, &mut row);
/// assert_eq!(row[0], ROW_BINARY_TAG);
/// // 2026-11-26 08:00:01 UTC, then 500000 microseconds, then `gw-1` with its length.
/// assert_eq!(&row[1..14], &[0x01, 0xe7, 0x07, 0x6b, 0x20, 0xa1, 0x07, 0, 4, b'g', b'w', b'-', b'1']);
/// assert_eq!(read_row(&row), Ok((RowFormat::RowBinary, &row[1..])));
/// ```
pub fn encode_row(r: &LogRecord<'_>, logd: &str, seq: u64, out: &mut Vec<u8>) {
    RowEncoder::default().encode(r, logd, seq, out);
}

/// The sequence numbers of one sink: reserved `SEQUENCE_BLOCK` at a time in a file, synced
/// before any number of the block is used, so that no number is ever given out twice.
#[derive(Debug)]
struct Sequence {
    path: PathBuf,
    next: u64,
    reserved: u64,
}

impl Sequence {
    fn open(dir: &Path) -> io::Result<Sequence> {
        let path = dir.join("sequence");
        let next = match std::fs::read_to_string(&path) {
            Ok(s) => s.trim().parse().map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: not a sequence number", path.display()),
                )
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => 1,
            Err(e) => return Err(e),
        };
        Ok(Sequence {
            path,
            next,
            reserved: next,
        })
    }

    fn take(&mut self) -> io::Result<u64> {
        if self.next >= self.reserved {
            let reserved = self.next + SEQUENCE_BLOCK;
            let tmp = self.path.with_extension("tmp");
            let mut f = std::fs::File::create(&tmp)?;
            writeln!(f, "{reserved}")?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)?;
            self.reserved = reserved;
        }
        self.next += 1;
        Ok(self.next - 1)
    }
}

/// Counters of a [`ClickHouseSink`]. Every record handed to it is, at any moment, queued (in
/// memory or spooled), inserted, or dropped under a counted reason:
/// `received + recovered == queued + inserted + dropped`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ClickHouseStats {
    /// Records handed to the sink.
    pub received: u64,
    /// Rows found in the spool at the start (left by an earlier run).
    pub recovered: u64,
    /// Rows ClickHouse answered 200 for.
    pub inserted: u64,
    /// Rows waiting, in memory or in the spool's files.
    pub queued: u64,
    /// Rows dropped: the spool was full (its policy), its disk refused them, or they were
    /// unreadable (`unreadable`, counted here too).
    pub dropped: u64,
    /// Spooled rows that could not be read back as a row ([`read_row`]'s error, logged):
    /// removed from the spool without an insert, so that they cost only themselves.
    pub unreadable: u64,
    /// Inserts answered 200.
    pub batches: u64,
    /// Inserts that failed (no answer, or not 200).
    pub failed: u64,
    /// Batches sent again after a failed attempt: each may have been inserted before (a
    /// duplicate a `(logd, seq)` query finds).
    pub retried: u64,
    /// Whether the last attempt succeeded.
    pub up: bool,
}

impl ClickHouseStats {
    /// `received + recovered == queued + inserted + dropped`.
    pub fn balances(&self) -> bool {
        self.received + self.recovered == self.queued + self.inserted + self.dropped
    }
}

impl std::fmt::Display for ClickHouseStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} inserted in {} batches, {} queued, {} dropped, {} failed inserts, {} batches retried",
            self.inserted, self.batches, self.queued, self.dropped, self.failed, self.retried
        )?;
        if self.unreadable > 0 {
            write!(f, ", {} unreadable spooled rows dropped", self.unreadable)?;
        }
        if self.recovered > 0 {
            write!(f, ", {} recovered from the spool", self.recovered)?;
        }
        Ok(())
    }
}

#[derive(Debug, Default)]
struct Counters {
    received: u64,
    inserted: u64,
    write_errors: u64,
    unreadable: u64,
    batches: u64,
    failed: u64,
    retried: u64,
    up: bool,
}

#[derive(Debug)]
struct Shared {
    opts: ClickHouseOptions,
    spool: Mutex<Spool>,
    sequence: Mutex<Sequence>,
    wake: Condvar,
    counters: Mutex<Counters>,
    backlogged: AtomicBool,
    deadline: Mutex<Option<Instant>>,
    abort: AtomicBool,
}

impl Shared {
    fn stats(&self) -> ClickHouseStats {
        let s = self.spool.lock().stats();
        let c = self.counters.lock();
        ClickHouseStats {
            received: c.received,
            recovered: s.recovered,
            inserted: c.inserted,
            queued: s.records,
            dropped: s.dropped_block
                + s.dropped_oldest
                + s.dropped_newest
                + c.write_errors
                + c.unreadable,
            unreadable: c.unreadable,
            batches: c.batches,
            failed: c.failed,
            retried: c.retried,
            up: c.up,
        }
    }

    fn must_end(&self) -> bool {
        self.abort.load(Ordering::Acquire)
            || self.deadline.lock().is_some_and(|d| Instant::now() >= d)
    }

    /// Waits `d` (a back-off), or until a stop must end: records arriving meanwhile do not
    /// cut it short.
    fn pause(&self, d: Duration) {
        let until = Instant::now() + d;
        let mut spool = self.spool.lock();
        while !self.must_end() {
            let now = Instant::now();
            if now >= until {
                break;
            }
            self.wake.wait_for(&mut spool, until - now);
        }
    }
}

/// A small client of ClickHouse's HTTP interface (also what `logc query` uses).
#[derive(Debug, Clone)]
pub struct Http {
    agent: ureq::Agent,
    url: String,
}

impl Http {
    /// A client of `url` (`http://HOST:PORT`, or `https://HOST:PORT` with `tls`), each request
    /// given at most `timeout`. TLS options with an `http://` URL are an error, as are TLS
    /// files that cannot be read or do not fit together.
    pub fn new(url: &str, timeout: Duration, tls: &ClickHouseTls) -> Result<Self, String> {
        let mut b = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout));
        if url.starts_with("https://") {
            b = b.tls_config(tls.ureq_config(url_host(url))?);
        } else if tls.is_set() {
            return Err(format!("`{url}`: the TLS options need an https:// URL"));
        }
        Ok(Http {
            agent: b.build().into(),
            url: url.trim_end_matches('/').to_owned(),
        })
    }

    /// Runs `query` with `body` as its data (the rows of an `INSERT`, or the SQL itself when
    /// `query` is empty); the status and the answer's text.
    pub fn post(&self, query: &str, body: &[u8]) -> io::Result<(u16, String)> {
        let mut req = self.agent.post(&self.url);
        if !query.is_empty() {
            req = req.query("query", query);
        }
        let resp = req.send(body).map_err(ureq_error)?;
        let status = resp.status().as_u16();
        let text = resp
            .into_body()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
            .map_err(ureq_error)?;
        Ok((status, text))
    }

    /// Runs the SQL `sql`; its answer, or an error with ClickHouse's message.
    pub fn query(&self, sql: &str) -> io::Result<String> {
        match self.post("", sql.as_bytes())? {
            (200, text) => Ok(text),
            (status, text) => Err(io::Error::other(format!(
                "ClickHouse answered {status}: {}",
                text.trim()
            ))),
        }
    }
}

fn ureq_error(e: ureq::Error) -> io::Error {
    match e {
        ureq::Error::Io(e) => e,
        e => io::Error::other(e.to_string()),
    }
}

/// Ships records into a ClickHouse table through a [`Spool`], from a thread of its own. See
/// the [module documentation](self).
#[derive(Debug)]
pub struct ClickHouseSink {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    done: crossbeam_channel::Receiver<()>,
    unplaced: u64,
    row: Vec<u8>,
    encoder: RowEncoder,
}

/// A handle on a running [`ClickHouseSink`]: its counters.
#[derive(Debug, Clone)]
pub struct ClickHouseHandle(Arc<Shared>);

impl ClickHouseHandle {
    /// The counters so far.
    pub fn stats(&self) -> ClickHouseStats {
        self.0.stats()
    }
}

impl ClickHouseSink {
    /// Opens the spool (replaying what an earlier run left there first) and starts the
    /// inserting thread. ClickHouse need not be up: the first batch waits for it.
    pub fn start(opts: ClickHouseOptions) -> io::Result<Self> {
        let http = Http::new(&opts.url, opts.request_timeout, &opts.tls)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let mut cfg = SpoolConfig::new(&opts.spool_dir);
        cfg.memory_bytes = opts.memory_bytes;
        cfg.max_bytes = opts.spool_max;
        cfg.full = opts.spool_full;
        // A batch read back from the files stops at the end of a segment: segments hold a
        // full batch or more (100,000 rows of 170 bytes are 17 MB), so that a replay inserts
        // batches as large as a live run's.
        cfg.segment_bytes = (opts.spool_max / 8).clamp(512, 32 << 20);
        let spool = Spool::open(cfg)?;
        let sequence = Sequence::open(&opts.spool_dir)?;
        if !spool.is_empty() {
            tracing::info!(
                rows = spool.len(),
                "clickhouse: inserting the spool of an earlier run first"
            );
        }
        let shared = Arc::new(Shared {
            backlogged: AtomicBool::new(spool.backlogged()),
            spool: Mutex::new(spool),
            sequence: Mutex::new(sequence),
            opts,
            wake: Condvar::new(),
            counters: Mutex::new(Counters::default()),
            deadline: Mutex::new(None),
            abort: AtomicBool::new(false),
        });
        let (done_tx, done) = crossbeam_channel::bounded::<()>(0);
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("logd-clickhouse".into())
            .spawn(move || {
                insert_loop(&s, &http);
                drop(done_tx);
            })?;
        Ok(ClickHouseSink {
            shared,
            thread: Some(thread),
            done,
            unplaced: 0,
            row: Vec::new(),
            encoder: RowEncoder::default(),
        })
    }

    /// A handle for reading the counters.
    pub fn handle(&self) -> ClickHouseHandle {
        ClickHouseHandle(self.shared.clone())
    }
}

/// Inserts in flight at once: while ClickHouse parses and writes one batch (one thread of
/// the server each), the sink reads the next from the spool and ClickHouse can take it on its
/// other CPU.
const IN_FLIGHT: usize = 2;

/// How long the input must stay quiet before a batch of a tenth of `batch_rows` or more goes
/// without waiting for its age.
const QUIET: Duration = Duration::from_millis(20);

/// An insert on its way: the rows it carries, and the thread waiting for ClickHouse's answer
/// (which gives the body's buffer back).
struct Insert {
    position: Position,
    answer: JoinHandle<(io::Result<()>, Vec<u8>)>,
}

/// Sends `body` as one insert on a thread of its own.
fn send_insert(http: &Http, insert: &str, position: Position, body: Vec<u8>) -> Insert {
    let (http, insert) = (http.clone(), insert.to_owned());
    let answer = std::thread::Builder::new()
        .name("logd-ch-insert".into())
        .spawn(move || {
            let result = match http.post(&insert, &body) {
                Ok((200, _)) => Ok(()),
                Ok((status, text)) => Err(io::Error::other(format!(
                    "ClickHouse answered {status}: {}",
                    text.lines().next().unwrap_or_default()
                ))),
                Err(e) => Err(e),
            };
            (result, body)
        });
    let answer = answer.unwrap_or_else(|e| {
        // No thread for it (a resource limit): the insert fails like an outage, is retried.
        std::thread::spawn(move || (Err(e), Vec::new()))
    });
    Insert { position, answer }
}

/// The inserting thread: batches from the spool into ClickHouse until a stop ends it, up to
/// [`IN_FLIGHT`] inserts at once, committed in order.
///
/// When an insert fails, the inserts sent after it are waited for: those ClickHouse answered
/// 200 for, following on from the failed one, are kept aside (`ahead`) and committed with it
/// once it went through; it is sent again alone, with exactly its rows, until it does. Every
/// batch sent again after a failed attempt counts as retried.
fn insert_loop(shared: &Shared, http: &Http) {
    let opts = &shared.opts;
    let insert =
        |f: RowFormat| format!("INSERT INTO {} ({COLUMNS}) FORMAT {}", opts.table, f.name());
    let (row_binary, tsv) = (
        insert(RowFormat::RowBinary),
        insert(RowFormat::TabSeparated),
    );
    let mut backoff = Backoff::new(opts.backoff_base, opts.backoff_cap);
    let mut created = !opts.create;
    // When rows were first seen waiting (the age of a batch counts from it).
    let mut waiting_since: Option<Instant> = None;
    // The batch that failed, sent again alone and with its rows only until it goes through.
    let mut failed: Option<Position> = None;
    // Batches after `failed` that ClickHouse took (one range), committed with it.
    let mut ahead: Option<Position> = None;
    // Rows before this number were sent and may be in ClickHouse: sending them again is a retry.
    let mut resend_until = 0u64;
    let mut down_since: Option<Instant> = None;
    // The last batch left rows behind in the spool.
    let mut behind = false;
    let mut inflight: std::collections::VecDeque<Insert> = Default::default();
    let mut spare: Vec<Vec<u8>> = Vec::new();
    // The spool's length when a sizeable batch was last seen waiting (to see the input stop).
    let mut quiet_len: Option<u64> = None;
    loop {
        let sent: u64 =
            inflight.iter().map(|i| i.position.len()).sum::<u64>() + ahead.map_or(0, |a| a.len());
        // Whether a batch is due now (else the oldest answer is collected, or it is time to end).
        let due = {
            let mut spool = shared.spool.lock();
            loop {
                if shared.must_end() {
                    break false;
                }
                let stopping = shared.deadline.lock().is_some();
                let waiting = spool.len().saturating_sub(sent);
                if waiting == 0 {
                    waiting_since = None;
                    if !inflight.is_empty() || stopping {
                        break false;
                    }
                    shared.wake.wait_for(&mut spool, Duration::from_secs(1));
                    continue;
                }
                if inflight.len() >= IN_FLIGHT || (failed.is_some() && !inflight.is_empty()) {
                    break false;
                }
                let since = *waiting_since.get_or_insert_with(Instant::now);
                let age = since.elapsed();
                if stopping
                    || behind
                    || failed.is_some()
                    || waiting >= opts.batch_rows as u64
                    || age >= opts.batch_age
                {
                    break true;
                }
                if !inflight.is_empty() {
                    break false;
                }
                // A tenth of a batch or more waiting and the input quiet for QUIET: waiting
                // for the age only adds latency (fewer rows stay behind to wait for it).
                if waiting >= (opts.batch_rows as u64 / 10).max(1) {
                    if quiet_len == Some(spool.len()) {
                        break true;
                    }
                    quiet_len = Some(spool.len());
                    shared
                        .wake
                        .wait_for(&mut spool, QUIET.min(opts.batch_age - age));
                    continue;
                }
                quiet_len = None;
                shared.wake.wait_for(&mut spool, opts.batch_age - age);
            }
        };
        quiet_len = None;
        if due && !created {
            if let Err(e) = http.query(&create_table_sql(&opts.table)) {
                shared.counters.lock().failed += 1;
                note_failure(shared, &mut down_since, &e);
                shared.pause(backoff.next_delay());
                continue;
            }
            created = true;
        }
        // The next batch, read from the spool straight into a request body: rows of one
        // format (a spool of an earlier version holds TSV rows, then RowBinary ones), or an
        // unreadable row alone.
        let mut body = spare.pop().unwrap_or_default();
        body.clear();
        let mut format = None;
        let mut unreadable = None;
        let peeked = due.then(|| {
            let mut spool = shared.spool.lock();
            let waiting = spool.len().saturating_sub(sent);
            // A failed batch goes again with its rows only, after nothing in flight.
            let (skip, rows) = match failed {
                Some(f) => (0, f.len() as usize),
                None => (sent - ahead.map_or(0, |a| a.len()), opts.batch_rows),
            };
            // Rows in memory were made by this run's encoder, whose every row reads back
            // (its property test): only rows from the spool's files, which an earlier version
            // or a damaged disk may have written, are checked column by column.
            let on_disk = spool.oldest_on_disk();
            fn trusted(r: &[u8]) -> Result<(RowFormat, &[u8]), RowError> {
                match r.split_first() {
                    Some((&ROW_BINARY_TAG, rest)) => Ok((RowFormat::RowBinary, rest)),
                    _ => read_row(r),
                }
            }
            let read = if on_disk { read_row } else { trusted };
            spool
                .peek_each(skip, rows, 64 << 20, |r| {
                    if unreadable.is_some() {
                        return false;
                    }
                    match (read(r), format) {
                        (Ok((f, bytes)), None) => {
                            format = Some(f);
                            body.extend_from_slice(bytes);
                            true
                        }
                        (Ok((f, bytes)), Some(g)) if f == g => {
                            body.extend_from_slice(bytes);
                            true
                        }
                        (Err(e), None) => {
                            unreadable = Some(e);
                            true
                        }
                        _ => false,
                    }
                })
                .inspect(|p| {
                    // Rows left behind (a backlog, the spool of an earlier run, a segment's
                    // end) have waited already: they go next without waiting.
                    behind = waiting > p.len();
                })
        });
        match (peeked, format, unreadable) {
            // An unreadable row is removed once the inserts before it are answered: it costs
            // only itself.
            (Some(Ok(position)), _, Some(e)) => {
                spare.push(body);
                if inflight.is_empty() {
                    if let Some(a) = ahead.take() {
                        resend_until = resend_until.max(a.end());
                    }
                    failed = None;
                    drop_unreadable(shared, position, &e);
                    continue;
                }
            }
            (Some(Ok(position)), Some(format), None) if !position.is_empty() => {
                if position.start() < resend_until {
                    shared.counters.lock().retried += 1;
                }
                // The failed batch's rows may have moved from memory to a segment meanwhile,
                // so that this batch ends earlier (at the segment's end): it is now the one
                // to wait for, and the batches taken after the old end go again.
                if failed.is_some_and(|f| f != position) {
                    failed = Some(position);
                    if let Some(a) = ahead.take() {
                        resend_until = resend_until.max(a.end());
                    }
                }
                let sql = match format {
                    RowFormat::RowBinary => &row_binary,
                    RowFormat::TabSeparated => &tsv,
                };
                inflight.push_back(send_insert(http, sql, position, body));
                continue;
            }
            // The batch would start past a segment's end: the inserts in flight go first.
            (Some(Ok(_)) | None, _, _) => spare.push(body),
            (Some(Err(e)), _, _) => {
                spare.push(body);
                tracing::error!("clickhouse: reading the spool failed: {e}");
                if inflight.is_empty() {
                    shared.pause(backoff.next_delay());
                    continue;
                }
            }
        }
        // Nothing to send now: the oldest answer, or the end.
        let Some(front) = inflight.pop_front() else {
            if shared.must_end() || shared.deadline.lock().is_some() {
                return;
            }
            continue;
        };
        let (result, body) = front.answer.join().unwrap_or_else(|_| {
            (
                Err(io::Error::other("the insert's thread panicked")),
                Vec::new(),
            )
        });
        spare.push(body);
        let position = front.position;
        match result {
            Ok(()) if failed.is_some_and(|f| f != position) => {
                // Sent before the failure was known, and taken: kept for after the failed
                // batch if it follows on from it, else sent again later (a retry).
                match (ahead, failed) {
                    (Some(a), _) if a.end() == position.start() => {
                        ahead = Some(a.through(position));
                    }
                    (None, Some(f)) if f.end() == position.start() => ahead = Some(position),
                    _ => resend_until = resend_until.max(position.end()),
                }
                shared.counters.lock().batches += 1;
            }
            Ok(()) => {
                let through = match ahead.take() {
                    Some(a) => position.through(a),
                    None => position,
                };
                let committed = {
                    let mut spool = shared.spool.lock();
                    let c = spool.commit(through);
                    shared
                        .backlogged
                        .store(spool.backlogged(), Ordering::Release);
                    if spool.is_empty() {
                        behind = false;
                    } else if !behind {
                        // Rows that came during the insert: their batch's age starts now.
                        waiting_since = Some(Instant::now());
                    }
                    c
                };
                let mut c = shared.counters.lock();
                c.up = true;
                match committed {
                    Ok(n) => {
                        c.inserted += n;
                        c.batches += 1;
                    }
                    Err(e) => tracing::error!("clickhouse: updating the spool failed: {e}"),
                }
                drop(c);
                failed = None;
                backoff.reset();
                if let Some(since) = down_since.take() {
                    tracing::info!(
                        "clickhouse: {} up again after {:.1} s",
                        opts.url,
                        since.elapsed().as_secs_f64()
                    );
                }
            }
            Err(e) => {
                shared.counters.lock().failed += 1;
                resend_until = resend_until.max(position.end());
                if failed.is_none_or(|f| f == position) {
                    failed = Some(position);
                }
                // A failed insert after the failed one breaks the run of batches taken: they
                // go again after it (as retries).
                if failed != Some(position) {
                    if let Some(a) = ahead.take() {
                        resend_until = resend_until.max(a.end());
                    }
                }
                note_failure(shared, &mut down_since, &e);
            }
        }
        // The failed batch goes again after a back-off, once the answers in flight are in.
        if failed.is_some() && inflight.is_empty() {
            shared.pause(backoff.next_delay());
        }
    }
}

/// Removes an unreadable spooled row (everything before it is committed), counts it and
/// says why.
fn drop_unreadable(shared: &Shared, position: Position, e: &RowError) {
    let mut spool = shared.spool.lock();
    let removed = spool.commit(position);
    shared
        .backlogged
        .store(spool.backlogged(), Ordering::Release);
    drop(spool);
    match removed {
        Ok(n) => {
            shared.counters.lock().unreadable += n;
            tracing::error!(
                "clickhouse: spooled row {} is unreadable ({e}): dropped, counted",
                position.start()
            );
        }
        Err(e) => tracing::error!("clickhouse: updating the spool failed: {e}"),
    }
}

/// Counts ClickHouse as down and logs the outage once.
fn note_failure(shared: &Shared, down_since: &mut Option<Instant>, e: &io::Error) {
    shared.counters.lock().up = false;
    if down_since.is_none() {
        *down_since = Some(Instant::now());
        tracing::warn!(
            "clickhouse: inserting into {} at {} failed: {e}; retrying",
            shared.opts.table,
            shared.opts.url
        );
    }
}

impl RecordSink for ClickHouseSink {
    fn write_batch(&mut self, batch: &RecordBatch) -> io::Result<()> {
        let logd = &self.shared.opts.logd;
        let mut spool = self.shared.spool.lock();
        let was_empty = spool.is_empty();
        let mut sequence = self.shared.sequence.lock();
        let (mut refused, mut write_errors) = (0, 0);
        let mut first_err = None;
        for r in batch.iter() {
            let seq = match sequence.take() {
                Ok(s) => s,
                Err(e) => {
                    write_errors += 1;
                    first_err.get_or_insert(e);
                    continue;
                }
            };
            self.row.clear();
            self.encoder.encode(&r, logd, seq, &mut self.row);
            match spool.push(&self.row) {
                Ok(Pushed::Queued) => {}
                Ok(_) => refused += 1,
                Err(e) => {
                    write_errors += 1;
                    first_err.get_or_insert(e);
                }
            }
        }
        drop(sequence);
        if let Err(e) = spool.flush() {
            first_err.get_or_insert(e);
        }
        self.shared
            .backlogged
            .store(spool.backlogged(), Ordering::Release);
        // The inserting thread counts a batch's age from its first row, and wakes for a
        // full batch.
        if was_empty || spool.len() >= self.shared.opts.batch_rows as u64 {
            self.shared.wake.notify_one();
        }
        drop(spool);
        let mut c = self.shared.counters.lock();
        c.received += batch.len() as u64;
        c.write_errors += write_errors;
        drop(c);
        self.unplaced = refused + write_errors;
        first_err.map_or(Ok(()), Err)
    }

    fn unplaced(&self) -> u64 {
        self.unplaced
    }

    fn backlogged(&self) -> bool {
        self.shared.backlogged.load(Ordering::Acquire)
    }

    fn add_stats(&self, stats: &mut crate::store::Stats) {
        let s = self.shared.stats();
        stats.clickhouse_received += s.received;
        stats.clickhouse_inserted += s.inserted;
        stats.clickhouse_queued += s.queued;
        stats.clickhouse_dropped += s.dropped;
        stats.clickhouse_unreadable += s.unreadable;
        stats.clickhouse_batches += s.batches;
        stats.clickhouse_failed += s.failed;
        stats.clickhouse_retried += s.retried;
        stats.clickhouse_recovered += s.recovered;
    }

    fn component(&self) -> Option<&str> {
        Some(CLICKHOUSE)
    }

    /// The graceful stop (or removal on SIGHUP): inserts for at most the stop timeout, then
    /// writes what is left to the spool's files for the next start.
    fn flush(&mut self) -> io::Result<()> {
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        let deadline = Instant::now() + self.shared.opts.stop_timeout;
        *self.shared.deadline.lock() = Some(deadline);
        {
            let _guard = self.shared.spool.lock();
            self.shared.wake.notify_all();
        }
        let _ = self.done.recv_deadline(deadline);
        self.shared.abort.store(true, Ordering::Release);
        {
            let _guard = self.shared.spool.lock();
            self.shared.wake.notify_all();
        }
        // An insert in progress ends within the request timeout; a stop does not wait for it
        // past one more second (a batch it commits later is consistent under the spool's lock).
        if self
            .done
            .recv_timeout(Duration::from_secs(1))
            .is_err_and(|e| e.is_disconnected())
        {
            thread
                .join()
                .map_err(|_| io::Error::other("the clickhouse sink panicked"))?;
        }
        let mut spool = self.shared.spool.lock();
        let left = spool.len();
        spool.persist()?;
        if left > 0 {
            tracing::warn!(
                "clickhouse: {left} rows not inserted into {}, kept in the spool for the next start",
                self.shared.opts.table
            );
        }
        Ok(())
    }
}

/// A question `logc query` asks of the table logd ships into: records (of a host, in a time
/// range, matching a text, the newest N) or, with `counts`, how many per host and severity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Question {
    /// The table.
    pub table: String,
    /// Only this host.
    pub host: Option<String>,
    /// Only at or after this time (seconds and microseconds since the epoch).
    pub since: Option<(i64, u32)>,
    /// Only before this time.
    pub until: Option<(i64, u32)>,
    /// Only messages containing this text.
    pub grep: Option<String>,
    /// Only the newest N records.
    pub last: Option<u64>,
    /// Counts per host and severity instead of records.
    pub counts: bool,
}

/// `s` as a ClickHouse string literal.
///
/// ```
/// assert_eq!(logging_service::clickhouse::quote(r"it's a \ test"), r"'it\'s a \\ test'");
/// ```
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\0' => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// Severity and facility numbers shown as the names the store's lines use.
fn named(column: &str, names: &[&str]) -> String {
    let numbers: Vec<String> = (0..names.len()).map(|n| n.to_string()).collect();
    let names: Vec<String> = names.iter().map(|n| quote(n)).collect();
    format!(
        "transform({column}, [{}], [{}], toString({column})) AS {column}",
        numbers.join(", "),
        names.join(", ")
    )
}

/// The SQL of a [`Question`] (without a `FORMAT`).
///
/// ```
/// use logging_service::clickhouse::{Question, question_sql};
/// let q = Question { table: "logs".into(), host: Some("gw-1".into()), counts: true, ..Default::default() };
/// let sql = question_sql(&q);
/// assert!(sql.contains("WHERE host = 'gw-1'") && sql.contains("GROUP BY host, severity"), "{sql}");
/// ```
pub fn question_sql(q: &Question) -> String {
    let mut filters = Vec::new();
    if let Some(h) = &q.host {
        filters.push(format!("host = {}", quote(h)));
    }
    // The `time` condition uses the table's order; the microseconds make it exact.
    let micros = "(toUInt64(toUInt32(time)) * 1000000 + usec)";
    if let Some((s, us)) = q.since {
        let s = clamp_time(s).0;
        filters.push(format!(
            "time >= toDateTime({s}) AND {micros} >= {}",
            s as u64 * 1_000_000 + u64::from(us)
        ));
    }
    if let Some((s, us)) = q.until {
        let (c, clamped) = clamp_time(s);
        let end = if clamped && s > 0 { c + 1 } else { c };
        filters.push(format!(
            "time <= toDateTime({c}) AND {micros} < {}",
            end as u64 * 1_000_000 + u64::from(if clamped { 0 } else { us })
        ));
    }
    if let Some(g) = &q.grep {
        filters.push(format!("position(message, {}) > 0", quote(g)));
    }
    let filter = if filters.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", filters.join(" AND "))
    };
    let table = &q.table;
    let severities = [
        "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
    ];
    if q.counts {
        return format!(
            "SELECT host, {}, count() AS records FROM {table}{filter} GROUP BY host, severity ORDER BY host, severity",
            named("severity", &severities)
        );
    }
    let facilities = [
        "kern",
        "user",
        "mail",
        "daemon",
        "auth",
        "syslog",
        "lpr",
        "news",
        "uucp",
        "cron",
        "authpriv",
        "ftp",
        "ntp",
        "security",
        "console",
        "solaris-cron",
        "local0",
        "local1",
        "local2",
        "local3",
        "local4",
        "local5",
        "local6",
        "local7",
    ];
    let columns = format!(
        "time, usec, host, app, pid, {}, {}, msgid, sd, message",
        named("facility", &facilities),
        named("severity", &severities)
    );
    match q.last {
        // The newest N, then oldest first.
        Some(n) => format!(
            "SELECT * FROM (SELECT {columns} FROM {table}{filter} ORDER BY time DESC, usec DESC LIMIT {n}) ORDER BY time, usec"
        ),
        None => format!("SELECT {columns} FROM {table}{filter} ORDER BY time, usec"),
    }
}

/// `sql` with `FORMAT format` added when it is a query that returns rows and names no format.
///
/// ```
/// use logging_service::clickhouse::with_format;
/// assert_eq!(with_format("SELECT 1;", "JSONEachRow"), "SELECT 1 FORMAT JSONEachRow");
/// assert_eq!(with_format("select 1 format CSV", "JSONEachRow"), "select 1 format CSV");
/// assert_eq!(with_format("CREATE TABLE t (x UInt8) ENGINE = Memory", "TSV"), "CREATE TABLE t (x UInt8) ENGINE = Memory");
/// ```
pub fn with_format(sql: &str, format: &str) -> String {
    let sql = sql.trim().trim_end_matches(';').trim_end();
    let words: Vec<String> = sql
        .split_whitespace()
        .map(str::to_ascii_uppercase)
        .collect();
    let returns_rows = matches!(
        words.first().map(String::as_str),
        Some("SELECT" | "WITH" | "SHOW" | "DESCRIBE" | "DESC" | "EXISTS")
    );
    let has_format = words.len() >= 2 && words[words.len() - 2] == "FORMAT";
    if returns_rows && !has_format {
        format!("{sql} FORMAT {format}")
    } else {
        sql.to_owned()
    }
}

/// Undoes ClickHouse's TSV escaping of one field, then makes it printable on one line
/// (newlines and tabs as `\n` and `\t`, other control characters as `\xNN`).
fn table_cell(field: &str) -> String {
    let mut out = String::new();
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        let c = if c == '\\' {
            match chars.next() {
                Some('n') => '\n',
                Some('t') => '\t',
                Some('r') => '\r',
                Some('0') => '\0',
                Some('b') => '\x08',
                Some('f') => '\x0c',
                Some(o) => o,
                None => '\\',
            }
        } else {
            c
        };
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// ClickHouse's `TSVWithNames` answer as an aligned table (the last column not padded).
///
/// ```
/// let t = logging_service::clickhouse::render_table("host\tseverity\tn\ngw-1\terr\t12\nmeter-10\tinfo\t3\n");
/// assert_eq!(t, "host      severity  n\ngw-1      err       12\nmeter-10  info      3\n");
/// ```
pub fn render_table(tsv: &str) -> String {
    let rows: Vec<Vec<String>> = tsv
        .lines()
        .map(|l| l.split('\t').map(table_cell).collect())
        .collect();
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; columns];
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            out.push_str(c);
            if i + 1 < r.len() {
                let pad = widths[i] - c.chars().count() + 2;
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    }
    out
}

/// The svc.conf component `ClickHouse`: attaches a [`ClickHouseSink`] to logd's output when
/// it starts, detaches it when it is removed (a SIGHUP with the line gone), draining for the
/// stop timeout and spooling the rest.
///
/// ```text
/// static ClickHouse "-u http://127.0.0.1:8123 -t logs -c"
/// ```
#[derive(Debug)]
pub struct ClickHouseService {
    env: crate::services::ServiceEnv,
    running: Option<(ClickHouseOptions, ClickHouseHandle)>,
}

impl ClickHouseService {
    /// The component, not yet started.
    pub fn new(env: crate::services::ServiceEnv) -> Self {
        ClickHouseService { env, running: None }
    }

    fn options(&self, args: &[String]) -> Result<ClickHouseOptions, ComponentError> {
        ClickHouseOptions::from_args(args, &self.env.data_dir).map_err(ComponentError::new)
    }
}

impl Component for ClickHouseService {
    fn check(&self, args: &[String]) -> Result<(), ComponentError> {
        self.options(args).map(drop)
    }

    fn init(&mut self, args: &[String]) -> Result<(), ComponentError> {
        let opts = self.options(args)?;
        let sink = ClickHouseSink::start(opts.clone()).map_err(|e| {
            ComponentError::io(
                format_args!(
                    "cannot start the sink into {} (spool {})",
                    opts.url,
                    opts.spool_dir.display()
                ),
                &e,
            )
        })?;
        let handle = sink.handle();
        self.env.output.attach(Box::new(sink));
        tracing::info!(
            "clickhouse: shipping records into {} at {}",
            opts.table,
            opts.url
        );
        self.running = Some((opts, handle));
        Ok(())
    }

    fn fini(&mut self) -> Result<(), ComponentError> {
        let Some((opts, _)) = self.running.take() else {
            return Ok(());
        };
        // At logd's stop the sink stays attached: the output's flush drains it after the
        // last connection stored its records.
        if self.env.stopped.load(Ordering::Acquire) {
            return Ok(());
        }
        if let Some(mut sink) = self.env.output.detach(CLICKHOUSE) {
            let flushed = sink.flush();
            self.env.output.retire(sink);
            flushed.map_err(|e| ComponentError::io("cannot spool the rows left", &e))?;
            tracing::info!(
                "clickhouse: no longer shipping into {} at {}",
                opts.table,
                opts.url
            );
        }
        Ok(())
    }

    fn info(&self) -> String {
        match &self.running {
            Some((o, h)) => format!("clickhouse: into {} at {}: {}", o.table, o.url, h.stats()),
            None => "clickhouse: not running".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn u32_of(b: &[u8]) -> u32 {
        u32::from_le_bytes(b.try_into().unwrap())
    }

    proptest! {
        /// Whatever a sender put in a record's fields, its row reads back as exactly the
        /// table's columns, each field as it was (absent ones as `-`).
        #[test]
        fn any_record_is_one_row_of_every_column(
            host in any::<String>(), app in any::<String>(), sd in any::<String>(),
            message in any::<String>(), time in any::<String>(), facility in any::<u8>(),
            seq in any::<u64>(),
        ) {
            let r = LogRecord { time: &time, host: &host, app: &app, pid: "", facility, severity: 3,
                                sent: "-", msgid: "-", structured_data: &sd, message: &message };
            let mut row = Vec::new();
            encode_row(&r, "l", seq, &mut row);
            prop_assert_eq!(read_row(&row), Ok((RowFormat::RowBinary, &row[1..])));
            let c = row_columns(&row).unwrap();
            let dash = |f: &str| if f.is_empty() { b"-".to_vec() } else { f.as_bytes().to_vec() };
            prop_assert_eq!(c[2], &dash(&host)[..]);
            prop_assert_eq!(c[3], &dash(&app)[..]);
            prop_assert_eq!(c[4], b"-");
            prop_assert_eq!((c[5], c[6]), (&[facility][..], &[3u8][..]));
            prop_assert_eq!(c[9], &dash(&sd)[..]);
            prop_assert_eq!(c[10], message.as_bytes());
            prop_assert_eq!(c[11], b"l");
            prop_assert_eq!(u64::from_le_bytes(c[12].try_into().unwrap()), seq);
            prop_assert!(u32_of(c[1]) < 1_000_000);
        }

        /// Any bytes are read as a row or refused with a reason, never a panic; whatever is
        /// taken as RowBinary has exactly the 13 columns.
        #[test]
        fn any_bytes_are_read_or_refused(bytes in proptest::collection::vec(any::<u8>(), 0..200), tag in 0u8..3) {
            let mut row = bytes;
            if tag == 1 {
                row.insert(0, ROW_BINARY_TAG);
            }
            match read_row(&row) {
                Ok((RowFormat::RowBinary, body)) => {
                    prop_assert_eq!(body, &row[1..]);
                    prop_assert!(row_columns(&row).is_ok());
                }
                Ok((_, body)) => prop_assert_eq!(body, &row[..]),
                Err(_) => {}
            }
        }

        /// Any answer renders as a table of one line per line of it, without a control
        /// character.
        #[test]
        fn any_answer_renders_without_control_characters(answer in any::<String>()) {
            let t = render_table(&answer);
            prop_assert_eq!(t.lines().count(), answer.lines().count());
            prop_assert!(!t.chars().any(|c| c.is_control() && c != '\n'));
        }
    }

    fn rec<'a>(time: &'a str, message: &'a str) -> LogRecord<'a> {
        LogRecord {
            time,
            host: "h",
            app: "a",
            pid: "-",
            facility: 1,
            severity: 6,
            sent: "-",
            msgid: "-",
            structured_data: "-",
            message,
        }
    }

    fn time_of(r: &LogRecord<'_>, encoder: &mut RowEncoder) -> (u32, u32) {
        let mut row = Vec::new();
        encoder.encode(r, "l", 1, &mut row);
        let c = row_columns(&row).unwrap();
        (u32_of(c[0]), u32_of(c[1]))
    }

    #[test]
    fn times_outside_datetime_are_clamped() {
        let mut e = RowEncoder::default();
        assert_eq!(
            time_of(&rec("1969-12-31T23:59:59.250000Z", "m"), &mut e),
            (0, 0)
        );
        assert_eq!(
            time_of(&rec("2200-01-01T00:00:00.000001Z", "m"), &mut e),
            (u32::MAX, 0)
        );
        assert_eq!(time_of(&rec("not a time", "m"), &mut e), (0, 0));
        assert_eq!(
            time_of(&rec("2026-11-26T13:30:01.5+05:30", "m"), &mut e),
            (1_795_680_001, 500_000)
        );
    }

    /// The remembered second gives what parsing gives, for the same second, the next one,
    /// and times in other forms in between.
    #[test]
    fn the_remembered_second_agrees_with_parsing() {
        let mut e = RowEncoder::default();
        for time in [
            "2026-11-26T08:00:01.500000Z",
            "2026-11-26T08:00:01.000000Z",
            "2026-11-26T08:00:01.5+00:00",
            "2026-11-26T08:00:01.000007Z",
            "2026-11-26T08:00:02.000007Z",
            "2026-02-30T08:00:02.000007Z",
            "2026-11-26T08:00:02.999999Z",
            "1971-01-01T00:00:00.000001Z",
            "2105-12-31T23:59:59.999999Z",
            "2105-12-31T23:59:59.99999xZ",
        ] {
            let fresh = time_of(&rec(time, "m"), &mut RowEncoder::default());
            assert_eq!(time_of(&rec(time, "m"), &mut e), fresh, "{time}");
            let (secs, micros) = parse_rfc3339(time).unwrap_or((0, 0));
            assert_eq!(fresh, (secs as u32, micros), "{time}");
        }
    }

    /// Rows that are malformed, cut short, oversized or of no known format are refused
    /// with the column or the reason named, and nothing is allocated for a hostile length.
    #[test]
    fn bad_rows_are_refused_with_the_reason() {
        let mut row = Vec::new();
        encode_row(
            &rec("2026-11-26T08:00:01.500000Z", "hello"),
            "l",
            9,
            &mut row,
        );
        assert!(read_row(&row).is_ok());
        // Every prefix of a row is cut short somewhere.
        for n in 1..row.len() {
            assert!(
                matches!(read_row(&row[..n]), Err(RowError::Truncated(_))),
                "{n}: {:?}",
                read_row(&row[..n])
            );
        }
        assert_eq!(read_row(&[]), Err(RowError::Empty));
        assert_eq!(
            read_row(&[ROW_BINARY_TAG]),
            Err(RowError::Truncated("time"))
        );
        let mut long = row.clone();
        long.push(0);
        assert_eq!(read_row(&long), Err(RowError::Trailing(1)));
        // The host's length (after the tag and 8 bytes of time) made huge, or endless.
        let at = 9;
        assert_eq!(row[at], 1, "the host `h`");
        for (length, e) in [
            (
                vec![0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
                RowError::Truncated("host"),
            ),
            (vec![0xff; 10], RowError::BadLength("host")),
            (vec![0x80; 11], RowError::BadLength("host")),
            (
                vec![0x80, 0x80, 0x80, 0x80, 0x10],
                RowError::Truncated("host"),
            ),
        ] {
            let mut bad = row[..at].to_vec();
            bad.extend_from_slice(&length);
            bad.extend_from_slice(&row[at + 1..]);
            assert_eq!(read_row(&bad), Err(e), "{length:x?}");
        }
        // A length that only runs out with the row.
        assert_eq!(
            read_row(&[&row[..at], &[0x80, 0x80][..]].concat()),
            Err(RowError::Truncated("host"))
        );
        assert_eq!(read_row(b"\x02xyz"), Err(RowError::UnknownTag(2)));
        assert_eq!(read_row(b"-\t\n"), Err(RowError::UnknownTag(b'-')));
        // TSV rows of an earlier version.
        let tsv = b"2026-11-26 08:00:01\t500000\th\ta\t-\t1\t6\t-\t-\t-\tm\\tx\tl\t1\n";
        assert_eq!(read_row(tsv), Ok((RowFormat::TabSeparated, &tsv[..])));
        assert_eq!(
            read_row(&tsv[..tsv.len() - 1]),
            Err(RowError::BadTsv("without its newline"))
        );
        let two = [&tsv[..], &tsv[..]].concat();
        assert_eq!(
            read_row(&two),
            Err(RowError::BadTsv("of more than one line"))
        );
        assert_eq!(
            read_row(b"2026-11-26 08:00:01\tm\tx\n"),
            Err(RowError::BadTsv("without the table's 13 columns"))
        );
    }

    #[test]
    fn sequence_numbers_are_never_given_twice_across_restarts() {
        let dir = std::env::temp_dir().join(format!("logd-seq-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut s = Sequence::open(&dir).unwrap();
        let first: Vec<u64> = (0..3).map(|_| s.take().unwrap()).collect();
        assert_eq!(first, [1, 2, 3]);
        // A crash now: the next run starts past the whole reserved block.
        drop(s);
        let mut s = Sequence::open(&dir).unwrap();
        assert_eq!(s.take().unwrap(), 1 + SEQUENCE_BLOCK);
        std::fs::write(dir.join("sequence"), "garbage").unwrap();
        assert!(Sequence::open(&dir).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_arguments_are_refused_with_the_flag_named() {
        let d = Path::new("/tmp");
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        for (bad, flag) in [
            (&["-t", "logs"][..], "-u"),
            (&["-u", "ftp://x:1"], "http://"),
            (&["-u", "https://x:1", "--tls-cert", "c.pem"], "--tls-key"),
            (&["-u", "http://x:1/db?x"], "http://"),
            (&["-u", "http://x:1", "-t", "a.b.c"], "table"),
            (&["-u", "http://x:1", "-t", "l; DROP TABLE x"], "table"),
            (&["-u", "http://x:1", "-r", "0"], "-r"),
            (&["-u", "http://x:1", "-a", "0s"], "-a"),
            (&["-u", "http://x:1", "-m", "1"], "-m"),
            (&["-u", "http://x:1", "-n", "two words"], "logd name"),
            (&["-u", "http://x:1", "-z", "1"], "unknown"),
            (&["-u"], "needs a value"),
        ] {
            let e = ClickHouseOptions::from_args(&args(bad), d).unwrap_err();
            assert!(e.contains(flag), "{bad:?}: {e}");
        }
        let o = ClickHouseOptions::from_args(&args(&["-u", "http://127.0.0.1:8123/"]), d).unwrap();
        assert_eq!((o.table.as_str(), o.create), ("logs", false));
        assert_eq!(o.spool_dir, d.join("clickhouse-spool"));
    }
}
