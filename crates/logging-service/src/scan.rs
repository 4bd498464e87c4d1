//! Byte searches a word (8 bytes) at a time, for the per-record scans of the hot path.
//!
//! The standard library's `memchr` is not public and `iter().position` goes byte by byte;
//! these test eight bytes per step with the classic "has a zero byte" bit trick, in safe code.

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// High bit set in the lowest byte of `w` that is `b` (higher bytes may be false positives,
/// never lower ones, so the lowest set bit is exact).
fn eq_mask(w: u64, b: u8) -> u64 {
    let x = w ^ (LO * u64::from(b));
    x.wrapping_sub(LO) & !x & HI
}

/// The first index `i` with `mask` non-zero for the word at `i`, finished byte by byte.
fn find(haystack: &[u8], mask: impl Fn(u64) -> u64, byte: impl Fn(u8) -> bool) -> Option<usize> {
    let mut chunks = haystack.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let w = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        let m = mask(w);
        if m != 0 {
            return Some(at + (m.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| byte(b))
        .map(|i| at + i)
}

/// The index of the first NUL byte.
pub(crate) fn find_nul(haystack: &[u8]) -> Option<usize> {
    find(haystack, |w| eq_mask(w, 0), |b| b == 0)
}

/// The index of the first byte a stored line escapes: `\`, LF or CR.
pub(crate) fn find_escape(haystack: &[u8]) -> Option<usize> {
    find(
        haystack,
        |w| eq_mask(w, b'\\') | eq_mask(w, b'\n') | eq_mask(w, b'\r'),
        |b| matches!(b, b'\\' | b'\n' | b'\r'),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn finds_the_first_match_in_every_position() {
        for len in 0..40 {
            for at in 0..len {
                let mut v = vec![b'a'; len];
                v[at] = 0;
                assert_eq!(find_nul(&v), Some(at));
                // A second match further on must not be reported instead.
                if at + 1 < len {
                    v[len - 1] = b'\r';
                }
                v[at] = b'\n';
                assert_eq!(find_escape(&v), Some(at));
            }
            assert_eq!(find_nul(&vec![1; len]), None);
            assert_eq!(find_escape(&vec![b'x'; len]), None);
        }
    }

    proptest! {
        #[test]
        fn agrees_with_position(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            prop_assert_eq!(find_nul(&bytes), bytes.iter().position(|&b| b == 0));
            prop_assert_eq!(
                find_escape(&bytes),
                bytes.iter().position(|&b| matches!(b, b'\\' | b'\n' | b'\r'))
            );
        }
    }
}
