//! Fuzzes the svc.conf parser: any bytes, with variables that expand to hostile text.
#![no_main]

use component_configurator::svc_conf::{parse_bytes, Directive};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let env = |name: &str| match name.len() % 3 {
        0 => None,
        1 => Some("\"\n dynamic X Service_Object * l:f() ".to_owned()),
        _ => Some("$$ ${A} $B".to_owned()),
    };
    if let Ok(directives) = parse_bytes("fuzz.conf", data, &env) {
        for d in directives {
            // Parsed names are never empty and never contain white space or controls.
            let name = d.directive.name();
            assert!(!name.is_empty());
            assert!(!name.chars().any(|c| c.is_whitespace() || c.is_control()));
            if let Directive::Dynamic { factory, .. } = &d.directive {
                assert!(!factory.is_empty());
            }
        }
    }
});
