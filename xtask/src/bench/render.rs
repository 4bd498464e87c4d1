//! The report: the machine it ran on, `docs/benchmarks.md` and its hand-written SVG chart.
//!
//! Everything here is pure text in, text out, except [`Machine::probe`].

use std::fmt::Write as _;
use std::fs;
use std::time::Duration;

use lab_report::{colour, escape, thousands, today};

/// The line in `docs/benchmarks.md` after which text is written by hand and kept on rewrites.
pub(crate) const NOTES_MARKER: &str =
    "<!-- Below this line: written by hand, kept by `cargo xtask bench`. -->";

/// The first line of the leader/followers matrix's section of `docs/benchmarks.md`.
pub(crate) const LF_BEGIN: &str = "<!-- Leader/followers matrix: written by `cargo xtask bench --matrix lf`, kept by the echo matrix. -->";
/// The last line of that section.
pub(crate) const LF_END: &str = "<!-- End of the leader/followers matrix. -->";
/// The chart of the leader/followers matrix, in `docs/`.
pub(crate) const LF_SVG: &str = "benchmarks-lf.svg";

/// Leader/followers' requests/s at least this multiple of tokio multi_thread's (issue 4).
const LF_VS_TOKIO_MT: f64 = 1.0;
/// Leader/followers' requests/s at least this multiple of half-sync/half-async's (issue 4).
const LF_VS_HSHA: f64 = 1.2;

/// Targets from the issue, checked at these connection counts.
const TARGET_CONNECTIONS: &[usize] = &[64, 512];
/// Our reactor's requests/s at least this fraction of raw mio's.
const TARGET_VS_RAW: f64 = 0.95;
/// Our reactor's requests/s at least this fraction of tokio current_thread's.
const TARGET_VS_TOKIO: f64 = 1.0;
/// Our reactor's p99 at most this multiple of raw mio's.
const TARGET_P99: f64 = 1.1;

/// Bar colours, by server key.
const COLOURS: &[(&str, &str)] = &[
    ("raw-mio", "#7f7f7f"),
    ("reactor", "#d62728"),
    ("tokio", "#1f77b4"),
    ("threads", "#2ca02c"),
    ("tokio-mt", "#9467bd"),
    ("lf-1", "#ff7f0e"),
    ("lf-2", "#e377c2"),
    ("hsha", "#17becf"),
    ("proactor", "#8c564b"),
    ("proactor-sqpoll", "#c49c94"),
    ("uring-raw", "#bcbd22"),
    ("monoio", "#aec7e8"),
    ("tokio-uring", "#98df8a"),
    ("compio", "#ffbb78"),
];

/// What the report says about the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Machine {
    /// Logical CPUs available.
    pub(crate) cpus: usize,
    /// The CPU model, if known.
    pub(crate) cpu_model: Option<String>,
    /// The kernel release.
    pub(crate) kernel: Option<String>,
    /// The soft limit on open files, if known.
    pub(crate) open_files: Option<u64>,
    /// The date of the run, `YYYY-MM-DD` (UTC).
    pub(crate) date: String,
}

impl Machine {
    /// Reads what it can from `/proc` and the clock.
    pub(crate) fn probe() -> Machine {
        let read = |path: &str| fs::read_to_string(path).ok();
        Machine {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model: read("/proc/cpuinfo").and_then(|t| cpu_model(&t)),
            kernel: read("/proc/sys/kernel/osrelease").map(|t| t.trim().to_owned()),
            open_files: read("/proc/self/limits").and_then(|t| open_files_limit(&t)),
            date: today(),
        }
    }
}

/// The first `model name` of `/proc/cpuinfo`.
pub(crate) fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == "model name").then(|| value.trim().to_owned())
    })
}

/// The soft limit of `Max open files` in `/proc/self/limits`.
pub(crate) fn open_files_limit(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// One cell of the matrix: a server at a connection count, medians over the rounds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    /// Concurrent connections.
    pub(crate) connections: usize,
    /// The server's key.
    pub(crate) key: &'static str,
    /// The server's display name.
    pub(crate) label: &'static str,
    /// Median requests per second.
    pub(crate) rps: f64,
    /// Lowest and highest requests per second over the rounds.
    pub(crate) rps_range: (f64, f64),
    /// Requests per second of each round, in round order.
    pub(crate) round_rps: Vec<f64>,
    /// p99 latency of each round, in round order.
    pub(crate) round_p99: Vec<f64>,
    /// Server CPU µs per round trip of each round, in round order (NaN where unmeasured).
    pub(crate) round_cpu: Vec<f64>,
    /// Median p50 latency, microseconds.
    pub(crate) p50_us: f64,
    /// Median p99 latency, microseconds.
    pub(crate) p99_us: f64,
    /// Median server CPU time per round trip, microseconds, where measured.
    pub(crate) cpu_us: Option<f64>,
    /// Median server context switches per round trip, voluntary and involuntary, where
    /// measured.
    pub(crate) switches: Option<(f64, f64)>,
    /// Rounds measured.
    pub(crate) runs: usize,
    /// Echoes that differed, over all rounds.
    pub(crate) mismatches: u64,
}

/// Everything `docs/benchmarks.md` shows.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Report {
    /// Where it ran.
    pub(crate) machine: Machine,
    /// Measured time per run.
    pub(crate) duration: Duration,
    /// Warmup per run.
    pub(crate) warmup: Duration,
    /// Rounds.
    pub(crate) rounds: usize,
    /// Bytes per request.
    pub(crate) message_bytes: usize,
    /// The cells, grouped by connection count.
    pub(crate) rows: Vec<Row>,
    /// Hand-written text kept from the previous file (after [`NOTES_MARKER`]).
    pub(crate) notes: Option<String>,
    /// The leader/followers matrix's section kept from the previous file ([`LF_BEGIN`] to
    /// [`LF_END`], both included).
    pub(crate) lf_section: Option<String>,
    /// The proactor matrix's section kept from the previous file (its markers included).
    pub(crate) proactor_section: Option<String>,
}

/// The hand-written part of an existing `docs/benchmarks.md`, if it has one.
pub(crate) fn kept_notes(old: &str) -> Option<&str> {
    let (_, notes) = old.split_once(NOTES_MARKER)?;
    let notes = notes.trim_matches('\n');
    (!notes.trim().is_empty()).then_some(notes)
}

/// The leader/followers section of an existing `docs/benchmarks.md`, markers included.
pub(crate) fn kept_lf_section(old: &str) -> Option<&str> {
    let start = old.find(LF_BEGIN)?;
    let end = start + old[start..].find(LF_END)? + LF_END.len();
    Some(&old[start..end])
}

/// `old` (the current `docs/benchmarks.md`, if any) with its leader/followers section
/// replaced by `section`, or `section` added just before the hand-written notes; the rest of
/// the file is kept byte for byte.
pub(crate) fn splice_lf_section(old: Option<&str>, section: &str) -> String {
    let Some(old) = old else {
        return format!(
            "# Benchmarks: echo servers over loopback\n\n{section}\n\n{NOTES_MARKER}\n"
        );
    };
    if let Some(kept) = kept_lf_section(old) {
        let start = old.find(kept).unwrap_or(0);
        return format!("{}{section}{}", &old[..start], &old[start + kept.len()..]);
    }
    match old.find(NOTES_MARKER) {
        Some(at) => format!("{}{section}\n\n{}", &old[..at], &old[at..]),
        None => format!("{}\n\n{section}\n", old.trim_end()),
    }
}

/// The connection counts of `rows`, in order of first appearance.
pub(crate) fn groups(rows: &[Row]) -> Vec<usize> {
    let mut seen = Vec::new();
    for row in rows {
        if !seen.contains(&row.connections) {
            seen.push(row.connections);
        }
    }
    seen
}

pub(crate) fn find<'a>(rows: &'a [Row], connections: usize, key: &str) -> Option<&'a Row> {
    rows.iter()
        .find(|r| r.connections == connections && r.key == key)
}

/// The median over the rounds of `ours / base`, each round's figures paired: neighbours in
/// time share the machine's mood of the moment, so their ratio is steadier than the ratio of
/// two medians taken from different rounds.
pub(crate) fn paired(ours: &Row, base: &Row, figures: fn(&Row) -> &[f64]) -> Option<f64> {
    let ratios: Vec<f64> = figures(ours)
        .iter()
        .zip(figures(base))
        .filter(|(o, b)| o.is_finite() && **b > 0.0)
        .map(|(o, b)| o / b)
        .collect();
    super::median(&ratios)
}

pub(crate) fn cpu_of(row: &Row) -> &[f64] {
    &row.round_cpu
}

pub(crate) fn rps_of(row: &Row) -> &[f64] {
    &row.round_rps
}

pub(crate) fn p99_of(row: &Row) -> &[f64] {
    &row.round_p99
}

pub(crate) fn ratio(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_owned(), |r| format!("{r:.2}×"))
}

/// Half the range of the rounds' requests/s, relative to the median: `±7%`.
pub(crate) fn spread(row: &Row) -> String {
    let (lowest, highest) = row.rps_range;
    if row.runs < 2 || row.rps <= 0.0 {
        return "–".to_owned();
    }
    format!("±{:.0}%", (highest - lowest) / 2.0 / row.rps * 100.0)
}

/// The results table in Markdown: one block per connection count, ratios to raw mio.
pub(crate) fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    out.push_str(
        "| connections | server | requests/s | rounds' spread | × raw mio | p50 µs | p99 µs | p99 × raw mio | server CPU µs/req |\n",
    );
    out.push_str("|---:|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for conns in groups(rows) {
        let raw = find(rows, conns, "raw-mio");
        for row in rows.iter().filter(|r| r.connections == conns) {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {:.1} | {:.1} | {} | {} |",
                conns,
                row.label,
                thousands(row.rps),
                spread(row),
                ratio(raw.and_then(|raw| paired(row, raw, rps_of))),
                row.p50_us,
                row.p99_us,
                ratio(raw.and_then(|raw| paired(row, raw, p99_of))),
                row.cpu_us
                    .map_or_else(|| "–".to_owned(), |c| format!("{c:.2}")),
            );
        }
    }
    out
}

/// The issue's targets for our reactor, one line each, with what was measured.
pub(crate) fn targets(rows: &[Row]) -> String {
    let mut out = String::new();
    for &conns in TARGET_CONNECTIONS {
        let Some(ours) = find(rows, conns, "reactor") else {
            continue;
        };
        let mut check = |what: &str, base_key: &str, measured: Option<f64>, ok: fn(f64) -> bool| {
            if find(rows, conns, base_key).is_none() {
                return;
            }
            if let Some(m) = measured {
                let verdict = if ok(m) { "met" } else { "**missed**" };
                let _ = writeln!(out, "- {conns} connections, {what}: {m:.3}× — {verdict}");
            }
        };
        let vs = |key: &str, f: fn(&Row) -> &[f64]| {
            find(rows, conns, key).and_then(|base| paired(ours, base, f))
        };
        check(
            "requests/s vs raw mio (target ≥ 0.95×)",
            "raw-mio",
            vs("raw-mio", rps_of),
            |m| m >= TARGET_VS_RAW,
        );
        check(
            "requests/s vs tokio current_thread (target ≥ 1.00×)",
            "tokio",
            vs("tokio", rps_of),
            |m| m >= TARGET_VS_TOKIO,
        );
        check(
            "p99 vs raw mio (target ≤ 1.10×)",
            "raw-mio",
            vs("raw-mio", p99_of),
            |m| m <= TARGET_P99,
        );
    }
    out
}

pub(crate) fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0} s")
    } else {
        format!("{s} s")
    }
}

/// The whole of `docs/benchmarks.md`.
pub(crate) fn markdown(report: &Report) -> String {
    let m = &report.machine;
    let unknown = || "unknown".to_owned();
    let mut out = String::new();
    out.push_str("# Benchmarks: echo servers over loopback\n\n");
    out.push_str(
        "Written by `cargo xtask bench`; the numbers below are from one run on one machine.\n",
    );
    out.push_str("Compare servers within a table, not with other machines.\n\n");

    out.push_str("## Machine\n\n");
    let _ = writeln!(out, "- date: {}", m.date);
    let _ = writeln!(out, "- logical CPUs (nproc): {}", m.cpus);
    let _ = writeln!(
        out,
        "- CPU: {}",
        m.cpu_model.clone().unwrap_or_else(unknown)
    );
    let _ = writeln!(
        out,
        "- kernel: {}",
        m.kernel.clone().unwrap_or_else(unknown)
    );
    let _ = writeln!(
        out,
        "- open-file limit (soft): {}",
        m.open_files.map_or_else(unknown, |n| n.to_string())
    );
    out.push_str(
        "- the machine is shared: other work may have run at the same time, which is why servers are interleaved and medians reported.\n\n",
    );

    out.push_str("## Method\n\n");
    out.push_str("- Each server is a binary of the `benches` package, built in release, started as a child process with `--addr 127.0.0.1:0`; the harness reads its `LISTENING <addr>` line, runs `loadgen` against it, then kills it by PID.\n");
    let _ = writeln!(
        out,
        "- `loadgen` opens N connections on one thread's epoll (through mio), with `TCP_NODELAY`, and runs a closed loop on each: send a {}-byte message, wait for the whole echo, check it byte for byte, send the next.",
        report.message_bytes
    );
    let _ = writeln!(
        out,
        "- Each run: {} of warmup, then {} measured; requests/s is completed round trips over the measured time, latency is per round trip in an HDR histogram (3 significant digits).",
        seconds(report.warmup),
        seconds(report.duration)
    );
    let _ = writeln!(
        out,
        "- {} round(s); in each round every connection count visits every server once, the first server rotating from round to round; each figure is the median over the rounds, taken column by column, and the spread is half the range of the rounds' requests/s. Ratios (× raw mio, and the targets) are medians of per-round ratios: each round's figure divided by the same round's figure of the other server, run minutes apart at most, which cancels much of the drift of a shared machine.",
        report.rounds
    );
    out.push_str("- Server CPU µs/req is the server process's user plus system time (from `/proc/<pid>/stat`) over the whole run, warmup included, divided by the round trips of the whole run: it shows what a server spends per request even when the load generator, not the server, sets the pace.\n");
    out.push_str("- Client and server share the machine: with few cores the load generator takes one of them, so absolute numbers understate what a server does alone; ratios measured in the same run are what to read.\n");
    out.push_str("- 512 connections need about 520 descriptors in each process, under the usual limit of 1024; for more connections raise it first (`ulimit -n 4096`).\n");
    out.push_str("- Reproduce with `cargo xtask bench` (`--quick` for a smoke run, `--help` for the options); load any server by hand with `cargo run --release -p benches --bin echo-reactor -- --addr 127.0.0.1:7000` and `cargo run --release -p benches --bin loadgen -- --addr 127.0.0.1:7000 --connections 64`.\n\n");

    out.push_str("## Results\n\n");
    out.push_str("![Requests per second by server and connection count](benchmarks.svg)\n\n");
    out.push_str(&table(&report.rows));
    let mismatches: u64 = report.rows.iter().map(|r| r.mismatches).sum();
    let _ = writeln!(
        out,
        "\nEchoes that differed from their request, over all runs: {mismatches}."
    );

    let targets = targets(&report.rows);
    if !targets.is_empty() {
        out.push_str("\n## Targets for the reactor\n\n");
        out.push_str(&targets);
    }

    out.push('\n');
    for section in [&report.lf_section, &report.proactor_section]
        .into_iter()
        .flatten()
    {
        out.push_str(section);
        out.push_str("\n\n");
    }
    out.push_str(NOTES_MARKER);
    out.push_str("\n\n");
    if let Some(notes) = &report.notes {
        out.push_str(notes);
        out.push('\n');
    }
    out
}

fn switches_cell(row: &Row) -> String {
    row.switches
        .map_or_else(|| "–".to_owned(), |(v, i)| format!("{v:.2} + {i:.2}"))
}

/// The leader/followers matrix's table: ratios to tokio multi_thread and to
/// half-sync/half-async, paired by round, with CPU time and context switches per request.
pub(crate) fn lf_table(rows: &[Row]) -> String {
    let mut out = String::new();
    out.push_str(
        "| connections | server | requests/s | rounds' spread | × tokio mt | × hsha | p50 µs | p99 µs | p99 × tokio mt | p99 × hsha | server CPU µs/req | context switches/req (voluntary + involuntary) |\n",
    );
    out.push_str("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for conns in groups(rows) {
        let tokio = find(rows, conns, "tokio-mt");
        let hsha = find(rows, conns, "hsha");
        let vs = |row: &Row, base: Option<&Row>, f: fn(&Row) -> &[f64]| {
            ratio(base.and_then(|b| paired(row, b, f)))
        };
        for row in rows.iter().filter(|r| r.connections == conns) {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {:.1} | {:.1} | {} | {} | {} | {} |",
                conns,
                row.label,
                thousands(row.rps),
                spread(row),
                vs(row, tokio, rps_of),
                vs(row, hsha, rps_of),
                row.p50_us,
                row.p99_us,
                vs(row, tokio, p99_of),
                vs(row, hsha, p99_of),
                row.cpu_us
                    .map_or_else(|| "–".to_owned(), |c| format!("{c:.2}")),
                switches_cell(row),
            );
        }
    }
    out
}

/// Issue 4's targets for leader/followers (each pool size measured) at 64 and 512
/// connections, one line each, with what was measured.
pub(crate) fn lf_targets(rows: &[Row]) -> String {
    let mut out = String::new();
    for &conns in TARGET_CONNECTIONS {
        for key in ["lf-1", "lf-2"] {
            let Some(ours) = find(rows, conns, key) else {
                continue;
            };
            for (base_key, base_name, least) in [
                ("tokio-mt", "tokio multi_thread", LF_VS_TOKIO_MT),
                ("hsha", "half-sync/half-async", LF_VS_HSHA),
            ] {
                let Some(base) = find(rows, conns, base_key) else {
                    continue;
                };
                let verdict = |ok: bool| if ok { "met" } else { "**missed**" };
                if let Some(m) = paired(ours, base, rps_of) {
                    let _ = writeln!(
                        out,
                        "- {conns} connections, {}: requests/s vs {base_name} (target ≥ {least:.2}×): {m:.3}× — {}",
                        ours.label,
                        verdict(m >= least)
                    );
                }
                if let Some(m) = paired(ours, base, p99_of) {
                    let _ = writeln!(
                        out,
                        "- {conns} connections, {}: p99 vs {base_name} (target < 1.00×): {m:.3}× — {}",
                        ours.label,
                        verdict(m < 1.0)
                    );
                }
            }
        }
    }
    out
}

/// The leader/followers matrix's section of `docs/benchmarks.md`, from [`LF_BEGIN`] to
/// [`LF_END`].
pub(crate) fn lf_section(report: &Report) -> String {
    let m = &report.machine;
    let mut out = String::new();
    out.push_str(LF_BEGIN);
    out.push_str("\n\n## Leader/followers matrix\n\n");
    let _ = writeln!(
        out,
        "Written by `cargo xtask bench --matrix lf` on {} ({} logical CPUs, {}): {} round(s), each run {} of warmup then {} measured, servers interleaved, medians and per-round paired ratios as in the echo matrix's method.",
        m.date,
        m.cpus,
        m.cpu_model.as_deref().unwrap_or("CPU unknown"),
        report.rounds,
        seconds(report.warmup),
        seconds(report.duration)
    );
    out.push_str("Leader/followers (`echo-lf --threads N`), half-sync/half-async (`echo-hsha --threads 2`: two synchronous workers besides the demultiplexing thread) and the reactor (`echo-reactor`) run the very same accept and echo handlers (`benches/src/servers/handlers.rs`), so these rows compare dispatchers and nothing else.\n");
    out.push_str("Context switches per request are the server's voluntary and involuntary switches (from `/proc/<pid>/task/*/status`, summed over its threads) over the whole run, warmup included, divided by the run's round trips; they are not measured for thread per connection, whose threads exit with their connections and take their counts with them.\n\n");
    let _ = writeln!(
        out,
        "![Requests per second of the leader/followers matrix]({LF_SVG})\n"
    );
    out.push_str(&lf_table(&report.rows));
    let mismatches: u64 = report.rows.iter().map(|r| r.mismatches).sum();
    let _ = writeln!(
        out,
        "\nEchoes that differed from their request, over all runs: {mismatches}."
    );
    let targets = lf_targets(&report.rows);
    if !targets.is_empty() {
        out.push_str("\n### Targets for leader/followers\n\n");
        out.push_str("Issue 4 asks, at 64 and 512 connections, for leader/followers at least 1.0× tokio multi_thread's requests/s with a lower p99, and at least 1.2× half-sync/half-async's with a lower p99; both pool sizes are judged.\n\n");
        out.push_str(&targets);
    }
    out.push('\n');
    out.push_str(LF_END);
    out
}

fn short(value: f64) -> String {
    if value >= 1_000_000.0 {
        format!("{:.2}M", value / 1_000_000.0)
    } else if value >= 1_000.0 {
        format!("{:.0}k", value / 1_000.0)
    } else {
        format!("{value:.0}")
    }
}

/// A bar chart of requests/s: one panel per connection count, each on its own scale, one bar
/// per server, the value over each bar.
pub(crate) fn svg(rows: &[Row]) -> String {
    const PANEL_W: f64 = 260.0;
    const PLOT_H: f64 = 220.0;
    const TOP: f64 = 60.0;
    const LEFT: f64 = 20.0;
    const GAP: f64 = 20.0;
    let conns = groups(rows);
    let mut servers: Vec<(&str, &str)> = Vec::new();
    for row in rows {
        if !servers.iter().any(|(k, _)| *k == row.key) {
            servers.push((row.key, row.label));
        }
    }
    let width = LEFT * 2.0 + conns.len().max(1) as f64 * (PANEL_W + GAP) - GAP;
    let legend_y = TOP + PLOT_H + 50.0;
    let height = legend_y + 20.0 * servers.len() as f64 + 10.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        out,
        r#"<text x="{:.0}" y="24" font-size="16" text-anchor="middle">Echo requests per second (higher is better), {}-byte messages</text>"#,
        width / 2.0,
        super::MESSAGE_BYTES
    );
    for (p, &c) in conns.iter().enumerate() {
        let x0 = LEFT + p as f64 * (PANEL_W + GAP);
        let cells: Vec<&Row> = rows.iter().filter(|r| r.connections == c).collect();
        let max = cells.iter().map(|r| r.rps).fold(0.0_f64, f64::max);
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.0}" font-size="14" text-anchor="middle">{c} connection{}</text>"#,
            x0 + PANEL_W / 2.0,
            TOP - 16.0,
            if c == 1 { "" } else { "s" }
        );
        let base_y = TOP + PLOT_H;
        let _ = writeln!(
            out,
            r##"<line x1="{x0:.1}" y1="{base_y:.1}" x2="{:.1}" y2="{base_y:.1}" stroke="#333"/>"##,
            x0 + PANEL_W
        );
        let slot = PANEL_W / cells.len().max(1) as f64;
        for (i, row) in cells.iter().enumerate() {
            let h = if max > 0.0 {
                row.rps / max * (PLOT_H - 10.0)
            } else {
                0.0
            };
            let x = x0 + i as f64 * slot + slot * 0.15;
            let w = slot * 0.7;
            let y = base_y - h;
            let _ = writeln!(
                out,
                r#"<rect class="bar" x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" fill="{}"><title>{}, {c} connections: {} requests/s, p99 {:.1} µs</title></rect>"#,
                colour(COLOURS, row.key),
                escape(row.label),
                thousands(row.rps),
                row.p99_us
            );
            let _ = writeln!(
                out,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                x + w / 2.0,
                y - 4.0,
                short(row.rps)
            );
        }
    }
    for (i, (key, label)) in servers.iter().enumerate() {
        let y = legend_y + 20.0 * i as f64;
        let _ = writeln!(
            out,
            r#"<rect x="{LEFT:.0}" y="{:.0}" width="12" height="12" fill="{}"/><text x="{:.0}" y="{:.0}">{}</text>"#,
            y - 10.0,
            colour(COLOURS, key),
            LEFT + 18.0,
            y,
            escape(label)
        );
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(connections: usize, key: &'static str, rps: f64, p99_us: f64) -> Row {
        Row {
            connections,
            key,
            label: match key {
                "raw-mio" => "raw mio (ceiling)",
                "reactor" => "reactor (ours)",
                "tokio" => "tokio current_thread",
                _ => "threads & co",
            },
            rps,
            rps_range: (rps * 0.9, rps * 1.1),
            round_rps: vec![rps * 0.9, rps, rps * 1.1],
            round_p99: vec![p99_us; 3],
            round_cpu: vec![2.5; 3],
            p50_us: 10.0,
            p99_us,
            cpu_us: Some(2.5),
            switches: Some((1.25, 0.5)),
            runs: 3,
            mismatches: 0,
        }
    }

    fn rows() -> Vec<Row> {
        vec![
            row(1, "raw-mio", 50_000.0, 20.0),
            row(1, "reactor", 45_000.0, 22.0),
            row(64, "raw-mio", 200_000.0, 1_000.0),
            row(64, "reactor", 196_000.0, 1_050.0),
            row(64, "tokio", 180_000.0, 1_200.0),
            row(64, "threads", 150_000.0, 3_000.0),
        ]
    }

    fn report(notes: Option<&str>) -> Report {
        Report {
            machine: Machine {
                cpus: 2,
                cpu_model: Some("Test CPU".to_owned()),
                kernel: Some("6.1.0".to_owned()),
                open_files: Some(1024),
                date: "2026-11-26".to_owned(),
            },
            duration: Duration::from_secs(3),
            warmup: Duration::from_millis(500),
            rounds: 3,
            message_bytes: 64,
            rows: rows(),
            notes: notes.map(str::to_owned),
            lf_section: None,
            proactor_section: None,
        }
    }

    fn lf_rows() -> Vec<Row> {
        let mut rows = Vec::new();
        for conns in [1, 64, 512] {
            rows.push(row(conns, "lf-2", 300_000.0, 500.0));
            rows.push(row(conns, "hsha", 200_000.0, 1_500.0));
            rows.push(row(conns, "tokio-mt", 310_000.0, 400.0));
        }
        rows
    }

    #[test]
    fn the_table_gives_ratios_to_raw_mio_per_connection_count() {
        let t = table(&rows());
        assert!(
            t.contains(
                "| 64 | reactor (ours) | 196,000 | ±10% | 0.98× | 10.0 | 1050.0 | 1.05× | 2.50 |"
            ),
            "{t}"
        );
        assert!(
            t.contains("| 1 | raw mio (ceiling) | 50,000 | ±10% | 1.00× |"),
            "{t}"
        );
        let mut lonely = row(8, "tokio", 1.0, 1.0);
        lonely.runs = 1;
        let without_raw = table(&[lonely]);
        assert!(without_raw.contains("| 1 | – | – |"), "{without_raw}");
    }

    #[test]
    fn ratios_pair_rounds_before_taking_the_median() {
        let mut raw = row(64, "raw-mio", 100.0, 1.0);
        let mut ours = row(64, "reactor", 95.0, 1.0);
        raw.round_rps = vec![100.0, 50.0, 100.0];
        ours.round_rps = vec![95.0, 48.0, 96.0];
        let r = paired(&ours, &raw, rps_of).unwrap();
        assert!(
            (r - 0.96).abs() < 1e-9,
            "median of 0.95, 0.96, 0.96 is 0.96, got {r}"
        );
        raw.round_rps = vec![0.0];
        assert_eq!(
            paired(&ours, &raw, rps_of),
            None,
            "zero baselines are skipped"
        );
    }

    #[test]
    fn targets_are_judged_only_where_both_sides_were_measured() {
        let t = targets(&rows());
        assert!(
            t.contains("64 connections, requests/s vs raw mio (target ≥ 0.95×): 0.980× — met"),
            "{t}"
        );
        assert!(
            t.contains("vs tokio current_thread (target ≥ 1.00×): 1.089× — met"),
            "{t}"
        );
        assert!(
            t.contains("p99 vs raw mio (target ≤ 1.10×): 1.050× — met"),
            "{t}"
        );
        assert!(
            !t.contains("512"),
            "no 512-connection rows, no verdicts: {t}"
        );
        let mut slow = rows();
        slow[3].round_rps = vec![150_000.0; 3];
        assert!(targets(&slow).contains("0.750× — **missed**"));
    }

    #[test]
    fn markdown_has_machine_method_chart_table_and_keeps_notes() {
        let md = markdown(&report(Some("## Why\n\nBecause.")));
        for needle in [
            "logical CPUs (nproc): 2",
            "kernel: 6.1.0",
            "0.5 s of warmup, then 3 s measured",
            "3 round(s)",
            "![Requests per second by server and connection count](benchmarks.svg)",
            "| 64 | tokio current_thread | 180,000 | ±10% | 0.90× |",
            "## Targets for the reactor",
        ] {
            assert!(md.contains(needle), "markdown lacks `{needle}`:\n{md}");
        }
        assert_eq!(kept_notes(&md), Some("## Why\n\nBecause."));
        assert_eq!(
            markdown(&report(kept_notes(&md))),
            md,
            "rewriting is stable"
        );
        assert_eq!(kept_notes(&markdown(&report(None))), None);
        assert_eq!(kept_notes("no marker at all"), None);
    }

    #[test]
    fn the_lf_table_pairs_rounds_against_tokio_mt_and_hsha() {
        let t = lf_table(&lf_rows());
        assert!(
            t.contains(
                "| 64 | threads & co | 300,000 | ±10% | 0.97× | 1.50× | 10.0 | 500.0 | 1.25× | 0.33× | 2.50 | 1.25 + 0.50 |"
            ),
            "{t}"
        );
        let mut lonely = row(8, "lf-2", 1.0, 1.0);
        lonely.switches = None;
        assert!(lf_table(&[lonely]).contains("| – | – | 10.0 | 1.0 | – | – | 2.50 | – |"));
    }

    #[test]
    fn lf_targets_judge_requests_and_p99_against_both_baselines() {
        let t = lf_targets(&lf_rows());
        for needle in [
            "- 64 connections, threads & co: requests/s vs tokio multi_thread (target ≥ 1.00×): 0.968× — **missed**",
            "- 64 connections, threads & co: p99 vs tokio multi_thread (target < 1.00×): 1.250× — **missed**",
            "- 512 connections, threads & co: requests/s vs half-sync/half-async (target ≥ 1.20×): 1.500× — met",
            "- 512 connections, threads & co: p99 vs half-sync/half-async (target < 1.00×): 0.333× — met",
        ] {
            assert!(t.contains(needle), "lacks `{needle}`:\n{t}");
        }
        assert!(!t.contains("- 1 connections"), "1 connection is not judged");
    }

    #[test]
    fn the_lf_section_is_spliced_in_and_kept_by_the_echo_matrix() {
        let lf = Report {
            rows: lf_rows(),
            ..report(None)
        };
        let section = lf_section(&lf);
        assert!(section.starts_with(LF_BEGIN) && section.ends_with(LF_END));
        assert!(section.contains("## Leader/followers matrix"));
        assert!(section.contains("](benchmarks-lf.svg)"));
        assert!(section.contains("### Targets for leader/followers"));

        // Into a file written by the echo matrix: before the notes, the rest untouched.
        let echo = markdown(&report(Some("## Why\n\nBecause.")));
        let spliced = splice_lf_section(Some(&echo), &section);
        let at = echo.find(NOTES_MARKER).unwrap();
        assert!(spliced.starts_with(&echo[..at]));
        assert!(spliced.ends_with(&echo[at..]));
        assert_eq!(kept_lf_section(&spliced), Some(section.as_str()));
        assert_eq!(kept_notes(&spliced), Some("## Why\n\nBecause."));

        // A rerun of the echo matrix keeps it, and so does a rerun of the lf matrix.
        let rerun = Report {
            lf_section: kept_lf_section(&spliced).map(str::to_owned),
            ..report(kept_notes(&spliced))
        };
        assert_eq!(
            markdown(&rerun),
            spliced,
            "the echo matrix keeps the section"
        );
        let newer = section.replace("300,000", "333,333");
        let again = splice_lf_section(Some(&spliced), &newer);
        assert_eq!(again, spliced.replace("300,000", "333,333"));
        assert_eq!(again.matches(LF_BEGIN).count(), 1);

        // No file yet, or one without the notes marker.
        let fresh = splice_lf_section(None, &section);
        assert_eq!(kept_lf_section(&fresh), Some(section.as_str()));
        assert!(fresh.contains(NOTES_MARKER));
        let bare = splice_lf_section(Some("# Old\n"), &section);
        assert!(bare.starts_with("# Old\n\n") && bare.ends_with(&format!("{LF_END}\n")));
    }

    #[test]
    fn the_svg_has_a_panel_per_connection_count_and_a_bar_per_cell() {
        let svg = svg(&rows());
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("class=\"bar\"").count(), rows().len());
        assert!(svg.contains(">1 connection</text>") && svg.contains(">64 connections</text>"));
        assert!(svg.contains("threads &amp; co"), "labels are escaped");
        assert!(!svg.contains("threads & co"));
        assert!(svg.contains(">196k</text>"));
        // The tallest bar of a panel fills the plot; the others are in proportion.
        assert!(
            svg.contains(r##"y="70.0" width="45.5" height="210.0" fill="#7f7f7f""##),
            "{svg}"
        );
    }

    #[test]
    fn proc_files_are_read() {
        let cpuinfo = "processor\t: 0\nvendor_id\t: X\nmodel name\t: Fast CPU @ 3GHz\n\nmodel name\t: other\n";
        assert_eq!(cpu_model(cpuinfo).as_deref(), Some("Fast CPU @ 3GHz"));
        assert_eq!(cpu_model("nothing"), None);
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max open files            1024                 524288               files     \n";
        assert_eq!(open_files_limit(limits), Some(1024));
        assert_eq!(open_files_limit("Max open files unlimited"), None);
    }

    #[test]
    fn big_numbers_get_short_forms() {
        assert_eq!(short(1_500_000.0), "1.50M");
        assert_eq!(short(12_345.0), "12k");
        assert_eq!(short(12.0), "12");
    }
}
