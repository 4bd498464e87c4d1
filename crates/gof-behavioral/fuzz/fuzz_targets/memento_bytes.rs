//! Arbitrary bytes through the memento decoder: no panic, and what it accepts re-encodes to
//! exactly the bytes it came from (the encoding is canonical).
#![no_main]

use gof_behavioral::memento::ConfigMemento;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = ConfigMemento::from_bytes(data) {
        assert_eq!(m.to_bytes(), data);
        assert_eq!(m.encoded_len(), data.len());
    }
});
