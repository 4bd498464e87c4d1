//! Two consequences of the ACT pattern, shown side by side on one workload: a gateway has asked
//! 1,000 sensors for a reading, and the replies come back in another order.
//!
//! - Efficient state acquisition: with an ACT the reply names its request, so finding the
//!   request's state is one slot read; without one, the gateway searches for it.
//! - Simplified initiator data structures: the ACT initiator keeps no index of its own (the
//!   token table is the only structure, and the token the only key on the wire); without an
//!   ACT the gateway keeps a keyed index and every reply must carry the key fields.
//!
//! Every count printed is exact and the same on every run (the reply order comes from a fixed
//! seed).

use std::collections::HashMap;

use act::{ActError, CompletionToken, TokenTable};

/// What the gateway remembers about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Request {
    sensor: u32,
    seq: u32,
}

const SENSORS: u32 = 1000;

/// A fixed permutation of `0..n` (a linear congruential shuffle), so the output is the same on
/// every run.
fn shuffled(n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    for i in (1..n).rev() {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        order.swap(i, (state >> 33) as usize % (i + 1));
    }
    order
}

fn main() {
    let requests: Vec<Request> = (0..SENSORS)
        .map(|sensor| Request { sensor, seq: 7 })
        .collect();
    let order = shuffled(requests.len());
    println!(
        "{} requests outstanding; the replies arrive in another order",
        requests.len()
    );

    // 1. No ACT, no index: search the pending requests for the one a reply answers. The
    //    reply must echo the sensor id and the sequence number for the search to work.
    let mut pending = requests.clone();
    let mut comparisons = 0u64;
    let mut by_search = Vec::new();
    for &i in &order {
        let key = requests[i];
        let at = pending
            .iter()
            .position(|r| {
                comparisons += 1;
                *r == key
            })
            .expect("a pending request");
        by_search.push(pending.swap_remove(at));
    }
    println!(
        "search of the pending list: {comparisons} key comparisons for {} replies ({:.1} per reply)",
        order.len(),
        comparisons as f64 / order.len() as f64
    );

    // 2. No ACT, a keyed index: one more structure to keep in step with the requests (an
    //    insert per request, a removal per reply), and the key fields still in every reply.
    let mut index: HashMap<(u32, u32), Request> = HashMap::new();
    for r in &requests {
        index.insert((r.sensor, r.seq), *r);
    }
    let by_index: Vec<Request> = order
        .iter()
        .map(|&i| {
            let r = requests[i];
            index.remove(&(r.sensor, r.seq)).expect("indexed")
        })
        .collect();
    println!(
        "keyed index: {} inserts and {} removals kept a HashMap<(sensor, seq), Request> in step; every reply carries 8 bytes of key fields",
        requests.len(),
        order.len()
    );

    // 3. ACT: the token is the key and the table is the only structure; a reply carries the
    //    token back and its request is one slot read away.
    let mut table = TokenTable::<Request>::preallocated(requests.len());
    let tokens: Vec<CompletionToken> = requests
        .iter()
        .map(|r| table.issue(*r).expect("room for every request"))
        .collect();
    println!(
        "token table: {} bytes for {} requests ({} per slot), no other index; every reply carries one {}-byte token",
        table.memory_bytes(),
        table.len(),
        TokenTable::<Request>::SLOT_BYTES,
        std::mem::size_of::<CompletionToken>()
    );
    let by_act: Vec<Request> = order
        .iter()
        .map(|&i| table.complete(tokens[i]).expect("an outstanding token"))
        .collect();
    println!(
        "ACT: {} replies matched with {} slot reads and 0 key comparisons",
        by_act.len(),
        by_act.len()
    );
    assert_eq!(by_search, by_act);
    assert_eq!(by_index, by_act);
    println!("all three matched every reply to the same request");

    // What the search cannot tell apart, the token can: a sensor answering twice.
    let again = tokens[17];
    match table.complete(again) {
        Err(ActError::Duplicate { .. }) => {
            println!("a second reply from sensor 17: refused as a duplicate by the table")
        }
        other => panic!("a duplicate reply was not refused: {other:?}"),
    }
    println!(
        "(the search and the index only find nothing, and cannot tell a duplicate from a reply nobody asked for)"
    );
}
