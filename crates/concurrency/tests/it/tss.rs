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

/// Course consequence "restricts implementation options": the object is lent to `with` as
/// `&mut T`, so code that reaches the same instance again from inside `with` (a logger called
/// by the code that is filling the batch, say) cannot get a second borrow: the nested access
/// panics. The panic costs only that access: the borrow is released while unwinding, and the
/// object keeps what the outer call had put in it.
#[test]
fn restricts_implementation_options_a_re_entrant_access_inside_with_panics() {
    let batch = ThreadSpecific::new(Vec::<u32>::new);
    let nested = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        batch.with(|outer| {
            outer.push(1);
            batch.with(|inner| inner.push(2));
        })
    }));
    let message = nested.expect_err("a nested access must not succeed");
    let text = message
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| message.downcast_ref::<&str>().copied())
        .unwrap_or_default();
    assert!(text.contains("borrow"), "{text}");
    assert_eq!(batch.get(), [1]);
    batch.with(|b| b.push(3));
    assert_eq!(batch.get(), [1, 3]);
}
