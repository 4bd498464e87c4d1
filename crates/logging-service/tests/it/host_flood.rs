//! The `logd` binary under descriptor pressure (issue 13): 1,600 spoofed UDP host names
//! against small `--max-open-files` and `--max-hosts`, and a descriptor limit so low that
//! `accept` fails with EMFILE while existing clients go on being served.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{TempDir, ace_frame};

const PATIENCE: Duration = Duration::from_secs(60);

/// A `logd` child, killed if the test ends before it exited.
struct Logd {
    child: Child,
    out: BufReader<std::process::ChildStdout>,
}

impl Logd {
    /// Starts `program args...` (logd, or logd under `prlimit`) and reads the listening
    /// lines: the address of each listener by its name.
    fn start(cmd: &mut Command) -> (Logd, Vec<(String, SocketAddr)>) {
        let mut child = crate::support::spawn(cmd.stdout(Stdio::piped()).stderr(Stdio::null()))
            .expect("logd starts");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut listening = Vec::new();
        loop {
            let mut line = String::new();
            assert!(out.read_line(&mut line).unwrap() > 0, "logd exited");
            if line.starts_with("logd: storing under") {
                break;
            }
            let (name, addr) = line
                .trim()
                .trim_start_matches("logd: ")
                .rsplit_once(" listening on ")
                .unwrap();
            listening.push((name.to_owned(), addr.parse().unwrap()));
        }
        (Logd { child, out }, listening)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Descriptors open in logd now.
    fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .unwrap()
            .count()
    }

    /// SIGTERM; the stop summary on stdout once it exited with status 0.
    fn stop(mut self) -> String {
        let st =
            crate::support::status(Command::new("kill").args(["-TERM", &self.pid().to_string()]))
                .unwrap();
        assert!(st.success());
        let mut rest = String::new();
        self.out.read_to_string(&mut rest).unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "{status:?}: {rest}");
        rest
    }
}

impl Drop for Logd {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::park_timeout(Duration::from_millis(2));
    }
}

/// The receive queue of logd's UDP socket on `port` (from /proc/PID/net/udp).
fn udp_queued(pid: u32, port: u16) -> u64 {
    let table = std::fs::read_to_string(format!("/proc/{pid}/net/udp")).unwrap();
    let local = format!("0100007F:{port:04X}");
    table
        .lines()
        .skip(1)
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[1] == local)
                .then(|| u64::from_str_radix(f[4].split(':').nth(1).unwrap(), 16).unwrap())
        })
        .expect("logd's UDP socket")
}

/// Every line of every file under `dir` (rotated files included).
fn all_lines(dir: &std::path::Path) -> Vec<(String, String)> {
    let mut lines = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        if path.is_file() {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            for l in std::fs::read_to_string(&path).unwrap().lines() {
                lines.push((name.clone(), l.to_owned()));
            }
        }
    }
    lines
}

#[test]
fn spoofed_host_floods_keep_descriptors_bounded_and_store_every_record() {
    const HOSTS: usize = 1_600;
    const MAX_OPEN: usize = 16;
    const MAX_HOSTS: usize = 100;
    let dir = TempDir::new("host-flood");
    let (logd, at) = Logd::start(
        Command::new(env!("CARGO_BIN_EXE_logd"))
            .args(["--ace-port", "off", "--syslog-port", "0"])
            .args(["--max-open-files", &MAX_OPEN.to_string()])
            .args(["--max-hosts", &MAX_HOSTS.to_string()])
            .arg("--data-dir")
            .arg(&dir.0),
    );
    let udp = at.iter().find(|(n, _)| n == "syslog (udp)").unwrap().1;
    let before = logd.fds();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut most = before;
    for batch in 0..HOSTS / 50 {
        for i in batch * 50..(batch + 1) * 50 {
            let d = format!("<13>1 - spoof-{i} flood - - - flood record {i} end");
            sock.send_to(d.as_bytes(), udp).unwrap();
        }
        // Paced by logd itself: the next batch goes once it has read this one (the kernel
        // would drop what overflows the socket buffer, counted but not what this test checks).
        wait_until("logd read the batch", || {
            udp_queued(logd.pid(), udp.port()) == 0
        });
        most = most.max(logd.fds());
    }
    // The last batch read is handed to the store before the stop returns.
    let summary = logd.stop();
    // One descriptor per host used to stay open: 1,600 hosts made 1,600 descriptors.
    assert!(
        most <= before + MAX_OPEN,
        "{most} descriptors open (was {before} before the flood, --max-open-files {MAX_OPEN})"
    );
    assert!(
        summary.contains(&format!(
            "{HOSTS} received, {HOSTS} stored ({} in the overflow file)",
            HOSTS - MAX_HOSTS
        )),
        "{summary}"
    );
    assert!(summary.contains("balanced=yes"), "{summary}");
    let lines = all_lines(&dir.0);
    let mut seen = vec![0u32; HOSTS];
    for (file, line) in &lines {
        let Some((_, rest)) = line.split_once("flood record ") else {
            continue;
        };
        let i: usize = rest.trim_end_matches(" end").parse().unwrap();
        seen[i] += 1;
        if file == "_overflow.log" {
            assert!(
                line.contains(&format!("spoof-{i}")),
                "claimed host kept: {line}"
            );
        }
    }
    assert!(seen.iter().all(|&n| n == 1), "every record stored once");
    let host_files = lines
        .iter()
        .map(|(f, _)| f)
        .filter(|f| f.starts_with("spoof-"))
        .collect::<std::collections::BTreeSet<_>>();
    assert_eq!(host_files.len(), MAX_HOSTS);

    // Restarted on the same directory, logd finds the MAX_HOSTS host files there: new hosts
    // go to the overflow file, a host that has a file keeps it.
    let (logd, at) = Logd::start(
        Command::new(env!("CARGO_BIN_EXE_logd"))
            .args(["--ace-port", "off", "--syslog-port", "0"])
            .args(["--max-hosts", &MAX_HOSTS.to_string()])
            .arg("--data-dir")
            .arg(&dir.0),
    );
    let tcp = at.iter().find(|(n, _)| n == "syslog (tcp)").unwrap().1;
    let old_host = host_files.iter().next().unwrap().trim_end_matches(".log");
    let mut s = TcpStream::connect(tcp).unwrap();
    for (i, host) in [
        old_host.to_owned(),
        "newcomer-1".into(),
        "newcomer-2".into(),
    ]
    .iter()
    .enumerate()
    {
        s.write_all(format!("<13>1 - {host} after - - - after restart {i}\n").as_bytes())
            .unwrap();
    }
    drop(s);
    wait_until("the three records are stored", || {
        all_lines(&dir.0)
            .iter()
            .filter(|(_, l)| l.contains("after restart"))
            .count()
            == 3
    });
    let summary = logd.stop();
    assert!(
        summary.contains("3 received, 3 stored (2 in the overflow file)"),
        "{summary}"
    );
    let after: Vec<(String, String)> = all_lines(&dir.0)
        .into_iter()
        .filter(|(_, l)| l.contains("after restart"))
        .collect();
    for (file, line) in &after {
        let expected = if line.contains(old_host) {
            format!("{old_host}.log")
        } else {
            "_overflow.log".to_owned()
        };
        assert_eq!(file, &expected, "{line}");
    }
    let files = std::fs::read_dir(&dir.0)
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            let name = name.to_string_lossy();
            name.ends_with(".log") && name != "_overflow.log"
        })
        .count();
    assert_eq!(files, MAX_HOSTS, "no host file beyond --max-hosts");
}

#[test]
fn emfile_on_accept_never_stops_serving_existing_clients() {
    let Some(prlimit) = pattern_core::peer::program("prlimit", "util-linux") else {
        return;
    };
    const NOFILE: usize = 48;
    let dir = TempDir::new("emfile");
    let (logd, at) = Logd::start(
        Command::new(prlimit)
            .arg(format!("--nofile={NOFILE}:{NOFILE}"))
            .arg(env!("CARGO_BIN_EXE_logd"))
            .args(["--ace-port", "0", "--syslog-port", "off"])
            .arg("--data-dir")
            .arg(&dir.0),
    );
    let ace = at.iter().find(|(n, _)| n.starts_with("ACE")).unwrap().1;
    let mut existing = TcpStream::connect(ace).unwrap();
    existing.set_read_timeout(Some(PATIENCE)).unwrap();
    existing.write_all(&ace_frame("before the flood")).unwrap();
    // Connections until logd has no descriptor left: the kernel completes them in the
    // backlog, and logd's accept fails with EMFILE.
    let mut flood = Vec::new();
    while logd.fds() < NOFILE {
        let open = logd.fds();
        flood.push(TcpStream::connect(ace).unwrap());
        wait_until("logd accepted the connection", || logd.fds() > open);
        assert!(
            flood.len() < 4 * NOFILE,
            "logd never ran out of descriptors"
        );
    }
    // More in the backlog, which logd cannot accept now.
    for _ in 0..8 {
        flood.push(TcpStream::connect(ace).unwrap());
    }
    // The existing client is served: its record is read and stored, and its half-close
    // answered with logd's close.
    existing.write_all(&ace_frame("during the flood")).unwrap();
    existing.shutdown(std::net::Shutdown::Write).unwrap();
    let mut sink = Vec::new();
    existing
        .read_to_end(&mut sink)
        .expect("logd closes the existing connection after its records");
    // Freed descriptors let logd accept again: a new client is served.
    drop(flood);
    crate::support::send_and_wait(ace, &ace_frame("after the flood"));
    let summary = logd.stop();
    assert!(
        summary.contains("3 records stored (3 ACE, 0 syslog, 0 RELP)"),
        "{summary}"
    );
    let backoffs: u64 = summary
        .split(" accept back-offs")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("the summary counts accept back-offs");
    assert!(backoffs >= 1, "{summary}");
    assert!(summary.contains("balanced=yes"), "{summary}");
}
