//! Integration tests of the reactor, one module per topic.

mod acceptor;
mod conformance {
    //! The pattern-core conformance kit, run against the reactor.
    pattern_core::conformance_tests!(|| reactor::Reactor::new().expect("reactor"));
}
mod dispatch;
mod notify;
mod support;
mod timers;
mod trace;
