//! A length-prefixed frame that carries an ACT, and its decoder for untrusted input.
//!
//! Wire format, big-endian: `u32` payload length, `u64` ACT, then the payload.
//! The service treats the ACT as 8 opaque bytes and copies it into its response.

use crate::ActError;

/// Bytes before the payload: the length and the ACT.
pub const HEADER_LEN: usize = 12;

/// The default largest payload a [`FrameDecoder`] accepts: 64 KiB.
pub const DEFAULT_MAX_PAYLOAD: usize = 64 * 1024;

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The ACT, as sent (a [`CompletionToken::to_raw`](crate::CompletionToken::to_raw) value
    /// for a request; the same value, copied, in its response).
    pub act: u64,
    /// The payload.
    pub payload: Vec<u8>,
}

/// Appends the frame for (`act`, `payload`) to `out`.
/// A payload longer than `u32::MAX` bytes is refused with [`ActError::Oversized`].
///
/// ```
/// use act::frame::{encode, FrameDecoder};
///
/// let mut wire = Vec::new();
/// encode(0xfeed, b"GET a", &mut wire).unwrap();
/// let mut decoder = FrameDecoder::default();
/// decoder.push(&wire);
/// let frame = decoder.decode().unwrap().unwrap();
/// assert_eq!((frame.act, &frame.payload[..]), (0xfeed, &b"GET a"[..]));
/// ```
pub fn encode(act: u64, payload: &[u8], out: &mut Vec<u8>) -> Result<(), ActError> {
    let len = u32::try_from(payload.len()).map_err(|_| ActError::Oversized {
        len: payload.len() as u64,
        max: u32::MAX as usize,
    })?;
    out.reserve(HEADER_LEN + payload.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&act.to_be_bytes());
    out.extend_from_slice(payload);
    Ok(())
}

/// An incremental decoder: bytes go in as they arrive ([`push`](Self::push)), whole frames
/// come out ([`decode`](Self::decode)).
///
/// Input is untrusted: a length above the limit is refused as soon as the header arrives,
/// before any of the payload is buffered, and the decoder then stays failed (the stream is
/// out of sync and must be closed). Memory stays within one maximal frame plus whatever a
/// single `push` adds, provided the caller decodes after each push.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    start: usize,
    max_payload: usize,
    failed: Option<ActError>,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::with_max_payload(DEFAULT_MAX_PAYLOAD)
    }
}

impl FrameDecoder {
    /// A decoder refusing payloads longer than `max_payload` bytes.
    pub fn with_max_payload(max_payload: usize) -> Self {
        FrameDecoder {
            buf: Vec::new(),
            start: 0,
            max_payload,
            failed: None,
        }
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > self.max_payload {
            // Shift the unread tail to the front now and then, not on every frame.
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole frame; `Ok(None)` when more bytes are needed.
    pub fn decode(&mut self) -> Result<Option<Frame>, ActError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let pending = &self.buf[self.start..];
        let Some(header) = pending.get(..HEADER_LEN) else {
            return Ok(None);
        };
        let (len, act) = header.split_at(4);
        let len = u32::from_be_bytes(len.try_into().expect("4 bytes")) as usize;
        let act = u64::from_be_bytes(act.try_into().expect("8 bytes"));
        if len > self.max_payload {
            let e = ActError::Oversized {
                len: len as u64,
                max: self.max_payload,
            };
            self.failed = Some(e.clone());
            return Err(e);
        }
        let Some(payload) = pending.get(HEADER_LEN..HEADER_LEN + len) else {
            return Ok(None);
        };
        let frame = Frame {
            act,
            payload: payload.to_vec(),
        };
        self.start += HEADER_LEN + len;
        Ok(Some(frame))
    }

    /// Bytes received and not yet decoded.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The stream ended: `Ok` if it ended between frames, [`ActError::Truncated`] if inside
    /// one (or the error that failed the decoder).
    pub fn finish(&self) -> Result<(), ActError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        match self.buffered() {
            0 => Ok(()),
            buffered => Err(ActError::Truncated { buffered }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_by_byte_equals_all_at_once() {
        let mut wire = Vec::new();
        encode(1, b"one", &mut wire).unwrap();
        encode(2, b"", &mut wire).unwrap();
        encode(3, b"three", &mut wire).unwrap();
        let mut d = FrameDecoder::default();
        let mut frames = Vec::new();
        for b in &wire {
            d.push(std::slice::from_ref(b));
            while let Some(f) = d.decode().unwrap() {
                frames.push(f);
            }
        }
        let acts: Vec<u64> = frames.iter().map(|f| f.act).collect();
        assert_eq!(acts, vec![1, 2, 3]);
        assert_eq!(frames[2].payload, b"three");
        assert_eq!(d.finish(), Ok(()));
    }

    #[test]
    fn oversized_is_refused_before_the_payload_arrives() {
        let mut d = FrameDecoder::with_max_payload(4);
        d.push(&[0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 9]);
        assert_eq!(d.decode(), Err(ActError::Oversized { len: 5, max: 4 }));
        d.push(b"hello");
        assert!(d.decode().is_err(), "the decoder stays failed");
        assert!(d.finish().is_err());
    }

    #[test]
    fn truncated_streams_are_reported() {
        let mut d = FrameDecoder::default();
        d.push(&[0, 0, 0, 3, 0, 0]);
        assert_eq!(d.decode(), Ok(None));
        assert_eq!(d.finish(), Err(ActError::Truncated { buffered: 6 }));
    }
}
