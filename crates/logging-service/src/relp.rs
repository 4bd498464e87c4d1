//! RELP, the Reliable Event Logging Protocol of rsyslog (librelp): the frame codec, the
//! `open` offer and the `rsp` answer, shared by logd's RELP listener and its forwarder.
//!
//! A frame is `TXNR SP COMMAND SP DATALEN [SP DATA] LF`: a transaction number (1 to
//! 999,999,999; 0 only for the unsolicited `serverclose`), a command of letters, the length
//! of DATA in decimal (at most 9 digits), and DATA itself, absent when the length is 0.
//! The client sends `open` (its offers), then `syslog` frames, then `close`; the server
//! answers each with an `rsp` frame of the same TXNR whose data starts with a status code
//! (`200 OK`, `500 ...`). A sender may keep many frames unanswered (its window) and must
//! send again every frame not answered when a session breaks.
//!
//! [`RelpDecoder`] parses incrementally, as bytes arrive, and never holds more than one
//! frame of at most `max_data` bytes of DATA plus a bounded header: a frame it cannot parse
//! is an error after which the stream cannot be resynchronised (RELP has no frame marker).
//!
//! ```
//! use logging_service::relp::{Command, RelpDecoder, encode};
//!
//! let mut wire = Vec::new();
//! encode(&mut wire, 7, Command::Syslog, b"<13>1 - h app - - - hi");
//! assert_eq!(wire, b"7 syslog 22 <13>1 - h app - - - hi\n");
//!
//! let mut d = RelpDecoder::new(1024);
//! d.extend(&wire[..10]); // a frame may arrive in pieces
//! assert!(d.next_frame().unwrap().is_none());
//! d.extend(&wire[10..]);
//! let f = d.next_frame().unwrap().unwrap();
//! assert_eq!((f.txnr, f.command, f.data), (7, Command::Syslog, &b"<13>1 - h app - - - hi"[..]));
//! ```

use std::fmt;

/// The largest transaction number (9 decimal digits).
pub const MAX_TXNR: u32 = 999_999_999;
/// The most digits of TXNR and DATALEN.
pub const MAX_DIGITS: usize = 9;
/// The longest command name (librelp's limit).
pub const MAX_COMMAND: usize = 32;

/// The offer logd sends (as a client) and answers (as a server) in `open`.
pub const RELP_VERSION: &str = "0";

/// A RELP command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// Opens a session; DATA holds the offers.
    Open,
    /// One syslog message.
    Syslog,
    /// Ends a session (from the client).
    Close,
    /// The answer to a frame of the same TXNR.
    Rsp,
    /// The server is about to close the session (a hint, TXNR 0).
    ServerClose,
    /// A command logd does not know (answered `500`).
    Other,
}

impl Command {
    /// The command's name on the wire (`Other` has none of its own; it is written as `other`).
    pub fn name(self) -> &'static str {
        match self {
            Command::Open => "open",
            Command::Syslog => "syslog",
            Command::Close => "close",
            Command::Rsp => "rsp",
            Command::ServerClose => "serverclose",
            Command::Other => "other",
        }
    }

    fn from_name(name: &[u8]) -> Command {
        match name {
            b"open" => Command::Open,
            b"syslog" => Command::Syslog,
            b"close" => Command::Close,
            b"rsp" => Command::Rsp,
            b"serverclose" => Command::ServerClose,
            _ => Command::Other,
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a RELP stream cannot be read further. After any of these the session must close:
/// RELP has no marker to find the next frame by.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RelpError {
    /// TXNR is not 1 to 9 decimal digits.
    #[error("bad transaction number")]
    BadTxnr,
    /// The command is empty, longer than 32 bytes or not letters.
    #[error("bad command")]
    BadCommand,
    /// DATALEN is not 1 to 9 decimal digits.
    #[error("bad data length")]
    BadDataLen,
    /// DATALEN is larger than the limit (`--max-frame`).
    #[error("data length {len} exceeds the limit of {max}")]
    TooLarge {
        /// The announced length.
        len: u64,
        /// The limit.
        max: usize,
    },
    /// A field separator or the trailer is not where it must be.
    #[error("expected {0}")]
    Expected(&'static str),
    /// The data of an `rsp` frame does not start with a three-digit status code.
    #[error("bad response: {0}")]
    BadResponse(String),
}

/// One decoded frame, borrowing the decoder's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The transaction number.
    pub txnr: u32,
    /// The command.
    pub command: Command,
    /// The command's name as sent (differs from [`Command::name`] for `Other`).
    pub name: &'a [u8],
    /// DATA (empty when DATALEN is 0).
    pub data: &'a [u8],
}

/// An incremental RELP frame parser with bounded memory. See the [module docs](self).
#[derive(Debug)]
pub struct RelpDecoder {
    buf: Vec<u8>,
    /// Start of the unparsed bytes in `buf`.
    start: usize,
    max_data: usize,
}

/// The longest header: TXNR, SP, command, SP, DATALEN, SP.
const MAX_HEADER: usize = MAX_DIGITS + 1 + MAX_COMMAND + 1 + MAX_DIGITS + 1;

/// Parses a run of 1 to 9 decimal digits ending at a space or, when `lf_ok`, at a newline;
/// `Ok(None)` when `bytes` ends before the terminator.
fn number(bytes: &[u8], lf_ok: bool, err: RelpError) -> Result<Option<(u64, usize)>, RelpError> {
    let mut n = 0u64;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'0'..=b'9' if i < MAX_DIGITS => n = n * 10 + u64::from(b - b'0'),
            b' ' if i > 0 => return Ok(Some((n, i))),
            b'\n' if i > 0 && lf_ok => return Ok(Some((n, i))),
            _ => return Err(err),
        }
    }
    if bytes.len() > MAX_DIGITS {
        return Err(err);
    }
    Ok(None)
}

impl RelpDecoder {
    /// Frames with at most `max_data` bytes of DATA.
    pub fn new(max_data: usize) -> Self {
        RelpDecoder {
            buf: Vec::new(),
            start: 0,
            max_data,
        }
    }

    /// Appends bytes read from the stream.
    pub fn extend(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > 64 * 1024 && self.start * 2 > self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes held that do not form a whole frame yet.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The next whole frame, `Ok(None)` when more bytes are needed, or an error after which
    /// the stream is lost. A frame's header and its announced length are checked as soon as
    /// they arrive, so an oversized or hostile frame is refused before its data is read.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, RelpError> {
        let b = &self.buf[self.start..];
        let Some((txnr, t)) = number(b, false, RelpError::BadTxnr)? else {
            return Ok(None);
        };
        let rest = &b[t + 1..];
        let cmd_len = match rest.iter().position(|&c| c == b' ') {
            Some(n) => n,
            None if rest.len() > MAX_COMMAND || !rest.iter().all(u8::is_ascii_alphabetic) => {
                return Err(RelpError::BadCommand);
            }
            None => return Ok(None),
        };
        let name = &rest[..cmd_len];
        if name.is_empty() || name.len() > MAX_COMMAND || !name.iter().all(u8::is_ascii_alphabetic)
        {
            return Err(RelpError::BadCommand);
        }
        let rest = &rest[cmd_len + 1..];
        let Some((len, l)) = number(rest, true, RelpError::BadDataLen)? else {
            return Ok(None);
        };
        if len > self.max_data as u64 {
            return Err(RelpError::TooLarge {
                len,
                max: self.max_data,
            });
        }
        let header = t + 1 + cmd_len + 1 + l;
        debug_assert!(header <= MAX_HEADER);
        let len = len as usize;
        // DATALEN 0: the trailer follows at once; otherwise SP, DATA, LF.
        let (data_start, frame_len) = if len == 0 {
            (header, header + 1)
        } else {
            if b[header] != b' ' {
                return Err(RelpError::Expected("a space before the data"));
            }
            (header + 1, header + 1 + len + 1)
        };
        if b.len() < frame_len {
            return Ok(None);
        }
        if b[frame_len - 1] != b'\n' {
            return Err(RelpError::Expected("a newline after the data"));
        }
        let txnr = txnr as u32; // 9 digits fit
        let start = self.start;
        self.start += frame_len;
        let b = &self.buf[start..start + frame_len];
        Ok(Some(Frame {
            txnr,
            command: Command::from_name(name_range(b, t, cmd_len)),
            name: name_range(b, t, cmd_len),
            data: &b[data_start..data_start + len],
        }))
    }
}

fn name_range(frame: &[u8], t: usize, cmd_len: usize) -> &[u8] {
    &frame[t + 1..t + 1 + cmd_len]
}

/// Appends one frame to `out`.
pub fn encode(out: &mut Vec<u8>, txnr: u32, command: Command, data: &[u8]) {
    use std::io::Write;
    let _ = write!(out, "{txnr} {} {}", command.name(), data.len());
    if !data.is_empty() {
        out.push(b' ');
        out.extend_from_slice(data);
    }
    out.push(b'\n');
}

/// Appends an `rsp` frame answering `txnr` with `code` and `text` (and more lines, for `open`).
pub fn encode_rsp(out: &mut Vec<u8>, txnr: u32, code: u16, text: &str) {
    encode(out, txnr, Command::Rsp, format!("{code} {text}").as_bytes());
}

/// The offers of an `open` frame: `relp_version`, `relp_software`, `commands=syslog`.
pub fn offers(software: &str) -> String {
    format!("relp_version={RELP_VERSION}\nrelp_software={software}\ncommands=syslog")
}

/// Whether the offers of an `open` frame include the `syslog` command.
pub fn offers_syslog(data: &[u8]) -> bool {
    data.split(|&b| b == b'\n').any(|line| {
        line.strip_prefix(b"commands=")
            .is_some_and(|v| v.split(|&b| b == b',').any(|c| c == b"syslog"))
    })
}

/// The data of an `rsp` frame: its status code and the rest of its first line.
pub fn parse_rsp(data: &[u8]) -> Result<(u16, &[u8]), RelpError> {
    let bad =
        || RelpError::BadResponse(String::from_utf8_lossy(&data[..data.len().min(40)]).into());
    let code = data.get(..3).ok_or_else(bad)?;
    if !code.iter().all(u8::is_ascii_digit) || data.get(3).is_some_and(|&b| b != b' ' && b != b'\n')
    {
        return Err(bad());
    }
    let code = code.iter().fold(0u16, |n, &d| n * 10 + u16::from(d - b'0'));
    let rest = data.get(4..).unwrap_or_default();
    let line = rest.split(|&b| b == b'\n').next().unwrap_or_default();
    Ok((code, line))
}

/// Strips RFC 6587's octet count (`LEN SP`) off a record as the spool keeps it, leaving the
/// syslog message that a RELP `syslog` frame carries. A record without one is returned whole.
pub fn strip_octet_count(record: &[u8]) -> &[u8] {
    match number(record, false, RelpError::BadDataLen) {
        Ok(Some((n, i))) if record.len() == i + 1 + n as usize => &record[i + 1..],
        _ => record,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode_all(wire: &[u8], max: usize) -> Result<Vec<(u32, Command, Vec<u8>)>, RelpError> {
        let mut d = RelpDecoder::new(max);
        d.extend(wire);
        let mut out = Vec::new();
        while let Some(f) = d.next_frame()? {
            out.push((f.txnr, f.command, f.data.to_vec()));
        }
        Ok(out)
    }

    #[test]
    fn decodes_librelp_frames() {
        let offer = b"relp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog";
        let mut wire = format!("1 open {} ", offer.len()).into_bytes();
        wire.extend_from_slice(offer);
        wire.extend_from_slice(b"\n2 syslog 5 hello\n3 close 0\n0 serverclose 0\n");
        let frames = decode_all(&wire, 1024).unwrap();
        assert_eq!(frames.len(), 4);
        assert_eq!(frames[0].1, Command::Open);
        assert!(offers_syslog(&frames[0].2));
        assert_eq!(frames[1], (2, Command::Syslog, b"hello".to_vec()));
        assert_eq!(frames[2], (3, Command::Close, Vec::new()));
        assert_eq!(frames[3], (0, Command::ServerClose, Vec::new()));
    }

    #[test]
    fn answers_and_offers() {
        let mut out = Vec::new();
        encode_rsp(&mut out, 12, 200, "OK");
        assert_eq!(out, b"12 rsp 6 200 OK\n");
        assert_eq!(parse_rsp(b"200 OK").unwrap(), (200, &b"OK"[..]));
        assert_eq!(
            parse_rsp(b"200 OK\nrelp_version=0").unwrap(),
            (200, &b"OK"[..])
        );
        assert_eq!(parse_rsp(b"500 no").unwrap().0, 500);
        assert!(parse_rsp(b"").is_err());
        assert!(parse_rsp(b"2x0 OK").is_err());
        assert!(parse_rsp(b"2000").is_err());
        assert!(offers_syslog(offers("logd,1").as_bytes()));
        assert!(!offers_syslog(b"relp_version=0\ncommands=other"));
        assert_eq!(strip_octet_count(b"5 hello"), b"hello");
        assert_eq!(strip_octet_count(b"6 hello"), b"6 hello");
        assert_eq!(strip_octet_count(b"<13>hi"), b"<13>hi");
    }

    #[test]
    fn unknown_commands_decode_as_other() {
        let f = decode_all(b"4 starttls 0\n", 16).unwrap();
        assert_eq!(f[0].1, Command::Other);
    }

    #[test]
    fn malformed_frames_are_errors() {
        let cases: [(&[u8], RelpError); 10] = [
            (b"x syslog 1 a\n", RelpError::BadTxnr),
            (b" 1 syslog 1 a\n", RelpError::BadTxnr),
            (b"1  syslog 1 a\n", RelpError::BadCommand),
            (b"1 sys1og 1 a\n", RelpError::BadCommand),
            (b"1 syslog x a\n", RelpError::BadDataLen),
            (b"1 syslog -1 a\n", RelpError::BadDataLen),
            (b"1 syslog 1a\n", RelpError::BadDataLen),
            (
                b"1 syslog 2\nab\n",
                RelpError::Expected("a space before the data"),
            ),
            (
                b"1 syslog 1 ab\n",
                RelpError::Expected("a newline after the data"),
            ),
            (
                b"1 syslog 0 \n",
                RelpError::Expected("a newline after the data"),
            ),
        ];
        for (wire, want) in cases {
            let mut d = RelpDecoder::new(64);
            d.extend(wire);
            d.extend(b"\n\n");
            assert_eq!(
                d.next_frame().map(|_| ()),
                Err(want),
                "{:?}",
                String::from_utf8_lossy(wire)
            );
        }
    }

    #[test]
    fn oversized_and_hostile_lengths_are_refused_before_the_data() {
        let mut d = RelpDecoder::new(100);
        d.extend(b"1 syslog 101 ");
        assert_eq!(
            d.next_frame().map(|_| ()),
            Err(RelpError::TooLarge { len: 101, max: 100 })
        );
        // Ten digits: more than RELP allows, refused without waiting for the end.
        let mut d = RelpDecoder::new(usize::MAX);
        d.extend(b"1 syslog 1000000000");
        assert_eq!(d.next_frame().map(|_| ()), Err(RelpError::BadDataLen));
        let mut d = RelpDecoder::new(100);
        d.extend(b"1234567890");
        assert_eq!(d.next_frame().map(|_| ()), Err(RelpError::BadTxnr));
        let mut d = RelpDecoder::new(100);
        d.extend(&[b'a'; 40]);
        d.extend(b"1 ");
        assert!(d.next_frame().is_err());
        let mut d = RelpDecoder::new(100);
        d.extend(b"1 ");
        d.extend(&[b'a'; 33]);
        assert_eq!(d.next_frame().map(|_| ()), Err(RelpError::BadCommand));
    }

    #[test]
    fn truncated_frames_wait_for_more() {
        let wire = b"123 syslog 11 hello world\n";
        for cut in 0..wire.len() {
            let mut d = RelpDecoder::new(64);
            d.extend(&wire[..cut]);
            assert_eq!(d.next_frame(), Ok(None), "cut at {cut}");
            assert_eq!(d.buffered(), cut);
            d.extend(&wire[cut..]);
            assert_eq!(d.next_frame().unwrap().unwrap().data, b"hello world");
            assert_eq!(d.buffered(), 0);
        }
    }

    #[test]
    fn the_buffer_stays_bounded_over_a_long_stream() {
        let mut d = RelpDecoder::new(64);
        let mut wire = Vec::new();
        encode(&mut wire, 1, Command::Syslog, &[b'x'; 60]);
        for _ in 0..10_000 {
            d.extend(&wire);
            assert!(d.next_frame().unwrap().is_some());
        }
        assert!(d.buf.capacity() < 256 * 1024);
    }

    proptest! {
        /// Whatever frames are encoded, in whatever chunks they arrive, they decode back.
        #[test]
        fn round_trip(
            frames in proptest::collection::vec(
                (0..=MAX_TXNR, 0usize..5, proptest::collection::vec(any::<u8>(), 0..200)), 1..20),
            chunk in 1usize..50,
        ) {
            let cmds = [Command::Open, Command::Syslog, Command::Close, Command::Rsp, Command::ServerClose];
            let mut wire = Vec::new();
            for (t, c, data) in &frames {
                encode(&mut wire, *t, cmds[*c], data);
            }
            let mut d = RelpDecoder::new(200);
            let mut got = Vec::new();
            for piece in wire.chunks(chunk) {
                d.extend(piece);
                while let Some(f) = d.next_frame().unwrap() {
                    got.push((f.txnr, f.command, f.data.to_vec()));
                }
            }
            let want: Vec<_> = frames.iter().map(|(t, c, d)| (*t, cmds[*c], d.clone())).collect();
            prop_assert_eq!(got, want);
            prop_assert_eq!(d.buffered(), 0);
        }

        /// Arbitrary bytes never panic, and never make the decoder hold more than a frame.
        #[test]
        fn hostile_bytes_are_bounded(wire in proptest::collection::vec(any::<u8>(), 0..400)) {
            let mut d = RelpDecoder::new(64);
            d.extend(&wire);
            loop {
                match d.next_frame() {
                    Ok(Some(f)) => prop_assert!(f.data.len() <= 64),
                    Ok(None) => { prop_assert!(d.buffered() <= MAX_HEADER + 64 + 1); break }
                    Err(_) => break,
                }
            }
        }
    }
}
