//! tokio: a task per connection on the `current_thread` runtime (one thread, like a reactor),
//! or on the `multi_thread` runtime with `workers` threads.

use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::runtime::Builder;

use super::READ_CHUNK;

/// Serves echo on `listener` forever: on one thread when `workers` is `None`, else on a
/// work-stealing pool of that many threads.
pub fn serve(listener: std::net::TcpListener, workers: Option<usize>) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let runtime = match workers {
        None => Builder::new_current_thread().enable_io().build()?,
        Some(n) => Builder::new_multi_thread()
            .worker_threads(n)
            .enable_io()
            .build()?,
    };
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(echo(stream));
                }
                Err(e) => eprintln!("echo-tokio: accept: {e}"),
            }
        }
    })
}

async fn echo(mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if stream.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
