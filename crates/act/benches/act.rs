//! Criterion benchmarks of the ACT crate (filled in below).
fn main() {}
