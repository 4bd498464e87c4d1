//! Test plugin: a library whose descriptor reports another ABI version; it must be refused before any of its code runs.
