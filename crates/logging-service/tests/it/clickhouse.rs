//! logd shipping into a real ClickHouse (Debian's `clickhouse-server`, started in the
//! foreground per test on loopback ports with a fresh data directory, stopped by PID).

use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use logging_service::clickhouse::Http;
use logging_service::logd::{Logd, LogdConfig};
use logging_service::store::{Stats, StoreConfig, read_records};

use crate::support::tls::{Ca, Pki};
use crate::support::{TempDir, send_and_wait, wait_until};

/// A `clickhouse-server` in the foreground on loopback, with a data directory of its own.
pub(crate) struct ClickHouse {
    child: Option<Child>,
    dir: PathBuf,
    server: PathBuf,
    pub(crate) http_port: u16,
    /// The HTTPS port, when started with [`start_tls`](Self::start_tls).
    pub(crate) https_port: Option<u16>,
}

/// A free loopback port for a server, below the kernel's ephemeral range (32768 and up on
/// Linux): a server killed and restarted on its ports must not find one taken meanwhile by
/// some outgoing connection (the sink's own retries included).
fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    // 20000 to 31999, each test process starting at a place of its own.
    let start = (std::process::id() % 240) as u16 * 50;
    for _ in 0..12_000 {
        let p = 20_000 + (start + NEXT.fetch_add(1, Ordering::Relaxed)) % 12_000;
        if TcpListener::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
    panic!("no free port from 20000 to 31999")
}

/// The two small files a foreground ClickHouse needs; `shards` lists the native ports of a
/// `logs_cluster` for `Distributed` tables (no ZooKeeper: no replication); `extra` is added
/// to the server's configuration as it is.
fn write_config(dir: &Path, http_port: u16, tcp_port: u16, shards: &[u16], extra: &str) {
    let d = dir.display();
    let mut remote = String::new();
    if !shards.is_empty() {
        remote.push_str("<remote_servers><logs_cluster>");
        for p in shards {
            remote.push_str(&format!(
                "<shard><replica><host>127.0.0.1</host><port>{p}</port></replica></shard>"
            ));
        }
        remote.push_str("</logs_cluster></remote_servers>");
    }
    let config = format!(
        r#"<?xml version="1.0"?>
<yandex>
    <logger><level>warning</level><console>1</console></logger>
    <http_port>{http_port}</http_port>
    <tcp_port>{tcp_port}</tcp_port>
    <listen_host>127.0.0.1</listen_host>
    <path>{d}/data/</path>
    <tmp_path>{d}/data/tmp/</tmp_path>
    <user_files_path>{d}/data/user_files/</user_files_path>
    <format_schema_path>{d}/data/format_schemas/</format_schema_path>
    <users_config>users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <mark_cache_size>5368709</mark_cache_size>
    <uncompressed_cache_size>8589934</uncompressed_cache_size>
    {remote}
    {extra}
</yandex>
"#
    );
    std::fs::write(dir.join("config.xml"), config).unwrap();
    std::fs::write(
        dir.join("users.xml"),
        r#"<?xml version="1.0"?>
<yandex>
    <profiles><default></default></profiles>
    <users><default><password></password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></default></users>
    <quotas><default></default></quotas>
</yandex>
"#,
    )
    .unwrap();
}

impl ClickHouse {
    /// Starts a server in `dir`, or `None` (after the skip line) when it is not installed.
    pub(crate) fn start(dir: &Path) -> Option<ClickHouse> {
        Self::start_shard(dir, free_port(), &[])
    }

    /// Starts a server whose native port is `tcp_port`, knowing the cluster `shards`.
    pub(crate) fn start_shard(dir: &Path, tcp_port: u16, shards: &[u16]) -> Option<ClickHouse> {
        Self::start_with(dir, tcp_port, shards, None)
    }

    /// Starts a server that also serves HTTPS with `cert` and `key` (PEM files) and asks
    /// every HTTPS client for a certificate chaining to `ca` (OpenSSL's `strict` mode);
    /// `server` is added to its `openSSL.server` section as it is.
    pub(crate) fn start_tls(
        dir: &Path,
        cert: &Path,
        key: &Path,
        ca: &Path,
        server: &str,
    ) -> Option<ClickHouse> {
        Self::start_with(dir, free_port(), &[], Some((cert, key, ca, server)))
    }

    fn start_with(
        dir: &Path,
        tcp_port: u16,
        shards: &[u16],
        tls: Option<(&Path, &Path, &Path, &str)>,
    ) -> Option<ClickHouse> {
        let server = pattern_core::peer::program("clickhouse-server", "clickhouse-server")?;
        std::fs::create_dir_all(dir).unwrap();
        let http_port = free_port();
        let https_port = tls.map(|_| free_port());
        let extra = match (tls, https_port) {
            (Some((cert, key, ca, server)), Some(port)) => format!(
                "<https_port>{port}</https_port>\n    <openSSL><server>\
<certificateFile>{}</certificateFile><privateKeyFile>{}</privateKeyFile>\
<caConfig>{}</caConfig><verificationMode>strict</verificationMode>\
<loadDefaultCAFile>false</loadDefaultCAFile>{server}</server></openSSL>",
                cert.display(),
                key.display(),
                ca.display()
            ),
            _ => String::new(),
        };
        write_config(dir, http_port, tcp_port, shards, &extra);
        let mut ch = ClickHouse {
            child: None,
            dir: dir.to_path_buf(),
            server,
            http_port,
            https_port,
        };
        ch.run();
        Some(ch)
    }

    /// Starts the server process and waits until `/ping` answers.
    fn run(&mut self) {
        let log = std::fs::File::create(self.dir.join("server.log")).unwrap();
        let child = crate::support::spawn(
            Command::new(&self.server)
                .arg(format!(
                    "--config-file={}",
                    self.dir.join("config.xml").display()
                ))
                .current_dir(&self.dir)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log),
        )
        .expect("start clickhouse-server");
        self.child = Some(child);
        let ping = format!("http://127.0.0.1:{}/ping", self.http_port);
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(2)))
            .build()
            .into();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if agent.get(&ping).call().is_ok() {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "clickhouse-server exited ({status}): {}",
                    std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "clickhouse-server never answered /ping"
            );
            std::thread::park_timeout(Duration::from_millis(20));
        }
    }

    /// `kill -9`: the server dies with whatever it had not answered yet.
    pub(crate) fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// Starts the server again on the same data directory and ports.
    pub(crate) fn restart(&mut self) {
        self.kill();
        self.run();
    }

    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// Runs `sql`; its answer (fails the test on an error).
    pub(crate) fn query(&self, sql: &str) -> String {
        Http::new(&self.url(), Duration::from_secs(30), &Default::default())
            .unwrap()
            .query(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    pub(crate) fn count(&self, sql: &str) -> u64 {
        self.query(sql).trim().parse().unwrap()
    }

    /// Like [`count`](Self::count), `None` while ClickHouse refuses (a table not made yet).
    pub(crate) fn try_count(&self, sql: &str) -> Option<u64> {
        Http::new(&self.url(), Duration::from_secs(30), &Default::default())
            .unwrap()
            .query(sql)
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for ClickHouse {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A logd with syslog over TCP and a ClickHouse component with `args`.
fn logd(dir: &Path, args: &str) -> Logd {
    Logd::start(LogdConfig {
        ace_port: Some(0),
        syslog_port: Some(0),
        store: StoreConfig::new(dir),
        clickhouse: Some(args.into()),
        ..LogdConfig::default()
    })
    .expect("start logd")
}

/// `n` RFC 5424 messages with octet counting, host `host`, text `TAG i`.
fn syslog_batch(host: &str, tag: &str, range: std::ops::Range<usize>) -> Vec<u8> {
    let mut out = Vec::new();
    for i in range {
        let m = format!(
            "<14>1 2026-12-05T18:00:00.{:06}Z {host} app {i} ID{} [x@1 i=\"{i}\"] {tag} {i}",
            i % 1_000_000,
            i % 7
        );
        write!(out, "{} {m}", m.len()).unwrap();
    }
    out
}

fn stop(logd: Logd) -> Stats {
    let s = logd.stop().expect("logd stops");
    s.balances().unwrap();
    assert!(s.clickhouse_balances(), "{s:?}");
    s
}

#[test]
fn every_field_arrives_intact() {
    let tmp = TempDir::new("ch-fields");
    let Some(ch) = ClickHouse::start(&tmp.0.join("ch")) else {
        return;
    };
    let data = tmp.0.join("logd");
    let logd = logd(
        &data,
        &format!("-u {} -t logs -c -n edge-1 -a 20ms", ch.url()),
    );
    let at = logd.listening();
    let sd = r#"[ex@32473 a="x\]y\"z\\" b="h\u{f4}te"][meta seq="1"]"#;
    let messages = [
        format!(
            "<165>1 2026-11-26T08:00:01.5+05:30 gw-1 mqttd 812 ID47 {sd} valve\tstuck\nagain \\ done"
        ),
        "<11>1 2026-11-26T08:00:02.000001Z gw-1 - - - - no app, no pid".to_owned(),
        "<30>Nov 26 08:00:03 meter-9 meterd[77]: a 3164 message".to_owned(),
    ];
    let mut bytes = Vec::new();
    for m in &messages {
        write!(bytes, "{} {m}", m.len()).unwrap();
    }
    send_and_wait(at.syslog_tcp.unwrap(), &bytes);
    send_and_wait(
        at.ace.unwrap(),
        &crate::support::ace_frame("from ACE\twith a tab"),
    );
    let output = logd.output();
    wait_until("4 rows inserted", || {
        output.stats().clickhouse_inserted == 4
    });
    let s = stop(logd);
    assert_eq!((s.clickhouse_received, s.clickhouse_retried), (4, 0));
    // What the files hold, field by field, is what ClickHouse holds.
    let mut stored: Vec<_> = read_records(&data)
        .unwrap()
        .into_iter()
        .flat_map(|(_, r)| r)
        .collect();
    stored.sort_by(|a, b| a.message.cmp(&b.message));
    let rows = ch.query(
        "SELECT toUnixTimestamp(time) AS t, usec, host, app, pid, facility, severity, sent, msgid, sd, message, logd, seq \
         FROM logs ORDER BY message FORMAT JSONEachRow",
    );
    let rows: Vec<serde_json::Value> = rows
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), stored.len());
    let dash = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
    let mut seqs = Vec::new();
    for (row, rec) in rows.iter().zip(&stored) {
        let field = |k: &str| {
            row[k]
                .as_str()
                .unwrap_or_else(|| panic!("{k} in {row}"))
                .to_owned()
        };
        // (ClickHouse shows the DateTime 0 as `0000-00-00 00:00:00`: compare the numbers.)
        let t = row["t"].as_u64().unwrap() as i64;
        let usec = row["usec"].as_u64().unwrap() as u32;
        assert_eq!(logging_service::record::rfc3339(t, usec), rec.time);
        assert_eq!(field("host"), rec.host);
        assert_eq!(field("app"), dash(&rec.app));
        assert_eq!(field("pid"), dash(&rec.pid));
        assert_eq!(row["facility"].as_u64().unwrap(), u64::from(rec.facility));
        assert_eq!(row["severity"].as_u64().unwrap(), u64::from(rec.severity));
        assert_eq!(field("sent"), dash(&rec.sent));
        assert_eq!(field("msgid"), dash(&rec.msgid));
        assert_eq!(field("sd"), dash(&rec.sd));
        assert_eq!(field("message"), rec.message);
        assert_eq!(field("logd"), "edge-1");
        seqs.push(field("seq").parse::<u64>().unwrap());
    }
    // The MSGID and the structured data with its escapes, byte for byte as sent.
    let first = rows
        .iter()
        .find(|r| r["msgid"] == "ID47")
        .expect("the RFC 5424 record");
    assert_eq!(first["sd"], sd);
    assert_eq!(first["message"], "valve\tstuck\nagain \\ done");
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), 4, "one sequence number per row");
}

#[test]
fn a_kill_9_of_clickhouse_mid_run_loses_nothing_and_duplicates_are_found() {
    // The issue's run: 1M records, ClickHouse killed with SIGKILL mid-run and started again
    // 5 s later (the rows meanwhile spill from memory to the spool's files).
    const N: usize = 1_000_000;
    const BATCH: u64 = 5000;
    let tmp = TempDir::new("ch-kill");
    let Some(mut ch) = ClickHouse::start(&tmp.0.join("ch")) else {
        return;
    };
    let logd = logd(
        &tmp.0.join("logd"),
        &format!("-u {} -t logs -c -n edge-k -r {BATCH} -a 50ms", ch.url()),
    );
    let at = logd.listening();
    let output = logd.output();
    let sender = std::thread::spawn(move || {
        for (k, chunk) in (0..N).step_by(20_000).enumerate() {
            let host = format!("host-{}", k % 4);
            send_and_wait(
                at.syslog_tcp.unwrap(),
                &syslog_batch(&host, "kill", chunk..chunk + 20_000),
            );
        }
    });
    wait_until("some rows inserted", || {
        output.stats().clickhouse_inserted >= 20_000
    });
    ch.kill();
    let killed = Instant::now();
    let failed = output.stats().clickhouse_failed;
    // The outage lasts 5 s (the scenario's length, not a synchronisation), and the sink has
    // seen it.
    wait_until("5 s of outage, seen by the sink", || {
        killed.elapsed() >= Duration::from_secs(5) && output.stats().clickhouse_failed > failed + 2
    });
    ch.restart();
    sender.join().unwrap();
    wait_until("every row inserted", || {
        let s = output.stats();
        s.clickhouse_received == N as u64 && s.clickhouse_queued == 0
    });
    let s = stop(logd);
    assert!(s.clickhouse_failed > 0, "{s:?}");
    // Every record is in ClickHouse at least once; the copies beyond are duplicates of a
    // retried batch, found by (logd, seq).
    let distinct = ch.count("SELECT uniqExact(logd, seq) FROM logs");
    let messages = ch.count("SELECT uniqExact(message) FROM logs");
    let rows = ch.count("SELECT count() FROM logs");
    let dups = ch.count(
        "SELECT sum(c - 1) FROM (SELECT count() AS c FROM logs GROUP BY logd, seq HAVING c > 1)",
    );
    assert_eq!((distinct, messages), (N as u64, N as u64), "nothing lost");
    assert_eq!(rows - distinct, dups);
    // Duplicates come from retried batches only, at most a batch each, and logd reports
    // how many batches it retried.
    assert!(
        dups <= s.clickhouse_retried * BATCH,
        "{dups} duplicates from {} retried batches: {s:?}",
        s.clickhouse_retried
    );
    assert!(s.clickhouse_inserted >= N as u64);
    // The back-off (100 ms doubling) holds while records keep arriving: a handful of attempts
    // over the outage, not one per arriving batch (15 would take half an hour).
    assert!(s.clickhouse_failed <= 15, "{s:?}");
    println!(
        "ledger: {N} sent, {rows} rows, {dups} duplicates; {} failed inserts, {} batches retried",
        s.clickhouse_failed, s.clickhouse_retried
    );
}

/// The two-shard layout of docs/logging-service.md: two servers, a local `MergeTree` on each,
/// a `Distributed` table over them on each, and a logd writing into each server's
/// `Distributed` table.
#[test]
fn two_shards_behind_a_distributed_table_add_up() {
    const PER_LOGD: usize = 20_000;
    let tmp = TempDir::new("ch-shards");
    let ports = [free_port(), free_port()];
    let Some(a) = ClickHouse::start_shard(&tmp.0.join("ch-a"), ports[0], &ports) else {
        return;
    };
    let b = ClickHouse::start_shard(&tmp.0.join("ch-b"), ports[1], &ports).unwrap();
    for ch in [&a, &b] {
        ch.query(&logging_service::clickhouse::create_table_sql("logs_local"));
        ch.query(
            "CREATE TABLE logs AS logs_local ENGINE = Distributed(logs_cluster, default, logs_local, cityHash64(host))",
        );
    }
    let mut running = Vec::new();
    for (i, ch) in [&a, &b].iter().enumerate() {
        let l = logd(
            &tmp.0.join(format!("logd-{i}")),
            &format!("-u {} -t logs -n edge-{i} -r 2000 -a 50ms", ch.url()),
        );
        let at = l.listening().syslog_tcp.unwrap();
        for h in 0..4 {
            let host = format!("dev-{i}-{h}");
            let per_host = PER_LOGD / 4;
            send_and_wait(
                at,
                &syslog_batch(&host, "shard", h * per_host..(h + 1) * per_host),
            );
        }
        running.push(l);
    }
    for l in &running {
        let output = l.output();
        wait_until("each logd inserted its rows", || {
            output.stats().clickhouse_inserted == PER_LOGD as u64
        });
    }
    for l in running {
        assert_eq!(stop(l).clickhouse_inserted, PER_LOGD as u64);
    }
    // Distributed inserts go on to the other shard in the background.
    let total = 2 * PER_LOGD as u64;
    let local = |ch: &ClickHouse| ch.count("SELECT count() FROM logs_local");
    wait_until("the shards hold every row", || {
        local(&a) + local(&b) >= total
    });
    let (na, nb) = (local(&a), local(&b));
    assert_eq!(
        na + nb,
        total,
        "per-shard counts add up to the records sent"
    );
    assert!(na > 0 && nb > 0, "both shards hold rows: {na} + {nb}");
    assert_eq!(a.count("SELECT count() FROM logs"), total);
    assert_eq!(b.count("SELECT uniqExact(logd, seq) FROM logs"), total);
    // A host's rows live on one shard (sharded by host).
    let hosts = |ch: &ClickHouse| -> Vec<String> {
        ch.query("SELECT DISTINCT host FROM logs_local ORDER BY host FORMAT TSV")
            .lines()
            .map(str::to_owned)
            .collect()
    };
    let (ha, hb) = (hosts(&a), hosts(&b));
    assert_eq!(ha.len() + hb.len(), 8, "{ha:?} {hb:?}");
    assert!(
        ha.iter().all(|h| !hb.contains(h)),
        "a host split over the shards"
    );
    println!("shards: {na} + {nb} = {total}");
}

#[test]
fn the_sink_comes_and_goes_with_the_svc_conf_on_reload() {
    let tmp = TempDir::new("ch-hup");
    let Some(ch) = ClickHouse::start(&tmp.0.join("ch")) else {
        return;
    };
    let conf = tmp.0.join("svc.conf");
    let listener = "static Syslog_Logging \"-p 0\"\n";
    std::fs::write(&conf, listener).unwrap();
    let mut logd = Logd::start(LogdConfig {
        svc_conf: Some(conf.clone()),
        store: StoreConfig::new(tmp.0.join("logd")),
        ..LogdConfig::default()
    })
    .unwrap();
    let output = logd.output();
    let port = logd.listening().syslog_tcp.unwrap();
    send_and_wait(port, &syslog_batch("h", "before", 0..10));
    // The sink appears: records from now on go to ClickHouse.
    std::fs::write(
        &conf,
        format!(
            "{listener}static ClickHouse \"-u {} -t logs -c -a 20ms\"\n",
            ch.url()
        ),
    )
    .unwrap();
    assert!(logd.reconfigure().unwrap().is_ok());
    let port = logd.listening().syslog_tcp.unwrap();
    send_and_wait(port, &syslog_batch("h", "during", 0..10));
    wait_until("10 rows inserted", || {
        output.stats().clickhouse_inserted == 10
    });
    send_and_wait(port, &syslog_batch("h", "draining", 0..5));
    // It disappears: the removal drains what it holds before the reload returns.
    std::fs::write(&conf, listener).unwrap();
    assert!(logd.reconfigure().unwrap().is_ok());
    assert_eq!(output.stats().clickhouse_inserted, 15);
    send_and_wait(port, &syslog_batch("h", "after", 0..10));
    let s = stop(logd);
    assert_eq!((s.records, s.stored, s.clickhouse_received), (35, 35, 15));
    assert_eq!(
        ch.query("SELECT splitByChar(' ', message)[1] AS m, count() FROM logs GROUP BY m ORDER BY m FORMAT TSV"),
        "draining\t5\nduring\t10\n"
    );
}

/// A proxy in front of ClickHouse that passes every request on, and for the first insert
/// drops ClickHouse's answer: the rows are in, but logd never hears so. Returns its address
/// and, once it happened, the number of rows whose answer it dropped.
fn answer_dropping_proxy(upstream: u16) -> (std::net::SocketAddr, std::sync::mpsc::Receiver<u64>) {
    use std::io::{BufRead, BufReader, Read};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut dropped = false;
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let mut reader = BufReader::new(client.try_clone().unwrap());
            let mut client = client;
            // One request per connection: the proxy asks ClickHouse to close after it.
            let mut head = String::new();
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                if line == "\r\n" {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
                if lower.starts_with("connection:") {
                    continue;
                }
                head.push_str(&line);
            }
            head.push_str("Connection: close\r\n\r\n");
            let mut body = vec![0; len];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            let mut ch = std::net::TcpStream::connect(("127.0.0.1", upstream)).unwrap();
            ch.write_all(head.as_bytes()).unwrap();
            ch.write_all(&body).unwrap();
            let mut answer = Vec::new();
            ch.read_to_end(&mut answer).unwrap();
            if !dropped && head.contains("INSERT") && answer.starts_with(b"HTTP/1.1 200") {
                dropped = true;
                let rows = if head.contains("RowBinary") {
                    logging_service::clickhouse::row_binary_rows(&body).unwrap()
                } else {
                    body.iter().filter(|&&b| b == b'\n').count() as u64
                };
                tx.send(rows).unwrap();
                continue; // the client sees the connection close without an answer
            }
            let _ = client.write_all(&answer);
        }
    });
    (addr, rx)
}

#[test]
fn an_insert_whose_answer_is_lost_is_sent_again_and_the_duplicates_are_found() {
    let tmp = TempDir::new("ch-dup");
    let Some(ch) = ClickHouse::start(&tmp.0.join("ch")) else {
        return;
    };
    let (proxy, dropped) = answer_dropping_proxy(ch.http_port);
    let logd = logd(
        &tmp.0.join("logd"),
        &format!("-u http://{proxy} -t logs -c -n edge-d -r 1000 -a 20ms"),
    );
    let port = logd.listening().syslog_tcp.unwrap();
    send_and_wait(port, &syslog_batch("h", "dup", 0..3000));
    let output = logd.output();
    wait_until("every row inserted", || {
        output.stats().clickhouse_inserted == 3000
    });
    let s = stop(logd);
    let lost_answer = dropped.recv().unwrap();
    assert!(lost_answer > 0);
    assert_eq!((s.clickhouse_retried, s.clickhouse_failed), (1, 1), "{s:?}");
    // Every record once, and the batch whose answer was lost twice: the query finds exactly it.
    assert_eq!(ch.count("SELECT uniqExact(logd, seq) FROM logs"), 3000);
    assert_eq!(ch.count("SELECT count() FROM logs"), 3000 + lost_answer);
    assert_eq!(
        ch.count(
            "SELECT count() FROM (SELECT logd, seq FROM logs GROUP BY logd, seq HAVING count() > 1)"
        ),
        lost_answer
    );
}

fn logc(args: &[&str]) -> std::process::Output {
    crate::support::output(Command::new(env!("CARGO_BIN_EXE_logc")).args(args)).expect("run logc")
}

#[test]
fn logc_query_answers_the_common_questions_and_passes_sql_through() {
    let tmp = TempDir::new("ch-logc");
    let Some(ch) = ClickHouse::start(&tmp.0.join("ch")) else {
        return;
    };
    let logd = logd(
        &tmp.0.join("logd"),
        &format!("-u {} -t logs -c -a 20ms", ch.url()),
    );
    // gw-1: err at :01, :02, :03 (one says "valve"); info at :04 "valve"; meter-9: warning.
    let mut bytes = Vec::new();
    for (pri, sec, host, text) in [
        (11, 1, "gw-1", "pump stalled"),
        (11, 2, "gw-1", "valve 2 stuck"),
        (11, 3, "gw-1", "pump stalled again"),
        (14, 4, "gw-1", "valve 2 free"),
        (12, 5, "meter-9", "valve reading odd"),
    ] {
        let m = format!("<{pri}>1 2026-12-05T10:00:0{sec}.25Z {host} app - - - {text}");
        write!(bytes, "{} {m}", m.len()).unwrap();
    }
    send_and_wait(logd.listening().syslog_tcp.unwrap(), &bytes);
    let output = logd.output();
    wait_until("5 rows inserted", || {
        output.stats().clickhouse_inserted == 5
    });
    stop(logd);
    let url = ch.url();
    let ok = |args: &[&str]| {
        let mut all = vec!["query", "--clickhouse", &url];
        all.extend_from_slice(args);
        let out = logc(&all);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    // Counts by severity per host.
    assert_eq!(
        ok(&["--counts"]),
        "host     severity  records\ngw-1     err       3\ngw-1     info      1\nmeter-9  warning   1\n"
    );
    let json = ok(&["--counts", "--output", "json"]);
    let first: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(
        (first["host"].as_str(), first["severity"].as_str()),
        (Some("gw-1"), Some("err"))
    );
    // A host's records in a time range (the bounds exact to the microsecond).
    let range = ok(&[
        "--host",
        "gw-1",
        "--since",
        "2026-12-05T10:00:02.25Z",
        "--until",
        "2026-12-05T11:00:04.25+01:00",
        "--output",
        "json",
    ]);
    let messages: Vec<String> = range
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["message"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(messages, ["valve 2 stuck", "pump stalled again"]);
    // The last N records matching a text, oldest first.
    let last = ok(&["--grep", "valve", "--last", "2"]);
    let lines: Vec<&str> = last.lines().collect();
    assert_eq!(lines.len(), 3, "{last}");
    assert!(
        lines[0].starts_with("time") && lines[0].ends_with("message"),
        "{last}"
    );
    assert!(
        lines[1].ends_with("valve 2 free") && lines[2].ends_with("valve reading odd"),
        "{last}"
    );
    assert!(
        lines[1].contains("2026-12-05 10:00:04  250000  gw-1") && lines[1].contains(" info "),
        "{last}"
    );
    // SQL passed through, with and without a format of its own.
    assert_eq!(
        ok(&["--sql", "SELECT count() AS n FROM logs WHERE host = 'gw-1'"]),
        "n\n4\n"
    );
    assert_eq!(
        ok(&["--sql", "SELECT uniqExact(host) FROM logs FORMAT CSV"]),
        "2\n"
    );
    // ClickHouse's refusal is a data error (65) with its message; no ClickHouse, 69.
    let bad = logc(&[
        "query",
        "--clickhouse",
        &url,
        "--sql",
        "SELECT nosuchcolumn FROM logs",
    ]);
    assert_eq!(bad.status.code(), Some(65));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("nosuchcolumn"));
    let port = free_port();
    let away = logc(&[
        "query",
        "--clickhouse",
        &format!("http://127.0.0.1:{port}"),
        "--counts",
    ]);
    assert_eq!(
        away.status.code(),
        Some(69),
        "{}",
        String::from_utf8_lossy(&away.stderr)
    );
    // Quoting: a text with quotes and backslashes is a literal, not SQL.
    assert_eq!(ok(&["--grep", "x' OR '1'='1", "--output", "json"]), "");
}

/// The binary: `--clickhouse` ships, and the stop's summary accounts for every row.
#[test]
fn the_binary_ships_with_clickhouse_options_and_accounts_at_the_stop() {
    use std::io::{BufRead, BufReader, Read};
    let tmp = TempDir::new("ch-bin");
    let Some(ch) = ClickHouse::start(&tmp.0.join("ch")) else {
        return;
    };
    // Killed if the test fails before it stops logd.
    struct Child(std::process::Child);
    impl Drop for Child {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = crate::support::spawn(
        Command::new(env!("CARGO_BIN_EXE_logd"))
            .args([
                "--ace-port",
                "off",
                "--syslog-port",
                "0",
                "--clickhouse",
                &ch.url(),
            ])
            .args([
                "--clickhouse-table",
                "edge_logs",
                "--clickhouse-create",
                "--clickhouse-batch",
                "100",
            ])
            .args([
                "--clickhouse-age",
                "50ms",
                "--clickhouse-logd",
                "edge-bin",
                "--data-dir",
            ])
            .arg(tmp.0.join("logd"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
    )
    .map(Child)
    .unwrap();
    let mut out = BufReader::new(child.0.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let addr: std::net::SocketAddr = line
        .trim()
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .expect(&line);
    send_and_wait(addr, &syslog_batch("bin", "binary", 0..1000));
    wait_until("1000 rows in ClickHouse", || {
        ch.try_count("SELECT count() FROM edge_logs WHERE logd = 'edge-bin'") == Some(1000)
    });
    let st =
        crate::support::status(Command::new("kill").args(["-TERM", &child.0.id().to_string()]))
            .unwrap();
    assert!(st.success());
    assert!(child.0.wait().unwrap().success());
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert!(
        rest.contains("logd: clickhouse ledger: received=1000 recovered=0 queued=0 inserted=1000 dropped=0 balanced=yes"),
        "{rest}"
    );
    assert!(rest.contains("0 batches retried"), "{rest}");
}

#[test]
fn rows_spooled_while_clickhouse_is_away_survive_a_restart_of_logd() {
    let tmp = TempDir::new("ch-spool");
    let Some(ch) = ClickHouse::start(&tmp.0.join("ch")) else {
        return;
    };
    let data = tmp.0.join("logd");
    // ClickHouse away (nobody listens on the port): rows queue, and the stop spools them.
    let away = format!("http://127.0.0.1:{}", free_port());
    let first = logd(&data, &format!("-u {away} -t logs -c -n edge-s -w 0s"));
    send_and_wait(first.logd_syslog(), &syslog_batch("h", "spooled", 0..3000));
    let s = stop(first);
    assert_eq!(
        (s.clickhouse_queued, s.clickhouse_inserted),
        (3000, 0),
        "{s:?}"
    );
    // The next start inserts the spool first, then what comes.
    let second = logd(
        &data,
        &format!("-u {} -t logs -c -n edge-s -a 20ms", ch.url()),
    );
    send_and_wait(second.logd_syslog(), &syslog_batch("h", "fresh", 0..10));
    let output = second.output();
    wait_until("every row inserted", || {
        output.stats().clickhouse_inserted == 3010
    });
    let s = stop(second);
    assert_eq!((s.clickhouse_recovered, s.clickhouse_received), (3000, 10));
    assert_eq!(ch.count("SELECT count() FROM logs"), 3010);
    assert_eq!(ch.count("SELECT uniqExact(logd, seq) FROM logs"), 3010);
    // The spooled rows went first.
    assert_eq!(
        ch.query("SELECT splitByChar(' ', message)[1] FROM logs ORDER BY seq LIMIT 1 FORMAT TSV"),
        "spooled\n"
    );
}

/// A logd upgraded from the version that spooled TSV rows: the rows its spool holds (segment
/// files without `.count` files, as that version left them) are inserted as TSV, before the
/// rows that come after the upgrade (RowBinary); a spooled row that is neither is dropped
/// with an error and counted, and costs only itself.
#[test]
fn an_earlier_versions_tsv_spool_is_inserted_and_an_unreadable_row_costs_only_itself() {
    use logging_service::spool::{Spool, SpoolConfig};
    let tmp = TempDir::new("ch-upgrade");
    let Some(ch) = ClickHouse::start(&tmp.0.join("ch")) else {
        return;
    };
    let data = tmp.0.join("logd");
    let dir = data.join("clickhouse-spool");
    let mut spool = Spool::open(SpoolConfig::new(&dir)).unwrap();
    for i in 0..1000u64 {
        if i == 500 {
            spool.push(b"\x7fELF not a row").unwrap();
        }
        let row = format!(
            "2026-12-05 18:00:00\t{i}\th\tapp\t{i}\t1\t6\t-\tID\t-\told {i}\\ttab\tedge-u\t{}\n",
            i + 1
        );
        spool.push(row.as_bytes()).unwrap();
    }
    spool.persist().unwrap();
    drop(spool);
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_some_and(|x| x == "count") {
            std::fs::remove_file(path).unwrap();
        }
    }
    // That version's sequence file: its first block reserved.
    std::fs::write(dir.join("sequence"), "1048577\n").unwrap();
    let logd = logd(
        &data,
        &format!("-u {} -t logs -c -n edge-u -a 20ms", ch.url()),
    );
    send_and_wait(logd.logd_syslog(), &syslog_batch("h", "new", 0..10));
    let output = logd.output();
    wait_until("every readable row inserted", || {
        output.stats().clickhouse_inserted == 1010
    });
    let s = stop(logd);
    assert_eq!(
        (
            s.clickhouse_recovered,
            s.clickhouse_received,
            s.clickhouse_unreadable,
            s.clickhouse_dropped,
            s.clickhouse_queued
        ),
        (1001, 10, 1, 1, 0),
        "{s:?}"
    );
    // TSV before the unreadable row, TSV after it, then RowBinary: three inserts at least.
    assert!(s.clickhouse_batches >= 3, "{s:?}");
    assert_eq!(ch.count("SELECT count() FROM logs"), 1010);
    assert_eq!(ch.count("SELECT uniqExact(logd, seq) FROM logs"), 1010);
    assert_eq!(
        ch.query("SELECT usec, pid, message, seq FROM logs WHERE usec IN (499, 500) AND logd = 'edge-u' AND app = 'app' ORDER BY usec FORMAT TSV"),
        "499\t499\told 499\\ttab\t500\n500\t500\told 500\\ttab\t501\n"
    );
    assert_eq!(
        ch.count("SELECT count() FROM logs WHERE startsWith(message, 'new ') AND seq > 1048576"),
        10
    );
}

trait SyslogPort {
    fn logd_syslog(&self) -> std::net::SocketAddr;
}

impl SyslogPort for Logd {
    fn logd_syslog(&self) -> std::net::SocketAddr {
        self.listening().syslog_tcp.unwrap()
    }
}

/// TLS towards ClickHouse (issue 22): a server on HTTPS that asks for a client certificate
/// of the test's CA. With the CA and a client certificate the rows arrive (and `logc query`
/// reads them over HTTPS); without a client certificate, or trusting another CA, every
/// insert fails, is counted, and the rows stay queued; options that do not fit together are
/// refused when the line is checked.
#[test]
fn rows_arrive_over_https_with_a_client_certificate_and_bad_tls_is_refused() {
    use logging_service::clickhouse::ClickHouseOptions;
    let pki = Pki::new("ch-tls-pki");
    pki.write_leaf(&pki.ca, "ch", &["127.0.0.1"], true);
    pki.write_leaf(&pki.ca, "client", &["edge-tls"], false);
    let other = Ca::new("other");
    std::fs::write(pki.path("other-ca.pem"), other.issuer.pem()).unwrap();
    let tmp = TempDir::new("ch-tls");
    let Some(ch) = ClickHouse::start_tls(
        &tmp.0.join("ch"),
        &pki.path("ch.pem"),
        &pki.path("ch.key"),
        &pki.path("ca.pem"),
        "",
    ) else {
        return;
    };
    let https = format!("https://127.0.0.1:{}", ch.https_port.unwrap());
    let p = |name: &str| pki.path(name).display().to_string();
    let identity = format!(
        "--tls-cert {} --tls-key {}",
        p("client.pem"),
        p("client.key")
    );

    // The fleet's CA and a client certificate: every row arrives.
    let logd_ok = logd(
        &tmp.0.join("ok"),
        &format!(
            "-u {https} -t logs -c -n edge-tls -a 20ms --tls-ca {} {identity}",
            p("ca.pem")
        ),
    );
    send_and_wait(
        logd_ok.listening().syslog_tcp.unwrap(),
        &syslog_batch("gw-tls", "over tls", 0..1000),
    );
    let output = logd_ok.output();
    wait_until("1000 rows inserted over HTTPS", || {
        output.stats().clickhouse_inserted == 1000
    });
    let s = stop(logd_ok);
    assert_eq!((s.clickhouse_failed, s.clickhouse_retried), (0, 0));
    assert_eq!(
        ch.count("SELECT uniqExact(seq) FROM logs WHERE logd = 'edge-tls' AND host = 'gw-tls'"),
        1000
    );
    // logc query over HTTPS with the same files; without a client certificate ClickHouse
    // refuses the handshake.
    let mut query = vec!["query", "--clickhouse", &https, "--tls-ca"];
    let ca = p("ca.pem");
    query.push(&ca);
    query.extend(["--sql", "SELECT count() FROM logs"]);
    let refused = logc(&query);
    assert_eq!(refused.status.code(), Some(69), "{refused:?}");
    let (c, k) = (p("client.pem"), p("client.key"));
    query.extend(["--tls-cert", &c, "--tls-key", &k, "--output", "json"]);
    let answer = logc(&query);
    assert!(answer.status.success(), "{answer:?}");
    assert_eq!(
        String::from_utf8_lossy(&answer.stdout).trim(),
        r#"{"count()":"1000"}"#
    );

    // No client certificate, then a CA that did not sign ClickHouse's: the handshakes fail,
    // each insert is counted as failed, and nothing is lost (the rows stay queued).
    for (tag, tls) in [
        ("no-cert", format!("--tls-ca {}", p("ca.pem"))),
        (
            "other-ca",
            format!("--tls-ca {} {identity}", p("other-ca.pem")),
        ),
    ] {
        let logd = logd(
            &tmp.0.join(tag),
            &format!("-u {https} -t logs -n {tag} -a 20ms -w 0s {tls}"),
        );
        send_and_wait(
            logd.listening().syslog_tcp.unwrap(),
            &syslog_batch("gw-tls", tag, 0..10),
        );
        let output = logd.output();
        wait_until("an insert refused at the handshake", || {
            output.stats().clickhouse_failed >= 2
        });
        let s = stop(logd);
        assert_eq!(
            (s.clickhouse_inserted, s.clickhouse_queued),
            (0, 10),
            "{tag}"
        );
    }
    assert_eq!(ch.count("SELECT count() FROM logs"), 1000);

    // Options that cannot work are refused when the line is checked.
    let check = |args: String| {
        let args: Vec<String> = args.split_whitespace().map(String::from).collect();
        ClickHouseOptions::from_args(&args, &tmp.0).unwrap_err()
    };
    let e = check(format!("-u {} --tls-ca {}", ch.url(), p("ca.pem")));
    assert!(e.contains("https://"), "{e}");
    let e = check(format!(
        "-u {https} --tls-ca {} --tls-cert {}",
        p("ca.pem"),
        p("client.pem")
    ));
    assert!(e.contains("--tls-cert and --tls-key"), "{e}");
    let e = check(format!("-u {https} --tls-ca {}", p("missing.pem")));
    assert!(e.contains("missing.pem"), "{e}");
    let e = check(format!("-u {https} --tls-ca {}", p("client.key")));
    assert!(e.contains("client.key"), "{e}");
    let e = check(format!(
        "-u {https} --tls-ca {} --tls-cert {} --tls-key {}",
        p("ca.pem"),
        p("client.pem"),
        p("ch.key")
    ));
    assert!(e.contains("TLS configuration refused"), "{e}");
}

/// `--clickhouse-tls-min-version 1.3` (`--tls-min-version` in the svc.conf line): a
/// ClickHouse that speaks TLS 1.2 and nothing newer (OpenSSL's `disableProtocols` with
/// `tlsv1_3`) is refused at the handshake: each insert fails, is counted, and the rows stay
/// queued; the same server takes the rows of a logd that allows TLS 1.2, with the same files.
#[test]
fn a_clickhouse_speaking_only_tls_1_2_is_refused_when_1_3_is_required() {
    let pki = Pki::new("ch-tls12-pki");
    let (ch_cert, ch_key) = pki.write_leaf(&pki.ca, "ch", &["127.0.0.1"], true);
    let (cert, key) = pki.write_leaf(&pki.ca, "client", &["edge-tls12"], false);
    let tmp = TempDir::new("ch-tls12");
    let Some(ch) = ClickHouse::start_tls(
        &tmp.0.join("ch"),
        &ch_cert,
        &ch_key,
        &pki.path("ca.pem"),
        "<disableProtocols>sslv2,sslv3,tlsv1,tlsv1_1,tlsv1_3</disableProtocols>",
    ) else {
        return;
    };
    let tls = format!(
        "--tls-ca {} --tls-cert {} --tls-key {}",
        pki.path("ca.pem").display(),
        cert.display(),
        key.display()
    );
    let https = format!("https://127.0.0.1:{}", ch.https_port.unwrap());
    let run = |name: &str, min: &str, rows: usize| {
        let logd = logd(
            &tmp.0.join(name),
            &format!("-u {https} -t logs -c -n {name} -a 20ms -w 0s {tls} {min}"),
        );
        send_and_wait(
            logd.listening().syslog_tcp.unwrap(),
            &syslog_batch("gw-tls12", name, 0..rows),
        );
        logd
    };

    // TLS 1.2 allowed (the default, and said outright): every row arrives.
    let allowed = run("tls12", "--tls-min-version 1.2", 100);
    let output = allowed.output();
    wait_until("100 rows inserted over TLS 1.2", || {
        output.stats().clickhouse_inserted == 100
    });
    let s = stop(allowed);
    assert_eq!(s.clickhouse_failed, 0);

    // TLS 1.3 required: no handshake, no row; the inserts fail, counted, the rows kept.
    let required = run("tls13", "--tls-min-version 1.3", 10);
    let output = required.output();
    wait_until("inserts refused at the handshake", || {
        output.stats().clickhouse_failed >= 2
    });
    let s = stop(required);
    assert_eq!((s.clickhouse_inserted, s.clickhouse_queued), (0, 10));
    assert_eq!(ch.count("SELECT count() FROM logs"), 100);
    assert_eq!(ch.count("SELECT count() FROM logs WHERE logd = 'tls13'"), 0);

    // A version that is none is refused when the line is checked.
    let args: Vec<String> = format!("-u {https} {tls} --tls-min-version 1.1")
        .split_whitespace()
        .map(String::from)
        .collect();
    let e = logging_service::clickhouse::ClickHouseOptions::from_args(&args, &tmp.0).unwrap_err();
    assert!(e.contains("--tls-min-version"), "{e}");
}
