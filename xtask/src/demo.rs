//! `cargo xtask demo`: build the examples once, run each with a time limit, check its stdout.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::cli::DemoArgs;
use crate::diagrams;
use crate::expected;
use crate::metadata::{self, Example, Package, Workspace};
use crate::process::{self, Captured};

/// How many trailing lines of a failed example's output are shown.
const TAIL_LINES: usize = 20;

/// One example chosen for this run.
#[derive(Debug)]
struct Planned<'a> {
    /// The package it belongs to.
    package: &'a Package,
    /// The example target.
    example: &'a Example,
    /// Why it will not run, if it will not.
    skip: Option<String>,
}

/// How one example fared.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    /// Its stdout equals the expected file.
    Matched,
    /// It exited 0 and has no expected file.
    Ran,
    /// `--bless` wrote or rewrote its expected file.
    Blessed,
    /// It was not run, for the given reason.
    Skipped(String),
    /// Its stdout differs from the expected file.
    Mismatch,
    /// It did not start, or exited unsuccessfully; the text says how.
    Failed(String),
    /// It was still running at the time limit and was killed.
    TimedOut(Duration),
    /// Under `--bless`, two runs printed different stdout.
    Nondeterministic,
}

impl Verdict {
    /// Whether this verdict makes the whole demo fail.
    fn is_failure(&self) -> bool {
        matches!(
            self,
            Self::Mismatch | Self::Failed(_) | Self::TimedOut(_) | Self::Nondeterministic
        )
    }

    /// The text of the result column.
    fn label(&self) -> String {
        match self {
            Self::Matched => "matched".to_owned(),
            Self::Ran => "ran".to_owned(),
            Self::Blessed => "blessed".to_owned(),
            Self::Skipped(reason) => format!("skipped ({reason})"),
            Self::Mismatch => "MISMATCH".to_owned(),
            Self::Failed(how) => format!("FAILED ({how})"),
            Self::TimedOut(limit) => format!("TIMED OUT (limit {}s)", limit.as_secs_f64()),
            Self::Nondeterministic => "NONDETERMINISTIC".to_owned(),
        }
    }
}

/// One line of the summary table.
#[derive(Debug)]
struct Row {
    /// Package name.
    krate: String,
    /// Example name.
    example: String,
    /// The outcome.
    verdict: Verdict,
    /// Run time, if it ran (the longer run under `--bless`).
    time: Option<Duration>,
}

/// Runs the demo; `Ok(false)` means some example failed (already reported).
pub(crate) fn run(args: &DemoArgs) -> Result<bool, String> {
    let cargo = cargo_program();
    let workspace = metadata::load(Path::new(&cargo))?;
    let plan = select(&workspace, args.krate.as_deref(), args.example.as_deref())?;
    if plan.is_empty() {
        eprintln!("demo: no examples found");
        return Ok(true);
    }

    if let Some(build_args) = build_args(&plan, args.example.is_some()) {
        eprintln!("demo: cargo {}", build_args.join(" "));
        let status = Command::new(&cargo)
            .args(&build_args)
            .current_dir(&workspace.root)
            .status()
            .map_err(|e| format!("cannot run cargo: {e}"))?;
        if !status.success() {
            return Err(format!("building the examples failed ({status})"));
        }
    }

    let total = plan.len();
    let mut rows = Vec::with_capacity(total);
    for (index, item) in plan.iter().enumerate() {
        let tag = format!(
            "[{:>width$}/{total}] {}/{}",
            index + 1,
            item.package.name,
            item.example.name,
            width = total.to_string().len()
        );
        let (verdict, time) = match &item.skip {
            Some(reason) => (Verdict::Skipped(reason.clone()), None),
            None => {
                eprintln!("{tag} ...");
                let (verdict, time) = run_one(&workspace, item, args);
                (verdict, Some(time))
            }
        };
        let time_note = time
            .map(|t| format!(" in {}", seconds(t)))
            .unwrap_or_default();
        eprintln!("{tag}: {}{time_note}", verdict.label());
        rows.push(Row {
            krate: item.package.name.clone(),
            example: item.example.name.clone(),
            verdict,
            time,
        });
    }

    print!("{}", summary(&rows));
    if args.example.is_none() {
        for orphan in orphans(&plan) {
            println!(
                "warning: {} matches no example; rename or delete it",
                relative(&orphan, &workspace)
            );
        }
    }
    Ok(rows.iter().all(|row| !row.verdict.is_failure()))
}

/// Expected-output files of the planned packages that belong to no example, such as those
/// left behind by a renamed example: their check would silently never run.
fn orphans(plan: &[Planned<'_>]) -> Vec<PathBuf> {
    let mut packages: Vec<&Package> = plan.iter().map(|p| p.package).collect();
    packages.dedup_by(|a, b| a.name == b.name);
    let mut found = Vec::new();
    for package in packages {
        let dir = package.dir.join("examples").join("expected");
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default();
            let is_expected = path.extension().is_some_and(|e| e == "stdout");
            if is_expected && !package.examples.iter().any(|e| e.name == stem) {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// Chooses the examples to run: all, those of one package, or a single one; marks those that a
/// default build does not produce as skipped.
fn select<'a>(
    workspace: &'a Workspace,
    krate: Option<&str>,
    example: Option<&str>,
) -> Result<Vec<Planned<'a>>, String> {
    let packages: Vec<&Package> = match krate {
        None => workspace.packages.iter().collect(),
        Some(name) => {
            let package = workspace.packages.iter().find(|p| p.name == name);
            vec![package.ok_or_else(|| {
                let known: Vec<&str> = workspace
                    .packages
                    .iter()
                    .filter(|p| !p.examples.is_empty())
                    .map(|p| p.name.as_str())
                    .collect();
                format!(
                    "no workspace package named `{name}`; packages with examples: {}",
                    list_or_none(&known)
                )
            })?]
        }
    };

    let mut plan = Vec::new();
    for package in packages {
        let examples: Vec<&Example> = match example {
            None => package.examples.iter().collect(),
            Some(name) => {
                let found = package.examples.iter().find(|e| e.name == name);
                vec![found.ok_or_else(|| {
                    let known: Vec<&str> =
                        package.examples.iter().map(|e| e.name.as_str()).collect();
                    format!(
                        "package `{}` has no example `{name}`; its examples: {}",
                        package.name,
                        list_or_none(&known)
                    )
                })?]
            }
        };
        for example in examples {
            let missing = package.missing_features(example);
            let skip = if !example.is_binary {
                Some("not an executable example".to_owned())
            } else if !missing.is_empty() {
                Some(format!(
                    "needs feature(s) {} that are off by default",
                    missing.join(", ")
                ))
            } else {
                None
            };
            plan.push(Planned {
                package,
                example,
                skip,
            });
        }
    }
    Ok(plan)
}

/// The `cargo` arguments that build every runnable example of the plan in one invocation, or
/// `None` if nothing will run. `single` asks to build only the one example selected.
fn build_args(plan: &[Planned<'_>], single: bool) -> Option<Vec<String>> {
    let runnable: Vec<&Planned<'_>> = plan.iter().filter(|p| p.skip.is_none()).collect();
    let mut args = vec!["build".to_owned()];
    match runnable.as_slice() {
        [] => return None,
        [only] if single => args.extend([
            "-p".to_owned(),
            only.package.name.clone(),
            "--example".to_owned(),
            only.example.name.clone(),
        ]),
        _ => {
            args.push("--examples".to_owned());
            let mut seen: Vec<&str> = Vec::new();
            for item in runnable {
                if !seen.contains(&item.package.name.as_str()) {
                    seen.push(&item.package.name);
                    args.extend(["-p".to_owned(), item.package.name.clone()]);
                }
            }
        }
    }
    Some(args)
}

/// Runs one example (twice under `--bless`) and judges it, reporting details on stderr.
fn run_one(workspace: &Workspace, item: &Planned<'_>, args: &DemoArgs) -> (Verdict, Duration) {
    let binary = workspace
        .target_dir
        .join("debug")
        .join("examples")
        .join(format!("{}{}", item.example.name, env::consts::EXE_SUFFIX));
    // Where the example may draw its sequence diagram (see `diagrams`).
    let drawing = workspace
        .target_dir
        .join("diagrams")
        .join(format!("{}.md", item.example.name));
    let _ = fs::remove_file(&drawing);
    if let Some(dir) = drawing.parent() {
        let _ = fs::create_dir_all(dir);
    }
    let first = match execute(&binary, workspace, item.package, args.timeout, &drawing) {
        Ok(run) => run,
        Err(verdict) => return (verdict, Duration::ZERO),
    };
    let time = first.elapsed;
    if let Some(verdict) = judge_exit(&first, args.timeout) {
        return (verdict, time);
    }
    if let Ok(diagram) = fs::read_to_string(&drawing)
        && let Err(stale) = diagrams::settle(
            &workspace.root,
            &item.package.dir,
            &item.example.name,
            &diagram,
            args.diagrams,
        )
    {
        return (Verdict::Failed(stale), time);
    }

    let path = expected::path(&item.package.dir, &item.example.name);
    let previous = match fs::read(&path) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => {
            return (
                Verdict::Failed(format!("cannot read {}: {e}", path.display())),
                time,
            );
        }
    };

    if !args.bless {
        let Some(previous) = previous else {
            return (Verdict::Ran, time);
        };
        return match expected::compare(&previous, &first.stdout) {
            None => (Verdict::Matched, time),
            Some(diff) => {
                eprintln!(
                    "stdout differs from {}:\n{diff}",
                    relative(&path, workspace)
                );
                eprintln!(
                    "if the new output is right: cargo xtask demo {} {} --bless",
                    item.package.name, item.example.name
                );
                (Verdict::Mismatch, time)
            }
        };
    }

    // Blessing: a second run must print the same, or the file would only capture one outcome
    // of a nondeterministic example.
    let second = match execute(&binary, workspace, item.package, args.timeout, &drawing) {
        Ok(run) => run,
        Err(verdict) => return (verdict, time),
    };
    let time = time.max(second.elapsed);
    if let Some(verdict) = judge_exit(&second, args.timeout) {
        return (verdict, time);
    }
    if let Some(diff) = expected::compare(&first.stdout, &second.stdout) {
        eprintln!("two runs printed different stdout; not blessing:\n{diff}");
        return (Verdict::Nondeterministic, time);
    }
    if previous.as_deref() == Some(first.stdout.as_slice()) {
        return (Verdict::Matched, time);
    }
    let written = path
        .parent()
        .map_or(Ok(()), fs::create_dir_all)
        .and_then(|()| fs::write(&path, &first.stdout));
    match written {
        Ok(()) => {
            eprintln!("wrote {}", relative(&path, workspace));
            (Verdict::Blessed, time)
        }
        Err(e) => (
            Verdict::Failed(format!("cannot write {}: {e}", path.display())),
            time,
        ),
    }
}

/// Starts the example binary from the workspace root, with the package's cargo variables
/// (as `cargo run --example` would set them) instead of those of the xtask, and waits for it.
fn execute(
    binary: &Path,
    workspace: &Workspace,
    package: &Package,
    timeout: Duration,
    drawing: &Path,
) -> Result<Captured, Verdict> {
    let mut command = Command::new(binary);
    command.current_dir(&workspace.root);
    for (key, _) in env::vars_os() {
        let key_text = key.to_string_lossy();
        if key_text.starts_with("CARGO_PKG_")
            || matches!(
                key_text.as_ref(),
                "CARGO_MANIFEST_DIR"
                    | "CARGO_MANIFEST_PATH"
                    | "CARGO_CRATE_NAME"
                    | "CARGO_BIN_NAME"
                    | "CARGO_PRIMARY_PACKAGE"
            )
        {
            command.env_remove(&key);
        }
    }
    command
        .env("CARGO_MANIFEST_DIR", &package.dir)
        .env("CARGO_MANIFEST_PATH", package.dir.join("Cargo.toml"))
        .env("CARGO_PKG_NAME", &package.name)
        .env(diagrams::ENV, drawing);

    let run = process::run(&mut command, timeout)
        .map_err(|e| Verdict::Failed(format!("cannot start {}: {e}", binary.display())))?;
    if run.pipes_left_open {
        eprintln!(
            "warning: the example exited but something it started still holds its output open"
        );
    }
    Ok(run)
}

/// A verdict for a run that timed out or failed (showing the end of its output), else `None`.
fn judge_exit(run: &Captured, timeout: Duration) -> Option<Verdict> {
    let verdict = match run.status {
        None => Verdict::TimedOut(timeout),
        Some(_) if run.succeeded() => return None,
        Some(status) => Verdict::Failed(status.to_string()),
    };
    for (name, bytes) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
        if !bytes.is_empty() {
            eprintln!("--- {name} (last lines) ---\n{}", tail(bytes, TAIL_LINES));
        }
    }
    Some(verdict)
}

/// The last `lines` lines of `bytes`, as text.
fn tail(bytes: &[u8], lines: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The summary table (crate, example, result, time) and a totals line.
fn summary(rows: &[Row]) -> String {
    let header = ["crate", "example", "result", "time"];
    let cells: Vec<[String; 4]> = rows
        .iter()
        .map(|row| {
            [
                row.krate.clone(),
                row.example.clone(),
                row.verdict.label(),
                row.time.map_or_else(|| "-".to_owned(), seconds),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }

    let mut out = String::from("\n");
    let mut line = |cells: [&str; 4]| {
        let text = format!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {:>w3$}",
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3]
        );
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(header);
    for row in &cells {
        line([&row[0], &row[1], &row[2], &row[3]]);
    }

    let count = |pred: fn(&Verdict) -> bool| rows.iter().filter(|r| pred(&r.verdict)).count();
    let failed = count(Verdict::is_failure);
    let _ = writeln!(
        out,
        "\n{} example(s): {} matched, {} ran, {} blessed, {} skipped, {} failed",
        rows.len(),
        count(|v| *v == Verdict::Matched),
        count(|v| *v == Verdict::Ran),
        count(|v| *v == Verdict::Blessed),
        count(|v| matches!(v, Verdict::Skipped(_))),
        failed
    );
    out
}

/// `path` relative to the workspace root when it lies inside it.
fn relative(path: &Path, workspace: &Workspace) -> String {
    path.strip_prefix(&workspace.root)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// A duration as seconds with two decimals.
fn seconds(duration: Duration) -> String {
    format!("{:.2}s", duration.as_secs_f64())
}

/// `a, b, c`, or `none`.
fn list_or_none(items: &[&str]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}

/// The cargo that started us (cargo sets `CARGO` for `cargo run`), else `cargo` on the path.
pub(crate) fn cargo_program() -> PathBuf {
    env::var_os("CARGO").map_or_else(|| PathBuf::from("cargo"), PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::{parse, tests::FIXTURE};

    fn names(plan: &[Planned<'_>]) -> Vec<String> {
        plan.iter()
            .map(|p| format!("{}/{}", p.package.name, p.example.name))
            .collect()
    }

    #[test]
    fn everything_is_selected_by_default_and_unbuildable_examples_are_skipped() {
        let ws = parse(FIXTURE).unwrap();
        let plan = select(&ws, None, None).unwrap();
        assert_eq!(
            names(&plan),
            [
                "reactor/reactor_net",
                "reactor/reactor_plugin",
                "reactor/reactor_slow",
                "wrapper-facade/wrapper_facade_compare",
                "wrapper-facade/wrapper_facade_echo",
            ]
        );
        let skips: Vec<Option<&str>> = plan.iter().map(|p| p.skip.as_deref()).collect();
        assert_eq!(
            skips,
            [
                None,
                Some("not an executable example"),
                Some("needs feature(s) slow that are off by default"),
                None,
                None,
            ]
        );
        assert_eq!(
            build_args(&plan, false).unwrap(),
            [
                "build",
                "--examples",
                "-p",
                "reactor",
                "-p",
                "wrapper-facade"
            ]
        );
    }

    #[test]
    fn a_crate_or_a_single_example_can_be_chosen() {
        let ws = parse(FIXTURE).unwrap();
        let plan = select(&ws, Some("wrapper-facade"), None).unwrap();
        assert_eq!(plan.len(), 2);
        assert_eq!(
            build_args(&plan, false).unwrap(),
            ["build", "--examples", "-p", "wrapper-facade"]
        );

        let plan = select(&ws, Some("wrapper-facade"), Some("wrapper_facade_echo")).unwrap();
        assert_eq!(names(&plan), ["wrapper-facade/wrapper_facade_echo"]);
        assert_eq!(
            build_args(&plan, true).unwrap(),
            [
                "build",
                "-p",
                "wrapper-facade",
                "--example",
                "wrapper_facade_echo"
            ]
        );
    }

    #[test]
    fn nothing_is_built_when_nothing_can_run() {
        let ws = parse(FIXTURE).unwrap();
        let plan = select(&ws, Some("reactor"), Some("reactor_slow")).unwrap();
        assert_eq!(build_args(&plan, true), None);
    }

    #[test]
    fn unknown_names_are_errors_that_list_the_choices() {
        let ws = parse(FIXTURE).unwrap();
        let err = select(&ws, Some("nope"), None).unwrap_err();
        assert!(
            err.contains("`nope`") && err.contains("reactor, wrapper-facade"),
            "{err}"
        );
        let err = select(&ws, Some("wrapper-facade"), Some("nope")).unwrap_err();
        assert!(
            err.contains("wrapper_facade_compare, wrapper_facade_echo"),
            "{err}"
        );
    }

    #[test]
    fn only_mismatches_failures_timeouts_and_nondeterminism_fail_the_demo() {
        assert!(!Verdict::Matched.is_failure());
        assert!(!Verdict::Ran.is_failure());
        assert!(!Verdict::Blessed.is_failure());
        assert!(!Verdict::Skipped("x".into()).is_failure());
        assert!(Verdict::Mismatch.is_failure());
        assert!(Verdict::Failed("exit status: 1".into()).is_failure());
        assert!(Verdict::TimedOut(Duration::from_secs(1)).is_failure());
        assert!(Verdict::Nondeterministic.is_failure());
    }

    #[test]
    fn the_summary_is_an_aligned_table_with_totals() {
        let rows = [
            Row {
                krate: "wrapper-facade".into(),
                example: "echo".into(),
                verdict: Verdict::Matched,
                time: Some(Duration::from_millis(1250)),
            },
            Row {
                krate: "reactor".into(),
                example: "reactor_slow".into(),
                verdict: Verdict::Skipped("needs feature(s) slow that are off by default".into()),
                time: None,
            },
        ];
        assert_eq!(
            summary(&rows),
            "\n\
             crate           example       result                                                    time\n\
             wrapper-facade  echo          matched                                                  1.25s\n\
             reactor         reactor_slow  skipped (needs feature(s) slow that are off by default)      -\n\
             \n\
             2 example(s): 1 matched, 0 ran, 0 blessed, 1 skipped, 0 failed\n"
        );
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail(b"1\n2\n3\n4\n", 2), "3\n4");
        assert_eq!(tail(b"only", 5), "only");
    }
}
