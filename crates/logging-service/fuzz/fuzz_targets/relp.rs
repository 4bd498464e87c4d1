//! Arbitrary bytes, in fuzzer-chosen chunks, through the RELP frame decoder and the `rsp` and
//! offer parsers, as logd's RELP listener and forwarder use them: no panic, no frame over the
//! limit, the buffer bounded by one frame, and the first error ends the stream.
#![no_main]

use libfuzzer_sys::fuzz_target;
use logging_service::relp::{RelpDecoder, offers_syslog, parse_rsp, strip_octet_count};

/// TXNR, SP, command, SP, DATALEN, SP and the trailer.
const HEADER: usize = 9 + 1 + 32 + 1 + 9 + 1 + 1;

fuzz_target!(|data: &[u8]| {
    let _ = parse_rsp(data);
    let _ = offers_syslog(data);
    let _ = strip_octet_count(data);
    let Some((&max_byte, rest)) = data.split_first() else { return };
    let max = usize::from(max_byte);
    let mut d = RelpDecoder::new(max);
    let mut input = rest;
    'stream: while let Some((&len, tail)) = input.split_first() {
        let (chunk, next) = tail.split_at(usize::from(len).min(tail.len()));
        input = next;
        d.extend(chunk);
        loop {
            match d.next_frame() {
                Ok(Some(f)) => {
                    assert!(f.data.len() <= max);
                    if f.command == logging_service::relp::Command::Rsp {
                        let _ = parse_rsp(f.data);
                    }
                }
                Ok(None) => break,
                Err(_) => break 'stream,
            }
        }
        assert!(d.buffered() <= HEADER + max, "{} held", d.buffered());
    }
});
