//! Allocations per record on logd's ingest path under leader/followers, counted by a global
//! allocator (hence a test binary of its own).
//!
//! The upcalls decode into a batch that is thread-specific storage of the pool's threads
//! (`server::SCRATCH`, a `concurrency::ThreadSpecific`), not a batch per connection: a warm
//! thread's batch has grown to its working size, so a connection's records cost no
//! allocation however many it sends, and a new connection does not grow a batch of its own.
//! The test compares two phases of the same number of short connections, one record each and
//! fifty records each: the forty-nine more records per connection may not cost one more
//! allocation per connection. With a batch per connection (before) they cost its growth, a
//! dozen allocations per connection.

#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

use logging_service::logd::{Logd, LogdConfig};
use logging_service::store::StoreConfig;
use wrapper_facade::alloc::CountingAllocator;

#[global_allocator]
static COUNTING: CountingAllocator = CountingAllocator::new();

/// `records` syslog lines (newline framing), each with a 64-byte message.
fn lines(records: usize) -> Vec<u8> {
    (0..records)
        .flat_map(|i| {
            format!("<13>1 2026-01-01T00:00:00.000000Z host app 1 - - message {i:0>56}\n")
                .into_bytes()
        })
        .collect()
}

/// One connection per element of `sends`, one after the other, each sending its bytes and
/// waiting until logd closes it (it does once what it read is stored).
fn connections(at: SocketAddr, sends: &[Vec<u8>]) {
    let mut rest = Vec::with_capacity(16);
    for bytes in sends {
        let mut s = TcpStream::connect(at).expect("connect");
        s.write_all(bytes).expect("send");
        s.shutdown(Shutdown::Write).expect("half-close");
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        rest.clear();
        s.read_to_end(&mut rest).expect("logd closes");
    }
}

#[test]
fn more_records_per_connection_cost_no_more_allocations_under_leader_followers() {
    const CONNS: usize = 200;
    let dir = std::env::temp_dir().join(format!("logd-alloc-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let logd = Logd::start(LogdConfig {
        ace_port: None,
        syslog_port: Some(0),
        store: StoreConfig::new(&dir),
        concurrency: "leader-followers:2".parse().expect("a concurrency model"),
        ..LogdConfig::default()
    })
    .expect("logd starts");
    let at = logd.listening().syslog_tcp.expect("syslog over TCP");
    let one: Vec<Vec<u8>> = (0..CONNS).map(|_| lines(1)).collect();
    let fifty: Vec<Vec<u8>> = (0..CONNS).map(|_| lines(50)).collect();
    // Warm: every pool thread's batch, the store's free list and its file grow to size.
    connections(at, &fifty);
    connections(at, &one);
    let small = COUNTING.during(|| connections(at, &one));
    let large = COUNTING.during(|| connections(at, &fifty));
    let stats = logd.stop().expect("logd stops");
    let _ = std::fs::remove_dir_all(&dir);
    let records = CONNS * (1 + 50) * 2;
    assert_eq!(stats.records, records as u64, "{stats:?}");
    let per_conn = |n: u64| n as f64 / CONNS as f64;
    println!(
        "allocations per connection: {:.2} with 1 record, {:.2} with 50 records; per record over the 49 more: {:.3}",
        per_conn(small),
        per_conn(large),
        large.saturating_sub(small) as f64 / (CONNS * 49) as f64
    );
    assert!(
        large < small + CONNS as u64,
        "49 more records per connection cost {} more allocations over {CONNS} connections",
        large.saturating_sub(small)
    );
}
