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
    /// The sender's time in UTC when the format carries a full one (ACE; RFC 5424), else the
    /// time of receipt: `YYYY-MM-DDThh:mm:ss.ffffffZ` (see [`crate::line`]).
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
    /// The sender's own timestamp as sent, with its UTC offset, or `-`.
    pub sent: &'a str,
    /// RFC 5424 MSGID, or `-`.
    pub msgid: &'a str,
    /// RFC 5424 STRUCTURED-DATA as sent (its escapes intact), or `-`.
    pub structured_data: &'a str,
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

impl LogRecord<'_> {
    /// Appends the stored text line (the grammar of [`crate::line`]): `TIME HOST APP[PID]
    /// FACILITY.SEVERITY SENT MSGID SD MSG`, one line whatever a sender put in its fields.
    pub fn write_line(&self, out: &mut String) {
        crate::line::write_text(self, out);
    }

    /// Appends the stored JSON line (`--format json`).
    pub fn write_json(&self, out: &mut String) {
        crate::line::write_json(self, out);
    }
}

/// Where a record's fields end in a [`RecordBatch`]'s text.
#[derive(Debug, Clone, Copy)]
struct Slot {
    start: usize,
    /// Ends of time, host, app, pid, sent, msgid, structured data, message.
    ends: [usize; 8],
    facility: u8,
    severity: u8,
}

/// A batch of records decoded from one read (or one upcall): every field of every record in
/// one string, so that decoding a batch allocates nothing once the batch has grown to its
/// working size. Cleared and reused: by the thread that decodes (`server::SCRATCH`), or by
/// its connection.
///
/// ```
/// use logging_service::record::{LogRecord, RecordBatch};
///
/// let mut batch = RecordBatch::new();
/// batch.push(&LogRecord { time: "2026-01-01T00:00:00.000000Z", host: "h", app: "a", pid: "1",
///                         facility: 1, severity: 6, sent: "-", msgid: "-", structured_data: "-",
///                         message: "hi" });
/// let mut line = String::new();
/// batch.iter().for_each(|r| r.write_line(&mut line));
/// assert_eq!(line, "2026-01-01T00:00:00.000000Z h a[1] user.info - - - hi\n");
/// ```
#[derive(Debug, Clone, Default)]
pub struct RecordBatch {
    text: String,
    slots: Vec<Slot>,
    stamps: StampCache,
    utc: UtcCache,
    /// The last ACE pid and its digits: a connection's records nearly always share it.
    pid: Option<(i32, String)>,
    /// The host every record is stored under whatever it claims (`--host-from certificate`:
    /// the TLS peer's authenticated name); kept across [`clear`](Self::clear).
    host: Option<String>,
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

    /// Stores every record pushed from now on under `host`, not the host it claims nor the
    /// peer's address (`None`: the claim again).
    pub fn set_host(&mut self, host: Option<String>) {
        self.host = host;
    }

    /// Takes the host [`set_host`](Self::set_host) set, leaving the claim again: how a
    /// connection takes its host back from a batch that is not its own (a pool thread's,
    /// `server::SCRATCH`) at the end of an upcall.
    pub fn take_host(&mut self) -> Option<String> {
        self.host.take()
    }

    /// Forgets every record, keeping the memory for the next batch.
    pub fn clear(&mut self) {
        self.text.clear();
        self.slots.clear();
    }

    /// Makes this batch a copy of `other`'s records, reusing this batch's memory: how a
    /// connection's batch is handed to the store's thread without allocating once the
    /// batches on the way have grown to their working size.
    pub fn copy_from(&mut self, other: &RecordBatch) {
        self.text.clone_from(&other.text);
        self.slots.clone_from(&other.slots);
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
        let [t, h, a, p, st, id, sd, m] = s.ends;
        LogRecord {
            time: &self.text[s.start..t],
            host: &self.text[t..h],
            app: &self.text[h..a],
            pid: &self.text[a..p],
            facility: s.facility,
            severity: s.severity,
            sent: &self.text[p..st],
            msgid: &self.text[st..id],
            structured_data: &self.text[id..sd],
            message: &self.text[sd..m],
        }
    }

    fn end(&self) -> usize {
        self.text.len()
    }

    /// Appends a copy of `r`, fields as they are.
    pub fn push(&mut self, r: &LogRecord<'_>) {
        let start = self.end();
        let mut ends = [0; 8];
        for (end, field) in ends.iter_mut().zip([
            r.time,
            r.host,
            r.app,
            r.pid,
            r.sent,
            r.msgid,
            r.structured_data,
            r.message,
        ]) {
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

    /// Appends a record from an ACE client at `peer`: the sender's time (UTC), the peer as
    /// host, app `ace`, facility 1 (user), the severity of ACE's priority, the message without
    /// the trailing newlines `ACE_DEBUG` formats usually end with. A time outside the years
    /// 0 to 9999 cannot be TIME: the time of receipt is, and SENT keeps the sender's
    /// `SECONDS.MICROS` since the epoch.
    pub fn push_ace(&mut self, r: &AceView<'_>, peer: &str) {
        let start = self.end();
        let micros = r.micros.clamp(0, 999_999) as u32;
        let in_range = (0..=MAX_SECONDS).contains(&r.seconds);
        if in_range {
            self.stamps.push(&mut self.text, r.seconds, micros);
        } else {
            let (secs, us) = now();
            self.stamps.push(&mut self.text, secs, us);
        }
        let t = self.end();
        push_host(&mut self.text, self.host.as_deref().unwrap_or(peer));
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
        if !in_range {
            push_int(&mut self.text, r.seconds);
            let _ = write!(self.text, ".{micros:06}");
        }
        let st = self.end();
        let message = trim_line_ends(r.message);
        match std::str::from_utf8(message) {
            Ok(m) => self.text.push_str(m),
            Err(_) => self.text.push_str(&String::from_utf8_lossy(message)),
        }
        self.slots.push(Slot {
            start,
            ends: [t, h, a, p, st, st, st, self.end()],
            facility: 1,
            severity: severity_of(r.priority),
        });
    }

    fn push_now(&mut self) {
        let (secs, micros) = now();
        self.stamps.push(&mut self.text, secs, micros);
    }

    /// Appends a record from a syslog sender at `peer`: TIME is an RFC 5424 timestamp turned
    /// into UTC, else the time of receipt; SENT the timestamp as sent (RFC 3164's `Mmm dd
    /// hh:mm:ss` as `--MM-DDThh:mm:ss`, ISO 8601's form without a year); the message's host
    /// name, else the peer; MSGID and STRUCTURED-DATA as sent.
    pub fn push_syslog(&mut self, m: &SyslogMessage<'_>, peer: &str) {
        let start = self.end();
        let sent = m.timestamp.as_deref();
        match (m.dialect, sent) {
            // TIME's own form within the second of the record before: itself, unconverted
            // (most senders' records; converting them again was about 7% of a record's user time).
            (Dialect::Rfc5424, Some(t)) if self.utc.is_same_second_time_form(t) => {
                self.text.push_str(t);
            }
            (Dialect::Rfc5424, Some(t)) => match self.utc.parse(t) {
                // Already TIME's own form (UTC, six digits, `T` and `Z`): itself.
                Some(_) if is_time_form(t) => self.text.push_str(t),
                Some((secs, micros)) => self.stamps.push(&mut self.text, secs, micros),
                None => self.push_now(),
            },
            _ => self.push_now(),
        }
        let t = self.end();
        let host = self.host.as_deref().or(m.hostname.as_deref());
        push_host(&mut self.text, host.unwrap_or(peer));
        let h = self.end();
        self.text.push_str(m.app.as_deref().unwrap_or("-"));
        let a = self.end();
        self.text.push_str(m.procid.as_deref().unwrap_or("-"));
        let p = self.end();
        match (m.dialect, sent) {
            (_, None) => self.text.push('-'),
            (Dialect::Rfc3164, Some(t)) => push_bsd_stamp(&mut self.text, t),
            (Dialect::Rfc5424, Some(t)) => self.text.push_str(t),
        }
        let st = self.end();
        self.text.push_str(m.msgid.as_deref().unwrap_or("-"));
        let id = self.end();
        self.text
            .push_str(m.structured_data.as_deref().unwrap_or("-"));
        let sd = self.end();
        self.text.push_str(&m.message);
        self.slots.push(Slot {
            start,
            ends: [t, h, a, p, st, id, sd, self.end()],
            facility: m.facility,
            severity: m.severity,
        });
    }
}

/// Whether a valid RFC 3339 timestamp is written exactly as TIME is
/// (`YYYY-MM-DDThh:mm:ss.ffffffZ`): then its UTC form is itself.
fn is_time_form(t: &str) -> bool {
    let b = t.as_bytes();
    b.len() == 27 && b[10] == b'T' && b[19] == b'.' && b[26] == b'Z'
}

/// The last second TIME can show: 9999-12-31T23:59:59Z.
const MAX_SECONDS: i64 = 253_402_300_799;

/// `message` without its trailing newlines and carriage returns.
fn trim_line_ends(message: &[u8]) -> &[u8] {
    let end = message
        .iter()
        .rposition(|&b| b != b'\n' && b != b'\r')
        .map_or(0, |i| i + 1);
    &message[..end]
}

/// Appends RFC 3164's `Mmm dd hh:mm:ss` as `--MM-DDThh:mm:ss` (ISO 8601 without a year), or
/// as it is when it is not one.
fn push_bsd_stamp(out: &mut String, t: &str) {
    let b = t.as_bytes();
    let month = MONTHS.iter().position(|m| t.starts_with(m));
    let digit = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    let ok = b.len() == 15
        && month.is_some()
        && (b[4] == b' ' || digit(4))
        && digit(5)
        && [7, 8, 10, 11, 13, 14].into_iter().all(digit);
    match month {
        Some(m) if ok => {
            let day = if b[4] == b' ' { &t[5..6] } else { &t[4..6] };
            let _ = write!(out, "--{:02}-{day:0>2}T{}", m + 1, &t[7..15]);
        }
        _ => out.push_str(t),
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// An RFC 3339 timestamp (`2026-11-26T08:00:01.5+05:30`, up to nine fraction digits, `Z` or
/// an offset) as seconds and microseconds since the epoch, UTC; `None` when it is not one or
/// falls outside the years 0 to 9999 in UTC.
///
/// ```
/// use logging_service::record::{parse_rfc3339, rfc3339};
/// let (s, us) = parse_rfc3339("2026-11-26T08:00:01.5+05:30").unwrap();
/// assert_eq!(rfc3339(s, us), "2026-11-26T02:30:01.500000Z");
/// assert_eq!(parse_rfc3339("2026-02-30T00:00:00Z"), None);
/// ```
pub fn parse_rfc3339(t: &str) -> Option<(i64, u32)> {
    let (date_time, micros, offset) = split_rfc3339(t)?;
    Some((seconds_of(date_time, offset)?, micros))
}

/// An RFC 3339 timestamp's date and time (its first 19 bytes, not yet checked), its
/// fraction as microseconds and its offset (`Z` or `+hh:mm`, not yet checked); `None` when
/// the punctuation or the fraction is wrong.
fn split_rfc3339(t: &str) -> Option<(&str, u32, &str)> {
    let b = t.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    // `get`, not slicing: the bytes before 19 are not checked yet, and may end inside a
    // character.
    let (date_time, mut rest) = (t.get(..19)?, t.get(19..)?);
    let mut micros = 0u32;
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 || n > 9 {
            return None;
        }
        let digits = &frac[..n];
        micros = digits
            .bytes()
            .chain(std::iter::repeat(b'0'))
            .take(6)
            .fold(0, |m, c| m * 10 + u32::from(c - b'0'));
        rest = &frac[n..];
    }
    Some((date_time, micros, rest))
}

/// Seconds since the epoch (UTC) of `YYYY-MM-DDThh:mm:ss` at `offset` (`Z` or `+hh:mm`);
/// `None` when either is not valid or the instant falls outside the years 0 to 9999 in UTC.
fn seconds_of(date_time: &str, offset: &str) -> Option<i64> {
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = date_time.get(r)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&mo) || d < 1 || d > month_days[(mo - 1) as usize] {
        return None;
    }
    if h > 23 || mi > 59 || s > 59 {
        return None;
    }
    let offset = match offset.as_bytes() {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let oh = num2(*h1, *h2)?;
            let om = num2(*m1, *m2)?;
            if oh > 23 || om > 59 {
                return None;
            }
            let o = oh * 3600 + om * 60;
            if *sign == b'-' { -o } else { o }
        }
        _ => return None,
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s - offset;
    (0..=MAX_SECONDS).contains(&secs).then_some(secs)
}

/// The last RFC 5424 timestamp's date, time and offset turned into seconds: a sender's
/// records nearly always share their second, so only the fraction is read per record.
#[derive(Debug, Clone, Default)]
struct UtcCache {
    /// `YYYY-MM-DDThh:mm:ss` and the offset, as sent.
    date_time: String,
    offset: String,
    seconds: i64,
    /// `date_time` when the offset is `Z`: a timestamp in TIME's form with these first 19
    /// bytes and a six-digit fraction is TIME as it is.
    zulu: Option<[u8; 19]>,
}

impl UtcCache {
    /// Whether `t` is in TIME's form (`YYYY-MM-DDThh:mm:ss.ffffffZ`) in the second last
    /// converted, at offset `Z`: then [`parse`](Self::parse) would find it valid and TIME is
    /// `t` itself. Compares the 19 bytes as one array, then checks the fraction's digits.
    fn is_same_second_time_form(&self, t: &str) -> bool {
        let b = t.as_bytes();
        // By reference: a copy of the arrays to the stack stalled the load that compares them.
        self.zulu.as_ref().is_some_and(|zulu| {
            is_time_form(t)
                && <&[u8; 19]>::try_from(&b[..19]).is_ok_and(|head| head == zulu)
                && b[20..26].iter().all(u8::is_ascii_digit)
        })
    }

    /// [`parse_rfc3339`], remembering the last second.
    fn parse(&mut self, t: &str) -> Option<(i64, u32)> {
        let (date_time, micros, offset) = split_rfc3339(t)?;
        if self.date_time != date_time || self.offset != offset {
            let seconds = seconds_of(date_time, offset)?;
            self.date_time.clear();
            self.date_time.push_str(date_time);
            self.offset.clear();
            self.offset.push_str(offset);
            self.seconds = seconds;
            self.zulu = (offset == "Z")
                .then(|| date_time.as_bytes().try_into().ok())
                .flatten();
        }
        Some((self.seconds, micros))
    }
}

fn num2(a: u8, b: u8) -> Option<i64> {
    (a.is_ascii_digit() && b.is_ascii_digit())
        .then(|| i64::from(a - b'0') * 10 + i64::from(b - b'0'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::line::parse_line;

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
    fn rfc3339_timestamps_become_utc() {
        for (sent, utc) in [
            ("2023-11-14T22:13:20Z", "2023-11-14T22:13:20.000000Z"),
            ("2023-11-14T22:13:20.003Z", "2023-11-14T22:13:20.003000Z"),
            (
                "2026-11-26T08:00:01.500+05:30",
                "2026-11-26T02:30:01.500000Z",
            ),
            ("2026-01-01T00:30:00-01:00", "2026-01-01T01:30:00.000000Z"),
            (
                "2000-02-29T23:59:59.123456789+00:00",
                "2000-02-29T23:59:59.123456Z",
            ),
            ("2026-12-31t23:00:00z", "2026-12-31T23:00:00.000000Z"),
        ] {
            let (s, us) = parse_rfc3339(sent).unwrap_or_else(|| panic!("{sent}"));
            assert_eq!(rfc3339(s, us), utc, "{sent}");
        }
        for bad in [
            "",
            "-",
            "2026-13-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-01-01T24:00:00Z",
            "2026-01-01T00:00:60Z",
            "2026-01-01T00:00:00",
            "2026-01-01T00:00:00.Z",
            "2026-01-01T00:00:00.1234567890Z",
            "2026-01-01T00:00:00+24:00",
            "2026-01-01T00:00:00+0530",
            "1970-01-01T00:00:00+00:01",
            "+026-01-01T00:00:00Z",
            "2026-01-01 00:00:00Z",
            "２０２６-01-01T00:00:00Z",
            "2026-01-01T00:00:0€Z",
            "2026-01-01T00:00:€.1Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    /// The time a syslog record gets in a batch, whose second is cached from record to record
    /// and whose canonical UTC form is copied as it is, is what [`parse_rfc3339`] and
    /// [`rfc3339`] make of the sender's time, for every sequence of seconds and offsets.
    #[test]
    fn cached_seconds_and_copied_times_match_the_full_conversion() {
        let stamps = [
            "2026-11-26T08:00:01.500000Z",
            "2026-11-26T08:00:01.500001Z",
            // TIME's form but for the fraction, in the cached second: not a timestamp.
            "2026-11-26T08:00:01.50000xZ",
            "2026-11-26T08:00:01.5000:1Z",
            "2026-11-26T08:00:01.500002Z",
            "2026-11-26T08:00:01.5+05:30",
            "2026-11-26T08:00:01.500000+05:30",
            "2026-11-26T08:00:01.500000-05:30",
            "2026-11-26t08:00:01.500000Z",
            "2026-11-26T08:00:01.500000z",
            "2026-11-26T08:00:02Z",
            "2026-11-26T08:00:02.000000Z",
            "2026-02-30T08:00:02.000000Z",
            "2026-11-26T08:00:01.500000Z",
            "0000-01-01T00:00:00.000000Z",
            "9999-12-31T23:59:59.999999Z",
            "9999-12-31T23:59:59.999999-01:00",
        ];
        let mut batch = RecordBatch::new();
        for (i, t) in stamps.iter().chain(stamps.iter().rev()).enumerate() {
            let text = format!("<13>1 {t} h app - - - m{i}");
            let m = crate::syslog::parse(text.as_bytes()).unwrap();
            batch.push_syslog(&m, "peer");
            let r = batch.get(batch.len() - 1).unwrap();
            match parse_rfc3339(t) {
                Some((s, us)) => assert_eq!(r.time, rfc3339(s, us), "{t}"),
                // Not a time TIME can show: the time of receipt, this year or later.
                None => assert!(r.time.as_bytes()[..2] == *b"20" && r.time != *t, "{t}"),
            }
            assert_eq!(r.sent, *t);
        }
    }

    #[test]
    fn hostile_hosts_cannot_escape_the_data_dir() {
        assert_eq!(sanitize_host("../../etc/passwd"), ".._.._etc_passwd");
        assert_eq!(sanitize_host(".."), "_..");
        assert_eq!(sanitize_host(""), "_");
        assert_eq!(sanitize_host("host/with space"), "host_with_space");
        assert_eq!(sanitize_host("127.0.0.1"), "127.0.0.1");
    }

    fn line_of(batch: &RecordBatch, i: usize) -> String {
        let mut line = String::new();
        batch.get(i).unwrap().write_line(&mut line);
        line
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
            let line = line_of(&batch, 0);
            let body = line.strip_suffix('\n').expect("ends the line");
            assert!(
                !body.contains(|c: char| c.is_control() || (c.is_whitespace() && c != ' ')),
                "{line:?}"
            );
            let r = parse_line(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
            assert_eq!(r.priority(), "user.notice", "{line:?}");
            assert_eq!(r.message, "hello", "{line:?}");
            // The header fields come back as sent.
            assert_eq!(r.host, m.hostname.as_deref().unwrap_or("127.0.0.1"));
            assert_eq!(r.app.as_deref(), m.app.as_deref());
            assert_eq!(r.pid.as_deref(), m.procid.as_deref());
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
                message: b"caf\xc3\xa9 \xff\n",
            };
            batch.push_ace(&view, "10.0.0.1");
        }
        let mut lines = String::new();
        batch.iter().for_each(|r| r.write_line(&mut lines));
        assert_eq!(
            lines,
            "2023-11-14T22:13:20.000005Z 10.0.0.1 ace[-7] user.err - - - caf\u{e9} \u{fffd}\n\
             2023-11-14T22:13:20.000006Z 10.0.0.1 ace[-7] user.info - - - caf\u{e9} \u{fffd}\n\
             2023-11-14T22:13:20.999999Z 10.0.0.1 ace[123] user.emerg - - - caf\u{e9} \u{fffd}\n"
        );
        let big = LogRecord {
            time: "2026-01-01T00:00:00.000000Z",
            host: "h",
            app: "a",
            pid: "p",
            facility: 255,
            severity: 10,
            sent: "",
            msgid: "",
            structured_data: "",
            message: "",
        };
        let mut s = String::new();
        big.write_line(&mut s);
        assert_eq!(s, "2026-01-01T00:00:00.000000Z h a[p] 255.10 - - - \n");
        let r = parse_line(&s).unwrap();
        assert_eq!((r.facility, r.severity, r.message.as_str()), (255, 10, ""));
    }

    /// ACE_DEBUG's format strings end in `\n`: the stored message does not.
    #[test]
    fn ace_trailing_newlines_are_trimmed() {
        for (sent, kept) in [
            (&b"done\n"[..], "done"),
            (b"done\r\n", "done"),
            (b"done\n\n\n", "done"),
            (b"two\nlines\n", "two\nlines"),
            (b"\n", ""),
            (b"", ""),
            (b"no newline", "no newline"),
        ] {
            let mut batch = RecordBatch::new();
            batch.push_ace(
                &AceView {
                    priority: 8,
                    pid: 1,
                    seconds: 0,
                    micros: 0,
                    message: sent,
                },
                "h",
            );
            assert_eq!(batch.get(0).unwrap().message, kept);
            assert_eq!(parse_line(&line_of(&batch, 0)).unwrap().message, kept);
        }
    }

    /// An ACE time TIME cannot show is replaced by the time of receipt and kept in SENT.
    #[test]
    fn ace_times_out_of_range_are_kept_in_sent() {
        let mut batch = RecordBatch::new();
        for seconds in [i64::MAX, -1, MAX_SECONDS + 1] {
            batch.push_ace(
                &AceView {
                    priority: 8,
                    pid: 1,
                    seconds,
                    micros: 7,
                    message: b"x",
                },
                "h",
            );
        }
        for (i, seconds) in [i64::MAX, -1, MAX_SECONDS + 1].into_iter().enumerate() {
            let r = parse_line(&line_of(&batch, i)).unwrap();
            assert_eq!(r.sent, Some(format!("{seconds}.000007")));
            assert!(r.time.as_str() > "2026", "{r:?}");
        }
    }

    /// RFC 5424: TIME in UTC, the sender's own stamp, MSGID and STRUCTURED-DATA (escapes
    /// included) kept; RFC 3164: the stamp as `--MM-DDThh:mm:ss`.
    #[test]
    fn syslog_fields_are_kept() {
        let text = "<165>1 2026-11-26T08:00:01.5+05:30 gw-1 mqttd 812 ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"App\\]lic\\\"a\\\\tion\"][meta seq=\"1\"] client dropped";
        let m = crate::syslog::parse_str(text).unwrap();
        let mut batch = RecordBatch::new();
        batch.push_syslog(&m, "10.0.0.9");
        let line = line_of(&batch, 0);
        assert_eq!(
            line,
            "2026-11-26T02:30:01.500000Z gw-1 mqttd[812] local4.notice 2026-11-26T08:00:01.5+05:30 ID47 \
             [exampleSDID@32473 iut=\"3\" eventSource=\"App\\\\]lic\\\\\"a\\\\\\\\tion\"][meta seq=\"1\"] client dropped\n"
        );
        let r = parse_line(&line).unwrap();
        assert_eq!(r.sd.as_deref(), m.structured_data.as_deref());
        assert_eq!(r.msgid.as_deref(), Some("ID47"));
        assert_eq!(r.sent.as_deref(), Some("2026-11-26T08:00:01.5+05:30"));
        for (stamp, sent) in [
            ("Nov 14 22:13:20", "--11-14T22:13:20"),
            ("Feb  3 01:02:03", "--02-03T01:02:03"),
        ] {
            let text = format!("<13>{stamp} host tag[9]: hi");
            let m = crate::syslog::parse_str(&text).unwrap();
            let mut batch = RecordBatch::new();
            batch.push_syslog(&m, "10.0.0.9");
            let r = parse_line(&line_of(&batch, 0)).unwrap();
            assert_eq!(r.sent.as_deref(), Some(sent));
            assert_eq!((r.host.as_str(), r.message.as_str()), ("host", "hi"));
        }
        // A timestamp that is not RFC 3339: TIME is the time of receipt, SENT keeps it.
        let m = crate::syslog::parse_str("<13>1 yesterday h a - - - x").unwrap();
        let mut batch = RecordBatch::new();
        batch.push_syslog(&m, "p");
        let r = parse_line(&line_of(&batch, 0)).unwrap();
        assert_eq!(r.sent.as_deref(), Some("yesterday"));
        assert!(r.time.as_str() > "2026");
    }

    #[test]
    fn one_record_one_line() {
        let r = LogRecord {
            time: "2026-01-01T00:00:00.000000Z",
            host: "h",
            app: "my app",
            pid: "1",
            facility: 1,
            severity: 6,
            sent: "-",
            msgid: "-",
            structured_data: "-",
            message: "two\nlines \\ and\r",
        };
        let mut s = String::new();
        r.write_line(&mut s);
        assert_eq!(
            s,
            "2026-01-01T00:00:00.000000Z h my\\x20app[1] user.info - - - two\\nlines \\\\ and\\r\n"
        );
        let back = parse_line(&s).unwrap();
        assert_eq!(back.app.as_deref(), Some("my app"));
        assert_eq!(back.message, "two\nlines \\ and\r");
    }
}
