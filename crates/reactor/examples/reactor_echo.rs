//! Reactor echo server: an Acceptor creates one echo service handler per connection, and three
//! scripted clients, on a thread of their own, talk to it one after another while the reactor's
//! loop runs on the main thread.
//!
//! Every line is printed before the byte that lets the next participant move is sent, so the
//! narrative comes out in the same order on every run.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream as StdStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;

use reactor::SockStream;
use reactor::{
    Acceptor, CloseReason, Context, Disposition, EventHandler, OutBuffer, Reactor, Remote,
};

/// Stop reading once this much echo is waiting for the peer to take it.
const OUT_LIMIT: usize = 64 * 1024;
/// Bytes taken from the socket per read.
const READ_CHUNK: usize = 16 * 1024;

/// The concrete event handler: echoes every byte back through a bounded [`OutBuffer`], and
/// narrates each complete line it passes on.
struct EchoService {
    id: usize,
    stream: SockStream,
    out: OutBuffer,
    /// Length of the line being received, and its start while short enough to quote.
    line: Vec<u8>,
    line_len: usize,
    lines: usize,
    bytes: usize,
    max_buffered: usize,
    closed: Sender<usize>,
}

impl EchoService {
    fn new(id: usize, stream: SockStream, closed: Sender<usize>) -> Self {
        let mut out = OutBuffer::with_limit(OUT_LIMIT);
        let greeting = format!("welcome, you are connection #{id}\n");
        out.push(greeting.as_bytes());
        EchoService {
            id,
            stream,
            out,
            line: Vec::new(),
            line_len: 0,
            lines: 0,
            bytes: 0,
            max_buffered: 0,
            closed,
        }
    }

    /// Narrates the complete lines in `data`; runs before `data` is echoed, so a client that
    /// waits for its echo always sees this line printed first.
    fn narrate(&mut self, data: &[u8]) {
        for &b in data {
            if b == b'\n' {
                self.lines += 1;
                if self.line_len <= 60 {
                    println!(
                        "  service #{}: echoing {:?}",
                        self.id,
                        String::from_utf8_lossy(&self.line)
                    );
                } else {
                    println!(
                        "  service #{}: echoing a line of {} bytes",
                        self.id, self.line_len
                    );
                }
                self.line.clear();
                self.line_len = 0;
            } else {
                self.line_len += 1;
                if self.line_len <= 60 {
                    self.line.push(b);
                }
            }
        }
    }
}

impl EventHandler for EchoService {
    fn handle(&self) -> Option<BorrowedFd<'_>> {
        Some(self.stream.as_fd())
    }

    fn handle_input(&mut self, ctx: &mut dyn Context) -> Disposition {
        let mut buf = [0u8; READ_CHUNK];
        while !self.out.is_over_limit() {
            match self.stream.read(&mut buf) {
                Ok(0) => return Disposition::Close,
                Ok(n) => {
                    self.narrate(&buf[..n]);
                    self.bytes += n;
                    self.out.push(&buf[..n]);
                    self.max_buffered = self.max_buffered.max(self.out.len());
                }
                // Drained: flush, and wait for the next edge.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return self.out.settle(&mut self.stream, ctx, false);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Disposition::Close,
            }
        }
        // Stopped at the limit (backpressure): `settle` stops reading, or asks for `Again`
        // when the flush made room.
        self.out.settle(&mut self.stream, ctx, true)
    }

    fn handle_output(&mut self, ctx: &mut dyn Context) -> Disposition {
        self.out.settle(&mut self.stream, ctx, false)
    }

    fn handle_close(&mut self, _ctx: &mut dyn Context, reason: CloseReason) {
        let bounded = self.max_buffered < OUT_LIMIT + READ_CHUNK;
        println!(
            "  service #{}: closed ({reason:?}) after {} line(s), {} bytes; \
             output buffer stayed under limit + one read: {bounded}",
            self.id, self.lines, self.bytes
        );
        let _ = self.closed.send(self.id);
    }
}

/// A scripted client: reads the greeting, sends its lines one at a time, checks each echo.
fn talk(name: &str, addr: SocketAddr, lines: &[&str], closed: &Receiver<usize>) -> io::Result<()> {
    println!("{name}: connects");
    let stream = StdStream::connect(addr)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    let mut greeting = String::new();
    reader.read_line(&mut greeting)?;
    println!("{name}: greeted with {:?}", greeting.trim_end());
    for line in lines {
        println!("{name}: sends {line:?}");
        writer.write_all(format!("{line}\n").as_bytes())?;
        let mut echo = String::new();
        reader.read_line(&mut echo)?;
        println!("{name}: got {:?} back", echo.trim_end());
    }
    println!("{name}: hangs up");
    drop(writer);
    drop(reader);
    closed.recv().map_err(io::Error::other)?;
    Ok(())
}

/// A client that sends one line of `len` bytes while reading the echo on another thread, so
/// that the server's output buffer, not the client, sets the pace.
fn bulk(name: &str, addr: SocketAddr, len: usize, closed: &Receiver<usize>) -> io::Result<()> {
    println!("{name}: connects");
    let stream = StdStream::connect(addr)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut greeting = String::new();
    reader.read_line(&mut greeting)?;
    println!("{name}: greeted with {:?}", greeting.trim_end());
    let payload: Vec<u8> = (0..len)
        .map(|i| b'a' + (i % 26) as u8)
        .chain(std::iter::once(b'\n'))
        .collect();
    println!("{name}: streams a line of {len} bytes while reading the echo");
    let mut writer = stream;
    let sent = payload.clone();
    let sender = thread::spawn(move || writer.write_all(&sent).map(|()| writer));
    let mut echo = vec![0u8; payload.len()];
    reader.read_exact(&mut echo)?;
    let writer = sender.join().expect("writer thread")?;
    println!(
        "{name}: got {} bytes back, identical: {}",
        echo.len() - 1,
        echo == payload
    );
    println!("{name}: hangs up");
    drop(writer);
    drop(reader);
    closed.recv().map_err(io::Error::other)?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut reactor = Reactor::new()?;
    let (closed_tx, closed_rx) = mpsc::channel();
    let mut next_id = 0;
    let acceptor = Acceptor::bind("127.0.0.1:0".parse()?, move |stream, _peer| {
        next_id += 1;
        println!("  acceptor: accepted connection #{next_id}; made its echo service handler");
        let service = EchoService::new(next_id, stream, closed_tx.clone());
        // The greeting waits in the buffer: the interest asks for writability as well.
        let interest = service.out.interest();
        Some((service, interest))
    })?;
    let addr = acceptor.local_addr()?;
    let counters = acceptor.counters();
    acceptor.open(&mut reactor)?;
    println!("reactor: acceptor registered on a loopback port; the loop runs on the main thread");

    let remote = reactor.remote();
    let clients = thread::spawn(move || -> io::Result<()> {
        talk("client A", addr, &["hello", "how are you?"], &closed_rx)?;
        talk("client B", addr, &["one", "two", "three"], &closed_rx)?;
        bulk("client C", addr, 1 << 20, &closed_rx)?;
        println!("clients: done; asking the reactor to end");
        remote.end();
        Ok(())
    });

    reactor.serve()?;
    clients.join().expect("client thread")?;
    let stats = counters.snapshot();
    println!(
        "reactor: loop ended; {} connections accepted, {} handler(s) still registered (the acceptor)",
        stats.accepted,
        reactor.handlers()
    );
    Ok(())
}
