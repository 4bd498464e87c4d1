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
}

#[derive(Args, Debug)]
struct Target {
    /// Where logd listens (HOST:PORT); a name is resolved.
    #[arg(long, short = 's', default_value = "127.0.0.1:20514")]
    server: String,
    /// Wire format (ACE's records go to logd's ACE port, 20009 by default).
    #[arg(long, value_enum, default_value_t = FormatArg::Rfc5424)]
    format: FormatArg,
    /// Transport: TCP with octet counting, TCP with newline framing, UDP, or RELP (acknowledged).
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
    /// logd's data directory, where the marker must appear (optional with `--transport relp`,
    /// whose acknowledgement says the record is stored).
    #[arg(long)]
    data_dir: Option<PathBuf>,
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
    Relp,
}

const SEVERITIES: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];
const FACILITIES: [&str; 24] = [
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
            TransportArg::Relp => Transport::Relp,
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
        client::ClientError::Io { .. }
        | client::ClientError::NotStored { .. }
        | client::ClientError::Relp(_) => EXIT_UNAVAILABLE,
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
            let latency = match (r.latency(0.5), r.latency(0.99), r.latency(1.0)) {
                (Some(p50), Some(p99), Some(max)) => format!(
                    "acknowledgement latency: median {:.3} ms, p99 {:.3} ms, max {:.3} ms",
                    p50.as_secs_f64() * 1e3,
                    p99.as_secs_f64() * 1e3,
                    max.as_secs_f64() * 1e3
                ),
                _ => format!("latency: not measured ({transport:?} does not acknowledge)"),
            };
            println!(
                "sent {} records in {:.3} s over {} connection(s): {:.0} records/s, {} errors; {latency}",
                r.sent,
                r.elapsed.as_secs_f64(),
                cfg.conns,
                r.rate(),
                r.errors,
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
        args.data_dir.as_deref(),
        Duration::from_secs(args.timeout),
    ) {
        Ok(took) => {
            match &args.data_dir {
                Some(d) => println!(
                    "ok: a marker sent to {addr} was stored under {} after {} ms",
                    d.display(),
                    took.as_millis()
                ),
                None => println!(
                    "ok: a marker sent to {addr} was acknowledged (stored) after {} ms",
                    took.as_millis()
                ),
            }
            ExitCode::SUCCESS
        }
        Err(e) => client_failure(&e),
    }
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Send(a) => send(a),
        Command::Bench(a) => bench(a),
        Command::Check(a) => check(a),
    }
}
