//! Forwarding through outages: an upstream that goes away and comes back on the same port,
//! the spool across a restart of logd, and each policy of a full spool.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use logging_service::logd::LogdConfig;
use logging_service::spool::FullPolicy;
use parking_lot::Mutex;

use crate::support::{Server, TempDir, ace_frame, send_and_wait, wait_until};

/// A syslog upstream owned by the test, on an address of its own, 127.0.79.N (no other
/// upstream or test binds it, so its port stays free while the upstream is down: with one
/// shared address, a concurrent test's upstream could be given the port this one freed, and
/// this one's forwarder would connect to it). It can be stopped (connections refused) and
/// started again on the same port.
struct Upstream {
    addr: SocketAddr,
    messages: Arc<Mutex<Vec<String>>>,
    running: Option<Running>,
}

/// The upstream's open connections, each with its reader thread.
type Connections = Arc<Mutex<Vec<(TcpStream, JoinHandle<()>)>>>;

struct Running {
    stop: Arc<AtomicBool>,
    accept: JoinHandle<()>,
    conns: Connections,
}

/// Reads RFC 6587 octet-counted frames and keeps each message's MSG part.
fn read_frames(mut s: TcpStream, out: Arc<Mutex<Vec<String>>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        while let Some(sp) = buf.iter().position(|&b| b == b' ') {
            let len: usize = std::str::from_utf8(&buf[..sp]).unwrap().parse().unwrap();
            if buf.len() < sp + 1 + len {
                break;
            }
            let msg = String::from_utf8(buf[sp + 1..sp + 1 + len].to_vec()).unwrap();
            let text = msg.splitn(8, ' ').nth(7).unwrap().to_string();
            out.lock().push(text);
            buf.drain(..sp + 1 + len);
        }
    }
}

impl Upstream {
    /// A free port, not listened on yet: the upstream is down.
    fn down() -> Self {
        static NEXT: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(1);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        assert!(n < 255, "more upstreams than addresses");
        let l = TcpListener::bind((std::net::Ipv4Addr::new(127, 0, 79, n), 0)).unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        Upstream {
            addr,
            messages: Arc::default(),
            running: None,
        }
    }

    fn start(&mut self) {
        let listener = TcpListener::bind(self.addr).expect("the upstream's port is free");
        let stop = Arc::new(AtomicBool::new(false));
        let conns: Connections = Arc::default();
        let (st, cs, out) = (stop.clone(), conns.clone(), self.messages.clone());
        let accept = std::thread::spawn(move || {
            for s in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(s) = s else { continue };
                let out = out.clone();
                let keep = s.try_clone().unwrap();
                let reader = std::thread::spawn(move || read_frames(s, out));
                cs.lock().push((keep, reader));
            }
        });
        self.running = Some(Running {
            stop,
            accept,
            conns,
        });
    }

    /// Stops listening and closes every connection; returns once all is closed.
    fn stop(&mut self) {
        let r = self.running.take().expect("running");
        r.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop, which then drops the listener.
        let _ = TcpStream::connect(self.addr);
        r.accept.join().unwrap();
        for (s, reader) in std::mem::take(&mut *r.conns.lock()) {
            let _ = s.shutdown(Shutdown::Both);
            reader.join().unwrap();
        }
    }

    fn received(&self) -> Vec<String> {
        self.messages.lock().clone()
    }

    fn wait_for(&self, n: usize) {
        wait_until(&format!("the upstream has {n} records"), || {
            self.messages.lock().len() >= n
        });
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        if self.running.is_some() {
            self.stop();
        }
    }
}

fn send(edge: &Server, tag: &str, range: std::ops::Range<usize>) {
    let bytes: Vec<u8> = range
        .flat_map(|i| ace_frame(&format!("{tag} {i}")))
        .collect();
    send_and_wait(edge.at.ace.unwrap(), &bytes);
}

fn expected(parts: &[(&str, std::ops::Range<usize>)]) -> Vec<String> {
    parts
        .iter()
        .flat_map(|(tag, r)| r.clone().map(move |i| format!("{tag} {i}")))
        .collect()
}

fn forwarding_to(up: &Upstream, spool: Option<&TempDir>) -> impl FnOnce(&mut LogdConfig) {
    let addr = up.addr;
    let spool = spool.map(|d| d.0.clone());
    move |c| {
        c.syslog_port = None;
        c.forward = Some(addr);
        c.forwarding.backoff_base = Duration::from_millis(1);
        c.forwarding.backoff_cap = Duration::from_millis(5);
        c.forwarding.stop_timeout = Duration::from_millis(200);
        c.forwarding.spool_dir = spool;
    }
}

/// Regression: the old forwarder gave up for good about 10 s into an outage (it set its
/// closing deadline at the first failed connect), so nothing reached the upstream again.
/// Here the outage lasts 300 failed connection attempts, far past any retry budget (the old
/// back-off made about 8 attempts in its 10 s), with records sent before and during it.
#[test]
fn forwarding_outlives_a_long_outage_and_delivers_everything_in_order() {
    let mut up = Upstream::down();
    let edge = Server::start("fwd-outage", forwarding_to(&up, None));
    let fwd = edge.forwarder();
    send(&edge, "before", 0..50);
    wait_until("300 connection attempts failed", || {
        fwd.stats().connect_failures >= 300
    });
    send(&edge, "during", 0..50);
    assert_eq!(fwd.stats().queued, 100);
    up.start();
    up.wait_for(100);
    let (stats, _) = edge.stop();
    assert_eq!(stats.records, 100);
    assert_eq!(
        up.received(),
        expected(&[("before", 0..50), ("during", 0..50)]),
        "every record once, in order"
    );
    let f = fwd.stats();
    assert_eq!(
        (f.forwarded, f.queued, f.dropped(), f.outages),
        (100, 0, 0, 1)
    );
}

/// The upstream stops (closing its connections) and starts again on the same port: the
/// records sent meanwhile arrive after it is back, each exactly once, in order.
#[test]
fn an_upstream_restarted_on_the_same_port_gets_everything_exactly_once() {
    let mut up = Upstream::down();
    up.start();
    let edge = Server::start("fwd-restart", forwarding_to(&up, None));
    let fwd = edge.forwarder();
    send(&edge, "first", 0..20);
    up.wait_for(20);
    up.stop();
    send(&edge, "second", 0..30);
    wait_until("50 connection attempts failed", || {
        fwd.stats().connect_failures >= 50
    });
    up.start();
    up.wait_for(50);
    send(&edge, "third", 0..10);
    up.wait_for(60);
    edge.stop();
    assert_eq!(
        up.received(),
        expected(&[("first", 0..20), ("second", 0..30), ("third", 0..10)])
    );
    let f = fwd.stats();
    assert_eq!(
        (f.forwarded, f.reconnects, f.outages, f.dropped()),
        (60, 1, 1, 0)
    );
}

/// Stopped while the upstream is down, logd keeps the records in the spool on disk; the
/// next start replays them, in order, once the upstream is there.
#[test]
fn records_survive_a_restart_of_logd_in_the_spool() {
    let mut up = Upstream::down();
    let spool = TempDir::new("fwd-spool");
    let edge = Server::start("fwd-spool-1", forwarding_to(&up, Some(&spool)));
    let fwd = edge.forwarder();
    send(&edge, "kept", 0..30);
    edge.stop();
    let f = fwd.stats();
    assert_eq!((f.forwarded, f.queued, f.spooled), (0, 30, 30));
    assert!(
        std::fs::read_dir(&spool.0).unwrap().any(|e| e
            .unwrap()
            .path()
            .extension()
            .is_some_and(|x| x == "seg")),
        "a segment file holds them"
    );
    up.start();
    let edge = Server::start("fwd-spool-2", forwarding_to(&up, Some(&spool)));
    let fwd = edge.forwarder();
    up.wait_for(30);
    send(&edge, "new", 0..5);
    up.wait_for(35);
    edge.stop();
    assert_eq!(up.received(), expected(&[("kept", 0..30), ("new", 0..5)]));
    let f = fwd.stats();
    assert_eq!((f.recovered, f.forwarded, f.queued), (30, 35, 0));
}

/// A spool too small for an outage: each dropping policy drops what it says, every drop
/// counted under its reason, and what is kept reaches the upstream later.
#[test]
fn a_full_spool_drops_what_its_policy_says_and_counts_every_drop() {
    for policy in [FullPolicy::DropNewest, FullPolicy::DropOldest] {
        let mut up = Upstream::down();
        let spool = TempDir::new("fwd-full");
        let small = {
            let f = forwarding_to(&up, Some(&spool));
            move |c: &mut LogdConfig| {
                f(c);
                c.forwarding.queue_bytes = 1000;
                c.forwarding.spool_max = 4000;
                c.forwarding.spool_full = policy;
            }
        };
        let edge = Server::start("fwd-full", small);
        let fwd = edge.forwarder();
        for batch in 0..10 {
            send(&edge, "r", batch * 20..batch * 20 + 20);
        }
        assert!(
            !edge.output.backlogged(),
            "{policy}: only block asks readers to pause"
        );
        edge.stop();
        let f = fwd.stats();
        let dropped = match policy {
            FullPolicy::DropNewest => f.dropped_spool_full_drop_newest,
            _ => f.dropped_spool_full_drop_oldest,
        };
        assert!(dropped > 0, "{policy}: {f:?}");
        assert_eq!(f.dropped(), dropped, "{policy}: one reason only");
        assert_eq!(f.received, 200);
        assert_eq!(f.queued + f.dropped(), 200, "{policy}: {f:?}");
        // What was kept is delivered after a restart: the oldest ones, or the newest ones.
        up.start();
        let edge = Server::start("fwd-full-2", forwarding_to(&up, Some(&spool)));
        up.wait_for(f.queued as usize);
        edge.stop();
        let kept = f.queued as usize;
        let want = match policy {
            FullPolicy::DropOldest => expected(&[("r", 200 - kept..200)]),
            _ => expected(&[("r", 0..kept)]),
        };
        assert_eq!(up.received(), want, "{policy}");
    }
}

/// `block`, the default: before the spool is full, TCP readers pause (the records wait in
/// the kernel and TCP slows the sender), so TCP loses nothing; UDP cannot wait, so what
/// arrives over UDP while the spool is full is dropped from forwarding and counted. When the
/// upstream is back, the paused connection goes on and everything it sent arrives in order.
#[test]
fn a_full_spool_under_block_pauses_tcp_and_counts_udp_drops() {
    let mut up = Upstream::down();
    let spool = TempDir::new("fwd-block");
    let small = {
        let f = forwarding_to(&up, Some(&spool));
        move |c: &mut LogdConfig| {
            f(c);
            c.syslog_port = Some(0);
            c.forwarding.queue_bytes = 1000;
            c.forwarding.spool_max = 4000;
            c.forwarding.spool_full = FullPolicy::Block;
        }
    };
    let edge = Server::start("fwd-block", small);
    let fwd = edge.forwarder();
    // One record at a time on one connection until the forwarder asks readers to pause.
    let mut conn = TcpStream::connect(edge.at.ace.unwrap()).unwrap();
    let mut sent = 0;
    while !edge.output.backlogged() {
        assert!(sent < 1000, "the spool never filled: {:?}", fwd.stats());
        conn.write_all(&ace_frame(&format!("r {sent}"))).unwrap();
        sent += 1;
        wait_until("the record is read", || {
            edge.output.stats().records == sent as u64
        });
    }
    assert_eq!(fwd.stats().dropped(), 0, "nothing dropped before the pause");
    // 20 more on the same connection: logd does not read them while the spool is full.
    let pauses = edge.output.stats().pauses;
    for i in sent..sent + 20 {
        conn.write_all(&ace_frame(&format!("r {i}"))).unwrap();
    }
    conn.shutdown(Shutdown::Write).unwrap();
    wait_until("the connection paused", || {
        edge.output.stats().pauses > pauses
    });
    assert_eq!(edge.output.stats().records, sent as u64, "paused, not read");
    let tcp = std::thread::spawn(move || {
        // Returns once logd has read everything and closed the connection.
        conn.read_to_end(&mut Vec::new()).unwrap();
    });
    // UDP goes on being read: the spool takes it while it has room, then counts each one
    // it cannot keep.
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut udp_sent = 0;
    while fwd.stats().dropped_spool_full_block < 3 {
        assert!(
            udp_sent < 1000,
            "the spool never refused: {:?}",
            fwd.stats()
        );
        udp.send_to(
            format!("<13>1 - edge app - - - udp {udp_sent}").as_bytes(),
            edge.at.syslog_udp.unwrap(),
        )
        .unwrap();
        udp_sent += 1;
        wait_until("the datagram is read", || {
            edge.output.stats().records == (sent + udp_sent) as u64
        });
    }
    let udp_kept = udp_sent - 3;
    up.start();
    tcp.join().unwrap();
    up.wait_for(sent + udp_kept + 20);
    let (stats, _) = edge.stop();
    assert_eq!(
        stats.records,
        (sent + udp_sent + 20) as u64,
        "every record stored locally"
    );
    assert_eq!(
        up.received(),
        expected(&[("r", 0..sent), ("udp", 0..udp_kept), ("r", sent..sent + 20)]),
        "TCP: all, in order; UDP: all but the 3 refused"
    );
    let f = fwd.stats();
    assert_eq!(
        (
            f.received,
            f.forwarded,
            f.dropped(),
            f.dropped_spool_full_block
        ),
        (
            (sent + udp_sent + 20) as u64,
            (sent + udp_kept + 20) as u64,
            3,
            3
        )
    );
}

/// The forwarder's supervisor and session are handlers on logd's dispatcher: under each
/// concurrency model they connect, send, notice the upstream going away, reconnect from their
/// back-off timer and deliver everything once, in order; the stop drains on its own reactor.
#[test]
fn forwarding_works_under_every_concurrency_model() {
    for model in ["reactor", "leader-followers:2", "half-sync-half-async:2"] {
        let concurrency: leader_followers::Concurrency = model.parse().unwrap();
        let mut up = Upstream::down();
        up.start();
        let forward = forwarding_to(&up, None);
        let edge = Server::start("fwd-models", |c| {
            forward(c);
            c.concurrency = concurrency;
        });
        let fwd = edge.forwarder();
        send(&edge, "first", 0..40);
        up.wait_for(40);
        up.stop();
        send(&edge, "second", 0..40);
        wait_until("the forwarder noticed the outage", || {
            fwd.stats().outages >= 1
        });
        up.start();
        up.wait_for(80);
        let (stats, _) = edge.stop();
        assert_eq!(stats.records, 80, "{model}");
        assert_eq!(
            up.received(),
            expected(&[("first", 0..40), ("second", 0..40)]),
            "{model}: every record once, in order"
        );
        let f = fwd.stats();
        assert_eq!((f.forwarded, f.queued, f.reconnects), (80, 0, 1), "{model}");
    }
}
