//! Thread-Specific Storage: one object per thread and instance, no sharing, dropped at thread exit.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

use concurrency::ThreadSpecific;

/// A per-thread batch of log records that counts its own drops.
struct Batch {
    records: Vec<u32>,
    dropped: Arc<AtomicUsize>,
}

impl Drop for Batch {
    fn drop(&mut self) {
        self.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn each_thread_counts_in_its_own_object_and_each_object_is_dropped_at_its_thread_exit() {
    const THREADS: usize = 4;
    let dropped = Arc::new(AtomicUsize::new(0));
    let batches = {
        let dropped = dropped.clone();
        Arc::new(ThreadSpecific::new(move || Batch {
            records: Vec::new(),
            dropped: dropped.clone(),
        }))
    };
    // All threads are alive at once, so none can reuse another's storage.
    let together = Arc::new(Barrier::new(THREADS));
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (batches, together) = (batches.clone(), together.clone());
            thread::spawn(move || {
                together.wait();
                for i in 0..(t + 1) * 100 {
                    batches.with(|b| b.records.push(i as u32));
                }
                together.wait();
                batches.with(|b| b.records.len())
            })
        })
        .collect();
    let counts: Vec<usize> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    assert_eq!(counts, [100, 200, 300, 400]);
    assert_eq!(dropped.load(Ordering::SeqCst), THREADS);
    // The main thread never touched it: no object here.
    assert!(batches.try_with(|b| b.records.len()).is_none());
}

#[test]
fn several_instances_coexist_in_one_thread() {
    let readings = ThreadSpecific::new(|| 0u32);
    let errors = ThreadSpecific::new(|| 100u32);
    assert_ne!(readings.key(), errors.key());
    readings.with(|r| *r += 3);
    errors.with(|e| *e += 1);
    // Using one instance inside another's access is fine.
    readings.with(|r| errors.with(|e| *e += *r));
    assert_eq!((readings.get(), errors.get()), (3, 104));
}

#[test]
fn take_removes_the_calling_threads_object_and_the_next_access_makes_a_fresh_one() {
    let made = Arc::new(AtomicUsize::new(0));
    let tss = {
        let made = made.clone();
        ThreadSpecific::new(move || {
            made.fetch_add(1, Ordering::SeqCst);
            vec![0u8; 4]
        })
    };
    assert_eq!(tss.take(), None);
    tss.with(|v| v.push(1));
    assert_eq!(tss.take(), Some(vec![0, 0, 0, 0, 1]));
    assert_eq!(tss.get(), vec![0; 4]);
    assert_eq!(made.load(Ordering::SeqCst), 2);
}

#[test]
fn dropping_the_instance_drops_the_calling_threads_object() {
    let dropped = Arc::new(AtomicUsize::new(0));
    let tss = {
        let dropped = dropped.clone();
        ThreadSpecific::new(move || Batch {
            records: vec![1],
            dropped: dropped.clone(),
        })
    };
    tss.with(|b| b.records.push(2));
    assert_eq!(dropped.load(Ordering::SeqCst), 0);
    drop(tss);
    assert_eq!(dropped.load(Ordering::SeqCst), 1);
}

/// The liability "restricts implementation options": the object is borrowed for the whole
/// closure, so reaching the same instance again from inside it panics (another instance is
/// fine), and the object's type must be `'static` (the `compile_fail` doctest on
/// `ThreadSpecific` shows a borrowed type refused).
#[test]
fn a_reentrant_access_to_the_same_instance_panics_and_another_instance_is_fine() {
    let outer = ThreadSpecific::new(|| 1u32);
    let other = ThreadSpecific::new(|| 2u32);
    assert_eq!(outer.with(|a| *a + other.with(|b| *b)), 3);
    let reentrant =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| outer.with(|_| outer.get())));
    assert!(reentrant.is_err(), "a second borrow of the same object");
    // The object survived the panic and is usable again.
    assert_eq!(outer.get(), 1);
}

/// Portability: the pattern needs nothing of the thread but the platform's thread-local
/// storage. The same proxy serves a thread made by `pthread_create` directly (through the
/// wrapper facade's `RawThread`, so std never heard of it) as it serves std's threads: the
/// thread gets its own object, and the object is dropped when that thread exits, before the
/// join returns.
#[test]
fn portability_a_thread_std_did_not_create_gets_its_own_object_dropped_at_its_exit() {
    use wrapper_facade::thread::RawThread;
    let dropped = Arc::new(AtomicUsize::new(0));
    let batches = {
        let dropped = dropped.clone();
        Arc::new(ThreadSpecific::new(move || Batch {
            records: Vec::new(),
            dropped: dropped.clone(),
        }))
    };
    batches.with(|b| b.records.push(1)); // the main thread's object
    let (tx, rx) = std::sync::mpsc::channel();
    let raw = {
        let batches = batches.clone();
        RawThread::spawn("tss-raw", move || {
            for r in 0..5 {
                batches.with(|b| b.records.push(r));
            }
            tx.send(batches.with(|b| b.records.len())).unwrap();
        })
        .expect("pthread_create")
    };
    assert_eq!(rx.recv().unwrap(), 5, "the raw thread's own object");
    assert!(raw.join().expect("pthread_join").is_ok());
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        1,
        "dropped at the raw thread's exit"
    );
    assert_eq!(
        batches.with(|b| b.records.clone()),
        [1],
        "main's is untouched"
    );
}

/// The gateway's "current batch", reached from anywhere: a logically global object.
static PENDING: std::sync::LazyLock<ThreadSpecific<Vec<String>>> =
    std::sync::LazyLock::new(|| ThreadSpecific::new(Vec::new));

/// Notes a reading for the next uplink. Nothing in the signature says it keeps anything.
fn note(reading: &str) {
    PENDING.with(|p| p.push(reading.to_owned()));
}

/// Sends what is pending and says how many went. Nothing in the signature says what it sends.
fn flush() -> usize {
    PENDING.with(|p| std::mem::take(p).len())
}

/// The liability "encourages the use of (thread-specific) global objects": two functions that
/// take and share no argument are coupled through a static access point; calling one changes
/// what the other does, and neither signature shows it.
#[test]
fn encourages_global_objects_two_functions_are_coupled_through_a_static_neither_signature_shows() {
    thread::spawn(|| {
        assert_eq!(flush(), 0);
        note("t=21.5");
        note("t=21.7");
        assert_eq!(flush(), 2, "flush sent what note left in the global batch");
        assert_eq!(flush(), 0);
    })
    .join()
    .unwrap();
}

/// The liability "obscures the structure of the system": the same call, with the same (no)
/// arguments, at the same moment, answers differently on each thread, because what it reaches
/// depends on who calls it. logd lives with it by keeping an invariant: each upcall leaves its
/// thread's batch (`server::SCRATCH`) empty, checked by a `debug_assert!` at the next one.
#[test]
fn obscures_the_structure_the_same_call_answers_differently_on_each_thread() {
    let noted_before = Barrier::new(2);
    let answers: Vec<usize> = thread::scope(|s| {
        let workers: Vec<_> = [3, 0]
            .into_iter()
            .map(|n| {
                let noted_before = &noted_before;
                s.spawn(move || {
                    for i in 0..n {
                        note(&format!("reading {i}"));
                    }
                    noted_before.wait(); // both threads now make the very same call
                    flush()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    assert_eq!(answers, [3, 0]);
}
