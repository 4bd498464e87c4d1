//! Arbitrary bytes, in fuzzer-chosen chunks, through RFC 6587 framing and the syslog parser
//! and into a record batch, as logd's connections do: no panic, no message over the limit,
//! the buffer bounded, and every record stored as exactly one line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use logging_service::record::RecordBatch;
use logging_service::syslog::{SyslogFramer, parse};

fuzz_target!(|data: &[u8]| {
    let mut batch = RecordBatch::new();
    if let Ok(m) = parse(data) {
        // What the decoder takes for STRUCTURED-DATA, the store keeps.
        if let Some(sd) = m.structured_data.as_deref() {
            assert!(logging_service::line::is_structured_data(sd), "{sd:?}");
        }
        batch.push_syslog(&m, "127.0.0.1");
    }
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
                    if let Ok(m) = parse(m) {
                        batch.push_syslog(&m, "127.0.0.1");
                    }
                }
                Ok(None) => break,
                Err(_) => {}
            }
        }
        assert!(framer.buffered() <= max + 12 + chunk.len());
    }
    if let Some(m) = framer.finish() {
        if let Ok(m) = parse(&m) {
            batch.push_syslog(&m, "127.0.0.1");
        }
    }
    let mut lines = String::new();
    for r in batch.iter() {
        r.write_line(&mut lines);
    }
    assert_eq!(lines.matches('\n').count(), batch.len(), "one line per record");
    // Every line reads back with the store's parser, message and all.
    for (line, r) in lines.lines().zip(batch.iter()) {
        let back = logging_service::line::parse_line(line).expect("a stored line parses");
        assert_eq!(back.message, r.message);
    }
});
