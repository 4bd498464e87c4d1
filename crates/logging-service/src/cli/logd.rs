//! `logd`'s command line: the clap definitions the binary parses and `cargo xtask dist`
//! turns into a man page and shell completions, and their translation into a [`LogdConfig`].

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use leader_followers::Concurrency;

use crate::Error;
use crate::forward::{ForwardOptions, Transport};
use crate::limits::{self, parse_duration, parse_size};
use crate::logd::LogdConfig;
use crate::spool::FullPolicy;
use crate::store::{Durability, StoreConfig, StoreFormat};

/// The longest `--fsync <N>ms` interval: an hour.
const MAX_FSYNC_INTERVAL: Duration = Duration::from_secs(3600);

const AFTER_HELP: &str = "\
Signals: SIGTERM or SIGINT stop logd, writing everything read; forwarding drains for
--stop-timeout, then spools the rest; a second SIGTERM or SIGINT stops draining at once.
SIGHUP re-reads the svc.conf (checked whole before anything changes), reopens the files
(after logrotate or a `mv`) and reads the TLS certificates again (established sessions go on).
Forwarding queues --forward-queue bytes in memory, then spools to --spool-dir up to --spool-max,
then applies --spool-full; what is spooled is replayed in order when the upstream is back and
after a restart. Over RELP (--forward relp://HOST:PORT) every record goes to the spool on disk,
and leaves it only once the upstream acknowledged it (and every record before it); at most
--relp-window records are unacknowledged. The RELP listener (--relp-port) acknowledges a
record only once it is stored (and spooled, when forwarding). With --forward-tls the upstream
must show a certificate of --forward-tls-ca naming --forward-tls-server-name; a refused
handshake is logged and counted, and the records wait in the spool.
Exit status: 0 after a clean stop; 1 when records were dropped because they could not be stored;
64 usage, 69 a port or address unavailable, 73 the data directory unusable, 78 a bad svc.conf.";

/// POSA2's networked logging server: ACE and syslog records in, one file per client host out.
#[derive(Parser, Debug)]
#[command(name = "logd", version, after_help = AFTER_HELP)]
pub struct Cli {
    /// TCP port for ACE's logging protocol; 0 picks a free port, `off` disables it.
    #[arg(long, value_name = "PORT", default_value = "20009", value_parser = parse_port)]
    ace_port: Port,
    /// Port for syslog over TCP and UDP; 0 picks a free port, `off` disables it.
    #[arg(long, value_name = "PORT", default_value = "20514", value_parser = parse_port)]
    syslog_port: Port,
    /// TCP port for RELP (rsyslog's acknowledged protocol); 0 picks a free port, `off` disables it.
    #[arg(long, value_name = "PORT", default_value = "off", value_parser = parse_port)]
    relp_port: Port,
    /// Address to listen on (a name such as `localhost` is resolved).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1", value_parser = parse_bind)]
    bind: IpAddr,
    /// Where the per-host files go.
    #[arg(long, value_name = "DIR", default_value = "logd-data")]
    data_dir: PathBuf,
    /// A svc.conf naming the services to run, instead of the port options [default: none, the port options say what runs]
    #[arg(short = 'f', long = "config", value_name = "SVC_CONF", conflicts_with_all = ["ace_port", "syslog_port", "relp_port", "ace_tls_port", "syslog_tls_port", "relp_tls_port"])]
    svc_conf: Option<PathBuf>,
    /// Check the options and the svc.conf as a reload would, start nothing, and exit.
    #[arg(long)]
    pub check_config: bool,
    /// How handlers are dispatched.
    #[arg(long, value_enum, default_value_t = Model::Reactor)]
    concurrency: Model,
    /// Threads of the leader-followers or half-sync-half-async pool [default: one per CPU].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=limits::MAX_THREADS as i64))]
    threads: Option<u16>,
    /// Forward every record upstream: `HOST:PORT` as RFC 5424 with octet counting over TCP,
    /// `relp://HOST:PORT` over RELP (a record leaves the spool once acknowledged) [default: no forwarding]
    #[arg(long, value_name = "[relp://]HOST:PORT", value_parser = parse_upstream)]
    forward: Option<(Transport, SocketAddr)>,
    /// RELP forwarding: records sent and not yet acknowledged, at most.
    #[arg(long, value_name = "N", default_value_t = 128, requires = "forward", value_parser = clap::value_parser!(u32).range(1..=65_536))]
    relp_window: u32,
    /// Bytes of records queued in memory for the upstream before they spill to the spool.
    #[arg(long, value_name = "SIZE", default_value = "8M", requires = "forward", value_parser = size_in(1, 1 << 40))]
    forward_queue: u64,
    /// The forwarder's spool directory [default: DATA_DIR/spool].
    #[arg(long, value_name = "DIR", requires = "forward")]
    spool_dir: Option<PathBuf>,
    /// Bytes the spool may hold on disk.
    #[arg(long, value_name = "SIZE", default_value = "1G", requires = "forward", value_parser = size_in(512, 1 << 50))]
    spool_max: u64,
    /// What a full spool does: `block` (pause reading TCP clients; UDP drops counted),
    /// `drop-oldest` or `drop-newest` (counted).
    #[arg(
        long,
        value_name = "POLICY",
        default_value = "block",
        requires = "forward"
    )]
    spool_full: FullPolicy,
    /// Reconnection back-off: first delay and cap, doubling with jitter (`100ms:30s`).
    #[arg(long, value_name = "BASE:CAP", default_value = "100ms:30s", requires = "forward", value_parser = parse_backoff)]
    forward_backoff: (Duration, Duration),
    /// Forward over TLS: RFC 5425 (syslog over TLS, octet counting), or RELP over TLS with
    /// `relp://`; the upstream's certificate must chain to --forward-tls-ca and name
    /// --forward-tls-server-name.
    #[arg(long, requires_all = ["forward", "forward_tls_ca"])]
    forward_tls: bool,
    /// CA bundle (PEM) the upstream's certificate must chain to [default: none; needed by --forward-tls]
    #[arg(long, value_name = "FILE", requires = "forward_tls")]
    forward_tls_ca: Option<PathBuf>,
    /// The client certificate chain (PEM) shown to an upstream that asks for one [default: none]
    #[arg(long, value_name = "FILE", requires_all = ["forward_tls", "forward_tls_key"])]
    forward_tls_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM) [default: none]
    #[arg(long, value_name = "FILE", requires = "forward_tls_cert")]
    forward_tls_key: Option<PathBuf>,
    /// The name the upstream's certificate must carry [default: the upstream's IP address]
    #[arg(long, value_name = "NAME", requires = "forward_tls")]
    forward_tls_server_name: Option<String>,
    /// The oldest TLS version the forwarder speaks: `1.2` or `1.3`.
    #[arg(long, value_name = "VERSION", default_value = "1.2", value_parser = parse_min_version)]
    forward_tls_min_version: crate::tls::MinVersion,
    /// How long a stop keeps forwarding (and inserting into ClickHouse) before it spools the rest.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = duration_up_to(Duration::from_secs(3600)))]
    stop_timeout: Duration,
    /// When to fdatasync: `none`, `batch` (after each batch), or at most `<N>ms` after a write.
    #[arg(long, value_name = "POLICY", default_value = "none", value_parser = parse_fsync)]
    fsync: Durability,
    /// Rotate a host's file at this size (`16M`, `1G`).
    #[arg(long, value_name = "SIZE", default_value = "16M", value_parser = size_in(1, 1 << 40))]
    rotate_bytes: u64,
    /// Rotated files kept per host.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(0..=1000))]
    keep: u16,
    /// Close a connection after this long without a complete record (`0` never).
    #[arg(long, value_name = "DURATION", default_value = "300s", value_parser = duration_up_to(limits::MAX_IDLE))]
    idle_timeout: Duration,
    /// The largest frame or message accepted, over TCP and UDP.
    #[arg(long, value_name = "SIZE", default_value = "64K", value_parser = size_in(1, limits::MAX_FRAME_LIMIT as u64))]
    max_frame: u64,
    /// Bytes all connections may hold in unfinished frames together.
    #[arg(long, value_name = "SIZE", default_value = "64M", value_parser = size_in(1, limits::MAX_BUFFERED_LIMIT))]
    max_buffered: u64,
    /// Connections waiting to be accepted [default: net.core.somaxconn].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(1..=limits::MAX_BACKLOG as i64))]
    backlog: Option<i32>,
    /// Host files kept open at once (others are reopened on demand).
    #[arg(long, value_name = "N", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    max_open_files: u32,
    /// Distinct host files; records of further hosts go to `_overflow.log`, counted.
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    max_hosts: u32,
    /// Records held in memory while their file cannot be written; beyond, dropped and counted.
    #[arg(long, value_name = "RECORDS", default_value_t = 100_000, value_parser = clap::value_parser!(u32).range(1..))]
    max_pending: u32,
    /// Serve Prometheus metrics at `http://ADDR/metrics` (`127.0.0.1:9120`; port 0 picks one) [default: no metrics]
    #[arg(long, value_name = "ADDR", value_parser = parse_forward)]
    metrics: Option<SocketAddr>,
    /// `SO_RCVBUF` of the syslog UDP socket (`4M`; the kernel caps it at net.core.rmem_max) [default: net.core.rmem_default]
    #[arg(long, value_name = "SIZE", value_parser = size_in(1, i32::MAX as u64))]
    udp_rcvbuf: Option<u64>,
    /// Format of the store's lines: `text` (the documented grammar) or `json` (one object a line).
    #[arg(long, value_enum, default_value_t = StoreFormatArg::Text)]
    format: StoreFormatArg,
    /// Permission bits of the files logd creates, in octal; the directories it creates get the
    /// same bits plus search for every class that may read (0640 gives directories 0750).
    #[arg(long, value_name = "MODE", default_value = "0640", value_parser = parse_mode)]
    file_mode: u32,
    /// Load `dynamic` plugins even if someone other than their owner and root may write
    /// them or their directory (refused by default, like sshd's StrictModes).
    #[arg(long)]
    insecure_plugins: bool,
    /// Run as this user (a name or a number): logd binds its fixed ports first, while root,
    /// then gives up root before it reads any input [default: the user who started it].
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// The group to run as with `--user` [default: the user's primary group].
    #[arg(long, value_name = "GROUP", requires = "user")]
    pub group: Option<String>,
    /// Ship every record into ClickHouse over HTTP (`http://127.0.0.1:8123`), batched,
    /// through a spool under DATA_DIR/clickhouse-spool; the same as a svc.conf line
    /// `static ClickHouse "-u URL ..."` [default: no ClickHouse]
    #[arg(long, value_name = "URL", value_parser = parse_clickhouse_url)]
    clickhouse: Option<String>,
    /// The ClickHouse table, `NAME` or `DATABASE.NAME`.
    #[arg(long, value_name = "TABLE", default_value = "logs", requires = "clickhouse", value_parser = parse_clickhouse_table)]
    clickhouse_table: String,
    /// Create the ClickHouse table if it does not exist (a MergeTree ordered by host and time).
    #[arg(long, requires = "clickhouse")]
    clickhouse_create: bool,
    /// Rows per insert into ClickHouse, at most.
    #[arg(long, value_name = "ROWS", default_value_t = 100_000, requires = "clickhouse", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    clickhouse_batch: u32,
    /// The longest a record waits for its ClickHouse batch to fill.
    #[arg(long, value_name = "DURATION", default_value = "1s", requires = "clickhouse", value_parser = parse_batch_age)]
    clickhouse_age: Duration,
    /// This logd's name in the ClickHouse `logd` column [default: the host name]
    #[arg(long, value_name = "NAME", requires = "clickhouse", value_parser = parse_logd_name)]
    clickhouse_logd: Option<String>,
    /// With an https:// --clickhouse URL: the CA bundle (PEM) ClickHouse's certificate must
    /// chain to [default: /etc/ssl/certs/ca-certificates.crt]
    #[arg(long, value_name = "FILE", requires = "clickhouse", value_parser = parse_directive_path)]
    clickhouse_tls_ca: Option<PathBuf>,
    /// With an https:// --clickhouse URL: the client certificate chain (PEM) shown to ClickHouse [default: none shown]
    #[arg(long, value_name = "FILE", requires_all = ["clickhouse", "clickhouse_tls_key"], value_parser = parse_directive_path)]
    clickhouse_tls_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM) [default: none]
    #[arg(long, value_name = "FILE", requires_all = ["clickhouse", "clickhouse_tls_cert"], value_parser = parse_directive_path)]
    clickhouse_tls_key: Option<PathBuf>,
    /// With an https:// --clickhouse URL: the oldest TLS version spoken to ClickHouse, `1.2`
    /// or `1.3` [default: 1.2]
    #[arg(long, value_name = "VERSION", requires = "clickhouse", value_parser = parse_min_version)]
    clickhouse_tls_min_version: Option<crate::tls::MinVersion>,
    /// TCP port for syslog over TLS (RFC 5425, usually 6514); 0 picks a free port, `off` disables it.
    #[arg(long, value_name = "PORT", default_value = "off", value_parser = parse_port)]
    syslog_tls_port: Port,
    /// TCP port for ACE's format over TLS; 0 picks a free port, `off` disables it.
    #[arg(long, value_name = "PORT", default_value = "off", value_parser = parse_port)]
    ace_tls_port: Port,
    /// TCP port for RELP over TLS; 0 picks a free port, `off` disables it.
    #[arg(long, value_name = "PORT", default_value = "off", value_parser = parse_port)]
    relp_tls_port: Port,
    /// The TLS listeners' certificate chain (PEM, leaf first) [default: none; needed by a TLS port]
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The TLS listeners' private key (PEM) [default: none; needed by a TLS port]
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// CA bundle (PEM) client certificates must chain to [default: none; needed unless --tls-client-auth none]
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_ca: Option<PathBuf>,
    /// Whether TLS clients must show a certificate: `none`, `optional` or `required`.
    #[arg(long, value_name = "MODE", default_value = "none", value_parser = parse_client_auth)]
    tls_client_auth: crate::tls::ClientAuth,
    /// A name a client certificate must carry (`*.sensors.example` for one label in front);
    /// repeat for more [default: any certificate the CA bundle verifies]
    #[arg(long, value_name = "NAME", requires = "tls_cert")]
    tls_permitted_peer: Vec<String>,
    /// The oldest TLS version accepted: `1.2` or `1.3`.
    #[arg(long, value_name = "VERSION", default_value = "1.2", value_parser = parse_min_version)]
    tls_min_version: crate::tls::MinVersion,
    /// Close a TLS connection whose handshake has not finished after this long (`0` never).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = duration_up_to(limits::MAX_IDLE))]
    tls_handshake_timeout: Duration,
    /// Which host a record over TLS is stored under: `message` (the host it names) or
    /// `certificate` (the client certificate's name, else the peer's address).
    #[arg(long, value_name = "SOURCE", default_value = "message", value_parser = crate::tls_conn::parse_host_from)]
    host_from: bool,
    /// Connections one address may have open at once; more are closed at once, counted [default: no cap]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    max_connections_per_peer: Option<u32>,
    /// Records a second one address may send over TCP, over all its connections (a token
    /// bucket one second deep); over it its connections stop reading for a while, counted [default: no limit]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    max_rate_per_peer: Option<u32>,
    /// Format of logd's own log on stderr (`RUST_LOG` sets its level; info by default).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// A port, or `None` for `off`.
type Port = Option<u16>;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Model {
    /// One thread demultiplexing and dispatching every handler.
    Reactor,
    /// TCP ingest on the proactor (io_uring), the rest on the reactor; falls back to the
    /// reactor with a warning where io_uring is missing or refused.
    Proactor,
    /// A pool taking turns on one demultiplexer (`--threads`).
    LeaderFollowers,
    /// A reactor thread queueing work to a pool (`--threads`).
    HalfSyncHalfAsync,
}

/// The format of the store's lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum StoreFormatArg {
    /// The documented line grammar.
    Text,
    /// One JSON object per line, with the same fields.
    Json,
}

/// An octal file mode of at most `0777` (`640`, `0640`, `0o640`) that lets the owner read and
/// write (logd appends to its files and reopens them).
fn parse_mode(s: &str) -> Result<u32, String> {
    let digits = s.strip_prefix("0o").unwrap_or(s);
    let mode = (!digits.is_empty() && digits.len() <= 4)
        .then(|| u32::from_str_radix(digits, 8).ok())
        .flatten()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| format!("`{s}` is not an octal mode from 0 to 0777 (such as 0640)"))?;
    if mode & 0o600 != 0o600 {
        return Err(format!(
            "{mode:04o} does not let logd read and write its own files (the owner needs rw: 06xx)"
        ));
    }
    Ok(mode)
}

/// The format of logd's own log on stderr.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One line per event, colour only on a terminal.
    Text,
    /// One JSON object per line.
    Json,
}

fn parse_client_auth(s: &str) -> Result<crate::tls::ClientAuth, String> {
    s.parse()
}

fn parse_min_version(s: &str) -> Result<crate::tls::MinVersion, String> {
    s.parse()
}

fn parse_port(s: &str) -> Result<Port, String> {
    if s == "off" {
        return Ok(None);
    }
    s.parse::<u16>()
        .map(Some)
        .map_err(|_| format!("`{s}` is not a port (0 to 65535, or `off`)"))
}

fn parse_bind(s: &str) -> Result<IpAddr, String> {
    if let Ok(ip) = s.parse() {
        return Ok(ip);
    }
    (s, 0)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve `{s}`: {e}"))?
        .next()
        .map(|a| a.ip())
        .ok_or_else(|| format!("`{s}` resolves to no address"))
}

fn parse_upstream(s: &str) -> Result<(Transport, SocketAddr), String> {
    match s.strip_prefix("relp://") {
        Some(rest) => Ok((Transport::Relp, parse_forward(rest)?)),
        None => Ok((Transport::Plain, parse_forward(s)?)),
    }
}

fn parse_forward(s: &str) -> Result<SocketAddr, String> {
    s.to_socket_addrs()
        .map_err(|e| format!("`{s}` is not HOST:PORT that resolves: {e}"))?
        .next()
        .ok_or_else(|| format!("`{s}` resolves to no address"))
}

fn parse_backoff(s: &str) -> Result<(Duration, Duration), String> {
    let (base, cap) = s
        .split_once(':')
        .ok_or_else(|| format!("`{s}` is not BASE:CAP (`100ms:30s`)"))?;
    let (base, cap) = (parse_duration(base)?, parse_duration(cap)?);
    if base.is_zero() || base > cap {
        return Err(format!(
            "`{s}`: the base must be above zero and at most the cap"
        ));
    }
    Ok((base, cap))
}

fn parse_fsync(s: &str) -> Result<Durability, String> {
    let d: Durability = s.parse()?;
    if let Durability::Interval(every) = d
        && every > MAX_FSYNC_INTERVAL
    {
        return Err(format!(
            "{}ms is out of range (at most {}ms)",
            every.as_millis(),
            MAX_FSYNC_INTERVAL.as_millis()
        ));
    }
    Ok(d)
}

fn size_in(min: u64, max: u64) -> impl Fn(&str) -> Result<u64, String> + Clone {
    move |s| {
        let n = parse_size(s)?;
        if (min..=max).contains(&n) {
            Ok(n)
        } else {
            Err(format!("{n} bytes is out of range ({min} to {max})"))
        }
    }
}

fn duration_up_to(max: Duration) -> impl Fn(&str) -> Result<Duration, String> + Clone {
    move |s| {
        let d = parse_duration(s)?;
        if d <= max {
            Ok(d)
        } else {
            Err(format!("`{s}` is longer than {}s", max.as_secs()))
        }
    }
}

fn parse_clickhouse_url(s: &str) -> Result<String, String> {
    crate::clickhouse::check_url(s).map(|()| s.to_owned())
}

fn parse_clickhouse_table(s: &str) -> Result<String, String> {
    crate::clickhouse::check_table(s).map(|()| s.to_owned())
}

/// A path that goes into the `ClickHouse` directive in single quotes: any but one holding a
/// quote, a backslash or a line break.
fn parse_directive_path(s: &str) -> Result<PathBuf, String> {
    if s.is_empty() || s.contains(['\'', '"', '\\', '\n', '\r']) {
        return Err(format!(
            "`{s}`: a path without quotes, backslashes or line breaks is expected"
        ));
    }
    Ok(PathBuf::from(s))
}

fn parse_logd_name(s: &str) -> Result<String, String> {
    if !s.is_empty() && s.len() <= 255 && s.chars().all(|c| c.is_ascii_graphic()) {
        Ok(s.to_owned())
    } else {
        Err(format!("`{s}`: expected 1 to 255 printable characters"))
    }
}

fn parse_batch_age(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.is_zero() || d > Duration::from_secs(3600) {
        return Err(format!("`{s}` is not from 1ms to 1h"));
    }
    Ok(d)
}

impl Cli {
    /// The arguments of the `ClickHouse` directive `--clickhouse` stands for.
    fn clickhouse_directive(&self) -> Result<Option<String>, Error> {
        let Some(url) = &self.clickhouse else {
            return Ok(None);
        };
        if self.svc_conf.is_some() {
            return Err(Error::Usage(
                "--clickhouse applies without -f; with a svc.conf, add `static ClickHouse \"-u URL ...\"` to it".into(),
            ));
        }
        let mut args = format!(
            "-u {url} -t {} -r {} -a {}ms -w {}ms",
            self.clickhouse_table,
            self.clickhouse_batch,
            self.clickhouse_age.as_millis(),
            self.stop_timeout.as_millis()
        );
        if self.clickhouse_create {
            args.push_str(" -c");
        }
        if let Some(n) = &self.clickhouse_logd {
            args.push_str(&format!(" -n {n}"));
        }
        if url.starts_with("http://") && self.clickhouse_tls_ca.is_some() {
            return Err(Error::Usage(
                "--clickhouse-tls-ca applies to an https:// --clickhouse URL".into(),
            ));
        }
        if url.starts_with("http://") && self.clickhouse_tls_cert.is_some() {
            return Err(Error::Usage(
                "--clickhouse-tls-cert applies to an https:// --clickhouse URL".into(),
            ));
        }
        if let Some(v) = self.clickhouse_tls_min_version {
            if url.starts_with("http://") {
                return Err(Error::Usage(
                    "--clickhouse-tls-min-version applies to an https:// --clickhouse URL".into(),
                ));
            }
            args.push_str(&format!(" --tls-min-version {v}"));
        }
        let files = [
            ("--tls-ca", &self.clickhouse_tls_ca),
            ("--tls-cert", &self.clickhouse_tls_cert),
            ("--tls-key", &self.clickhouse_tls_key),
        ];
        for (flag, path) in files {
            if let Some(p) = path {
                // Single quotes: the svc.conf takes the path literally (no `'` in it, see
                // `parse_directive_path`).
                args.push_str(&format!(" {flag} '{}'", p.display()));
            }
        }
        Ok(Some(args))
    }

    /// The server's configuration; an option that does not apply is a usage error.
    pub fn config(&self) -> Result<LogdConfig, Error> {
        let threads = self.threads.map(usize::from);
        let concurrency = match (self.concurrency, threads) {
            (Model::Reactor, Some(_)) => {
                return Err(Error::Usage(
                    "--threads applies to leader-followers and half-sync-half-async, not to the reactor"
                        .into(),
                ));
            }
            (Model::Reactor | Model::Proactor, None) => Concurrency::Reactor,
            (Model::Proactor, Some(_)) => {
                return Err(Error::Usage(
                    "--threads applies to leader-followers and half-sync-half-async, not to the proactor"
                        .into(),
                ));
            }
            (Model::LeaderFollowers, n) => Concurrency::LeaderFollowers {
                threads: n.unwrap_or_else(cpus),
            },
            (Model::HalfSyncHalfAsync, n) => {
                let spec = format!("half-sync-half-async:{}", n.unwrap_or_else(cpus));
                spec.parse().map_err(|e| Error::Usage(format!("{e}")))?
            }
        };
        if self.udp_rcvbuf.is_some() && self.syslog_port.is_none() && self.svc_conf.is_none() {
            return Err(Error::Usage(
                "--udp-rcvbuf applies to the syslog UDP socket, and --syslog-port is off".into(),
            ));
        }
        if self.max_buffered < self.max_frame {
            return Err(Error::Usage(format!(
                "--max-buffered {} is less than --max-frame {} (one frame must fit)",
                self.max_buffered, self.max_frame
            )));
        }
        let store = StoreConfig {
            rotate_bytes: self.rotate_bytes,
            keep: usize::from(self.keep),
            durability: self.fsync,
            max_open_files: self.max_open_files as usize,
            max_hosts: self.max_hosts as usize,
            max_pending: self.max_pending as usize,
            format: match self.format {
                StoreFormatArg::Text => StoreFormat::Text,
                StoreFormatArg::Json => StoreFormat::Json,
            },
            file_mode: self.file_mode,
            ..StoreConfig::new(&self.data_dir)
        };
        let cfg = LogdConfig {
            bind: self.bind,
            ace_port: self.ace_port,
            syslog_port: self.syslog_port,
            relp_port: self.relp_port,
            svc_conf: self.svc_conf.clone(),
            store,
            concurrency,
            proactor: self.concurrency == Model::Proactor,
            proactor_ring_entries: crate::proactive::DEFAULT_RING_ENTRIES,
            forward: self.forward.map(|(_, a)| a),
            forwarding: ForwardOptions {
                transport: self.forward.map_or(Transport::Plain, |(t, _)| t),
                relp_window: self.relp_window as usize,
                queue_bytes: self.forward_queue,
                spool_dir: self.spool_dir.clone(),
                spool_max: self.spool_max,
                spool_full: self.spool_full,
                backoff_base: self.forward_backoff.0,
                backoff_cap: self.forward_backoff.1,
                stop_timeout: self.stop_timeout,
                tls: self
                    .forward_tls
                    .then(|| crate::forward_tls::ForwardTlsOptions {
                        ca: self.forward_tls_ca.clone().unwrap_or_default(),
                        identity: self
                            .forward_tls_cert
                            .clone()
                            .zip(self.forward_tls_key.clone()),
                        server_name: self.forward_tls_server_name.clone(),
                        min_version: self.forward_tls_min_version,
                    }),
                ..ForwardOptions::default()
            },
            idle: self.idle_timeout,
            max_frame: self.max_frame as usize,
            max_buffered: self.max_buffered as usize,
            backlog: self.backlog.unwrap_or_else(limits::default_backlog),
            metrics: self.metrics,
            udp_rcvbuf: self.udp_rcvbuf.map(|n| n as usize),
            plugin_trust: if self.insecure_plugins {
                component_configurator::PluginTrust::Insecure
            } else {
                component_configurator::PluginTrust::Strict
            },
            sockets: Default::default(),
            clickhouse: self.clickhouse_directive()?,
            security: crate::tls_conn::SecurityOptions {
                tls: self.tls_cert.as_ref().map(|cert| crate::tls::TlsOptions {
                    cert: cert.clone(),
                    key: self.tls_key.clone().unwrap_or_default(),
                    ca: self.tls_ca.clone(),
                    client_auth: self.tls_client_auth,
                    permitted_peers: self.tls_permitted_peer.clone(),
                    min_version: self.tls_min_version,
                }),
                host_from_certificate: self.host_from,
                handshake_timeout: self.tls_handshake_timeout,
                ace_tls_port: self.ace_tls_port,
                syslog_tls_port: self.syslog_tls_port,
                relp_tls_port: self.relp_tls_port,
                max_connections_per_peer: self.max_connections_per_peer,
                max_rate_per_peer: self.max_rate_per_peer,
            },
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(2, usize::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_cli_defaults_are_the_library_defaults() {
        let cli = Cli::try_parse_from(["logd"]).unwrap();
        let ours = cli.config().unwrap();
        let lib = LogdConfig {
            store: StoreConfig::new("logd-data"),
            ..LogdConfig::default()
        };
        assert_eq!(ours.bind, lib.bind);
        assert_eq!(
            (ours.ace_port, ours.syslog_port, ours.relp_port),
            (lib.ace_port, lib.syslog_port, lib.relp_port)
        );
        assert_eq!((ours.idle, ours.max_frame), (lib.idle, lib.max_frame));
        assert_eq!(ours.max_buffered, lib.max_buffered);
        let (a, b) = (&ours.store, &lib.store);
        assert_eq!((a.rotate_bytes, a.keep), (b.rotate_bytes, b.keep));
        assert_eq!(a.durability, b.durability);
        assert_eq!(
            (a.max_open_files, a.max_hosts, a.max_pending),
            (b.max_open_files, b.max_hosts, b.max_pending)
        );
        assert_eq!(ours.concurrency, Concurrency::Reactor);
        assert_eq!((a.format, a.file_mode), (b.format, b.file_mode));
    }

    #[test]
    fn file_modes_are_octal_and_keep_the_owner_rw() {
        for (arg, mode) in [
            ("0640", 0o640),
            ("600", 0o600),
            ("0o644", 0o644),
            ("0777", 0o777),
        ] {
            let cli = Cli::try_parse_from(["logd", "--file-mode", arg]).unwrap();
            assert_eq!(cli.config().unwrap().store.file_mode, mode, "{arg}");
        }
        for bad in [
            "", "0888", "1777", "07777", "abc", "0400", "0240", "-1", "0o",
        ] {
            assert!(
                Cli::try_parse_from(["logd", "--file-mode", bad]).is_err(),
                "{bad}"
            );
        }
        let cli = Cli::try_parse_from(["logd", "--format", "json"]).unwrap();
        assert_eq!(cli.config().unwrap().store.format, StoreFormat::Json);
    }

    #[test]
    fn options_that_do_not_apply_are_refused() {
        let cli = Cli::try_parse_from(["logd", "--threads", "4"]).unwrap();
        assert!(matches!(cli.config(), Err(Error::Usage(_))));
        let e = Cli::try_parse_from(["logd", "-f", "x.conf", "--ace-port", "1"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::ArgumentConflict);
        let cli =
            Cli::try_parse_from(["logd", "--max-frame", "1M", "--max-buffered", "64K"]).unwrap();
        assert!(matches!(cli.config(), Err(Error::Usage(_))));
    }

    #[test]
    fn the_clickhouse_tls_minimum_goes_into_the_component_line() {
        let parse = |url: &str| {
            Cli::try_parse_from([
                "logd",
                "--clickhouse",
                url,
                "--clickhouse-tls-min-version",
                "1.3",
            ])
            .unwrap()
            .config()
        };
        let line = parse("https://ch:8443").unwrap().clickhouse.unwrap();
        assert!(line.ends_with(" --tls-min-version 1.3"), "{line}");
        assert!(matches!(parse("http://ch:8123"), Err(Error::Usage(_))));
    }

    #[test]
    fn the_help_shows_every_default() {
        let mut cmd = Cli::command();
        let help = cmd.render_long_help().to_string();
        for arg in cmd.get_arguments() {
            let name = arg.get_id();
            if !arg.get_action().takes_values() {
                continue; // a flag: off unless given
            }
            for d in arg.get_default_values() {
                let shown = format!("[default: {}]", d.to_string_lossy());
                assert!(help.contains(&shown), "--{name}: {shown} not in\n{help}");
            }
            // An option without a value clap could show says in its help what happens
            // without it.
            if arg.get_default_values().is_empty() && !arg.is_positional() {
                let text = arg.get_help().map(ToString::to_string).unwrap_or_default();
                assert!(text.contains("[default: "), "--{name}: {text}");
            }
        }
    }

    /// Every option that takes a value refuses a bad one with a usage error naming the
    /// option; the table must cover every such option of the command (clap's own list).
    #[test]
    fn every_option_refuses_a_bad_value_and_names_itself() {
        let bad: &[(&str, &[&str])] = &[
            ("ace_port", &["--ace-port", "99999"]),
            ("syslog_port", &["--syslog-port", "twenty"]),
            ("relp_port", &["--relp-port", "x"]),
            (
                "relp_window",
                &["--forward=relp://127.0.0.1:1", "--relp-window", "0"],
            ),
            ("bind", &["--bind", "no.such.host.invalid"]),
            ("concurrency", &["--concurrency", "threads-galore"]),
            (
                "threads",
                &["--concurrency", "leader-followers", "--threads", "0"],
            ),
            ("forward", &["--forward", "collector"]),
            (
                "forward_queue",
                &["--forward=127.0.0.1:1", "--forward-queue", "0"],
            ),
            (
                "spool_max",
                &["--forward=127.0.0.1:1", "--spool-max", "511"],
            ),
            (
                "spool_full",
                &["--forward=127.0.0.1:1", "--spool-full", "sometimes"],
            ),
            (
                "forward_backoff",
                &["--forward=127.0.0.1:1", "--forward-backoff", "5s"],
            ),
            ("stop_timeout", &["--stop-timeout", "2h"]),
            ("fsync", &["--fsync", "sometimes"]),
            ("rotate_bytes", &["--rotate-bytes", "0"]),
            ("keep", &["--keep", "1001"]),
            ("idle_timeout", &["--idle-timeout", "5 fortnights"]),
            ("max_frame", &["--max-frame", "0"]),
            ("max_buffered", &["--max-buffered", "16Q"]),
            ("backlog", &["--backlog", "0"]),
            ("max_open_files", &["--max-open-files", "0"]),
            ("max_hosts", &["--max-hosts=-1"]),
            ("max_pending", &["--max-pending", "0"]),
            ("metrics", &["--metrics", "9120"]),
            ("udp_rcvbuf", &["--udp-rcvbuf", "0"]),
            ("format", &["--format", "xml"]),
            ("file_mode", &["--file-mode", "0400"]),
            ("log_format", &["--log-format", "xml"]),
            ("clickhouse", &["--clickhouse", "ftp://ch:21"]),
            (
                "clickhouse_table",
                &["--clickhouse=http://ch:8123", "--clickhouse-table", "a;b"],
            ),
            (
                "clickhouse_batch",
                &["--clickhouse=http://ch:8123", "--clickhouse-batch", "0"],
            ),
            (
                "clickhouse_age",
                &["--clickhouse=http://ch:8123", "--clickhouse-age", "0s"],
            ),
            (
                "clickhouse_logd",
                &["--clickhouse=http://ch:8123", "--clickhouse-logd", "a b"],
            ),
            (
                "clickhouse_tls_ca",
                &["--clickhouse=https://ch:8443", "--clickhouse-tls-ca", "a'b"],
            ),
            (
                "clickhouse_tls_cert",
                &[
                    "--clickhouse=https://ch:8443",
                    "--clickhouse-tls-cert=\"c\"",
                    "--clickhouse-tls-key=k",
                ],
            ),
            (
                "clickhouse_tls_key",
                &[
                    "--clickhouse=https://ch:8443",
                    "--clickhouse-tls-cert=c",
                    "--clickhouse-tls-key=k\\",
                ],
            ),
            ("syslog_tls_port", &["--syslog-tls-port", "x"]),
            ("ace_tls_port", &["--ace-tls-port", "port"]),
            ("relp_tls_port", &["--relp-tls-port", "65536"]),
            ("tls_client_auth", &["--tls-client-auth", "always"]),
            ("tls_min_version", &["--tls-min-version", "1.1"]),
            (
                "clickhouse_tls_min_version",
                &[
                    "--clickhouse=https://ch:8443",
                    "--clickhouse-tls-min-version",
                    "1.1",
                ],
            ),
            (
                "forward_tls_min_version",
                &["--forward-tls-min-version", "1.0"],
            ),
            (
                "tls_handshake_timeout",
                &["--tls-handshake-timeout", "soon"],
            ),
            ("host_from", &["--host-from", "dns"]),
            (
                "max_connections_per_peer",
                &["--max-connections-per-peer", "0"],
            ),
            ("max_rate_per_peer", &["--max-rate-per-peer", "0"]),
        ];
        // Any path parses; what cannot be used is refused at the start (73, 78). A user or
        // group is looked up at the start too (64, naming --user).
        let free_text = [
            "data_dir",
            "svc_conf",
            "spool_dir",
            "user",
            "group",
            "tls_cert",
            "tls_key",
            "tls_ca",
            "tls_permitted_peer",
            "forward_tls_ca",
            "forward_tls_cert",
            "forward_tls_key",
            "forward_tls_server_name",
        ];
        let cmd = Cli::command();
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if !arg.get_action().takes_values() || free_text.contains(&id) {
                continue;
            }
            assert!(
                bad.iter().any(|(name, _)| *name == id),
                "no bad value tried for {id}"
            );
        }
        for (id, args) in bad {
            let flag = format!("--{}", id.replace('_', "-"));
            let message =
                match Cli::try_parse_from(std::iter::once("logd").chain(args.iter().copied())) {
                    Err(e) => {
                        assert_eq!(e.exit_code(), 2, "clap's usage error (logd maps it to 64)");
                        e.to_string()
                    }
                    Ok(cli) => match cli.config() {
                        Err(Error::Usage(m)) => m,
                        other => panic!("{args:?} accepted: {other:?}"),
                    },
                };
            assert!(message.contains(&flag), "{args:?}: {message}");
        }
    }

    #[test]
    fn udp_rcvbuf_without_a_syslog_listener_does_not_apply() {
        let cli = Cli::try_parse_from(["logd", "--syslog-port=off", "--udp-rcvbuf=1M"]).unwrap();
        let Err(Error::Usage(m)) = cli.config() else {
            panic!("accepted")
        };
        assert!(
            m.contains("--udp-rcvbuf") && m.contains("--syslog-port"),
            "{m}"
        );
        // With a svc.conf, its Syslog_Logging listeners take the buffer size.
        let cli = Cli::try_parse_from(["logd", "-f", "svc.conf", "--udp-rcvbuf=1M"]).unwrap();
        assert_eq!(cli.config().unwrap().udp_rcvbuf, Some(1 << 20));
    }

    #[test]
    fn sizes_durations_names_and_equals_signs() {
        let cli = Cli::try_parse_from([
            "logd",
            "--ace-port=0",
            "--rotate-bytes=1G",
            "--idle-timeout",
            "90s",
            "--bind",
            "localhost",
            "--concurrency",
            "leader-followers",
            "--threads",
            "3",
        ])
        .unwrap();
        let cfg = cli.config().unwrap();
        assert_eq!(cfg.ace_port, Some(0));
        assert_eq!(cfg.store.rotate_bytes, 1 << 30);
        assert_eq!(cfg.idle, Duration::from_secs(90));
        assert!(cfg.bind.is_loopback());
        assert_eq!(cfg.concurrency, Concurrency::LeaderFollowers { threads: 3 });
        let cli = Cli::try_parse_from([
            "logd",
            "--relp-port=0",
            "--forward=relp://localhost:2514",
            "--relp-window=8",
        ])
        .unwrap();
        let cfg = cli.config().unwrap();
        assert_eq!(cfg.relp_port, Some(0));
        assert_eq!(cfg.forward.map(|a| a.port()), Some(2514));
        assert_eq!(cfg.forwarding.transport, Transport::Relp);
        assert_eq!(cfg.forwarding.relp_window, 8);
        let cli = Cli::try_parse_from(["logd", "--forward=localhost:514"]).unwrap();
        assert_eq!(cli.config().unwrap().forwarding.transport, Transport::Plain);
        for bad in [
            &["logd", "--max-frame", "0"][..],
            &["logd", "--idle-timeout", "18446744073709551615"],
            &["logd", "--threads", "100000"],
            &["logd", "--rotate-bytes", "16Q"],
            &["logd", "--forward", "relp://"],
        ] {
            assert!(Cli::try_parse_from(bad).is_err(), "{bad:?}");
        }
    }
}
