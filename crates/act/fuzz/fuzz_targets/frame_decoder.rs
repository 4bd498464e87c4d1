//! Feeds arbitrary bytes, split at fuzzer-chosen points, to the frame decoder, and checks
//! what the decoder promises: no panic, payloads within the limit, a failed decoder stays
//! failed, and buffered bytes bounded by one frame plus the last chunk.
#![no_main]

use act::frame::{FrameDecoder, HEADER_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&max_byte, rest)) = data.split_first() else {
        return;
    };
    let max = usize::from(max_byte) * 16;
    let mut decoder = FrameDecoder::with_max_payload(max);
    let mut failed = false;
    // The first byte of each chunk is the chunk's length.
    let mut input = rest;
    while let Some((&len, tail)) = input.split_first() {
        let (chunk, next) = tail.split_at(usize::from(len).min(tail.len()));
        input = next;
        decoder.push(chunk);
        loop {
            match decoder.decode() {
                Ok(Some(frame)) => {
                    assert!(!failed, "a failed decoder produced a frame");
                    assert!(frame.payload.len() <= max);
                }
                Ok(None) => break,
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        if !failed {
            assert!(decoder.buffered() <= HEADER_LEN + max + chunk.len());
        }
    }
    let _ = decoder.finish();
});
