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
//! The third model is the naive first check on a value written in two halves, which loom reads
//! half-written; the test expects that panic too.

use std::sync::Arc;

use loom::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
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

/// The naive first check on a value that is not written in one piece: a 64-bit value stored as
/// two 32-bit halves (as a 32-bit machine stores a 64-bit integer or a pointer pair), the value
/// itself serving as the "initialised" flag (non-zero).
struct HalvesDoubleChecked {
    low: AtomicU32,
    high: AtomicU32,
}

impl HalvesDoubleChecked {
    /// The end of the initialiser: the value written half by half.
    fn publish(&self, value: u64) {
        self.low.store(value as u32, Ordering::SeqCst);
        self.high.store((value >> 32) as u32, Ordering::SeqCst);
    }

    /// The first check: "non-zero means initialised", reading the halves one by one.
    fn get(&self) -> Option<u64> {
        let low = u64::from(self.low.load(Ordering::SeqCst));
        let high = u64::from(self.high.load(Ordering::SeqCst));
        let value = high << 32 | low;
        (value != 0).then_some(value)
    }
}

/// Course consequence "non-atomic pointer or integral assignment semantics": even with every
/// access sequentially consistent, a value written in two halves can be read half-written, and
/// the first check then returns a value nobody stored. Loom finds the interleaving; the test
/// expects that panic. `DoubleChecked` avoids it by keeping its value in one `AtomicU64`.
#[test]
#[should_panic(expected = "read half-written")]
fn loom_a_value_written_in_two_halves_is_read_half_written() {
    loom::model(|| {
        let cell = Arc::new(HalvesDoubleChecked {
            low: AtomicU32::new(0),
            high: AtomicU32::new(0),
        });
        let value = 0x0000_0007_0000_0011_u64;
        let initialiser = {
            let cell = cell.clone();
            thread::spawn(move || cell.publish(value))
        };
        let seen = cell.get();
        assert!(
            seen.is_none() || seen == Some(value),
            "read half-written: {seen:x?}"
        );
        initialiser.join().unwrap();
    });
}
