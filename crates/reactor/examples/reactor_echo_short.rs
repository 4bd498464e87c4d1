//! The shortest echo server with backpressure on the reactor: the handler reads while its
//! [`OutBuffer`] is under the limit, and [`OutBuffer::settle`] flushes, stops reading while
//! the peer lags, and resumes once it drains.
//!
//! Two clients run in-process, one after the other: a polite one, and one that streams 16 MiB
//! while reading the echo at its own pace, so the server stops reading whenever the echo
//! lags more than the limit behind: its buffer never holds more than the limit plus one read.
//! (`write_backpressure_stops_reading_until_the_peer_drains` in `tests/it/acceptor.rs` checks
//! the pause itself, with a client that reads nothing until the server has stopped reading.)

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream as StdStream;
use std::os::fd::{AsFd, BorrowedFd};
use std::thread;

use reactor::{
    Acceptor, Context, Disposition, EventHandler, Interest, OutBuffer, Reactor, Remote, SockStream,
};

const LIMIT: usize = 64 * 1024;

// -- The handler: 25 lines, and `handle_close` for the narration. --
struct Echo {
    stream: SockStream,
    out: OutBuffer,
}

impl EventHandler for Echo {
    fn handle(&self) -> Option<BorrowedFd<'_>> {
        Some(self.stream.as_fd())
    }
    fn handle_input(&mut self, ctx: &mut dyn Context) -> Disposition {
        let mut buf = [0u8; 16 * 1024];
        while !self.out.is_over_limit() {
            match self.stream.read(&mut buf) {
                Ok(0) => return Disposition::Close,
                Ok(n) => self.out.push(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => return Disposition::Close,
            }
        }
        self.out
            .settle(&mut self.stream, ctx, self.out.is_over_limit())
    }
    fn handle_output(&mut self, ctx: &mut dyn Context) -> Disposition {
        self.out.settle(&mut self.stream, ctx, false)
    }
    // -- Narration only. --
    fn handle_close(&mut self, _ctx: &mut dyn Context, _reason: reactor::CloseReason) {
        println!(
            "  echo: closed; never held more than limit + one read: {}",
            self.out.peak() <= LIMIT + 16 * 1024
        );
    }
}
// -- End of the handler. --

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut reactor = Reactor::new()?;
    let acceptor = Acceptor::bind("127.0.0.1:0".parse()?, |stream, _peer| {
        let echo = Echo {
            stream,
            out: OutBuffer::with_limit(LIMIT),
        };
        Some((echo, Interest::READ))
    })?;
    let addr = acceptor.local_addr()?;
    acceptor.open(&mut reactor)?;
    println!("reactor: echo acceptor registered");

    let remote = reactor.remote();
    let clients = thread::spawn(move || -> std::io::Result<()> {
        let mut polite = StdStream::connect(addr)?;
        polite.write_all(b"hello")?;
        let mut echo = [0u8; 5];
        polite.read_exact(&mut echo)?;
        println!(
            "polite client: sent \"hello\", got {:?} back",
            String::from_utf8_lossy(&echo)
        );
        // Half-close, then wait for the server's close: its narration comes first.
        polite.shutdown(std::net::Shutdown::Write)?;
        polite.read_to_end(&mut Vec::new())?;

        let payload: Vec<u8> = (0..16 << 20).map(|i: usize| (i % 251) as u8).collect();
        let mut greedy = StdStream::connect(addr)?;
        println!(
            "greedy client: streams 16 MiB from one thread, reads the echo from another at its own pace"
        );
        let mut writer = greedy.try_clone()?;
        let sent = payload.clone();
        let write = thread::spawn(move || writer.write_all(&sent));
        let mut back = vec![0u8; payload.len()];
        greedy.read_exact(&mut back)?;
        write.join().expect("writer thread")?;
        println!(
            "greedy client: got all 16 MiB back, identical: {}",
            back == payload
        );
        greedy.shutdown(std::net::Shutdown::Write)?;
        greedy.read_to_end(&mut Vec::new())?;
        Ok(())
    });
    // Serve until both clients are done, then end the loop from here.
    let waiter = thread::spawn(move || {
        let outcome = clients.join().expect("client thread");
        remote.end();
        outcome
    });
    reactor.serve()?;
    waiter.join().expect("waiter thread")?;
    println!("reactor: loop ended");
    Ok(())
}
