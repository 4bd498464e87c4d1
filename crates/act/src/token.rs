//! The 64-bit index ACT: slot, generation and a keyed check tag packed into one word.

use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

/// Bits of the slot index: up to 4,194,304 slots per table.
pub(crate) const INDEX_BITS: u32 = 22;
/// Bits of the generation: a slot serves 262,144 operations before it is retired.
pub(crate) const GENERATION_BITS: u32 = 18;
/// Bits of the check tag.
pub(crate) const TAG_BITS: u32 = 24;

pub(crate) const INDEX_MASK: u64 = (1 << INDEX_BITS) - 1;
pub(crate) const GENERATION_MASK: u64 = (1 << GENERATION_BITS) - 1;
pub(crate) const TAG_MASK: u64 = (1 << TAG_BITS) - 1;

/// An asynchronous completion token: what the initiator hands the service with each
/// operation, and what the service hands back, untouched, with the result.
///
/// It is a plain 64-bit value, so it crosses threads, queues and the network as easily as an
/// integer: [`to_raw`](Self::to_raw) puts it in a frame, [`from_raw`](Self::from_raw) reads it
/// back. Any `u64` can be turned into a token; whether it names an outstanding operation is
/// for the [`TokenTable`](crate::TokenTable) that issued it to decide.
///
/// Layout, from the low bits: 22 bits of slot index, 18 bits of generation, 24 bits of a
/// check tag computed from the slot, the generation and a per-table secret.
///
/// ```
/// use act::{CompletionToken, TokenTable};
///
/// let mut table = TokenTable::with_limit(8);
/// let token = table.issue(()).unwrap();
/// let on_the_wire = token.to_raw();
/// assert_eq!(CompletionToken::from_raw(on_the_wire), token);
/// assert_eq!(token.slot(), 0);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CompletionToken(u64);

impl CompletionToken {
    pub(crate) fn pack(slot: u32, generation: u32, tag: u32) -> Self {
        CompletionToken(
            (slot as u64 & INDEX_MASK)
                | ((generation as u64 & GENERATION_MASK) << INDEX_BITS)
                | ((tag as u64 & TAG_MASK) << (INDEX_BITS + GENERATION_BITS)),
        )
    }

    /// The token as 64 bits, for a frame or a message.
    pub const fn to_raw(self) -> u64 {
        self.0
    }

    /// A token read back from 64 bits. It is validated only when presented to a table.
    pub const fn from_raw(raw: u64) -> Self {
        CompletionToken(raw)
    }

    /// The table slot the token names (deterministic: the first token of a fresh table is
    /// slot 0). Handy in logs and examples; the full value includes a random tag.
    pub const fn slot(self) -> u32 {
        (self.0 & INDEX_MASK) as u32
    }

    /// How many earlier operations the slot served when this token was issued.
    pub const fn generation(self) -> u32 {
        ((self.0 >> INDEX_BITS) & GENERATION_MASK) as u32
    }

    pub(crate) const fn tag(self) -> u32 {
        ((self.0 >> (INDEX_BITS + GENERATION_BITS)) & TAG_MASK) as u32
    }
}

impl fmt::Debug for CompletionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CompletionToken({}v{}#{:06x})",
            self.slot(),
            self.generation(),
            self.tag()
        )
    }
}

impl fmt::Display for CompletionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}v{}#{:06x}",
            self.slot(),
            self.generation(),
            self.tag()
        )
    }
}

/// The per-table key that makes tags differ between tables.
///
/// It comes from std's randomly keyed SipHash state (seeded from the OS once per thread) fed
/// with a process-wide counter, so two tables never share a key by construction of the
/// counter, and keys differ between runs.
#[derive(Clone, Copy)]
pub(crate) struct Secret(u64);

impl Secret {
    pub(crate) fn fresh() -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let mut hasher = std::hash::RandomState::new().build_hasher();
        hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        // Never zero, so that a table's tags are never the identity of an unkeyed mix.
        Secret(hasher.finish() | 1)
    }

    #[cfg(test)]
    pub(crate) fn fixed(key: u64) -> Self {
        Secret(key | 1)
    }

    /// The check tag of (slot, generation): a keyed 64-bit mix, truncated to 24 bits.
    ///
    /// This is a fast integer hash (the SplitMix64 finaliser applied twice around the key),
    /// not a cryptographic MAC: it makes accidental acceptance of a foreign, corrupted or
    /// made-up token a 1 in 2^24 event, but an adversary who collects many tokens could learn
    /// enough to forge one. See the crate docs.
    #[inline]
    pub(crate) fn tag(self, slot: u32, generation: u32) -> u32 {
        let x = (slot as u64) | ((generation as u64) << INDEX_BITS);
        let z = mix(mix(x ^ self.0).wrapping_add(self.0.rotate_left(29)));
        (z >> (64 - TAG_BITS)) as u32
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

#[inline]
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip() {
        let t = CompletionToken::pack(INDEX_MASK as u32, GENERATION_MASK as u32, 0xabcdef);
        assert_eq!(t.slot(), INDEX_MASK as u32);
        assert_eq!(t.generation(), GENERATION_MASK as u32);
        assert_eq!(t.tag(), 0xabcdef);
        assert_eq!(CompletionToken::from_raw(t.to_raw()), t);
        assert_eq!(format!("{t}"), "4194303v262143#abcdef");
    }

    #[test]
    fn tags_depend_on_the_key() {
        let a = Secret::fixed(1);
        let b = Secret::fixed(2);
        let same = (0..1000u32).filter(|&i| a.tag(i, 0) == b.tag(i, 0)).count();
        // 1000 draws from 2^24 values: a collision or two at most, never a pattern.
        assert!(same <= 2, "{same} equal tags");
        assert_ne!(Secret::fresh().0, Secret::fresh().0);
    }
}
