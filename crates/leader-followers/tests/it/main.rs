//! Integration tests of the leader-followers crate: the conformance kit for both pools,
//! stress over TCP, timer and I/O serialisation, timers leaving the queue on cancel and close,
//! shutdown under load, growth, configuration, and (with `--cfg loom`) a model check of the
//! promotion protocol.

mod support;

mod conformance_lf {
    //! The pattern-core conformance kit against a four-thread Leader/Followers pool.
    pattern_core::conformance_tests!(|| leader_followers::LeaderFollowers::new(4).unwrap());
}

mod conformance_hsha {
    //! The pattern-core conformance kit against Half-Sync/Half-Async with four workers.
    pattern_core::conformance_tests!(|| leader_followers::HalfSyncHalfAsync::new(4, 64).unwrap());
}

mod end_of_stream;
#[cfg(loom)]
mod loom_model;
mod pool;
mod serialisation;
mod shutdown;
mod stress;
mod timers;
