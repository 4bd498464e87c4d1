//! Fuzzes the ELF reader that looks for a plugin's descriptor before any `dlopen`.
#![no_main]

use component_configurator::abi::{DESCRIPTOR_SIZE, DESCRIPTOR_SYMBOL, Descriptor};
use component_configurator::elf::read_symbol;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(bytes) = read_symbol(data, DESCRIPTOR_SYMBOL, DESCRIPTOR_SIZE) {
        assert_eq!(bytes.len(), DESCRIPTOR_SIZE);
        let d = Descriptor::from_bytes(&bytes).expect("enough bytes");
        let _ = d.mismatch();
    }
});
