//! Singleton: one instance under a 16-thread race, install semantics, and injection instead of the global.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Barrier, mpsc};
use std::thread;

use gof_creational::singleton::{Config, Sampler, Singleton, build_info};

const THREADS: usize = 16;

#[derive(Debug)]
struct Registry {
    serial: usize,
}

static CREATED: AtomicUsize = AtomicUsize::new(0);
static ARRIVED: AtomicUsize = AtomicUsize::new(0);

fn create_registry() -> Registry {
    // Do not finish creating until every thread has reached the access point, so the
    // others are genuinely racing for (and waiting on) this first access.
    while ARRIVED.load(Ordering::SeqCst) < THREADS {
        thread::yield_now();
    }
    Registry {
        serial: CREATED.fetch_add(1, Ordering::SeqCst) + 1,
    }
}

static REGISTRY: Singleton<Registry> = Singleton::new(create_registry);

#[test]
fn sixteen_racing_threads_create_exactly_one_instance() {
    let barrier = Barrier::new(THREADS);
    let (tx, rx) = mpsc::channel();
    thread::scope(|scope| {
        for _ in 0..THREADS {
            let (barrier, tx) = (&barrier, tx.clone());
            scope.spawn(move || {
                barrier.wait();
                ARRIVED.fetch_add(1, Ordering::SeqCst);
                let instance: &'static Registry = REGISTRY.instance();
                tx.send(instance as *const Registry as usize).unwrap();
            });
        }
    });
    drop(tx);
    let addresses: Vec<usize> = rx.iter().collect();
    assert_eq!(addresses.len(), THREADS);
    assert!(
        addresses.iter().all(|a| *a == addresses[0]),
        "{addresses:x?}"
    );
    assert_eq!(CREATED.load(Ordering::SeqCst), 1);
    assert_eq!(REGISTRY.creations(), 1);
    assert_eq!(REGISTRY.instance().serial, 1);
}

#[test]
fn install_wins_only_before_first_access() {
    static LIMIT: Singleton<u32> = Singleton::new(|| 10);
    assert_eq!(LIMIT.get(), None);
    assert_eq!(LIMIT.install(20), Ok(&20));
    assert_eq!(LIMIT.install(30), Err(30));
    assert_eq!(*LIMIT.instance(), 20);
    assert_eq!(LIMIT.creations(), 0);
}

#[test]
fn the_global_config_is_one_instance_across_threads() {
    let barrier = Barrier::new(THREADS);
    let addresses: Vec<usize> = thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    Config::global() as *const Config as usize
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(addresses.iter().all(|a| *a == addresses[0]));
    assert_eq!(Config::global_creations(), 1);
    assert_eq!(Config::global().device_name(), "gateway-01");
}

#[test]
fn a_created_global_config_cannot_be_replaced() {
    let before = Config::global();
    let other =
        Config::parse("device_name = x\nsample_period_ms = 1\nsamples_per_report = 1").unwrap();
    let refused = other.clone().install().unwrap_err();
    assert_eq!(refused, other);
    assert!(std::ptr::eq(before, Config::global()));
}

#[test]
fn tests_inject_their_own_config_instead_of_the_global() {
    let fast =
        Config::parse("device_name = rig\nsample_period_ms = 1\nsamples_per_report = 3").unwrap();
    let slow = Config::parse("device_name = rig\nsample_period_ms = 1000\nsamples_per_report = 1")
        .unwrap();
    let samples = [1.0, 2.0, 3.0];
    assert_eq!(Sampler::new(&fast).reports(&samples), ["rig@3ms: 2.00"]);
    assert_eq!(
        Sampler::new(&slow).reports(&samples),
        ["rig@1000ms: 1.00", "rig@2000ms: 2.00", "rig@3000ms: 3.00"]
    );
    // The production wiring still reaches the one global instance.
    assert!(std::ptr::eq(
        Sampler::from_global().config(),
        Config::global()
    ));
    assert_eq!(
        Sampler::from_global().reports(&[1.0, 2.0, 3.0, 4.0]),
        ["gateway-01@1000ms: 2.50"]
    );
}

#[test]
fn build_info_is_one_lazy_instance() {
    assert!(std::ptr::eq(build_info(), build_info()));
    assert_eq!(build_info().version, env!("CARGO_PKG_VERSION"));
}
