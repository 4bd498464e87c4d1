//! `send_n`/`recv_n` report how far they got: peer close, socket timeout, reset peer.

use std::io;
use std::time::Duration;

use super::tcp_pair;

#[test]
fn recv_n_reports_the_partial_count_when_the_peer_closes() {
    let (client, server) = tcp_pair();
    client.send_n(b"abc").unwrap();
    drop(client);
    let mut buf = [0u8; 8];
    let err = server.recv_n(&mut buf).unwrap_err();
    assert!(err.is_eof());
    assert_eq!((err.transferred(), err.requested()), (3, 8));
    assert_eq!(&buf[..err.transferred()], b"abc");
}

#[test]
fn recv_n_reports_the_partial_count_on_a_socket_timeout() {
    let (client, server) = tcp_pair();
    server
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    // The kernel keeps timeouts in scheduler ticks, so the value read back may be rounded up.
    assert!(server.read_timeout().unwrap() >= Some(Duration::from_millis(50)));
    client.send_n(b"abcd").unwrap();
    let mut buf = [0u8; 8];
    let err = server.recv_n(&mut buf).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    assert_eq!(err.transferred(), 4);
    assert_eq!(&buf[..4], b"abcd");
    drop(client);
}

#[test]
fn recv_on_a_nonblocking_stream_passes_would_block_through() {
    let (_client, server) = tcp_pair();
    server.set_nonblocking(true).unwrap();
    let err = server.recv(&mut [0u8; 4]).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    assert_eq!(err.raw_os_error(), Some(libc::EAGAIN));
    let err = server.recv_n(&mut [0u8; 4]).unwrap_err();
    assert_eq!(
        (err.kind(), err.transferred()),
        (io::ErrorKind::WouldBlock, 0)
    );
}

#[test]
fn send_to_a_reset_peer_is_broken_pipe_not_sigpipe() {
    let (client, server) = tcp_pair();
    // Linger zero: closing sends a reset instead of a FIN.
    server.set_linger(Some(Duration::ZERO)).unwrap();
    drop(server);
    // Wait for the reset to arrive (the recv reports it), then the stream is dead.
    let err = client.recv(&mut [0u8; 1]).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
    let err = client.send_n(&[7u8; 1024]).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    assert_eq!(err.io_error().raw_os_error(), Some(libc::EPIPE));
    assert_eq!(err.transferred(), 0);
    // Still alive: MSG_NOSIGNAL kept SIGPIPE from killing the process.
}
