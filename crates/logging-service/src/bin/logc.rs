//! `logc`: the logging service's client. It sends records to logd (or any syslog collector),
//! loads it for a benchmark, and checks end to end that a record is stored.
#![forbid(unsafe_code)]

use std::io::BufRead;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use logging_service::cli::logc::{
    BenchArgs, CheckArgs, Cli, Command, OutputArg, QueryArgs, QueryOutput, ReadArgs, SendArgs,
};
use logging_service::client::{self, BenchConfig, Client, Message};
use pattern_core::ErrorChain;

/// Exit status for a peer that cannot be reached or a record that did not arrive (sysexits' EX_UNAVAILABLE).
const EXIT_UNAVAILABLE: u8 = 69;
/// Exit status for input that cannot be sent as asked (sysexits' EX_DATAERR).
const EXIT_DATA: u8 = 65;
/// Exit status for a command line that cannot be used (sysexits' EX_USAGE), as logd's.
const EXIT_USAGE: u8 = 64;

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
    let addr = args.server;
    let (format, transport) = args.wire.resolve();
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
    // Fields the format cannot carry are refused before anything is connected or sent.
    if let Err(e) = client::encode(&template, format, transport) {
        return client_failure(&e);
    }
    let tls = match args.wire.client_tls(addr) {
        Ok(t) => t,
        Err(e) => return fail(EXIT_USAGE, ErrorChain(&e)),
    };
    let mut client = match Client::connect_with(addr, format, transport, tls.as_ref()) {
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
    let addr = args.server;
    let (format, transport) = args.wire.resolve();
    let cfg = BenchConfig {
        count: args.count,
        rate: args.rate,
        conns: usize::from(args.conns),
        format,
        transport,
        size: args.size,
        tls: match args.wire.client_tls(addr) {
            Ok(t) => t,
            Err(e) => return fail(EXIT_USAGE, ErrorChain(&e)),
        },
        write_bytes: 0,
    };
    // The progress line: rewritten in place on a terminal; into a pipe or file, a line a
    // second and the last one.
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut last_line = std::time::Instant::now();
    let report = client::bench(addr, &cfg, |n| {
        if tty {
            eprint!("\rlogc bench: {n} of {} sent", cfg.count);
        } else if n == cfg.count || last_line.elapsed() >= Duration::from_secs(1) {
            last_line = std::time::Instant::now();
            eprintln!("logc bench: {n} of {} sent", cfg.count);
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
                _ => format!("latency: not measured ({transport} does not acknowledge)"),
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
    let addr = args.server;
    let (format, transport) = args.wire.resolve();
    if args.wire.tls {
        return fail(EXIT_USAGE, "check does not speak TLS (use send or bench)");
    }
    if args.data_dir.is_none() && transport != client::Transport::Relp {
        return fail(
            EXIT_USAGE,
            format!("check over {transport} needs --data-dir (only RELP acknowledges)"),
        );
    }
    match client::check(
        addr,
        format,
        transport,
        args.data_dir.as_deref(),
        args.timeout,
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

/// `logc query`: a question (or `--sql`) to ClickHouse, the answer as a table or JSON lines.
fn query(args: QueryArgs) -> ExitCode {
    use logging_service::clickhouse::{
        ClickHouseTls, Http, Question, question_sql, render_table, with_format,
    };
    use std::io::Write;
    let time = |t: &Option<String>| {
        t.as_deref()
            .and_then(logging_service::record::parse_rfc3339)
    };
    let sql = match &args.sql {
        Some(sql) => sql.clone(),
        None => question_sql(&Question {
            table: args.table.clone(),
            host: args.host.clone(),
            since: time(&args.since),
            until: time(&args.until),
            grep: args.grep.clone(),
            last: args.last,
            counts: args.counts,
        }),
    };
    let format = match args.output {
        QueryOutput::Table => "TSVWithNames",
        QueryOutput::Json => "JSONEachRow",
    };
    let sql = with_format(&sql, format);
    let tls = ClickHouseTls {
        ca: args.tls_ca.clone(),
        cert: args.tls_cert.clone(),
        key: args.tls_key.clone(),
        ..ClickHouseTls::default()
    };
    let http = match Http::new(&args.clickhouse, Duration::from_secs(60), &tls) {
        Ok(h) => h,
        Err(e) => return fail(EXIT_USAGE, e),
    };
    let answer = match http.post("", sql.as_bytes()) {
        Ok((200, text)) => text,
        Ok((status, text)) => {
            return fail(
                EXIT_DATA,
                format!("ClickHouse answered {status}: {}", text.trim()),
            );
        }
        Err(e) => {
            return fail(
                EXIT_UNAVAILABLE,
                format!("cannot reach ClickHouse at {}: {e}", args.clickhouse),
            );
        }
    };
    // A table only when the answer is the format asked for (--sql may name its own).
    let text = if args.output == QueryOutput::Table && sql.ends_with("FORMAT TSVWithNames") {
        render_table(&answer)
    } else {
        answer
    };
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // Help and version go to stdout with status 0; usage errors to stderr.
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match cli.command {
        Command::Send(a) => send(a),
        Command::Bench(a) => bench(a),
        Command::Check(a) => check(a),
        Command::Read(a) => read(a),
        Command::Query(a) => query(a),
    }
}
