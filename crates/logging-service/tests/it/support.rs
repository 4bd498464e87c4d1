//! Starting a server in-process, temporary data directories, stored-line counting; TLS
//! scaffolding in [`tls`], forwarding tests' and rsyslog's in [`upstream`].

pub(crate) mod tls;
pub(crate) mod upstream;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use logging_service::ace::{AceRecord, ByteOrder, SecondsLayout, encode};
use logging_service::logd::{Logd, LogdConfig};
use logging_service::server::Listening;
use logging_service::store::{Output, Stats, StoreConfig, StoredRecord, read_records};

/// Every stored record, per host file, as the store's parser reads it.
pub(crate) type Stored = Vec<(String, Vec<StoredRecord>)>;

/// Records stored in every file.
pub(crate) fn count_lines(stored: &[(String, Vec<StoredRecord>)]) -> usize {
    stored.iter().map(|(_, l)| l.len()).sum()
}

/// Sets the concurrency model named `model` (`proactor`, or what [`leader_followers::Concurrency`]
/// parses).
pub(crate) fn set_model(cfg: &mut LogdConfig, model: &str) {
    if model == "proactor" {
        cfg.proactor = true;
    } else {
        cfg.concurrency = model.parse().expect("a concurrency model");
    }
}

/// A data directory removed when dropped.
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "logd-it-{}-{tag}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A server running on a thread.
pub(crate) struct Server {
    pub(crate) at: Listening,
    pub(crate) output: Arc<Output>,
    pub(crate) dir: TempDir,
    logd: Option<Logd>,
}

impl Server {
    pub(crate) fn start(tag: &str, edit: impl FnOnce(&mut LogdConfig)) -> Self {
        let dir = TempDir::new(tag);
        let mut cfg = LogdConfig {
            ace_port: Some(0),
            syslog_port: Some(0),
            store: StoreConfig::new(&dir.0),
            ..LogdConfig::default()
        };
        edit(&mut cfg);
        let logd = Logd::start(cfg).expect("start logd");
        let at = logd.listening();
        let output = logd.output();
        Server {
            at,
            output,
            dir,
            logd: Some(logd),
        }
    }

    /// The running server (to reconfigure it as SIGHUP does).
    pub(crate) fn logd(&mut self) -> &mut Logd {
        self.logd.as_mut().unwrap()
    }

    /// Whether the TCP listeners run on the proactor.
    pub(crate) fn proactor(&self) -> bool {
        self.logd.as_ref().unwrap().proactor()
    }

    /// The forwarder's handle (when forwarding); its counters stay readable after the stop.
    pub(crate) fn forwarder(&self) -> logging_service::forward::ForwardHandle {
        self.logd
            .as_ref()
            .unwrap()
            .forwarder()
            .expect("forwarding is configured")
    }

    /// Stops gracefully; returns the counters and, read after the stop, every stored line.
    pub(crate) fn stop(self) -> (Stats, Stored) {
        let (stats, stored, _) = self.stop_with_files();
        (stats, stored)
    }

    /// Like [`stop`](Self::stop), also listing every file (rotated ones included) with its size.
    pub(crate) fn stop_with_files(mut self) -> (Stats, Stored, Vec<(String, u64)>) {
        let stats = self
            .logd
            .take()
            .unwrap()
            .stop()
            .expect("logd stops cleanly");
        // Every test's server accounts for everything it read (issue 13's invariant).
        if let Err(e) = stats.balances() {
            panic!("the counters do not balance: {e}\n{stats:?}");
        }
        let mut files: Vec<(String, u64)> = std::fs::read_dir(&self.dir.0)
            .map(|d| {
                d.map(|e| {
                    let e = e.unwrap();
                    (
                        e.file_name().to_string_lossy().into_owned(),
                        e.metadata().unwrap().len(),
                    )
                })
                .collect()
            })
            .unwrap_or_default();
        files.sort();
        (stats, self.stored(), files)
    }

    /// Every stored record, per host file, read with the store's parser (a line it refuses
    /// fails the test).
    pub(crate) fn stored(&self) -> Stored {
        if !self.dir.0.exists() {
            return Vec::new();
        }
        read_records(&self.dir.0).expect("every stored line parses")
    }

    /// Waits until the server has stored `n` records (for senders that cannot be told when
    /// their records are in: UDP, `logger`). Fails after 30 s.
    pub(crate) fn wait_for_records(&self, n: u64) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.output.stats().records < n {
            assert!(
                Instant::now() < deadline,
                "only {:?} stored, expected {n}",
                self.output.stats()
            );
            std::thread::park_timeout(Duration::from_millis(2));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(logd) = self.logd.take() {
            let _ = logd.stop();
        }
    }
}

/// Polls `cond` until it holds; fails with `what` after 60 s (a generous bound, not a timing
/// assertion: it only keeps a broken test from hanging).
pub(crate) fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::park_timeout(Duration::from_millis(2));
    }
}

/// One little-endian ACE frame (pid 1, time 0, `LM_INFO`) carrying `msg`.
pub(crate) fn ace_frame(msg: &str) -> Vec<u8> {
    let r = AceRecord {
        priority: 8,
        pid: 1,
        seconds: 0,
        micros: 0,
        message: msg.into(),
    };
    encode(&r, ByteOrder::Little, SecondsLayout::Wide)
}

/// Sends `bytes`, half-closes, and waits for the server to close: by then every record the
/// server read from this connection is stored (it writes each batch before its upcall returns).
pub(crate) fn send_and_wait(addr: SocketAddr, bytes: &[u8]) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.write_all(bytes).expect("send");
    s.shutdown(Shutdown::Write).expect("half-close");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest)
        .expect("server closes after end of stream");
}

/// Spawns `cmd` holding the fork-window lock ([`wrapper_facade::process::spawning`]): a child
/// between its fork and exec holds a copy of every descriptor of this process, so tests that
/// close a listener and check that it refuses connections (under
/// [`wrapper_facade::process::without_spawns`]) must not overlap a spawn. Every test of this
/// binary spawns through here.
pub(crate) fn spawn(cmd: &mut std::process::Command) -> std::io::Result<std::process::Child> {
    let _forking = wrapper_facade::process::spawning();
    cmd.spawn()
}

/// [`std::process::Command::output`] through [`spawn`].
pub(crate) fn output(cmd: &mut std::process::Command) -> std::io::Result<std::process::Output> {
    use std::process::Stdio;
    spawn(
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )?
    .wait_with_output()
}

/// [`std::process::Command::status`] through [`spawn`].
pub(crate) fn status(cmd: &mut std::process::Command) -> std::io::Result<std::process::ExitStatus> {
    spawn(cmd)?.wait()
}
