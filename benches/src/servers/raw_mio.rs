//! The ceiling: a hand-written mio loop with no abstraction between epoll and the echo.
//!
//! Connections live in a vector indexed by token (freed slots reused); each waits for read
//! readiness (edge-triggered) and is pumped ([`super::pump`]) on every event, stopping at a
//! short read unless the event reported the peer's close (the `read` tokio also saves). Only while a reply
//! is stuck does it wait for write readiness instead: registering for both all the time costs
//! a writable edge, and so a wasted wakeup and `read`, whenever the peer's ACK frees buffer
//! space.

use std::io::{self, ErrorKind};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

use super::{Pumped, READ_CHUNK, pump};

const LISTENER: Token = Token(usize::MAX);

#[derive(Debug)]
struct Connection {
    stream: TcpStream,
    out: Vec<u8>,
    /// Registered for write readiness (a reply is stuck) rather than read readiness.
    writing: bool,
}

/// Serves echo on `listener` forever (returns only on a polling error).
pub fn serve(listener: std::net::TcpListener) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let mut listener = TcpListener::from_std(listener);
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(1024);
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut connections: Vec<Option<Connection>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut scratch = vec![0u8; READ_CHUNK];
    loop {
        match poll.poll(&mut events, None) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        for event in events.iter() {
            if event.token() == LISTENER {
                accept_all(&listener, &poll, &mut connections, &mut free);
                continue;
            }
            let index = event.token().0;
            let Some(connection) = connections.get_mut(index).and_then(Option::as_mut) else {
                continue;
            };
            // A short read proves the queue empty unless this event also reported the close.
            let stop_short = !(event.is_read_closed() || event.is_error());
            let pumped = pump(
                &mut connection.stream,
                &mut connection.out,
                &mut scratch,
                stop_short,
            );
            let writing = match pumped {
                Pumped::Drained => false,
                Pumped::Blocked => true,
                Pumped::Closed => {
                    let _ = poll.registry().deregister(&mut connection.stream);
                    connections[index] = None;
                    free.push(index);
                    continue;
                }
            };
            if writing != connection.writing {
                let interest = if writing {
                    Interest::WRITABLE
                } else {
                    Interest::READABLE
                };
                let registry = poll.registry();
                if registry
                    .reregister(&mut connection.stream, event.token(), interest)
                    .is_err()
                {
                    let _ = registry.deregister(&mut connection.stream);
                    connections[index] = None;
                    free.push(index);
                    continue;
                }
                connection.writing = writing;
            }
        }
    }
}

fn accept_all(
    listener: &TcpListener,
    poll: &Poll,
    connections: &mut Vec<Option<Connection>>,
    free: &mut Vec<usize>,
) {
    loop {
        let mut stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                // Out of descriptors, most likely: keep serving those we have.
                eprintln!("echo-raw-mio: accept: {e}");
                return;
            }
        };
        let _ = stream.set_nodelay(true);
        let index = free.pop().unwrap_or_else(|| {
            connections.push(None);
            connections.len() - 1
        });
        if poll
            .registry()
            .register(&mut stream, Token(index), Interest::READABLE)
            .is_err()
        {
            free.push(index);
            continue;
        }
        connections[index] = Some(Connection {
            stream,
            out: Vec::new(),
            writing: false,
        });
    }
}
