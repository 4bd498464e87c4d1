//! Integration tests of gof-structural: one module per pattern topic, each checking the course's claims.

mod adapter;
mod bridge;
mod proxy_protection;
mod proxy_remote;
mod proxy_smart;
mod proxy_virtual;
mod proxy_wire;
