//! Arbitrary record fields through the ClickHouse sink's row encoder, arbitrary bytes through
//! the reader of spooled rows, and arbitrary text as ClickHouse's answer through `logc
//! query`'s table: no panic; a record is one RowBinary row that reads back as exactly its
//! fields, whatever they hold; any bytes are read as a row or refused with a reason; and
//! the table has no control character but its line ends.
#![no_main]

use libfuzzer_sys::fuzz_target;
use logging_service::clickhouse::{RowFormat, encode_row, read_row, render_table, row_columns};
use logging_service::record::LogRecord;

fuzz_target!(|data: &[u8]| {
    // The bytes as a spooled row, as they are and behind the RowBinary tag.
    for row in [data.to_vec(), [&[1u8][..], data].concat()] {
        match read_row(&row) {
            Ok((RowFormat::RowBinary, body)) => {
                assert_eq!(body, &row[1..]);
                assert!(row_columns(&row).is_ok());
            }
            Ok((_, body)) => assert_eq!(body, &row[..]),
            Err(_) => assert!(row.first() != Some(&1) || row_columns(&row).is_err()),
        }
    }
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
    assert_eq!(read_row(&row), Ok((RowFormat::RowBinary, &row[1..])));
    let c = row_columns(&row).expect("an encoded row reads back");
    let token = |f: &str| if f.is_empty() { "-".to_owned() } else { f.to_owned() };
    assert_eq!(c[2], token(r.host).as_bytes());
    assert_eq!(c[9], token(r.structured_data).as_bytes());
    assert_eq!(c[10], r.message.as_bytes());
    assert_eq!(c[11], b"edge-fuzz");
    assert_eq!(u64::from_le_bytes(c[12].try_into().unwrap()), u64::from(pri));
    let table = render_table(&text);
    assert!(!table.chars().any(|c| c.is_control() && c != '\n'), "{table:?}");
});
