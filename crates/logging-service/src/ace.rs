//! ACE's logging wire format: an 8-byte CDR header, then a CDR-encoded `ACE_Log_Record`.
//!
//! ```text
//! header  (8 bytes):  byte-order flag (0 big, 1 little) | 3 pad bytes (ignored) | ULong payload length
//! payload (current ACE): Long type | Long pid | LongLong seconds | Long microseconds | ULong n | n chars (NUL-terminated)
//! payload (older ACE):   Long type | Long pid | Long seconds     | Long microseconds | ULong n | n chars
//! ```
//!
//! The payload is its own CDR stream, so the `LongLong` at offset 8 is already 8-aligned and
//! neither layout has padding. The layouts are told apart by the payload length: the
//! message length field must make the payload add up exactly.

use crate::error::FrameError;

/// CDR byte order of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteOrder {
    /// Flag 0.
    Big,
    /// Flag 1.
    Little,
}

/// Width of the seconds field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecondsLayout {
    /// `LongLong` seconds (ACE 6 and later).
    Wide,
    /// `Long` seconds (older ACE).
    Narrow,
}

/// One decoded `ACE_Log_Record`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AceRecord {
    /// ACE's `ACE_Log_Priority` bit (`LM_INFO` = 8, `LM_ERROR` = 128, ...).
    pub priority: u32,
    /// Process id of the sender.
    pub pid: i32,
    /// Seconds since the epoch.
    pub seconds: i64,
    /// Microseconds within the second.
    pub micros: i32,
    /// The message, without its terminating NUL.
    pub message: String,
}

/// A decoded `ACE_Log_Record` borrowing its message from the frame: what the server stores
/// from, without copying the message first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AceView<'a> {
    /// ACE's `ACE_Log_Priority` bit.
    pub priority: u32,
    /// Process id of the sender.
    pub pid: i32,
    /// Seconds since the epoch.
    pub seconds: i64,
    /// Microseconds within the second (checked: `0..1_000_000`).
    pub micros: i32,
    /// The message bytes, without the terminating NUL; not checked to be UTF-8.
    pub message: &'a [u8],
}

impl AceView<'_> {
    /// The record, owning its message (bytes that are not UTF-8 become U+FFFD).
    pub fn to_record(&self) -> AceRecord {
        AceRecord {
            priority: self.priority,
            pid: self.pid,
            seconds: self.seconds,
            micros: self.micros,
            message: String::from_utf8_lossy(self.message).into_owned(),
        }
    }
}

/// The header's size.
pub const HEADER_LEN: usize = 8;

struct Reader<'a> {
    buf: &'a [u8],
    order: ByteOrder,
}

impl Reader<'_> {
    fn u32_at(&self, at: usize) -> u32 {
        let b: [u8; 4] = self.buf[at..at + 4]
            .try_into()
            .expect("length checked by caller");
        match self.order {
            ByteOrder::Big => u32::from_be_bytes(b),
            ByteOrder::Little => u32::from_le_bytes(b),
        }
    }

    fn i64_at(&self, at: usize) -> i64 {
        let b: [u8; 8] = self.buf[at..at + 8]
            .try_into()
            .expect("length checked by caller");
        match self.order {
            ByteOrder::Big => i64::from_be_bytes(b),
            ByteOrder::Little => i64::from_le_bytes(b),
        }
    }
}

/// Reads a header: the byte order and the payload length (checked against `max_payload`).
pub fn decode_header(
    header: &[u8; HEADER_LEN],
    max_payload: usize,
) -> Result<(ByteOrder, usize), FrameError> {
    let order = match header[0] {
        0 => ByteOrder::Big,
        1 => ByteOrder::Little,
        other => return Err(FrameError::BadByteOrder(other)),
    };
    // Bytes 1..4 are CDR alignment padding; ACE's own client leaves them uninitialised.
    let len = Reader { buf: header, order }.u32_at(4) as usize;
    if len > max_payload {
        return Err(FrameError::TooLarge {
            len,
            max: max_payload,
        });
    }
    Ok((order, len))
}

/// Decodes a payload of the given byte order, in whichever seconds layout makes it add up.
pub fn decode_payload(payload: &[u8], order: ByteOrder) -> Result<AceRecord, FrameError> {
    decode_view(payload, order).map(|v| v.to_record())
}

/// [`decode_payload`] without copying the message.
pub fn decode_view(payload: &[u8], order: ByteOrder) -> Result<AceView<'_>, FrameError> {
    let r = Reader {
        buf: payload,
        order,
    };
    let fits = |fixed: usize| {
        payload.len() >= fixed && r.u32_at(fixed - 4) as usize == payload.len() - fixed
    };
    let (seconds, micros, fixed) = if fits(24) {
        (r.i64_at(8), r.u32_at(16) as i32, 24)
    } else if fits(20) {
        (i64::from(r.u32_at(8) as i32), r.u32_at(12) as i32, 20)
    } else if payload.len() < 20 {
        return Err(FrameError::Truncated {
            len: payload.len(),
            need: 20,
        });
    } else {
        return Err(FrameError::Malformed(
            "message length does not match the payload length",
        ));
    };
    if !(0..1_000_000).contains(&micros) {
        return Err(FrameError::Malformed("microseconds out of range"));
    }
    let raw = &payload[fixed..];
    let text = match memchr::memchr(0, raw) {
        Some(nul) => &raw[..nul],
        None => raw,
    };
    Ok(AceView {
        priority: r.u32_at(0),
        pid: r.u32_at(4) as i32,
        seconds,
        micros,
        message: text,
    })
}

/// Encodes a record as ACE does: header plus payload, message NUL-terminated.
pub fn encode(record: &AceRecord, order: ByteOrder, layout: SecondsLayout) -> Vec<u8> {
    let u32b = |v: u32| match order {
        ByteOrder::Big => v.to_be_bytes(),
        ByteOrder::Little => v.to_le_bytes(),
    };
    let mut payload = Vec::with_capacity(24 + record.message.len() + 1);
    payload.extend(u32b(record.priority));
    payload.extend(u32b(record.pid as u32));
    match layout {
        SecondsLayout::Wide => payload.extend(match order {
            ByteOrder::Big => record.seconds.to_be_bytes(),
            ByteOrder::Little => record.seconds.to_le_bytes(),
        }),
        SecondsLayout::Narrow => payload.extend(u32b(record.seconds as i32 as u32)),
    }
    payload.extend(u32b(record.micros as u32));
    payload.extend(u32b(record.message.len() as u32 + 1));
    payload.extend(record.message.as_bytes());
    payload.push(0);
    let mut frame = Vec::with_capacity(HEADER_LEN + payload.len());
    frame.push(match order {
        ByteOrder::Big => 0,
        ByteOrder::Little => 1,
    });
    frame.extend([0, 0, 0]);
    frame.extend(u32b(payload.len() as u32));
    frame.extend(payload);
    frame
}

/// A streaming decoder: feed it bytes as they arrive, take records out.
///
/// It never buffers more than one frame (at most [`HEADER_LEN`] + `max_payload` bytes), and
/// a bad header is an error from which the stream cannot resynchronise (ACE frames carry
/// no marker): the connection should be closed. A bad payload is an error for that record
/// only; decoding goes on with the next frame.
///
/// Frames are taken by advancing an offset into the buffer, which is compacted once per
/// [`extend`](Self::extend), not once per frame.
#[derive(Debug)]
pub struct AceDecoder {
    buf: Vec<u8>,
    /// Bytes of `buf` already taken: the stream goes on at `buf[pos..]`.
    pos: usize,
    max_payload: usize,
}

impl AceDecoder {
    /// A decoder refusing payloads larger than `max_payload` bytes.
    pub fn new(max_payload: usize) -> Self {
        AceDecoder {
            buf: Vec::new(),
            pos: 0,
            max_payload,
        }
    }

    /// Bytes held that do not yet form a whole frame.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Appends bytes read from the connection.
    pub fn extend(&mut self, bytes: &[u8]) {
        if self.pos == self.buf.len() {
            self.buf.clear();
        } else if self.pos > 0 {
            self.buf.drain(..self.pos);
        }
        self.pos = 0;
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete record, `Ok(None)` when more bytes are needed.
    pub fn next_record(&mut self) -> Result<Option<AceRecord>, FrameError> {
        self.next_view().map(|v| v.map(|v| v.to_record()))
    }

    /// [`next_record`](Self::next_record), borrowing the message from the decoder's buffer.
    pub fn next_view(&mut self) -> Result<Option<AceView<'_>>, FrameError> {
        let avail = &self.buf[self.pos..];
        let Some(header) = avail.first_chunk::<HEADER_LEN>() else {
            return Ok(None);
        };
        let (order, len) = decode_header(header, self.max_payload)?;
        if avail.len() < HEADER_LEN + len {
            return Ok(None);
        }
        let start = self.pos + HEADER_LEN;
        self.pos = start + len;
        decode_view(&self.buf[start..start + len], order).map(Some)
    }
}

/// ACE's priority bit to a syslog severity (0 emergency .. 7 debug).
pub fn severity_of(priority: u32) -> u8 {
    match priority {
        0x001 | 0x002 => 7, // LM_SHUTDOWN, LM_TRACE
        0x004 => 7,         // LM_DEBUG
        0x008 => 6,         // LM_INFO
        0x010 => 5,         // LM_NOTICE
        0x020 => 4,         // LM_WARNING
        0x040 => 6,         // LM_STARTUP
        0x080 => 3,         // LM_ERROR
        0x100 => 2,         // LM_CRITICAL
        0x200 => 1,         // LM_ALERT
        0x400 => 0,         // LM_EMERGENCY
        _ => 6,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(msg: &str) -> AceRecord {
        AceRecord {
            priority: 8,
            pid: 42,
            seconds: 1_700_000_000,
            micros: 5,
            message: msg.into(),
        }
    }

    #[test]
    fn both_orders_and_layouts_round_trip() {
        for order in [ByteOrder::Big, ByteOrder::Little] {
            for layout in [SecondsLayout::Wide, SecondsLayout::Narrow] {
                let frame = encode(&rec("héllo"), order, layout);
                let mut d = AceDecoder::new(1024);
                d.extend(&frame);
                assert_eq!(
                    d.next_record().unwrap(),
                    Some(rec("héllo")),
                    "{order:?} {layout:?}"
                );
                assert_eq!(d.buffered(), 0);
            }
        }
    }

    #[test]
    fn byte_at_a_time_and_empty_message() {
        let frame = encode(&rec(""), ByteOrder::Little, SecondsLayout::Wide);
        let mut d = AceDecoder::new(1024);
        for (i, b) in frame.iter().enumerate() {
            d.extend(&[*b]);
            let got = d.next_record().unwrap();
            assert_eq!(got.is_some(), i == frame.len() - 1);
        }
    }

    #[test]
    fn hostile_headers_and_payloads_are_errors() {
        let mut d = AceDecoder::new(64);
        d.extend(&[7, 0, 0, 0, 0, 0, 0, 0]);
        assert!(matches!(d.next_record(), Err(FrameError::BadByteOrder(7))));
        let mut d = AceDecoder::new(64);
        d.extend(&[1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        assert!(matches!(d.next_record(), Err(FrameError::TooLarge { .. })));
        // Message length that lies about the payload.
        let mut frame = encode(&rec("abc"), ByteOrder::Little, SecondsLayout::Wide);
        frame[28] = 200;
        let mut d = AceDecoder::new(1024);
        d.extend(&frame);
        d.extend(&encode(
            &rec("next"),
            ByteOrder::Little,
            SecondsLayout::Wide,
        ));
        assert!(matches!(d.next_record(), Err(FrameError::Malformed(_))));
        assert_eq!(
            d.next_record().unwrap(),
            Some(rec("next")),
            "a bad payload loses only itself"
        );
        // Too short for any layout.
        let mut d = AceDecoder::new(1024);
        d.extend(&[1, 0, 0, 0, 3, 0, 0, 0, 1, 2, 3]);
        assert!(matches!(d.next_record(), Err(FrameError::Truncated { .. })));
    }
}
