//! The memento's byte form: a hand-written, versioned, bounds-checked encoding.
//!
//! Layout (integers little-endian):
//!
//! | bytes | field |
//! |---|---|
//! | 4 | magic `DCFG` |
//! | 1 | version, [`MEMENTO_VERSION`] |
//! | 1 + n | device name: length `n` ≤ 32, UTF-8 |
//! | 4 | sample rate, Hz, `1..=100_000` |
//! | 2 | report interval, s |
//! | 1 | channel count ≤ 32, then per channel: |
//! | 1 + n | label: length `n` ≤ 16, UTF-8 |
//! | 4 | threshold, `i32` |
//! | 1 | flags: bit 0 enabled, other bits zero |

use super::{
    ChannelConfig, DeviceConfig, MAX_CHANNELS, MAX_LABEL_LEN, MAX_NAME_LEN, MAX_SAMPLE_RATE_HZ,
};
use crate::Error;

const MAGIC: [u8; 4] = *b"DCFG";

/// The encoding version this build writes and reads.
pub const MEMENTO_VERSION: u8 = 1;

const HEADER_LEN: usize = MAGIC.len() + 1;
const FIXED_LEN: usize = HEADER_LEN + 1 + 4 + 2 + 1;
const CHANNEL_FIXED_LEN: usize = 1 + 4 + 1;

/// The longest valid encoding, in bytes; longer input is refused before parsing.
pub const MAX_ENCODED_LEN: usize =
    FIXED_LEN + MAX_NAME_LEN + MAX_CHANNELS * (CHANNEL_FIXED_LEN + MAX_LABEL_LEN);

const FLAG_ENABLED: u8 = 0b1;

pub(super) fn encoded_len(config: &DeviceConfig) -> usize {
    FIXED_LEN
        + config.name.len()
        + config
            .channels
            .iter()
            .map(|c| CHANNEL_FIXED_LEN + c.label.len())
            .sum::<usize>()
}

pub(super) fn encode(config: &DeviceConfig) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded_len(config));
    out.extend_from_slice(&MAGIC);
    out.push(MEMENTO_VERSION);
    put_text(&mut out, &config.name);
    out.extend_from_slice(&config.sample_rate_hz.to_le_bytes());
    out.extend_from_slice(&config.report_interval_s.to_le_bytes());
    // The count and lengths fit in a byte: DeviceConfig enforces the limits on every change.
    out.push(config.channels.len() as u8);
    for ch in &config.channels {
        put_text(&mut out, &ch.label);
        out.extend_from_slice(&ch.threshold.to_le_bytes());
        out.push(if ch.enabled { FLAG_ENABLED } else { 0 });
    }
    out
}

fn put_text(out: &mut Vec<u8>, text: &str) {
    out.push(text.len() as u8);
    out.extend_from_slice(text.as_bytes());
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let rest = &self.bytes[self.at..];
        if rest.len() < n {
            return Err(Error::Truncated {
                at: self.at,
                needed: n - rest.len(),
            });
        }
        let (head, _) = rest.split_at(n);
        self.at += n;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let mut a = [0; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.array::<1>()?[0])
    }

    fn text(&mut self, field: &'static str, max: usize) -> Result<String, Error> {
        let len = usize::from(self.u8()?);
        if len > max {
            return Err(Error::TooLong { field, len, max });
        }
        let raw = self.take(len)?;
        std::str::from_utf8(raw)
            .map(str::to_owned)
            .map_err(|_| Error::InvalidUtf8 { field })
    }
}

pub(super) fn decode(bytes: &[u8]) -> Result<DeviceConfig, Error> {
    if bytes.len() > MAX_ENCODED_LEN {
        return Err(Error::Oversized {
            len: bytes.len(),
            max: MAX_ENCODED_LEN,
        });
    }
    let mut r = Reader { bytes, at: 0 };
    let magic = r.take(MAGIC.len().min(bytes.len()))?;
    if *magic != MAGIC[..magic.len()] {
        return Err(Error::BadMagic);
    }
    if magic.len() < MAGIC.len() {
        return Err(Error::Truncated {
            at: magic.len(),
            needed: MAGIC.len() - magic.len(),
        });
    }
    let version = r.u8()?;
    if version != MEMENTO_VERSION {
        return Err(Error::UnsupportedVersion(version));
    }
    let name = r.text("device name", MAX_NAME_LEN)?;
    let sample_rate_hz = u32::from_le_bytes(r.array()?);
    if !(1..=MAX_SAMPLE_RATE_HZ).contains(&sample_rate_hz) {
        return Err(Error::InvalidSampleRate(sample_rate_hz));
    }
    let report_interval_s = u16::from_le_bytes(r.array()?);
    let count = usize::from(r.u8()?);
    if count > MAX_CHANNELS {
        return Err(Error::TooManyChannels { max: MAX_CHANNELS });
    }
    let mut channels = Vec::with_capacity(count);
    for _ in 0..count {
        let label = r.text("channel label", MAX_LABEL_LEN)?;
        let threshold = i32::from_le_bytes(r.array()?);
        let flags = r.u8()?;
        if flags & !FLAG_ENABLED != 0 {
            return Err(Error::InvalidFlags(flags));
        }
        channels.push(ChannelConfig {
            label,
            threshold,
            enabled: flags & FLAG_ENABLED != 0,
        });
    }
    let trailing = bytes.len() - r.at;
    if trailing > 0 {
        return Err(Error::TrailingBytes(trailing));
    }
    Ok(DeviceConfig {
        name,
        sample_rate_hz,
        report_interval_s,
        channels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> DeviceConfig {
        let mut d = DeviceConfig::new("pump-7").unwrap();
        d.add_channel(ChannelConfig::new("inlet", -1_500).unwrap())
            .unwrap();
        d.set_enabled(0, false).unwrap();
        d
    }

    #[test]
    fn layout_is_as_documented() {
        let bytes = encode(&sample());
        let mut want = b"DCFG\x01\x06pump-7".to_vec();
        want.extend_from_slice(&10u32.to_le_bytes());
        want.extend_from_slice(&60u16.to_le_bytes());
        want.push(1);
        want.extend_from_slice(b"\x05inlet");
        want.extend_from_slice(&(-1_500i32).to_le_bytes());
        want.push(0);
        assert_eq!(bytes, want);
        assert_eq!(encoded_len(&sample()), bytes.len());
        assert_eq!(decode(&bytes).unwrap(), sample());
    }

    #[test]
    fn largest_config_fits_the_maximum() {
        let mut d = DeviceConfig::new("n".repeat(MAX_NAME_LEN)).unwrap();
        for _ in 0..MAX_CHANNELS {
            d.add_channel(ChannelConfig::new("l".repeat(MAX_LABEL_LEN), i32::MIN).unwrap())
                .unwrap();
        }
        let bytes = encode(&d);
        assert_eq!(bytes.len(), MAX_ENCODED_LEN);
        assert_eq!(decode(&bytes).unwrap(), d);
    }

    #[test]
    fn malformed_input_gives_precise_errors() {
        let good = encode(&sample());
        let patch = |at: usize, byte: u8| {
            let mut b = good.clone();
            b[at] = byte;
            b
        };
        assert_eq!(decode(b""), Err(Error::Truncated { at: 0, needed: 4 }));
        assert_eq!(decode(b"DC"), Err(Error::Truncated { at: 2, needed: 2 }));
        assert_eq!(decode(b"XX"), Err(Error::BadMagic));
        assert_eq!(decode(&patch(0, b'X')), Err(Error::BadMagic));
        assert_eq!(decode(&patch(4, 2)), Err(Error::UnsupportedVersion(2)));
        assert_eq!(
            decode(&patch(5, 40)),
            Err(Error::TooLong {
                field: "device name",
                len: 40,
                max: MAX_NAME_LEN
            })
        );
        assert_eq!(
            decode(&patch(6, 0xff)),
            Err(Error::InvalidUtf8 {
                field: "device name"
            })
        );
        // Sample rate 0.
        let mut zero_rate = good.clone();
        zero_rate[12..16].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(decode(&zero_rate), Err(Error::InvalidSampleRate(0)));
        assert_eq!(
            decode(&patch(18, 33)),
            Err(Error::TooManyChannels { max: MAX_CHANNELS })
        );
        let last = good.len() - 1;
        assert_eq!(decode(&patch(last, 0b10)), Err(Error::InvalidFlags(0b10)));
        let mut trailing = good.clone();
        trailing.extend_from_slice(&[0, 0]);
        assert_eq!(decode(&trailing), Err(Error::TrailingBytes(2)));
        let huge = vec![0u8; MAX_ENCODED_LEN + 1];
        assert_eq!(
            decode(&huge),
            Err(Error::Oversized {
                len: MAX_ENCODED_LEN + 1,
                max: MAX_ENCODED_LEN
            })
        );
    }

    #[test]
    fn every_strict_prefix_is_truncated() {
        let good = encode(&sample());
        for n in 0..good.len() {
            assert!(
                matches!(decode(&good[..n]), Err(Error::Truncated { .. })),
                "prefix of {n} bytes: {:?}",
                decode(&good[..n])
            );
        }
    }
}
