//! Double-Checked Locking Optimization: written out, and in its idiomatic std form.

use std::collections::HashMap;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Barrier, LazyLock, OnceLock};
use std::thread;

use synchronization::DoubleChecked;

const THREADS: usize = 8;

/// Runs `access` on `THREADS` threads released together, and returns what each one got.
fn race<T: Send>(access: impl Fn() -> T + Sync) -> Vec<T> {
    let start = Barrier::new(THREADS);
    thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                s.spawn(|| {
                    start.wait();
                    access()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[test]
fn the_double_checked_cell_runs_its_initialiser_once_and_everyone_sees_its_value() {
    let cell = DoubleChecked::new();
    let inits = AtomicUsize::new(0);
    assert_eq!(cell.get(), None);
    let seen = race(|| {
        cell.get_or_init(|| {
            inits.fetch_add(1, Ordering::SeqCst);
            0xfeed
        })
    });
    assert_eq!(inits.load(Ordering::SeqCst), 1);
    assert!(seen.iter().all(|v| *v == 0xfeed));
    assert_eq!(cell.get(), Some(0xfeed));
    assert_eq!(format!("{cell:?}"), "DoubleChecked { value: Some(65261) }");
}

#[test]
fn a_panicking_initialiser_leaves_the_cell_empty_for_the_next_caller() {
    let cell = DoubleChecked::default();
    let failed = panic::catch_unwind(AssertUnwindSafe(|| {
        cell.get_or_init(|| panic!("the host table is full"))
    }));
    assert!(failed.is_err());
    assert_eq!(cell.get(), None);
    assert_eq!(cell.get_or_init(|| 3), 3);
}

/// The idiomatic form: `OnceLock` is double-checked locking (an acquire load of its state,
/// then a lock and a second check on the slow path), for any type, with no unsafe in our code.
#[test]
fn oncelock_is_the_idiomatic_form_and_also_initialises_once() {
    static HOSTS: OnceLock<HashMap<&'static str, u32>> = OnceLock::new();
    static INITS: AtomicUsize = AtomicUsize::new(0);
    let seen = race(|| {
        HOSTS
            .get_or_init(|| {
                INITS.fetch_add(1, Ordering::SeqCst);
                HashMap::from([("sensor-1", 1), ("sensor-2", 2)])
            })
            .len()
    });
    assert_eq!(INITS.load(Ordering::SeqCst), 1);
    assert_eq!(seen, vec![2; THREADS]);
    assert_eq!(HOSTS.get().map(|h| h["sensor-2"]), Some(2));
}

#[test]
fn lazylock_is_the_idiomatic_form_with_the_initialiser_named_at_the_declaration() {
    static INITS: AtomicUsize = AtomicUsize::new(0);
    static GATEWAY_NAME: LazyLock<String> = LazyLock::new(|| {
        INITS.fetch_add(1, Ordering::SeqCst);
        format!("gateway-{}", 7)
    });
    let seen = race(|| GATEWAY_NAME.len());
    assert_eq!(INITS.load(Ordering::SeqCst), 1);
    assert_eq!(seen, vec![9; THREADS]);
}

/// Course consequence "additional mutex": every double-checked cell carries a mutex besides its
/// flag and its value, used only by the first callers; std's `OnceLock` keeps its waiters on a
/// futex in its one state word and is smaller by about the mutex.
#[test]
fn additional_mutex_each_cell_carries_one_that_oncelock_does_without() {
    use std::mem::size_of;
    let cell = size_of::<DoubleChecked>();
    let parts = size_of::<std::sync::atomic::AtomicBool>()
        + size_of::<std::sync::atomic::AtomicU64>()
        + size_of::<std::sync::Mutex<()>>();
    assert!(cell >= parts, "{cell} bytes for {parts} bytes of parts");
    let once = size_of::<std::sync::OnceLock<u64>>();
    assert!(
        once + size_of::<std::sync::Mutex<()>>() <= cell,
        "OnceLock<u64> {once} bytes, DoubleChecked {cell}"
    );
}
