//! Forwarding tests' scaffolding: an edge logd's forwarding settings, numbered records sent
//! into it and looked up where they arrived, and rsyslog as a peer (started with the test's
//! configuration, killed when dropped).

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use logging_service::forward::Transport;
use logging_service::logd::LogdConfig;
use logging_service::store::StoredRecord;

use super::{Server, ace_frame, send_and_wait};

/// An edge logd's settings: no syslog listener, forwarding to `up` over `transport`,
/// reconnecting after 1 to 5 ms, a stop that drains for at most 500 ms.
pub(crate) fn forwarding_to(up: SocketAddr, transport: Transport) -> impl FnOnce(&mut LogdConfig) {
    move |c| {
        c.syslog_port = None;
        c.forward = Some(up);
        c.forwarding.transport = transport;
        c.forwarding.backoff_base = Duration::from_millis(1);
        c.forwarding.backoff_cap = Duration::from_millis(5);
        c.forwarding.stop_timeout = Duration::from_millis(500);
    }
}

/// `TAG i` for each `i` of `range`: the messages [`send_ace`] sends.
pub(crate) fn numbered(tag: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{tag} {i}")).collect()
}

/// Sends [`numbered`] messages to `edge`'s ACE port and waits until it stored them.
pub(crate) fn send_ace(edge: &Server, tag: &str, range: std::ops::Range<usize>) {
    let bytes: Vec<u8> = numbered(tag, range)
        .iter()
        .flat_map(|m| ace_frame(m))
        .collect();
    send_and_wait(edge.at.ace.unwrap(), &bytes);
}

/// The messages stored under `host`, in order.
pub(crate) fn messages_of(stored: &[(String, Vec<StoredRecord>)], host: &str) -> Vec<String> {
    stored
        .iter()
        .filter(|(h, _)| h == host)
        .flat_map(|(_, l)| l.iter().map(|r| r.message.clone()))
        .collect()
}

/// A port on the loopback address `ip` picked and freed, for a peer to listen on (each test
/// module hands its peers an address of its own, where nothing else binds).
pub(crate) fn free_port(ip: &str) -> u16 {
    TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The lines of a file (none while it does not exist).
pub(crate) fn lines_of_file(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// rsyslogd, if installed with its module `module` (what the skip line calls `what`, from
/// the package `package`); else `None`, after the skip line.
pub(crate) fn rsyslog_with(module: &str, what: &str, package: &str) -> Option<PathBuf> {
    let rsyslogd = pattern_core::peer::program("rsyslogd", "rsyslog")?;
    let candidates: Vec<String> = [
        "/usr/lib/x86_64-linux-gnu/rsyslog",
        "/usr/lib/aarch64-linux-gnu/rsyslog",
        "/usr/lib/rsyslog",
    ]
    .iter()
    .map(|d| format!("{d}/{module}"))
    .collect();
    let candidates: Vec<&str> = candidates.iter().map(String::as_str).collect();
    pattern_core::peer::file(&candidates, what, package)?;
    Some(rsyslogd)
}

/// rsyslogd in the foreground with `conf` (written to `work/rsyslog.conf`), killed on drop.
pub(crate) struct Rsyslogd(Child);

impl Rsyslogd {
    pub(crate) fn start(rsyslogd: &Path, work: &Path, conf: &str) -> Rsyslogd {
        let file = work.join("rsyslog.conf");
        std::fs::write(&file, conf).unwrap();
        let child = super::spawn(
            Command::new(rsyslogd)
                .args(["-n", "-f"])
                .arg(&file)
                .arg("-i")
                .arg(work.join("rsyslogd.pid"))
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )
        .expect("rsyslogd starts");
        Rsyslogd(child)
    }
}

impl Drop for Rsyslogd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
