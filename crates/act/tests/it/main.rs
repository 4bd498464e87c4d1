//! Integration tests of the act crate: token table model, token validation, deadlines,
//! threads, memory, frames, and the two reactor integrations.

#[path = "../../examples/support/pipeline.rs"]
#[allow(dead_code)]
mod pipeline;
#[path = "../../examples/support/proactor.rs"]
#[allow(dead_code)]
mod proactor;

mod deadlines;
mod frames;
mod memory;
mod model;
mod object;
mod pipelined;
mod proactor_executor;
mod threads;
mod tokens;
