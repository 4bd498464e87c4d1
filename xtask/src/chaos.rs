//! `cargo xtask chaos`: logd under mixed load while an injector breaks what it depends on,
//! then a ledger per source and a table of checks (issue 13, "How to prove it").
//!
//! logd runs as a child on 127.0.0.1 and high ports, storing into a size-limited tmpfs
//! mounted for the run; where mounting is refused, the disk-full fault lowers logd's
//! `RLIMIT_FSIZE` instead (`prlimit --pid`), so that its appends fail with EFBIG as they fail
//! with ENOSPC on a full disk (and is skipped with a line without `prlimit`). Sources send records whose message text is `chaos SOURCE SEQ end`; the checks
//! find each record by that text anywhere in a stored line, so they do not depend on the
//! store's line format. A source is one entry of [`SOURCES`]: a new protocol (RELP) is one
//! more [`Wire`] and one more entry.
//!
//! The injector, in a loop: flaps the upstream (a real rsyslogd, then a second logd, on
//! the forwarding port in turn), SIGHUPs logd with a valid and then an invalid svc.conf,
//! fills the data directory to ENOSPC and frees it, floods spoofed host names over UDP,
//! `kill -9`s and restarts logd, and stops and restarts it with SIGTERM (timed).

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread;
use std::time::{Duration, Instant};

use lab_report::args::positive_seconds;

use crate::demo::cargo_program;
use crate::metadata;

/// The command line of `cargo xtask chaos`.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub(crate) struct ChaosArgs {
    /// How long the load and the injector run.
    #[arg(long, value_name = "N", default_value = "60", value_parser = positive_seconds)]
    pub(crate) seconds: Duration,
    /// Build and run logd in the debug profile (faster to build, slower to run).
    #[arg(long)]
    pub(crate) debug: bool,
    /// Records per second of each TCP source (UDP sources send half as many).
    #[arg(long, value_name = "N", default_value_t = 800)]
    pub(crate) rate: u32,
    /// Make the disk full by lowering logd's RLIMIT_FSIZE even where a tmpfs could be
    /// mounted (the fallback for machines that refuse the mount).
    #[arg(long)]
    pub(crate) file_size_limit: bool,
    /// logd's concurrency model (its `--concurrency`): reactor, leader-followers[:N],
    /// half-sync-half-async[:N] or proactor.
    #[arg(long, value_name = "MODEL", default_value = "reactor")]
    pub(crate) concurrency: String,
}

/// How a source sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wire {
    /// ACE's logging protocol over TCP.
    Ace,
    /// Syslog (RFC 5424, octet counting) over TCP.
    SyslogTcp,
    /// Syslog over UDP, one datagram per record.
    SyslogUdp,
    /// Syslog over RELP (logc's `RelpClient`): a record is sent until it is acknowledged.
    Relp,
}

impl Wire {
    fn label(self) -> &'static str {
        match self {
            Wire::Ace => "ACE/tcp",
            Wire::SyslogTcp => "syslog/tcp",
            Wire::SyslogUdp => "syslog/udp",
            Wire::Relp => "syslog/relp",
        }
    }

    fn is_tcp(self) -> bool {
        matches!(self, Wire::Ace | Wire::SyslogTcp)
    }
}

/// One client of the load.
#[derive(Debug, Clone, Copy)]
struct Source {
    name: &'static str,
    wire: Wire,
}

/// The steady load; the injector adds the `flood` source (spoofed host names over UDP).
const SOURCES: &[Source] = &[
    Source {
        name: "ace-1",
        wire: Wire::Ace,
    },
    Source {
        name: "ace-2",
        wire: Wire::Ace,
    },
    Source {
        name: "tcp-1",
        wire: Wire::SyslogTcp,
    },
    Source {
        name: "tcp-2",
        wire: Wire::SyslogTcp,
    },
    Source {
        name: "udp-1",
        wire: Wire::SyslogUdp,
    },
    Source {
        name: "relp-1",
        wire: Wire::Relp,
    },
];

/// The flood's source name.
const FLOOD: &str = "flood";
/// Spoofed host names per flood.
const FLOOD_HOSTS: usize = 1_500;
/// Records per TCP connection: the batch acknowledged by one clean close.
const BATCH: u64 = 200;
/// logd's stop deadline (`--stop-timeout`); a stop must end within it plus [`STOP_SLACK`].
const STOP_TIMEOUT: Duration = Duration::from_secs(2);
const STOP_SLACK: Duration = Duration::from_secs(1);
/// logd's memory bounds, passed as options, and the RSS allowed on top of them.
const MAX_BUFFERED: u64 = 8 << 20;
const FORWARD_QUEUE: u64 = 2 << 20;
const MAX_PENDING: u64 = 50_000;
/// Bytes a held record may cost (the record, its line, the queue's overhead).
const HELD_RECORD_COST: u64 = 1_024;
/// The process itself: code, threads' stacks, allocator slack.
const BASE_RSS: u64 = 48 << 20;
/// The smallest tmpfs for the data directory; a longer run gets room for twice what its
/// load writes (about 150 bytes a line, 4.5 TCP sources' worth of records a second).
const TMPFS_MIN_MIB: u64 = 256;

/// What the sources, the injector and the sampler share.
struct Shared {
    stop: AtomicBool,
    /// Edges of the kill windows (each `kill -9` or SIGTERM stop opens one, the restart
    /// closes it): a TCP batch that saw this change overlapped one (what logd had not read
    /// when it stopped is lost with the connection; the client sees no acknowledgement).
    windows: AtomicU64,
    /// Held for writing while logd is down or about to be killed: UDP sends hold it for reading.
    udp_gate: RwLock<()>,
    /// The running logd's PID (0 while none runs).
    pid: AtomicU32,
    /// The highest VmRSS seen, in bytes.
    peak_rss: AtomicU64,
    /// When the load started (times in the ledger count from here).
    started: Instant,
    /// What the injector did, and when.
    log: Mutex<Vec<(Duration, String)>>,
}

impl Shared {
    fn note(&self, what: impl Into<String>) {
        let at = self.started.elapsed();
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((at, what.into()));
    }
}

/// One TCP connection's records and what became of them.
#[derive(Debug, Clone)]
struct Batch {
    first: u64,
    /// Records written whole to the socket.
    written: u64,
    /// The server closed after our half-close (outside a kill window, that means it had
    /// read every record).
    acked: bool,
    /// The connection overlapped a kill window (a `kill -9` or a SIGTERM stop, until the
    /// restarted logd serves).
    in_kill_window: bool,
    /// Why it was not acknowledged, and when it ended (since the run started).
    failure: Option<String>,
    ended: Duration,
}

/// What one source did.
#[derive(Debug, Default)]
struct Sent {
    batches: Vec<Batch>,
    /// For UDP: datagrams sent, numbered 0..n.
    datagrams: u64,
    /// For RELP: what was sent and acknowledged.
    relp: RelpSent,
}

/// What the RELP source did: records 0..records, each sent until acknowledged.
#[derive(Debug, Default)]
struct RelpSent {
    records: u64,
    /// Records never acknowledged (the source gave up at the end): they may be lost.
    unacknowledged: u64,
    /// Records sent again on a new session because the last one broke before their
    /// acknowledgement (logd may have stored them already: possible duplicates).
    resent: u64,
    sessions: u64,
}

/// The fixed ports of the run (logd keeps them across restarts).
#[derive(Debug, Clone, Copy)]
struct Ports {
    ace: u16,
    syslog: u16,
    relp: u16,
    metrics: u16,
    upstream: u16,
}

/// Ports below the kernel's ephemeral range (32768 and up by default), from a start that
/// differs per process: logd binds them again at every restart, and the sources' own
/// connections, which take ephemeral ports by the thousand, must not take them meanwhile.
fn pick_ports() -> Result<Ports, String> {
    let first = 20_000 + (std::process::id() % 1_000) as u16 * 12;
    let mut free = (first..32_000).filter(|&p| {
        TcpListener::bind(("127.0.0.1", p)).is_ok() && UdpSocket::bind(("127.0.0.1", p)).is_ok()
    });
    let mut next = || free.next().ok_or("no free port below 32000");
    Ok(Ports {
        ace: next()?,
        syslog: next()?,
        relp: next()?,
        metrics: next()?,
        upstream: next()?,
    })
}

/// Everything about the run that does not change.
struct Run {
    logd: PathBuf,
    /// logd's `--concurrency`.
    concurrency: String,
    rsyslogd: Option<PathBuf>,
    work: PathBuf,
    data: PathBuf,
    conf: PathBuf,
    ports: Ports,
    /// How the disk-full fault is made.
    disk: DiskFault,
}

impl Run {
    fn valid_conf(&self) -> String {
        format!(
            "static ACE_Logging \"-p {}\"\nstatic Syslog_Logging \"-p {}\"\nstatic RELP_Logging \"-p {}\"\n",
            self.ports.ace, self.ports.syslog, self.ports.relp
        )
    }

    fn invalid_conf(&self) -> String {
        format!(
            "static ACE_Logging \"-p {}\"\nstatic Syslog_Logging \"-p notaport\"\nstatic RELP_Logging \"-p {}\"\n",
            self.ports.ace, self.ports.relp
        )
    }

    fn rss_bound(&self) -> u64 {
        BASE_RSS + MAX_BUFFERED + FORWARD_QUEUE + MAX_PENDING * HELD_RECORD_COST
    }

    /// Starts logd and waits until its listeners and metrics answer.
    fn start_logd(&self) -> Result<Child, String> {
        let mut cmd = Command::new(&self.logd);
        cmd.arg("-f")
            .arg(&self.conf)
            .arg("--data-dir")
            .arg(&self.data)
            .args(["--bind", "127.0.0.1", "--concurrency", &self.concurrency])
            .arg("--metrics")
            .arg(format!("127.0.0.1:{}", self.ports.metrics))
            .arg("--forward")
            .arg(format!("127.0.0.1:{}", self.ports.upstream))
            .args(["--forward-backoff", "50ms:1s"])
            .arg("--forward-queue")
            .arg(FORWARD_QUEUE.to_string())
            .args(["--spool-max", "32M"])
            .arg("--stop-timeout")
            .arg(format!("{}s", STOP_TIMEOUT.as_secs()))
            .arg("--max-buffered")
            .arg(MAX_BUFFERED.to_string())
            .arg("--max-pending")
            .arg(MAX_PENDING.to_string())
            .args(["--max-open-files", "64", "--max-hosts", "400"])
            .args(["--rotate-bytes", "4M", "--keep", "1000"])
            .args(["--log-format", "text"])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(
                fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.work.join("logd.stderr"))
                    .map_err(|e| format!("logd.stderr: {e}"))?,
            ));
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.logd.display()))?;
        // Killed and reaped by `Logd`'s drop if it does not come up.
        let mut logd = Logd { child };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !(connects(self.ports.ace)
            && connects(self.ports.syslog)
            && connects(self.ports.relp)
            && connects(self.ports.metrics))
        {
            if Instant::now() > deadline || !matches!(logd.child.try_wait(), Ok(None)) {
                return Err("logd did not start listening within 30 s (see logd.stderr)".into());
            }
            thread::sleep(Duration::from_millis(10));
        }
        // Taken out of the guard: a dead placeholder goes in its place.
        Ok(std::mem::replace(&mut logd.child, dead_child()))
    }
}

fn connects(port: u16) -> bool {
    TcpStream::connect_timeout(
        &SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(500),
    )
    .is_ok()
}

/// `<14>1 - HOST chaos - - - chaos SOURCE SEQ end`
fn syslog_message(host: &str, source: &str, seq: u64) -> String {
    format!("<14>1 - {host} chaos - - - chaos {source} {seq} end")
}

/// One little-endian ACE frame (wide seconds) carrying `msg`.
fn ace_frame(msg: &str) -> Vec<u8> {
    let mut payload = Vec::with_capacity(25 + msg.len());
    payload.extend(8u32.to_le_bytes()); // LM_INFO
    payload.extend(std::process::id().to_le_bytes());
    payload.extend(0i64.to_le_bytes());
    payload.extend(0u32.to_le_bytes());
    payload.extend((msg.len() as u32 + 1).to_le_bytes());
    payload.extend(msg.as_bytes());
    payload.push(0);
    let mut frame = vec![1, 0, 0, 0];
    frame.extend((payload.len() as u32).to_le_bytes());
    frame.extend(payload);
    frame
}

fn frame(wire: Wire, source: &str, seq: u64) -> Vec<u8> {
    match wire {
        Wire::Ace => ace_frame(&format!("chaos {source} {seq} end")),
        Wire::SyslogTcp => {
            let m = syslog_message(&format!("chaos-{source}"), source, seq);
            format!("{} {m}", m.len()).into_bytes()
        }
        Wire::SyslogUdp | Wire::Relp => {
            syslog_message(&format!("chaos-{source}"), source, seq).into_bytes()
        }
    }
}

/// Sleeps so that `done` records take `done / rate` seconds from `start`.
fn pace(start: Instant, done: u64, rate: u32) {
    let due = start + Duration::from_secs_f64(done as f64 / f64::from(rate.max(1)));
    if let Some(wait) = due.checked_duration_since(Instant::now()) {
        thread::sleep(wait);
    }
}

/// A TCP source: a connection per batch, half-closed and acknowledged by the server's close.
fn tcp_source(source: Source, port: u16, rate: u32, shared: &Shared) -> Sent {
    let mut sent = Sent::default();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let start = shared.started;
    let mut next = 0u64;
    while !shared.stop.load(Ordering::Relaxed) {
        let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
            thread::sleep(Duration::from_millis(20));
            continue;
        };
        let windows = shared.windows.load(Ordering::SeqCst);
        let _ = s.set_write_timeout(Some(Duration::from_secs(20)));
        let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
        let mut batch = Batch {
            first: next,
            written: 0,
            acked: false,
            in_kill_window: false,
            failure: None,
            ended: Duration::ZERO,
        };
        for seq in next..next + BATCH {
            if let Err(e) = s.write_all(&frame(source.wire, source.name, seq)) {
                batch.failure = Some(format!("write: {e}"));
                break;
            }
            batch.written += 1;
            pace(start, seq + 1, rate);
            if shared.stop.load(Ordering::Relaxed) {
                break;
            }
        }
        // A record partly written is not sent; the next connection starts after it.
        next += batch.written + u64::from(batch.written < BATCH);
        match s.shutdown(Shutdown::Write) {
            Ok(()) => match s.read_to_end(&mut Vec::new()) {
                Ok(_) => batch.acked = true,
                Err(e) => batch.failure = Some(format!("waiting for the close: {e}")),
            },
            Err(e) => batch.failure = Some(format!("half-close: {e}")),
        }
        batch.ended = start.elapsed();
        // Across an edge of a window, or wholly inside one (an odd count: a window is open,
        // and this connection went to the backlog of a logd that was stopping).
        batch.in_kill_window = shared.windows.load(Ordering::SeqCst) != windows || windows % 2 == 1;
        sent.batches.push(batch);
    }
    sent
}

/// A UDP source: datagrams at half the TCP rate, only while the gate is open.
fn udp_source(source: Source, port: u16, rate: u32, shared: &Shared) -> Sent {
    let mut sent = Sent::default();
    let Ok(sock) = UdpSocket::bind("127.0.0.1:0") else {
        return sent;
    };
    let rate = (rate / 2).max(1);
    let start = Instant::now();
    while !shared.stop.load(Ordering::Relaxed) {
        {
            let _open = shared.udp_gate.read().unwrap_or_else(|e| e.into_inner());
            let d = frame(source.wire, source.name, sent.datagrams);
            if sock.send_to(&d, ("127.0.0.1", port)).is_ok() {
                sent.datagrams += 1;
            }
        }
        pace(start, sent.datagrams, rate);
    }
    sent
}

/// Records a RELP session sends before it closes and opens the next one.
const RELP_SESSION: u64 = 500;
/// Unacknowledged records at most (`RelpClient`'s window).
const RELP_WINDOW: usize = 32;
/// The first pause after a broken RELP session; it doubles up to a second while sessions
/// keep breaking.
const RELP_PAUSE: Duration = Duration::from_millis(20);
/// How long the RELP source goes on after the load stopped, to have its last records
/// acknowledged (logd is still running then).
const RELP_FINISH: Duration = Duration::from_secs(30);

/// The RELP source: sessions of [`RELP_SESSION`] records; a record stays with the source
/// until logd acknowledged it (after writing it), and is sent again on the next session when
/// a session breaks first (logd killed, stopped, or closing it for an unplaced batch).
fn relp_source(source: Source, port: u16, rate: u32, shared: &Shared) -> Sent {
    use logging_service::client::RelpClient;
    let mut sent = Sent::default();
    let r = &mut sent.relp;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let start = shared.started;
    // Records sent and not acknowledged yet: sent again first on the next session.
    let mut unacked: Vec<u64> = Vec::new();
    let mut finish_by: Option<Instant> = None;
    // After a broken session, as rsyslog's omrelp does: logd closes a session whose batch it
    // could not place (its disk is full), and reconnecting at once would only have the same
    // records held (and later stored) again and again.
    let mut pause = RELP_PAUSE;
    loop {
        if shared.stop.load(Ordering::Relaxed) {
            let by = *finish_by.get_or_insert_with(|| Instant::now() + RELP_FINISH);
            if unacked.is_empty() || Instant::now() > by {
                break;
            }
        }
        let Ok(mut c) = RelpClient::connect(addr, RELP_WINDOW, Duration::from_secs(5)) else {
            thread::sleep(Duration::from_millis(20));
            continue;
        };
        r.sessions += 1;
        r.resent += unacked.len() as u64;
        let mut again = std::mem::take(&mut unacked).into_iter();
        // This session's records in the order sent: the first `acked()` are acknowledged.
        let mut session: Vec<u64> = Vec::new();
        let mut broken = false;
        while (session.len() as u64) < RELP_SESSION {
            let (seq, fresh) = match again.next() {
                Some(seq) => (seq, false),
                None if shared.stop.load(Ordering::Relaxed) => break,
                None => {
                    r.records += 1;
                    (r.records - 1, true)
                }
            };
            if c.send(&frame(Wire::Relp, source.name, seq)).is_err() {
                unacked.push(seq);
                broken = true;
                break;
            }
            session.push(seq);
            if fresh {
                pace(start, r.records, rate);
            }
        }
        broken = broken || c.flush().is_err();
        let acked = (c.acked() as usize).min(session.len());
        unacked.extend_from_slice(&session[acked..]);
        unacked.extend(again);
        if broken {
            thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_secs(1));
        } else {
            pause = RELP_PAUSE;
            let _ = c.close();
        }
    }
    r.unacknowledged = unacked.len() as u64;
    sent
}

/// Samples logd's VmRSS every 50 ms.
fn sample_rss(shared: &Shared) {
    while !shared.stop.load(Ordering::Relaxed) {
        let pid = shared.pid.load(Ordering::Relaxed);
        if pid != 0
            && let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status"))
            && let Some(kb) = status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        {
            shared.peak_rss.fetch_max(kb * 1024, Ordering::Relaxed);
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// The metrics logd serves, as `name{labels} value` pairs.
fn scrape(port: u16) -> Option<HashMap<String, f64>> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: chaos\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let body = text.split("\r\n\r\n").nth(1)?;
    Some(
        body.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (k, v) = l.rsplit_once(' ')?;
                Some((k.to_owned(), v.parse().ok()?))
            })
            .collect(),
    )
}

/// Counters of one logd lifetime that the UDP check needs, read before it ended.
#[derive(Debug, Default, Clone, Copy)]
struct UdpDrops {
    /// Datagrams the kernel dropped on logd's socket (its receive buffer was full).
    kernel: u64,
    /// Datagrams or records logd dropped and counted (oversized, refused, unstorable).
    logd: u64,
}

/// The `drops` column of logd's UDP socket on `port`, from /proc/PID/net/udp.
fn kernel_udp(pid: u32, port: u16) -> Option<(u64, u64)> {
    let table = fs::read_to_string(format!("/proc/{pid}/net/udp")).ok()?;
    let local = format!(":{port:04X}");
    table.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.get(1)?.ends_with(&local) && f.get(1)?.starts_with("0100007F") {
            // tx_queue:rx_queue, then the drops column last.
            let rx = u64::from_str_radix(f.get(4)?.split(':').nth(1)?, 16).ok()?;
            Some((rx, f.last()?.parse().ok()?))
        } else {
            None
        }
    })
}

/// Waits (bounded) until logd has read every datagram queued for it and has no held
/// record, then reads what it dropped. Call with the UDP gate closed.
fn quiesce(run: &Run, pid: u32) -> Result<UdpDrops, String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (rx, kernel) = kernel_udp(pid, run.ports.syslog).unwrap_or((0, 0));
        // A scrape is served by the same reactor as UDP: once it answers after the socket
        // drained, the last datagrams were handed to the store.
        let m = scrape(run.ports.metrics);
        if let Some(m) = m
            && rx == 0
            && m.get("logd_records_held").copied().unwrap_or(0.0) == 0.0
        {
            let dropped: f64 = m
                .iter()
                .filter(|(k, _)| {
                    k.starts_with("logd_records_dropped_total")
                        || k.starts_with("logd_messages_refused_total")
                })
                .map(|(_, v)| v)
                .sum();
            return Ok(UdpDrops {
                kernel,
                logd: dropped as u64,
            });
        }
        if Instant::now() > deadline {
            return Err("logd did not drain its UDP socket and held records within 60 s".into());
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// The upstream slot: rsyslogd and a second logd take the forwarding port in turn.
struct Upstream {
    child: Option<Child>,
    turns: u64,
}

impl Upstream {
    fn start(&mut self, run: &Run) -> Result<&'static str, String> {
        self.turns += 1;
        let dir = run.work.join("upstream");
        let _ = fs::create_dir_all(&dir);
        let port = run.ports.upstream;
        let use_rsyslog = self.turns % 2 == 1 && run.rsyslogd.is_some();
        let (cmd, who) = if let (true, Some(rsyslogd)) = (use_rsyslog, &run.rsyslogd) {
            let state = dir.join(format!("rsyslog-{}", self.turns));
            let _ = fs::create_dir_all(&state);
            let conf = state.join("rsyslog.conf");
            fs::write(
                &conf,
                format!(
                    "global(workDirectory=\"{s}\")\nmodule(load=\"imtcp\")\n\
                     input(type=\"imtcp\" port=\"{port}\" address=\"127.0.0.1\")\n\
                     template(name=\"plain\" type=\"string\" string=\"%HOSTNAME% %msg%\\n\")\n\
                     action(type=\"omfile\" file=\"{out}\" template=\"plain\")\n",
                    s = state.display(),
                    out = dir.join("rsyslog.log").display()
                ),
            )
            .map_err(|e| format!("{}: {e}", conf.display()))?;
            let mut c = Command::new(rsyslogd);
            c.args(["-n", "-f"])
                .arg(&conf)
                .arg("-i")
                .arg(state.join("pid"));
            (c, "rsyslogd")
        } else {
            let mut c = Command::new(&run.logd);
            c.args(["--ace-port", "off", "--syslog-port"])
                .arg(port.to_string())
                .arg("--data-dir")
                .arg(dir.join("logd"))
                .env("RUST_LOG", "error");
            (c, "second logd")
        };
        let mut cmd = cmd;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start the upstream {who}: {e}"))?;
        self.child = Some(child);
        Ok(who)
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// How the injector makes logd's disk full.
#[derive(Debug, Clone, PartialEq, Eq)]
enum DiskFault {
    /// `data` is our size-limited tmpfs: a file fills it.
    Tmpfs,
    /// logd's `RLIMIT_FSIZE` is lowered to one byte with this `prlimit` (every append then
    /// fails with EFBIG, a new file's after its first byte) and raised again.
    FileSizeLimit(PathBuf),
    /// Neither is possible: the fault is skipped.
    None,
}

impl DiskFault {
    fn label(&self) -> &'static str {
        match self {
            DiskFault::Tmpfs => "tmpfs filled",
            DiskFault::FileSizeLimit(_) => "RLIMIT_FSIZE lowered",
            DiskFault::None => "skipped",
        }
    }
}

/// Sets logd's file size limit (`prlimit --pid PID --fsize=VALUE`).
fn set_fsize(prlimit: &Path, pid: u32, value: &str) -> Result<(), String> {
    let st = Command::new(prlimit)
        // `SOFT:` sets the soft limit only: raising it again needs no privilege.
        .args(["--pid", &pid.to_string(), &format!("--fsize={value}:")])
        .status()
        .map_err(|e| format!("cannot run prlimit: {e}"))?;
    if st.success() {
        Ok(())
    } else {
        Err(format!(
            "prlimit --fsize={value} on logd {pid} failed ({st})"
        ))
    }
}

/// A tmpfs mounted on the data directory for the run, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, args: &ChaosArgs) -> Option<Tmpfs> {
        let load = args.seconds.as_secs() * u64::from(args.rate) * 9 / 2 * 150;
        let mib = TMPFS_MIN_MIB.max((2 * load) >> 20);
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "chaos"])
            .arg(dir)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Fills the data directory until the disk refuses a write; the file is the filler.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("chaos-filler");
    if let Ok(mut f) = fs::File::create(&path) {
        let block = vec![0u8; 1 << 20];
        while f.write_all(&block).is_ok() {}
        // The last megabyte's worth: fill the tail too.
        let small = [0u8; 512];
        while f.write_all(&small).is_ok() {}
    }
    path
}

/// What happened to logd's lifetimes and stops.
#[derive(Debug, Default)]
struct Injected {
    upstream_flaps: u64,
    hup_valid: u64,
    hup_invalid: u64,
    hup_invalid_still_serving: bool,
    fills: u64,
    floods: u64,
    flood_sent: u64,
    kills: u64,
    restarts: u64,
    stops: Vec<Duration>,
    /// The ledger lines of each clean stop.
    summaries: Vec<String>,
    udp_drops: UdpDrops,
    errors: Vec<String>,
}

/// logd as it runs under the injector.
struct Logd {
    child: Child,
}

impl Logd {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn signal(&self, sig: &str) -> bool {
        Command::new("kill")
            .args([sig, &self.pid().to_string()])
            .status()
            .is_ok_and(|s| s.success())
    }

    /// SIGTERM, timed until the process ended; its stdout (the stop summary) is returned.
    fn stop(mut self) -> (Duration, String, bool) {
        let started = Instant::now();
        self.signal("-TERM");
        let mut out = String::new();
        if let Some(mut o) = self.child.stdout.take() {
            let _ = o.read_to_string(&mut out);
        }
        let status = self.child.wait();
        (
            started.elapsed(),
            out,
            status.is_ok_and(|s| s.code().is_some()),
        )
    }
}

impl Drop for Logd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn adopt(child: Child, shared: &Shared) -> Logd {
    shared.pid.store(child.id(), Ordering::SeqCst);
    let mut logd = Logd { child };
    // Drain stdout in the background until the stop reads the rest: the listening lines.
    if let Some(out) = logd.child.stdout.as_mut() {
        let mut r = BufReader::new(out);
        let mut line = String::new();
        while r.read_line(&mut line).is_ok_and(|n| n > 0) {
            if line.starts_with("logd: storing under") {
                break;
            }
            line.clear();
        }
    }
    logd
}

/// Closes the UDP gate, lets logd drain, and returns the gate's guard with what logd dropped.
fn before_stop<'a>(
    run: &Run,
    logd: &Logd,
    shared: &'a Shared,
    injected: &mut Injected,
) -> std::sync::RwLockWriteGuard<'a, ()> {
    let gate = shared.udp_gate.write().unwrap_or_else(|e| e.into_inner());
    match quiesce(run, logd.pid()) {
        Ok(d) => {
            injected.udp_drops.kernel += d.kernel;
            injected.udp_drops.logd += d.logd;
        }
        Err(e) => injected.errors.push(e),
    }
    gate
}

fn injector(run: &Run, shared: &Shared, mut logd: Logd, until: Instant) -> (Injected, Logd) {
    let mut inj = Injected {
        hup_invalid_still_serving: true,
        ..Injected::default()
    };
    let mut upstream = Upstream {
        child: None,
        turns: 0,
    };
    let flood = UdpSocket::bind("127.0.0.1:0").expect("a UDP socket");
    let mut step = 0u64;
    let mut flood_seq = 0u64;
    while Instant::now() < until {
        let what = step % 8;
        step += 1;
        shared.note(
            [
                "upstream flap",
                "SIGHUP valid",
                "disk fill",
                "SIGHUP invalid",
                "host flood",
                "kill -9 and restart",
                "SIGHUP valid",
                "SIGTERM and restart",
            ][what as usize],
        );
        match what {
            0 => {
                upstream.kill();
                if let Err(e) = upstream.start(run) {
                    inj.errors.push(e);
                }
                inj.upstream_flaps += 1;
            }
            1 | 6 => {
                if let Err(e) = write_conf(&run.conf, &run.valid_conf()) {
                    inj.errors.push(e);
                }
                logd.signal("-HUP");
                inj.hup_valid += 1;
            }
            2 => match &run.disk {
                DiskFault::Tmpfs => {
                    let filler = fill(&run.data);
                    thread::sleep(Duration::from_millis(1500));
                    let _ = fs::remove_file(filler);
                    inj.fills += 1;
                }
                DiskFault::FileSizeLimit(prlimit) => {
                    let full = set_fsize(prlimit, logd.pid(), "1");
                    thread::sleep(Duration::from_millis(1500));
                    if let Err(e) = full.and_then(|()| set_fsize(prlimit, logd.pid(), "unlimited"))
                    {
                        inj.errors.push(e);
                    }
                    inj.fills += 1;
                }
                DiskFault::None => {}
            },
            3 => {
                if let Err(e) = write_conf(&run.conf, &run.invalid_conf()) {
                    inj.errors.push(e);
                }
                logd.signal("-HUP");
                inj.hup_invalid += 1;
                // Whatever the reload made of it, both listeners keep serving.
                thread::sleep(Duration::from_millis(300));
                if !(connects(run.ports.ace) && connects(run.ports.syslog)) {
                    inj.hup_invalid_still_serving = false;
                }
                if let Err(e) = write_conf(&run.conf, &run.valid_conf()) {
                    inj.errors.push(e);
                }
            }
            4 => {
                let _open = shared.udp_gate.read().unwrap_or_else(|e| e.into_inner());
                for i in 0..FLOOD_HOSTS {
                    let host = format!("spoof-{}-{i}", inj.floods);
                    let d = syslog_message(&host, FLOOD, flood_seq);
                    if flood
                        .send_to(d.as_bytes(), ("127.0.0.1", run.ports.syslog))
                        .is_ok()
                    {
                        flood_seq += 1;
                    }
                }
                inj.floods += 1;
            }
            5 => {
                // kill -9 with nothing held in memory (what it would lose is bounded by the
                // held records, which the disk-full step makes): the TCP batches open now are
                // in the kill window.
                let gate = before_stop(run, &logd, shared, &mut inj);
                shared.windows.fetch_add(1, Ordering::SeqCst);
                shared.pid.store(0, Ordering::SeqCst);
                drop(logd);
                inj.kills += 1;
                match run.start_logd() {
                    Ok(c) => logd = adopt(c, shared),
                    Err(e) => {
                        inj.errors.push(e);
                        inj.flood_sent = flood_seq;
                        upstream.kill();
                        return (
                            inj,
                            Logd {
                                child: dead_child(),
                            },
                        );
                    }
                }
                inj.restarts += 1;
                // The window closes when the new logd serves: a connection the old one's
                // backlog took after the window opened is reset with it.
                shared.windows.fetch_add(1, Ordering::SeqCst);
                drop(gate);
            }
            7 => {
                let gate = before_stop(run, &logd, shared, &mut inj);
                shared.windows.fetch_add(1, Ordering::SeqCst);
                shared.pid.store(0, Ordering::SeqCst);
                let (took, out, exited) = logd.stop();
                if !exited {
                    inj.errors.push("logd ended by a signal on SIGTERM".into());
                }
                inj.stops.push(took);
                inj.summaries.push(out);
                match run.start_logd() {
                    Ok(c) => logd = adopt(c, shared),
                    Err(e) => {
                        inj.errors.push(e);
                        inj.flood_sent = flood_seq;
                        upstream.kill();
                        return (
                            inj,
                            Logd {
                                child: dead_child(),
                            },
                        );
                    }
                }
                inj.restarts += 1;
                // The window closes when the new logd serves: a connection the old one's
                // backlog took after the window opened is reset with it.
                shared.windows.fetch_add(1, Ordering::SeqCst);
                drop(gate);
            }
            _ => {}
        }
        thread::sleep(Duration::from_millis(700));
    }
    inj.flood_sent = flood_seq;
    upstream.kill();
    (inj, logd)
}

/// Free space the run needs on the disk of `target/chaos`.
const MIN_FREE_MIB: u64 = 512;

/// MiB available on the file system of `dir` (`df -Pm`), if `df` answers.
fn free_mib(dir: &Path) -> Option<u64> {
    let out = Command::new("df").arg("-Pm").arg(dir).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().nth(1)?.split_whitespace().nth(3)?.parse().ok()
}

/// Writes a file whole or not at all (a new file renamed over the old one): a write that
/// fails, on a full disk say, must not leave logd a truncated svc.conf.
fn write_conf(path: &Path, text: &str) -> Result<(), String> {
    let new = path.with_extension("new");
    fs::write(&new, text)
        .and_then(|()| fs::rename(&new, path))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// A child that has already ended: the placeholder after a failed restart.
fn dead_child() -> Child {
    let mut c = Command::new("true").spawn().expect("`true` runs");
    let _ = c.wait();
    c
}

/// Every record found in the store, by source, and the torn lines.
#[derive(Debug, Default)]
struct Found {
    /// (source, seq) -> times found.
    records: HashMap<(String, u64), u32>,
    torn: Vec<String>,
    files: usize,
}

fn scan(dir: &Path, found: &mut Found) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path
            .file_name()
            .is_some_and(|n| n == "spool" || n == "chaos-filler")
        {
            continue;
        }
        if path.is_dir() {
            scan(&path, found);
            continue;
        }
        let Ok(bytes) = fs::read(&path) else { continue };
        found.files += 1;
        if !bytes.is_empty() && bytes.last() != Some(&b'\n') {
            found
                .torn
                .push(format!("{}: no newline at the end", path.display()));
        }
        for line in String::from_utf8_lossy(&bytes).lines() {
            match record_in(line) {
                Some(Ok(key)) => *found.records.entry(key).or_default() += 1,
                Some(Err(())) => found.torn.push(format!("{}: {line}", path.display())),
                None => {}
            }
        }
    }
}

/// The record a stored line holds: `None` for a line of no source, an error for a line with
/// a cut or glued record (not exactly one whole `chaos SOURCE SEQ end`).
fn record_in(line: &str) -> Option<Result<(String, u64), ()>> {
    let mut whole = Vec::new();
    let mut cut = false;
    for (at, _) in line.match_indices("chaos ") {
        let mut w = line[at + 6..].split(' ');
        let Some(src) = w.next().filter(|s| is_source(s)) else {
            continue; // `chaos` as an app name, say
        };
        match (w.next().and_then(|n| n.parse::<u64>().ok()), w.next()) {
            (Some(seq), Some("end")) => whole.push((src.to_owned(), seq)),
            _ => cut = true,
        }
    }
    match (whole.len(), cut) {
        (0, false) => None,
        (1, false) => whole.pop().map(Ok),
        _ => Some(Err(())),
    }
}

fn is_source(name: &str) -> bool {
    name == FLOOD || SOURCES.iter().any(|s| s.name == name)
}

/// One source's ledger.
#[derive(Debug, Default)]
struct Ledger {
    sent: u64,
    stored: u64,
    duplicates: u64,
    lost_in_kill_windows: u64,
    /// Of those, records of a connection that logd closed cleanly during the window.
    closed_in_windows: u64,
    lost_outside: u64,
    /// The first records lost outside the windows, with their batch.
    examples: Vec<String>,
}

fn ledger_tcp(name: &str, sent: &Sent, found: &Found) -> Ledger {
    let mut l = Ledger::default();
    for b in &sent.batches {
        for seq in b.first..b.first + b.written {
            l.sent += 1;
            match found.records.get(&(name.to_owned(), seq)) {
                Some(&n) => {
                    l.stored += 1;
                    l.duplicates += u64::from(n - 1);
                }
                // A close seen while a window was open is no acknowledgement: a logd being
                // stopped or killed closes connections it has not read to the end (the
                // kernel sends its FIN before the reset for the bytes that arrive after).
                None if b.in_kill_window => {
                    l.lost_in_kill_windows += 1;
                    l.closed_in_windows += u64::from(b.acked);
                }
                None => {
                    l.lost_outside += 1;
                    if l.examples.len() < 3 {
                        l.examples.push(format!("{name} {seq} (of {b:?})"));
                    }
                }
            }
        }
    }
    l
}

fn ledger_udp(name: &str, sent: u64, found: &Found) -> Ledger {
    let mut l = Ledger {
        sent,
        ..Ledger::default()
    };
    for seq in 0..sent {
        if let Some(&n) = found.records.get(&(name.to_owned(), seq)) {
            l.stored += 1;
            l.duplicates += u64::from(n - 1);
        }
    }
    l
}

/// A RELP source's ledger: every record it sent is expected in the store, kill windows
/// included (it sends a record again until logd acknowledged it, and logd acknowledges only
/// what it wrote); `lost_outside` counts those missing anywhere.
fn ledger_relp(name: &str, sent: &RelpSent, found: &Found) -> Ledger {
    let mut l = ledger_udp(name, sent.records, found);
    l.lost_outside = l.sent - l.stored;
    l.examples = (0..sent.records)
        .filter(|seq| !found.records.contains_key(&(name.to_owned(), *seq)))
        .take(3)
        .map(|seq| format!("{name} {seq} (RELP; {sent:?})"))
        .collect();
    l
}

fn tcp_lost_outside_any(rows: &[(String, &str, Ledger)]) -> bool {
    rows.iter()
        .any(|(_, _, l)| l.lost_outside > 0 && !l.examples.is_empty())
}

/// The `key=value` fields of logd's `logd: ledger:` lines, and whether each said balanced.
fn balanced(summary: &str) -> Result<(), String> {
    let lines: Vec<&str> = summary
        .lines()
        .filter(|l| l.contains("balanced="))
        .collect();
    if lines.is_empty() {
        return Err("the stop summary has no ledger line".into());
    }
    match lines.iter().find(|l| !l.contains("balanced=yes")) {
        Some(l) => Err(format!("unbalanced: {l}")),
        None => Ok(()),
    }
}

pub(crate) fn run(args: &ChaosArgs) -> Result<bool, String> {
    let cargo = cargo_program();
    let workspace = metadata::load(&cargo)?;
    let mut build = vec![
        "build",
        "-p",
        "logging-service",
        "--bin",
        "logd",
        "--bin",
        "logc",
    ];
    if !args.debug {
        build.push("--release");
    }
    eprintln!("chaos: cargo {}", build.join(" "));
    let status = Command::new(&cargo)
        .args(&build)
        .current_dir(&workspace.root)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!("build failed ({status})"));
    }
    let profile = if args.debug { "debug" } else { "release" };
    let logd = workspace.target_dir.join(profile).join("logd");
    let work = workspace
        .target_dir
        .join("chaos")
        .join(format!("run-{}", std::process::id()));
    let data = work.join("data");
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&data).map_err(|e| format!("{}: {e}", data.display()))?;
    // The harness's own files (svc.conf, logd's stderr, the upstreams' files) live on the
    // real disk: a full one would break the run, not logd.
    if let Some(free) = free_mib(&work)
        && free < MIN_FREE_MIB
    {
        return Err(format!(
            "only {free} MiB free under {}: the run needs {MIN_FREE_MIB} MiB for its own files",
            work.display()
        ));
    }
    let tmpfs = if args.file_size_limit {
        None
    } else {
        Tmpfs::mount(&data, args)
    };
    let disk = match (&tmpfs, pattern_core::peer::program("prlimit", "util-linux")) {
        (Some(_), _) => DiskFault::Tmpfs,
        (None, Some(prlimit)) => {
            eprintln!(
                "chaos: cannot mount a tmpfs here (run as root for one): the disk-full fault lowers logd's RLIMIT_FSIZE instead"
            );
            DiskFault::FileSizeLimit(prlimit)
        }
        (None, None) => {
            eprintln!("chaos: skipped the disk-full fault: neither a tmpfs nor prlimit");
            DiskFault::None
        }
    };
    // A skip line when missing (the second logd is then the only upstream); a failure under
    // POSA_REQUIRE_PEERS=1, as in CI.
    let rsyslogd = pattern_core::peer::program("rsyslogd", "rsyslog");
    let run = Run {
        logd,
        concurrency: args.concurrency.clone(),
        rsyslogd,
        conf: work.join("svc.conf"),
        data,
        ports: pick_ports()?,
        disk,
        work: work.clone(),
    };
    write_conf(&run.conf, &run.valid_conf())?;
    let shared = Arc::new(Shared {
        stop: AtomicBool::new(false),
        windows: AtomicU64::new(0),
        udp_gate: RwLock::new(()),
        pid: AtomicU32::new(0),
        peak_rss: AtomicU64::new(0),
        started: Instant::now(),
        log: Mutex::default(),
    });
    let first = adopt(run.start_logd()?, &shared);
    eprintln!(
        "chaos: logd {} ({}) on ACE {}, syslog {}, metrics {}, forwarding to {}; data on {} for {} s",
        first.pid(),
        run.concurrency,
        run.ports.ace,
        run.ports.syslog,
        run.ports.metrics,
        run.ports.upstream,
        if run.disk == DiskFault::Tmpfs {
            "a tmpfs"
        } else {
            "disk"
        },
        args.seconds.as_secs_f64()
    );
    let results: Arc<Mutex<Vec<(Source, Sent)>>> = Arc::default();
    let mut threads = Vec::new();
    for &source in SOURCES {
        let (shared, results) = (shared.clone(), results.clone());
        let (ports, rate) = (run.ports, args.rate);
        threads.push(thread::spawn(move || {
            let sent = match source.wire {
                Wire::Ace => tcp_source(source, ports.ace, rate, &shared),
                Wire::SyslogTcp => tcp_source(source, ports.syslog, rate, &shared),
                Wire::SyslogUdp => udp_source(source, ports.syslog, rate, &shared),
                Wire::Relp => relp_source(source, ports.relp, rate, &shared),
            };
            results
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((source, sent));
        }));
    }
    let sampler = {
        let shared = shared.clone();
        thread::spawn(move || sample_rss(&shared))
    };
    let until = Instant::now() + args.seconds;
    let (mut inj, logd) = injector(&run, &shared, first, until);

    // The end: stop the load, let every batch finish, drain, stop logd with SIGTERM.
    shared.stop.store(true, Ordering::SeqCst);
    for t in threads {
        let _ = t.join();
    }
    let gate = before_stop(&run, &logd, &shared, &mut inj);
    let (took, out, exited) = logd.stop();
    drop(gate);
    if !exited {
        inj.errors
            .push("logd ended by a signal on the final SIGTERM".into());
    }
    inj.stops.push(took);
    inj.summaries.push(out);
    let _ = sampler.join();

    let mut found = Found::default();
    scan(&run.data, &mut found);
    drop(tmpfs);

    // The ledger.
    let mut sources = std::mem::take(&mut *results.lock().unwrap_or_else(|e| e.into_inner()));
    sources.sort_by_key(|(s, _)| s.name);
    println!();
    println!(
        "chaos ledger ({} s, logd {profile}, {})",
        args.seconds.as_secs(),
        run.concurrency
    );
    println!(
        "| source | wire | sent | stored | lost in kill/stop windows | lost outside | duplicates |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|");
    let mut tcp_lost_outside = 0;
    let (mut relp_lost, mut relp_duplicates) = (0, 0);
    let mut duplicates = 0;
    let (mut udp_sent, mut udp_stored) = (0, 0);
    let mut rows: Vec<(String, &str, Ledger)> = Vec::new();
    for (s, sent) in &sources {
        let l = match s.wire {
            Wire::Relp => ledger_relp(s.name, &sent.relp, &found),
            w if w.is_tcp() => ledger_tcp(s.name, sent, &found),
            _ => ledger_udp(s.name, sent.datagrams, &found),
        };
        rows.push((s.name.to_owned(), s.wire.label(), l));
    }
    rows.push((
        FLOOD.to_owned(),
        "syslog/udp, spoofed hosts",
        ledger_udp(FLOOD, inj.flood_sent, &found),
    ));
    for (name, wire, l) in &rows {
        let lost_outside = if *wire == Wire::Relp.label() {
            // Lost anywhere: a RELP record is sent until acknowledged, windows or not.
            relp_lost += l.lost_outside;
            relp_duplicates += l.duplicates;
            format!("{} (RELP: anywhere)", l.lost_outside)
        } else if wire.contains("tcp") {
            tcp_lost_outside += l.lost_outside;
            l.lost_outside.to_string()
        } else {
            udp_sent += l.sent;
            udp_stored += l.stored;
            format!("{} (UDP: see drops)", l.sent - l.stored)
        };
        if *wire != Wire::Relp.label() {
            duplicates += l.duplicates;
        }
        println!(
            "| {name} | {wire} | {} | {} | {} | {lost_outside} | {} |",
            l.sent,
            l.stored,
            if l.closed_in_windows > 0 {
                format!(
                    "{} ({} after a clean close)",
                    l.lost_in_kill_windows, l.closed_in_windows
                )
            } else {
                l.lost_in_kill_windows.to_string()
            },
            l.duplicates
        );
    }
    for (_, _, l) in &rows {
        for e in &l.examples {
            eprintln!("chaos: lost outside the windows: {e}");
        }
    }
    if tcp_lost_outside_any(&rows) {
        for (at, what) in shared.log.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            eprintln!("chaos: {:>7.2} s  {what}", at.as_secs_f64());
        }
    }
    let udp_lost = udp_sent - udp_stored;
    let counted = inj.udp_drops.kernel + inj.udp_drops.logd;
    println!();
    println!(
        "UDP: {udp_sent} sent, {udp_stored} stored, {udp_lost} not stored; counted drops: {} by the kernel (receive buffer full, /proc/PID/net/udp), {} by logd",
        inj.udp_drops.kernel, inj.udp_drops.logd
    );
    for (s, sent) in sources.iter().filter(|(s, _)| s.wire == Wire::Relp) {
        let r = &sent.relp;
        println!(
            "RELP {}: {} records in {} sessions, {} sent again after a broken session, {} never acknowledged, {relp_duplicates} stored twice (allowed after a crash, counted)",
            s.name, r.records, r.sessions, r.resent, r.unacknowledged
        );
    }
    println!(
        "faults: {} upstream flaps, {} valid and {} invalid SIGHUPs, {} disk fills ({}), {} floods of {FLOOD_HOSTS} host names, {} kill -9, {} restarts, {} SIGTERM stops",
        inj.upstream_flaps,
        inj.hup_valid,
        inj.hup_invalid,
        inj.fills,
        run.disk.label(),
        inj.floods,
        inj.kills,
        inj.restarts,
        inj.stops.len()
    );
    for s in &inj.summaries {
        for l in s
            .lines()
            .filter(|l| l.contains("ledger") || l.contains("failed writes"))
        {
            println!("  {l}");
        }
    }

    // The checks.
    let max_stop = inj.stops.iter().max().copied().unwrap_or_default();
    let peak = shared.peak_rss.load(Ordering::Relaxed);
    let unbalanced: Vec<String> = inj
        .summaries
        .iter()
        .filter_map(|s| balanced(s).err())
        .collect();
    let checks: Vec<(&str, String, bool)> = vec![
        (
            "TCP records lost outside the kill/stop windows",
            tcp_lost_outside.to_string(),
            tcp_lost_outside == 0,
        ),
        (
            "UDP records lost and not counted",
            udp_lost.saturating_sub(counted).to_string(),
            udp_lost <= counted,
        ),
        (
            "RELP records lost (kill windows included)",
            relp_lost.to_string(),
            relp_lost == 0,
        ),
        (
            "duplicates (TCP and UDP)",
            duplicates.to_string(),
            duplicates == 0,
        ),
        (
            "counters balance at every stop",
            if unbalanced.is_empty() {
                format!("{} stops", inj.summaries.len())
            } else {
                unbalanced.join("; ")
            },
            unbalanced.is_empty(),
        ),
        (
            "torn lines",
            format!("{} in {} files", found.torn.len(), found.files),
            found.torn.is_empty(),
        ),
        (
            "peak RSS (bound)",
            format!(
                "{:.1} MiB ({:.1} MiB)",
                peak as f64 / 1048576.0,
                run.rss_bound() as f64 / 1048576.0
            ),
            peak > 0 && peak <= run.rss_bound(),
        ),
        (
            "longest stop (deadline)",
            format!(
                "{:.2} s ({} s)",
                max_stop.as_secs_f64(),
                (STOP_TIMEOUT + STOP_SLACK).as_secs()
            ),
            max_stop <= STOP_TIMEOUT + STOP_SLACK,
        ),
        (
            "listeners kept after an invalid SIGHUP",
            inj.hup_invalid_still_serving.to_string(),
            inj.hup_invalid_still_serving,
        ),
        (
            "injector errors",
            if inj.errors.is_empty() {
                "none".into()
            } else {
                inj.errors.join("; ")
            },
            inj.errors.is_empty(),
        ),
    ];
    println!();
    println!("| check | value | ok |");
    println!("|---|---|---|");
    for (what, value, ok) in &checks {
        println!("| {what} | {value} | {} |", if *ok { "yes" } else { "NO" });
    }
    for t in found.torn.iter().take(5) {
        eprintln!("chaos: torn: {t}");
    }
    let passed = checks.iter().all(|(_, _, ok)| *ok);
    if passed {
        let _ = fs::remove_dir_all(&work);
    } else {
        eprintln!(
            "chaos: FAILED; logd's stderr and files are under {}",
            work.display()
        );
    }
    Ok(passed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ace_frames_and_syslog_messages_carry_the_chaos_text() {
        let f = ace_frame("chaos ace-1 7 end");
        assert_eq!(f[0], 1);
        assert_eq!(
            u32::from_le_bytes(f[4..8].try_into().unwrap()) as usize,
            f.len() - 8
        );
        assert!(f.ends_with(b"chaos ace-1 7 end\0"));
        let t = String::from_utf8(frame(Wire::SyslogTcp, "tcp-1", 3)).unwrap();
        let (len, msg) = t.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), msg.len());
        assert!(msg.ends_with("chaos tcp-1 3 end"));
    }

    #[test]
    fn the_scan_finds_records_anywhere_in_a_line_and_flags_torn_ones() {
        let dir = std::env::temp_dir().join(format!("chaos-scan-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join("a.log"),
            "2026 h chaos 5: chaos tcp-1 1 end\nx chaos udp-1 2 end\nchaos tcp-1 1 end\nchaos tcp-1 3 chaos tcp-1 4 end\n",
        )
        .unwrap();
        fs::write(dir.join("b.log"), "chaos ace-1 9 end\nchaos ace-1 10 e").unwrap();
        fs::write(
            dir.join("c.log"),
            "chaos relp-1 0 end\nchaos relp-1 2 end\nchaos relp-1 0 end\n",
        )
        .unwrap();
        let mut found = Found::default();
        scan(&dir, &mut found);
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(found.records.get(&("tcp-1".into(), 1)), Some(&2));
        assert_eq!(found.records.get(&("udp-1".into(), 2)), Some(&1));
        assert_eq!(found.records.get(&("ace-1".into(), 9)), Some(&1));
        assert_eq!(found.torn.len(), 3, "{:?}", found.torn);
        let sent = Sent {
            batches: vec![Batch {
                first: 0,
                written: 3,
                acked: true,
                in_kill_window: false,
                failure: None,
                ended: Duration::ZERO,
            }],
            datagrams: 0,
            relp: RelpSent::default(),
        };
        let l = ledger_tcp("tcp-1", &sent, &found);
        assert_eq!(
            (l.sent, l.stored, l.duplicates, l.lost_outside),
            (3, 1, 1, 2)
        );
        // A RELP record missing anywhere is lost, kill windows or not.
        let relp = RelpSent {
            records: 4,
            ..RelpSent::default()
        };
        let l = ledger_relp("relp-1", &relp, &found);
        assert_eq!(
            (l.sent, l.stored, l.duplicates, l.lost_outside),
            (4, 2, 1, 2)
        );
        assert_eq!(l.examples.len(), 2);
    }

    #[test]
    fn a_stop_summary_balances_only_when_every_ledger_line_says_so() {
        assert!(
            balanced("logd: ledger: a balanced=yes\nlogd: forward ledger: balanced=yes").is_ok()
        );
        assert!(
            balanced("logd: ledger: a balanced=yes\nlogd: forward ledger: balanced=no").is_err()
        );
        assert!(balanced("logd: stopped").is_err());
    }
}
