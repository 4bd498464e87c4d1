//! Ingest over TLS against cleartext, in one interleaved run: logd (reactor, in this process)
//! with a syslog TCP listener and a `Syslog_TLS` listener; the client library's `bench` sends
//! RFC 5424 records of 64 bytes of text with octet counting over 1 and 16 connections to each,
//! alternating which goes first; a run ends when logd has closed every connection (so every
//! record was stored). Also TLS handshakes per second (a new connection, a full handshake with
//! an ECDSA P-256 certificate, close_notify), one client thread.
//!
//! Prints per-round figures and the medians of the per-round ratios (TLS over cleartext).
//! Run: `cargo bench -p logging-service --bench tls_ingest` (`TLS_BENCH_ROUNDS`,
//! `TLS_BENCH_RECORDS` override the defaults 5 and 200,000).

use std::net::SocketAddr;
use std::time::Duration;

use logging_service::client::{self, BenchConfig, ClientTls, Format, Transport};
use logging_service::server::{Logd, LogdConfig};
use logging_service::store::StoreConfig;
use logging_service::tls::{ClientAuth, MinVersion, TlsOptions};
use logging_service::tls_conn::SecurityOptions;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is taken.
    let rounds = env("TLS_BENCH_ROUNDS", 5) as usize;
    let count = env("TLS_BENCH_RECORDS", 200_000);
    let dir = std::env::temp_dir().join(format!("logd-tls-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();

    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["logd.bench".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("server.pem"), leaf.pem()).unwrap();
    std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();

    let logd = Logd::start(LogdConfig {
        ace_port: None,
        syslog_port: Some(0),
        store: StoreConfig::new(dir.join("data")),
        security: SecurityOptions {
            tls: Some(TlsOptions {
                cert: dir.join("server.pem"),
                key: dir.join("server.key"),
                ca: None,
                client_auth: ClientAuth::None,
                permitted_peers: Vec::new(),
                min_version: MinVersion::Tls12,
            }),
            syslog_tls_port: Some(0),
            ..SecurityOptions::default()
        },
        ..LogdConfig::default()
    })
    .expect("logd starts");
    let plain = logd.listening().syslog_tcp.unwrap();
    let tls_at = logd.listening().syslog_tls.unwrap();
    let tls = ClientTls::new(&dir.join("ca.pem"), "logd.bench", None).unwrap();

    let run = |addr: SocketAddr, conns: usize, tls: Option<ClientTls>| -> f64 {
        let cfg = BenchConfig {
            count,
            rate: 0,
            conns,
            format: Format::Rfc5424,
            transport: Transport::Tcp,
            size: 64,
            tls,
        };
        let r = client::bench(addr, &cfg, |_| {}).expect("the bench runs");
        assert_eq!(r.errors, 0);
        r.rate()
    };
    println!("tls_ingest: {count} records per run, {rounds} rounds");
    for conns in [1usize, 16] {
        let (mut ratios, mut clear, mut over_tls) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..rounds {
            let (c, t) = if round % 2 == 0 {
                let c = run(plain, conns, None);
                (c, run(tls_at, conns, Some(tls.clone())))
            } else {
                let t = run(tls_at, conns, Some(tls.clone()));
                (run(plain, conns, None), t)
            };
            println!(
                "  {conns:>2} conn(s), round {round}: cleartext {c:.0}/s, TLS {t:.0}/s, TLS/cleartext {:.2}",
                t / c
            );
            ratios.push(t / c);
            clear.push(c);
            over_tls.push(t);
        }
        println!(
            "{conns:>2} conn(s): median cleartext {:.0} records/s, TLS {:.0} records/s, median ratio TLS/cleartext {:.2}",
            median(clear),
            median(over_tls),
            median(ratios)
        );
    }
    let mut hs = Vec::new();
    for _ in 0..rounds {
        let n = 300;
        let took: Duration = tls.handshakes(tls_at, n).expect("handshakes");
        hs.push(n as f64 / took.as_secs_f64());
    }
    println!(
        "handshakes: median {:.0} per second (one client thread)",
        median(hs)
    );
    let stats = logd.stop().unwrap();
    println!(
        "logd: {} records, {} TLS sessions, {} refused",
        stats.records, stats.tls_sessions, stats.tls_handshake_failures
    );
    let _ = std::fs::remove_dir_all(&dir);
}
