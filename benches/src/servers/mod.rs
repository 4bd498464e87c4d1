//! The peer echo servers, one module each; every one echoes each byte it reads on the
//! connection it came from, and none of them ever returns while healthy.
//!
//! Each takes an already bound [`std::net::TcpListener`], so that the binaries (and the tests)
//! choose the address and announce it before serving.

pub mod half_sync;
pub mod handlers;
pub mod leader_followers;
pub mod proactor;
pub mod raw_mio;
pub mod reactor;
pub mod threads;
pub mod tokio;
pub mod uring_runtimes;

use std::io::{self, ErrorKind, Read, Write};

/// Bytes read per `read` call by the servers that read into a scratch buffer.
pub const READ_CHUNK: usize = 16 * 1024;

/// What [`pump`] left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pumped {
    /// Reading hit `WouldBlock` with everything read written back: wait for readable.
    Drained,
    /// Writing hit `WouldBlock`; the rest waits in the outbound buffer: wait for writable.
    Blocked,
    /// The peer closed, or the connection failed: close it.
    Closed,
}

/// The nonblocking echo step shared by the raw mio loop and [`handlers::Echo`]: flush what
/// waits in `out`, then read and write back until one side would block.
///
/// While output is blocked nothing more is read, so a client that does not read cannot make
/// the server buffer without bound.
///
/// With `stop_short`, a read that returns less than `scratch` holds is taken as proof that the
/// socket's receive queue was empty at that moment, and the step ends there as
/// [`Pumped::Drained`] without the extra `read` that would only fail with `WouldBlock` (tokio
/// does the same). This is sound only for a socket registered edge-triggered (bytes arriving
/// later raise a new edge) and only when the event did not also report the peer's close: a FIN
/// that arrived with the last bytes raises no further edge, so the `read` returning 0 must
/// happen now.
pub fn pump<S: Read + Write>(
    stream: &mut S,
    out: &mut Vec<u8>,
    scratch: &mut [u8],
    stop_short: bool,
) -> Pumped {
    let mut drained = false;
    loop {
        if !out.is_empty() {
            match write_some(stream, out) {
                Ok(true) => out.clear(),
                Ok(false) => return Pumped::Blocked,
                Err(_) => return Pumped::Closed,
            }
        }
        if drained {
            return Pumped::Drained;
        }
        match stream.read(scratch) {
            Ok(0) => return Pumped::Closed,
            Ok(n) => {
                out.extend_from_slice(&scratch[..n]);
                drained = stop_short && n < scratch.len();
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Pumped::Drained,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return Pumped::Closed,
        }
    }
}

/// Writes as much of `out` as the socket takes, dropping what was written; `Ok(true)` when
/// all of it went.
fn write_some<S: Write>(stream: &mut S, out: &mut Vec<u8>) -> io::Result<bool> {
    let mut written = 0;
    let result = loop {
        if written == out.len() {
            break Ok(true);
        }
        match stream.write(&out[written..]) {
            Ok(0) => break Err(ErrorKind::WriteZero.into()),
            Ok(n) => written += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break Ok(false),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => break Err(e),
        }
    };
    out.drain(..written);
    result
}

/// Announces the bound address on stdout in the form the bench harness waits for.
pub fn announce(addr: std::net::SocketAddr) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "LISTENING {addr}")?;
    stdout.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// A scripted socket: reads come from `input` (then `WouldBlock` or EOF), writes take at
    /// most `room` bytes before `WouldBlock`.
    #[derive(Debug, Default)]
    struct Script {
        input: VecDeque<Vec<u8>>,
        eof: bool,
        room: usize,
        written: Vec<u8>,
    }

    impl Read for Script {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.input.pop_front() {
                Some(chunk) => {
                    buf[..chunk.len()].copy_from_slice(&chunk);
                    Ok(chunk.len())
                }
                None if self.eof => Ok(0),
                None => Err(ErrorKind::WouldBlock.into()),
            }
        }
    }

    impl Write for Script {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = buf.len().min(self.room);
            if n == 0 {
                return Err(ErrorKind::WouldBlock.into());
            }
            self.room -= n;
            self.written.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn full_reads_go_on_until_would_block_and_are_written_back_in_order() {
        let mut s = Script {
            input: VecDeque::from([b"abcd".to_vec(), b"efgh".to_vec()]),
            room: 100,
            ..Script::default()
        };
        let mut out = Vec::new();
        assert_eq!(pump(&mut s, &mut out, &mut [0; 4], true), Pumped::Drained);
        assert_eq!(s.written, b"abcdefgh");
        assert!(out.is_empty());
    }

    #[test]
    fn a_short_read_ends_the_step_without_another_read() {
        let mut s = Script {
            input: VecDeque::from([b"abc".to_vec(), b"def".to_vec()]),
            room: 100,
            ..Script::default()
        };
        let mut out = Vec::new();
        assert_eq!(pump(&mut s, &mut out, &mut [0; 8], true), Pumped::Drained);
        assert_eq!(s.written, b"abc");
        assert_eq!(s.input.len(), 1, "the next edge brings the rest");
        assert_eq!(pump(&mut s, &mut out, &mut [0; 8], true), Pumped::Drained);
        assert_eq!(s.written, b"abcdef");
    }

    #[test]
    fn a_full_socket_keeps_the_rest_and_stops_reading_until_it_drains() {
        let mut s = Script {
            input: VecDeque::from([b"hello".to_vec(), b"world".to_vec()]),
            room: 3,
            ..Script::default()
        };
        let mut out = Vec::new();
        assert_eq!(pump(&mut s, &mut out, &mut [0; 5], true), Pumped::Blocked);
        assert_eq!(
            (s.written.as_slice(), out.as_slice()),
            (&b"hel"[..], &b"lo"[..])
        );
        assert_eq!(
            s.input.len(),
            1,
            "nothing more is read while output is blocked"
        );
        s.room = 100;
        assert_eq!(pump(&mut s, &mut out, &mut [0; 5], true), Pumped::Drained);
        assert_eq!(s.written, b"helloworld");
    }

    #[test]
    fn without_stop_short_reads_go_on_to_would_block_and_see_end_of_stream() {
        let mut s = Script {
            input: VecDeque::from([b"bye".to_vec()]),
            eof: true,
            room: 100,
            ..Script::default()
        };
        assert_eq!(
            pump(&mut s, &mut Vec::new(), &mut [0; 8], false),
            Pumped::Closed
        );
        assert_eq!(s.written, b"bye");
    }
}
