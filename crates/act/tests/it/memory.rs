//! One million outstanding tokens within the documented memory bound.

use std::time::{Duration, Instant};

use act::{CompletionToken, TokenTable};

/// The documented bound: a slot for an 8-byte context takes at most 32 bytes, and a table
/// grown by doubling holds at most twice the slots it needs; a preallocated one exactly
/// what it needs.
const SLOT_BYTES_FOR_U64: usize = 32;

#[test]
fn a_million_outstanding_tokens_fit_the_bound() {
    const N: usize = 1_000_000;
    const { assert!(TokenTable::<u64>::SLOT_BYTES <= SLOT_BYTES_FOR_U64) };

    let mut table = TokenTable::<u64>::preallocated(N);
    let tokens: Vec<CompletionToken> = (0..N as u64).map(|i| table.issue(i).unwrap()).collect();
    assert_eq!(table.len(), N);
    assert!(table.issue(0).is_err(), "the bound is the limit");
    let per_token = table.memory_bytes() as f64 / N as f64;
    assert!(
        per_token <= SLOT_BYTES_FOR_U64 as f64,
        "{per_token} bytes per token"
    );

    // Every token is still distinct and delivers its own context.
    for (i, &t) in tokens.iter().enumerate().step_by(997) {
        assert_eq!(table.get(t), Ok(&(i as u64)));
    }
    for (i, t) in tokens.into_iter().enumerate() {
        assert_eq!(table.complete(t), Ok(i as u64));
    }
    assert!(table.is_empty());
}

#[test]
fn a_grown_table_stays_within_twice_the_bound() {
    const N: usize = 1_000_000;
    let mut table = TokenTable::<u64>::default();
    for i in 0..N as u64 {
        table.issue(i).unwrap();
    }
    let per_token = table.memory_bytes() as f64 / N as f64;
    assert!(
        per_token <= 2.0 * SLOT_BYTES_FOR_U64 as f64,
        "{per_token} bytes per token"
    );
}

#[test]
fn deadlines_add_a_bounded_heap_entry() {
    const N: usize = 100_000;
    let now = Instant::now();
    let mut table = TokenTable::<u64>::preallocated(N);
    let tokens: Vec<_> = (0..N as u64)
        .map(|i| {
            table
                .issue_with_deadline(i, now + Duration::from_secs(i))
                .unwrap()
        })
        .collect();
    // Completing most of them leaves dead heap entries; compaction bounds them.
    for t in &tokens[..N - 10] {
        table.complete(*t).unwrap();
    }
    // The heap shrinks with its live entries: it never holds more than about twice as many
    // entries as there are live deadlines (plus a constant), however many completed early.
    let bound =
        TokenTable::<u64>::SLOT_BYTES * N + TokenTable::<u64>::DEADLINE_BYTES * (4 * 10 + 200);
    assert!(
        table.memory_bytes() <= bound,
        "{} > {bound}",
        table.memory_bytes()
    );
    assert_eq!(table.expire(now + Duration::from_secs(N as u64)).len(), 10);
}
