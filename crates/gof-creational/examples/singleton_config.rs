//! Singleton: the application's configuration, installed once, shared by every thread, injected where it is used.

use std::sync::Barrier;
use std::thread;

use gof_creational::Error;
use gof_creational::singleton::{Config, Sampler, Singleton, build_info};
use pattern_core::diagram::{Diagram, Step};

const SITE_CONFIG: &str = "\
device_name = boiler-room
sample_period_ms = 500
samples_per_report = 3
";

/// The sensors' calibration offsets, loaded on first use.
#[derive(Debug)]
struct Calibration {
    offsets: [f32; 3],
}

/// The calibration, created on first access by whichever thread gets there first.
static CALIBRATION: Singleton<Calibration> = Singleton::new(|| Calibration {
    offsets: [0.5, -0.25, 0.0],
});

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `cargo xtask demo --diagrams` draws the Singleton page's sequence diagram from this run.
    let diagram = Diagram::from_env("singleton_config");
    println!("{} demo: Singleton", build_info().name);

    // The composition root installs the instance before anything else can create it.
    let installed = Config::parse(SITE_CONFIG)?
        .install()
        .map_err(|_| Error::Malformed {
            reason: "a configuration was already installed".into(),
        })?;
    println!(
        "main: installed configuration for `{}`",
        installed.device_name()
    );
    println!(
        "main: default configuration created {} time(s)",
        Config::global_creations()
    );

    // Eight threads reach for the global at the same moment: all get the same instance.
    diagram.note(
        "main",
        "8 threads call Config::global() at once (not drawn: their order varies from run to run)",
    );
    diagram.pause();
    let barrier = Barrier::new(8);
    let same = thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    std::ptr::eq(Config::global(), installed)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(false))
            .filter(|same| *same)
            .count()
    });
    diagram.resume();
    diagram.note(
        "main",
        &format!("{same} of 8 threads got the installed instance"),
    );
    println!("threads: {same} of 8 saw the installed instance");

    // Two threads reach for the sensor calibration, which nobody has created yet: one runs
    // the creation function, the other gets the same instance. The race is real and the same
    // in every run: the recorder holds thread 2's call until thread 1 runs the creation
    // function, the creation's end until thread 2 has called (`Diagram::hold`), and thread 2's
    // answer until thread 1 has its own.
    let by = |thread: &'static str, message: &'static str| {
        move |s: &Step| s.thread == thread && s.message.starts_with(message)
    };
    let creating = by("thread 1", "run once");
    diagram.hold(by("thread 2", "instance()"), move |steps| {
        steps.iter().any(&creating)
    });
    let second_caller = by("thread 2", "instance()");
    diagram.hold(
        |s| s.message.starts_with("the instance, stored"),
        move |steps| steps.iter().any(&second_caller),
    );
    let first_answer = by("thread 1", "&'static");
    diagram.hold(by("thread 2", "&'static"), move |steps| {
        steps.iter().any(&first_answer)
    });
    let tables: Vec<&'static Calibration> = thread::scope(|scope| {
        let callers: Vec<_> = ["thread 1", "thread 2"]
            .into_iter()
            .map(|name| {
                thread::Builder::new()
                    .name(name.into())
                    .spawn_scoped(scope, || CALIBRATION.instance())
            })
            .collect::<Result<_, _>>()?;
        Ok::<_, std::io::Error>(callers.into_iter().map(|c| c.join().unwrap()).collect())
    })?;
    println!(
        "threads 1 and 2: the same calibration {:?}: {}, created {} time(s)",
        tables[0].offsets,
        std::ptr::eq(tables[0], tables[1]),
        CALIBRATION.creations()
    );

    // A second install is refused and the value handed back: the singleton cannot be replaced.
    let late =
        Config::parse("device_name = intruder\nsample_period_ms = 1\nsamples_per_report = 1")?;
    match late.install() {
        Ok(_) => println!("late install: accepted (unexpected)"),
        Err(refused) => println!(
            "late install: refused, `{}` handed back",
            refused.device_name()
        ),
    }

    // Production code gets the global through one wiring point ...
    let readings = [20.0, 21.0, 22.0, 30.0, 31.0, 32.0];
    for line in Sampler::from_global().reports(&readings) {
        println!("production sampler: {line}");
    }
    // ... and a test injects its own instance instead, without touching the global.
    let test_config =
        Config::parse("device_name = test-rig\nsample_period_ms = 1\nsamples_per_report = 2")?;
    for line in Sampler::new(&test_config).reports(&readings) {
        println!("injected sampler:   {line}");
    }
    println!("global still `{}`", Config::global().device_name());
    diagram.finish()?;
    Ok(())
}
