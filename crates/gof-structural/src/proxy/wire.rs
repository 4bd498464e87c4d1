//! The remote proxy's wire format: length-prefixed frames carrying requests and replies.
//!
//! A frame is a 4-byte big-endian payload length followed by the payload; receivers refuse
//! lengths above their configured limit before allocating anything.
//! A payload starts with a 4-byte big-endian request id, which the reply echoes, then a tag byte:
//!
//! | tag | payload after the tag | meaning |
//! |---|---|---|
//! | `0x01` | - | request: identify |
//! | `0x02` | register `u16` | request: read |
//! | `0x03` | register `u16`, value `u32` | request: write |
//! | `0x81` | UTF-8 text (rest of payload) | reply: identity |
//! | `0x82` | value `u32` | reply: register value |
//! | `0x83` | - | reply: done |
//! | `0xEE` | error kind `u8`, fields | reply: the subject's error |
//!
//! Decoding never panics: every malformed input is an [`Error::MalformedFrame`]
//! (a property test in `tests/it/proxy_wire.rs` feeds it arbitrary bytes).

use std::io::{Read, Write};

use super::DeviceOperation;
use crate::Error;

/// The default limit on a frame's payload, in bytes.
pub const DEFAULT_MAX_FRAME: usize = 64 * 1024;

const REQ_IDENTIFY: u8 = 0x01;
const REQ_READ: u8 = 0x02;
const REQ_WRITE: u8 = 0x03;
const REP_IDENTITY: u8 = 0x81;
const REP_VALUE: u8 = 0x82;
const REP_DONE: u8 = 0x83;
const REP_ERROR: u8 = 0xEE;

const ERR_NO_SUCH_REGISTER: u8 = 0x01;
const ERR_READ_ONLY: u8 = 0x02;
const ERR_ACCESS_DENIED: u8 = 0x03;
const ERR_MALFORMED: u8 = 0x04;
const ERR_OTHER: u8 = 0xFF;

/// A reply from the remote subject.
#[derive(Debug)]
#[non_exhaustive]
pub enum Reply {
    /// The answer to [`DeviceOperation::Identify`].
    Identity(String),
    /// The answer to [`DeviceOperation::Read`].
    Value(u32),
    /// The answer to [`DeviceOperation::Write`].
    Done,
    /// The subject's error, carried across with its variant where the wire has one
    /// (errors it has none for arrive as [`Error::Remote`] with their message).
    Failed(Error),
}

/// Encodes a request payload.
///
/// ```
/// use gof_structural::proxy::{wire, DeviceOperation};
///
/// let bytes = wire::encode_request(9, &DeviceOperation::Read(0x10));
/// assert_eq!(bytes, [0, 0, 0, 9, 0x02, 0x00, 0x10]);
/// assert_eq!(wire::decode_request(&bytes)?, (9, DeviceOperation::Read(0x10)));
/// # Ok::<(), gof_structural::Error>(())
/// ```
pub fn encode_request(id: u32, operation: &DeviceOperation) -> Vec<u8> {
    let mut out = id.to_be_bytes().to_vec();
    match *operation {
        DeviceOperation::Identify => out.push(REQ_IDENTIFY),
        DeviceOperation::Read(register) => {
            out.push(REQ_READ);
            out.extend_from_slice(&register.to_be_bytes());
        }
        DeviceOperation::Write(register, value) => {
            out.push(REQ_WRITE);
            out.extend_from_slice(&register.to_be_bytes());
            out.extend_from_slice(&value.to_be_bytes());
        }
    }
    out
}

/// Decodes a request payload into its id and operation.
pub fn decode_request(payload: &[u8]) -> Result<(u32, DeviceOperation), Error> {
    let mut r = Reader::new(payload);
    let id = r.u32()?;
    let operation = match r.u8()? {
        REQ_IDENTIFY => DeviceOperation::Identify,
        REQ_READ => DeviceOperation::Read(r.u16()?),
        REQ_WRITE => DeviceOperation::Write(r.u16()?, r.u32()?),
        tag => return Err(malformed(format!("unknown request tag {tag:#04x}"))),
    };
    r.finish()?;
    Ok((id, operation))
}

/// Encodes a reply payload.
pub fn encode_reply(id: u32, reply: &Reply) -> Vec<u8> {
    let mut out = id.to_be_bytes().to_vec();
    match reply {
        Reply::Identity(text) => {
            out.push(REP_IDENTITY);
            out.extend_from_slice(text.as_bytes());
        }
        Reply::Value(value) => {
            out.push(REP_VALUE);
            out.extend_from_slice(&value.to_be_bytes());
        }
        Reply::Done => out.push(REP_DONE),
        Reply::Failed(err) => {
            out.push(REP_ERROR);
            match err {
                Error::NoSuchRegister(r) => {
                    out.push(ERR_NO_SUCH_REGISTER);
                    out.extend_from_slice(&r.to_be_bytes());
                }
                Error::ReadOnlyRegister(r) => {
                    out.push(ERR_READ_ONLY);
                    out.extend_from_slice(&r.to_be_bytes());
                }
                Error::AccessDenied { caller, operation } => {
                    out.push(ERR_ACCESS_DENIED);
                    put_str(&mut out, caller);
                    put_str(&mut out, operation);
                }
                Error::MalformedFrame(why) => {
                    out.push(ERR_MALFORMED);
                    put_str(&mut out, why);
                }
                // A relayed remote error keeps its message as is, not wrapped once per hop.
                Error::Remote(message) => {
                    out.push(ERR_OTHER);
                    put_str(&mut out, message);
                }
                other => {
                    out.push(ERR_OTHER);
                    put_str(&mut out, &other.to_string());
                }
            }
        }
    }
    out
}

/// Decodes a reply payload into its id and reply.
///
/// ```
/// use gof_structural::{Error, proxy::wire::{self, Reply}};
///
/// let bytes = wire::encode_reply(3, &Reply::Failed(Error::ReadOnlyRegister(0x30)));
/// let (id, reply) = wire::decode_reply(&bytes)?;
/// assert_eq!(id, 3);
/// assert!(matches!(reply, Reply::Failed(Error::ReadOnlyRegister(0x30))));
/// assert!(wire::decode_reply(&[0, 0, 0, 3, 0x82, 1]).is_err()); // value cut short
/// # Ok::<(), gof_structural::Error>(())
/// ```
pub fn decode_reply(payload: &[u8]) -> Result<(u32, Reply), Error> {
    let mut r = Reader::new(payload);
    let id = r.u32()?;
    let reply = match r.u8()? {
        REP_IDENTITY => {
            let text =
                std::str::from_utf8(r.rest()).map_err(|_| malformed("identity is not UTF-8"))?;
            Reply::Identity(text.to_owned())
        }
        REP_VALUE => Reply::Value(r.u32()?),
        REP_DONE => Reply::Done,
        REP_ERROR => Reply::Failed(match r.u8()? {
            ERR_NO_SUCH_REGISTER => Error::NoSuchRegister(r.u16()?),
            ERR_READ_ONLY => Error::ReadOnlyRegister(r.u16()?),
            ERR_ACCESS_DENIED => Error::AccessDenied {
                caller: r.str()?,
                operation: r.str()?,
            },
            ERR_MALFORMED => Error::MalformedFrame(r.str()?),
            ERR_OTHER => Error::Remote(r.str()?),
            kind => return Err(malformed(format!("unknown error kind {kind:#04x}"))),
        }),
        tag => return Err(malformed(format!("unknown reply tag {tag:#04x}"))),
    };
    r.finish()?;
    Ok((id, reply))
}

/// Writes `payload` as one frame. Refuses payloads above `max_frame` (the peer would refuse them).
///
/// ```
/// use gof_structural::proxy::wire;
///
/// let mut wire_bytes = Vec::new();
/// wire::write_frame(&mut wire_bytes, b"abc", 16)?;
/// assert_eq!(wire_bytes, [0, 0, 0, 3, b'a', b'b', b'c']);
/// assert_eq!(wire::read_frame(&mut wire_bytes.as_slice(), 16)?, b"abc");
/// assert!(wire::read_frame(&mut wire_bytes.as_slice(), 2).is_err()); // over the limit
/// # Ok::<(), gof_structural::Error>(())
/// ```
pub fn write_frame(out: &mut impl Write, payload: &[u8], max_frame: usize) -> Result<(), Error> {
    if payload.len() > max_frame || u32::try_from(payload.len()).is_err() {
        return Err(Error::FrameTooLarge {
            len: payload.len(),
            max: max_frame,
        });
    }
    let mut frame = Vec::with_capacity(4 + payload.len());
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(payload);
    out.write_all(&frame).map_err(Error::from_io)?;
    out.flush().map_err(Error::from_io)
}

/// Reads one frame's payload. A length above `max_frame` is refused before anything is allocated;
/// a stream that ends before or inside a frame gives [`Error::Disconnected`].
pub fn read_frame(input: &mut impl Read, max_frame: usize) -> Result<Vec<u8>, Error> {
    let mut header = [0u8; 4];
    input.read_exact(&mut header).map_err(Error::from_io)?;
    let len = u32::from_be_bytes(header) as usize;
    if len > max_frame {
        return Err(Error::FrameTooLarge {
            len,
            max: max_frame,
        });
    }
    let mut payload = vec![0u8; len];
    input.read_exact(&mut payload).map_err(Error::from_io)?;
    Ok(payload)
}

fn malformed(why: impl Into<String>) -> Error {
    Error::MalformedFrame(why.into())
}

fn put_str(out: &mut Vec<u8>, text: &str) {
    // Strings longer than a u16 length can say are cut on a character boundary.
    let mut end = text.len().min(u16::MAX as usize);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    out.extend_from_slice(&(end as u16).to_be_bytes());
    out.extend_from_slice(&text.as_bytes()[..end]);
}

/// A cursor over a payload whose every read is bounds-checked.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes }
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let (head, rest) = self
            .bytes
            .split_first_chunk::<N>()
            .ok_or_else(|| malformed(format!("payload ends early: wanted {N} more bytes")))?;
        self.bytes = rest;
        Ok(*head)
    }

    fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.take::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, Error> {
        Ok(u16::from_be_bytes(self.take()?))
    }

    fn u32(&mut self) -> Result<u32, Error> {
        Ok(u32::from_be_bytes(self.take()?))
    }

    fn str(&mut self) -> Result<String, Error> {
        let len = usize::from(self.u16()?);
        if self.bytes.len() < len {
            return Err(malformed("string runs past the payload"));
        }
        let (text, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        String::from_utf8(text.to_vec()).map_err(|_| malformed("string is not UTF-8"))
    }

    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.bytes)
    }

    fn finish(self) -> Result<(), Error> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(malformed(format!("{} trailing bytes", self.bytes.len())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_bytes_and_unknown_tags_are_refused() {
        assert!(decode_request(&[0, 0, 0, 1, REQ_IDENTIFY, 0]).is_err());
        assert!(decode_request(&[0, 0, 0, 1, 0x42]).is_err());
        assert!(decode_reply(&[0, 0, 0, 1, REP_ERROR, 0x42]).is_err());
        assert!(decode_reply(&[0, 0]).is_err());
    }

    #[test]
    fn unknown_errors_travel_as_text() {
        let bytes = encode_reply(1, &Reply::Failed(Error::Timeout));
        match decode_reply(&bytes).unwrap().1 {
            Reply::Failed(Error::Remote(text)) => {
                assert_eq!(text, "timed out waiting for the peer")
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn long_strings_are_cut_on_a_char_boundary() {
        let long = "é".repeat(40_000); // 80 000 bytes
        let bytes = encode_reply(1, &Reply::Failed(Error::MalformedFrame(long)));
        match decode_reply(&bytes).unwrap().1 {
            Reply::Failed(Error::MalformedFrame(text)) => assert_eq!(text.len(), 65_534),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_truncated_frame_is_a_disconnect() {
        let bytes = [0u8, 0, 0, 5, 1, 2];
        assert!(matches!(
            read_frame(&mut &bytes[..], 16),
            Err(Error::Disconnected)
        ));
        assert!(matches!(
            read_frame(&mut &[][..], 16),
            Err(Error::Disconnected)
        ));
    }

    #[test]
    fn oversized_payloads_are_refused_on_write() {
        let mut out = Vec::new();
        assert!(matches!(
            write_frame(&mut out, &[0; 5], 4),
            Err(Error::FrameTooLarge { len: 5, max: 4 })
        ));
        assert!(out.is_empty());
    }
}
