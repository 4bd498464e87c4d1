//! `cargo xtask bench`: build the lab of `benches/` in release, load every echo server with
//! `loadgen` over loopback, and write `docs/benchmarks.md` with `docs/benchmarks.svg`.
//!
//! Servers are interleaved: within a round each connection count visits every server once,
//! the starting server rotating from round to round, so that a slow spell of a shared
//! machine spreads over all of them instead of landing on one. Each figure reported is the
//! median over the rounds.
//!
//! Two matrices share the machinery: the echo matrix (`--matrix echo`, the default: raw mio,
//! the reactor, tokio, thread per connection), which writes the whole of
//! `docs/benchmarks.md`, and the leader/followers matrix (`--matrix lf`: our thread pools
//! against tokio `multi_thread` and the rest), which rewrites only its own section of that
//! file and `docs/benchmarks-lf.svg`; and the proactor matrix (`--matrix proactor`: our
//! proactor against raw mio, a plain io_uring loop and the Rust io_uring runtimes), which
//! rewrites only its own section and `docs/benchmarks-proactor.svg`.

pub(crate) mod proactor;
pub(crate) mod render;

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use lab_report::args::{at_least_one, list, positive_seconds, seconds};
use lab_report::{LoadReport, median, rotation};

use crate::demo::cargo_program;
use crate::metadata;
use crate::process;

pub(crate) use render::{Machine, Report, Row};

/// What `cargo xtask bench --help` adds after the options.
const AFTER_HELP: &str = "\
512 connections need about 520 descriptors in loadgen and in the server, well under
the usual limit of 1024; for more, raise it first (`ulimit -n 4096`).";

/// Bytes per request.
pub(crate) const MESSAGE_BYTES: usize = 64;

/// How long a server may take to print its `LISTENING` line.
const STARTUP: Duration = Duration::from_secs(10);

/// One peer server of the lab.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Server {
    /// The name `--servers` takes.
    pub(crate) key: &'static str,
    /// The binary in `benches/src/bin/`.
    pub(crate) binary: &'static str,
    /// Extra arguments after `--addr`.
    pub(crate) args: &'static [&'static str],
    /// How the report names it.
    pub(crate) label: &'static str,
    /// Whether its threads live as long as the server, so that summing the context switches
    /// of the threads alive after a run covers the run (not so for thread per connection,
    /// whose threads take their counts with them when their connection closes).
    pub(crate) lasting_threads: bool,
}

/// Every server the lab knows, the ceiling first.
pub(crate) const SERVERS: &[Server] = &[
    Server {
        key: "raw-mio",
        binary: "echo-raw-mio",
        args: &[],
        label: "raw mio (ceiling)",
        lasting_threads: true,
    },
    Server {
        key: "reactor",
        binary: "echo-reactor",
        args: &[],
        label: "reactor (ours)",
        lasting_threads: true,
    },
    Server {
        key: "tokio",
        binary: "echo-tokio",
        args: &[],
        label: "tokio current_thread",
        lasting_threads: true,
    },
    Server {
        key: "threads",
        binary: "echo-threads",
        args: &[],
        label: "thread per connection",
        lasting_threads: false,
    },
    Server {
        key: "tokio-mt",
        binary: "echo-tokio",
        args: &["--workers", "2"],
        label: "tokio multi_thread, 2 workers",
        lasting_threads: true,
    },
    Server {
        key: "lf-1",
        binary: "echo-lf",
        args: &["--threads", "1"],
        label: "leader/followers, 1 thread (ours)",
        lasting_threads: true,
    },
    Server {
        key: "lf-2",
        binary: "echo-lf",
        args: &["--threads", "2"],
        label: "leader/followers, 2 threads (ours)",
        lasting_threads: true,
    },
    Server {
        key: "lf-strict-2",
        binary: "echo-lf-strict",
        args: &["--threads", "2"],
        label: "leader/followers strict, 2 threads (ours)",
        lasting_threads: true,
    },
    Server {
        key: "hsha",
        binary: "echo-hsha",
        args: &["--threads", "2"],
        label: "half-sync/half-async, 2 workers (ours)",
        lasting_threads: true,
    },
    Server {
        key: "proactor",
        binary: "echo-proactor",
        args: &[],
        label: "proactor (ours)",
        lasting_threads: true,
    },
    Server {
        key: "proactor-sqpoll",
        binary: "echo-proactor",
        args: &["--sqpoll", "50"],
        label: "proactor with SQPOLL (ours)",
        lasting_threads: false,
    },
    Server {
        key: "uring-raw",
        binary: "echo-uring-raw",
        args: &[],
        label: "plain io_uring loop (floor)",
        lasting_threads: true,
    },
    Server {
        key: "monoio",
        binary: "echo-monoio",
        args: &[],
        label: "monoio",
        lasting_threads: true,
    },
    Server {
        key: "tokio-uring",
        binary: "echo-tokio-uring",
        args: &[],
        label: "tokio-uring",
        lasting_threads: true,
    },
    Server {
        key: "compio",
        binary: "echo-compio",
        args: &[],
        label: "compio",
        lasting_threads: true,
    },
];

/// The servers run when `--servers` is not given.
const DEFAULT_SERVERS: &[&str] = &["raw-mio", "reactor", "tokio", "threads"];

/// The servers of the leader/followers matrix when `--servers` is not given.
const LF_SERVERS: &[&str] = &[
    "lf-1",
    "lf-2",
    "lf-strict-2",
    "hsha",
    "reactor",
    "tokio-mt",
    "threads",
];

/// The servers of the proactor matrix when `--servers` is not given.
const PROACTOR_SERVERS: &[&str] = &[
    "raw-mio",
    "proactor",
    "uring-raw",
    "tokio",
    "monoio",
    "tokio-uring",
    "compio",
    "proactor-sqpoll",
];

/// Which matrix a run measures, and so which part of the docs it writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Matrix {
    /// The echo matrix: writes docs/benchmarks.md (keeping its leader/followers section and
    /// hand-written notes) and docs/benchmarks.svg.
    Echo,
    /// The leader/followers matrix (default servers lf-1,lf-2,lf-strict-2,hsha,reactor,tokio-mt,threads):
    /// rewrites only its own section of docs/benchmarks.md, and docs/benchmarks-lf.svg.
    #[value(name = "lf")]
    LeaderFollowers,
    /// The proactor matrix (default servers
    /// raw-mio,proactor,uring-raw,tokio,monoio,tokio-uring,compio,proactor-sqpoll): rewrites
    /// only its own section of docs/benchmarks.md, and docs/benchmarks-proactor.svg.
    Proactor,
}

/// The command line of `cargo xtask bench`; [`resolve`](Self::resolve) fills in the defaults.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub(crate) struct BenchCli {
    /// The matrix to measure.
    #[arg(long, value_enum, default_value = "echo")]
    matrix: Matrix,
    /// 1 round of 1 s after 0.5 s of warmup (a smoke run).
    #[arg(long)]
    quick: bool,
    /// Measured time per run [default: 5].
    #[arg(long, value_name = "SECS", value_parser = positive_seconds)]
    duration: Option<Duration>,
    /// Unmeasured time before each run [default: 1].
    #[arg(long, value_name = "SECS", value_parser = seconds)]
    warmup: Option<Duration>,
    /// Rounds; the medians are over these [default: 3].
    #[arg(long, value_name = "N", value_parser = at_least_one)]
    rounds: Option<usize>,
    /// Connection counts, comma-separated.
    #[arg(long, value_name = "LIST", default_value = "1,64,512", value_parser = |t: &str| list(t, at_least_one))]
    connections: ::std::vec::Vec<usize>,
    /// Servers, comma-separated, from: raw-mio, reactor, tokio, threads, tokio-mt, lf-1, lf-2, lf-strict-2,
    /// hsha, proactor, proactor-sqpoll, uring-raw, monoio, tokio-uring, compio [default:
    /// raw-mio,reactor,tokio,threads; with --matrix lf: lf-1,lf-2,lf-strict-2,hsha,reactor,tokio-mt,threads;
    /// with --matrix proactor: the proactor, the floor, raw mio, tokio and the io_uring
    /// runtimes].
    #[arg(long, value_name = "LIST", value_parser = |t: &str| list(t, server))]
    servers: Option<::std::vec::Vec<Server>>,
}

impl BenchCli {
    /// The run asked for, defaults filled in (`--quick` changes them; options given win).
    pub(crate) fn resolve(self) -> BenchArgs {
        let servers = self.servers.unwrap_or_else(|| {
            let keys = match self.matrix {
                Matrix::Echo => DEFAULT_SERVERS,
                Matrix::LeaderFollowers => LF_SERVERS,
                Matrix::Proactor => PROACTOR_SERVERS,
            };
            keys.iter().filter_map(|k| server(k).ok()).collect()
        });
        let (duration, warmup, rounds) = if self.quick {
            (Duration::from_secs(1), Duration::from_millis(500), 1)
        } else {
            (Duration::from_secs(5), Duration::from_secs(1), 3)
        };
        BenchArgs {
            matrix: self.matrix,
            duration: self.duration.unwrap_or(duration),
            warmup: self.warmup.unwrap_or(warmup),
            rounds: self.rounds.unwrap_or(rounds),
            connections: self.connections,
            servers,
        }
    }
}

/// What `cargo xtask bench` was asked to do.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BenchArgs {
    /// The matrix measured.
    pub(crate) matrix: Matrix,
    /// Measured time per run.
    pub(crate) duration: Duration,
    /// Unmeasured time before each run.
    pub(crate) warmup: Duration,
    /// Number of rounds.
    pub(crate) rounds: usize,
    /// Connection counts, in the order given.
    pub(crate) connections: Vec<usize>,
    /// Servers, in the order given.
    pub(crate) servers: Vec<Server>,
}

/// The server `--servers` calls `key`.
fn server(key: &str) -> Result<Server, String> {
    SERVERS
        .iter()
        .copied()
        .find(|s| s.key == key)
        .ok_or_else(|| {
            let known: Vec<&str> = SERVERS.iter().map(|s| s.key).collect();
            format!("unknown server `{key}` (known: {})", known.join(", "))
        })
}

/// What one load-generator run reported (the fields of its JSON line that the report uses).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Sample {
    /// Requests per second.
    pub(crate) rps: f64,
    /// Median latency, microseconds.
    pub(crate) p50_us: f64,
    /// 99th-percentile latency, microseconds.
    pub(crate) p99_us: f64,
    /// Echoes that differed from the request.
    pub(crate) mismatches: u64,
    /// Round trips in the whole run, warmup included.
    pub(crate) total_requests: u64,
    /// The server's CPU time (user and system) per round trip over the whole run,
    /// microseconds; `None` where `/proc` could not tell.
    pub(crate) cpu_us_per_req: Option<f64>,
    /// The server's context switches per round trip over the whole run, voluntary and
    /// involuntary, summed over its threads; `None` where `/proc` could not tell or the
    /// server's threads do not outlive the run.
    pub(crate) switches_per_req: Option<(f64, f64)>,
}

/// Reads `loadgen`'s report, the last JSON line of its stdout.
pub(crate) fn parse_sample(stdout: &str) -> Result<Sample, String> {
    let report = LoadReport::from_stdout(stdout)?;
    Ok(Sample {
        rps: report.requests_per_sec,
        p50_us: report.p50_us,
        p99_us: report.p99_us,
        mismatches: report.mismatches,
        total_requests: report.total_requests,
        cpu_us_per_req: None,
        switches_per_req: None,
    })
}

/// Clock ticks per second in `/proc/<pid>/stat` (`USER_HZ`, fixed at 100 by the Linux ABI).
const USER_HZ: f64 = 100.0;

/// User plus system CPU time, in clock ticks, from the text of `/proc/<pid>/stat`.
///
/// The command name (field 2) is in parentheses and may hold spaces and parentheses itself, so
/// fields are counted from the last `)`.
pub(crate) fn cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // After the name come state (field 3) ... utime (14) and stime (15).
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

fn read_cpu_ticks(pid: u32) -> Option<u64> {
    cpu_ticks(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// The voluntary and involuntary context switches of one thread, from the text of
/// `/proc/<pid>/task/<tid>/status` (the process's own `status` file counts only its main
/// thread).
pub(crate) fn switches(status: &str) -> Option<(u64, u64)> {
    let field = |name: &str| {
        status.lines().find_map(|line| {
            let value = line.strip_prefix(name)?.strip_prefix(':')?;
            value.trim().parse::<u64>().ok()
        })
    };
    Some((
        field("voluntary_ctxt_switches")?,
        field("nonvoluntary_ctxt_switches")?,
    ))
}

/// Context switches per live thread of `pid`, by thread id.
fn read_switches(pid: u32) -> Option<BTreeMap<u32, (u64, u64)>> {
    let mut threads = BTreeMap::new();
    for entry in fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let entry = entry.ok()?;
        let Some(tid) = entry.file_name().to_str().and_then(|t| t.parse().ok()) else {
            continue;
        };
        // A thread may exit between the listing and the read: skip it.
        if let Some(counts) = fs::read_to_string(entry.path().join("status"))
            .ok()
            .and_then(|t| switches(&t))
        {
            threads.insert(tid, counts);
        }
    }
    Some(threads)
}

/// The switches made between two readings by the threads alive at the second; a thread born
/// in between counts from zero.
pub(crate) fn switches_between(
    before: &BTreeMap<u32, (u64, u64)>,
    after: &BTreeMap<u32, (u64, u64)>,
) -> (u64, u64) {
    after.iter().fold((0, 0), |(v, i), (tid, &(av, ai))| {
        let (bv, bi) = before.get(tid).copied().unwrap_or((0, 0));
        (v + av.saturating_sub(bv), i + ai.saturating_sub(bi))
    })
}

/// Reads `LISTENING <addr>` (the first line the server prints).
pub(crate) fn parse_listening(line: &str) -> Result<SocketAddr, String> {
    let rest = line
        .trim()
        .strip_prefix("LISTENING ")
        .ok_or_else(|| format!("expected `LISTENING <addr>`, got `{}`", line.trim()))?;
    rest.trim()
        .parse()
        .map_err(|_| format!("`{}` is not an address", rest.trim()))
}

/// Turns the samples of every round into one row per (connections, server), medians inside,
/// in the order of `connections` then `servers`.
pub(crate) fn summarise(
    samples: &BTreeMap<(usize, &'static str), Vec<Sample>>,
    connections: &[usize],
    servers: &[Server],
) -> Vec<Row> {
    let mut rows = Vec::new();
    for &conns in connections {
        for server in servers {
            let Some(runs) = samples.get(&(conns, server.key)) else {
                continue;
            };
            let pick = |f: fn(&Sample) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
            let cpu: Vec<f64> = runs.iter().filter_map(|s| s.cpu_us_per_req).collect();
            let voluntary: Vec<f64> = runs
                .iter()
                .filter_map(|s| s.switches_per_req.map(|c| c.0))
                .collect();
            let involuntary: Vec<f64> = runs
                .iter()
                .filter_map(|s| s.switches_per_req.map(|c| c.1))
                .collect();
            let (Some(rps), Some(p50_us), Some(p99_us)) =
                (pick(|s| s.rps), pick(|s| s.p50_us), pick(|s| s.p99_us))
            else {
                continue;
            };
            let rates: Vec<f64> = runs.iter().map(|s| s.rps).collect();
            let lowest = rates.iter().copied().fold(f64::INFINITY, f64::min);
            let highest = rates.iter().copied().fold(0.0, f64::max);
            rows.push(Row {
                connections: conns,
                rps_range: (lowest, highest),
                round_rps: rates,
                round_p99: runs.iter().map(|s| s.p99_us).collect(),
                round_cpu: runs
                    .iter()
                    .map(|s| s.cpu_us_per_req.unwrap_or(f64::NAN))
                    .collect(),
                key: server.key,
                label: server.label,
                rps,
                p50_us,
                p99_us,
                cpu_us: median(&cpu),
                switches: median(&voluntary).zip(median(&involuntary)),
                runs: runs.len(),
                mismatches: runs.iter().map(|s| s.mismatches).sum(),
            });
        }
    }
    rows
}

/// A running server, killed (by its PID, through [`Child::kill`]) and reaped when dropped.
#[derive(Debug)]
struct Running {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(binary: &Path, server: &Server) -> Result<Running, String> {
    let mut child = Command::new(binary)
        .args(["--addr", "127.0.0.1:0"])
        .args(server.args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    let stdout = child.stdout.take().ok_or("no stdout pipe")?;
    let (tx, rx) = mpsc::channel();
    // The reader keeps draining (and discarding) later output so the server never blocks on
    // a full pipe; it ends when the server dies.
    thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        if let Some(line) = lines.next() {
            let _ = tx.send(line.unwrap_or_default());
        }
        for _ in lines {}
    });
    let mut running = Running {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
    };
    let line = rx
        .recv_timeout(STARTUP)
        .map_err(|_| format!("{} printed no LISTENING line", server.binary))?;
    running.addr = parse_listening(&line)?;
    Ok(running)
}

fn measure(
    bin_dir: &Path,
    server: &Server,
    connections: usize,
    args: &BenchArgs,
) -> Result<Sample, String> {
    let running = start(&bin_dir.join(server.binary), server)?;
    let mut loadgen = Command::new(bin_dir.join("loadgen"));
    loadgen.args([
        "--addr".to_owned(),
        running.addr.to_string(),
        "--connections".to_owned(),
        connections.to_string(),
        "--size".to_owned(),
        MESSAGE_BYTES.to_string(),
        "--warmup".to_owned(),
        args.warmup.as_secs_f64().to_string(),
        "--duration".to_owned(),
        args.duration.as_secs_f64().to_string(),
    ]);
    let limit = args.warmup + args.duration + Duration::from_secs(60);
    let pid = running.child.id();
    let before = read_cpu_ticks(pid);
    let switches_before = read_switches(pid);
    let run = process::run(&mut loadgen, limit).map_err(|e| format!("loadgen: {e}"))?;
    let after = read_cpu_ticks(pid);
    let switches_after = read_switches(pid);
    drop(running);
    if !run.succeeded() {
        return Err(format!(
            "loadgen against {} with {connections} connections failed ({:?}): {}",
            server.key,
            run.status,
            String::from_utf8_lossy(&run.stderr).trim()
        ));
    }
    let mut sample = parse_sample(&String::from_utf8_lossy(&run.stdout))?;
    if let (Some(before), Some(after)) = (before, after)
        && sample.total_requests > 0
    {
        let seconds = after.saturating_sub(before) as f64 / USER_HZ;
        sample.cpu_us_per_req = Some(seconds * 1e6 / sample.total_requests as f64);
    }
    if let (Some(before), Some(after)) = (switches_before, switches_after)
        && sample.total_requests > 0
        && server.lasting_threads
    {
        let (voluntary, involuntary) = switches_between(&before, &after);
        let per = |n: u64| n as f64 / sample.total_requests as f64;
        sample.switches_per_req = Some((per(voluntary), per(involuntary)));
    }
    Ok(sample)
}

/// Runs the benchmark; `Ok(false)` if some echo came back wrong (reported, docs written).
pub(crate) fn run(args: &BenchArgs) -> Result<bool, String> {
    let cargo = cargo_program();
    let workspace = metadata::load(&cargo)?;
    let build = ["build", "--release", "--package", "benches", "--bins"];
    eprintln!("bench: cargo {}", build.join(" "));
    let status = Command::new(&cargo)
        .args(build)
        .current_dir(&workspace.root)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!("building benches failed ({status})"));
    }
    let bin_dir = workspace.target_dir.join("release");

    let machine = Machine::probe();
    if let Some(limit) = machine.open_files {
        let needed = args.connections.iter().max().copied().unwrap_or(0) as u64 + 32;
        if needed > limit {
            eprintln!(
                "bench: warning: {needed} descriptors needed but the open-file limit is \
                 {limit}; raise it (`ulimit -n {}`) or connects and accepts will fail",
                needed.next_power_of_two()
            );
        }
    }

    let total = args.rounds * args.connections.len() * args.servers.len();
    let mut done = 0;
    let mut samples: BTreeMap<(usize, &'static str), Vec<Sample>> = BTreeMap::new();
    for round in 0..args.rounds {
        for &conns in &args.connections {
            for server in rotation(&args.servers, round) {
                done += 1;
                let sample = measure(&bin_dir, &server, conns, args)?;
                let (voluntary, involuntary) =
                    sample.switches_per_req.unwrap_or((f64::NAN, f64::NAN));
                eprintln!(
                    "bench: [{done}/{total}] round {} {:>4} conns {:<9} {:>10.0} req/s  p50 {:>8.1} us  p99 {:>8.1} us  cpu {:>5.2} us/req  cs {:.2}+{:.2}/req",
                    round + 1,
                    conns,
                    server.key,
                    sample.rps,
                    sample.p50_us,
                    sample.p99_us,
                    sample.cpu_us_per_req.unwrap_or(f64::NAN),
                    voluntary,
                    involuntary
                );
                samples.entry((conns, server.key)).or_default().push(sample);
            }
        }
    }

    let rows = summarise(&samples, &args.connections, &args.servers);
    let docs = workspace.root.join("docs");
    let md_path = docs.join("benchmarks.md");
    let old = fs::read_to_string(&md_path).ok();
    let report = Report {
        machine,
        duration: args.duration,
        warmup: args.warmup,
        rounds: args.rounds,
        message_bytes: MESSAGE_BYTES,
        rows,
        notes: old
            .as_deref()
            .and_then(render::kept_notes)
            .map(str::to_owned),
        lf_section: old
            .as_deref()
            .and_then(render::kept_lf_section)
            .map(str::to_owned),
        proactor_section: old
            .as_deref()
            .and_then(proactor::kept_section)
            .map(str::to_owned),
    };
    fs::create_dir_all(&docs).map_err(|e| format!("{}: {e}", docs.display()))?;
    let (markdown, svg_path, table) = match args.matrix {
        Matrix::Echo => (
            render::markdown(&report),
            docs.join("benchmarks.svg"),
            render::table(&report.rows),
        ),
        Matrix::LeaderFollowers => (
            render::splice_lf_section(old.as_deref(), &render::lf_section(&report)),
            docs.join(render::LF_SVG),
            render::lf_table(&report.rows),
        ),
        Matrix::Proactor => (
            proactor::splice_section(old.as_deref(), &proactor::section(&report)),
            docs.join(proactor::SVG),
            proactor::table(&report.rows),
        ),
    };
    write(&md_path, &markdown)?;
    write(&svg_path, &render::svg(&report.rows))?;
    print!("{table}");
    if args.matrix == Matrix::LeaderFollowers {
        print!("\n{}", render::lf_targets(&report.rows));
    }
    if args.matrix == Matrix::Proactor {
        print!("\n{}", proactor::targets(&report.rows));
    }
    eprintln!(
        "bench: wrote {} and {}",
        md_path.display(),
        svg_path.display()
    );

    let mismatches: u64 = report.rows.iter().map(|r| r.mismatches).sum();
    if mismatches > 0 {
        eprintln!("bench: {mismatches} echoes differed from their requests");
        return Ok(false);
    }
    Ok(true)
}

fn write(path: &PathBuf, text: &str) -> Result<(), String> {
    fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<BenchArgs, String> {
        let mut all = vec!["bench"];
        all.extend(args);
        match crate::cli::tests::parse(&all)? {
            crate::cli::Command::Bench(cli) => Ok(cli.resolve()),
            other => panic!("expected bench, got {other:?}"),
        }
    }

    fn run_args(args: &[&str]) -> BenchArgs {
        parse(args).unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    #[test]
    fn defaults_are_the_full_matrix_and_quick_shortens_it() {
        let full = run_args(&[]);
        assert_eq!(full.connections, [1, 64, 512]);
        let keys: Vec<&str> = full.servers.iter().map(|s| s.key).collect();
        assert_eq!(keys, ["raw-mio", "reactor", "tokio", "threads"]);
        assert_eq!(full.matrix, Matrix::Echo);
        assert_eq!((full.duration, full.rounds), (Duration::from_secs(5), 3));
        let quick = run_args(&["--quick"]);
        assert_eq!((quick.duration, quick.rounds), (Duration::from_secs(1), 1));
        let mixed = run_args(&["--quick", "--rounds=2", "--duration", "3"]);
        assert_eq!((mixed.duration, mixed.rounds), (Duration::from_secs(3), 2));
        assert_eq!(mixed.warmup, Duration::from_millis(500));
    }

    #[test]
    fn lists_choose_connections_and_servers_in_order() {
        let a = run_args(&["--connections", "8, 2", "--servers=tokio-mt,raw-mio"]);
        assert_eq!(a.connections, [8, 2]);
        assert_eq!(a.servers[0].args, ["--workers", "2"]);
        assert_eq!(a.servers[1].binary, "echo-raw-mio");
    }

    #[test]
    fn the_lf_matrix_has_its_own_servers_unless_told_otherwise() {
        let lf = run_args(&["--matrix", "lf"]);
        assert_eq!(lf.matrix, Matrix::LeaderFollowers);
        let keys: Vec<&str> = lf.servers.iter().map(|s| s.key).collect();
        assert_eq!(
            keys,
            [
                "lf-1",
                "lf-2",
                "lf-strict-2",
                "hsha",
                "reactor",
                "tokio-mt",
                "threads"
            ]
        );
        let two = server("lf-2").unwrap();
        assert_eq!((two.binary, two.args), ("echo-lf", &["--threads", "2"][..]));
        assert_eq!(server("hsha").unwrap().binary, "echo-hsha");
        let chosen = run_args(&["--servers=lf-2,tokio-mt", "--matrix=lf"]);
        assert_eq!(chosen.servers.len(), 2, "--servers wins whatever the order");
        assert_eq!(run_args(&["--matrix", "echo"]).matrix, Matrix::Echo);
        let proactor = run_args(&["--matrix", "proactor"]);
        let keys: Vec<&str> = proactor.servers.iter().map(|s| s.key).collect();
        assert_eq!(
            keys,
            [
                "raw-mio",
                "proactor",
                "uring-raw",
                "tokio",
                "monoio",
                "tokio-uring",
                "compio",
                "proactor-sqpoll"
            ]
        );
        assert_eq!(server("proactor-sqpoll").unwrap().args, &["--sqpoll", "50"]);
        let err = parse(&["--matrix", "epoll"]).unwrap_err();
        assert!(err.contains("invalid value 'epoll'"), "{err}");
    }

    #[test]
    fn context_switches_are_summed_over_threads_from_their_status_files() {
        let status =
            "Name:\techo-lf\nvoluntary_ctxt_switches:\t120\nnonvoluntary_ctxt_switches:\t7\n";
        assert_eq!(switches(status), Some((120, 7)));
        assert_eq!(switches("Name:\tx\nvoluntary_ctxt_switches:\t1\n"), None);
        let before = BTreeMap::from([(1, (10, 1)), (2, (5, 5)), (3, (9, 9))]);
        let after = BTreeMap::from([(1, (15, 2)), (2, (5, 6)), (4, (3, 0))]);
        assert_eq!(
            switches_between(&before, &after),
            (5 + 3, 1 + 1),
            "thread 3 exited (lost), thread 4 is new (counted from zero)"
        );
        assert!(!server("threads").unwrap().lasting_threads);
        assert!(server("lf-2").unwrap().lasting_threads);
    }

    #[test]
    fn bad_command_lines_are_rejected_with_a_reason() {
        let help = parse(&["--help", "--bogus"]).unwrap_err();
        assert!(help.contains("--matrix <MATRIX>") && help.contains("ulimit -n 4096"));
        for (args, needle) in [
            (&["--bogus"][..], "unexpected argument '--bogus'"),
            (&["--rounds"][..], "a value is required"),
            (&["--rounds", "0"][..], "at least 1"),
            (&["--connections", "1,x"][..], "whole number, got `x`"),
            (&["--servers", "nginx"][..], "unknown server `nginx`"),
            (&["--servers", ","][..], "at least one entry"),
            (&["--duration", "0"][..], "must be positive"),
            (&["quick"][..], "unexpected argument 'quick'"),
        ] {
            let err = parse(args).expect_err("should be rejected");
            assert!(err.contains(needle), "{args:?}: `{err}` lacks `{needle}`");
        }
    }

    #[test]
    fn loadgen_json_is_read_from_its_last_json_line() {
        let out = "note\n{\"connections\":64,\"message_bytes\":64,\"seconds\":1.0,\"requests\":5,\
                   \"requests_per_sec\":1234.5,\"p50_us\":10.0,\"p99_us\":99.5,\"max_us\":120.0,\
                   \"mismatches\":0,\"total_requests\":7}\n";
        assert_eq!(
            parse_sample(out),
            Ok(Sample {
                rps: 1234.5,
                p50_us: 10.0,
                p99_us: 99.5,
                mismatches: 0,
                total_requests: 7,
                cpu_us_per_req: None,
                switches_per_req: None,
            })
        );
        assert!(parse_sample("").unwrap_err().contains("no JSON line"));
    }

    #[test]
    fn the_listening_line_gives_the_address() {
        assert_eq!(
            parse_listening("LISTENING 127.0.0.1:4242\n"),
            Ok("127.0.0.1:4242".parse().unwrap())
        );
        assert!(parse_listening("listening on 4242").is_err());
        assert!(parse_listening("LISTENING soon").is_err());
    }

    #[test]
    fn summaries_take_medians_per_cell_in_the_requested_order() {
        let s = |rps, p99| Sample {
            rps,
            p50_us: 1.0,
            p99_us: p99,
            mismatches: 0,
            total_requests: 1,
            cpu_us_per_req: Some(p99),
            switches_per_req: Some((rps / 10.0, 0.5)),
        };
        let mut samples = BTreeMap::new();
        samples.insert(
            (64, "reactor"),
            vec![s(10.0, 5.0), s(30.0, 1.0), s(20.0, 3.0)],
        );
        samples.insert((64, "raw-mio"), vec![s(40.0, 2.0)]);
        let servers = [server("raw-mio").unwrap(), server("reactor").unwrap()];
        let rows = summarise(&samples, &[1, 64], &servers);
        assert_eq!(rows.len(), 2, "cells without samples are left out");
        assert_eq!((rows[0].key, rows[0].rps), ("raw-mio", 40.0));
        assert_eq!((rows[1].rps, rows[1].p99_us, rows[1].runs), (20.0, 3.0, 3));
        assert_eq!(rows[1].cpu_us, Some(3.0));
        assert_eq!(rows[1].switches, Some((2.0, 0.5)));
        assert_eq!(rows[1].rps_range, (10.0, 30.0));
        assert_eq!(
            rows[1].round_rps,
            [10.0, 30.0, 20.0],
            "rounds keep their order"
        );
    }

    #[test]
    fn cpu_time_is_read_from_proc_stat_even_with_odd_command_names() {
        let stat = "4242 (echo (x) y) S 1 4242 4242 0 -1 4194304 100 0 0 0 250 37 0 0 20 0 1 0";
        assert_eq!(cpu_ticks(stat), Some(287));
        assert_eq!(cpu_ticks("4242 (short) S 1"), None);
        assert_eq!(cpu_ticks("no parenthesis"), None);
    }
}
