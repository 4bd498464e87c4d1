//! The integration tests of `concurrency`: the monitor queue, the active object, thread-specific
//! storage, and (with `--cfg loom`) loom models of the monitor's conditions and the futures.

#[cfg(not(loom))]
mod active;
#[cfg(loom)]
mod loom_model;
#[cfg(not(loom))]
mod monitor;
#[cfg(not(loom))]
mod tss;
