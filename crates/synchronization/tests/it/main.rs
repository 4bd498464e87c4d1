//! The integration tests of `synchronization`: lock strategies, the thread-safe interface, the
//! double-checked cell and its idiomatic std form, and (with `--cfg loom`) loom models of the
//! double-checked locking.

#[cfg(not(loom))]
mod dcl;
#[cfg(not(loom))]
mod interface;
#[cfg(loom)]
mod loom_model;
#[cfg(not(loom))]
mod strategized;
