//! The store's line grammar: how a record is written to a store file (text or JSON lines) and
//! [`parse_line`], the one parser every reader uses (tests, `logc read`, the demo).
//!
//! A text line (docs/logging-service.md has the same grammar):
//!
//! ```text
//! LINE     = TIME SP HOST SP APP "[" PID "]" SP FACILITY "." SEVERITY SP SENT SP MSGID SP SD SP MSG LF
//! TIME     = YYYY "-" MM "-" DD "T" hh ":" mm ":" ss "." 6DIGIT "Z"   ; UTC, 27 characters
//! HOST, APP, PID, SENT, MSGID = TOKEN                             ; "-" when absent
//! TOKEN    = 1*(TCHAR / ESCAPE)
//! TCHAR    = any character but whitespace, control characters, "\", "[" and "]"
//! FACILITY = "kern" / "user" / ... / "local7" / 1*3DIGIT         ; a number when it has no name
//! SEVERITY = "emerg" / "alert" / "crit" / "err" / "warning" / "notice" / "info" / "debug" / DIGIT
//! SD       = "-" / 1*SD-ELEMENT      ; RFC 5424 STRUCTURED-DATA as sent, escaped as MSG is
//! MSG      = *(MCHAR / ESCAPE)
//! MCHAR    = any character but control characters other than tab, and "\"
//! ESCAPE   = "\\" / "\n" / "\r" / "\x" 2HEXDIG / "\u{" 1*6HEXDIG "}"
//! ```
//!
//! Every escape maps back to the character it stands for, so a line gives back exactly what
//! was stored. A JSON line is one object with the same fields (`time`, `host`, `app`, `pid`,
//! `facility`, `severity`, `sent`, `msgid`, `sd`, `message`; absent ones `null`), unescaped.

use std::fmt::Write as _;

use crate::record::LogRecord;

/// Facility names, by number (RFC 5424 table 1, as rsyslog and util-linux `logger` name them).
pub const FACILITIES: [&str; 24] = [
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
    "ntp",
    "security",
    "console",
    "solaris-cron",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
];

/// Severity names, by number (RFC 5424 table 2, as `logger` and rsyslog name them).
pub const SEVERITIES: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

/// The longest line [`parse_line`] accepts: a record comes from one frame of at most
/// `--max-frame` (at most [`crate::limits::MAX_FRAME_LIMIT`]) bytes, and escaping makes a byte
/// at most six characters.
pub const MAX_LINE: usize = 6 * crate::limits::MAX_FRAME_LIMIT + 4096;

/// The name of a facility, or its number when it has none.
pub fn facility_name(n: u8) -> std::borrow::Cow<'static, str> {
    FACILITIES
        .get(usize::from(n))
        .map_or_else(|| n.to_string().into(), |s| (*s).into())
}

/// The name of a severity, or its number when it has none.
pub fn severity_name(n: u8) -> std::borrow::Cow<'static, str> {
    SEVERITIES
        .get(usize::from(n))
        .map_or_else(|| n.to_string().into(), |s| (*s).into())
}

/// A facility or severity by name (any case) or number.
fn by_name_or_number(s: &str, names: &[&str]) -> Option<u8> {
    if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
        return Some(i as u8);
    }
    if s.is_empty() || s.len() > 3 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// A facility by name (`local3`, any case) or number (`19`).
pub fn parse_facility(s: &str) -> Option<u8> {
    by_name_or_number(s, &FACILITIES)
}

/// A severity by name (`err`, any case) or number (`3`).
pub fn parse_severity(s: &str) -> Option<u8> {
    by_name_or_number(s, &SEVERITIES)
}

/// One stored record, as [`parse_line`] reads it back.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredRecord {
    /// When: the sender's time in UTC when it gave a full one, else the time of receipt.
    pub time: String,
    /// The client host as it claimed itself, else its address.
    pub host: String,
    /// The application (APP-NAME, TAG, `ace`).
    pub app: Option<String>,
    /// The process id, as sent.
    pub pid: Option<String>,
    /// Syslog facility.
    #[serde(with = "named_facility")]
    pub facility: u8,
    /// Syslog severity.
    #[serde(with = "named_severity")]
    pub severity: u8,
    /// The sender's own timestamp as it sent it (with its UTC offset).
    pub sent: Option<String>,
    /// RFC 5424 MSGID.
    pub msgid: Option<String>,
    /// RFC 5424 STRUCTURED-DATA, as sent (its own escapes intact).
    pub sd: Option<String>,
    /// The message.
    pub message: String,
}

/// Deserialises a facility or severity from its name (or number), as JSON lines hold it.
macro_rules! named {
    ($module:ident, $names:expr, $what:literal) => {
        mod $module {
            pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(
                d: D,
            ) -> Result<u8, D::Error> {
                let s: std::borrow::Cow<'de, str> = serde::Deserialize::deserialize(d)?;
                super::by_name_or_number(&s, &$names)
                    .ok_or_else(|| serde::de::Error::custom(concat!("unknown ", $what)))
            }
        }
    };
}
named!(named_facility, super::FACILITIES, "facility");
named!(named_severity, super::SEVERITIES, "severity");

fn nil_or(f: &Option<String>) -> &str {
    f.as_deref().unwrap_or("-")
}

impl StoredRecord {
    /// The record as a [`LogRecord`], to write it again (as text or JSON).
    pub fn as_record(&self) -> LogRecord<'_> {
        LogRecord {
            time: &self.time,
            host: &self.host,
            app: nil_or(&self.app),
            pid: nil_or(&self.pid),
            facility: self.facility,
            severity: self.severity,
            sent: nil_or(&self.sent),
            msgid: nil_or(&self.msgid),
            structured_data: nil_or(&self.sd),
            message: &self.message,
        }
    }

    /// `facility.severity`, as the text line has it (`user.err`).
    pub fn priority(&self) -> String {
        format!(
            "{}.{}",
            facility_name(self.facility),
            severity_name(self.severity)
        )
    }
}

/// Why a line is not a stored record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LineError {
    /// Longer than [`MAX_LINE`].
    #[error("line of {len} bytes is longer than {max}")]
    TooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A field is missing or does not follow the grammar.
    #[error("{field}: {reason}")]
    Malformed {
        /// The field (`TIME`, `HOST`, ...).
        field: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// A JSON line that is not the store's object.
    #[error("JSON: {0}")]
    Json(String),
}

fn bad(field: &'static str, reason: &'static str) -> LineError {
    LineError::Malformed { field, reason }
}

// ---------------------------------------------------------------------------------------------
// Writing.

/// Appends `c` as an escape.
fn push_escape(out: &mut String, c: char) {
    match c {
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        c if c.is_ascii() => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
}

/// Appends MSG (and SD) text: a backslash becomes `\\`, newline and carriage return `\n` and
/// `\r`, every other C0 control but tab, and DEL, `\xHH`, the C1 controls `\u{HH}`.
pub fn push_escaped(out: &mut String, s: &str) {
    let bytes = s.as_bytes();
    let mut from = 0;
    let mut i = next_special(bytes, 0);
    while let Some(c) = s.get(i..).and_then(|rest| rest.chars().next()) {
        // `next_special` stops at ASCII bytes or at 0xC2, a lead byte: character boundaries.
        if c == '\\' || (c.is_control() && c != '\t') {
            out.push_str(&s[from..i]);
            push_escape(out, c);
            from = i + c.len_utf8();
        }
        i = next_special(bytes, i + c.len_utf8());
    }
    out.push_str(&s[from..]);
}

/// The index of the first byte at or after `from` that may start a character
/// [`push_escaped`] escapes (below 0x20, `\`, DEL, or 0xC2, the lead byte of the C1
/// controls), or `bytes.len()`. Eight bytes at a time (SWAR): messages rarely hold one, and
/// this scan runs over every stored message (a per-character test doubled the share of line
/// writing in logd's CPU).
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
    bytes
        .get(from..)
        .and_then(|rest| {
            rest.iter()
                .position(|&b| b < 0x20 || b == b'\\' || b == 0x7f || b == 0xc2)
        })
        .map_or(bytes.len(), |at| from + at)
}

/// Appends a TOKEN: `-` when empty, else `s` with a backslash, whitespace, control characters,
/// `[` and `]` escaped, so that the token has no space and APP[PID] splits one way only.
fn push_token(out: &mut String, s: &str) {
    if s.is_empty() {
        out.push('-');
        return;
    }
    // Nearly every token is printable ASCII with nothing to escape: one pass over the bytes,
    // eight at a time, instead of Unicode class tests per character (which were a quarter of
    // logd's CPU) or a test per byte (a tenth).
    if plain_token(s.as_bytes()) {
        out.push_str(s);
        return;
    }
    let needs = |c: char| c == '\\' || c == '[' || c == ']' || c.is_whitespace() || c.is_control();
    let mut from = 0;
    for (i, c) in s.char_indices() {
        if needs(c) {
            out.push_str(&s[from..i]);
            push_escape(out, c);
            from = i + c.len_utf8();
        }
    }
    out.push_str(&s[from..]);
}

/// Whether every byte of `bytes` is printable ASCII other than `\`, `[` and `]`: a token
/// [`push_token`] copies as it is. Eight bytes at a time, like [`next_special`]; a borrow can
/// flag a byte only above one that is flagged by itself, so "any flag" is exact.
fn plain_token(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let below = |x: u64, n: u64| x.wrapping_sub(ONES * n) & !x & HIGHS;
    let equal = |x: u64, b: u8| below(x ^ (ONES * u64::from(b)), 1);
    let special = |x: u64| {
        below(x, 0x21)
            | (x & HIGHS)
            | equal(x, 0x7f)
            | equal(x, b'\\')
            | equal(x, b'[')
            | equal(x, b']')
    };
    let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("eight bytes"));
    let mut hits = 0;
    if bytes.len() >= 8 {
        let mut at = 0;
        while at + 8 <= bytes.len() {
            hits |= special(word(at));
            at += 8;
        }
        // The last eight bytes, overlapping the words already tested.
        hits |= special(word(bytes.len() - 8));
    } else {
        // A short token (host, app, pid often are) in one word, padded with a plain byte:
        // built in a register (a copy through memory stalled the load after it).
        let mut last = ONES * u64::from(b'a');
        for (i, &b) in bytes.iter().enumerate() {
            last = (last & !(0xff << (8 * i))) | (u64::from(b) << (8 * i));
        }
        hits |= special(last);
    }
    hits == 0
}

/// A stream of characters that [`sd_extent`] walks.
trait Chars {
    fn next_char(&mut self) -> Option<char>;
    fn peek_char(&mut self) -> Option<char>;
}

impl Chars for std::iter::Peekable<std::str::Chars<'_>> {
    fn next_char(&mut self) -> Option<char> {
        self.next()
    }
    fn peek_char(&mut self) -> Option<char> {
        self.peek().copied()
    }
}

/// Walks RFC 5424 STRUCTURED-DATA (one or more `[ID PARAM="VALUE" ...]` elements, `\` escaping
/// the next character inside a value), stopping after the last element: returns how many
/// characters it took, `None` when the text does not start with a well-formed element.
fn sd_extent(it: &mut impl Chars) -> Option<usize> {
    let mut taken = 0;
    loop {
        if it.next_char()? != '[' {
            return None;
        }
        taken += 1;
        let mut in_quotes = false;
        loop {
            let c = it.next_char()?;
            taken += 1;
            match c {
                '\\' if in_quotes => {
                    it.next_char()?;
                    taken += 1;
                }
                '"' => in_quotes = !in_quotes,
                ']' if !in_quotes => break,
                _ => {}
            }
        }
        if it.peek_char() != Some('[') {
            return Some(taken);
        }
    }
}

/// Whether `sd` is RFC 5424 STRUCTURED-DATA as the syslog decoder accepts it: elements only.
pub fn is_structured_data(sd: &str) -> bool {
    sd_extent(&mut sd.chars().peekable()) == Some(sd.chars().count())
}

/// Whether a field holds nothing (`""` or `-`).
fn absent(s: &str) -> bool {
    s.is_empty() || s == "-"
}

/// Appends `r` as a text line (the grammar above), with its newline.
///
/// STRUCTURED-DATA that is not well-formed (the syslog decoder never yields such) is written `-`.
pub fn write_text(r: &LogRecord<'_>, out: &mut String) {
    out.reserve(
        r.time.len()
            + r.host.len()
            + r.app.len()
            + r.pid.len()
            + r.sent.len()
            + r.msgid.len()
            + r.structured_data.len()
            + r.message.len()
            + 32,
    );
    push_token(out, r.time);
    out.push(' ');
    push_token(out, r.host);
    out.push(' ');
    push_token(out, r.app);
    out.push('[');
    push_token(out, r.pid);
    out.push_str("] ");
    out.push_str(&facility_name(r.facility));
    out.push('.');
    out.push_str(&severity_name(r.severity));
    out.push(' ');
    push_token(out, r.sent);
    out.push(' ');
    push_token(out, r.msgid);
    out.push(' ');
    if absent(r.structured_data) || !is_structured_data(r.structured_data) {
        out.push('-');
    } else {
        push_escaped(out, r.structured_data);
    }
    out.push(' ');
    push_escaped(out, r.message);
    out.push('\n');
}

#[derive(serde::Serialize)]
struct JsonOut<'a> {
    time: &'a str,
    host: &'a str,
    app: Option<&'a str>,
    pid: Option<&'a str>,
    facility: std::borrow::Cow<'static, str>,
    severity: std::borrow::Cow<'static, str>,
    sent: Option<&'a str>,
    msgid: Option<&'a str>,
    sd: Option<&'a str>,
    message: &'a str,
}

/// Appends `r` as a JSON line (`--format json`): the fields of the text line, unescaped.
pub fn write_json(r: &LogRecord<'_>, out: &mut String) {
    fn opt(s: &str) -> Option<&str> {
        (!absent(s)).then_some(s)
    }
    let sd = opt(r.structured_data).filter(|s| is_structured_data(s));
    let j = JsonOut {
        time: r.time,
        host: if r.host.is_empty() { "-" } else { r.host },
        app: opt(r.app),
        pid: opt(r.pid),
        facility: facility_name(r.facility),
        severity: severity_name(r.severity),
        sent: opt(r.sent),
        msgid: opt(r.msgid),
        sd,
        message: r.message,
    };
    out.push_str(&serde_json::to_string(&j).expect("strings serialise"));
    out.push('\n');
}

// ---------------------------------------------------------------------------------------------
// Reading.

/// Decodes escaped text one character at a time.
struct Unescape<'a> {
    s: &'a str,
    pos: usize,
    field: &'static str,
    /// The first bad escape met through [`Chars`].
    err: Option<LineError>,
}

impl Chars for Unescape<'_> {
    fn next_char(&mut self) -> Option<char> {
        self.next().unwrap_or_else(|e| {
            self.err.get_or_insert(e);
            None
        })
    }
    fn peek_char(&mut self) -> Option<char> {
        match self.peek_raw() {
            Ok(c) => c.map(|(c, _)| c),
            Err(e) => {
                self.err.get_or_insert(e);
                None
            }
        }
    }
}

impl<'a> Unescape<'a> {
    fn new(s: &'a str, field: &'static str) -> Self {
        Unescape {
            s,
            pos: 0,
            field,
            err: None,
        }
    }

    /// The next character and its raw length, without moving.
    fn peek_raw(&self) -> Result<Option<(char, usize)>, LineError> {
        let rest = &self.s[self.pos..];
        let Some(c) = rest.chars().next() else {
            return Ok(None);
        };
        if c != '\\' {
            return Ok(Some((c, c.len_utf8())));
        }
        let b = rest.as_bytes();
        match b.get(1) {
            Some(b'\\') => Ok(Some(('\\', 2))),
            Some(b'n') => Ok(Some(('\n', 2))),
            Some(b'r') => Ok(Some(('\r', 2))),
            Some(b'x') => {
                let hex = rest
                    .get(2..4)
                    .ok_or_else(|| bad(self.field, "truncated \\x escape"))?;
                let v = u8::from_str_radix(hex, 16)
                    .ok()
                    .filter(|v| v.is_ascii() && hex.bytes().all(|h| h.is_ascii_hexdigit()))
                    .ok_or_else(|| bad(self.field, "bad \\x escape"))?;
                Ok(Some((char::from(v), 4)))
            }
            Some(b'u') => {
                let body = rest
                    .strip_prefix("\\u{")
                    .ok_or_else(|| bad(self.field, "bad \\u escape"))?;
                let close = body
                    .bytes()
                    .take(7)
                    .position(|c| c == b'}')
                    .ok_or_else(|| bad(self.field, "unterminated \\u escape"))?;
                let hex = &body[..close];
                let c = (!hex.is_empty() && hex.bytes().all(|h| h.is_ascii_hexdigit()))
                    .then(|| u32::from_str_radix(hex, 16).ok())
                    .flatten()
                    .and_then(char::from_u32)
                    .ok_or_else(|| bad(self.field, "bad \\u escape"))?;
                Ok(Some((c, 3 + close + 1)))
            }
            Some(_) => Err(bad(self.field, "unknown escape")),
            None => Err(bad(self.field, "lone backslash at the end")),
        }
    }

    fn next(&mut self) -> Result<Option<char>, LineError> {
        let got = self.peek_raw()?;
        if let Some((c, n)) = got {
            self.pos += n;
            return Ok(Some(c));
        }
        Ok(None)
    }
}

/// Unescapes all of `s`, refusing raw characters MSG never holds.
fn unescape(s: &str, field: &'static str) -> Result<String, LineError> {
    if !s.contains('\\') {
        if s.contains(|c: char| c.is_control() && c != '\t') {
            return Err(bad(field, "raw control character"));
        }
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut u = Unescape::new(s, field);
    while u.pos < s.len() {
        let raw = s[u.pos..].chars().next().expect("not at the end");
        if raw != '\\' && raw.is_control() && raw != '\t' {
            return Err(bad(field, "raw control character"));
        }
        out.push(u.next()?.expect("not at the end"));
    }
    Ok(out)
}

/// Splits off a TOKEN ended by a space (or, for APP, by `[`).
fn token<'a>(
    rest: &'a str,
    field: &'static str,
    end: char,
) -> Result<(Option<String>, &'a str), LineError> {
    let at = rest
        .find(end)
        .ok_or_else(|| bad(field, "missing, or the line ends early"))?;
    let raw = &rest[..at];
    if raw.is_empty() {
        return Err(bad(field, "empty"));
    }
    if raw.contains(|c: char| c.is_whitespace() || c.is_control() || c == '[' || c == ']') {
        return Err(bad(field, "raw whitespace, control character or bracket"));
    }
    let value = if raw == "-" {
        None
    } else {
        Some(unescape(raw, field)?)
    };
    Ok((value, &rest[at + end.len_utf8()..]))
}

/// Whether `t` is TIME: `YYYY-MM-DDThh:mm:ss.ffffffZ`, in range.
fn is_utc_time(t: &str) -> bool {
    let b = t.as_bytes();
    if b.len() != 27 {
        return false;
    }
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let num = |r: std::ops::Range<usize>| t[r].parse::<u32>().unwrap_or(u32::MAX);
    digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && b[19] == b'.'
        && digits(20..26)
        && b[26] == b'Z'
        && (1..=12).contains(&num(5..7))
        && (1..=31).contains(&num(8..10))
        && num(11..13) < 24
        && num(14..16) < 60
        && num(17..19) < 60
}

/// Parses one stored line (text or JSON, with or without its newline) back into its record.
///
/// ```
/// use logging_service::line::parse_line;
/// let r = parse_line("2026-11-26T02:30:01.500000Z gw-1 mqttd[812] user.warning \
///                     2026-11-26T08:00:01.500+05:30 ID47 [meta seq=\"1\"] client s-17 dropped").unwrap();
/// assert_eq!((r.host.as_str(), r.priority().as_str()), ("gw-1", "user.warning"));
/// assert_eq!(r.sd.as_deref(), Some("[meta seq=\"1\"]"));
/// assert_eq!(r.message, "client s-17 dropped");
/// ```
pub fn parse_line(line: &str) -> Result<StoredRecord, LineError> {
    if line.len() > MAX_LINE {
        return Err(LineError::TooLong {
            len: line.len(),
            max: MAX_LINE,
        });
    }
    let line = line.strip_suffix('\n').unwrap_or(line);
    if line.starts_with('{') {
        return parse_json(line);
    }
    let (time, rest) = token(line, "TIME", ' ')?;
    let time = time.ok_or_else(|| bad("TIME", "absent"))?;
    if !is_utc_time(&time) {
        return Err(bad("TIME", "not YYYY-MM-DDThh:mm:ss.ffffffZ"));
    }
    let (host, rest) = token(rest, "HOST", ' ')?;
    let host = host.unwrap_or_else(|| "-".into());
    let (app, rest) = token(rest, "APP", '[')?;
    let (pid, rest) = token(rest, "PID", ']')?;
    let rest = rest
        .strip_prefix(' ')
        .ok_or_else(|| bad("PID", "no space after `]`"))?;
    let (prio, rest) = rest
        .split_once(' ')
        .ok_or_else(|| bad("FACILITY.SEVERITY", "missing"))?;
    let (f, s) = prio
        .split_once('.')
        .ok_or_else(|| bad("FACILITY.SEVERITY", "no `.`"))?;
    let facility = parse_facility(f).ok_or_else(|| bad("FACILITY", "unknown"))?;
    let severity = parse_severity(s).ok_or_else(|| bad("SEVERITY", "unknown"))?;
    let (sent, rest) = token(rest, "SENT", ' ')?;
    let (msgid, rest) = token(rest, "MSGID", ' ')?;
    let (sd, rest) = if let Some(r) = rest.strip_prefix("- ") {
        (None, r)
    } else {
        let mut u = Unescape::new(rest, "SD");
        let n = sd_extent(&mut u);
        if let Some(e) = u.err {
            return Err(e);
        }
        n.ok_or_else(|| bad("SD", "not `-` or well-formed STRUCTURED-DATA"))?;
        let raw = &rest[..u.pos];
        let after = rest[u.pos..]
            .strip_prefix(' ')
            .ok_or_else(|| bad("SD", "no space after it"))?;
        (Some(unescape(raw, "SD")?), after)
    };
    let message = unescape(rest, "MSG")?;
    Ok(StoredRecord {
        time,
        host,
        app,
        pid,
        facility,
        severity,
        sent,
        msgid,
        sd,
        message,
    })
}

fn parse_json(line: &str) -> Result<StoredRecord, LineError> {
    let mut r: StoredRecord =
        serde_json::from_str(line).map_err(|e| LineError::Json(e.to_string()))?;
    // `""` and `"-"` mean absent, as `-` does in a text line.
    for f in [&mut r.app, &mut r.pid, &mut r.sent, &mut r.msgid, &mut r.sd] {
        if f.as_deref().is_some_and(absent) {
            *f = None;
        }
    }
    if r.host.is_empty() {
        r.host = "-".into();
    }
    if !is_utc_time(&r.time) {
        return Err(bad("time", "not YYYY-MM-DDThh:mm:ss.ffffffZ"));
    }
    if let Some(sd) = &r.sd
        && !is_structured_data(sd)
    {
        return Err(bad("sd", "not well-formed STRUCTURED-DATA"));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_special_byte_scan_finds_the_first_one() {
        let naive = |b: &[u8], from: usize| {
            (from..b.len())
                .find(|&i| b[i] < 0x20 || b[i] == b'\\' || b[i] == 0x7f || b[i] == 0xc2)
                .unwrap_or(b.len())
        };
        let text: Vec<u8> = b"plain ascii text, long enough for several words".to_vec();
        assert_eq!(next_special(&text, 0), text.len());
        assert_eq!(next_special(b"", 0), 0);
        for special in [0u8, 0x09, 0x1f, b'\\', 0x7f, 0xc2] {
            for at in 0..text.len() {
                let mut t = text.clone();
                t[at] = special;
                // A byte just past each bound right after it: not special.
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
    }

    /// Every byte value at every position of tokens of 1 to 20 bytes: the eight-at-a-time
    /// test agrees with the per-byte rule.
    #[test]
    fn the_plain_token_test_matches_the_per_byte_rule() {
        let rule = |b: &[u8]| {
            b.iter()
                .all(|&c| c.is_ascii_graphic() && !matches!(c, b'\\' | b'[' | b']'))
        };
        for len in 1..=20 {
            for at in 0..len {
                for v in 0..=255u8 {
                    let mut t = vec![b'a'; len];
                    t[at] = v;
                    // A neighbour just past a bound, to catch a borrow.
                    if at + 1 < len {
                        t[at + 1] = [0x21, 0x7e, 0x80, 0x20][usize::from(v) % 4];
                    }
                    assert_eq!(plain_token(&t), rule(&t), "{t:?}");
                }
            }
        }
    }

    #[test]
    fn escaping_matches_the_per_character_rule() {
        let slow = |s: &str| {
            let mut out = String::new();
            for c in s.chars() {
                if c == '\\' || (c.is_control() && c != '\t') {
                    push_escape(&mut out, c);
                } else {
                    out.push(c);
                }
            }
            out
        };
        for s in [
            "",
            "plain",
            "a\u{1b}[2J\0b\u{7}\u{7f}\tc\u{9b}1m\\x41é",
            "long enough to take the eight-byte path \u{85} and \u{a0} and ¢ and \\ twice \\",
            "ÂÂÂÂÂÂÂÂ\u{80}\u{9f}\u{a0}",
        ] {
            let mut fast = String::new();
            push_escaped(&mut fast, s);
            assert_eq!(fast, slow(s), "{s:?}");
        }
    }
    use super::*;
    use proptest::prelude::*;

    const T: &str = "2026-01-01T00:00:00.000000Z";

    fn text_of(r: &LogRecord<'_>) -> String {
        let mut s = String::new();
        write_text(r, &mut s);
        s
    }

    fn json_of(r: &LogRecord<'_>) -> String {
        let mut s = String::new();
        write_json(r, &mut s);
        s
    }

    fn rec<'a>(message: &'a str, sd: &'a str) -> LogRecord<'a> {
        LogRecord {
            time: T,
            host: "gw-1",
            app: "mqttd",
            pid: "812",
            facility: 19,
            severity: 3,
            sent: "2026-01-01T05:30:00+05:30",
            msgid: "ID47",
            structured_data: sd,
            message,
        }
    }

    #[test]
    fn a_line_and_its_json_read_back_alike() {
        let r = rec("valve \"2\" stuck\\", "[meta seq=\"1\" note=\"a\\]b\"]");
        let text = text_of(&r);
        assert_eq!(
            text,
            "2026-01-01T00:00:00.000000Z gw-1 mqttd[812] local3.err 2026-01-01T05:30:00+05:30 ID47 \
             [meta seq=\"1\" note=\"a\\\\]b\"] valve \"2\" stuck\\\\\n"
        );
        let json = json_of(&r);
        let (a, b) = (parse_line(&text).unwrap(), parse_line(&json).unwrap());
        assert_eq!(a, b);
        assert_eq!(a.priority(), "local3.err");
        assert_eq!(a.sd.as_deref(), Some("[meta seq=\"1\" note=\"a\\]b\"]"));
        assert_eq!(a.message, "valve \"2\" stuck\\");
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["facility"], "local3");
        assert_eq!(v["severity"], "err");
        assert_eq!(v["pid"], "812");
        assert!(json.ends_with("}\n") && json.matches('\n').count() == 1);
        // Absent fields: `-` in text, null in JSON.
        let r = LogRecord {
            app: "-",
            pid: "",
            sent: "-",
            msgid: "-",
            structured_data: "-",
            ..rec("x", "-")
        };
        let a = parse_line(&text_of(&r)).unwrap();
        assert_eq!(
            (a.app, a.pid, a.sent, a.msgid, a.sd),
            (None, None, None, None, None)
        );
        let v: serde_json::Value = serde_json::from_str(&json_of(&r)).unwrap();
        assert!(v["pid"].is_null() && v["sd"].is_null() && v["msgid"].is_null());
    }

    #[test]
    fn malformed_lines_are_refused_with_the_field() {
        let good = text_of(&rec("m", "[a b=\"c\"]"));
        assert!(parse_line(&good).is_ok());
        let cases: &[(&str, &str)] = &[
            ("", "TIME"),
            ("\n", "TIME"),
            ("2026-01-01T00:00:00Z h a[1] user.info - - - m", "TIME"),
            (
                "2026-13-01T00:00:00.000000Z h a[1] user.info - - - m",
                "TIME",
            ),
            ("t h a[1] user.info - - - m", "TIME"),
            (
                "2026-01-01T00:00:00.000000Z h a[1] <1.6> - - - m",
                "FACILITY",
            ),
            (
                "2026-01-01T00:00:00.000000Z h a[1] user - - - m",
                "FACILITY.SEVERITY",
            ),
            (
                "2026-01-01T00:00:00.000000Z h a[1] user.6x - - - m",
                "SEVERITY",
            ),
            (
                "2026-01-01T00:00:00.000000Z h a[1] lokal0.info - - - m",
                "FACILITY",
            ),
            (
                "2026-01-01T00:00:00.000000Z h a[1] 1234.info - - - m",
                "FACILITY",
            ),
            ("2026-01-01T00:00:00.000000Z h a1 user.info - - - m", "APP"),
            ("2026-01-01T00:00:00.000000Z h a[1]user.info - - - m", "PID"),
            (
                "2026-01-01T00:00:00.000000Z h a[1 2] user.info - - - m",
                "PID",
            ),
            (
                "2026-01-01T00:00:00.000000Z h a[1] user.info - - [x m",
                "SD",
            ),
            (
                "2026-01-01T00:00:00.000000Z h a[1] user.info - - [x]m",
                "SD",
            ),
            ("2026-01-01T00:00:00.000000Z h a[1] user.info - - x m", "SD"),
            (
                "2026-01-01T00:00:00.000000Z h a[1] user.info - - [x a=\"]\"",
                "SD",
            ),
            (
                "2026-01-01T00:00:00.000000Z h a[1] user.info - - - bad \\q escape",
                "MSG",
            ),
            (
                "2026-01-01T00:00:00.000000Z h a[1] user.info - - - \\x8f",
                "MSG",
            ),
            (
                "2026-01-01T00:00:00.000000Z h a[1] user.info - - - \\u{d800}",
                "MSG",
            ),
            (
                "2026-01-01T00:00:00.000000Z h a[1] user.info - - - \\u{110000}",
                "MSG",
            ),
            (
                "2026-01-01T00:00:00.000000Z h a[1] user.info - - - \\u{1234567}",
                "MSG",
            ),
            (
                "2026-01-01T00:00:00.000000Z h a[1] user.info - - - \\u{}",
                "MSG",
            ),
            (
                "2026-01-01T00:00:00.000000Z h a[1] user.info - - - raw\rCR",
                "MSG",
            ),
            (
                "2026-01-01T00:00:00.000000Z h a[1] user.info - - - raw\nLF",
                "MSG",
            ),
            (
                "2026-01-01T00:00:00.000000Z h\\z a[1] user.info - - - m",
                "HOST",
            ),
            (
                "2026-01-01T00:00:00.000000Z  a[1] user.info - - - m",
                "HOST",
            ),
        ];
        let wrong: Vec<String> = cases
            .iter()
            .filter_map(|(line, field)| match parse_line(line) {
                Err(LineError::Malformed { field: f, .. }) if f == *field => None,
                other => Some(format!("{line:?} (expected {field}): {other:?}")),
            })
            .collect();
        assert!(wrong.is_empty(), "{wrong:#?}");
        for json in [
            "{",
            "{}",
            r#"{"time":"2026-01-01T00:00:00.000000Z","host":"h","app":null,"pid":null,"facility":"user","severity":"info","sent":null,"msgid":null,"sd":null,"message":"m","extra":1}"#,
            r#"{"time":"2026-01-01T00:00:00.000000Z","host":"h","app":null,"pid":null,"facility":"users","severity":"info","sent":null,"msgid":null,"sd":null,"message":"m"}"#,
            r#"{"time":"2026-01-01T00:00:00Z","host":"h","app":null,"pid":null,"facility":"user","severity":"info","sent":null,"msgid":null,"sd":null,"message":"m"}"#,
            r#"{"time":"2026-01-01T00:00:00.000000Z","host":"h","app":null,"pid":null,"facility":"user","severity":"info","sent":null,"msgid":null,"sd":"[open","message":"m"}"#,
        ] {
            assert!(parse_line(json).is_err(), "{json}");
        }
    }

    /// Every proper prefix of a line is refused or reads as a record with a shorter message:
    /// a torn line is never taken for another record.
    #[test]
    fn truncated_lines_lose_only_their_tail() {
        let line = text_of(&rec("the whole message", "[meta seq=\"1\"]"));
        let full = parse_line(&line).unwrap();
        let body = line.trim_end_matches('\n');
        for cut in 0..body.len() {
            if !body.is_char_boundary(cut) {
                continue;
            }
            if let Ok(r) = parse_line(&body[..cut]) {
                assert!(full.message.starts_with(&r.message), "{cut}");
                assert_eq!(
                    (&r.time, &r.host, &r.sd),
                    (&full.time, &full.host, &full.sd),
                    "{cut}"
                );
            }
        }
        let json = json_of(&rec("x", "-"));
        for cut in 0..json.len() - 1 {
            assert!(parse_line(&json[..cut]).is_err(), "{cut}");
        }
    }

    #[test]
    fn oversized_lines_are_refused_before_parsing() {
        let message = "x".repeat(MAX_LINE);
        let line = text_of(&rec(&message, "-"));
        assert_eq!(
            parse_line(&line),
            Err(LineError::TooLong {
                len: line.len(),
                max: MAX_LINE
            })
        );
        // Just under the limit is fine.
        let cut = "x".repeat(MAX_LINE - (line.len() - MAX_LINE) - 1);
        assert!(parse_line(&text_of(&rec(&cut, "-"))).is_ok());
    }

    /// What a hostile sender can put in a field never shifts the others nor reaches the
    /// terminal raw: spaces, brackets, backslashes, newlines, escape sequences, bidi controls,
    /// forged line starts.
    #[test]
    fn hostile_fields_come_back_as_they_were() {
        let forged = format!("x\n{T} victim a[1] user.emerg - - - forged");
        let r = LogRecord {
            time: T,
            host: "h o[s]t\\\u{1b}[2J",
            app: "a]p[p",
            pid: "1] user.emerg",
            facility: 1,
            severity: 6,
            sent: "\u{202e}sent\u{2028}",
            msgid: "\\x41",
            structured_data: "[a b=\"\n\\\"\\\\\u{9b}\"]",
            message: &forged,
        };
        let line = text_of(&r);
        assert_eq!(line.matches('\n').count(), 1);
        assert!(
            !line
                .trim_end()
                .contains(|c: char| c.is_control() && c != '\t')
        );
        let back = parse_line(&line).unwrap();
        assert_eq!(back.as_record(), r);
        assert_eq!(parse_line(&json_of(&r)).unwrap(), back);
    }

    #[test]
    fn facility_and_severity_names() {
        assert_eq!(facility_name(1), "user");
        assert_eq!(facility_name(19), "local3");
        assert_eq!(facility_name(24), "24");
        assert_eq!(severity_name(3), "err");
        assert_eq!(parse_facility("LOCAL7"), Some(23));
        assert_eq!(parse_severity("6"), Some(6));
        assert_eq!(parse_severity("error"), None);
        assert_eq!(parse_facility("+1"), None);
    }

    /// RFC 5424 STRUCTURED-DATA: elements of `ID PARAM="VALUE"`, values with any character,
    /// `"`, `\` and `]` escaped as the RFC says.
    fn structured_data() -> impl Strategy<Value = String> {
        let value = any::<String>().prop_map(|v| {
            v.chars()
                .flat_map(|c| match c {
                    '"' | '\\' | ']' => vec!['\\', c],
                    c => vec![c],
                })
                .collect::<String>()
        });
        let element = (
            "[a-zA-Z@0-9.]{1,32}",
            proptest::collection::vec(("[a-z]{1,32}", value), 0..3),
        )
            .prop_map(|(id, params)| {
                let mut s = format!("[{id}");
                for (k, v) in params {
                    s.push_str(&format!(" {k}=\"{v}\""));
                }
                s.push(']');
                s
            });
        prop_oneof![
            Just("-".to_string()),
            proptest::collection::vec(element, 1..3).prop_map(|e| e.concat()),
        ]
    }

    fn token() -> impl Strategy<Value = String> {
        prop_oneof![Just("-".to_string()), any::<String>()]
    }

    proptest! {
        /// write → parse gives back every field, in both formats.
        #[test]
        fn round_trip(secs in 0i64..253_402_300_799, micros in 0u32..1_000_000,
                      host in token(), app in token(), pid in token(), sent in token(), msgid in token(),
                      facility in any::<u8>(), severity in any::<u8>(),
                      sd in structured_data(), message in any::<String>()) {
            let time = crate::record::rfc3339(secs, micros);
            let r = LogRecord { time: &time, host: &host, app: &app, pid: &pid, facility, severity,
                                sent: &sent, msgid: &msgid, structured_data: &sd, message: &message };
            prop_assert!(is_structured_data(&sd) || sd == "-");
            let text = text_of(&r);
            prop_assert_eq!(text.matches('\n').count(), 1);
            let a = parse_line(&text).unwrap();
            let nil = |s: &str| if s.is_empty() { "-".to_string() } else { s.to_string() };
            prop_assert_eq!(&a.time, &time);
            prop_assert_eq!(&a.host, &nil(&host));
            prop_assert_eq!(nil_or(&a.app), nil(&app));
            prop_assert_eq!(nil_or(&a.pid), nil(&pid));
            prop_assert_eq!(nil_or(&a.sent), nil(&sent));
            prop_assert_eq!(nil_or(&a.msgid), nil(&msgid));
            prop_assert_eq!(nil_or(&a.sd), sd.as_str());
            prop_assert_eq!((a.facility, a.severity), (facility, severity));
            prop_assert_eq!(&a.message, &message);
            let b = parse_line(&json_of(&r)).unwrap();
            prop_assert_eq!(a, b);
        }

        /// Arbitrary text never panics the parser, and what it accepts writes back to a line
        /// that parses the same.
        #[test]
        fn arbitrary_lines(line in any::<String>()) {
            if let Ok(r) = parse_line(&line) {
                prop_assert_eq!(parse_line(&text_of(&r.as_record())).unwrap(), r);
            }
        }

        /// Whatever STRUCTURED-DATA the syslog decoder accepts, the line keeps (the writer
        /// checks it with the same walk, and would write `-` otherwise).
        #[test]
        fn decoded_structured_data_is_always_kept(sd in "[\\[\\]\"\\\\ a=\u{e9}\u{0}-]{0,40}", rest in any::<String>()) {
            let text = format!("<13>1 - h a - - {sd}{rest}");
            if let Ok(m) = crate::syslog::parse_str(&text)
                && let Some(decoded) = m.structured_data.as_deref()
            {
                prop_assert!(is_structured_data(decoded), "{decoded:?}");
                let mut batch = crate::record::RecordBatch::new();
                batch.push_syslog(&m, "p");
                let r = parse_line(&text_of(&batch.get(0).unwrap())).unwrap();
                prop_assert_eq!(r.sd.as_deref(), Some(decoded));
            }
        }

        /// JSON objects of the store's shape with any values: refused, or read back the same
        /// from both formats.
        #[test]
        fn arbitrary_json(host in any::<String>(), app in proptest::option::of(any::<String>()),
                          sd in proptest::option::of(any::<String>()), facility in "[a-z0-9]{0,6}",
                          message in any::<String>()) {
            let v = serde_json::json!({"time": T, "host": host, "app": app, "pid": null,
                "facility": facility, "severity": "info", "sent": "-", "msgid": "", "sd": sd,
                "message": message});
            if let Ok(r) = parse_line(&v.to_string()) {
                prop_assert_eq!(parse_line(&text_of(&r.as_record())).unwrap(), r.clone());
                prop_assert_eq!(parse_line(&json_of(&r.as_record())).unwrap(), r);
            }
        }
    }
}
