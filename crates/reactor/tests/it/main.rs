//! Integration tests of the reactor.

mod conformance {
    //! The pattern-core conformance kit, run against the reactor.
    pattern_core::conformance_tests!(|| reactor::Reactor::new().expect("reactor"));
}
