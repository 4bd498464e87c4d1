//! Random interleavings of issue, complete, cancel and expire against a simple model.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use act::{ActError, CompletionToken, TokenTable};
use proptest::prelude::*;

const LIMIT: usize = 6;

#[derive(Debug, Clone)]
enum Op {
    /// Issue, with a deadline this many ticks from now if given.
    Issue(Option<u8>),
    /// Complete the n-th token ever issued (modulo the count).
    Complete(usize),
    /// Cancel the n-th token ever issued.
    Cancel(usize),
    /// Move time forward this many ticks and expire.
    Expire(u8),
    /// Present a made-up token.
    Forge(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => proptest::option::of(0u8..5).prop_map(Op::Issue),
        2 => any::<usize>().prop_map(Op::Complete),
        1 => any::<usize>().prop_map(Op::Cancel),
        1 => (0u8..4).prop_map(Op::Expire),
        1 => any::<u64>().prop_map(Op::Forge),
    ]
}

/// The model: each token ever issued is live (with its context and deadline) or ended.
#[derive(Default)]
struct Model {
    issued: Vec<CompletionToken>,
    live: HashMap<CompletionToken, (u32, Option<Instant>)>,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn table_matches_the_model(ops in proptest::collection::vec(op(), 1..200)) {
        let t0 = Instant::now();
        let mut now = t0;
        let tick = Duration::from_millis(10);
        let mut table = TokenTable::<u32>::with_limit(LIMIT);
        let mut model = Model::default();
        let mut next_context = 0u32;

        for op in ops {
            match op {
                Op::Issue(ticks) => {
                    next_context += 1;
                    let deadline = ticks.map(|n| now + tick * u32::from(n));
                    let got = match deadline {
                        Some(at) => table.issue_with_deadline(next_context, at),
                        None => table.issue(next_context),
                    };
                    if model.live.len() == LIMIT {
                        let full = got.expect_err("the table must be full");
                        prop_assert_eq!(full.into_inner(), next_context);
                    } else {
                        let token = got.expect("room in the table");
                        prop_assert!(!model.live.contains_key(&token));
                        prop_assert!(!model.issued.contains(&token), "a token value is never issued twice");
                        model.issued.push(token);
                        model.live.insert(token, (next_context, deadline));
                    }
                }
                Op::Complete(n) | Op::Cancel(n) if !model.issued.is_empty() => {
                    let token = model.issued[n % model.issued.len()];
                    let got = if matches!(op, Op::Complete(_)) {
                        table.complete(token)
                    } else {
                        table.cancel(token)
                    };
                    match model.live.remove(&token) {
                        Some((context, _)) => prop_assert_eq!(got, Ok(context)),
                        None => prop_assert!(
                            matches!(got, Err(ActError::Duplicate { .. } | ActError::Stale { .. })),
                            "an ended token is refused as duplicate or stale, got {:?}", got
                        ),
                    }
                }
                Op::Complete(_) | Op::Cancel(_) => {}
                Op::Expire(ticks) => {
                    now += tick * u32::from(ticks);
                    let mut got = table.expire(now);
                    got.sort_by_key(|(t, _)| *t);
                    let mut want: Vec<(CompletionToken, u32)> = model
                        .live
                        .iter()
                        .filter(|(_, (_, d))| d.is_some_and(|d| d <= now))
                        .map(|(t, (c, _))| (*t, *c))
                        .collect();
                    want.sort_by_key(|(t, _)| *t);
                    for (t, _) in &want {
                        model.live.remove(t);
                    }
                    prop_assert_eq!(got, want);
                }
                Op::Forge(raw) => {
                    let token = CompletionToken::from_raw(raw);
                    if !model.issued.contains(&token) {
                        prop_assert!(table.check(token).is_err(), "made-up token {} accepted", token);
                    }
                }
            }
            prop_assert_eq!(table.len(), model.live.len());
            let report = table.report();
            let mut reported: Vec<_> = report.outstanding.iter().map(|o| (o.token, o.deadline)).collect();
            reported.sort();
            let mut live: Vec<_> = model.live.iter().map(|(t, (_, d))| (*t, *d)).collect();
            live.sort();
            prop_assert_eq!(reported, live);
            let next = model.live.values().filter_map(|(_, d)| *d).min();
            prop_assert_eq!(table.next_deadline(), next);
        }
    }
}
