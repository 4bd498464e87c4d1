//! The stored record and its one-line format, and the batch that carries records from a
//! connection's decoder to the sinks.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::ace::{AceView, severity_of};
use crate::syslog::{Dialect, SyslogMessage};

/// One log record, whatever format it arrived in: a view into a [`RecordBatch`] (or into
/// any text its fields borrow from).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogRecord<'a> {
    /// The sender's time when the format carries a full one (ACE; RFC 5424), else the time
    /// of receipt; RFC 3339 text.
    pub time: &'a str,
    /// The client host: the host name in the message when it has one, else the peer address,
    /// as claimed (at most 255 characters when it comes from a [`RecordBatch`]).
    pub host: &'a str,
    /// The application (syslog APP-NAME or TAG), or `ace` for ACE records.
    pub app: &'a str,
    /// Process id as text, or `-`.
    pub pid: &'a str,
    /// Syslog facility (ACE records: 1, user).
    pub facility: u8,
    /// Syslog severity.
    pub severity: u8,
    /// The message.
    pub message: &'a str,
}

/// Appends `YYYY-MM-DDTHH:MM:SS.` for `seconds` since the epoch (UTC).
fn push_date_time(out: &mut String, seconds: i64) {
    // Days to civil date (Howard Hinnant's algorithm), valid over the whole i64 day range we need.
    let days = seconds.div_euclid(86_400);
    let secs = seconds.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
}

/// Appends `micros` as at least six digits and the closing `Z`.
fn push_micros_z(out: &mut String, micros: u32) {
    if micros >= 1_000_000 {
        let _ = write!(out, "{micros}Z");
        return;
    }
    let mut digits = [b'0'; 7];
    let mut n = micros;
    for d in digits[..6].iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
    digits[6] = b'Z';
    out.push_str(std::str::from_utf8(&digits).expect("ASCII digits"));
}

/// Formats seconds and microseconds since the epoch as RFC 3339 UTC.
pub fn rfc3339(seconds: i64, micros: u32) -> String {
    let mut s = String::with_capacity(27);
    push_date_time(&mut s, seconds);
    push_micros_z(&mut s, micros);
    s
}

fn now() -> (i64, u32) {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs() as i64, d.subsec_micros())
}

/// Now, as RFC 3339 UTC.
pub fn now_rfc3339() -> String {
    let (secs, micros) = now();
    rfc3339(secs, micros)
}

/// The formatted date and time of the last second seen: consecutive records nearly always
/// share their second, so only the microseconds are formatted per record.
#[derive(Debug, Clone, Default)]
struct StampCache {
    seconds: Option<i64>,
    prefix: String,
}

impl StampCache {
    fn push(&mut self, out: &mut String, seconds: i64, micros: u32) {
        if self.seconds != Some(seconds) {
            self.prefix.clear();
            push_date_time(&mut self.prefix, seconds);
            self.seconds = Some(seconds);
        }
        out.push_str(&self.prefix);
        push_micros_z(out, micros);
    }
}

fn host_byte_ok(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_')
}

/// The longest host name kept (RFC 5424's HOSTNAME is at most 255 characters).
const MAX_HOST: usize = 255;

/// Appends the claimed `host` as it is, cut to [`MAX_HOST`] characters: the store derives a
/// safe file name from it ([`crate::store::file_stem`]) and the line keeps it whole.
fn push_host(out: &mut String, host: &str) {
    if host.is_empty() {
        out.push('-');
    } else if host.len() <= MAX_HOST {
        out.push_str(host);
    } else {
        out.extend(host.chars().take(MAX_HOST));
    }
}

/// A host name made of `[A-Za-z0-9._-]` only (the rest replaced by `_`), at most 253
/// characters, never `.` or `..`. (The store names files with [`crate::store::file_stem`],
/// which also keeps hosts that sanitise alike apart.)
pub fn sanitize_host(host: &str) -> String {
    let mut s: String = host
        .chars()
        .take(253)
        .map(|c| {
            if c.is_ascii() && host_byte_ok(c as u8) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.bytes().all(|c| c == b'.') {
        s.insert(0, '_');
    }
    s
}

/// Appends a header field (TIME, HOST, APP, PID) as one token: whitespace and control characters
/// (spaces, tabs, newlines, carriage returns, NUL, escape, ...) become `_`, so that a hostile
/// sender's field can neither split a record's line nor shift its fields.
fn push_token(out: &mut String, s: &str) {
    if s.bytes().all(|b| b.is_ascii_graphic()) {
        out.push_str(s);
    } else {
        out.extend(s.chars().map(|c| {
            if c.is_whitespace() || c.is_control() {
                '_'
            } else {
                c
            }
        }));
    }
}

/// Appends `s` escaped so that it is one line that shows no terminal control: a backslash
/// becomes `\\`, newline and carriage return `\n` and `\r`, every other C0 control byte but
/// tab, and DEL, `\xHH`, and the C1 controls (U+0080 to U+009F) `\u{HH}`. Since the backslash
/// itself is escaped, the mapping can be reversed.
fn push_escaped(out: &mut String, s: &str) {
    let bytes = s.as_bytes();
    let mut from = 0;
    let mut i = next_special(bytes, 0);
    while i < bytes.len() {
        let b = bytes[i];
        let width = match b {
            b'\\' | b'\n' | b'\r' | 0..=0x08 | 0x0b..=0x1f | 0x7f => 1,
            0xc2 if bytes.get(i + 1).is_some_and(|c| (0x80..=0x9f).contains(c)) => 2,
            _ => {
                i = next_special(bytes, i + 1);
                continue;
            }
        };
        // Escaped characters are ASCII or a two-byte sequence: `i` and `i + width` are
        // character boundaries.
        out.push_str(&s[from..i]);
        match b {
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            0xc2 => {
                let _ = write!(out, "\\u{{{:x}}}", bytes[i + 1]);
            }
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
        i += width;
        from = i;
        i = next_special(bytes, i);
    }
    out.push_str(&s[from..]);
}

/// The index of the first byte at or after `from` that [`push_escaped`] may have to look at
/// (below 0x20, `\`, DEL, or 0xC2, the lead byte of the C1 controls), or `bytes.len()`.
/// Eight bytes at a time (SWAR): messages rarely hold one, and this scan runs over every
/// stored message.
fn next_special(bytes: &[u8], mut from: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // Flags the bytes of `x` below `n` (n <= 0x80). The lowest flag is exact; a borrow may
    // flag bytes above it, which the lowest-bit search below never picks first.
    let below = |x: u64, n: u64| x.wrapping_sub(ONES * n) & !x & HIGHS;
    let equal = |x: u64, b: u8| below(x ^ (ONES * u64::from(b)), 1);
    while let Some(chunk) = bytes.get(from..from + 8) {
        let x = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        let hit = below(x, 0x20) | equal(x, b'\\') | equal(x, 0x7f) | equal(x, 0xc2);
        if hit != 0 {
            return from + (hit.trailing_zeros() / 8) as usize;
        }
        from += 8;
    }
    bytes[from.min(bytes.len())..]
        .iter()
        .position(|&b| b < 0x20 || b == b'\\' || b == 0x7f || b == 0xc2)
        .map_or(bytes.len(), |at| from + at)
}

/// Appends a decimal number.
fn push_int(out: &mut String, n: i64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut m = n.unsigned_abs();
    loop {
        at -= 1;
        digits[at] = b'0' + (m % 10) as u8;
        m /= 10;
        if m == 0 {
            break;
        }
    }
    if n < 0 {
        out.push('-');
    }
    out.push_str(std::str::from_utf8(&digits[at..]).expect("ASCII digits"));
}

/// Appends a decimal `u8`.
fn push_u8(out: &mut String, n: u8) {
    if n >= 100 {
        out.push(char::from(b'0' + n / 100));
    }
    if n >= 10 {
        out.push(char::from(b'0' + n / 10 % 10));
    }
    out.push(char::from(b'0' + n % 10));
}

impl LogRecord<'_> {
    /// The stored line: `TIME HOST APP[PID] <FACILITY.SEVERITY> MESSAGE\n`, with the message's
    /// backslashes, newlines and carriage returns escaped (`\\`, `\n`, `\r`) and whitespace and
    /// control characters in TIME, HOST, APP and PID made `_`, so that one record is always one
    /// line of five space-separated fields, whatever a sender put in them.
    pub fn write_line(&self, out: &mut String) {
        out.reserve(
            self.time.len()
                + self.host.len()
                + self.app.len()
                + self.pid.len()
                + self.message.len()
                + 16,
        );
        push_token(out, self.time);
        out.push(' ');
        push_token(out, self.host);
        out.push(' ');
        push_token(out, self.app);
        out.push('[');
        push_token(out, self.pid);
        out.push_str("] <");
        push_u8(out, self.facility);
        out.push('.');
        push_u8(out, self.severity);
        out.push_str("> ");
        push_escaped(out, self.message);
        out.push('\n');
    }
}

/// Where a record's fields end in a [`RecordBatch`]'s text.
#[derive(Debug, Clone, Copy)]
struct Slot {
    start: usize,
    /// Ends of time, host, app, pid, message.
    ends: [usize; 5],
    facility: u8,
    severity: u8,
}

/// A batch of records decoded from one read (or one upcall): every field of every record in
/// one string, so that decoding a batch allocates nothing once the batch has grown to its
/// working size. Cleared and reused by its connection.
///
/// ```
/// use logging_service::record::{LogRecord, RecordBatch};
///
/// let mut batch = RecordBatch::new();
/// batch.push(&LogRecord { time: "t", host: "h", app: "a", pid: "1", facility: 1, severity: 6, message: "hi" });
/// let mut line = String::new();
/// batch.iter().for_each(|r| r.write_line(&mut line));
/// assert_eq!(line, "t h a[1] <1.6> hi\n");
/// ```
#[derive(Debug, Clone, Default)]
pub struct RecordBatch {
    text: String,
    slots: Vec<Slot>,
    stamps: StampCache,
    /// The last ACE pid and its digits: a connection's records nearly always share it.
    pid: Option<(i32, String)>,
}

impl RecordBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records held.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether it holds no record.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Forgets every record, keeping the memory for the next batch.
    pub fn clear(&mut self) {
        self.text.clear();
        self.slots.clear();
    }

    /// The `i`th record.
    pub fn get(&self, i: usize) -> Option<LogRecord<'_>> {
        self.slots.get(i).map(|s| self.view(s))
    }

    /// The records, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = LogRecord<'_>> + '_ {
        self.slots.iter().map(|s| self.view(s))
    }

    fn view(&self, s: &Slot) -> LogRecord<'_> {
        let [t, h, a, p, m] = s.ends;
        LogRecord {
            time: &self.text[s.start..t],
            host: &self.text[t..h],
            app: &self.text[h..a],
            pid: &self.text[a..p],
            facility: s.facility,
            severity: s.severity,
            message: &self.text[p..m],
        }
    }

    fn end(&self) -> usize {
        self.text.len()
    }

    /// Appends a copy of `r`, fields as they are.
    pub fn push(&mut self, r: &LogRecord<'_>) {
        let start = self.end();
        let mut ends = [0; 5];
        for (end, field) in ends
            .iter_mut()
            .zip([r.time, r.host, r.app, r.pid, r.message])
        {
            self.text.push_str(field);
            *end = self.text.len();
        }
        self.slots.push(Slot {
            start,
            ends,
            facility: r.facility,
            severity: r.severity,
        });
    }

    /// Appends a record from an ACE client at `peer`: the sender's time, the peer as host,
    /// app `ace`, facility 1 (user), the severity of ACE's priority.
    pub fn push_ace(&mut self, r: &AceView<'_>, peer: &str) {
        let start = self.end();
        self.stamps
            .push(&mut self.text, r.seconds, r.micros.clamp(0, 999_999) as u32);
        let t = self.end();
        push_host(&mut self.text, peer);
        let h = self.end();
        self.text.push_str("ace");
        let a = self.end();
        match &self.pid {
            Some((pid, digits)) if *pid == r.pid => self.text.push_str(digits),
            _ => {
                let mut digits = String::new();
                push_int(&mut digits, i64::from(r.pid));
                self.text.push_str(&digits);
                self.pid = Some((r.pid, digits));
            }
        }
        let p = self.end();
        match std::str::from_utf8(r.message) {
            Ok(m) => self.text.push_str(m),
            Err(_) => self.text.push_str(&String::from_utf8_lossy(r.message)),
        }
        self.slots.push(Slot {
            start,
            ends: [t, h, a, p, self.end()],
            facility: 1,
            severity: severity_of(r.priority),
        });
    }

    /// Appends a record from a syslog sender at `peer`: an RFC 5424 timestamp as sent, else
    /// the time of receipt; the message's host name, else the peer; `-` for absent app and pid.
    pub fn push_syslog(&mut self, m: &SyslogMessage<'_>, peer: &str) {
        let start = self.end();
        match (m.dialect, m.timestamp.as_deref()) {
            (Dialect::Rfc5424, Some(t)) => self.text.push_str(t),
            _ => {
                let (secs, micros) = now();
                self.stamps.push(&mut self.text, secs, micros);
            }
        }
        let t = self.end();
        push_host(&mut self.text, m.hostname.as_deref().unwrap_or(peer));
        let h = self.end();
        self.text.push_str(m.app.as_deref().unwrap_or("-"));
        let a = self.end();
        self.text.push_str(m.procid.as_deref().unwrap_or("-"));
        let p = self.end();
        self.text.push_str(&m.message);
        self.slots.push(Slot {
            start,
            ends: [t, h, a, p, self.end()],
            facility: m.facility,
            severity: m.severity,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_instants() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            rfc3339(1_700_000_000, 123_456),
            "2023-11-14T22:13:20.123456Z"
        );
        assert_eq!(rfc3339(951_782_400, 0), "2000-02-29T00:00:00.000000Z");
        assert_eq!(rfc3339(-1, 0), "1969-12-31T23:59:59.000000Z");
    }

    #[test]
    fn hostile_hosts_cannot_escape_the_data_dir() {
        assert_eq!(sanitize_host("../../etc/passwd"), ".._.._etc_passwd");
        assert_eq!(sanitize_host(".."), "_..");
        assert_eq!(sanitize_host(""), "_");
        assert_eq!(sanitize_host("host/with space"), "host_with_space");
        assert_eq!(sanitize_host("127.0.0.1"), "127.0.0.1");
    }

    /// Found by the syslog fuzz target: header fields are split on spaces only, so a hostile
    /// sender could put a newline in one and make a record two lines.
    #[test]
    fn hostile_header_fields_cannot_split_a_line() {
        let messages = [
            // RFC 5424: newline in TIMESTAMP, CR in HOSTNAME, tab and NUL in APP-NAME, escape
            // and DEL in PROCID.
            "<13>1 2023-11-14T22:13:20Z\nforged h\rost ap\tp\0 p\u{1b}[2J\u{7f} - - hello",
            // RFC 3164: newline in the host word, in the tag and in the PID.
            "<13>Nov 14 22:13:20 ho\nst ta\u{85}g[1\n2]: hello",
            // Unicode line and paragraph separators.
            "<13>1 - h\u{2028}x a\u{2029}y - - - hello",
        ];
        for text in messages {
            let m = crate::syslog::parse_str(text).unwrap();
            let mut batch = RecordBatch::new();
            batch.push_syslog(&m, "127.0.0.1");
            let mut line = String::new();
            batch.get(0).unwrap().write_line(&mut line);
            let body = line.strip_suffix('\n').expect("ends the line");
            assert!(
                !body.contains(|c: char| c.is_control() || (c.is_whitespace() && c != ' ')),
                "{line:?}"
            );
            // TIME HOST APP[PID] <FACILITY.SEVERITY> MESSAGE
            let fields: Vec<&str> = body.splitn(5, ' ').collect();
            assert_eq!(fields.len(), 5, "{line:?}");
            assert_eq!(fields[3], "<1.5>", "{line:?}");
            assert_eq!(fields[4], "hello", "{line:?}");
        }
    }

    #[test]
    fn ace_records_through_a_batch() {
        let mut batch = RecordBatch::new();
        for (pid, micros, priority) in [(-7, 5, 0x080), (-7, 6, 0x008), (123, 999_999, 0x400)] {
            let view = AceView {
                priority,
                pid,
                seconds: 1_700_000_000,
                micros,
                message: b"caf\xc3\xa9 \xff",
            };
            batch.push_ace(&view, "10.0.0.1");
        }
        let mut lines = String::new();
        batch.iter().for_each(|r| r.write_line(&mut lines));
        assert_eq!(
            lines,
            "2023-11-14T22:13:20.000005Z 10.0.0.1 ace[-7] <1.3> caf\u{e9} \u{fffd}\n\
             2023-11-14T22:13:20.000006Z 10.0.0.1 ace[-7] <1.6> caf\u{e9} \u{fffd}\n\
             2023-11-14T22:13:20.999999Z 10.0.0.1 ace[123] <1.0> caf\u{e9} \u{fffd}\n"
        );
        let big = LogRecord {
            time: "t",
            host: "h",
            app: "a",
            pid: "p",
            facility: 255,
            severity: 10,
            message: "",
        };
        let mut s = String::new();
        big.write_line(&mut s);
        assert_eq!(s, "t h a[p] <255.10> \n");
    }

    /// Reverses [`push_escaped`], to show that the escaping loses nothing.
    fn unescape(s: &str) -> String {
        let mut out = String::new();
        let mut it = s.chars();
        while let Some(c) = it.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match it.next().unwrap() {
                '\\' => out.push('\\'),
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                'x' => {
                    let hex: String = it.by_ref().take(2).collect();
                    out.push(char::from(u8::from_str_radix(&hex, 16).unwrap()));
                }
                'u' => {
                    assert_eq!(it.next(), Some('{'));
                    let hex: String = it.by_ref().take_while(|&c| c != '}').collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).unwrap()).unwrap());
                }
                other => panic!("unknown escape \\{other} in {s:?}"),
            }
        }
        out
    }

    #[test]
    fn control_bytes_are_escaped() {
        let mut s = String::new();
        push_escaped(&mut s, "a\u{1b}[2J\0b\u{7}\u{7f}\tc\u{9b}1m\\x41é");
        assert_eq!(s, "a\\x1b[2J\\x00b\\x07\\x7f\tc\\u{9b}1m\\\\x41é");
        assert!(!s.contains(|c: char| c.is_control() && c != '\t'));
        assert_eq!(unescape(&s), "a\u{1b}[2J\0b\u{7}\u{7f}\tc\u{9b}1m\\x41é");
    }

    #[test]
    fn the_special_byte_scan_finds_the_first_one() {
        let naive = |b: &[u8], from: usize| {
            (from..b.len())
                .find(|&i| b[i] < 0x20 || b[i] == b'\\' || b[i] == 0x7f || b[i] == 0xc2)
                .unwrap_or(b.len())
        };
        let mut text: Vec<u8> = b"plain ascii text, long enough for several words".to_vec();
        assert_eq!(next_special(&text, 0), text.len());
        for special in [0u8, 0x09, 0x1f, b'\\', 0x7f, 0xc2] {
            for at in 0..text.len() {
                let mut t = text.clone();
                t[at] = special;
                // A byte just above each bound around it: not special.
                if at + 1 < t.len() {
                    t[at + 1] = [0x20, 0x80, 0xc3, 0x5d][at % 4];
                }
                for from in [0, at.saturating_sub(3), at, at + 1] {
                    assert_eq!(
                        next_special(&t, from),
                        naive(&t, from),
                        "{special:#x} at {at} from {from}"
                    );
                }
            }
        }
        text.clear();
        assert_eq!(next_special(&text, 0), 0);
    }

    proptest::proptest! {
        /// Whatever the message, its stored form has no control character but tab and maps
        /// back to it.
        #[test]
        fn escaping_is_reversible(m in proptest::prelude::any::<String>()) {
            let mut s = String::new();
            push_escaped(&mut s, &m);
            proptest::prop_assert!(!s.contains(|c: char| c.is_control() && c != '\t'));
            proptest::prop_assert_eq!(unescape(&s), m);
        }
    }

    #[test]
    fn one_record_one_line() {
        let r = LogRecord {
            time: "t",
            host: "h",
            app: "my app",
            pid: "1",
            facility: 1,
            severity: 6,
            message: "two\nlines \\ and\r",
        };
        let mut s = String::new();
        r.write_line(&mut s);
        assert_eq!(s, "t h my_app[1] <1.6> two\\nlines \\\\ and\\r\n");
    }
}
