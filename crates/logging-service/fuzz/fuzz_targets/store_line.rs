//! Arbitrary bytes as a store line (text or JSON) through `line::parse_line`, as `logc read` and
//! the tests read the store: no panic, and whatever parses writes back, in both formats, to a
//! line that parses to the same record.
#![no_main]

use libfuzzer_sys::fuzz_target;
use logging_service::line::parse_line;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(record) = parse_line(text) else { return };
    let mut line = String::new();
    record.as_record().write_line(&mut line);
    assert_eq!(line.matches('\n').count(), 1, "one line: {line:?}");
    assert_eq!(parse_line(&line).as_ref(), Ok(&record), "{line:?}");
    let mut json = String::new();
    record.as_record().write_json(&mut json);
    assert_eq!(parse_line(&json).as_ref(), Ok(&record), "{json:?}");
});
