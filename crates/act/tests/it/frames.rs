//! The frame decoder is a parser of untrusted input: malformed, truncated and oversized
//! input, split anywhere, never panics and never buffers more than its bound.

use act::ActError;
use act::frame::{FrameDecoder, HEADER_LEN, encode};
use proptest::prelude::*;

fn decode_all(decoder: &mut FrameDecoder) -> Result<Vec<(u64, Vec<u8>)>, ActError> {
    let mut out = Vec::new();
    while let Some(f) = decoder.decode()? {
        out.push((f.act, f.payload));
    }
    Ok(out)
}

proptest! {
    #[test]
    fn frames_survive_any_split(
        frames in proptest::collection::vec((any::<u64>(), proptest::collection::vec(any::<u8>(), 0..300)), 0..20),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..10),
    ) {
        let mut wire = Vec::new();
        for (act, payload) in &frames {
            encode(*act, payload, &mut wire).unwrap();
        }
        let mut cut_points: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
        cut_points.push(0);
        cut_points.push(wire.len());
        cut_points.sort();
        let mut decoder = FrameDecoder::default();
        let mut got = Vec::new();
        for w in cut_points.windows(2) {
            decoder.push(&wire[w[0]..w[1]]);
            got.extend(decode_all(&mut decoder).unwrap());
        }
        prop_assert_eq!(got, frames);
        prop_assert_eq!(decoder.finish(), Ok(()));
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_stay_bounded(
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..20),
        max in 0usize..512,
    ) {
        let mut decoder = FrameDecoder::with_max_payload(max);
        let mut failed = false;
        for chunk in &chunks {
            decoder.push(chunk);
            match decode_all(&mut decoder) {
                Ok(frames) => {
                    prop_assert!(!failed, "a failed decoder stays failed");
                    for (_, payload) in frames {
                        prop_assert!(payload.len() <= max);
                    }
                }
                Err(e) => {
                    prop_assert!(matches!(e, ActError::Oversized { .. }), "{:?}", e);
                    failed = true;
                }
            }
            if !failed {
                // Undecoded bytes never exceed one maximal frame plus the last chunk.
                prop_assert!(decoder.buffered() < HEADER_LEN + max + chunk.len() + 1);
            }
        }
        let _ = decoder.finish();
    }
}

#[test]
fn truncated_input_is_reported_at_the_end_of_the_stream() {
    let mut wire = Vec::new();
    encode(7, b"complete", &mut wire).unwrap();
    encode(8, b"cut short", &mut wire).unwrap();
    for cut in HEADER_LEN + 8..wire.len() {
        let mut d = FrameDecoder::default();
        d.push(&wire[..cut]);
        let frames = decode_all(&mut d).unwrap();
        assert_eq!(frames, vec![(7, b"complete".to_vec())]);
        let buffered = cut - (HEADER_LEN + 8);
        if buffered == 0 {
            assert_eq!(d.finish(), Ok(()));
        } else {
            assert_eq!(d.finish(), Err(ActError::Truncated { buffered }));
        }
    }
}

#[test]
fn an_oversized_length_is_refused_from_the_header_alone() {
    let mut d = FrameDecoder::with_max_payload(1024);
    // A header claiming 4 GiB; no payload follows, nothing is allocated for it.
    d.push(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 1]);
    assert_eq!(
        d.decode(),
        Err(ActError::Oversized {
            len: u64::from(u32::MAX),
            max: 1024
        })
    );
    assert_eq!(d.buffered(), HEADER_LEN);
}

#[test]
fn an_empty_payload_and_a_maximal_one_are_fine() {
    let mut wire = Vec::new();
    encode(1, b"", &mut wire).unwrap();
    encode(2, &[9u8; 16], &mut wire).unwrap();
    let mut d = FrameDecoder::with_max_payload(16);
    d.push(&wire);
    assert_eq!(
        decode_all(&mut d).unwrap(),
        vec![(1, vec![]), (2, vec![9u8; 16])]
    );
}
