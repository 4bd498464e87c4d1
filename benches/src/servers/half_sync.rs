//! Half-sync/half-async: the shared accept and echo handlers ([`super::handlers`]) on
//! [`HalfSyncHalfAsync`]: the calling thread demultiplexes and queues ready handlers, a pool
//! of `workers` synchronous threads runs their upcalls.

use std::io;

use leader_followers::HalfSyncHalfAsync;

use super::handlers::serve_on;

/// Synchronous workers when `--threads` is not given.
pub const DEFAULT_WORKERS: usize = 2;

/// Serves echo on `listener` forever with `workers` synchronous workers besides the
/// demultiplexing thread; returns only on a polling error.
pub fn serve(listener: std::net::TcpListener, workers: usize) -> io::Result<()> {
    let dispatcher = HalfSyncHalfAsync::builder().workers(workers).build()?;
    serve_on(Box::new(dispatcher), listener)
}
