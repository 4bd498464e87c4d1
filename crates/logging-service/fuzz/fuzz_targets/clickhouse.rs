//! Arbitrary record fields through the ClickHouse sink's row encoder, and arbitrary text as
//! ClickHouse's answer through `logc query`'s table: no panic, a record is exactly one TSV row
//! of the 13 columns whatever its fields hold, and the table has no control character but
//! its line ends.
#![no_main]

use libfuzzer_sys::fuzz_target;
use logging_service::clickhouse::{encode_row, render_table};
use logging_service::record::LogRecord;

fuzz_target!(|data: &[u8]| {
    let Some((&pri, rest)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(rest);
    let mut f = text.split('\u{1f}');
    let mut next = || f.next().unwrap_or("");
    let r = LogRecord {
        time: next(),
        host: next(),
        app: next(),
        pid: next(),
        facility: pri >> 3,
        severity: pri & 7,
        sent: next(),
        msgid: next(),
        structured_data: next(),
        message: next(),
    };
    let mut row = Vec::new();
    encode_row(&r, "edge-fuzz", u64::from(pri), &mut row);
    assert_eq!(row.iter().filter(|&&b| b == b'\n').count(), 1, "{row:?}");
    assert_eq!(row.last(), Some(&b'\n'));
    assert_eq!(row.iter().filter(|&&b| b == b'\t').count(), 12, "{row:?}");
    let table = render_table(&text);
    assert!(!table.chars().any(|c| c.is_control() && c != '\n'), "{table:?}");
});
