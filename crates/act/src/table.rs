//! The token table: index ACTs issued from a generational slab, with deadlines and a bound.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::time::Instant;

use crate::token::{GENERATION_MASK, INDEX_MASK, Secret};
use crate::{ActError, CompletionToken, Full};

/// The most slots a table can have (the token's 22-bit index).
pub const MAX_SLOTS: usize = INDEX_MASK as usize + 1;

const NO_FREE: u32 = u32::MAX;
const LAST_GENERATION: u32 = GENERATION_MASK as u32;

#[derive(Debug)]
enum State<C> {
    Vacant {
        next_free: u32,
    },
    Occupied {
        context: C,
        deadline: Option<Instant>,
    },
}

/// One slot: the generation of its current (or last) occupant and its state.
#[derive(Debug)]
pub(crate) struct Slot<C> {
    generation: u32,
    state: State<C>,
}

/// One outstanding token, as [`TokenTable::report`] lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outstanding {
    /// The token.
    pub token: CompletionToken,
    /// Its deadline, if it has one.
    pub deadline: Option<Instant>,
}

/// What a table holds: the answer to "are we leaking operations?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The outstanding tokens, in slot order.
    pub outstanding: Vec<Outstanding>,
    /// The table's limit.
    pub limit: usize,
    /// The earliest deadline among them.
    pub next_deadline: Option<Instant>,
}

impl Report {
    /// How many tokens are outstanding.
    pub fn len(&self) -> usize {
        self.outstanding.len()
    }

    /// Whether nothing is outstanding.
    pub fn is_empty(&self) -> bool {
        self.outstanding.is_empty()
    }

    /// Tokens whose deadline is at or before `now`: overdue, waiting for the next expiry pass.
    pub fn overdue(&self, now: Instant) -> impl Iterator<Item = &Outstanding> {
        self.outstanding
            .iter()
            .filter(move |o| o.deadline.is_some_and(|d| d <= now))
    }

    /// Tokens with no deadline: they stay until completed or cancelled.
    pub fn unbounded(&self) -> impl Iterator<Item = &Outstanding> {
        self.outstanding.iter().filter(|o| o.deadline.is_none())
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} outstanding of {} ({} without a deadline)",
            self.len(),
            self.limit,
            self.unbounded().count()
        )
    }
}

/// A table of outstanding operations named by index ACTs: the initiator's side of the
/// pattern, single-threaded (wrap it in a lock, or use [`Callbacks`](crate::Callbacks) or
/// [`CompletionQueue`](crate::CompletionQueue), to share it).
///
/// [`issue`](Self::issue) stores the initiator's context `C` (a completion handler, or any
/// state that says how to process the result) and returns a [`CompletionToken`];
/// [`complete`](Self::complete) takes the context back, once. Both are O(1): the token is the
/// slot index, checked by generation and by a keyed tag.
///
/// - A token completed twice is refused ([`ActError::Duplicate`]), and so is an old token
///   whose slot was reused ([`ActError::Stale`]): the generation of each slot goes up on every
///   reuse, and a slot whose generation would wrap is retired, so a table **never** accepts a
///   token of an operation that has ended.
/// - A token this table did not issue (another table's, a corrupted or a made-up one) is
///   refused ([`ActError::Forged`]) unless its 24-bit tag matches by chance: probability
///   2^-24 per token for a value not derived from this table's tokens.
/// - Memory is bounded: at most `limit` outstanding tokens ([`Full`] hands the context back),
///   and optional deadlines end forgotten operations ([`expire`](Self::expire)).
///   A slot takes [`SLOT_BYTES`](Self::SLOT_BYTES): 32 bytes for an 8-byte context, 40 for a
///   boxed closure; a deadline adds a [`DEADLINE_BYTES`](Self::DEADLINE_BYTES) (24-byte) heap
///   entry. A [`preallocated`](Self::preallocated) table holds exactly `limit` slots; a grown
///   one at most twice the peak number of outstanding tokens. The integration tests hold
///   1,000,000 outstanding tokens and assert 32 bytes per token for `u64` contexts.
///
/// ```
/// use std::time::{Duration, Instant};
/// use act::{ActError, TokenTable};
///
/// let mut table = TokenTable::with_limit(16);
/// let read = table.issue("read header").unwrap();
/// let t0 = Instant::now();
/// let slow = table.issue_with_deadline("slow lookup", t0 + Duration::from_secs(1)).unwrap();
///
/// // The service returns the token with its result: O(1) back to the initiator's state.
/// assert_eq!(table.complete(read), Ok("read header"));
/// assert!(matches!(table.complete(read), Err(ActError::Duplicate { .. })));
///
/// // The slow one never answers: its deadline ends it, once.
/// assert_eq!(table.expire(t0 + Duration::from_secs(2)), vec![(slow, "slow lookup")]);
/// assert!(table.expire(t0 + Duration::from_secs(3)).is_empty());
/// assert!(table.is_empty());
/// ```
pub struct TokenTable<C> {
    slots: Vec<Slot<C>>,
    free_head: u32,
    len: usize,
    limit: usize,
    secret: Secret,
    /// Deadlines with lazy deletion: entries of ended tokens stay until popped or compacted.
    deadlines: BinaryHeap<Reverse<(Instant, u64)>>,
    live_deadlines: usize,
}

impl<C> fmt::Debug for TokenTable<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenTable")
            .field("len", &self.len)
            .field("limit", &self.limit)
            .field("slots", &self.slots.len())
            .field("deadlines", &self.live_deadlines)
            .finish_non_exhaustive()
    }
}

impl<C> Default for TokenTable<C> {
    /// A table of up to [`MAX_SLOTS`] outstanding tokens.
    fn default() -> Self {
        Self::with_limit(MAX_SLOTS)
    }
}

impl<C> TokenTable<C> {
    /// A table that refuses to hold more than `limit` outstanding tokens (at most
    /// [`MAX_SLOTS`]). Slots are allocated as needed.
    pub fn with_limit(limit: usize) -> Self {
        TokenTable {
            slots: Vec::new(),
            free_head: NO_FREE,
            len: 0,
            limit: limit.min(MAX_SLOTS),
            secret: Secret::fresh(),
            deadlines: BinaryHeap::new(),
            live_deadlines: 0,
        }
    }

    /// Like [`with_limit`](Self::with_limit), with room for `limit` slots allocated up front:
    /// no reallocation later, and exactly `limit` slots of memory.
    pub fn preallocated(limit: usize) -> Self {
        let mut table = Self::with_limit(limit);
        table.slots.reserve_exact(table.limit);
        table
    }

    #[cfg(test)]
    pub(crate) fn with_secret(limit: usize, key: u64) -> Self {
        let mut table = Self::with_limit(limit);
        table.secret = Secret::fixed(key);
        table
    }

    /// The most outstanding tokens this table holds.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Number of outstanding tokens.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no token is outstanding.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Stores `context` and returns the token that names it.
    /// When `limit` tokens are outstanding the context is handed back in [`Full`].
    pub fn issue(&mut self, context: C) -> Result<CompletionToken, Full<C>> {
        self.insert(context, None)
    }

    /// Like [`issue`](Self::issue), with a deadline after which [`expire`](Self::expire)
    /// ends the operation.
    pub fn issue_with_deadline(
        &mut self,
        context: C,
        deadline: Instant,
    ) -> Result<CompletionToken, Full<C>> {
        self.insert(context, Some(deadline))
    }

    fn insert(
        &mut self,
        context: C,
        deadline: Option<Instant>,
    ) -> Result<CompletionToken, Full<C>> {
        if self.len >= self.limit {
            return Err(Full::new(context, self.limit));
        }
        let occupied = State::Occupied { context, deadline };
        let (index, generation) = if self.free_head != NO_FREE {
            let index = self.free_head;
            let slot = &mut self.slots[index as usize];
            let State::Vacant { next_free } = slot.state else {
                unreachable!("the free list holds vacant slots only")
            };
            self.free_head = next_free;
            slot.generation += 1;
            slot.state = occupied;
            (index, slot.generation)
        } else if self.slots.len() < MAX_SLOTS {
            let index = self.slots.len() as u32;
            self.slots.push(Slot {
                generation: 0,
                state: occupied,
            });
            (index, 0)
        } else {
            // Every index is in use or retired (after 2^40 operations): refuse, as full.
            let State::Occupied { context, .. } = occupied else {
                unreachable!()
            };
            return Err(Full::new(context, self.limit));
        };
        self.len += 1;
        let token = CompletionToken::pack(index, generation, self.secret.tag(index, generation));
        if let Some(deadline) = deadline {
            self.deadlines.push(Reverse((deadline, token.to_raw())));
            self.live_deadlines += 1;
        }
        Ok(token)
    }

    /// Checks `token` and returns its slot index when it is outstanding.
    fn locate(&self, token: CompletionToken) -> Result<usize, ActError> {
        let index = token.slot() as usize;
        let forged = ActError::Forged { token };
        let slot = self.slots.get(index).ok_or(forged.clone())?;
        if token.tag() != self.secret.tag(token.slot(), token.generation()) {
            return Err(forged);
        }
        let generation = token.generation();
        match (&slot.state, generation.cmp(&slot.generation)) {
            (State::Occupied { .. }, std::cmp::Ordering::Equal) => Ok(index),
            (State::Vacant { .. }, std::cmp::Ordering::Equal) => Err(ActError::Duplicate { token }),
            (_, std::cmp::Ordering::Less) => Err(ActError::Stale { token }),
            (_, std::cmp::Ordering::Greater) => Err(forged),
        }
    }

    /// Whether `token` names an outstanding operation; the error says why not.
    pub fn check(&self, token: CompletionToken) -> Result<(), ActError> {
        self.locate(token).map(|_| ())
    }

    /// The context of an outstanding token.
    pub fn get(&self, token: CompletionToken) -> Result<&C, ActError> {
        let index = self.locate(token)?;
        match &self.slots[index].state {
            State::Occupied { context, .. } => Ok(context),
            State::Vacant { .. } => unreachable!("located slots are occupied"),
        }
    }

    /// The operation named by `token` finished: its context is taken out, and the token (and
    /// every copy of it) is refused from now on.
    pub fn complete(&mut self, token: CompletionToken) -> Result<C, ActError> {
        let index = self.locate(token)?;
        Ok(self.take(index))
    }

    /// Ends an outstanding operation without a result and gives its context back, so the
    /// initiator can release what it held. A late completion of the token is refused.
    ///
    /// The table cannot stop the service from working on; it only guarantees that the
    /// service's result is no longer delivered.
    pub fn cancel(&mut self, token: CompletionToken) -> Result<C, ActError> {
        self.complete(token)
    }

    fn take(&mut self, index: usize) -> C {
        let slot = &mut self.slots[index];
        let next = if slot.generation == LAST_GENERATION {
            // Retire the slot rather than let its generation wrap: an old token must never
            // name a new operation.
            NO_FREE
        } else {
            let head = self.free_head;
            self.free_head = index as u32;
            head
        };
        let old = std::mem::replace(&mut slot.state, State::Vacant { next_free: next });
        let State::Occupied { context, deadline } = old else {
            unreachable!("located slots are occupied")
        };
        self.len -= 1;
        if deadline.is_some() {
            self.live_deadlines -= 1;
            self.compact_deadlines();
        }
        context
    }

    /// Drops deadline entries of ended tokens once they are the majority, so the heap stays
    /// within twice the live deadlines (plus a small constant) whatever the completion order.
    fn compact_deadlines(&mut self) {
        if self.deadlines.len() > 64 && self.deadlines.len() > 2 * self.live_deadlines {
            let slots = &self.slots;
            self.deadlines.retain(|Reverse((at, raw))| {
                is_live_deadline(slots, CompletionToken::from_raw(*raw), *at)
            });
            if self.deadlines.capacity() > 4 * self.deadlines.len() + 64 {
                self.deadlines.shrink_to(2 * self.deadlines.len() + 64);
            }
        }
    }

    /// The earliest deadline of an outstanding token (ended tokens' entries are skipped).
    pub fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(Reverse((at, raw))) = self.deadlines.peek().copied() {
            if is_live_deadline(&self.slots, CompletionToken::from_raw(raw), at) {
                return Some(at);
            }
            self.deadlines.pop();
        }
        None
    }

    /// Ends every outstanding operation whose deadline is at or before `now`, and returns
    /// their tokens and contexts, earliest deadline first. Each expires exactly once: the
    /// token is refused afterwards, by completion and by later expiry passes alike.
    pub fn expire(&mut self, now: Instant) -> Vec<(CompletionToken, C)> {
        let mut expired = Vec::new();
        while let Some(Reverse((at, raw))) = self.deadlines.peek().copied() {
            if at > now {
                break;
            }
            self.deadlines.pop();
            let token = CompletionToken::from_raw(raw);
            if is_live_deadline(&self.slots, token, at) {
                let index = token.slot() as usize;
                expired.push((token, self.take(index)));
            }
        }
        expired
    }

    /// The outstanding tokens and their contexts, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (CompletionToken, &C, Option<Instant>)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, slot)| match &slot.state {
                State::Occupied { context, deadline } => {
                    let (i, g) = (i as u32, slot.generation);
                    let token = CompletionToken::pack(i, g, self.secret.tag(i, g));
                    Some((token, context, *deadline))
                }
                State::Vacant { .. } => None,
            })
    }

    /// A report of the outstanding tokens: who is still waiting, and for how long at most.
    pub fn report(&self) -> Report {
        let outstanding: Vec<Outstanding> = self
            .iter()
            .map(|(token, _, deadline)| Outstanding { token, deadline })
            .collect();
        let next_deadline = outstanding.iter().filter_map(|o| o.deadline).min();
        Report {
            outstanding,
            limit: self.limit,
            next_deadline,
        }
    }

    /// Ends every outstanding operation and returns the contexts, in slot order: for an
    /// initiator shutting down.
    pub fn drain(&mut self) -> Vec<(CompletionToken, C)> {
        let tokens: Vec<CompletionToken> = self.iter().map(|(t, _, _)| t).collect();
        tokens
            .into_iter()
            .map(|t| {
                let index = t.slot() as usize;
                (t, self.take(index))
            })
            .collect()
    }

    /// Bytes the table itself holds: its slot array and deadline heap, by capacity.
    /// Whatever the contexts own on the heap (a boxed closure's captures) is not included.
    pub fn memory_bytes(&self) -> usize {
        self.slots.capacity() * Self::SLOT_BYTES
            + self.deadlines.capacity() * std::mem::size_of::<Reverse<(Instant, u64)>>()
    }

    /// Bytes of one slot for this context type (`size_of` of the slot).
    pub const SLOT_BYTES: usize = std::mem::size_of::<Slot<C>>();

    /// Bytes of one deadline entry.
    pub const DEADLINE_BYTES: usize = std::mem::size_of::<Reverse<(Instant, u64)>>();
}

fn is_live_deadline<C>(slots: &[Slot<C>], token: CompletionToken, at: Instant) -> bool {
    match slots.get(token.slot() as usize) {
        Some(Slot {
            generation,
            state: State::Occupied { deadline, .. },
        }) => *generation == token.generation() && *deadline == Some(at),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn generations_distinguish_duplicate_from_stale() {
        let mut t = TokenTable::with_secret(4, 7);
        let a = t.issue(1).unwrap();
        assert_eq!(t.complete(a), Ok(1));
        assert_eq!(t.complete(a), Err(ActError::Duplicate { token: a }));
        let b = t.issue(2).unwrap();
        assert_eq!(b.slot(), a.slot());
        assert_eq!(t.complete(a), Err(ActError::Stale { token: a }));
        assert_eq!(t.get(b), Ok(&2));
    }

    #[test]
    fn a_tag_that_does_not_match_is_forged() {
        let mut t = TokenTable::with_secret(4, 7);
        let a = t.issue(1).unwrap();
        let bad = CompletionToken::from_raw(a.to_raw() ^ (1 << 63));
        assert_eq!(t.complete(bad), Err(ActError::Forged { token: bad }));
        let beyond = CompletionToken::from_raw(a.to_raw() + 5);
        assert_eq!(t.check(beyond), Err(ActError::Forged { token: beyond }));
        // A future generation with a correct tag still is not ours.
        let future = CompletionToken::pack(0, 3, t.secret.tag(0, 3));
        assert_eq!(t.check(future), Err(ActError::Forged { token: future }));
        assert_eq!(t.complete(a), Ok(1));
    }

    #[test]
    fn tokens_of_a_table_with_another_key_are_refused() {
        // Fixed keys make this exact: with these two keys no tag of the first 100,000 slots
        // collides (a random pair of keys would see about 0.006 collisions).
        let mut ours = TokenTable::with_secret(100_000, 0x1234_5678);
        let mut theirs = TokenTable::with_secret(100_000, 0x8765_4321);
        for i in 0..100_000 {
            ours.issue(i).unwrap();
        }
        for i in 0..100_000 {
            let foreign = theirs.issue(i).unwrap();
            assert_eq!(
                ours.check(foreign),
                Err(ActError::Forged { token: foreign })
            );
        }
    }

    #[test]
    fn a_slot_is_retired_instead_of_wrapping() {
        let mut t = TokenTable::with_secret(1, 9);
        t.slots.push(Slot {
            generation: LAST_GENERATION - 2,
            state: State::Vacant { next_free: NO_FREE },
        });
        t.free_head = 0;
        let a = t.issue('a').unwrap();
        let b = {
            t.complete(a).unwrap();
            t.issue('b').unwrap()
        };
        assert_eq!(b.generation(), LAST_GENERATION);
        t.complete(b).unwrap();
        let c = t.issue('c').unwrap();
        assert_eq!(c.slot(), 1, "the exhausted slot is never reused");
        assert_eq!(t.complete(b), Err(ActError::Duplicate { token: b }));
    }

    #[test]
    fn the_deadline_heap_is_compacted() {
        let mut t = TokenTable::with_limit(10_000);
        let now = Instant::now();
        for round in 0..100 {
            let tokens: Vec<_> = (0..100)
                .map(|i| {
                    t.issue_with_deadline(i, now + Duration::from_secs(round + 1))
                        .unwrap()
                })
                .collect();
            for token in tokens {
                t.complete(token).unwrap();
            }
            assert!(
                t.deadlines.len() <= 2 * t.live_deadlines + 65,
                "{}",
                t.deadlines.len()
            );
        }
        assert_eq!(t.next_deadline(), None);
    }

    #[test]
    fn drain_and_report() {
        let mut t = TokenTable::with_limit(8);
        let now = Instant::now();
        let a = t.issue('a').unwrap();
        let b = t.issue_with_deadline('b', now).unwrap();
        let r = t.report();
        assert_eq!(r.len(), 2);
        assert_eq!(r.next_deadline, Some(now));
        assert_eq!(r.overdue(now).map(|o| o.token).collect::<Vec<_>>(), vec![b]);
        assert_eq!(r.unbounded().map(|o| o.token).collect::<Vec<_>>(), vec![a]);
        assert_eq!(r.to_string(), "2 outstanding of 8 (1 without a deadline)");
        assert_eq!(t.drain(), vec![(a, 'a'), (b, 'b')]);
        assert!(t.is_empty());
        assert!(t.expire(now).is_empty());
    }
}
