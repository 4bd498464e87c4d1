//! `logc`: the logging service's client. It sends records to logd (or any syslog collector),
//! loads it for a benchmark, and checks end to end that a record is stored.
#![forbid(unsafe_code)]

use std::io::BufRead;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use logging_service::client::{self, BenchConfig, Client, Format, Message, Transport};
use pattern_core::ErrorChain;

/// Exit status for a peer that cannot be reached or a record that did not arrive (sysexits' EX_UNAVAILABLE).
const EXIT_UNAVAILABLE: u8 = 69;
/// Exit status for input that cannot be sent as asked (sysexits' EX_DATAERR).
const EXIT_DATA: u8 = 65;

#[derive(Parser, Debug)]
#[command(
    name = "logc",
    version,
    about = "Send log records to logd, load it, check it end to end"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Send one message (from the arguments) or one per line of standard input.
    Send(SendArgs),
    /// Send many records as fast as asked and report the rate.
    Bench(BenchArgs),
    /// Send a marker record and wait until it is stored under a data directory.
    Check(CheckArgs),
    /// Read the store: the records of a data directory, oldest first (TIME is UTC), filtered.
    Read(ReadArgs),
}

#[derive(Args, Debug)]
struct ReadArgs {
    /// logd's data directory.
    #[arg(long, default_value = "logd-data")]
    data_dir: PathBuf,
    /// Only this host's records (as the lines name it).
    #[arg(long)]
    host: Option<String>,
    /// Only this application's records.
    #[arg(long)]
    app: Option<String>,
    /// Only records of this severity or more severe (`err` shows emerg to err).
    #[arg(long, value_parser = parse_severity)]
    severity: Option<u8>,
    /// Only records of this facility.
    #[arg(long, value_parser = parse_facility)]
    facility: Option<u8>,
    /// Only records with this RFC 5424 MSGID.
    #[arg(long)]
    msgid: Option<String>,
    /// Only records at or after this time (RFC 3339, any offset: `2026-11-26T08:00:00+05:30`).
    #[arg(long, value_parser = parse_since)]
    since: Option<String>,
    /// Read the rotated files (`HOST.log.N`) too.
    #[arg(long)]
    rotated: bool,
    /// Print the records as store lines (`text`), JSON lines (`json`) or messages only
    /// (escaped as in a line, so that no control character reaches the terminal).
    #[arg(long, value_enum, default_value_t = OutputArg::Text)]
    output: OutputArg,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum OutputArg {
    Text,
    Json,
    Message,
}

/// An RFC 3339 time as TIME (UTC), so that it compares with the store's times as text.
fn parse_since(s: &str) -> Result<String, String> {
    logging_service::record::parse_rfc3339(s)
        .map(|(secs, micros)| logging_service::record::rfc3339(secs, micros))
        .ok_or_else(|| format!("`{s}` is not an RFC 3339 time (2026-11-26T08:00:00Z)"))
}

#[derive(Args, Debug)]
struct Target {
    /// Where logd listens (HOST:PORT); a name is resolved.
    #[arg(long, short = 's', default_value = "127.0.0.1:20514")]
    server: String,
    /// Wire format (ACE's records go to logd's ACE port, 20009 by default).
    #[arg(long, value_enum, default_value_t = FormatArg::Rfc5424)]
    format: FormatArg,
    /// Transport: TCP with octet counting, TCP with newline framing, or UDP.
    #[arg(long, value_enum, default_value_t = TransportArg::Tcp)]
    transport: TransportArg,
}

#[derive(Args, Debug)]
struct SendArgs {
    #[command(flatten)]
    target: Target,
    /// The sending host's name [default: this machine's]
    #[arg(long)]
    host: Option<String>,
    /// Application name (syslog APP-NAME or tag).
    #[arg(long, default_value = "logc")]
    app: String,
    /// Process id to report [default: logc's own]
    #[arg(long)]
    pid: Option<u32>,
    /// Severity: a name (emerg, alert, crit, err, warning, notice, info, debug) or 0-7.
    #[arg(long, default_value = "notice", value_parser = parse_severity)]
    severity: u8,
    /// Facility: a name (kern, user, mail, daemon, auth, syslog, lpr, news, uucp, cron, authpriv, ftp, local0-7) or 0-23.
    #[arg(long, default_value = "user", value_parser = parse_facility)]
    facility: u8,
    /// RFC 5424 MSGID.
    #[arg(long)]
    msgid: Option<String>,
    /// RFC 5424 STRUCTURED-DATA as on the wire, e.g. '[meta seq="1"]'.
    #[arg(long)]
    sd: Option<String>,
    /// The message; without it, each line of standard input is one message.
    message: Vec<String>,
}

#[derive(Args, Debug)]
struct BenchArgs {
    #[command(flatten)]
    target: Target,
    /// Records to send in all.
    #[arg(long, default_value_t = 100_000)]
    count: u64,
    /// Records per second over all connections; 0 for as fast as possible.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Connections sending at once.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=10_000))]
    conns: u16,
    /// Bytes of message text per record.
    #[arg(long, default_value_t = 100)]
    size: usize,
}

#[derive(Args, Debug)]
struct CheckArgs {
    #[command(flatten)]
    target: Target,
    /// logd's data directory, where the marker must appear.
    #[arg(long)]
    data_dir: PathBuf,
    /// How long to wait for the marker, in seconds.
    #[arg(long, default_value_t = 10)]
    timeout: u64,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum FormatArg {
    Ace,
    Rfc5424,
    Rfc3164,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum TransportArg {
    Tcp,
    TcpNewline,
    Udp,
}

use logging_service::line::{FACILITIES, SEVERITIES};

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

impl Target {
    fn resolve(&self) -> Result<(SocketAddr, Format, Transport), String> {
        let addr = self
            .server
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {}: {e}", self.server))?
            .next()
            .ok_or_else(|| format!("{} resolves to no address", self.server))?;
        let format = match self.format {
            FormatArg::Ace => Format::Ace,
            FormatArg::Rfc5424 => Format::Rfc5424,
            FormatArg::Rfc3164 => Format::Rfc3164,
        };
        let transport = match self.transport {
            TransportArg::Tcp => Transport::Tcp,
            TransportArg::TcpNewline => Transport::TcpNewline,
            TransportArg::Udp => Transport::Udp,
        };
        Ok((addr, format, transport))
    }
}

fn fail(code: u8, msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("logc: {msg}");
    ExitCode::from(code)
}

fn client_failure(e: &client::ClientError) -> ExitCode {
    let code = match e {
        client::ClientError::Io { .. } | client::ClientError::NotStored { .. } => EXIT_UNAVAILABLE,
        _ => EXIT_DATA,
    };
    fail(code, ErrorChain(e))
}

fn send(args: SendArgs) -> ExitCode {
    let (addr, format, transport) = match args.target.resolve() {
        Ok(t) => t,
        Err(e) => return fail(EXIT_UNAVAILABLE, e),
    };
    let template = {
        let mut m = Message::new("");
        if let Some(h) = args.host {
            m.host = h;
        }
        m.app = args.app;
        m.pid = args.pid.or(m.pid);
        m.severity = args.severity;
        m.facility = args.facility;
        m.msgid = args.msgid;
        m.structured_data = args.sd;
        m
    };
    let mut client = match Client::connect(addr, format, transport) {
        Ok(c) => c,
        Err(e) => return client_failure(&e),
    };
    let mut one = |text: String| {
        let mut m = template.clone();
        m.text = text;
        client.send(&m)
    };
    let result = if args.message.is_empty() {
        std::io::stdin()
            .lock()
            .lines()
            .map_while(Result::ok)
            .try_for_each(&mut one)
    } else {
        one(args.message.join(" "))
    };
    if let Err(e) = result {
        return client_failure(&e);
    }
    match client.finish(Duration::from_secs(30)) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => client_failure(&e),
    }
}

fn bench(args: BenchArgs) -> ExitCode {
    let (addr, format, transport) = match args.target.resolve() {
        Ok(t) => t,
        Err(e) => return fail(EXIT_UNAVAILABLE, e),
    };
    let cfg = BenchConfig {
        count: args.count,
        rate: args.rate,
        conns: usize::from(args.conns),
        format,
        transport,
        size: args.size,
    };
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let report = client::bench(addr, &cfg, |n| {
        if tty {
            eprint!("\rlogc bench: {n} of {} sent", cfg.count);
        }
    });
    if tty {
        eprintln!();
    }
    match report {
        Ok(r) => {
            println!(
                "sent {} records in {:.3} s over {} connection(s): {:.0} records/s, {} errors; latency: not measured ({:?} does not acknowledge)",
                r.sent,
                r.elapsed.as_secs_f64(),
                cfg.conns,
                r.rate(),
                r.errors,
                transport
            );
            if r.errors > 0 {
                ExitCode::from(EXIT_UNAVAILABLE)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => client_failure(&e),
    }
}

fn check(args: CheckArgs) -> ExitCode {
    let (addr, format, transport) = match args.target.resolve() {
        Ok(t) => t,
        Err(e) => return fail(EXIT_UNAVAILABLE, e),
    };
    match client::check(
        addr,
        format,
        transport,
        &args.data_dir,
        Duration::from_secs(args.timeout),
    ) {
        Ok(took) => {
            println!(
                "ok: a marker sent to {addr} was stored under {} after {} ms",
                args.data_dir.display(),
                took.as_millis()
            );
            ExitCode::SUCCESS
        }
        Err(e) => client_failure(&e),
    }
}

/// Exit status for a store that cannot be read (sysexits' EX_NOINPUT).
const EXIT_NO_INPUT: u8 = 66;

fn read(args: ReadArgs) -> ExitCode {
    use std::io::Write;
    let files = match logging_service::store::store_files(&args.data_dir, args.rotated) {
        Ok(f) => f,
        Err(e) => return fail(EXIT_NO_INPUT, format!("{}: {e}", args.data_dir.display())),
    };
    let mut records = Vec::new();
    for (_, path) in files {
        match logging_service::store::read_file(&path) {
            Ok(r) => records.extend(r),
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => return fail(EXIT_DATA, e),
            Err(e) => return fail(EXIT_NO_INPUT, format!("{}: {e}", path.display())),
        }
    }
    records.retain(|r| {
        args.host.as_ref().is_none_or(|h| &r.host == h)
            && args.app.as_ref().is_none_or(|a| r.app.as_ref() == Some(a))
            && args.severity.is_none_or(|s| r.severity <= s)
            && args.facility.is_none_or(|f| r.facility == f)
            && args
                .msgid
                .as_ref()
                .is_none_or(|m| r.msgid.as_ref() == Some(m))
            && args.since.as_ref().is_none_or(|t| &r.time >= t)
    });
    // TIME is UTC with a fixed width: as text it sorts in time order.
    records.sort_by(|a, b| a.time.cmp(&b.time));
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut line = String::new();
    for r in &records {
        line.clear();
        match args.output {
            OutputArg::Text => r.as_record().write_line(&mut line),
            OutputArg::Json => r.as_record().write_json(&mut line),
            OutputArg::Message => {
                logging_service::line::push_escaped(&mut line, &r.message);
                line.push('\n');
            }
        }
        if out.write_all(line.as_bytes()).is_err() {
            // A closed pipe (`| head`) ends the output quietly.
            return ExitCode::SUCCESS;
        }
    }
    let _ = out.flush();
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Send(a) => send(a),
        Command::Bench(a) => bench(a),
        Command::Check(a) => check(a),
        Command::Read(a) => read(a),
    }
}
