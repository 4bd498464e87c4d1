//! The figures and the report of `cargo xtask bench-logging`: medians, paired ratios, verdicts,
//! `docs/benchmarks-logging.md` and its SVG chart.
//!
//! Everything here is pure text in, text out.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use lab_report::{IngestReport, colour, escape, median, thousands};

/// The line after which text is written by hand and kept on rewrites.
pub(crate) const NOTES_MARKER: &str =
    "<!-- Below this line: written by hand, kept by `cargo xtask bench-logging`. -->";

/// logd's ingest rate at least this multiple of `ace_netsvcs`'s, on the ACE format.
pub(crate) const TARGET_VS_ACE: f64 = 2.0;
/// logd's ingest rate at least this multiple of the faster of rsyslog and syslog-ng.
pub(crate) const TARGET_VS_SYSLOG: f64 = 1.25;
/// Peak resident memory with the idle connections open, at most this many MiB.
pub(crate) const TARGET_MEMORY_MIB: f64 = 64.0;

/// The wire format of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Wire {
    /// ACE's logging protocol.
    Ace,
    /// RFC 5424 over TCP with octet counting.
    Syslog,
}

impl Wire {
    /// The `--format` value of `ingest`.
    pub(crate) fn arg(self) -> &'static str {
        match self {
            Wire::Ace => "ace",
            Wire::Syslog => "syslog",
        }
    }

    /// How the report names it.
    pub(crate) fn title(self) -> &'static str {
        match self {
            Wire::Ace => "ACE logging protocol",
            Wire::Syslog => "syslog (RFC 5424, octet counting) over TCP",
        }
    }
}

/// What one `ingest` run reported, plus the server's CPU time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Sample {
    /// Records sent.
    pub(crate) sent: u64,
    /// Records found in the files.
    pub(crate) stored: u64,
    /// Stored records per second, end to end.
    pub(crate) rate: f64,
    /// The server's CPU time (user and system) per stored record, microseconds.
    pub(crate) cpu_us: Option<f64>,
}

/// Reads `ingest`'s report, the last JSON line of its stdout.
pub(crate) fn parse_sample(stdout: &str) -> Result<Sample, String> {
    let report = IngestReport::from_stdout(stdout)?;
    Ok(Sample {
        sent: report.sent,
        stored: report.stored,
        rate: report.records_per_sec,
        cpu_us: None,
    })
}

/// A `kB` field (`VmHWM`, `VmRSS`) of `/proc/PID/status`, in KiB.
pub(crate) fn status_kib(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        let mut parts = rest.split_whitespace();
        let value = parts.next()?.parse().ok()?;
        (parts.next() == Some("kB")).then_some(value)
    })
}

/// Every sample, by (wire, connections, server key), one per round in round order; a round
/// whose run failed holds `None`.
pub(crate) type Samples = BTreeMap<(Wire, usize, &'static str), Vec<Option<Sample>>>;

/// The median over rounds of `ours / base(round)`, where `base` is the best of `peers` in that
/// round: neighbours in time share the machine's mood, so per-round ratios are steadier than
/// a ratio of medians. Rounds where anything is missing are left out.
pub(crate) fn paired_ratio(
    samples: &Samples,
    wire: Wire,
    connections: usize,
    ours: &str,
    peers: &[&str],
) -> Option<f64> {
    let get = |key: &str| {
        samples
            .iter()
            .find(|((w, c, k), _)| *w == wire && *c == connections && *k == key)
            .map(|(_, v)| v)
    };
    let ours = get(ours)?;
    let peers: Vec<&Vec<Option<Sample>>> = peers.iter().filter_map(|k| get(k)).collect();
    if peers.is_empty() {
        return None;
    }
    let ratios: Vec<f64> = (0..ours.len())
        .filter_map(|round| {
            let mine = ours[round].filter(complete)?.rate;
            let best = peers
                .iter()
                .filter_map(|p| p.get(round).copied().flatten().filter(complete))
                .map(|s| s.rate)
                .fold(None, |acc: Option<f64>, r| {
                    Some(acc.map_or(r, |a| a.max(r)))
                })?;
            (best > 0.0).then(|| mine / best)
        })
        .collect();
    median(&ratios)
}

/// Whether every record sent was stored.
fn complete(sample: &Sample) -> bool {
    sample.stored >= sample.sent
}

/// One row of the ingest table: a server on a wire format at one connection count.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    /// The wire format.
    pub(crate) wire: Wire,
    /// Connections.
    pub(crate) connections: usize,
    /// The server's key.
    pub(crate) key: &'static str,
    /// The server's label.
    pub(crate) label: &'static str,
    /// Median records/s over the complete rounds.
    pub(crate) rate: Option<f64>,
    /// Lowest and highest records/s.
    pub(crate) range: Option<(f64, f64)>,
    /// Median server CPU per record, microseconds.
    pub(crate) cpu_us: Option<f64>,
    /// Complete rounds and all rounds.
    pub(crate) complete: (usize, usize),
}

/// One row per (wire, connections, server) in the order given.
pub(crate) fn summarise(
    samples: &Samples,
    order: &[(Wire, &'static str, &'static str)],
    connections: &[usize],
) -> Vec<Row> {
    let mut rows = Vec::new();
    for &(wire, key, label) in order {
        for &conns in connections {
            let Some(runs) = samples.get(&(wire, conns, key)) else {
                continue;
            };
            let ok: Vec<Sample> = runs.iter().flatten().copied().filter(complete).collect();
            let rates: Vec<f64> = ok.iter().map(|s| s.rate).collect();
            let cpu: Vec<f64> = ok.iter().filter_map(|s| s.cpu_us).collect();
            rows.push(Row {
                wire,
                connections: conns,
                key,
                label,
                rate: median(&rates),
                range: (!rates.is_empty()).then(|| {
                    (
                        rates.iter().copied().fold(f64::INFINITY, f64::min),
                        rates.iter().copied().fold(0.0, f64::max),
                    )
                }),
                cpu_us: median(&cpu),
                complete: (ok.len(), runs.len()),
            });
        }
    }
    rows
}

/// A ratio against a target.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Ratio {
    /// The wire format.
    pub(crate) wire: Wire,
    /// Connections.
    pub(crate) connections: usize,
    /// Our server's label.
    pub(crate) ours: &'static str,
    /// What it is compared with.
    pub(crate) against: String,
    /// The paired median ratio.
    pub(crate) value: Option<f64>,
    /// The target.
    pub(crate) target: f64,
}

/// One idle-memory measurement.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Memory {
    /// The server's label.
    pub(crate) label: &'static str,
    /// Whether the target applies (ours) or it is a reference (peers).
    pub(crate) ours: bool,
    /// Connections opened and records counted in the files.
    pub(crate) held: u64,
    /// Connections asked for.
    pub(crate) asked: u64,
    /// Resident memory after start-up, KiB.
    pub(crate) start_kib: Option<u64>,
    /// Peak resident memory (`VmHWM`) with every connection open, KiB.
    pub(crate) peak_kib: Option<u64>,
    /// What went wrong, if anything.
    pub(crate) error: Option<String>,
}

/// Everything the report shows.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Report {
    /// Lines describing the machine and the peers' versions.
    pub(crate) machine: Vec<String>,
    /// Rounds.
    pub(crate) rounds: usize,
    /// Records per run (all connections together).
    pub(crate) records: usize,
    /// Message bytes per record.
    pub(crate) message_bytes: usize,
    /// logd's `--threads`.
    pub(crate) threads: usize,
    /// The ingest rows.
    pub(crate) rows: Vec<Row>,
    /// The ratios.
    pub(crate) ratios: Vec<Ratio>,
    /// The idle-memory runs.
    pub(crate) memory: Vec<Memory>,
    /// Servers that could not take part, with the reason.
    pub(crate) skipped: Vec<String>,
    /// Text kept from the previous report.
    pub(crate) notes: Option<String>,
}

/// The hand-written notes of an old report, if any.
pub(crate) fn kept_notes(old: &str) -> Option<&str> {
    let (_, notes) = old.split_once(NOTES_MARKER)?;
    let notes = notes.trim_matches('\n');
    (!notes.trim().is_empty()).then_some(notes)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn verdict(value: Option<f64>, pass: impl Fn(f64) -> bool) -> &'static str {
    match value {
        Some(v) if pass(v) => "met",
        Some(_) => "**missed**",
        None => "not measured",
    }
}

/// The plain-text table printed at the end of a run.
pub(crate) fn table(report: &Report) -> String {
    let mut out = String::new();
    for row in &report.rows {
        let _ = writeln!(
            out,
            "{:<7} {:>3} conns  {:<34} {:>12} rec/s  cpu {:>6} us/rec  ({}/{} complete)",
            row.wire.arg(),
            row.connections,
            row.label,
            row.rate.map_or("-".to_owned(), thousands),
            row.cpu_us.map_or("-".to_owned(), |c| format!("{c:.2}")),
            row.complete.0,
            row.complete.1
        );
    }
    for r in &report.ratios {
        let _ = writeln!(
            out,
            "{} {:>3} conns  {} / {}: {} (target {:.2}x, {})",
            r.wire.arg(),
            r.connections,
            r.ours,
            r.against,
            r.value.map_or("-".to_owned(), |v| format!("{v:.2}x")),
            r.target,
            verdict(r.value, |v| v >= r.target).trim_matches('*')
        );
    }
    for m in &report.memory {
        let _ = writeln!(
            out,
            "memory  {:<34} {}/{} idle connections  peak {}",
            m.label,
            m.held,
            m.asked,
            m.peak_kib
                .map_or("-".to_owned(), |k| format!("{:.1} MiB", mib(k)))
        );
    }
    out
}

/// `docs/benchmarks-logging.md`.
pub(crate) fn markdown(report: &Report, svg_name: &str) -> String {
    let mut md = String::new();
    let w = &mut md;
    let _ = writeln!(w, "# Benchmarks: logging-service ingest\n");
    let _ = writeln!(
        w,
        "Written by `cargo xtask bench-logging`; rerun it to refresh every figure below."
    );
    let _ = writeln!(
        w,
        "What is measured is issue 10's end-to-end ingest: records per second counted in the files the server writes, with 1 and 16 connections, logd under each of its three concurrency models side by side with ACE's own `ace_netsvcs` on the ACE format and with rsyslog and syslog-ng on syslog over TCP.\n"
    );

    let _ = writeln!(w, "## Machine\n");
    for line in &report.machine {
        let _ = writeln!(w, "- {line}");
    }
    let _ = writeln!(w);

    let _ = writeln!(w, "## Method\n");
    let _ = writeln!(
        w,
        "- One client for every server: `benches/src/bin/ingest.rs` opens the connections (2 ms apart: `ace_netsvcs` listens with a backlog of 5), releases them together, writes every record as fast as the server reads, closes, and polls the server's files until they hold every record sent (at most 120 s)."
    );
    let _ = writeln!(
        w,
        "- The clock runs from the first byte sent to the moment the files hold the last record: records/s = records stored / that time."
    );
    let _ = writeln!(
        w,
        "- {} records per run in all ({} per connection with 16 connections), {} bytes of message text each; each record carries a run marker and only lines holding it are counted.",
        thousands(report.records as f64),
        thousands((report.records / 16) as f64),
        report.message_bytes
    );
    let _ = writeln!(
        w,
        "- Every server writes one line per record to a file, with time, host, process and priority: logd its own format (`--fsync none`, rotation out of reach, `--threads {}`), `ace_netsvcs` through ACE's Logging Strategy (`-s FILE -f OSTREAM|VERBOSE`), rsyslog through `omfile` and syslog-ng through `file()` with templates of the same fields.",
        report.threads
    );
    let _ = writeln!(
        w,
        "- Each run starts the server afresh on 127.0.0.1 (a high port) with an empty directory, and stops it by its PID afterwards."
    );
    let _ = writeln!(
        w,
        "- {} rounds; within a round every (format, connections) visits every server once, the first server rotating from round to round; figures are medians over the rounds.",
        report.rounds
    );
    let _ = writeln!(
        w,
        "- Ratios are paired: in each round logd's rate is divided by the peer's rate of that same round (the faster of rsyslog and syslog-ng in that round), and the median of those ratios is reported."
    );
    let _ = writeln!(
        w,
        "- CPU is the server's user plus system time during the run (from `/proc/PID/stat`), per record stored."
    );
    let _ = writeln!(
        w,
        "- The client runs on the same machine, so client, server and kernel share its CPUs.\n"
    );

    let _ = writeln!(w, "## Ingest\n");
    let _ = writeln!(w, "![records per second]({svg_name})\n");
    let mut wires: Vec<Wire> = report.rows.iter().map(|r| r.wire).collect();
    wires.dedup();
    for wire in wires {
        let _ = writeln!(w, "### {}\n", wire.title());
        let _ = writeln!(
            w,
            "| server | connections | records/s (median) | lowest – highest | server CPU µs/record | complete runs |"
        );
        let _ = writeln!(w, "|---|---:|---:|---:|---:|---:|");
        for row in report.rows.iter().filter(|r| r.wire == wire) {
            let _ = writeln!(
                w,
                "| {} | {} | {} | {} | {} | {}/{} |",
                row.label,
                row.connections,
                row.rate.map_or("–".to_owned(), thousands),
                row.range.map_or("–".to_owned(), |(lo, hi)| format!(
                    "{} – {}",
                    thousands(lo),
                    thousands(hi)
                )),
                row.cpu_us.map_or("–".to_owned(), |c| format!("{c:.2}")),
                row.complete.0,
                row.complete.1
            );
        }
        let _ = writeln!(w);
    }

    let _ = writeln!(w, "## Ratios and targets\n");
    let _ = writeln!(
        w,
        "| format | connections | logd model | compared with | ratio | target | verdict |"
    );
    let _ = writeln!(w, "|---|---:|---|---|---:|---:|---|");
    for r in &report.ratios {
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} | {} | ≥ {:.2}× | {} |",
            r.wire.arg(),
            r.connections,
            r.ours,
            r.against,
            r.value.map_or("–".to_owned(), |v| format!("{v:.2}×")),
            r.target,
            verdict(r.value, |v| v >= r.target)
        );
    }
    let _ = writeln!(w);

    let _ = writeln!(w, "### Verdicts\n");
    for line in verdicts(report) {
        let _ = writeln!(w, "- {line}");
    }
    let _ = writeln!(w);

    let _ = writeln!(w, "## Memory with idle connections\n");
    if report.memory.is_empty() {
        let _ = writeln!(w, "Not measured in this run.\n");
    } else {
        let _ = writeln!(
            w,
            "Each server is started afresh; `ingest --hold` opens the connections one after the other, sends one syslog record on each, waits until the files hold them all, and keeps every connection open while the server's `VmHWM` (peak resident set) is read from `/proc/PID/status`.\n"
        );
        let _ = writeln!(
            w,
            "| server | idle connections held | RSS after start-up | peak RSS (VmHWM) | target ≤ {TARGET_MEMORY_MIB:.0} MiB |",
        );
        let _ = writeln!(w, "|---|---:|---:|---:|---|");
        for m in &report.memory {
            let peak = m.peak_kib.map(mib);
            let verdict = if let Some(e) = &m.error {
                format!("failed: {e}")
            } else if !m.ours {
                "(reference)".to_owned()
            } else if m.held < m.asked {
                "**missed** (not every connection held)".to_owned()
            } else {
                verdict(peak, |v| v <= TARGET_MEMORY_MIB).to_owned()
            };
            let _ = writeln!(
                w,
                "| {} | {} / {} | {} | {} | {} |",
                m.label,
                thousands(m.held as f64),
                thousands(m.asked as f64),
                m.start_kib
                    .map_or("–".to_owned(), |k| format!("{:.1} MiB", mib(k))),
                peak.map_or("–".to_owned(), |p| format!("{p:.1} MiB")),
                verdict
            );
        }
        let _ = writeln!(w);
    }
    if !report.skipped.is_empty() {
        let _ = writeln!(w, "## Not measured\n");
        for s in &report.skipped {
            let _ = writeln!(w, "- {s}");
        }
        let _ = writeln!(w);
    }
    let _ = writeln!(w, "{NOTES_MARKER}\n");
    if let Some(notes) = &report.notes {
        let _ = writeln!(w, "{notes}");
    }
    md
}

/// One sentence per target and connection count: which logd models met it, which missed.
pub(crate) fn verdicts(report: &Report) -> Vec<String> {
    let mut lines = Vec::new();
    let mut groups: Vec<(Wire, usize)> = Vec::new();
    for r in &report.ratios {
        if !groups.contains(&(r.wire, r.connections)) {
            groups.push((r.wire, r.connections));
        }
    }
    let list = |items: &[&Ratio]| {
        items
            .iter()
            .map(|r| {
                let v = r.value.map_or("–".to_owned(), |v| format!("{v:.2}×"));
                format!("{} ({v})", r.ours)
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (wire, conns) in groups {
        let here: Vec<&Ratio> = report
            .ratios
            .iter()
            .filter(|r| r.wire == wire && r.connections == conns)
            .collect();
        let Some(first) = here.first() else { continue };
        let (met, missed): (Vec<&Ratio>, Vec<&Ratio>) = here
            .iter()
            .partition(|r| r.value.is_some_and(|v| v >= r.target));
        let mut line = format!(
            "{} with {conns} connection{}, ≥ {:.2}× {}: ",
            wire.arg(),
            if conns == 1 { "" } else { "s" },
            first.target,
            first.against
        );
        if missed.is_empty() {
            line.push_str(&format!("**met** by every model: {}.", list(&met)));
        } else if met.is_empty() {
            line.push_str(&format!("**missed** by every model: {}.", list(&missed)));
        } else {
            line.push_str(&format!(
                "met by {}; **missed** by {}.",
                list(&met),
                list(&missed)
            ));
        }
        lines.push(line);
    }
    let ours: Vec<&Memory> = report.memory.iter().filter(|m| m.ours).collect();
    if !ours.is_empty() {
        let within = |m: &&Memory| {
            m.error.is_none()
                && m.held >= m.asked
                && m.peak_kib.is_some_and(|k| mib(k) <= TARGET_MEMORY_MIB)
        };
        let worst = ours.iter().filter_map(|m| m.peak_kib).max().map(mib);
        let asked = ours.iter().map(|m| m.asked).max().unwrap_or(0);
        lines.push(format!(
            "peak memory with {} idle connections ≤ {TARGET_MEMORY_MIB:.0} MiB: {} (highest peak {}).",
            thousands(asked as f64),
            if ours.iter().all(within) {
                "**met** by every model"
            } else {
                "**missed** by at least one model"
            },
            worst.map_or("–".to_owned(), |w| format!("{w:.1} MiB"))
        ));
    }
    lines
}

/// Bar colours, by server key.
const COLOURS: &[(&str, &str)] = &[
    ("logd-reactor", "#d62728"),
    ("logd-leader-followers", "#ff7f0e"),
    ("logd-half-sync-half-async", "#8c564b"),
    ("ace", "#7f7f7f"),
    ("rsyslog", "#1f77b4"),
    ("syslog-ng", "#2ca02c"),
];

/// A horizontal bar chart: one group per (format, connections), one bar per server.
pub(crate) fn svg(rows: &[Row]) -> String {
    const LEFT: f64 = 250.0;
    const WIDTH: f64 = 760.0;
    const BAR: f64 = 16.0;
    const GAP: f64 = 26.0;
    let max = rows
        .iter()
        .filter_map(|r| r.rate)
        .fold(0.0_f64, f64::max)
        .max(1.0);
    let mut groups: Vec<(Wire, usize)> = Vec::new();
    for r in rows {
        if !groups.contains(&(r.wire, r.connections)) {
            groups.push((r.wire, r.connections));
        }
    }
    let bars = rows.len() as f64;
    let height = 40.0 + bars * (BAR + 4.0) + groups.len() as f64 * GAP + 20.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{height:.0}" font-family="sans-serif" font-size="12">"#,
        LEFT + WIDTH + 110.0
    );
    let _ = writeln!(
        s,
        r#"<rect width="100%" height="100%" fill="white"/><text x="10" y="20" font-size="14" font-weight="bold">Records stored per second (median), longer is better</text>"#
    );
    let mut y = 40.0;
    for (wire, conns) in groups {
        let _ = writeln!(
            s,
            r#"<text x="10" y="{:.0}" font-weight="bold">{} — {} connection{}</text>"#,
            y + 12.0,
            escape(wire.arg()),
            conns,
            if conns == 1 { "" } else { "s" }
        );
        y += GAP - 6.0;
        for r in rows
            .iter()
            .filter(|r| r.wire == wire && r.connections == conns)
        {
            let rate = r.rate.unwrap_or(0.0);
            let len = WIDTH * rate / max;
            let _ = writeln!(
                s,
                r#"<text x="{:.0}" y="{:.0}" text-anchor="end">{}</text><rect x="{LEFT:.0}" y="{y:.0}" width="{len:.1}" height="{BAR:.0}" fill="{}"/><text x="{:.1}" y="{:.0}">{}</text>"#,
                LEFT - 6.0,
                y + 12.0,
                escape(r.label),
                colour(COLOURS, r.key),
                LEFT + len + 4.0,
                y + 12.0,
                r.rate.map_or("–".to_owned(), thousands)
            );
            y += BAR + 4.0;
        }
        y += 6.0;
    }
    let _ = writeln!(s, "</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(rate: f64) -> Option<Sample> {
        Some(Sample {
            sent: 10,
            stored: 10,
            rate,
            cpu_us: Some(1.0),
        })
    }

    #[test]
    fn parses_the_last_json_line() {
        let line = IngestReport::new(1, 5, 4, 0.5, 1.6).to_json();
        let s = parse_sample(&format!("noise\n{line}\n")).unwrap();
        assert_eq!((s.sent, s.stored, s.rate), (5, 4, 2.5));
        assert!(parse_sample("nothing").is_err());
    }

    #[test]
    fn reads_status_fields() {
        let status = "Name:\tlogd\nVmPeak:\t  99999 kB\nVmHWM:\t   13312 kB\nVmRSS:\t 12000 kB\n";
        assert_eq!(status_kib(status, "VmHWM"), Some(13312));
        assert_eq!(status_kib(status, "VmRSS"), Some(12000));
        assert_eq!(status_kib(status, "VmSwap"), None);
    }

    #[test]
    fn paired_ratio_uses_the_best_peer_of_each_round_and_skips_gaps() {
        let mut s = Samples::new();
        s.insert(
            (Wire::Syslog, 1, "ours"),
            vec![sample(300.0), sample(200.0), sample(100.0)],
        );
        s.insert(
            (Wire::Syslog, 1, "a"),
            vec![sample(100.0), sample(100.0), None],
        );
        s.insert(
            (Wire::Syslog, 1, "b"),
            vec![sample(150.0), sample(50.0), None],
        );
        // Round 1: 300/150 = 2, round 2: 200/100 = 2, round 3 has no peer.
        assert_eq!(
            paired_ratio(&s, Wire::Syslog, 1, "ours", &["a", "b"]),
            Some(2.0)
        );
        assert_eq!(paired_ratio(&s, Wire::Syslog, 1, "ours", &["zz"]), None);
        assert_eq!(paired_ratio(&s, Wire::Ace, 1, "ours", &["a"]), None);
    }

    #[test]
    fn incomplete_runs_are_left_out_of_rows_and_ratios() {
        let short = Some(Sample {
            sent: 10,
            stored: 9,
            rate: 1e9,
            cpu_us: None,
        });
        let mut s = Samples::new();
        s.insert((Wire::Ace, 16, "ours"), vec![short, sample(10.0)]);
        s.insert((Wire::Ace, 16, "ace"), vec![sample(1.0), sample(5.0)]);
        assert_eq!(paired_ratio(&s, Wire::Ace, 16, "ours", &["ace"]), Some(2.0));
        let rows = summarise(&s, &[(Wire::Ace, "ours", "Ours")], &[16]);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].rate, Some(10.0));
        assert_eq!(rows[0].complete, (1, 2));
    }

    fn report() -> Report {
        let mut s = Samples::new();
        s.insert((Wire::Ace, 1, "logd-reactor"), vec![sample(300.0)]);
        s.insert((Wire::Ace, 1, "ace"), vec![sample(100.0)]);
        let order = [
            (Wire::Ace, "logd-reactor", "logd, reactor"),
            (Wire::Ace, "ace", "ace_netsvcs"),
        ];
        Report {
            machine: vec!["2 CPUs".into()],
            rounds: 1,
            records: 1000,
            message_bytes: 64,
            threads: 2,
            rows: summarise(&s, &order, &[1]),
            ratios: vec![Ratio {
                wire: Wire::Ace,
                connections: 1,
                ours: "logd, reactor",
                against: "ace_netsvcs".into(),
                value: paired_ratio(&s, Wire::Ace, 1, "logd-reactor", &["ace"]),
                target: TARGET_VS_ACE,
            }],
            memory: vec![
                Memory {
                    label: "logd, reactor",
                    ours: true,
                    held: 10,
                    asked: 10,
                    start_kib: Some(2048),
                    peak_kib: Some(70 * 1024),
                    error: None,
                },
                Memory {
                    label: "rsyslog",
                    ours: false,
                    held: 10,
                    asked: 10,
                    start_kib: None,
                    peak_kib: Some(1024),
                    error: None,
                },
            ],
            skipped: vec!["syslog-ng: not found".into()],
            notes: Some("kept text".into()),
        }
    }

    #[test]
    fn markdown_shows_rows_ratios_verdicts_and_keeps_notes() {
        let md = markdown(&report(), "x.svg");
        assert!(md.contains("| logd, reactor | 1 | 300 |"), "{md}");
        assert!(md.contains("| ace | 1 | logd, reactor | ace_netsvcs | 3.00× | ≥ 2.00× | met |"));
        assert!(md.contains("| 70.0 MiB | **missed** |"), "{md}");
        assert!(md.contains("| 1.0 MiB | (reference) |"));
        assert!(md.contains("- syslog-ng: not found"));
        assert_eq!(kept_notes(&md), Some("kept text"));
        assert!(md.contains("![records per second](x.svg)"));
    }

    #[test]
    fn verdicts_name_who_met_and_who_missed() {
        let mut r = report();
        r.ratios.push(Ratio {
            ours: "logd, leader/followers",
            value: Some(1.5),
            ..r.ratios[0].clone()
        });
        let v = verdicts(&r);
        assert_eq!(
            v[0],
            "ace with 1 connection, ≥ 2.00× ace_netsvcs: met by logd, reactor (3.00×); **missed** by logd, leader/followers (1.50×)."
        );
        assert!(
            v[1].contains("**missed** by at least one model (highest peak 70.0 MiB)"),
            "{v:?}"
        );
        r.ratios.truncate(1);
        r.memory[0].peak_kib = Some(10 * 1024);
        let v = verdicts(&r);
        assert!(v[0].contains("**met** by every model: logd, reactor (3.00×)."));
        assert!(v[1].contains("**met** by every model (highest peak 10.0 MiB)"));
    }

    #[test]
    fn kept_notes_needs_the_marker_and_text() {
        assert_eq!(kept_notes("no marker"), None);
        assert_eq!(kept_notes(&format!("a\n{NOTES_MARKER}\n\n")), None);
    }

    #[test]
    fn svg_scales_bars_to_the_fastest() {
        let r = report();
        let svg = svg(&r.rows);
        assert!(svg.starts_with("<svg"));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains(r#"width="760.0""#), "{svg}");
        assert!(svg.contains(r#"width="253.3""#), "{svg}");
        assert!(svg.contains("ace — 1 connection<"));
    }

    #[test]
    fn table_lists_rows_and_ratios() {
        let t = table(&report());
        assert!(t.contains("logd, reactor"));
        assert!(t.contains("3.00x (target 2.00x, met)"));
        assert!(t.contains("peak 70.0 MiB"));
    }
}
