//! Ingest over TLS against cleartext, in one interleaved run: logd (reactor, in this process)
//! with a syslog TCP listener and a `Syslog_TLS` listener; the client library's `bench` sends
//! RFC 5424 records of 64 bytes of text with octet counting over 1 and 16 connections to each,
//! alternating which goes first; a run ends when logd has closed every connection (so every
//! record was stored). Also TLS handshakes per second (a new connection, a full handshake with
//! an ECDSA P-256 certificate, close_notify), one client thread.
//!
//! Where `rsyslogd` and its OpenSSL stream driver are installed, rsyslog (imtcp with
//! `StreamDriver.Name="ossl"`, anonymous clients, omfile) is loaded the same way over TLS in
//! each round, and a run against it ends when its file holds every record.
//!
//! Prints per-round figures and the medians of the per-round ratios (TLS over cleartext).
//! Run: `cargo bench -p logging-service --bench tls_ingest` (`TLS_BENCH_ROUNDS`,
//! `TLS_BENCH_RECORDS` override the defaults 5 and 200,000).

use std::net::SocketAddr;
use std::time::Duration;

use logging_service::client::{self, BenchConfig, ClientTls, Format, Transport};
use logging_service::logd::{Logd, LogdConfig};
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

    let rsyslog = Rsyslog::start(&dir);
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
        let mut vs_rsyslog = Vec::new();
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
            if let Some(r) = &rsyslog {
                let rs = r.run(conns, count, &tls);
                println!(
                    "  {conns:>2} conn(s), round {round}: rsyslog over TLS {rs:.0}/s, logd TLS/rsyslog TLS {:.2}",
                    t / rs
                );
                vs_rsyslog.push(t / rs);
            }
        }
        if !vs_rsyslog.is_empty() {
            println!(
                "{conns:>2} conn(s): median ratio logd TLS/rsyslog TLS {:.2}",
                median(vs_rsyslog)
            );
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
    drop(rsyslog);
    let _ = std::fs::remove_dir_all(&dir);
}

/// rsyslog as a TLS server writing every message to a file, killed on drop.
struct Rsyslog {
    child: std::process::Child,
    addr: SocketAddr,
    out: std::path::PathBuf,
    /// Lines the file must hold at the end of the next run.
    expected: std::cell::Cell<u64>,
}

impl Rsyslog {
    fn start(dir: &std::path::Path) -> Option<Rsyslog> {
        let bin = pattern_core::peer::program("rsyslogd", "rsyslog")?;
        pattern_core::peer::file(
            &[
                "/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_ossl.so",
                "/usr/lib/aarch64-linux-gnu/rsyslog/lmnsd_ossl.so",
                "/usr/lib/rsyslog/lmnsd_ossl.so",
            ],
            "rsyslog's OpenSSL stream driver",
            "rsyslog-openssl",
        )?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let work = dir.join("rsyslog");
        std::fs::create_dir_all(&work).ok()?;
        let out = work.join("out.log");
        let conf = format!(
            "global(workDirectory=\"{w}\" DefaultNetstreamDriverCAFile=\"{d}/ca.pem\"\n\
               DefaultNetstreamDriverCertFile=\"{d}/server.pem\" DefaultNetstreamDriverKeyFile=\"{d}/server.key\")\n\
             module(load=\"imtcp\" StreamDriver.Name=\"ossl\" StreamDriver.Mode=\"1\" StreamDriver.AuthMode=\"anon\")\n\
             input(type=\"imtcp\" port=\"{port}\" address=\"127.0.0.1\")\n\
             template(name=\"plain\" type=\"string\" string=\"%msg%\\n\")\n\
             action(type=\"omfile\" file=\"{o}\" template=\"plain\")\n",
            w = work.display(),
            d = dir.display(),
            o = out.display()
        );
        std::fs::write(work.join("rsyslog.conf"), conf).ok()?;
        let child = std::process::Command::new(bin)
            .args(["-n", "-f"])
            .arg(work.join("rsyslog.conf"))
            .arg("-i")
            .arg(work.join("rsyslogd.pid"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .ok()?;
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().ok()?;
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(addr).is_err() {
            if std::time::Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Rsyslog {
            child,
            addr,
            out,
            expected: std::cell::Cell::new(0),
        })
    }

    fn lines(&self) -> u64 {
        std::fs::read(&self.out)
            .map(|b| b.iter().filter(|&&c| c == b'\n').count() as u64)
            .unwrap_or(0)
    }

    /// Records per second, from the first send until the file holds every record.
    fn run(&self, conns: usize, count: u64, tls: &ClientTls) -> f64 {
        let cfg = BenchConfig {
            count,
            rate: 0,
            conns,
            format: Format::Rfc5424,
            transport: Transport::Tcp,
            size: 64,
            tls: Some(tls.clone()),
        };
        let start = std::time::Instant::now();
        let r = client::bench(self.addr, &cfg, |_| {}).expect("the bench runs against rsyslog");
        self.expected.set(self.expected.get() + r.sent);
        let deadline = start + Duration::from_secs(300);
        while self.lines() < self.expected.get() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        r.sent as f64 / start.elapsed().as_secs_f64()
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
