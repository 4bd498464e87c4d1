//! Thread per connection: blocking reads and writes, the kernel's scheduler as the dispatcher.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;

use super::READ_CHUNK;

/// Stack size of a connection thread: echo needs little, and 512 of them should stay cheap.
const STACK: usize = 128 * 1024;

/// Serves echo on `listener` forever, one thread per accepted connection.
pub fn serve(listener: TcpListener) -> io::Result<()> {
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(stream) => stream,
            Err(e) => {
                eprintln!("echo-threads: accept: {e}");
                continue;
            }
        };
        let spawned = thread::Builder::new()
            .name("echo".into())
            .stack_size(STACK)
            .spawn(move || echo(stream));
        if let Err(e) = spawned {
            eprintln!("echo-threads: spawn: {e}");
        }
    }
    Ok(())
}

fn echo(mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        if stream.write_all(&buf[..n]).is_err() {
            return;
        }
    }
}
