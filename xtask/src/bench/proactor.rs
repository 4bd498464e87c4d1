//! The proactor matrix's section of `docs/benchmarks.md` (issue 18): our proactor against raw
//! mio, a plain io_uring loop (the floor), tokio `current_thread` and the Rust io_uring
//! runtimes, with CPU per request paired by round.

use std::fmt::Write as _;

use super::render::{
    NOTES_MARKER, Report, Row, cpu_of, find, groups, p99_of, paired, ratio, rps_of, seconds, spread,
};

/// The first line of the section.
pub(crate) const BEGIN: &str = "<!-- Proactor matrix: written by `cargo xtask bench --matrix proactor`, kept by the other matrices. -->";
/// The last line of the section.
pub(crate) const END: &str = "<!-- End of the proactor matrix. -->";
/// The section's chart, in `docs/`.
pub(crate) const SVG: &str = "benchmarks-proactor.svg";

/// Issue 18's targets for the proactor against raw mio.
const CPU_VS_RAW: f64 = 0.95;
const RPS_VS_RAW: f64 = 0.98;
const P99_VS_RAW: f64 = 1.1;
/// The io_uring runtimes the proactor must beat on CPU per request.
const RUNTIMES: &[(&str, &str)] = &[
    ("monoio", "monoio"),
    ("tokio-uring", "tokio-uring"),
    ("compio", "compio"),
];

/// The section of an existing `docs/benchmarks.md`, markers included.
pub(crate) fn kept_section(old: &str) -> Option<&str> {
    let start = old.find(BEGIN)?;
    let end = start + old[start..].find(END)? + END.len();
    Some(&old[start..end])
}

/// `old` with the section replaced by `section`, or `section` added before the hand-written
/// notes; the rest of the file is kept byte for byte.
pub(crate) fn splice_section(old: Option<&str>, section: &str) -> String {
    let Some(old) = old else {
        return format!(
            "# Benchmarks: echo servers over loopback\n\n{section}\n\n{NOTES_MARKER}\n"
        );
    };
    if let Some(kept) = kept_section(old) {
        let start = old.find(kept).unwrap_or(0);
        return format!("{}{section}{}", &old[..start], &old[start + kept.len()..]);
    }
    match old.find(NOTES_MARKER) {
        Some(at) => format!("{}{section}\n\n{}", &old[..at], &old[at..]),
        None => format!("{}\n\n{section}\n", old.trim_end()),
    }
}

fn cpu_cell(row: &Row) -> String {
    row.cpu_us
        .map_or_else(|| "–".to_owned(), |c| format!("{c:.2}"))
}

/// The table: ratios to raw mio, and CPU per request against the proactor's, paired by round.
pub(crate) fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    out.push_str("| connections | server | requests/s | rounds' spread | × raw mio | p50 µs | p99 µs | p99 × raw mio | server CPU µs/req | CPU × raw mio | CPU × proactor |\n");
    out.push_str("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for conns in groups(rows) {
        let raw = find(rows, conns, "raw-mio");
        let ours = find(rows, conns, "proactor");
        let vs = |row: &Row, base: Option<&Row>, f: fn(&Row) -> &[f64]| {
            ratio(base.and_then(|b| paired(row, b, f)))
        };
        for row in rows.iter().filter(|r| r.connections == conns) {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {:.1} | {:.1} | {} | {} | {} | {} |",
                conns,
                row.label,
                lab_report::thousands(row.rps),
                spread(row),
                vs(row, raw, rps_of),
                row.p50_us,
                row.p99_us,
                vs(row, raw, p99_of),
                cpu_cell(row),
                vs(row, raw, cpu_of),
                vs(row, ours, cpu_of),
            );
        }
    }
    out
}

/// Issue 18's targets at 64 and 512 connections, one line each, with what was measured, and
/// how far the proactor is from the floor.
pub(crate) fn targets(rows: &[Row]) -> String {
    let mut out = String::new();
    let verdict = |ok: bool| if ok { "met" } else { "**missed**" };
    for conns in [64, 512] {
        let Some(ours) = find(rows, conns, "proactor") else {
            continue;
        };
        if let Some(raw) = find(rows, conns, "raw-mio") {
            for (what, f, ok) in [
                (
                    "server CPU/request vs raw mio (target ≤ 0.95×)",
                    cpu_of as fn(&Row) -> &[f64],
                    (|m| m <= CPU_VS_RAW) as fn(f64) -> bool,
                ),
                ("requests/s vs raw mio (target ≥ 0.98×)", rps_of, |m| {
                    m >= RPS_VS_RAW
                }),
                ("p99 vs raw mio (target ≤ 1.10×)", p99_of, |m| {
                    m <= P99_VS_RAW
                }),
            ] {
                if let Some(m) = paired(ours, raw, f) {
                    let _ = writeln!(
                        out,
                        "- {conns} connections, {what}: {m:.3}× — {}",
                        verdict(ok(m))
                    );
                }
            }
        }
        for (key, name) in RUNTIMES {
            if let Some(m) = find(rows, conns, key).and_then(|b| paired(ours, b, cpu_of)) {
                let _ = writeln!(
                    out,
                    "- {conns} connections, server CPU/request vs {name} (target < 1.00×): {m:.3}× — {}",
                    verdict(m < 1.0)
                );
            }
        }
        if let Some(m) = find(rows, conns, "uring-raw").and_then(|b| paired(ours, b, cpu_of)) {
            let _ = writeln!(
                out,
                "- {conns} connections, server CPU/request vs the plain io_uring loop (no target; the pattern's cost): {m:.3}×"
            );
        }
    }
    out
}

/// The section, from [`BEGIN`] to [`END`].
pub(crate) fn section(report: &Report) -> String {
    let m = &report.machine;
    let mut out = String::new();
    out.push_str(BEGIN);
    out.push_str("\n\n## Proactor matrix\n\n");
    let _ = writeln!(
        out,
        "Written by `cargo xtask bench --matrix proactor` on {} ({} logical CPUs, {}, kernel {}): {} round(s), each run {} of warmup then {} measured, servers interleaved and unpinned, medians and per-round paired ratios as in the echo matrix's method.",
        m.date,
        m.cpus,
        m.cpu_model.as_deref().unwrap_or("CPU unknown"),
        m.kernel.as_deref().unwrap_or("unknown"),
        report.rounds,
        seconds(report.warmup),
        seconds(report.duration)
    );
    out.push_str("`echo-proactor` is `crates/proactor` with a multishot accept and, per connection, a multishot receive from a provided-buffer ring, `SINGLE_ISSUER | DEFER_TASKRUN`, one `io_uring_enter` per turn (`benches/src/servers/proactor.rs`); `proactor-sqpoll` is the same with `IORING_SETUP_SQPOLL` and a 50 ms idle time (the poller, `iou-sqp-<pid>`, is a thread of the server process, so its polling is in the CPU column). `echo-uring-raw` is the floor: the same echo as a plain loop on `wrapper_facade::uring::Ring` without the ACT table, handler slots or upcalls. monoio, tokio-uring and compio run a task per connection on one thread, each on its io_uring driver (`benches/src/servers/uring_runtimes.rs`). CPU × columns are medians of per-round ratios.\n\n");
    let _ = writeln!(
        out,
        "![Requests per second of the proactor matrix]({SVG})\n"
    );
    out.push_str(&table(&report.rows));
    let mismatches: u64 = report.rows.iter().map(|r| r.mismatches).sum();
    let _ = writeln!(
        out,
        "\nEchoes that differed from their request, over all runs: {mismatches}."
    );
    let targets = targets(&report.rows);
    if !targets.is_empty() {
        out.push_str("\n### Targets for the proactor\n\n");
        out.push_str("Issue 18 asks, at 64 and 512 connections, for the proactor's server CPU per request at most 0.95× raw mio's, requests/s at least 0.98×, p99 at most 1.1×, and a lower CPU per request than each Rust io_uring runtime.\n\n");
        out.push_str(&targets);
    }
    out.push('\n');
    out.push_str(END);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(connections: usize, key: &'static str, cpu: f64, rps: f64) -> Row {
        Row {
            connections,
            key,
            label: key,
            rps,
            rps_range: (rps, rps),
            round_rps: vec![rps; 3],
            round_p99: vec![100.0; 3],
            round_cpu: vec![cpu, cpu, f64::NAN],
            p50_us: 50.0,
            p99_us: 100.0,
            cpu_us: Some(cpu),
            switches: None,
            runs: 3,
            mismatches: 0,
        }
    }

    #[test]
    fn targets_pair_cpu_by_round_and_judge_each_runtime() {
        let rows = vec![
            row(64, "raw-mio", 10.0, 100_000.0),
            row(64, "proactor", 9.0, 99_000.0),
            row(64, "monoio", 9.5, 100_000.0),
            row(64, "compio", 8.0, 100_000.0),
            row(64, "uring-raw", 8.5, 100_000.0),
        ];
        let t = targets(&rows);
        assert!(
            t.contains("CPU/request vs raw mio (target ≤ 0.95×): 0.900× — met"),
            "{t}"
        );
        assert!(
            t.contains("requests/s vs raw mio (target ≥ 0.98×): 0.990× — met"),
            "{t}"
        );
        assert!(
            t.contains("vs monoio (target < 1.00×): 0.947× — met"),
            "{t}"
        );
        assert!(
            t.contains("vs compio (target < 1.00×): 1.125× — **missed**"),
            "{t}"
        );
        assert!(
            t.contains("plain io_uring loop (no target; the pattern's cost): 1.059×"),
            "{t}"
        );
        assert!(!t.contains("tokio-uring"), "{t}");
        let table = table(&rows);
        assert!(table.contains("| 64 | proactor | 99,000 |"), "{table}");
        assert!(table.contains("| 9.00 | 0.90× | 1.00× |"), "{table}");
    }

    #[test]
    fn the_section_is_spliced_in_and_replaced_in_place() {
        let old = format!("# B\n\ntext\n\n{NOTES_MARKER}\n\nnotes\n");
        let once = splice_section(Some(&old), &format!("{BEGIN}\none\n{END}"));
        assert!(
            once.contains(&format!("{BEGIN}\none\n{END}\n\n{NOTES_MARKER}")),
            "{once}"
        );
        let twice = splice_section(Some(&once), &format!("{BEGIN}\ntwo\n{END}"));
        assert_eq!(twice, once.replace("one", "two"));
        assert_eq!(kept_section(&twice), Some(&*format!("{BEGIN}\ntwo\n{END}")));
    }
}
