//! Arbitrary bytes, in fuzzer-chosen chunks, through the ACE frame decoder: no panic, the
//! buffer bounded by one frame plus a chunk, and every accepted record re-encodes to a frame
//! that decodes the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use logging_service::ace::{AceDecoder, ByteOrder, HEADER_LEN, SecondsLayout, encode};

fuzz_target!(|data: &[u8]| {
    let Some((&max_byte, rest)) = data.split_first() else { return };
    let max = usize::from(max_byte) * 8;
    let mut decoder = AceDecoder::new(max);
    let mut input = rest;
    while let Some((&len, tail)) = input.split_first() {
        let (chunk, next) = tail.split_at(usize::from(len).min(tail.len()));
        input = next;
        decoder.extend(chunk);
        loop {
            match decoder.next_record() {
                Ok(Some(r)) => {
                    let mut again = AceDecoder::new(1 << 20);
                    again.extend(&encode(&r, ByteOrder::Big, SecondsLayout::Wide));
                    assert_eq!(again.next_record().unwrap(), Some(r));
                }
                Ok(None) => break,
                // A bad header leaves the stream unusable: the server closes the connection.
                Err(_) => return,
            }
        }
        assert!(decoder.buffered() <= HEADER_LEN + max + chunk.len());
    }
});
