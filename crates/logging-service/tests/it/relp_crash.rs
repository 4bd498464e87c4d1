//! RELP on both hops under `kill -9`: a RELP sender → a middle `logd` (RELP listener, RELP
//! forwarder) → an upstream `logd` (RELP listener), as binaries. The middle one is killed
//! and restarted on its data directory and spool, then the upstream is; after recovery every
//! record is stored upstream, duplicates are bounded by what the counters say was sent again,
//! and nothing is lost.

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use logging_service::client::{ClientError, RelpClient};
use logging_service::store::read_records;

use crate::support::{TempDir, wait_until};

/// A `logd` child, killed when dropped if still running.
struct Logd {
    child: Child,
    /// Everything it printed on stdout, collected by a thread.
    out: Arc<parking_lot::Mutex<String>>,
}

impl Drop for Logd {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Starts `logd` with a RELP listener on `addr` and `extra` options; returns once it listens.
fn start(dir: &Path, addr: SocketAddr, extra: &[String]) -> Logd {
    start_inner(dir, addr, extra, false).0
}

/// [`start`] with `--metrics` among `extra`: also returns the metrics address.
fn start_with_metrics(dir: &Path, addr: SocketAddr, extra: &[String]) -> (Logd, SocketAddr) {
    let (l, m) = start_inner(dir, addr, extra, true);
    (l, m.expect("a metrics line"))
}

fn start_inner(
    dir: &Path,
    addr: SocketAddr,
    extra: &[String],
    metrics: bool,
) -> (Logd, Option<SocketAddr>) {
    let mut child = crate::support::spawn(
        Command::new(env!("CARGO_BIN_EXE_logd"))
            .args(["--ace-port", "off", "--syslog-port", "off"])
            .args(["--bind", &addr.ip().to_string()])
            .args(["--relp-port", &addr.port().to_string()])
            .arg("--data-dir")
            .arg(dir)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
    )
    .expect("logd starts");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.contains("RELP (tcp) listening on"), "{first}");
    let mut metrics_at = None;
    if metrics {
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert!(line.contains("metrics (http) listening on"), "{line}");
        metrics_at = Some(line.trim().rsplit(' ').next().unwrap().parse().unwrap());
        first.push_str(&line);
    }
    let out = Arc::new(parking_lot::Mutex::new(first));
    let o = out.clone();
    std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = stdout.read_to_string(&mut rest);
        o.lock().push_str(&rest);
    });
    (Logd { child, out }, metrics_at)
}

fn kill(child: &Child, signal: &str) {
    let st = crate::support::status(
        Command::new("kill").args([&format!("-{signal}"), &child.id().to_string()]),
    )
    .unwrap();
    assert!(st.success());
}

/// Stops with SIGSTOP and waits until every thread of it is stopped: the signal is only
/// queued when `kill` returns, and a thread still running could answer what the test sends
/// next (an upstream acknowledging records the test means to leave in flight).
fn pause(child: &Child) {
    kill(child, "STOP");
    let tasks = format!("/proc/{}/task", child.id());
    wait_until("every thread stopped", || {
        std::fs::read_dir(&tasks).unwrap().all(|t| {
            let stat = std::fs::read_to_string(t.unwrap().path().join("stat")).unwrap_or_default();
            // The state follows the command's closing parenthesis.
            stat.rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('T'))
        })
    });
}

/// Kills with SIGKILL and reaps.
fn kill_9(mut l: Logd) {
    kill(&l.child, "KILL");
    let _ = l.child.wait();
}

/// Stops with SIGTERM; returns what it printed.
fn stop(mut l: Logd) -> String {
    kill(&l.child, "TERM");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = l.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "logd does not stop");
        std::thread::park_timeout(Duration::from_millis(10));
    };
    assert!(status.success(), "{status:?}");
    wait_until("logd's stdout is read", || {
        l.out.lock().contains("logd: stopped")
    });
    l.out.lock().clone()
}

/// A free port on `ip` (no other test binds 127.0.0.84).
fn free(ip: &str) -> SocketAddr {
    TcpListener::bind(format!("{ip}:0"))
        .unwrap()
        .local_addr()
        .unwrap()
}

/// The messages stored under `dir`, every file.
fn stored(dir: &Path) -> Vec<String> {
    read_records(dir)
        .unwrap_or_default()
        .into_iter()
        .flat_map(|(_, records)| records)
        .map(|r| r.message)
        .collect()
}

/// Where a [`send_reliably`] stands: messages acknowledged in all, and sent but not yet
/// acknowledged in the current session.
#[derive(Default)]
struct Progress {
    acked: AtomicU64,
    in_flight: AtomicU64,
}

/// A RELP sender as rsyslog's omrelp behaves: keeps every message until it is acknowledged
/// and, when a session breaks, reconnects and sends every unacknowledged one again.
struct ReliableSender {
    to: SocketAddr,
    session: Option<RelpClient>,
    /// Messages sent without an acknowledgement (and so sent again) in all.
    resent: u64,
}

impl ReliableSender {
    /// Sends `messages` (numbered from `first` in `progress`) until each is acknowledged,
    /// keeping the session open for the next call.
    fn send(&mut self, messages: &[Vec<u8>], first: u64, progress: &Progress) {
        let mut base = 0;
        let deadline = Instant::now() + Duration::from_secs(120);
        while base < messages.len() {
            assert!(Instant::now() < deadline, "the sender never got through");
            let c = match &mut self.session {
                Some(c) => c,
                None => match RelpClient::connect(self.to, 32, Duration::from_secs(30)) {
                    Ok(c) => self.session.insert(c),
                    Err(ClientError::Io { .. } | ClientError::Relp(_)) => {
                        // logd is down (killed, restarting): try again.
                        std::thread::park_timeout(Duration::from_millis(5));
                        continue;
                    }
                    Err(e) => panic!("{e}"),
                },
            };
            let before = c.acked();
            let mut sent = 0u64;
            let result = messages[base..].iter().try_for_each(|m| {
                c.send(m)?;
                sent += 1;
                let acked = c.acked() - before;
                progress
                    .acked
                    .store(first + base as u64 + acked, Ordering::Relaxed);
                progress.in_flight.store(sent - acked, Ordering::Relaxed);
                Ok::<(), ClientError>(())
            });
            let result = result.and_then(|()| c.flush());
            let acked = c.acked() - before;
            base += acked as usize;
            progress.acked.store(first + base as u64, Ordering::Relaxed);
            progress.in_flight.store(0, Ordering::Relaxed);
            if result.is_err() {
                self.resent += sent - acked;
                self.session = None;
            }
        }
    }
}

/// A number printed before `what` in `text` (`12 resent`), 0 when absent.
fn number_before(text: &str, what: &str) -> u64 {
    text.find(what)
        .and_then(|i| text[..i].trim_end().rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}

/// One value of `logd`'s metrics (`NAME VALUE` in the text exposition), 0 when absent.
fn metric(at: SocketAddr, name: &str) -> u64 {
    let text = ureq::get(&format!("http://{at}/metrics"))
        .call()
        .ok()
        .and_then(|r| r.into_body().read_to_string().ok())
        .unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0)
}

/// Each kill comes at a state the test brings about and observes (no timing): the upstream
/// is stopped (SIGSTOP) so that the middle logd cannot commit; the middle one is stopped so
/// that nothing the sender sends next is acknowledged; then the stopped process is killed.
#[test]
fn a_kill_9_of_either_hop_loses_no_acknowledged_record() {
    const N: usize = 2000;
    const PART: [usize; 4] = [100, 400, 1200, N];
    let (mid_dir, up_dir) = (TempDir::new("crash-mid"), TempDir::new("crash-up"));
    let (mid_at, up_at) = (free("127.0.0.84"), free("127.0.0.84"));
    let mid_args: Vec<String> = vec![
        "--forward".into(),
        format!("relp://{up_at}"),
        "--relp-window".into(),
        "64".into(),
        "--forward-backoff".into(),
        "5ms:50ms".into(),
        "--metrics".into(),
        "127.0.0.84:0".into(),
    ];
    let mut up = start(&up_dir.0, up_at, &[]);
    let (mut mid, mut mid_metrics) = start_with_metrics(&mid_dir.0, mid_at, &mid_args);
    let messages: Vec<Vec<u8>> = (0..N)
        .map(|i| format!("<13>1 2026-01-01T00:00:00Z sender app - - - crash {i}").into_bytes())
        .collect();
    let progress = Arc::new(Progress::default());
    let (go, gate) = std::sync::mpsc::channel::<()>();
    let p = progress.clone();
    let sender = std::thread::spawn(move || {
        let mut sender = ReliableSender {
            to: mid_at,
            session: None,
            resent: 0,
        };
        let mut from = 0;
        for (i, &to) in PART.iter().enumerate() {
            if i > 0 {
                gate.recv().unwrap();
            }
            sender.send(&messages[from..to], from as u64, &p);
            from = to;
        }
        if let Some(c) = sender.session.take() {
            c.close().unwrap();
        }
        sender.resent
    });
    let acked = |n: usize| progress.acked.load(Ordering::Relaxed) == n as u64;

    // The middle logd's RELP session to the upstream is open and idle.
    let delivered = |at| {
        metric(at, "logd_forward_queued") == 0 && metric(at, "logd_records_forwarded_total") > 0
    };
    wait_until("the first part is acknowledged", || acked(PART[0]));
    wait_until("the first part is upstream", || delivered(mid_metrics));

    // 1. The middle logd dies with records in its spool and in flight to the (stopped)
    //    upstream, and with the sender's window to it full.
    pause(&up.child);
    go.send(()).unwrap();
    wait_until("the second part is acknowledged", || acked(PART[1]));
    wait_until("the middle logd has records in flight", || {
        metric(mid_metrics, "logd_relp_in_flight") > 0
    });
    pause(&mid.child);
    go.send(()).unwrap();
    wait_until("the sender's window is full", || {
        progress.in_flight.load(Ordering::Relaxed) == 32
    });
    kill_9(mid);
    (mid, mid_metrics) = start_with_metrics(&mid_dir.0, mid_at, &mid_args);
    kill(&up.child, "CONT");
    wait_until("the third part is acknowledged", || acked(PART[2]));
    wait_until("the third part is upstream", || delivered(mid_metrics));

    // 2. The upstream dies with records in flight from the middle logd.
    pause(&up.child);
    go.send(()).unwrap();
    wait_until("the last part is acknowledged", || acked(PART[3]));
    wait_until("the middle logd has records in flight", || {
        metric(mid_metrics, "logd_relp_in_flight") > 0
    });
    kill_9(up);
    up = start(&up_dir.0, up_at, &[]);

    let sender_resent = sender.join().expect("the sender finished");
    wait_until("every record is upstream", || {
        let got: std::collections::HashSet<String> = stored(&up_dir.0).into_iter().collect();
        (0..N).all(|i| got.contains(&format!("crash {i}")))
    });
    let mid_out = stop(mid);
    let up_out = stop(up);
    let lines = stored(&up_dir.0);
    let duplicates = lines.len() - N;
    let mid_resent = number_before(&mid_out, " resent");
    let recovered = number_before(&mid_out, " recovered from the spool");
    println!(
        "ledger: {N} sent, {} stored upstream, {duplicates} duplicates; sender resent {sender_resent}, middle resent {mid_resent}, middle recovered {recovered}",
        lines.len()
    );
    // The kills hit records in flight on both hops and in the spool.
    assert!(sender_resent >= 32, "{sender_resent}");
    assert!(recovered >= (PART[1] - PART[0]) as u64, "{mid_out}");
    assert!(mid_resent > 0, "{mid_out}");
    // Duplicates are allowed, and bounded by what the counters say was sent again.
    assert!(
        duplicates as u64 <= sender_resent + mid_resent + recovered,
        "duplicates beyond what was sent again:\n{mid_out}\n{up_out}"
    );
    // The first copy of each record arrived in the sender's order.
    let mut seen = std::collections::HashSet::new();
    let firsts: Vec<&String> = lines.iter().filter(|l| seen.insert(l.as_str())).collect();
    let want: Vec<String> = (0..N).map(|i| format!("crash {i}")).collect();
    assert_eq!(firsts.len(), N);
    assert!(firsts.iter().zip(&want).all(|(a, b)| *a == b), "order");
}
