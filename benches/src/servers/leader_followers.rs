//! Leader/followers: the shared accept and echo handlers ([`super::handlers`]) on a
//! [`LeaderFollowers`] pool, whose threads take turns waiting on one mio `Poll` and each
//! process the event they received themselves.

use std::io;

use leader_followers::LeaderFollowers;

use super::handlers::serve_on;

/// Pool size when `--threads` is not given.
pub const DEFAULT_THREADS: usize = 2;

/// Serves echo on `listener` forever with a fixed pool of `threads` threads (the calling
/// thread included); returns only on a polling error.
pub fn serve(listener: std::net::TcpListener, threads: usize) -> io::Result<()> {
    let pool = LeaderFollowers::builder().threads(threads).build()?;
    serve_on(Box::new(pool), listener)
}

/// As [`serve`], with the pool running the strict protocol (one event per wait, only the
/// leader takes work, each handle out of the handle set while it is processed).
pub fn serve_strict(listener: std::net::TcpListener, threads: usize) -> io::Result<()> {
    let pool = LeaderFollowers::builder()
        .threads(threads)
        .strict(true)
        .build()?;
    serve_on(Box::new(pool), listener)
}
