//! The memento's byte form under arbitrary, truncated and corrupted input.

use gof_behavioral::Error;
use gof_behavioral::memento::{
    ChannelConfig, ConfigMemento, DeviceConfig, MAX_ENCODED_LEN, Originator,
};
use proptest::prelude::*;

fn config() -> impl Strategy<Value = DeviceConfig> {
    (
        "[a-z0-9é°-]{0,10}",
        1u32..=100_000,
        any::<u16>(),
        prop::collection::vec(("[a-zé]{0,8}", any::<i32>(), any::<bool>()), 0..=32),
    )
        .prop_map(|(name, rate, interval, channels)| {
            let mut d = DeviceConfig::new(name).unwrap();
            d.set_sample_rate(rate).unwrap();
            d.set_report_interval(interval);
            for (i, (label, threshold, enabled)) in channels.into_iter().enumerate() {
                d.add_channel(ChannelConfig::new(label, threshold).unwrap())
                    .unwrap();
                d.set_enabled(i, enabled).unwrap();
            }
            d
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn round_trips(d in config()) {
        let memento = d.save();
        let bytes = memento.to_bytes();
        prop_assert_eq!(bytes.len(), memento.encoded_len());
        prop_assert!(bytes.len() <= MAX_ENCODED_LEN);
        let decoded = ConfigMemento::from_bytes(&bytes).unwrap();
        prop_assert_eq!(&decoded, &memento);
        let mut restored = DeviceConfig::new("other").unwrap();
        restored.restore(decoded);
        prop_assert_eq!(restored, d);
    }

    #[test]
    fn every_strict_prefix_is_truncated(d in config()) {
        let bytes = d.save().to_bytes();
        for n in 0..bytes.len() {
            let is_truncated = matches!(ConfigMemento::from_bytes(&bytes[..n]), Err(Error::Truncated { .. }));
            prop_assert!(is_truncated, "prefix {}", n);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_accepted_ones_are_canonical(bytes in prop::collection::vec(any::<u8>(), 0..900)) {
        if let Ok(m) = ConfigMemento::from_bytes(&bytes) {
            prop_assert_eq!(m.to_bytes(), bytes);
        }
    }

    #[test]
    fn corrupted_encodings_never_panic(d in config(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut bytes = d.save().to_bytes();
        let i = at.index(bytes.len());
        bytes[i] = byte;
        if let Ok(m) = ConfigMemento::from_bytes(&bytes) {
            prop_assert_eq!(m.to_bytes(), bytes);
        }
    }

    #[test]
    fn a_header_prefix_with_any_tail_never_panics(tail in prop::collection::vec(any::<u8>(), 0..900)) {
        // Random bytes rarely get past the magic; start from a valid header to reach the field decoders.
        let mut bytes = b"DCFG\x01".to_vec();
        bytes.extend_from_slice(&tail);
        match ConfigMemento::from_bytes(&bytes) {
            Ok(m) => prop_assert_eq!(m.to_bytes(), bytes),
            Err(e) => prop_assert!(!matches!(e, Error::BadMagic | Error::UnsupportedVersion(_))),
        }
    }
}

#[test]
fn oversized_input_is_refused_before_parsing() {
    let mut bytes = DeviceConfig::new("x").unwrap().save().to_bytes();
    bytes.resize(MAX_ENCODED_LEN + 1, 0);
    assert_eq!(
        ConfigMemento::from_bytes(&bytes),
        Err(Error::Oversized {
            len: MAX_ENCODED_LEN + 1,
            max: MAX_ENCODED_LEN
        })
    );
}
