//! Loom models of the Double-Checked Locking Optimization (run with
//! `RUSTFLAGS="--cfg loom" cargo test -p synchronization --release --test it loom`).
//!
//! Under `--cfg loom` the crate builds `DoubleChecked` from loom's atomics and mutex, so the
//! first model checks the real code: in every interleaving the initialiser runs once and every
//! thread reads the published value, through `get_or_init` or through the first check alone
//! (`get`). The second model is the classic broken variant's publication, with a `Relaxed`
//! flag, written out here: the initialiser's store-then-flag and a reader's first check. Loom
//! finds the interleaving in which the reader sees the flag set but reads the old value, which
//! is what the Acquire/Release pair prevents; the test expects that panic.
//! (Written as a whole `get_or_init` whose initialiser first runs the two checks, loom 0.7 did
//! not reach the stale read in our runs, so the model isolates the publication.)

use std::sync::Arc;

use loom::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use loom::thread;
use synchronization::DoubleChecked;

#[test]
fn loom_double_checked_locking_initialises_once_and_publishes_the_value() {
    loom::model(|| {
        let cell = Arc::new(DoubleChecked::new());
        let inits = Arc::new(AtomicUsize::new(0));
        let access = {
            let (cell, inits) = (cell.clone(), inits.clone());
            move || {
                cell.get_or_init(|| {
                    inits.fetch_add(1, Ordering::Relaxed);
                    42
                })
            }
        };
        let other = {
            let access = access.clone();
            thread::spawn(access)
        };
        let reader = {
            let cell = cell.clone();
            thread::spawn(move || cell.get())
        };
        assert_eq!(access(), 42);
        assert_eq!(other.join().unwrap(), 42);
        assert!(matches!(reader.join().unwrap(), None | Some(42)));
        assert_eq!(inits.load(Ordering::Relaxed), 1);
    });
}

/// The broken variant's two halves: the initialiser's publication, and the first check that
/// every later access runs, both with a `Relaxed` flag.
struct RelaxedDoubleChecked {
    ready: AtomicBool,
    value: AtomicU64,
}

impl RelaxedDoubleChecked {
    /// The end of the initialiser, after the lock and the second check: store, then flag.
    fn publish(&self, value: u64) {
        self.value.store(value, Ordering::Relaxed);
        self.ready.store(true, Ordering::Relaxed);
    }

    /// The first check.
    fn get(&self) -> Option<u64> {
        self.ready
            .load(Ordering::Relaxed)
            .then(|| self.value.load(Ordering::Relaxed))
    }
}

#[test]
#[should_panic(expected = "saw the flag but not the value")]
fn loom_relaxed_publication_is_caught() {
    loom::model(|| {
        let cell = Arc::new(RelaxedDoubleChecked {
            ready: AtomicBool::new(false),
            value: AtomicU64::new(0),
        });
        let initialiser = {
            let cell = cell.clone();
            thread::spawn(move || cell.publish(42))
        };
        let seen = cell.get();
        assert!(
            matches!(seen, None | Some(42)),
            "saw the flag but not the value: {seen:?}"
        );
        initialiser.join().unwrap();
    });
}
