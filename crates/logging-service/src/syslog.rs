//! Syslog: RFC 5424 and RFC 3164 messages, and RFC 6587 framing over TCP.

use std::borrow::Cow;

use crate::error::FrameError;

/// Which syslog dialect a message was parsed as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// RFC 5424 (`<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG`).
    Rfc5424,
    /// RFC 3164, the BSD format (`<PRI>Mmm dd hh:mm:ss HOST TAG[PID]: MSG`), parsed leniently.
    Rfc3164,
}

/// A parsed syslog message. Absent fields (RFC 5424's `-`) are `None`.
///
/// The fields borrow from the raw message when it is valid UTF-8 (the usual case, which
/// then costs no allocation); otherwise they own the lossily decoded text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogMessage<'a> {
    /// The dialect.
    pub dialect: Dialect,
    /// Facility (0..=23).
    pub facility: u8,
    /// Severity (0 emergency ..= 7 debug).
    pub severity: u8,
    /// The sender's timestamp, as sent (RFC 3339 for RFC 5424).
    pub timestamp: Option<Cow<'a, str>>,
    /// The sender's host name.
    pub hostname: Option<Cow<'a, str>>,
    /// Application name (RFC 5424 APP-NAME, RFC 3164 TAG).
    pub app: Option<Cow<'a, str>>,
    /// Process id (RFC 5424 PROCID, RFC 3164 `[pid]`).
    pub procid: Option<Cow<'a, str>>,
    /// RFC 5424 MSGID.
    pub msgid: Option<Cow<'a, str>>,
    /// RFC 5424 STRUCTURED-DATA, verbatim.
    pub structured_data: Option<Cow<'a, str>>,
    /// The free-form message.
    pub message: Cow<'a, str>,
}

impl SyslogMessage<'_> {
    /// The same message, owning its text.
    pub fn into_owned(self) -> SyslogMessage<'static> {
        let own = |f: Option<Cow<'_, str>>| f.map(|c| Cow::Owned(c.into_owned()));
        SyslogMessage {
            dialect: self.dialect,
            facility: self.facility,
            severity: self.severity,
            timestamp: own(self.timestamp),
            hostname: own(self.hostname),
            app: own(self.app),
            procid: own(self.procid),
            msgid: own(self.msgid),
            structured_data: own(self.structured_data),
            message: Cow::Owned(self.message.into_owned()),
        }
    }
}

fn nil(field: &str) -> Option<Cow<'_, str>> {
    (field != "-").then_some(Cow::Borrowed(field))
}

/// Parses `<PRI>`; returns facility, severity and the rest.
fn priority(input: &str) -> Result<(u8, u8, &str), FrameError> {
    let rest = input.strip_prefix('<').ok_or(FrameError::Malformed(
        "syslog message must start with <PRI>",
    ))?;
    // A byte loop over at most four bytes: `str::find` of a char costs more than the whole
    // PRI (it was 5% of logd's CPU on syslog ingest).
    let end = rest
        .bytes()
        .take(4)
        .position(|b| b == b'>')
        .filter(|&e| (1..=3).contains(&e))
        .ok_or(FrameError::Malformed("bad PRI"))?;
    let digits = &rest[..end];
    if !digits.bytes().all(|b| b.is_ascii_digit()) || (digits.len() > 1 && digits.starts_with('0'))
    {
        return Err(FrameError::Malformed("bad PRI"));
    }
    let pri: u16 = digits
        .parse()
        .map_err(|_| FrameError::Malformed("bad PRI"))?;
    if pri > 191 {
        return Err(FrameError::Malformed("PRI out of range"));
    }
    Ok(((pri / 8) as u8, (pri % 8) as u8, &rest[end + 1..]))
}

/// Splits off one space-terminated field.
///
/// Header fields are short (at most 48 bytes but the timestamp's 32 and the host's 255): a
/// plain byte loop finds the space sooner than `str::find`'s searcher, which was a fifth of
/// logd's CPU on syslog ingest.
fn field(input: &str) -> Result<(&str, &str), FrameError> {
    match input.bytes().position(|b| b == b' ') {
        Some(0) | None => Err(FrameError::Malformed("missing RFC 5424 header field")),
        Some(i) => Ok((&input[..i], &input[i + 1..])),
    }
}

/// Splits off RFC 5424 STRUCTURED-DATA: `-` or `[...]...` with `\]`, `\"`, `\\` escapes.
fn structured_data(input: &str) -> Result<(&str, &str), FrameError> {
    if let Some(rest) = input.strip_prefix('-') {
        return Ok(("-", rest));
    }
    let bytes = input.as_bytes();
    let mut i = 0;
    while i < bytes.len() && bytes[i] == b'[' {
        let mut in_quotes = false;
        i += 1;
        loop {
            match bytes.get(i) {
                None => return Err(FrameError::Malformed("unterminated structured data")),
                Some(b'\\') if in_quotes => i += 2,
                Some(b'"') => {
                    in_quotes = !in_quotes;
                    i += 1;
                }
                Some(b']') if !in_quotes => {
                    i += 1;
                    break;
                }
                Some(_) => i += 1,
            }
        }
    }
    if i == 0 {
        return Err(FrameError::Malformed("bad structured data"));
    }
    Ok((&input[..i], &input[i..]))
}

/// Parses one syslog message (without framing), in whichever dialect it is.
///
/// Bytes that are not UTF-8 become U+FFFD, as `String::from_utf8_lossy` makes them.
pub fn parse(raw: &[u8]) -> Result<SyslogMessage<'_>, FrameError> {
    match std::str::from_utf8(raw) {
        Ok(text) => parse_str(text),
        Err(_) => parse_str(&String::from_utf8_lossy(raw)).map(SyslogMessage::into_owned),
    }
}

/// [`parse`] for text already known to be UTF-8.
///
/// A message without `<PRI>` (one that does not start with `<`) is taken as RFC 3164 §4.3.3
/// says a relay takes it: facility user, severity notice, the whole text its content. One that
/// starts with `<` but whose PRI is not valid (`<999>`, `<1a>`) is refused: it claims a PRI.
pub fn parse_str(text: &str) -> Result<SyslogMessage<'_>, FrameError> {
    let text = text.trim_end_matches(['\n', '\r', '\0']);
    if text.is_empty() {
        return Err(FrameError::Malformed("empty syslog message"));
    }
    if !text.starts_with('<') {
        return Ok(parse_3164(USER, NOTICE, text));
    }
    let (facility, severity, rest) = priority(text)?;
    if let Some(after) = rest.strip_prefix("1 ") {
        let (timestamp, r) = field(after)?;
        let (hostname, r) = field(r)?;
        let (app, r) = field(r)?;
        let (procid, r) = field(r)?;
        let (msgid, r) = field(r)?;
        let (sd, r) = structured_data(r)?;
        let message = match r.strip_prefix(' ') {
            Some(m) => m.strip_prefix('\u{feff}').unwrap_or(m),
            None if r.is_empty() => "",
            None => return Err(FrameError::Malformed("no space after structured data")),
        };
        return Ok(SyslogMessage {
            dialect: Dialect::Rfc5424,
            facility,
            severity,
            timestamp: nil(timestamp),
            hostname: nil(hostname),
            app: nil(app),
            procid: nil(procid),
            msgid: nil(msgid),
            structured_data: nil(sd),
            message: Cow::Borrowed(message),
        });
    }
    Ok(parse_3164(facility, severity, rest))
}

/// Facility user (1), for messages without a PRI.
const USER: u8 = 1;
/// Severity notice (5), for messages without a PRI.
const NOTICE: u8 = 5;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// RFC 3164 is a description of practice, not a grammar: take what is recognisable and keep
/// the rest as the message, so that nothing a sender meant to log is lost.
fn parse_3164(facility: u8, severity: u8, rest: &str) -> SyslogMessage<'_> {
    let mut msg = SyslogMessage {
        dialect: Dialect::Rfc3164,
        facility,
        severity,
        timestamp: None,
        hostname: None,
        app: None,
        procid: None,
        msgid: None,
        structured_data: None,
        message: Cow::Borrowed(rest),
    };
    // "Mmm dd hh:mm:ss " is 16 bytes.
    let stamp_ok = rest.len() > 16
        && rest.is_char_boundary(16)
        && MONTHS
            .iter()
            .any(|m| rest.as_bytes().starts_with(m.as_bytes()))
        && rest.as_bytes()[3] == b' '
        && rest.as_bytes()[15] == b' '
        && rest.as_bytes()[9] == b':'
        && rest.as_bytes()[12] == b':';
    if !stamp_ok {
        return msg;
    }
    msg.timestamp = Some(Cow::Borrowed(&rest[..15]));
    let mut r = &rest[16..];
    // HOSTNAME then TAG: a tag ends with ':' or '['; a word ending that way right after the
    // timestamp is a tag with no host.
    if let Some(sp) = r.find(' ') {
        let word = &r[..sp];
        if !word.ends_with(':') && !word.contains('[') {
            msg.hostname = Some(Cow::Borrowed(word));
            r = &r[sp + 1..];
        }
    }
    let tag_end = r.find([':', '[', ' ']).unwrap_or(0);
    if tag_end > 0 && tag_end <= 48 {
        let tag = &r[..tag_end];
        let mut after = &r[tag_end..];
        if let Some(p) = after.strip_prefix('[')
            && let Some(close) = p.find(']')
        {
            msg.procid = Some(Cow::Borrowed(&p[..close]));
            after = &p[close + 1..];
        }
        if let Some(m) = after.strip_prefix(':') {
            msg.app = Some(Cow::Borrowed(tag));
            msg.message = Cow::Borrowed(m.strip_prefix(' ').unwrap_or(m));
            return msg;
        }
    }
    msg.message = Cow::Borrowed(r);
    msg
}

/// RFC 6587 framing on a TCP stream, detected per message: octet counting
/// (`LEN SP MSG`, a message starting with a digit) or non-transparent framing
/// (`MSG LF`, a message starting with `<`).
///
/// A message over `max_len` is an error. With newline framing the decoder skips to the next
/// newline and goes on, so one oversized message costs only itself. An octet count over
/// `max_len` is [`FrameError::OversizedCount`] and the framer is broken from then on (it
/// discards everything): skipping the counted bytes would let one forged count (`2147483648 `)
/// swallow every later record of the connection, so the connection must be closed instead.
///
/// Messages are taken by advancing an offset into the buffer, which is compacted once per
/// [`extend`](Self::extend), not once per message.
#[derive(Debug)]
pub struct SyslogFramer {
    buf: Vec<u8>,
    /// Bytes of `buf` already taken: the stream goes on at `buf[pos..]`.
    pos: usize,
    max_len: usize,
    /// Whether bytes are being dropped, and until where.
    skipping: Skip,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Skip {
    No,
    ToNewline,
    /// After an oversized octet count: the stream has no frame boundary left to find.
    Broken,
}

impl SyslogFramer {
    /// A framer accepting messages of at most `max_len` bytes.
    pub fn new(max_len: usize) -> Self {
        SyslogFramer {
            buf: Vec::new(),
            pos: 0,
            max_len,
            skipping: Skip::No,
        }
    }

    /// Appends bytes read from the connection.
    pub fn extend(&mut self, bytes: &[u8]) {
        if self.skipping == Skip::Broken {
            return;
        }
        if self.pos == self.buf.len() {
            self.buf.clear();
        } else if self.pos > 0 {
            self.buf.drain(..self.pos);
        }
        self.pos = 0;
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes held that do not yet form a whole message.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Drops every byte held.
    fn discard(&mut self) {
        self.pos = self.buf.len();
    }

    /// The next whole message, `Ok(None)` when more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<&[u8]>, FrameError> {
        loop {
            match self.skipping {
                Skip::Broken => {
                    self.discard();
                    return Ok(None);
                }
                Skip::ToNewline => match self.buf[self.pos..].iter().position(|&b| b == b'\n') {
                    Some(nl) => {
                        self.pos += nl + 1;
                        self.skipping = Skip::No;
                    }
                    None => {
                        self.discard();
                        return Ok(None);
                    }
                },
                Skip::No => break,
            }
        }
        // Tolerate stray line ends between messages.
        let start = self.buf[self.pos..]
            .iter()
            .position(|&b| !matches!(b, b'\n' | b'\r' | b'\0'))
            .unwrap_or(self.buffered());
        self.pos += start;
        let at = self.pos;
        let avail = &self.buf[at..];
        let Some(&first) = avail.first() else {
            return Ok(None);
        };
        if first.is_ascii_digit() {
            let Some(sp) = avail.iter().take(11).position(|&b| b == b' ') else {
                if avail.len() >= 11 || !avail.iter().all(u8::is_ascii_digit) {
                    self.discard();
                    return Err(FrameError::Malformed(
                        "octet count is not a number followed by a space",
                    ));
                }
                return Ok(None);
            };
            let digits = &avail[..sp];
            if !digits.iter().all(u8::is_ascii_digit) || (digits.len() > 1 && digits[0] == b'0') {
                self.discard();
                return Err(FrameError::Malformed(
                    "octet count is not a number followed by a space",
                ));
            }
            // At most 10 digits: fits a u64.
            let len = digits
                .iter()
                .fold(0u64, |n, &d| n * 10 + u64::from(d - b'0'));
            if usize::try_from(len).is_ok_and(|l| l <= self.max_len) {
                // Within the limit: go on below.
            } else {
                self.discard();
                self.skipping = Skip::Broken;
                return Err(FrameError::OversizedCount {
                    len,
                    max: self.max_len,
                });
            }
            let len = len as usize;
            if avail.len() < sp + 1 + len {
                return Ok(None);
            }
            self.pos = at + sp + 1 + len;
            return Ok(Some(&self.buf[at + sp + 1..at + sp + 1 + len]));
        }
        match avail.iter().position(|&b| b == b'\n') {
            Some(nl) if nl <= self.max_len => {
                self.pos = at + nl + 1;
                Ok(Some(&self.buf[at..at + nl]))
            }
            Some(nl) => {
                self.pos = at + nl + 1;
                Err(FrameError::TooLarge {
                    len: nl,
                    max: self.max_len,
                })
            }
            None if avail.len() > self.max_len => {
                let len = avail.len();
                self.discard();
                self.skipping = Skip::ToNewline;
                Err(FrameError::TooLarge {
                    len,
                    max: self.max_len,
                })
            }
            None => Ok(None),
        }
    }

    /// At end of stream, a newline-framed message without its final newline (not one that
    /// starts with a digit: that is an unfinished octet count).
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        let mut rest = std::mem::take(&mut self.buf);
        rest.drain(..std::mem::take(&mut self.pos));
        (self.skipping == Skip::No && rest.first().is_some_and(|b| !b.is_ascii_digit()))
            .then_some(rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc5424_with_structured_data_and_bom() {
        let m = parse(b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"App\\]lication\"] \xef\xbb\xbfAn application event").unwrap();
        assert_eq!((m.facility, m.severity), (20, 5));
        assert_eq!(m.hostname.as_deref(), Some("mymachine.example.com"));
        assert_eq!(m.app.as_deref(), Some("evntslog"));
        assert_eq!(m.procid, None);
        assert_eq!(m.msgid.as_deref(), Some("ID47"));
        assert!(
            m.structured_data
                .as_deref()
                .unwrap()
                .ends_with("lication\"]")
        );
        assert_eq!(m.message, "An application event");
    }

    #[test]
    fn rfc5424_nil_everything() {
        let m = parse(b"<13>1 - - - - - -").unwrap();
        assert_eq!(m.dialect, Dialect::Rfc5424);
        assert_eq!(
            (m.timestamp, m.hostname, m.message.as_ref()),
            (None, None, "")
        );
    }

    #[test]
    fn rfc3164_with_and_without_host_and_pid() {
        let m = parse(b"<34>Oct 11 22:14:15 mymachine su[123]: 'su root' failed").unwrap();
        assert_eq!(m.dialect, Dialect::Rfc3164);
        assert_eq!(m.hostname.as_deref(), Some("mymachine"));
        assert_eq!(m.app.as_deref(), Some("su"));
        assert_eq!(m.procid.as_deref(), Some("123"));
        assert_eq!(m.message, "'su root' failed");
        let m = parse(b"<13>Nov  6 05:50:00 cron: job done").unwrap();
        assert_eq!(
            (m.hostname, m.app.as_deref(), m.message.as_ref()),
            (None, Some("cron"), "job done")
        );
        let m = parse(b"<13>no timestamp at all").unwrap();
        assert_eq!(m.message, "no timestamp at all");
        // Found by the fuzzer: a multi-byte character where the month would be.
        let m = parse(b"<4>4\x8a\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff<}").unwrap();
        assert_eq!(m.dialect, Dialect::Rfc3164);
    }

    #[test]
    fn bad_priorities_are_errors() {
        for bad in [
            &b"<>x"[..],
            b"<192>x",
            b"<01>x",
            b"<1a>x",
            b"<1234>x",
            b"",
            b"\n\r\0",
            b"<",
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        assert!(parse(b"<13>1 2003-10-11T22:14:15Z host").is_err());
        assert!(parse(b"<13>1 - - - - - [unterminated").is_err());
    }

    /// RFC 3164 §4.3.3: no PRI, user.notice; a timestamp and host are still recognised.
    #[test]
    fn messages_without_pri_are_user_notice() {
        let m = parse(b"no pri at all\n").unwrap();
        assert_eq!((m.facility, m.severity), (1, 5));
        assert_eq!(m.dialect, Dialect::Rfc3164);
        assert_eq!(m.message, "no pri at all");
        let m = parse(b"Nov 14 22:13:20 gw-1 cron[7]: job done").unwrap();
        assert_eq!((m.facility, m.severity), (1, 5));
        assert_eq!(m.hostname.as_deref(), Some("gw-1"));
        assert_eq!(
            (m.app.as_deref(), m.procid.as_deref()),
            (Some("cron"), Some("7"))
        );
        assert_eq!(m.message, "job done");
        // Over TCP, at the end of the stream too.
        let mut f = SyslogFramer::new(100);
        f.extend(b"plain line\nlast one");
        assert_eq!(f.next_message().unwrap().unwrap(), b"plain line");
        assert_eq!(f.next_message().unwrap(), None);
        assert_eq!(f.finish().unwrap(), b"last one");
    }

    #[test]
    fn framing_mixes_octet_counting_and_newlines() {
        let mut f = SyslogFramer::new(100);
        f.extend(b"11 <13>1 - - -<13>plain one\n5 <1>xy");
        assert_eq!(f.next_message().unwrap().unwrap(), b"<13>1 - - -");
        assert_eq!(f.next_message().unwrap().unwrap(), b"<13>plain one");
        assert_eq!(f.next_message().unwrap().unwrap(), b"<1>xy");
        assert_eq!(f.next_message().unwrap(), None);
        f.extend(b"<13>tail without newline");
        assert_eq!(f.next_message().unwrap(), None);
        assert_eq!(f.finish().unwrap(), b"<13>tail without newline");
    }

    #[test]
    fn oversized_messages_cost_only_themselves() {
        let mut f = SyslogFramer::new(8);
        f.extend(b"<13>this line is far too long");
        assert!(matches!(f.next_message(), Err(FrameError::TooLarge { .. })));
        f.extend(b" still the same line\n<1>ok\n");
        assert_eq!(f.next_message().unwrap().unwrap(), b"<1>ok");
        let mut f = SyslogFramer::new(8);
        f.extend(b"12x <13>");
        assert!(f.next_message().is_err());
    }

    #[test]
    fn an_oversized_octet_count_breaks_the_stream_instead_of_skipping() {
        for count in ["22", "2147483648", "4294967296", "9999999999"] {
            let mut f = SyslogFramer::new(8);
            f.extend(format!("{count} <13>twenty bytes long!<1>ok\n").as_bytes());
            let len: u64 = count.parse().unwrap();
            assert_eq!(
                f.next_message(),
                Err(FrameError::OversizedCount { len, max: 8 })
            );
            // Whatever follows is never taken for a message, and nothing is kept.
            f.extend(b"<1>ok\n2 <1>\n");
            assert_eq!(f.next_message(), Ok(None));
            assert_eq!(f.buffered(), 0);
            assert_eq!(f.finish(), None);
        }
        // Exactly the limit is fine, one more is not; a count split across reads too.
        let mut f = SyslogFramer::new(8);
        f.extend(b"8 <13>abcd9");
        assert_eq!(f.next_message().unwrap().unwrap(), b"<13>abcd");
        f.extend(b" <13>abcde");
        assert!(matches!(
            f.next_message(),
            Err(FrameError::OversizedCount { len: 9, .. })
        ));
    }
}
