//! `logc`'s command line: the clap definitions the binary parses and `cargo xtask dist` turns
//! into man pages and shell completions, and their translation into the client library's terms.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::client::{Format, Transport};
use crate::limits::{parse_duration, parse_size};

/// The largest `--size` of `logc bench`: a record must still fit a UDP datagram and logd's
/// largest `--max-frame`.
const MAX_BENCH_SIZE: u64 = 16 << 20;

/// The longest `--timeout` of `logc check`: an hour.
const MAX_CHECK_TIMEOUT: Duration = Duration::from_secs(3600);

const AFTER_HELP: &str = "\
Exit status: 0 on success; 64 usage; 65 a message its format cannot carry;
69 a peer that cannot be reached, or a marker that did not arrive.";

/// Send log records to logd (or any syslog collector), load it, check it end to end.
#[derive(Parser, Debug)]
#[command(name = "logc", version, after_help = AFTER_HELP, arg_required_else_help = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands of `logc`.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Send one message (from the arguments) or one per line of standard input.
    Send(SendArgs),
    /// Send many records as fast as asked and report the rate.
    Bench(BenchArgs),
    /// Send a marker record to HOST:PORT and wait until it is stored under a data directory.
    Check(CheckArgs),
    /// Read the store: the records of a data directory, oldest first (TIME is UTC), filtered.
    Read(ReadArgs),
    /// Ask ClickHouse (where logd ships with --clickhouse): a host's records in a time range,
    /// counts by severity per host, the last N records matching a text, or any SQL.
    Query(QueryArgs),
}

/// `logc query`: which question, against which ClickHouse table, printed how.
#[derive(Args, Debug)]
pub struct QueryArgs {
    /// ClickHouse's HTTP interface.
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8123", value_parser = parse_clickhouse_url)]
    pub clickhouse: String,
    /// The table logd ships into (`NAME` or `DATABASE.NAME`).
    #[arg(long, value_name = "TABLE", default_value = "logs", value_parser = parse_table)]
    pub table: String,
    /// Only this host's records [default: every host].
    #[arg(long)]
    pub host: Option<String>,
    /// Only records at or after this time (RFC 3339) [default: from the first].
    #[arg(long, value_parser = parse_since)]
    pub since: Option<String>,
    /// Only records before this time (RFC 3339) [default: to the last].
    #[arg(long, value_parser = parse_since)]
    pub until: Option<String>,
    /// Only records whose message contains this text (case-sensitive) [default: any].
    #[arg(long, value_name = "TEXT")]
    pub grep: Option<String>,
    /// Only the newest N records (printed oldest first) [default: every record that matches].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub last: Option<u64>,
    /// Instead of records: how many per host and severity (within --host, --since, --until, --grep).
    #[arg(long, conflicts_with = "last")]
    pub counts: bool,
    /// Run this SQL instead (`FORMAT` is added for --output unless the SQL has one) [default: none]
    #[arg(long, value_name = "SQL", conflicts_with_all = ["host", "since", "until", "grep", "last", "counts"])]
    pub sql: Option<String>,
    /// Print an aligned table with a header (`table`) or one JSON object a line (`json`).
    #[arg(long, value_enum, default_value_t = QueryOutput::Table)]
    pub output: QueryOutput,
}

/// How `logc query` prints rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum QueryOutput {
    /// An aligned table with a header.
    Table,
    /// JSON lines (ClickHouse's `JSONEachRow`).
    Json,
}

fn parse_clickhouse_url(s: &str) -> Result<String, String> {
    crate::clickhouse::check_url(s).map(|()| s.to_owned())
}

fn parse_table(s: &str) -> Result<String, String> {
    crate::clickhouse::check_table(s).map(|()| s.to_owned())
}

/// `logc read`: which records of a data directory, and how to print them.
#[derive(Args, Debug)]
pub struct ReadArgs {
    /// logd's data directory.
    #[arg(long, default_value = "logd-data")]
    pub data_dir: PathBuf,
    /// Only this host's records (as the lines name it) [default: every host].
    #[arg(long)]
    pub host: Option<String>,
    /// Only this application's records [default: every application].
    #[arg(long)]
    pub app: Option<String>,
    /// Only records of this severity or more severe (`err` shows emerg to err) [default: all].
    #[arg(long, value_parser = parse_severity)]
    pub severity: Option<u8>,
    /// Only records of this facility [default: every facility].
    #[arg(long, value_parser = parse_facility)]
    pub facility: Option<u8>,
    /// Only records with this RFC 5424 MSGID [default: any].
    #[arg(long)]
    pub msgid: Option<String>,
    /// Only records at or after this time (RFC 3339, any offset: `2026-11-26T08:00:00+05:30`)
    /// [default: from the first].
    #[arg(long, value_parser = parse_since)]
    pub since: Option<String>,
    /// Read the rotated files (`HOST.log.N`) too.
    #[arg(long)]
    pub rotated: bool,
    /// Print the records as store lines (`text`), JSON lines (`json`) or messages only
    /// (escaped as in a line, so that no control character reaches the terminal).
    #[arg(long, value_enum, default_value_t = OutputArg::Text)]
    pub output: OutputArg,
}

/// How `logc read` prints a record.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum OutputArg {
    /// A store line.
    Text,
    /// A JSON line.
    Json,
    /// The message only.
    Message,
}

/// An RFC 3339 time as TIME (UTC), so that it compares with the store's times as text.
fn parse_since(s: &str) -> Result<String, String> {
    crate::record::parse_rfc3339(s)
        .map(|(secs, micros)| crate::record::rfc3339(secs, micros))
        .ok_or_else(|| format!("`{s}` is not an RFC 3339 time (2026-11-26T08:00:00Z)"))
}

/// How records are written and carried.
#[derive(Args, Debug)]
pub struct Wire {
    /// Wire format (ACE's records go to logd's ACE port, 20009 by default).
    #[arg(long, value_enum, default_value_t = FormatArg::Rfc5424)]
    pub format: FormatArg,
    /// Transport: TCP with octet counting, TCP with newline framing, UDP, or RELP (each message
    /// acknowledged once logd stored it).
    #[arg(long, value_enum, default_value_t = TransportArg::Tcp)]
    pub transport: TransportArg,
    /// Over TLS (the TCP transports; logd's --syslog-tls-port, --ace-tls-port).
    #[arg(long, requires = "tls_ca")]
    pub tls: bool,
    /// The CA bundle (PEM) the server's certificate must chain to [default: none; needed by --tls]
    #[arg(long, value_name = "FILE", requires = "tls")]
    pub tls_ca: Option<PathBuf>,
    /// The client certificate chain to show (PEM) [default: none shown]
    #[arg(long, value_name = "FILE", requires_all = ["tls", "tls_key"])]
    pub tls_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM) [default: none]
    #[arg(long, value_name = "FILE", requires_all = ["tls", "tls_cert"])]
    pub tls_key: Option<PathBuf>,
    /// The name the server's certificate must carry [default: the server's address]
    #[arg(long, value_name = "NAME", requires = "tls")]
    pub tls_server_name: Option<String>,
}

impl Wire {
    /// The client library's format and transport.
    pub fn resolve(&self) -> (Format, Transport) {
        let format = match self.format {
            FormatArg::Ace => Format::Ace,
            FormatArg::Rfc5424 => Format::Rfc5424,
            FormatArg::Rfc3164 => Format::Rfc3164,
        };
        let transport = match self.transport {
            TransportArg::Tcp => Transport::Tcp,
            TransportArg::TcpNewline => Transport::TcpNewline,
            TransportArg::Udp => Transport::Udp,
            TransportArg::Relp => Transport::Relp,
        };
        (format, transport)
    }

    /// The TLS settings `--tls` and its companions ask for, for `server`.
    pub fn client_tls(
        &self,
        server: std::net::SocketAddr,
    ) -> Result<Option<crate::client::ClientTls>, crate::tls::TlsError> {
        let Some(ca) = self.tls_ca.as_deref().filter(|_| self.tls) else {
            return Ok(None);
        };
        let name = self
            .tls_server_name
            .clone()
            .unwrap_or_else(|| server.ip().to_string());
        let identity = self.tls_cert.as_deref().zip(self.tls_key.as_deref());
        crate::client::ClientTls::new(ca, &name, identity).map(Some)
    }
}

/// `logc send`.
#[derive(Args, Debug)]
pub struct SendArgs {
    /// Where logd listens (HOST:PORT; a name is resolved).
    #[arg(long, short = 's', value_name = "HOST:PORT", default_value = "127.0.0.1:20514", value_parser = parse_addr)]
    pub server: SocketAddr,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub wire: Wire,
    /// The sending host's name [default: this machine's]
    #[arg(long, value_name = "NAME")]
    pub host: Option<String>,
    /// Application name (syslog APP-NAME or tag).
    #[arg(long, value_name = "NAME", default_value = "logc")]
    pub app: String,
    /// Process id to report [default: logc's own]
    #[arg(long, value_name = "PID")]
    pub pid: Option<u32>,
    /// Severity: a name (emerg, alert, crit, err, warning, notice, info, debug) or 0-7.
    #[arg(long, value_name = "SEVERITY", default_value = "notice", value_parser = parse_severity)]
    pub severity: u8,
    /// Facility: a name (kern, user, mail, daemon, auth, syslog, lpr, news, uucp, cron, authpriv, ftp, local0-7) or 0-23.
    #[arg(long, value_name = "FACILITY", default_value = "user", value_parser = parse_facility)]
    pub facility: u8,
    /// RFC 5424 MSGID, 1 to 32 printable US-ASCII characters [default: none, `-`]
    #[arg(long, value_name = "MSGID")]
    pub msgid: Option<String>,
    /// RFC 5424 STRUCTURED-DATA as on the wire, e.g. '[meta seq="1"]' [default: none, `-`]
    #[arg(long, value_name = "SD")]
    pub sd: Option<String>,
    /// The message; without it, each line of standard input is one message.
    #[arg(value_name = "MESSAGE")]
    pub message: Vec<String>,
}

/// `logc bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Where logd listens (HOST:PORT; a name is resolved).
    #[arg(long, short = 's', value_name = "HOST:PORT", default_value = "127.0.0.1:20514", value_parser = parse_addr)]
    pub server: SocketAddr,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub wire: Wire,
    /// Records to send in all.
    #[arg(long, value_name = "N", default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub count: u64,
    /// Records per second over all connections; 0 for as fast as possible.
    #[arg(long, value_name = "R", default_value_t = 0)]
    pub rate: u64,
    /// Connections sending at once.
    #[arg(long, value_name = "C", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=10_000))]
    pub conns: u16,
    /// Bytes of message text per record (`100`, `4K`).
    #[arg(long, value_name = "SIZE", default_value = "100", value_parser = bench_size)]
    pub size: usize,
}

/// `logc check`.
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Where logd listens (a name is resolved).
    #[arg(value_name = "HOST:PORT", value_parser = parse_addr)]
    pub server: SocketAddr,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub wire: Wire,
    /// logd's data directory, where the marker must appear [default: none: needed unless
    /// `--transport relp`, whose acknowledgement says the marker is stored]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// How long to wait for the marker (`500ms`, `10s`; a plain number is seconds).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = check_timeout)]
    pub timeout: Duration,
}

/// `--format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// ACE's logging protocol (CDR records, as ACE 7 sends them).
    Ace,
    /// Syslog, RFC 5424.
    Rfc5424,
    /// BSD syslog, RFC 3164.
    Rfc3164,
}

/// `--transport`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TransportArg {
    /// TCP, syslog framed by RFC 6587 octet counting.
    Tcp,
    /// TCP, each syslog message ended by a newline.
    TcpNewline,
    /// One UDP datagram per message.
    Udp,
    /// RELP: each message acknowledged by logd once it is stored.
    Relp,
}

pub use crate::line::{FACILITIES, SEVERITIES};

fn by_name_or_number(s: &str, names: &[&str], what: &str) -> Result<u8, String> {
    if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
        return Ok(i as u8);
    }
    match s.parse::<u8>() {
        Ok(n) if usize::from(n) < names.len() => Ok(n),
        _ => Err(format!(
            "unknown {what} {s:?}: use 0-{} or one of {}",
            names.len() - 1,
            names.join(", ")
        )),
    }
}

fn parse_severity(s: &str) -> Result<u8, String> {
    by_name_or_number(s, &SEVERITIES, "severity")
}

fn parse_facility(s: &str) -> Result<u8, String> {
    by_name_or_number(s, &FACILITIES, "facility")
}

fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    s.to_socket_addrs()
        .map_err(|e| format!("`{s}` is not HOST:PORT that resolves: {e}"))?
        .next()
        .ok_or_else(|| format!("`{s}` resolves to no address"))
}

fn bench_size(s: &str) -> Result<usize, String> {
    let n = parse_size(s)?;
    if n <= MAX_BENCH_SIZE {
        Ok(n as usize)
    } else {
        Err(format!("{n} bytes is out of range (0 to {MAX_BENCH_SIZE})"))
    }
}

fn check_timeout(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.is_zero() || d > MAX_CHECK_TIMEOUT {
        return Err(format!(
            "`{s}` is out of range (1ms to {}s)",
            MAX_CHECK_TIMEOUT.as_secs()
        ));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_takes_host_port_as_its_argument_and_durations() {
        let cli = Cli::try_parse_from([
            "logc",
            "check",
            "localhost:20514",
            "--data-dir",
            "d",
            "--timeout=1500ms",
        ])
        .unwrap();
        let Command::Check(a) = cli.command else {
            panic!("not check")
        };
        assert!(a.server.ip().is_loopback());
        assert_eq!(a.server.port(), 20514);
        assert_eq!(a.timeout, Duration::from_millis(1500));
        assert_eq!(a.wire.resolve(), (Format::Rfc5424, Transport::Tcp));
    }

    #[test]
    fn every_bad_value_is_refused_with_its_reason() {
        for (args, reason) in [
            (&["logc", "check", "--data-dir", "d"][..], "HOST:PORT"),
            (&["logc", "check", "nowhere", "--data-dir", "d"], "nowhere"),
            (
                &[
                    "logc",
                    "check",
                    "127.0.0.1:1",
                    "--data-dir",
                    "d",
                    "--timeout",
                    "0",
                ],
                "out of range",
            ),
            (&["logc", "bench", "--count", "0"], "0"),
            (&["logc", "bench", "--size", "1G"], "out of range"),
            (&["logc", "bench", "--conns", "0"], "0"),
            (
                &["logc", "send", "--facility", "local9", "x"],
                "unknown facility",
            ),
            (&["logc", "send", "--transport", "sctp", "x"], "sctp"),
        ] {
            let e = Cli::try_parse_from(args).unwrap_err().to_string();
            assert!(e.contains(reason), "{args:?}: {e}");
        }
        let cli = Cli::try_parse_from(["logc", "bench", "--size", "4K"]).unwrap();
        let Command::Bench(b) = cli.command else {
            panic!("not bench")
        };
        assert_eq!(b.size, 4096);
    }

    /// Every subcommand's options: defaults shown in the help, and a bad value of each
    /// refused naming the option; the table must cover every option clap knows.
    #[test]
    fn every_option_shows_its_default_and_refuses_a_bad_value() {
        use clap::CommandFactory;
        let bad: &[(&str, &str)] = &[
            ("server", "nowhere"),
            ("format", "gelf"),
            ("transport", "sctp"),
            ("pid", "-"),
            ("severity", "loud"),
            ("facility", "local9"),
            ("count", "0"),
            ("rate", "fast"),
            ("conns", "0"),
            ("size", "1G"),
            ("timeout", "0"),
            ("since", "yesterday"),
            ("output", "xml"),
            ("clickhouse", "https://ch:8443"),
            ("table", "logs;drop"),
            ("until", "tomorrow"),
            ("last", "0"),
        ];
        // Text the encoder checks against its format (exit 65), paths, and text ClickHouse
        // gets quoted (or, for --sql, judges itself).
        let free_text = [
            "host",
            "app",
            "msgid",
            "sd",
            "message",
            "data_dir",
            "grep",
            "sql",
            "tls_ca",
            "tls_cert",
            "tls_key",
            "tls_server_name",
        ];
        let mut cmd = Cli::command();
        cmd.build();
        for sub in cmd.get_subcommands_mut() {
            let name = sub.get_name().to_owned();
            let help = sub.render_long_help().to_string();
            for arg in sub.get_arguments() {
                let id = arg.get_id().as_str();
                if !arg.get_action().takes_values() {
                    continue;
                }
                for d in arg.get_default_values() {
                    let shown = format!("[default: {}]", d.to_string_lossy());
                    assert!(help.contains(&shown), "{name} --{id}: {shown}");
                }
                if arg.get_default_values().is_empty()
                    && !arg.is_positional()
                    && !arg.is_required_set()
                {
                    let text = arg.get_help().map(ToString::to_string).unwrap_or_default();
                    assert!(text.contains("[default: "), "{name} --{id}: {text}");
                }
                if free_text.contains(&id) {
                    continue;
                }
                let value = bad
                    .iter()
                    .find(|(b, _)| *b == id)
                    .unwrap_or_else(|| panic!("no bad value tried for {name} {id}"))
                    .1;
                let mut args = vec!["logc".to_owned(), name.clone()];
                if arg.is_positional() {
                    args.push(value.to_owned());
                } else {
                    args.push(format!("--{}={value}", arg.get_long().unwrap()));
                }
                if name == "check" && id != "data_dir" {
                    args.extend(["--data-dir".to_owned(), "d".to_owned()]);
                    if id != "server" {
                        args.push("127.0.0.1:1".to_owned());
                    }
                }
                let e = Cli::try_parse_from(&args).unwrap_err();
                let needle = if arg.is_positional() {
                    "HOST:PORT".to_owned()
                } else {
                    format!("--{}", arg.get_long().unwrap())
                };
                assert!(e.to_string().contains(&needle), "{args:?}: {e}");
            }
        }
    }

    #[test]
    fn names_and_numbers_of_severities_and_facilities() {
        assert_eq!(parse_severity("ERR"), Ok(3));
        assert_eq!(parse_severity("7"), Ok(7));
        assert!(parse_severity("8").is_err());
        assert_eq!(parse_facility("local7"), Ok(23));
        assert_eq!(parse_facility("0"), Ok(0));
    }
}
