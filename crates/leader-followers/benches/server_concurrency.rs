//! Placeholder for the Server_Concurrency port.
fn main() {}
