//! Arbitrary bytes, in fuzzer-chosen chunks, through RFC 6587 framing and the syslog parser:
//! no panic, no message over the limit, the buffer bounded.
#![no_main]

use libfuzzer_sys::fuzz_target;
use logging_service::syslog::{SyslogFramer, parse};

fuzz_target!(|data: &[u8]| {
    let _ = parse(data);
    let Some((&max_byte, rest)) = data.split_first() else { return };
    let max = usize::from(max_byte) + 1;
    let mut framer = SyslogFramer::new(max);
    let mut input = rest;
    while let Some((&len, tail)) = input.split_first() {
        let (chunk, next) = tail.split_at(usize::from(len).min(tail.len()));
        input = next;
        framer.extend(chunk);
        for _ in 0..=chunk.len() {
            match framer.next_message() {
                Ok(Some(m)) => {
                    assert!(m.len() <= max);
                    let _ = parse(m);
                }
                Ok(None) => break,
                Err(_) => {}
            }
        }
        assert!(framer.buffered() <= max + 12 + chunk.len());
    }
    if let Some(m) = framer.finish() {
        let _ = parse(&m);
    }
});
