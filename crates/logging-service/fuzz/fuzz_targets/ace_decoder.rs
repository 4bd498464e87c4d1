//! Arbitrary bytes, in fuzzer-chosen chunks, through the ACE frame decoder and into a record
//! batch, as logd's connections do: no panic, the buffer bounded by one frame plus a chunk,
//! every accepted record re-encodes to a frame that decodes the same, and every record is
//! stored as exactly one line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use logging_service::ace::{AceDecoder, ByteOrder, HEADER_LEN, SecondsLayout, encode};
use logging_service::record::RecordBatch;

fuzz_target!(|data: &[u8]| {
    let Some((&max_byte, rest)) = data.split_first() else { return };
    let max = usize::from(max_byte) * 8;
    let mut decoder = AceDecoder::new(max);
    let mut batch = RecordBatch::new();
    let mut input = rest;
    while let Some((&len, tail)) = input.split_first() {
        let (chunk, next) = tail.split_at(usize::from(len).min(tail.len()));
        input = next;
        decoder.extend(chunk);
        loop {
            match decoder.next_view() {
                Ok(Some(view)) => {
                    batch.push_ace(&view, "127.0.0.1");
                    let r = view.to_record();
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
    let mut lines = String::new();
    for r in batch.iter() {
        r.write_line(&mut lines);
    }
    assert_eq!(lines.matches('\n').count(), batch.len(), "one line per record");
});
