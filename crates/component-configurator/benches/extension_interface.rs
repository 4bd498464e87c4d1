//! The Extension Interface's liability "additional indirection and run-time overhead",
//! measured: the gate's record filter called through the extension interface of the plugin
//! (`cc-gate`: the host's wrapper, a C vtable, the plugin's shim with its panic guard and UTF-8
//! checks, the rewritten text copied back through a byte sink), through the extension
//! interface of a static component (a query answered in Rust, a `&dyn RecordFilter`), and
//! directly (the same code, compiled into this benchmark from `plugins/cc-gate/src/gate.rs`);
//! and the query itself on the plugin and on the static component.
//!
//! Run with `cargo bench -p component-configurator --bench extension_interface`.
//!
//! Criterion reports each call; then the binary runs every variant in interleaved rounds (the
//! order rotating from round to round) and prints, per kind of call, the median time of each
//! and the medians of the per-round ratios to the direct call. With `--test` (as
//! `cargo test --all-targets` passes) everything runs once, briefly.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use component_configurator::ext::{Extension, FilterInput, FilterVerdict, RecordFilter};
use component_configurator::ext::{record_filter, statistics};
use component_configurator::{Component, ComponentError, LoadedLibrary};
use criterion::Criterion;

/// The plugin's own code, compiled in here too.
#[allow(unreachable_pub, dead_code)]
#[path = "../plugins/cc-gate/src/gate.rs"]
mod gate;

use gate::Gate;

/// The gate as a static component: the same `Gate`, its interfaces answered by a Rust query.
#[derive(Debug, Default)]
struct StaticGate(Gate);

impl Component for StaticGate {
    fn check(&self, args: &[String]) -> Result<(), ComponentError> {
        self.0.check(args)
    }
    fn init(&mut self, args: &[String]) -> Result<(), ComponentError> {
        self.0.init(args)
    }
    fn fini(&mut self) -> Result<(), ComponentError> {
        self.0.fini()
    }
    fn info(&self) -> String {
        self.0.info()
    }
    fn query_interface(&self, iid: &str) -> Option<Extension<'_>> {
        match iid {
            record_filter::IID => Some(Extension::RecordFilter(&self.0)),
            statistics::IID => Some(Extension::Statistics(&self.0)),
            _ => None,
        }
    }
}

/// `target/<profile>`, with the gate plugin built into it.
fn plugin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps")
        .to_owned();
    let mut cmd = std::process::Command::new(env!("CARGO"));
    cmd.args(["build", "--quiet", "-p", "cc-gate"]);
    match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => {}
        Some("release") => {
            cmd.arg("--release");
        }
        Some(other) => {
            cmd.args(["--profile", other]);
        }
    }
    cmd.env(
        "CARGO_TARGET_DIR",
        profile_dir.parent().expect("target dir"),
    );
    assert!(
        cmd.status().expect("cargo").success(),
        "building cc-gate failed"
    );
    profile_dir
}

/// A record the gate lets through unchanged (the common case).
const PASS: FilterInput<'static> = FilterInput {
    host: "pos-7",
    app: "till",
    severity: 4,
    message: "sale 42 closed, 3 items, total 17.80",
};

/// A record the gate rewrites (a card number masked).
const REWRITE: FilterInput<'static> = FilterInput {
    host: "pos-7",
    app: "till",
    severity: 4,
    message: "paid with 4111 1111 1111 1234, approved",
};

/// Nanoseconds per call of `f`, over `n` calls.
fn ns_per_call(n: u32, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    start.elapsed().as_nanos() as f64 / f64::from(n)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs the named variants in `rounds` interleaved rounds of `n` calls each (the order rotating
/// by one each round) and prints each one's median time and the median of its per-round ratio
/// to the last variant (the baseline).
fn interleaved(title: &str, rounds: usize, n: u32, variants: &mut [(&str, &mut dyn FnMut())]) {
    let k = variants.len();
    let mut times = vec![Vec::with_capacity(rounds); k];
    for round in 0..rounds {
        for step in 0..k {
            let i = (round + step) % k;
            times[i].push(ns_per_call(n, &mut *variants[i].1));
        }
    }
    let base = k - 1;
    println!("{title} ({rounds} interleaved rounds of {n} calls, medians):");
    for (i, (name, _)) in variants.iter().enumerate() {
        let ratios: Vec<f64> = (0..rounds).map(|r| times[i][r] / times[base][r]).collect();
        println!(
            "  {name:<30} {:>8.1} ns   x{:.2} of {}",
            median(times[i].clone()),
            median(ratios),
            variants[base].0
        );
    }
}

/// The record filter `c` exports.
fn filter_of(c: &dyn Component) -> &dyn RecordFilter {
    c.query_interface(record_filter::IID)
        .and_then(Extension::record_filter)
        .expect("the gate exports a record filter")
}

fn main() {
    let smoke = std::env::args().any(|a| a == "--test" || a == "--list");
    let (rounds, calls) = if smoke { (2, 100) } else { (21, 200_000) };
    let plugin = LoadedLibrary::open(&plugin_dir().join("libcc_gate.so")).expect("open cc-gate");
    let args = ["-s".to_owned(), "6".to_owned()];
    let mut dynamic = plugin.create("_make_gate").expect("create the gate");
    dynamic.init(&args).expect("init");
    let mut fixed = StaticGate::default();
    fixed.init(&args).expect("init");
    let mut direct = Gate::default();
    direct.init(&args).expect("init");
    let (dynamic, fixed): (&dyn Component, &dyn Component) = (&dynamic, &fixed);
    let (through_plugin, through_static) = (filter_of(dynamic), filter_of(fixed));

    // The three ways call the same code: the same verdicts.
    for input in [PASS, REWRITE] {
        let want = direct.filter(&input);
        assert_eq!(through_plugin.filter(&input), want);
        assert_eq!(through_static.filter(&input), want);
    }
    assert_eq!(direct.filter(&PASS), FilterVerdict::Pass);
    assert!(matches!(direct.filter(&REWRITE), FilterVerdict::Rewrite(_)));

    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    for (name, input) in [("filter_pass", PASS), ("filter_rewrite", REWRITE)] {
        let mut group = c.benchmark_group(name);
        group.bench_function("plugin_extension", |b| {
            b.iter(|| black_box(through_plugin.filter(black_box(&input))))
        });
        group.bench_function("static_extension", |b| {
            b.iter(|| black_box(through_static.filter(black_box(&input))))
        });
        group.bench_function("direct", |b| {
            b.iter(|| black_box(black_box(&direct).filter(black_box(&input))))
        });
        group.finish();
    }
    let mut group = c.benchmark_group("query");
    group.bench_function("plugin", |b| {
        b.iter(|| black_box(black_box(dynamic).query_interface(record_filter::IID)).is_some())
    });
    group.bench_function("static", |b| {
        b.iter(|| black_box(black_box(fixed).query_interface(record_filter::IID)).is_some())
    });
    group.finish();
    c.final_summary();

    for (title, input) in [
        ("filter, a record passed", PASS),
        ("filter, a record rewritten", REWRITE),
    ] {
        interleaved(
            title,
            rounds,
            calls,
            &mut [
                ("plugin's extension", &mut || {
                    black_box(through_plugin.filter(black_box(&input)));
                }),
                ("static component's extension", &mut || {
                    black_box(through_static.filter(black_box(&input)));
                }),
                ("direct call", &mut || {
                    black_box(black_box(&direct).filter(black_box(&input)));
                }),
            ],
        );
    }
    interleaved(
        "query_interface(record_filter::IID)",
        rounds,
        calls,
        &mut [
            ("plugin (host wrapper)", &mut || {
                black_box(black_box(dynamic).query_interface(record_filter::IID));
            }),
            ("static component", &mut || {
                black_box(black_box(fixed).query_interface(record_filter::IID));
            }),
        ],
    );
}
