//! Stale, duplicate, replayed, foreign and made-up tokens are refused as values.

use act::{ActError, Callbacks, CompletionQueue, CompletionToken, TokenTable};

#[test]
fn completing_twice_is_a_duplicate_and_runs_nothing_twice() {
    let callbacks = Callbacks::<u8>::with_limit(4);
    let runs = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let r = runs.clone();
    let token = callbacks
        .issue(move |_| {
            r.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        })
        .unwrap();
    assert_eq!(callbacks.complete(token, 1), Ok(()));
    assert_eq!(
        callbacks.complete(token, 2),
        Err(ActError::Duplicate { token })
    );
    assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[test]
fn a_stale_token_never_reaches_the_slots_next_occupant() {
    let mut table = TokenTable::with_limit(1);
    let old = table.issue("first").unwrap();
    table.complete(old).unwrap();
    let new = table.issue("second").unwrap();
    assert_eq!(old.slot(), new.slot());
    assert_eq!(table.complete(old), Err(ActError::Stale { token: old }));
    assert_eq!(table.get(new), Ok(&"second"));
    // Many reuses later the first token is still refused.
    let mut last = new;
    for i in 0..10_000 {
        table.complete(last).unwrap();
        last = table.issue("again").unwrap();
        assert_eq!(last.generation(), i + 2);
    }
    assert_eq!(table.check(old), Err(ActError::Stale { token: old }));
}

#[test]
fn replayed_tokens_are_refused_whatever_happened_since() {
    let queue = CompletionQueue::<u32, u32>::with_limit(64);
    let tokens: Vec<_> = (0..64).map(|i| queue.issue(i).unwrap()).collect();
    for &t in &tokens {
        queue.complete(t, 0).unwrap();
    }
    // Undrained events count against the bound.
    assert!(queue.issue(99).is_err());
    assert_eq!(queue.drain().len(), 64);
    // Refill the table so that every slot is reused, then replay the old tokens.
    let fresh: Vec<_> = (0..64).map(|i| queue.issue(i).unwrap()).collect();
    for &t in &tokens {
        assert_eq!(queue.complete(t, 1), Err(ActError::Stale { token: t }));
    }
    assert_eq!(queue.outstanding(), fresh.len());
    assert_eq!(queue.queued(), 0, "replays queue nothing");
}

#[test]
fn tokens_of_another_table_are_refused() {
    let mut ours = TokenTable::with_limit(10_000);
    let mut theirs = TokenTable::with_limit(10_000);
    for i in 0..10_000 {
        ours.issue(i).unwrap();
    }
    // Same slots and generations as ours, different key: only the tag tells them apart.
    let foreign: Vec<_> = (0..10_000).map(|i| theirs.issue(i).unwrap()).collect();
    let accepted = foreign.iter().filter(|&&t| ours.check(t).is_ok()).count();
    // Each passes with probability 2^-24: two or more of 10,000 happens about once in 5 million runs.
    assert!(accepted <= 1, "{accepted} foreign tokens accepted");
    for t in foreign.iter().filter(|&&t| ours.check(t).is_err()) {
        assert_eq!(ours.check(*t), Err(ActError::Forged { token: *t }));
    }
    assert_eq!(ours.len(), 10_000);
}

#[test]
fn made_up_and_corrupted_tokens_are_refused() {
    let mut table = TokenTable::with_limit(1000);
    let tokens: Vec<_> = (0..1000).map(|i| table.issue(i).unwrap()).collect();
    // A flipped generation or tag bit is always caught (the generation no longer matches, or
    // the tag no longer equals the one computed); a flipped slot bit lands on another live
    // slot only to be caught by the tag, with probability 1 - 2^-24 each.
    let mut slot_flips_accepted = 0;
    for &t in &tokens {
        for bit in 0..64 {
            let bad = CompletionToken::from_raw(t.to_raw() ^ (1 << bit));
            let accepted = table.check(bad).is_ok();
            if bit < 22 {
                slot_flips_accepted += usize::from(accepted);
            } else {
                assert!(!accepted, "{t} with bit {bit} flipped accepted");
            }
        }
    }
    assert!(
        slot_flips_accepted <= 1,
        "{slot_flips_accepted} corrupted tokens accepted"
    );
    // Made-up values (a simple deterministic sequence, not derived from the table's tokens).
    let mut x = 0x243f_6a88_85a3_08d3u64;
    let mut accepted = 0;
    for _ in 0..100_000 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        accepted += usize::from(table.check(CompletionToken::from_raw(x)).is_ok());
    }
    assert_eq!(accepted, 0);
    assert_eq!(table.len(), 1000);
}

#[test]
fn errors_say_what_went_wrong() {
    let t = CompletionToken::from_raw(0);
    assert_eq!(
        ActError::Duplicate { token: t }.to_string(),
        "token 0v0#000000 was already completed, cancelled or expired"
    );
    assert!(
        ActError::Forged { token: t }
            .to_string()
            .contains("not issued by this table")
    );
    assert_eq!(
        ActError::Full { limit: 3 }.to_string(),
        "the token table is full (3 outstanding tokens)"
    );
}

/// Course consequence "application re-mapping": an index ACT names a slot, not an address, so the
/// initiator's table may be rearranged (here its slot vector reallocated many times over as it
/// grows from one slot to 50,001) and every token issued before still finds its own context.
#[test]
fn application_re_mapping_tokens_name_slots_so_they_survive_the_table_growing() {
    let mut table = TokenTable::with_limit(100_000);
    let first = table.issue(String::from("first")).unwrap();
    let small = table.memory_bytes();
    let rest: Vec<CompletionToken> = (0..50_000)
        .map(|i| table.issue(format!("request {i}")).unwrap())
        .collect();
    assert!(
        table.memory_bytes() > 1000 * small,
        "the table did not grow: {} then {} bytes",
        small,
        table.memory_bytes()
    );
    assert_eq!(table.complete(first), Ok(String::from("first")));
    for (i, token) in rest.into_iter().enumerate().rev() {
        assert_eq!(table.complete(token), Ok(format!("request {i}")));
    }
    assert!(table.is_empty());
}
