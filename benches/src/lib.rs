//! The benchmark lab (being written).
