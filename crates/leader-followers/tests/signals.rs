//! Signals sent to the process reach the handlers watching them (the pattern-core
//! conformance test `signals_reach_their_watchers`).
//!
//! A test binary of its own, with `harness = false`: a signal belongs to the whole process,
//! and it reaches a dispatcher's signal fd only when every thread blocks it. `main` blocks
//! SIGUSR1 and SIGUSR2 before any thread exists, as a server's `main` does; libtest's threads
//! would not.

use leader_followers::{HalfSyncHalfAsync, LeaderFollowers};
use pattern_core::conformance;
use wrapper_facade::signal::{self, Signal, SignalSet};

fn raise(signo: i32) {
    let signal = Signal::from_raw(signo).expect("a signal");
    signal::send_to_own_process(signal).expect("kill(2) on our own pid");
}

fn main() {
    SignalSet::default()
        .with(Signal::USR1)
        .with(Signal::USR2)
        .block_current_thread()
        .expect("block SIGUSR1 and SIGUSR2");
    let signals = (Signal::USR1.as_raw(), Signal::USR2.as_raw());

    conformance::signals_reach_their_watchers(
        &|| LeaderFollowers::new(2).expect("pool"),
        signals,
        &raise,
    );
    println!("signals: leader/followers dispatched them to their watchers");
    conformance::signals_reach_their_watchers(
        &|| HalfSyncHalfAsync::new(2, 8).expect("pool"),
        signals,
        &raise,
    );
    println!("signals: half-sync/half-async dispatched them to their watchers");
}
