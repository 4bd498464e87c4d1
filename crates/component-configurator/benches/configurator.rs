//! Criterion benchmarks for the component configurator:
//!
//! - `load_init_fini`: map a plugin library (descriptor checked in the file and in memory),
//!   create its time service, `init` it on a port, `fini` it, drop it and unmap the library;
//!   and `create_init_fini_warm` with the library already mapped.
//! - `reconfigure_unchanged_100`: re-read a 100-directive svc.conf, see that it (and the
//!   variables it uses) did not change, and find nothing to do;
//!   `reconfigure_revalidated_100` defeats that cache so the file is parsed and validated
//!   again each time; `parse_100` is the parser alone.
//! - `export_state`: the statistics plugin's 8-byte snapshot through the C vtable (panic
//!   guard, byte sink) against the same code called directly.
//!
//! After criterion's report the binary measures the last pair again in one run and prints
//! the ratio.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use component_configurator::svc_conf::parse;
use component_configurator::{Component, ComponentError, Configurator, LoadedLibrary};
use criterion::Criterion;

fn plugin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps")
        .to_owned();
    let mut cmd = std::process::Command::new(env!("CARGO"));
    cmd.args(["build", "--quiet", "-p", "cc-time", "-p", "cc-stats"]);
    match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => {}
        Some("release") => {
            cmd.arg("--release");
        }
        Some(other) => {
            cmd.args(["--profile", other]);
        }
        None => {}
    }
    cmd.env(
        "CARGO_TARGET_DIR",
        profile_dir.parent().expect("target dir"),
    );
    assert!(
        cmd.status().expect("cargo").success(),
        "building plugins failed"
    );
    profile_dir
}

fn args() -> Vec<String> {
    vec!["-p".to_owned(), "0".to_owned()]
}

#[derive(Debug)]
struct Nop;

impl Component for Nop {
    fn init(&mut self, _: &[String]) -> Result<(), ComponentError> {
        Ok(())
    }
    fn fini(&mut self) -> Result<(), ComponentError> {
        Ok(())
    }
    fn info(&self) -> String {
        "nop".to_owned()
    }
}

/// The statistics plugin's `export_state`, compiled into the bench for the direct call.
#[derive(Debug, Default)]
struct DirectStats {
    requests: AtomicU64,
}

impl Component for DirectStats {
    fn init(&mut self, _: &[String]) -> Result<(), ComponentError> {
        Ok(())
    }
    fn fini(&mut self) -> Result<(), ComponentError> {
        Ok(())
    }
    fn info(&self) -> String {
        String::new()
    }
    fn export_state(&self) -> Result<Option<Vec<u8>>, ComponentError> {
        Ok(Some(
            self.requests.load(Ordering::SeqCst).to_le_bytes().to_vec(),
        ))
    }
}

fn hundred_directives() -> (Configurator, PathBuf) {
    let dir = std::env::temp_dir().join(format!("cc-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let conf = dir.join("svc.conf");
    let mut text = String::from("# one hundred static components\n");
    let mut cfg = Configurator::default();
    for i in 0..100 {
        text.push_str(&format!("static S{i} \"-n {i} -v\"\n"));
        cfg.register_static(format!("S{i}"), || Box::new(Nop));
    }
    std::fs::write(&conf, text).expect("write conf");
    cfg.process_file(&conf).expect("configure");
    (cfg, dir)
}

fn best_ns(rounds: usize, n: u64, mut f: impl FnMut()) -> f64 {
    (0..rounds)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..n {
                f();
            }
            start.elapsed().as_nanos() as f64 / n as f64
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let plugins = plugin_dir();
    let time_lib = plugins.join("libcc_time.so");
    let stats_lib = plugins.join("libcc_stats.so");
    let mut c = Criterion::default().configure_from_args();

    c.bench_function("load_init_fini", |b| {
        b.iter(|| {
            let lib = LoadedLibrary::open(&time_lib).expect("open");
            let mut component = lib.create("_make_time").expect("create");
            component.init(&args()).expect("init");
            component.fini().expect("fini");
            drop(component);
            black_box(LoadedLibrary::unload(lib).expect("last user"));
        })
    });

    let mapped = LoadedLibrary::open(&time_lib).expect("open");
    c.bench_function("create_init_fini_warm", |b| {
        b.iter(|| {
            let mut component = mapped.create("_make_time").expect("create");
            component.init(&args()).expect("init");
            component.fini().expect("fini");
        })
    });
    drop(mapped);

    let (mut cfg, dir) = hundred_directives();
    c.bench_function("reconfigure_unchanged_100", |b| {
        b.iter(|| {
            let report = cfg.reconfigure().expect("reconfigure");
            assert!(report.changes.is_empty());
        })
    });
    // The same with the validation cache defeated: re-registering a static factory bumps
    // the registry's generation, so the file is read, parsed and validated from scratch.
    c.bench_function("reconfigure_revalidated_100", |b| {
        b.iter(|| {
            cfg.register_static("S0", || Box::new(Nop));
            let report = cfg.reconfigure().expect("reconfigure");
            assert!(report.changes.is_empty());
        })
    });
    drop(cfg);
    let _ = std::fs::remove_dir_all(dir);

    // What a changed file costs on top: parsing and checking 100 directives from scratch.
    let text: String = (0..100)
        .map(|i| format!("static S{i} \"-n {i} -v\"\n"))
        .collect();
    c.bench_function("parse_100", |b| {
        b.iter(|| black_box(parse("svc.conf", &text, &|_| None).expect("parse")))
    });

    let lib = LoadedLibrary::open(&stats_lib).expect("open");
    let through_table: Box<dyn Component> = Box::new(lib.create("_make_stats").expect("create"));
    let direct = DirectStats::default();
    let direct_dyn: Box<dyn Component> = Box::new(DirectStats::default());
    let mut group = c.benchmark_group("export_state");
    group.bench_function("plugin_table", |b| {
        b.iter(|| black_box(through_table.export_state().expect("state")))
    });
    group.bench_function("direct", |b| {
        b.iter(|| black_box(black_box(&direct).export_state().expect("state")))
    });
    group.bench_function("dyn_trait", |b| {
        b.iter(|| black_box(direct_dyn.export_state().expect("state")))
    });
    group.finish();
    c.final_summary();

    let t = best_ns(7, 200_000, || {
        black_box(through_table.export_state().expect("state"));
    });
    let d = best_ns(7, 200_000, || {
        black_box(black_box(&direct).export_state().expect("state"));
    });
    println!(
        "ratio export_state: plugin_table {t:.1} ns / direct {d:.1} ns = {:.2}",
        t / d
    );
    drop(through_table);
}
