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
//! dozen allocations per connection. The same holds for the proactor's connections, which
//! decode into the proactor thread's batch; the UDP handler keeps one batch per listener,
//! and a datagram costs it no allocation.

#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

use logging_service::logd::{Logd, LogdConfig};
use logging_service::store::StoreConfig;
use wrapper_facade::alloc::CountingAllocator;

#[global_allocator]
static COUNTING: CountingAllocator = CountingAllocator::new();

/// The count is the whole process's: the tests of this binary take turns, each for its
/// whole length (a failing one's panic allocates too).
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

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

const CONNS: usize = 200;

/// Allocations over `CONNS` connections of 1 record each and of 50 records each, after a
/// warm-up, with logd under leader/followers (2 threads) configured by `edit`.
fn measure(tag: &str, edit: impl FnOnce(&mut LogdConfig, &std::path::Path)) -> (u64, u64) {
    let dir = std::env::temp_dir().join(format!("logd-alloc-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut cfg = LogdConfig {
        ace_port: None,
        syslog_port: Some(0),
        store: StoreConfig::new(dir.join("data")),
        concurrency: "leader-followers:2".parse().expect("a concurrency model"),
        ..LogdConfig::default()
    };
    edit(&mut cfg, &dir);
    let on_proactor = cfg.proactor;
    let logd = Logd::start(cfg).expect("logd starts");
    assert_eq!(
        logd.proactor(),
        on_proactor,
        "io_uring works on this kernel"
    );
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
        "{tag}: allocations per connection: {:.2} with 1 record, {:.2} with 50 records; per record over the 49 more: {:.3}",
        per_conn(small),
        per_conn(large),
        large.saturating_sub(small) as f64 / (CONNS * 49) as f64
    );
    (small, large)
}

#[test]
fn more_records_per_connection_cost_no_more_allocations_under_leader_followers() {
    let _turn = turn();
    let (small, large) = measure("plain", |_, _| {});
    assert!(
        large < small + CONNS as u64,
        "49 more records per connection cost {} more allocations over {CONNS} connections",
        large.saturating_sub(small)
    );
}

/// Runs logd with `chain` as its interceptors (svc.conf).
fn with_chain(chain: &str) -> impl FnOnce(&mut LogdConfig, &std::path::Path) + '_ {
    move |cfg, dir| {
        let conf = format!("static Syslog_Logging \"-p 0\"\nstatic Interceptors \"{chain}\"\n");
        std::fs::write(dir.join("svc.conf"), conf).unwrap();
        cfg.svc_conf = Some(dir.join("svc.conf"));
        cfg.syslog_port = None;
    }
}

/// The rate limiter's per-host buckets are made once per host (Double-Checked Locking in
/// `intercept::RateLimit`): a known host's records copy nothing, so the limiter adds no
/// allocation per record to what the chain's "record decoded" point costs anyway (its
/// context owns copies of the fields), measured with a filter that keeps every record.
/// Before, each record copied its host's name for the map's entry: one more per record.
#[test]
fn a_rate_limited_hosts_records_cost_no_allocation_once_its_bucket_exists() {
    let _turn = turn();
    let (_, filtered) = measure("filter", with_chain("keep host=."));
    let (_, limited) = measure(
        "filter and rate-limit",
        with_chain("keep host=. ; rate-limit burst=1000000"),
    );
    assert!(
        limited < filtered + CONNS as u64,
        "the rate limiter cost {} more allocations over {} records",
        limited.saturating_sub(filtered),
        CONNS * 50
    );
}

/// The proactor's connections (`--concurrency proactor`) decode into the proactor thread's
/// batch (`server::SCRATCH`) too: forty-nine more records per connection cost fewer than one
/// more allocation per connection. Before, each connection owned a batch and grew it: 20.00
/// allocations per connection with 1 record, 29.00 with 50.
#[test]
fn the_proactors_connections_grow_no_batch_of_their_own() {
    let _turn = turn();
    let (small, large) = measure("proactor", |cfg, _| {
        cfg.concurrency = "reactor".parse().expect("a concurrency model");
        cfg.proactor = true;
    });
    assert!(
        large < small + CONNS as u64,
        "49 more records per connection cost {} more allocations over {CONNS} connections",
        large.saturating_sub(small)
    );
}

/// Waits (at most a minute) until logd has taken `records` records, polling its counters
/// (a copy of plain numbers: no allocation).
fn wait_for_records(logd: &Logd, records: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while logd.stats().records < records {
        assert!(
            std::time::Instant::now() < deadline,
            "logd took {} of {records} records",
            logd.stats().records
        );
        std::thread::yield_now();
    }
}

/// Syslog over UDP has one handler per listener, whose batch (and receive buffer) is kept
/// across upcalls and left empty by each, so it is already one batch per listener and needs
/// no thread-specific one: once warm, a datagram, one upcall each here, costs at most one
/// allocation, and that one is not the handler's but the store's, on its thread, for every
/// batch it writes (the host's file stem, looked up per batch). A batch made per upcall would
/// add its own and its text's.
#[test]
fn a_udp_datagram_costs_its_handler_no_allocation_the_batch_is_the_listeners() {
    let _turn = turn();
    let dir = std::env::temp_dir().join(format!("logd-alloc-udp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let logd = Logd::start(LogdConfig {
        ace_port: None,
        syslog_port: Some(0),
        store: StoreConfig::new(dir.join("data")),
        concurrency: "leader-followers:2".parse().expect("a concurrency model"),
        ..LogdConfig::default()
    })
    .expect("logd starts");
    let at = logd.listening().syslog_udp.expect("syslog over UDP");
    let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let datagram = lines(1);
    let mut sent = 0;
    let mut one_by_one = |n: u64| {
        for _ in 0..n {
            client.send_to(&datagram, at).expect("send");
            sent += 1;
            wait_for_records(&logd, sent);
        }
    };
    one_by_one(CONNS as u64); // warm
    let polls = COUNTING.during(|| {
        for _ in 0..100 {
            std::hint::black_box(logd.stats());
        }
    });
    assert_eq!(polls, 0, "waiting on the counters allocates nothing");
    // The fewest of three windows: logd's periodic work (the store's timers) allocates now
    // and then in whichever window it falls; an allocation per datagram shows in every one.
    let counted = (0..3)
        .map(|_| COUNTING.during(|| one_by_one(CONNS as u64)))
        .min()
        .expect("three windows");
    let stats = logd.stop().expect("logd stops");
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(stats.syslog_udp, 4 * CONNS as u64, "{stats:?}");
    let per_datagram = counted as f64 / CONNS as f64;
    println!("udp: allocations per datagram {per_datagram:.3}");
    assert!(
        counted <= CONNS as u64,
        "{per_datagram:.2} allocations per datagram"
    );
}
