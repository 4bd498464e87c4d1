//! The Rust io_uring runtimes the proactor is measured against: monoio, tokio-uring and
//! compio, each with a task per connection on one thread, reading into an owned buffer and
//! writing the same bytes back (the completion-based "rent" style all three share).

use std::io;
use std::net::TcpListener;

use super::READ_CHUNK;

/// monoio on its io_uring driver (no epoll fallback): echo forever on `listener`.
pub fn serve_monoio(listener: TcpListener) -> io::Result<()> {
    use monoio::io::{AsyncReadRent, AsyncWriteRentExt};

    let mut runtime = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
        .with_entries(1024)
        .build()?;
    runtime.block_on(async move {
        let listener = monoio::net::TcpListener::from_std(listener)?;
        loop {
            let (mut stream, _) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("echo-monoio: accept: {e}");
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            monoio::spawn(async move {
                // A read fills the spare capacity and sets the length; the buffer comes back
                // with the result.
                let mut buf = Vec::with_capacity(READ_CHUNK);
                loop {
                    buf.clear();
                    let (read, b) = stream.read(buf).await;
                    buf = b;
                    match read {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    let (written, b) = stream.write_all(buf).await;
                    buf = b;
                    if written.is_err() {
                        return;
                    }
                }
            });
        }
    })
}

/// tokio-uring (one thread): echo forever on `listener`.
pub fn serve_tokio_uring(listener: TcpListener) -> io::Result<()> {
    use tokio_uring::buf::BoundedBuf;

    tokio_uring::builder().entries(1024).start(async move {
        let listener = tokio_uring::net::TcpListener::from_std(listener);
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("echo-tokio-uring: accept: {e}");
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            tokio_uring::spawn(async move {
                let mut buf = vec![0u8; READ_CHUNK];
                loop {
                    let (read, b) = stream.read(buf).await;
                    buf = b;
                    let n = match read {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    let (written, slice) = stream.write_all(buf.slice(..n)).await;
                    buf = slice.into_inner();
                    if written.is_err() {
                        return;
                    }
                }
            });
        }
    })
}

/// compio on its io_uring driver (one thread): echo forever on `listener`.
pub fn serve_compio(listener: TcpListener) -> io::Result<()> {
    use compio::BufResult;
    use compio::io::{AsyncRead, AsyncWriteExt};

    let runtime = compio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let listener = compio::net::TcpListener::from_std(listener)?;
        loop {
            let (mut stream, _) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("echo-compio: accept: {e}");
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            compio::runtime::spawn(async move {
                let mut buf = Vec::with_capacity(READ_CHUNK);
                loop {
                    buf.clear();
                    let BufResult(read, b) = stream.read(buf).await;
                    buf = b;
                    if matches!(read, Ok(0) | Err(_)) {
                        return;
                    }
                    let BufResult(written, b) = stream.write_all(buf).await;
                    buf = b;
                    if written.is_err() {
                        return;
                    }
                }
            })
            .detach();
        }
    })
}
