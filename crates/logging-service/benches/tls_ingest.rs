//! Ingest over TLS against cleartext, in one interleaved run: logd (reactor, in this process)
//! with a syslog TCP listener and a `Syslog_TLS` listener; the client library's `bench` sends
//! RFC 5424 records of 64 bytes of text with octet counting over 1 and 16 connections to each,
//! alternating which goes first; a run ends when logd has closed every connection (so every
//! record was stored). Also TLS handshakes per second (a new connection, a full handshake with
//! an ECDSA P-256 certificate, close_notify), one client thread.
//!
//! The client writes in two ways, each measured: one write per record (over TLS, one TLS
//! record of about 100 bytes per record), and records gathered into writes of up to 16 KiB
//! (over TLS, one TLS record per write), as rsyslog's `omfwd` sends when it has a backlog (it
//! gathers frames in a 16 KiB send buffer, written when full and at the end of each batch).
//! Cleartext and TLS get the same writes in each pairing.
//!
//! logd's own CPU time per record (its threads, named `logd-*`, read from
//! `/proc/self/task/*/schedstat`) is measured for each run beside the rate: what an operator
//! pays for TLS, whatever the client costs.
//!
//! Where `rsyslogd` and its OpenSSL stream driver are installed (and `POSA_HIDE_PEERS` is not
//! set), rsyslog (imtcp with `StreamDriver.Name="ossl"`, anonymous clients, omfile) is loaded
//! the same way over TLS in each round, and a run against it ends when its file holds every
//! record.
//!
//! Prints per-round figures and the medians (with their range) of the per-round ratios.
//! Run: `cargo bench -p logging-service --bench tls_ingest`; `TLS_BENCH_ROUNDS` (5),
//! `TLS_BENCH_RECORDS` (200,000), `TLS_BENCH_CONNS` (`1,16`), `TLS_BENCH_WRITES` (bytes per
//! write, `0,16384`; 0: one record per write) and `TLS_BENCH_ONLY` (`tls` or `cleartext`: that
//! side alone and no handshakes, for a profile) override the defaults.

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

fn env_list(name: &str, default: &[usize]) -> Vec<usize> {
    std::env::var(name)
        .ok()
        .and_then(|v| v.split(',').map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| default.to_vec())
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// `median (min-max)` of per-round ratios.
fn spread(v: &[f64]) -> String {
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{:.2} ({min:.2}-{max:.2})", median(v))
}

/// CPU time of logd's threads (named `logd-*`) so far: the first field of each thread's
/// `schedstat` (nanoseconds on a CPU).
fn logd_cpu() -> Duration {
    let mut ns = 0u64;
    for task in std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
    {
        let p = task.path();
        let name = std::fs::read_to_string(p.join("comm")).unwrap_or_default();
        if !name.starts_with("logd-") {
            continue;
        }
        let stat = std::fs::read_to_string(p.join("schedstat")).unwrap_or_default();
        ns += stat
            .split_whitespace()
            .next()
            .and_then(|x| x.parse::<u64>().ok())
            .unwrap_or(0);
    }
    Duration::from_nanos(ns)
}

/// What one kind of run measured over the rounds.
#[derive(Default)]
struct Series {
    rate: Vec<f64>,
    /// logd's CPU per record, microseconds.
    cpu: Vec<f64>,
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is taken.
    let rounds = env("TLS_BENCH_ROUNDS", 5) as usize;
    let count = env("TLS_BENCH_RECORDS", 200_000);
    let conns_list = env_list("TLS_BENCH_CONNS", &[1, 16]);
    let writes_list = env_list("TLS_BENCH_WRITES", &[0, 16384]);
    let only = std::env::var("TLS_BENCH_ONLY").unwrap_or_default();
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

    let rsyslog = (only.is_empty()).then(|| Rsyslog::start(&dir)).flatten();
    let config = |conns: usize, write_bytes: usize, tls: Option<ClientTls>| BenchConfig {
        count,
        rate: 0,
        conns,
        format: Format::Rfc5424,
        transport: Transport::Tcp,
        size: 64,
        tls,
        write_bytes,
    };
    // Records per second, and logd's CPU per record in microseconds.
    let run = |addr: SocketAddr, cfg: &BenchConfig, s: &mut Series| {
        let cpu = logd_cpu();
        let r = client::bench(addr, cfg, |_| {}).expect("the bench runs");
        assert_eq!(r.errors, 0);
        let cpu = logd_cpu().saturating_sub(cpu);
        s.rate.push(r.rate());
        s.cpu.push(cpu.as_secs_f64() * 1e6 / r.sent as f64);
    };
    println!("tls_ingest: {count} records per run, {rounds} rounds");
    let mut summary = Vec::new();
    for &conns in &conns_list {
        for &write_bytes in &writes_list {
            let writes = if write_bytes == 0 {
                "one record per write".to_string()
            } else {
                format!("{write_bytes}-byte writes")
            };
            let (mut clear, mut over_tls, mut rs) =
                (Series::default(), Series::default(), Vec::new());
            let (plain_cfg, tls_cfg) = (
                config(conns, write_bytes, None),
                config(conns, write_bytes, Some(tls.clone())),
            );
            for round in 0..rounds {
                let mut pair = [
                    (plain, &plain_cfg, &mut clear),
                    (tls_at, &tls_cfg, &mut over_tls),
                ];
                if round % 2 == 1 {
                    pair.reverse();
                }
                for (addr, cfg, s) in pair {
                    let side = if cfg.tls.is_some() {
                        "tls"
                    } else {
                        "cleartext"
                    };
                    if only.is_empty() || only == side {
                        run(addr, cfg, s);
                    }
                }
                let line = |s: &Series| {
                    s.rate.last().map_or("-".into(), |r| {
                        format!("{r:.0}/s, logd CPU {:.3} us/record", s.cpu.last().unwrap())
                    })
                };
                println!(
                    "  {conns:>2} conn(s), {writes}, round {round}: cleartext {}; TLS {}",
                    line(&clear),
                    line(&over_tls)
                );
                if let Some(r) = &rsyslog {
                    let rate = r.run(&tls_cfg);
                    println!(
                        "  {conns:>2} conn(s), {writes}, round {round}: rsyslog over TLS {rate:.0}/s"
                    );
                    rs.push(rate);
                }
            }
            let ratio =
                |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(a, b)| a / b).collect::<Vec<_>>();
            let mut s = format!("{conns:>2} conn(s), {writes}:");
            if !clear.rate.is_empty() && !over_tls.rate.is_empty() {
                s += &format!(
                    " cleartext {:.0}/s, TLS {:.0}/s, TLS/cleartext {}; logd CPU per record cleartext {:.3} us, TLS {:.3} us, TLS/cleartext {}",
                    median(&clear.rate),
                    median(&over_tls.rate),
                    spread(&ratio(&over_tls.rate, &clear.rate)),
                    median(&clear.cpu),
                    median(&over_tls.cpu),
                    spread(&ratio(&over_tls.cpu, &clear.cpu)),
                );
            } else {
                for (side, x) in [("cleartext", &clear), ("TLS", &over_tls)] {
                    if !x.rate.is_empty() {
                        s += &format!(
                            " {side} {:.0}/s, logd CPU {:.3} us/record",
                            median(&x.rate),
                            median(&x.cpu)
                        );
                    }
                }
            }
            if !rs.is_empty() {
                s += &format!(
                    "; rsyslog TLS {:.0}/s, logd TLS/rsyslog TLS {}",
                    median(&rs),
                    spread(&ratio(&over_tls.rate, &rs))
                );
            }
            summary.push(s);
        }
    }
    println!("medians (range) of the per-round ratios:");
    for s in summary {
        println!("{s}");
    }
    if only.is_empty() {
        let mut hs = Vec::new();
        for _ in 0..rounds {
            let n = 300;
            let took: Duration = tls.handshakes(tls_at, n).expect("handshakes");
            hs.push(n as f64 / took.as_secs_f64());
        }
        println!(
            "handshakes: median {:.0} per second (one client thread)",
            median(&hs)
        );
    }
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
    fn run(&self, cfg: &BenchConfig) -> f64 {
        let start = std::time::Instant::now();
        let r = client::bench(self.addr, cfg, |_| {}).expect("the bench runs against rsyslog");
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
