//! Integration tests of the leader-followers crate: the conformance kit for both pools,
//! stress over TCP, timer and I/O serialisation, timers leaving the queue on cancel and close,
//! shutdown under load, growth, configuration, and a randomized stress of the contract
//! (`contract_stress`). The loom model of the wake-up protocol is `tests/loom.rs`.

mod support;

mod conformance_lf1 {
    //! The pattern-core conformance kit against a one-thread Leader/Followers pool.
    pattern_core::conformance_tests!(|| leader_followers::LeaderFollowers::new(1).unwrap());
}

mod conformance_lf2 {
    //! The conformance kit against a two-thread Leader/Followers pool, the parallel tests too.
    pattern_core::conformance_tests!(|| leader_followers::LeaderFollowers::new(2).unwrap(); parallel);
}

mod conformance_lf3 {
    //! The conformance kit against a three-thread Leader/Followers pool, the parallel tests too.
    pattern_core::conformance_tests!(|| leader_followers::LeaderFollowers::new(3).unwrap(); parallel);
}

mod conformance_lf {
    //! The conformance kit against a four-thread Leader/Followers pool, the parallel tests too.
    pattern_core::conformance_tests!(|| leader_followers::LeaderFollowers::new(4).unwrap(); parallel);
}

mod conformance_lf_strict1 {
    //! The conformance kit against a one-thread pool running the strict protocol.
    pattern_core::conformance_tests!(|| leader_followers::LeaderFollowers::builder()
        .threads(1)
        .strict(true)
        .build()
        .unwrap());
}

mod conformance_lf_strict2 {
    //! The conformance kit against a two-thread pool running the strict protocol, parallel too.
    pattern_core::conformance_tests!(|| leader_followers::LeaderFollowers::builder().threads(2).strict(true).build().unwrap(); parallel);
}

mod conformance_lf_strict {
    //! The conformance kit against a four-thread pool running the strict protocol, parallel too.
    pattern_core::conformance_tests!(|| leader_followers::LeaderFollowers::builder().threads(4).strict(true).build().unwrap(); parallel);
}

mod conformance_hsha1 {
    //! The conformance kit against Half-Sync/Half-Async with one worker.
    pattern_core::conformance_tests!(|| leader_followers::HalfSyncHalfAsync::new(1, 64).unwrap());
}

mod conformance_hsha3 {
    //! The conformance kit against Half-Sync/Half-Async with three workers, the parallel tests too.
    pattern_core::conformance_tests!(|| leader_followers::HalfSyncHalfAsync::new(3, 64).unwrap(); parallel);
}

mod conformance_hsha {
    //! The conformance kit against Half-Sync/Half-Async with four workers, the parallel tests too.
    pattern_core::conformance_tests!(|| leader_followers::HalfSyncHalfAsync::new(4, 64).unwrap(); parallel);
}

mod contract_stress;
mod end_of_stream;
mod pool;
mod serialisation;
mod shutdown;
mod stress;
mod strict;
mod timers;
