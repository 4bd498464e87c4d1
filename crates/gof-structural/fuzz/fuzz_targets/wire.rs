//! Arbitrary bytes through the remote proxy's frame reader and request/reply decoders:
//! no panic, no frame over the limit, and what decodes re-encodes to the same payload.
#![no_main]

use gof_structural::proxy::wire::{decode_reply, decode_request, encode_reply, encode_request, read_frame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((id, op)) = decode_request(data) {
        assert_eq!(decode_request(&encode_request(id, &op)).ok(), Some((id, op)));
    }
    if let Ok((id, reply)) = decode_reply(data) {
        let again = encode_reply(id, &reply);
        assert!(decode_reply(&again).is_ok());
    }
    let mut input = data;
    while let Ok(frame) = read_frame(&mut input, 256) {
        assert!(frame.len() <= 256);
        let _ = decode_request(&frame);
        let _ = decode_reply(&frame);
    }
});
