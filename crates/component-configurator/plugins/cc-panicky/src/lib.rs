//! Test plugin: a component that panics in init, to show a plugin panic becomes an error for the host.
