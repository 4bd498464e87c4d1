//! Every server returns every byte, in order, on the connection it came from.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;

use crate::{ALL, spawn};

#[test]
fn many_connections_each_get_their_own_bytes_back() {
    for kind in ALL {
        let addr = spawn(kind);
        let mut streams: Vec<TcpStream> = (0..50)
            .map(|_| TcpStream::connect(addr).expect("connect"))
            .collect();
        for round in 0..3u8 {
            for (i, s) in streams.iter_mut().enumerate() {
                let msg = [i as u8 ^ round; 64];
                s.write_all(&msg).unwrap();
            }
            for (i, s) in streams.iter_mut().enumerate() {
                let mut back = [0u8; 64];
                s.read_exact(&mut back).unwrap();
                assert_eq!(back, [i as u8 ^ round; 64], "{kind:?}, connection {i}");
            }
        }
    }
}

/// Four megabytes sent before reading any of the echo fill both socket buffers, so servers
/// must hold back output and stop reading until the client catches up.
#[test]
fn a_transfer_larger_than_the_socket_buffers_survives_backpressure() {
    const LEN: usize = 4 << 20;
    let data: Vec<u8> = (0..LEN).map(|i| (i % 251) as u8).collect();
    for kind in ALL {
        let addr = spawn(kind);
        let mut stream = TcpStream::connect(addr).expect("connect");
        let mut writer = stream.try_clone().unwrap();
        let sent = data.clone();
        let sender = thread::spawn(move || writer.write_all(&sent));
        let mut back = vec![0u8; LEN];
        stream.read_exact(&mut back).unwrap();
        sender.join().unwrap().unwrap();
        assert!(back == data, "{kind:?} returned different bytes");
    }
}

#[test]
fn a_closed_connection_does_not_disturb_the_others() {
    for kind in ALL {
        let addr = spawn(kind);
        let mut keep = TcpStream::connect(addr).unwrap();
        let mut gone = TcpStream::connect(addr).unwrap();
        gone.write_all(b"bye").unwrap();
        drop(gone);
        keep.write_all(b"still here").unwrap();
        let mut back = [0u8; 10];
        keep.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"still here", "{kind:?}");
    }
}
