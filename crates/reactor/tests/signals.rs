//! Signals sent to the process reach the handlers watching them (the pattern-core
//! conformance test `signals_reach_their_watchers`).
//!
//! A test binary of its own, with `harness = false`: a signal belongs to the whole process,
//! and it reaches a dispatcher's signal fd only when every thread blocks it. `main` blocks
//! SIGUSR1 and SIGUSR2 before any thread exists, as a server's `main` does; libtest's threads
//! would not.

use pattern_core::conformance;
use reactor::Reactor;
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
        &|| Reactor::new().expect("reactor"),
        signals,
        &raise,
    );
    println!("signals: the reactor dispatched them to their watchers");
}
