//! The binaries keep the protocol that `cargo xtask bench` and anyone's client rely on.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};

/// Kills and reaps the child when the test ends, however it ends.
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn every_server_binary_announces_its_address_and_echoes() {
    for (binary, extra) in [
        (env!("CARGO_BIN_EXE_echo-raw-mio"), &[][..]),
        (env!("CARGO_BIN_EXE_echo-reactor"), &[][..]),
        (env!("CARGO_BIN_EXE_echo-tokio"), &[][..]),
        (env!("CARGO_BIN_EXE_echo-tokio"), &["--workers", "2"][..]),
        (env!("CARGO_BIN_EXE_echo-threads"), &[][..]),
        (env!("CARGO_BIN_EXE_echo-lf"), &[][..]),
        (env!("CARGO_BIN_EXE_echo-lf"), &["--threads", "1"][..]),
        (env!("CARGO_BIN_EXE_echo-hsha"), &[][..]),
        (env!("CARGO_BIN_EXE_echo-hsha"), &["--threads=3"][..]),
        (env!("CARGO_BIN_EXE_echo-proactor"), &[][..]),
        (env!("CARGO_BIN_EXE_echo-proactor"), &["--sqpoll", "10"][..]),
        (env!("CARGO_BIN_EXE_echo-uring-raw"), &[][..]),
        (env!("CARGO_BIN_EXE_echo-monoio"), &[][..]),
        (env!("CARGO_BIN_EXE_echo-tokio-uring"), &[][..]),
        (env!("CARGO_BIN_EXE_echo-compio"), &[][..]),
    ] {
        let mut child = Reaped(
            Command::new(binary)
                .args(["--addr", "127.0.0.1:0"])
                .args(extra)
                .stdout(Stdio::piped())
                .spawn()
                .expect("spawn"),
        );
        let mut line = String::new();
        BufReader::new(child.0.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr: SocketAddr = line
            .strip_prefix("LISTENING ")
            .unwrap_or_else(|| panic!("{binary}: `{line}`"))
            .trim()
            .parse()
            .unwrap();
        assert_ne!(addr.port(), 0, "the real port is announced");
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"ping").unwrap();
        let mut back = [0u8; 4];
        s.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"ping", "{binary}");
    }
}

#[test]
fn the_pool_servers_take_threads_and_reject_a_pool_of_none() {
    for binary in [
        env!("CARGO_BIN_EXE_echo-lf"),
        env!("CARGO_BIN_EXE_echo-hsha"),
    ] {
        let help = Command::new(binary).arg("--help").output().unwrap();
        assert!(help.status.success());
        assert!(String::from_utf8_lossy(&help.stdout).contains("--threads <N>"));
        let bad = Command::new(binary)
            .args(["--addr", "127.0.0.1:0", "--threads", "0"])
            .output()
            .unwrap();
        assert_eq!(bad.status.code(), Some(2), "{binary}");
        assert!(String::from_utf8_lossy(&bad.stderr).contains("at least 1"));
        assert!(
            bad.stdout.is_empty(),
            "{binary} must not announce before refusing"
        );
    }
}

#[test]
fn loadgen_prints_one_json_line_and_rejects_bad_arguments() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || benches::servers::raw_mio::serve(listener));
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["--addr", &addr.to_string(), "--connections", "2"])
        .args(["--warmup", "0", "--duration", "0.1"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let report = lab_report::LoadReport::from_stdout(&stdout).unwrap();
    assert_eq!(report.connections, 2);

    let bad = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .arg("--connections")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("a value is required"));
}
