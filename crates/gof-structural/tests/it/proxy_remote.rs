//! Remote proxy: same interface as the device; timeouts, drops and bad frames are errors, not hangs.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Barrier, mpsc};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use gof_structural::Error;
use gof_structural::proxy::{
    DeviceOperation, DeviceService, DeviceSkeleton, FieldDevice, InProcessTransport, RemoteDevice,
    TcpConfig, TcpDeviceServer, TcpTransport, Transport, registers, wire,
};

/// Short limits: the tests wait for errors, never for success, so short is safe.
fn config() -> TcpConfig {
    TcpConfig {
        connect_timeout: Duration::from_secs(5),
        write_timeout: Duration::from_secs(5),
        reply_timeout: Duration::from_millis(200),
        max_frame: 1024,
    }
}

fn serve(device: FieldDevice) -> TcpDeviceServer {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    TcpDeviceServer::spawn(listener, DeviceSkeleton::new(device), 1024).unwrap()
}

/// A hand-written peer: accepts connections one by one and runs `behave` on each.
fn fake_server(
    connections: usize,
    behave: impl Fn(usize, TcpStream) + Send + 'static,
) -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = thread::spawn(move || {
        for n in 0..connections {
            let (stream, _) = listener.accept().unwrap();
            behave(n, stream);
        }
    });
    (addr, handle)
}

/// Exercises the whole interface, errors included, and reports what it saw.
fn script(device: &impl DeviceService) -> Vec<String> {
    vec![
        format!("{:?}", device.identify()),
        format!("{:?}", device.write_register(registers::SETPOINT, 22_500)),
        format!("{:?}", device.read_register(registers::SETPOINT)),
        format!("{:?}", device.write_register(registers::TEMPERATURE, 1)),
        format!("{:?}", device.read_register(0x7777)),
    ]
}

#[test]
fn the_stub_answers_exactly_like_the_local_device() {
    let local = script(&FieldDevice::new("TC-100", 9));
    let in_process = RemoteDevice::new(InProcessTransport::new(DeviceSkeleton::new(
        FieldDevice::new("TC-100", 9),
    )));
    assert_eq!(script(&in_process), local);
    let server = serve(FieldDevice::new("TC-100", 9));
    let over_tcp = RemoteDevice::new(TcpTransport::new(server.local_addr(), config()));
    assert_eq!(script(&over_tcp), local);
    assert_eq!(
        over_tcp.transport().connects(),
        1,
        "one connection carried every call"
    );
}

#[test]
fn many_clients_share_one_server() {
    const CLIENTS: usize = 4;
    let server = serve(FieldDevice::new("TC-100", 1));
    let addr = server.local_addr();
    let start = Arc::new(Barrier::new(CLIENTS));
    let workers: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let start = Arc::clone(&start);
            thread::spawn(move || {
                let remote = RemoteDevice::new(TcpTransport::new(addr, config()));
                start.wait();
                for _ in 0..25 {
                    assert_eq!(
                        remote.read_register(registers::DEVICE_ID).unwrap(),
                        1,
                        "client {i}"
                    );
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let check = RemoteDevice::new(TcpTransport::new(addr, config()));
    check.identify().unwrap();
}

#[test]
fn a_peer_that_never_answers_times_out_and_the_next_call_reconnects() {
    let (release_tx, release) = mpsc::channel::<()>();
    let release = std::sync::Mutex::new(release);
    let (addr, peer) = fake_server(2, move |n, mut stream| {
        if n == 0 {
            // Read the request, then say nothing until the test is done with us.
            let _ = wire::read_frame(&mut stream, 1024);
            let _ = release.lock().unwrap().recv();
        } else {
            let _ = DeviceSkeleton::new(FieldDevice::new("TC", 2)).serve(&stream, 1024);
        }
    });
    let remote = RemoteDevice::new(TcpTransport::new(addr, config()));
    assert!(matches!(remote.identify(), Err(Error::Timeout)));
    release_tx.send(()).unwrap();
    // The timed-out connection was dropped; the next call opens a fresh one and succeeds.
    assert_eq!(remote.identify().unwrap(), "TC #2");
    assert_eq!(remote.transport().connects(), 2);
    drop(remote);
    peer.join().unwrap();
}

#[test]
fn a_peer_that_closes_is_a_disconnect() {
    let (addr, peer) = fake_server(2, |n, mut stream| {
        if n == 0 {
            drop(stream); // closes before reading anything
        } else {
            let _ = wire::read_frame(&mut stream, 1024); // closes after reading the request
        }
    });
    let remote = RemoteDevice::new(TcpTransport::new(addr, config()));
    let first = remote.read_register(1).unwrap_err();
    assert!(matches!(first, Error::Disconnected), "got {first:?}");
    let second = remote.read_register(1).unwrap_err();
    assert!(matches!(second, Error::Disconnected), "got {second:?}");
    peer.join().unwrap();
}

#[test]
fn a_reply_cut_short_is_a_disconnect() {
    let (addr, peer) = fake_server(1, |_, mut stream| {
        let _ = wire::read_frame(&mut stream, 1024);
        stream.write_all(&[0, 0, 0, 10, 1, 2, 3]).unwrap(); // 3 of 10 promised bytes
    });
    let remote = RemoteDevice::new(TcpTransport::new(addr, config()));
    assert!(matches!(remote.identify(), Err(Error::Disconnected)));
    peer.join().unwrap();
}

#[test]
fn an_oversized_reply_is_refused_without_reading_it() {
    let (addr, peer) = fake_server(1, |_, mut stream| {
        let _ = wire::read_frame(&mut stream, 1024);
        stream.write_all(&u32::MAX.to_be_bytes()).unwrap(); // "4 GiB follow"
    });
    let remote = RemoteDevice::new(TcpTransport::new(addr, config()));
    assert!(
        matches!(remote.identify(), Err(Error::FrameTooLarge { len, max: 1024 }) if len == u32::MAX as usize)
    );
    peer.join().unwrap();
}

#[test]
fn a_garbled_reply_is_malformed() {
    let (addr, peer) = fake_server(1, |_, mut stream| {
        let _ = wire::read_frame(&mut stream, 1024);
        wire::write_frame(&mut stream, b"\0\0\0\x01\x99garbage", 1024).unwrap();
    });
    let remote = RemoteDevice::new(TcpTransport::new(addr, config()));
    assert!(matches!(remote.identify(), Err(Error::MalformedFrame(_))));
    peer.join().unwrap();
}

#[test]
fn an_oversized_request_is_refused_before_it_is_sent() {
    let server = serve(FieldDevice::new("TC", 1));
    let transport = TcpTransport::new(server.local_addr(), config());
    assert!(matches!(
        transport.round_trip(&[0; 2048]),
        Err(Error::FrameTooLarge { .. })
    ));
    assert_eq!(transport.connects(), 0);
    let remote = RemoteDevice::new(transport);
    assert_eq!(remote.identify().unwrap(), "TC #1");
}

#[test]
fn the_server_survives_bad_clients() {
    let server = serve(FieldDevice::new("TC", 1));
    // A client sending a well-framed but undecodable request gets an error reply and can go on.
    let mut sloppy = TcpStream::connect(server.local_addr()).unwrap();
    wire::write_frame(&mut sloppy, b"nonsense", 1024).unwrap();
    let reply = wire::read_frame(&mut sloppy, 1024).unwrap();
    assert!(matches!(
        wire::decode_reply(&reply).unwrap(),
        (0, wire::Reply::Failed(Error::MalformedFrame(_)))
    ));
    wire::write_frame(
        &mut sloppy,
        &wire::encode_request(5, &DeviceOperation::Identify),
        1024,
    )
    .unwrap();
    let reply = wire::read_frame(&mut sloppy, 1024).unwrap();
    assert!(matches!(
        wire::decode_reply(&reply).unwrap(),
        (5, wire::Reply::Identity(_))
    ));
    // A client announcing an oversized frame is cut off: the stream cannot be resynchronised.
    let mut hostile = TcpStream::connect(server.local_addr()).unwrap();
    hostile.write_all(&u32::MAX.to_be_bytes()).unwrap();
    let mut rest = Vec::new();
    // Returns once the server closes: an orderly end with no reply, or a reset.
    match hostile.read_to_end(&mut rest) {
        Ok(_) => assert!(rest.is_empty(), "no reply to a frame that cannot be read"),
        Err(err) => assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset),
    }
    // Everyone else is still served.
    let remote = RemoteDevice::new(TcpTransport::new(server.local_addr(), config()));
    assert_eq!(remote.identify().unwrap(), "TC #1");
}

#[test]
fn a_server_shutdown_is_an_error_for_its_clients_not_a_hang() {
    let server = serve(FieldDevice::new("TC", 1));
    let addr = server.local_addr();
    let remote = RemoteDevice::new(TcpTransport::new(addr, config()));
    remote.identify().unwrap();
    assert_eq!(server.open_connections(), 1);
    server.shutdown();
    let err = remote.identify().unwrap_err();
    assert!(err.is_transport(), "got {err:?}");
    // With the server gone for good, connecting is refused: still an error, still no hang.
    assert!(remote.identify().unwrap_err().is_transport());
}
