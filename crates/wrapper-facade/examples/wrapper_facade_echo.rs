//! A blocking echo service over the wrapper facades: a server thread and a client in one run.
//!
//! The server thread lives in a `ThreadRegistry` group; the client connects with a deadline,
//! sends three lines and reads each echo back with `recv_n`. Only the main thread prints (the
//! server hands its account back when joined), so the output is the same on every run.

use std::time::Duration;

use wrapper_facade::thread::ThreadRegistry;
use wrapper_facade::{InetAddr, SockAcceptor, SockConnector};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let acceptor = SockAcceptor::bind(&InetAddr::loopback_v4(0))?;
    let addr = acceptor.local_addr()?;
    println!("acceptor:  listening on {} (ephemeral port)", addr.ip());

    let registry = ThreadRegistry::default();
    let (report_tx, report_rx) = std::sync::mpsc::channel::<Vec<String>>();
    registry.spawn("echo", "echo-server", move |_token| {
        let mut log = Vec::new();
        let (stream, peer) = acceptor.accept().expect("accept");
        log.push(format!(
            "accepted a connection from {} (peer port is the client's)",
            peer.ip()
        ));
        let mut buf = [0u8; 64];
        loop {
            match stream.recv(&mut buf) {
                Ok(0) => {
                    log.push("peer closed its side: end of stream".to_owned());
                    break;
                }
                Ok(n) => {
                    stream.send_n(&buf[..n]).expect("echo");
                    log.push(format!("echoed {n} bytes"));
                }
                Err(e) => {
                    log.push(format!("recv failed: {e}"));
                    break;
                }
            }
        }
        report_tx.send(log).expect("report");
    })?;

    let stream = SockConnector::default()
        .nodelay(true)
        .connect_timeout(&addr, Duration::from_secs(5))?;
    println!("connector: connected (TCP_NODELAY = {})", stream.nodelay()?);
    for line in [
        "hello, wrapper facade\n",
        "concise\n",
        "robust and portable\n",
    ] {
        stream.send_n(line.as_bytes())?;
        let mut echo = vec![0u8; line.len()];
        stream.recv_n(&mut echo)?;
        println!("client:    sent {:?}, got it back", line.trim_end());
    }

    // A short read past the end shows the partial count carried by the error.
    stream.shutdown(std::net::Shutdown::Write)?;
    let mut more = [0u8; 8];
    match stream.recv_n(&mut more) {
        Err(e) if e.is_eof() => println!(
            "client:    recv_n after half-close: {} of {} bytes, then end of stream",
            e.transferred(),
            e.requested()
        ),
        other => println!("client:    unexpected: {other:?}"),
    }

    let outcomes = registry.join_group("echo");
    println!(
        "registry:  joined {} thread(s): {}",
        outcomes.len(),
        outcomes[0].name()
    );
    for entry in report_rx.recv()? {
        println!("server:    {entry}");
    }
    Ok(())
}
