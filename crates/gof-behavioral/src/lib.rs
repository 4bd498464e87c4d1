//! GoF behavioral patterns.
#![forbid(unsafe_code)]

pub mod clock;
mod error;
pub mod observer;

pub use error::Error;
pub mod strategy;
pub mod memento;
