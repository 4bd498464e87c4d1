//! `cargo xtask bench-logging`: end-to-end ingest of logd against real logging servers, and
//! logd's memory with thousands of idle connections; writes `docs/benchmarks-logging.md`
//! and `docs/benchmarks-logging.svg`.
//!
//! Peers: ACE's `ace_netsvcs` (Server_Logging_Service, from Debian's `ace-netsvcs`) on the
//! ACE format; rsyslog and syslog-ng on syslog over TCP. syslog-ng conflicts with rsyslog as
//! a Debian package, so when it is not installed its `.deb` (and the few libraries it needs)
//! are fetched with `apt-get download` and unpacked with `dpkg -x` under the target
//! directory, once. Every server is a child process on 127.0.0.1 and a high port, stopped
//! by its PID.

mod render;

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use lab_report::args::{at_least_one, list};

use crate::demo::cargo_program;
use crate::metadata;
use crate::process;

use render::{Memory, Ratio, Report, Sample, Samples, Wire};

/// What `cargo xtask bench-logging --help` adds after the options.
const AFTER_HELP: &str = "\
Figures are records per second counted in the files each server writes, servers
interleaved round-robin. The idle run needs N + 100 descriptors in the client and
in each server; both are started through `sh -c 'ulimit -n ...'`, which fails
quietly above the hard limit.";

/// Bytes of message text per record.
const MESSAGE_BYTES: usize = 64;
/// How long a server may take to accept a first connection.
const STARTUP: Duration = Duration::from_secs(20);
/// Bound on one ingest run (the client bounds its wait for the count at 120 s).
const RUN_LIMIT: Duration = Duration::from_secs(200);
/// The first port tried; ports below the kernel's ephemeral range keep clear of clients.
const FIRST_PORT: u16 = 22_000;
/// The last port tried.
const LAST_PORT: u16 = 32_000;

/// How a server is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// logd with this `--concurrency`.
    Logd(&'static str),
    /// logd (reactor) from a svc.conf with this `Interceptors` argument string: the cost of
    /// the interceptor chain (`logging_service::intercept`).
    LogdChain(&'static str),
    /// `ace_netsvcs` with the Server_Logging_Service.
    Ace,
    /// `rsyslogd` with imtcp.
    Rsyslog,
    /// `syslog-ng` with a `syslog()` source.
    SyslogNg,
}

/// One server of the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Server {
    key: &'static str,
    label: &'static str,
    kind: Kind,
}

impl Server {
    fn speaks(&self, wire: Wire) -> bool {
        match self.kind {
            Kind::Logd(_) | Kind::LogdChain(_) => true,
            Kind::Ace => wire == Wire::Ace,
            Kind::Rsyslog | Kind::SyslogNg => wire == Wire::Syslog,
        }
    }

    fn is_logd(&self) -> bool {
        matches!(self.kind, Kind::Logd(_) | Kind::LogdChain(_))
    }
}

const SERVERS: &[Server] = &[
    Server {
        key: "logd-reactor",
        label: "logd, reactor",
        kind: Kind::Logd("reactor"),
    },
    Server {
        key: "logd-leader-followers",
        label: "logd, leader/followers",
        kind: Kind::Logd("leader-followers"),
    },
    Server {
        key: "logd-half-sync-half-async",
        label: "logd, half-sync/half-async",
        kind: Kind::Logd("half-sync-half-async"),
    },
    Server {
        key: "logd-chain-empty",
        label: "logd, reactor, empty interceptor chain",
        kind: Kind::LogdChain(""),
    },
    Server {
        key: "logd-chain-3",
        label: "logd, reactor, three interceptors",
        // Three interceptors that look at every record and take none, so every record is
        // still stored and counted: a severity filter, a redaction that scans every message,
        // a per-host rate limit too generous to bite.
        kind: Kind::LogdChain(
            r"drop severity=debug ; redact 'pattern=password=\S+' with=password=*** ; rate-limit burst=1e9 per-second=1e9",
        ),
    },
    Server {
        key: "logd-proactor",
        label: "logd, proactor (TCP on io_uring)",
        kind: Kind::Logd("proactor"),
    },
    Server {
        key: "ace",
        label: "ace_netsvcs (ACE 7)",
        kind: Kind::Ace,
    },
    Server {
        key: "rsyslog",
        label: "rsyslog",
        kind: Kind::Rsyslog,
    },
    Server {
        key: "syslog-ng",
        label: "syslog-ng",
        kind: Kind::SyslogNg,
    },
];

/// The command line of `cargo xtask bench-logging`; [`resolve`](Self::resolve) fills in the
/// defaults.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub(crate) struct BenchLoggingCli {
    /// 1 round of 50,000 records, 1,000 idle connections.
    #[arg(long)]
    quick: bool,
    /// Rounds; figures are medians over them [default: 5].
    #[arg(long, value_name = "N", value_parser = at_least_one)]
    rounds: Option<usize>,
    /// Records per run, all connections together [default: 400000].
    #[arg(long, value_name = "N", value_parser = at_least_one)]
    records: Option<usize>,
    /// Connection counts, comma-separated.
    #[arg(long, value_name = "LIST", default_value = "1,16", value_parser = |t: &str| list(t, at_least_one))]
    connections: ::std::vec::Vec<usize>,
    /// Servers, comma-separated, from: logd-reactor, logd-leader-followers,
    /// logd-half-sync-half-async, logd-proactor, ace, rsyslog, syslog-ng [default: all of these],
    /// and logd-chain-empty, logd-chain-3 (logd with an empty and a three-interceptor chain).
    #[arg(long, value_name = "LIST", value_parser = |t: &str| list(t, server))]
    servers: Option<::std::vec::Vec<Server>>,
    /// Idle connections for the memory run, 0 to skip [default: 10000].
    #[arg(long, value_name = "N")]
    idle: Option<usize>,
    /// logd's --threads.
    #[arg(long, value_name = "N", default_value = "2", value_parser = at_least_one)]
    threads: usize,
}

/// What `cargo xtask bench-logging` was asked to do.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BenchLoggingArgs {
    rounds: usize,
    records: usize,
    connections: Vec<usize>,
    servers: Vec<Server>,
    idle: usize,
    threads: usize,
}

impl BenchLoggingCli {
    /// The run asked for, defaults filled in (`--quick` changes them; options given win).
    pub(crate) fn resolve(self) -> BenchLoggingArgs {
        let (rounds, records, idle) = if self.quick {
            (1, 50_000, 1_000)
        } else {
            (5, 400_000, 10_000)
        };
        BenchLoggingArgs {
            rounds: self.rounds.unwrap_or(rounds),
            records: self.records.unwrap_or(records),
            connections: self.connections,
            // The interceptor-chain variants run only when named.
            servers: self.servers.unwrap_or_else(|| {
                SERVERS
                    .iter()
                    .copied()
                    .filter(|s| !matches!(s.kind, Kind::LogdChain(_)))
                    .collect()
            }),
            idle: self.idle.unwrap_or(idle),
            threads: self.threads,
        }
    }
}

/// The server `--servers` calls `key`.
fn server(key: &str) -> Result<Server, String> {
    SERVERS
        .iter()
        .copied()
        .find(|s| s.key == key)
        .ok_or_else(|| {
            let known: Vec<&str> = SERVERS.iter().map(|s| s.key).collect();
            format!("unknown server `{key}` (known: {})", known.join(", "))
        })
}

/// Where the peers' programs are.
#[derive(Debug, Default)]
struct Tools {
    /// `ace_netsvcs` and a directory holding a `libnetsvcs.so` link.
    ace: Option<(PathBuf, PathBuf)>,
    /// `rsyslogd`.
    rsyslog: Option<PathBuf>,
    /// syslog-ng: the binary, its module path, its library path.
    syslog_ng: Option<(PathBuf, PathBuf, String)>,
    /// Version lines for the report.
    versions: Vec<String>,
    /// Why a peer is missing.
    skipped: Vec<String>,
}

/// A program on `PATH`.
fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

/// The first line of a command's output (stdout, else stderr).
fn first_line(cmd: &mut Command) -> Option<String> {
    let out = cmd.stdin(Stdio::null()).output().ok()?;
    let text = if out.stdout.is_empty() {
        out.stderr
    } else {
        out.stdout
    };
    String::from_utf8_lossy(&text)
        .lines()
        .find(|l| !l.trim().is_empty())
        .map(|l| l.trim().to_owned())
}

fn dpkg_version(package: &str) -> Option<String> {
    first_line(Command::new("dpkg-query").args(["-W", "-f", "${Version}", package]))
}

/// The path of a file named like `prefix*suffix` that a Debian package installed.
fn dpkg_file(package: &str, prefix: &str, suffix: &str) -> Option<PathBuf> {
    let out = Command::new("dpkg").args(["-L", package]).output().ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| {
            let name = l.rsplit('/').next().unwrap_or("");
            name.starts_with(prefix) && name.ends_with(suffix)
        })
        .map(PathBuf::from)
}

/// Finds (or unpacks) the peers that `servers` need.
fn find_tools(servers: &[Server], work: &Path, cache: &Path) -> Tools {
    let mut tools = Tools::default();
    let wants = |kind: Kind| servers.iter().any(|s| s.kind == kind);
    if wants(Kind::Ace) {
        let lib = dpkg_file("ace-netsvcs", "libnetsvcs", ".so")
            .or_else(|| {
                // Older packaging puts the library in libnetsvcs itself.
                dpkg_file("libnetsvcs", "libnetsvcs", ".so")
            })
            .or_else(|| {
                fs::read_dir("/usr/lib/x86_64-linux-gnu")
                    .ok()?
                    .flatten()
                    .find_map(|e| {
                        let name = e.file_name().to_string_lossy().into_owned();
                        (name.starts_with("libnetsvcs-") && name.ends_with(".so")).then(|| e.path())
                    })
            });
        match (which("ace_netsvcs"), lib) {
            (Some(bin), Some(lib)) => {
                // ace_netsvcs asks the dynamic loader for `libnetsvcs.so` only.
                let dir = work.join("ace-lib");
                let link = dir.join("libnetsvcs.so");
                let _ = fs::create_dir_all(&dir);
                let _ = fs::remove_file(&link);
                match std::os::unix::fs::symlink(&lib, &link) {
                    Ok(()) => {
                        tools.versions.push(format!(
                            "ace_netsvcs: Debian `ace-netsvcs` {} ({})",
                            dpkg_version("ace-netsvcs").unwrap_or_else(|| "?".into()),
                            lib.display()
                        ));
                        tools.ace = Some((bin, dir));
                    }
                    Err(e) => tools
                        .skipped
                        .push(format!("ace_netsvcs: cannot link {}: {e}", lib.display())),
                }
            }
            _ => tools.skipped.push(
                "ace_netsvcs: not installed (Debian packages `ace-netsvcs` and `libace-dev`)"
                    .into(),
            ),
        }
    }
    if wants(Kind::Rsyslog) {
        match which("rsyslogd")
            .or_else(|| Some(PathBuf::from("/usr/sbin/rsyslogd")).filter(|p| p.is_file()))
        {
            Some(bin) => {
                tools.versions.push(format!(
                    "rsyslog: {}",
                    first_line(Command::new(&bin).arg("-v"))
                        .map(|l| l.trim_end_matches("compiled with:").trim().to_owned())
                        .unwrap_or_else(|| "?".into())
                ));
                tools.rsyslog = Some(bin);
            }
            None => tools
                .skipped
                .push("rsyslog: `rsyslogd` not installed".into()),
        }
    }
    if wants(Kind::SyslogNg) {
        match syslog_ng(cache) {
            Ok((bin, modules, libs)) => {
                tools.versions.push(format!(
                    "syslog-ng: {} (from `{}`)",
                    first_line(
                        Command::new(&bin)
                            .arg("--version")
                            .env("LD_LIBRARY_PATH", &libs)
                    )
                    .unwrap_or_else(|| "?".into()),
                    bin.display()
                ));
                tools.syslog_ng = Some((bin, modules, libs));
            }
            Err(e) => tools.skipped.push(format!("syslog-ng: {e}")),
        }
    }
    tools
}

/// The Debian packages unpacked for a private syslog-ng.
const SYSLOG_NG_DEBS: &[&str] = &[
    "syslog-ng-core",
    "libpcre3",
    "libivykis0",
    "libnet1",
    "libwrap0",
];

/// syslog-ng's binary, module directory and `LD_LIBRARY_PATH`: installed, or unpacked
/// from Debian's packages into `cache`.
fn syslog_ng(cache: &Path) -> Result<(PathBuf, PathBuf, String), String> {
    if let Some(bin) = which("syslog-ng")
        .or_else(|| Some(PathBuf::from("/usr/sbin/syslog-ng")).filter(|p| p.is_file()))
    {
        let modules = module_dir(Path::new("/usr/lib/syslog-ng"))
            .ok_or("installed, but no module directory under /usr/lib/syslog-ng")?;
        return Ok((bin, modules, String::new()));
    }
    let root = cache.join("root");
    let bin = root.join("usr/sbin/syslog-ng");
    if !bin.is_file() {
        let debs = cache.join("debs");
        fs::create_dir_all(&debs).map_err(|e| format!("{}: {e}", debs.display()))?;
        eprintln!(
            "bench-logging: apt-get download {}",
            SYSLOG_NG_DEBS.join(" ")
        );
        let status = Command::new("apt-get")
            .arg("download")
            .args(SYSLOG_NG_DEBS)
            .current_dir(&debs)
            .stdout(Stdio::null())
            .status()
            .map_err(|e| format!("cannot run apt-get: {e}"))?;
        if !status.success() {
            return Err(format!("`apt-get download` failed ({status})"));
        }
        for entry in fs::read_dir(&debs).map_err(|e| e.to_string())?.flatten() {
            let status = Command::new("dpkg")
                .arg("-x")
                .arg(entry.path())
                .arg(&root)
                .status()
                .map_err(|e| format!("cannot run dpkg: {e}"))?;
            if !status.success() {
                return Err(format!("dpkg -x {} failed", entry.path().display()));
            }
        }
    }
    let modules =
        module_dir(&root.join("usr/lib/syslog-ng")).ok_or("unpacked, but no module directory")?;
    let libs = [
        "usr/lib/syslog-ng",
        "usr/lib/x86_64-linux-gnu",
        "lib/x86_64-linux-gnu",
    ]
    .iter()
    .map(|d| root.join(d).display().to_string())
    .collect::<Vec<_>>()
    .join(":");
    Ok((bin, modules, libs))
}

/// The versioned directory (`3.38`) holding syslog-ng's `libafsocket.so`.
fn module_dir(base: &Path) -> Option<PathBuf> {
    fs::read_dir(base)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.join("libafsocket.so").is_file())
}

/// Hands out high ports that nothing holds, one after the other.
#[derive(Debug)]
struct Ports(u16);

impl Ports {
    fn next(&mut self) -> Result<u16, String> {
        for _ in FIRST_PORT..=LAST_PORT {
            let port = self.0;
            self.0 = if port >= LAST_PORT {
                FIRST_PORT
            } else {
                port + 1
            };
            // ace_netsvcs binds every address, so the port must be free on all of them.
            if TcpListener::bind(("0.0.0.0", port)).is_ok() {
                return Ok(port);
            }
        }
        Err("no free port".to_owned())
    }
}

/// A running server, stopped by its PID (SIGTERM, then SIGKILL) and reaped when dropped.
#[derive(Debug)]
struct Running {
    child: Child,
}

impl Running {
    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `sh -c 'ulimit -n N; exec "$0" "$@"' program`: raises the open-file limit for one child.
fn with_nofile(program: &Path, files: usize) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("ulimit -n {files} 2>/dev/null; exec \"$0\" \"$@\""))
        .arg(program);
    cmd
}

/// Starts `server` listening for `wire` on `port`, storing under `data`; `state` is a
/// scratch directory outside `data`.
fn start(
    server: &Server,
    wire: Wire,
    port: u16,
    data: &Path,
    state: &Path,
    ctx: &Context,
    files: usize,
) -> Result<Running, String> {
    fs::create_dir_all(data).map_err(|e| format!("{}: {e}", data.display()))?;
    fs::create_dir_all(state).map_err(|e| format!("{}: {e}", state.display()))?;
    let mut cmd = match server.kind {
        Kind::LogdChain(chain) => {
            let conf = state.join("svc.conf");
            let listener = match wire {
                Wire::Ace => "ACE_Logging",
                Wire::Syslog => "Syslog_Logging",
            };
            write(
                &conf,
                &format!(
                    "static {listener} \"-p {port} -b 127.0.0.1\"\nstatic Interceptors \"{chain}\"\n"
                ),
            )?;
            let mut cmd = with_nofile(&ctx.bin_dir.join("logd"), files);
            cmd.arg("-f")
                .arg(&conf)
                .arg("--data-dir")
                .arg(data)
                .args(["--concurrency", "reactor"])
                .args(["--fsync", "none", "--rotate-bytes", "1000000000000"])
                .args(["--idle-timeout", "3600"]);
            cmd
        }
        Kind::Logd(model) => {
            let mut cmd = with_nofile(&ctx.bin_dir.join("logd"), files);
            let (ace, syslog) = match wire {
                Wire::Ace => (port.to_string(), "off".to_owned()),
                Wire::Syslog => ("off".to_owned(), port.to_string()),
            };
            cmd.args([
                "--ace-port",
                &ace,
                "--syslog-port",
                &syslog,
                "--bind",
                "127.0.0.1",
            ])
            .arg("--data-dir")
            .arg(data)
            .args(["--concurrency", model]);
            // logd refuses --threads for the reactor and the proactor, which have one thread.
            if matches!(model, "leader-followers" | "half-sync-half-async") {
                cmd.args(["--threads", &ctx.threads.to_string()]);
            }
            cmd.args(["--fsync", "none", "--rotate-bytes", "1000000000000"])
                .args(["--idle-timeout", "3600"]);
            cmd
        }
        Kind::Ace => {
            let (bin, lib) = ctx.tools.ace.as_ref().ok_or("ace_netsvcs missing")?;
            let conf = state.join("svc.conf");
            write(&conf, &ace_conf(&data.join("ace.log"), port))?;
            let mut cmd = with_nofile(bin, files);
            cmd.arg("-f").arg(&conf).env("LD_LIBRARY_PATH", lib);
            cmd
        }
        Kind::Rsyslog => {
            let bin = ctx.tools.rsyslog.as_ref().ok_or("rsyslogd missing")?;
            let conf = state.join("rsyslog.conf");
            write(&conf, &rsyslog_conf(state, &data.join("out.log"), port))?;
            let mut cmd = with_nofile(bin, files);
            cmd.arg("-n")
                .arg("-f")
                .arg(&conf)
                .arg("-i")
                .arg(state.join("rsyslogd.pid"));
            cmd
        }
        Kind::SyslogNg => {
            let (bin, modules, libs) = ctx.tools.syslog_ng.as_ref().ok_or("syslog-ng missing")?;
            let conf = state.join("syslog-ng.conf");
            write(&conf, &syslog_ng_conf(&data.join("out.log"), port))?;
            let mut cmd = with_nofile(bin, files);
            cmd.args(["-F", "--no-caps", "-f"])
                .arg(&conf)
                .arg(format!("--module-path={}", modules.display()))
                .arg("-p")
                .arg(state.join("syslog-ng.pid"))
                .arg("-R")
                .arg(state.join("syslog-ng.persist"))
                .arg("-c")
                .arg(state.join("syslog-ng.ctl"));
            if !libs.is_empty() {
                cmd.env("LD_LIBRARY_PATH", libs);
            }
            cmd
        }
    };
    let log = fs::File::create(state.join("server.out")).map_err(|e| e.to_string())?;
    let err = log.try_clone().map_err(|e| e.to_string())?;
    let child = cmd
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", server.key))?;
    let mut running = Running { child };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + STARTUP;
    loop {
        if TcpStream::connect(addr).is_ok() {
            return Ok(running);
        }
        if let Ok(Some(status)) = running.child.try_wait() {
            let out = fs::read_to_string(state.join("server.out")).unwrap_or_default();
            return Err(format!("{} exited ({status}): {}", server.key, out.trim()));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{} did not listen on {addr} within {STARTUP:?}",
                server.key
            ));
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// ACE's svc.conf: the Logging Strategy sends ACE's log to `out` with full records, then the
/// Server_Logging_Service alone.
fn ace_conf(out: &Path, port: u16) -> String {
    format!(
        "dynamic Logger Service_Object * ACE:_make_ACE_Logging_Strategy() \"-s {} -f OSTREAM|VERBOSE\"\n\
         dynamic Server_Logging_Service Service_Object * netsvcs:_make_ACE_Server_Logging_Acceptor() active \"-p {port}\"\n",
        out.display()
    )
}

/// rsyslog: imtcp on 127.0.0.1, every message to one file with time, host, app, pid,
/// facility and severity.
fn rsyslog_conf(state: &Path, out: &Path, port: u16) -> String {
    format!(
        "global(workDirectory=\"{state}\")\n\
         module(load=\"imtcp\" MaxSessions=\"20000\")\n\
         input(type=\"imtcp\" port=\"{port}\" address=\"127.0.0.1\")\n\
         template(name=\"line\" type=\"string\" string=\"%TIMESTAMP:::date-rfc3339% %HOSTNAME% %APP-NAME%[%PROCID%] <%syslogfacility%.%syslogseverity%> %msg%\\n\")\n\
         action(type=\"omfile\" file=\"{out}\" template=\"line\")\n",
        state = state.display(),
        out = out.display()
    )
}

/// syslog-ng: a `syslog()` source (octet counting) raised to be a fair peer, one file.
fn syslog_ng_conf(out: &Path, port: u16) -> String {
    format!(
        "@version: 3.38\n\
         options {{ threaded(yes); use-dns(no); dns-cache(no); keep-hostname(yes); }};\n\
         source s_net {{ syslog(ip(\"127.0.0.1\") port({port}) transport(\"tcp\") max-connections(20000) log-iw-size(2000000) log-fetch-limit(1000)); }};\n\
         destination d_file {{ file(\"{out}\" template(\"${{ISODATE}} ${{HOST}} ${{PROGRAM}}[${{PID}}] <${{FACILITY_NUM}}.${{LEVEL_NUM}}> ${{MSG}}\\n\")); }};\n\
         log {{ source(s_net); destination(d_file); flags(flow-control); }};\n",
        out = out.display()
    )
}

/// What every run needs.
#[derive(Debug)]
struct Context {
    bin_dir: PathBuf,
    work: PathBuf,
    tools: Tools,
    threads: usize,
}

fn read_ticks(pid: u32) -> Option<u64> {
    crate::bench::cpu_ticks(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// One ingest run against a fresh server.
fn measure(
    server: &Server,
    wire: Wire,
    connections: usize,
    run: usize,
    args: &BenchLoggingArgs,
    ctx: &Context,
    ports: &mut Ports,
) -> Result<Sample, String> {
    let dir = ctx.work.join(format!("run-{run}"));
    let _ = fs::remove_dir_all(&dir);
    let (data, state) = (dir.join("data"), dir.join("state"));
    let port = ports.next()?;
    let running = start(server, wire, port, &data, &state, ctx, 1024)?;
    let per_conn = (args.records / connections).max(1);
    let mut ingest = Command::new(ctx.bin_dir.join("ingest"));
    ingest
        .args([
            "--addr",
            &format!("127.0.0.1:{port}"),
            "--format",
            wire.arg(),
        ])
        .arg("--count-dir")
        .arg(&data)
        .args(["--connections", &connections.to_string()])
        .args(["--records", &per_conn.to_string()])
        .args(["--message-bytes", &MESSAGE_BYTES.to_string()])
        .args(["--marker", &format!("blrun{run}x")])
        .args(["--timeout", "120"]);
    let before = read_ticks(running.pid());
    let out = process::run(&mut ingest, RUN_LIMIT).map_err(|e| format!("ingest: {e}"))?;
    let after = read_ticks(running.pid());
    drop(running);
    let _ = fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut sample = render::parse_sample(&stdout).map_err(|e| {
        format!(
            "{e} (ingest against {}: {})",
            server.key,
            String::from_utf8_lossy(&out.stderr).trim()
        )
    })?;
    if let (Some(b), Some(a)) = (before, after)
        && sample.stored > 0
    {
        // USER_HZ is 100 on Linux.
        sample.cpu_us = Some(a.saturating_sub(b) as f64 / 100.0 * 1e6 / sample.stored as f64);
    }
    Ok(sample)
}

/// logd (or a peer) with `idle` connections, one syslog record each, held open.
fn measure_memory(server: &Server, idle: usize, ctx: &Context, ports: &mut Ports) -> Memory {
    let mut memory = Memory {
        label: server.label,
        ours: server.is_logd(),
        held: 0,
        asked: idle as u64,
        start_kib: None,
        peak_kib: None,
        error: None,
    };
    if let Err(e) = idle_run(server, idle, ctx, ports, &mut memory) {
        memory.error = Some(e);
    }
    memory
}

fn idle_run(
    server: &Server,
    idle: usize,
    ctx: &Context,
    ports: &mut Ports,
    memory: &mut Memory,
) -> Result<(), String> {
    let dir = ctx.work.join(format!("idle-{}", server.key));
    let _ = fs::remove_dir_all(&dir);
    let (data, state) = (dir.join("data"), dir.join("state"));
    let port = ports.next()?;
    let files = idle + 256;
    let running = start(server, Wire::Syslog, port, &data, &state, ctx, files)?;
    let status = |pid: u32, field: &str| {
        fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| render::status_kib(&s, field))
    };
    memory.start_kib = status(running.pid(), "VmRSS");
    let mut client = with_nofile(&ctx.bin_dir.join("ingest"), files);
    client
        .args(["--addr", &format!("127.0.0.1:{port}"), "--format", "syslog"])
        .arg("--count-dir")
        .arg(&data)
        .args(["--connections", &idle.to_string(), "--records", "1"])
        .args(["--connect-gap-ms", "0", "--timeout", "60", "--hold"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = client.spawn().map_err(|e| format!("ingest: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(180);
    let held = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.starts_with("HOLDING") => break true,
            Ok(line) => lines.push(line),
            Err(_) => break false,
        }
    };
    if held {
        memory.peak_kib = status(running.pid(), "VmHWM");
    }
    drop(child.stdin.take());
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    lines.extend(rx.try_iter());
    drop(running);
    let _ = fs::remove_dir_all(&dir);
    if let Ok(sample) = render::parse_sample(&lines.join("\n")) {
        memory.held = sample.stored;
    }
    if !held {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut err);
        }
        return Err(format!(
            "the client never held its connections: {}",
            err.trim()
        ));
    }
    Ok(())
}

/// A short description of the machine.
fn machine(ctx: &Context) -> Vec<String> {
    let read = |p: &str| fs::read_to_string(p).ok();
    let cpu = read("/proc/cpuinfo")
        .and_then(|t| {
            t.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == "model name").then(|| v.trim().to_owned())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cpus = thread::available_parallelism().map_or(1, |n| n.get());
    let mut lines = vec![
        format!("{cpus} logical CPUs ({cpu}), shared with other work"),
        format!(
            "Linux {}",
            read("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
        ),
        format!(
            "{}",
            first_line(Command::new("rustc").arg("--version")).unwrap_or_else(|| "rustc ?".into())
        ),
        format!(
            "date (UTC): {}",
            first_line(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M"])).unwrap_or_default()
        ),
    ];
    lines.extend(ctx.tools.versions.iter().cloned());
    lines
}

/// Runs the benchmark and writes the report.
pub(crate) fn run(args: &BenchLoggingArgs) -> Result<bool, String> {
    let cargo = cargo_program();
    let workspace = metadata::load(&cargo)?;
    let build = [
        "build",
        "--release",
        "-p",
        "benches",
        "--bin",
        "ingest",
        "-p",
        "logging-service",
        "--bin",
        "logd",
    ];
    eprintln!("bench-logging: cargo {}", build.join(" "));
    let status = Command::new(&cargo)
        .args(build)
        .current_dir(&workspace.root)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!("build failed ({status})"));
    }
    let scratch = workspace.target_dir.join("bench-logging");
    let work = scratch.join(format!("work-{}", std::process::id()));
    fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    let tools = find_tools(&args.servers, &work, &scratch.join("syslog-ng"));
    for s in &tools.skipped {
        eprintln!("bench-logging: skipping {s}");
    }
    let available = |s: &Server| match s.kind {
        Kind::Logd(_) | Kind::LogdChain(_) => true,
        Kind::Ace => tools.ace.is_some(),
        Kind::Rsyslog => tools.rsyslog.is_some(),
        Kind::SyslogNg => tools.syslog_ng.is_some(),
    };
    let servers: Vec<Server> = args.servers.iter().copied().filter(available).collect();
    let ctx = Context {
        bin_dir: workspace.target_dir.join("release"),
        work,
        tools,
        threads: args.threads,
    };
    let mut ports = Ports(FIRST_PORT);

    // The matrix: every (wire, server) the server speaks.
    let cells: Vec<(Wire, Server)> = [Wire::Ace, Wire::Syslog]
        .iter()
        .flat_map(|&w| {
            servers
                .iter()
                .filter(move |s| s.speaks(w))
                .map(move |s| (w, *s))
        })
        .collect();
    let total = args.rounds * args.connections.len() * cells.len();
    let mut samples = Samples::new();
    let mut failures = 0;
    let mut run = 0;
    for round in 0..args.rounds {
        for &conns in &args.connections {
            for wire in [Wire::Ace, Wire::Syslog] {
                let here: Vec<Server> = cells
                    .iter()
                    .filter(|(w, _)| *w == wire)
                    .map(|(_, s)| *s)
                    .collect();
                for server in lab_report::rotation(&here, round) {
                    run += 1;
                    let result = measure(&server, wire, conns, run, args, &ctx, &mut ports);
                    let entry = samples.entry((wire, conns, server.key)).or_default();
                    match result {
                        Ok(s) => {
                            eprintln!(
                                "bench-logging: [{run}/{total}] round {} {:<6} {:>2} conns {:<26} {:>10.0} rec/s  {}/{} stored  cpu {:.2} us/rec",
                                round + 1,
                                wire.arg(),
                                conns,
                                server.key,
                                s.rate,
                                s.stored,
                                s.sent,
                                s.cpu_us.unwrap_or(f64::NAN)
                            );
                            if s.stored < s.sent {
                                failures += 1;
                            }
                            entry.push(Some(s));
                        }
                        Err(e) => {
                            failures += 1;
                            eprintln!("bench-logging: [{run}/{total}] {} failed: {e}", server.key);
                            entry.push(None);
                        }
                    }
                }
            }
        }
    }

    let order: Vec<(Wire, &'static str, &'static str)> =
        cells.iter().map(|(w, s)| (*w, s.key, s.label)).collect();
    let rows = render::summarise(&samples, &order, &args.connections);
    let mut ratios = Vec::new();
    let peers_of = |wire: Wire| -> Vec<&'static str> {
        cells
            .iter()
            .filter(|(w, s)| *w == wire && !s.is_logd())
            .map(|(_, s)| s.key)
            .collect()
    };
    for wire in [Wire::Ace, Wire::Syslog] {
        let peers = peers_of(wire);
        if peers.is_empty() {
            continue;
        }
        let (against, target) = match wire {
            Wire::Ace => ("ace_netsvcs".to_owned(), render::TARGET_VS_ACE),
            Wire::Syslog => (
                if peers.len() > 1 {
                    "faster of rsyslog, syslog-ng".to_owned()
                } else {
                    peers[0].to_owned()
                },
                render::TARGET_VS_SYSLOG,
            ),
        };
        for &conns in &args.connections {
            for (_, s) in cells.iter().filter(|(w, s)| *w == wire && s.is_logd()) {
                ratios.push(Ratio {
                    wire,
                    connections: conns,
                    ours: s.label,
                    against: against.clone(),
                    value: render::paired_ratio(&samples, wire, conns, s.key, &peers),
                    target,
                });
            }
        }
    }

    let mut memory = Vec::new();
    if args.idle > 0 {
        for server in servers.iter().filter(|s| s.kind != Kind::Ace) {
            eprintln!(
                "bench-logging: {} idle connections to {}",
                args.idle, server.key
            );
            let m = measure_memory(server, args.idle, &ctx, &mut ports);
            eprintln!(
                "bench-logging: {}: {} held, peak {} KiB{}",
                server.key,
                m.held,
                m.peak_kib.unwrap_or(0),
                m.error
                    .as_deref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            );
            memory.push(m);
        }
    }

    let mut skipped = ctx.tools.skipped.clone();
    if args.idle > 0 && servers.iter().any(|s| s.kind == Kind::Ace) {
        skipped.push(
            "ace_netsvcs in the idle-memory run: its select()-based reactor cannot watch more than 1,024 descriptors (tried by hand: 1,015 of 2,000 connections held, the rest never served)".into(),
        );
    }
    let docs = workspace.root.join("docs");
    let md_path = docs.join("benchmarks-logging.md");
    let svg_path = docs.join("benchmarks-logging.svg");
    let notes = fs::read_to_string(&md_path)
        .ok()
        .and_then(|old| render::kept_notes(&old).map(str::to_owned));
    let report = Report {
        machine: machine(&ctx),
        rounds: args.rounds,
        records: args.records,
        message_bytes: MESSAGE_BYTES,
        threads: args.threads,
        rows,
        ratios,
        memory,
        skipped,
        notes,
    };
    write(
        &md_path,
        &render::markdown(&report, "benchmarks-logging.svg"),
    )?;
    write(&svg_path, &render::svg(&report.rows))?;
    print!("{}", render::table(&report));
    eprintln!(
        "bench-logging: wrote {} and {}",
        md_path.display(),
        svg_path.display()
    );
    let _ = fs::remove_dir_all(&ctx.work);
    if failures > 0 {
        eprintln!("bench-logging: {failures} runs failed or stored fewer records than sent");
        return Ok(false);
    }
    Ok(true)
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<BenchLoggingArgs, String> {
        let mut all = vec!["bench-logging"];
        all.extend(args);
        match crate::cli::tests::parse(&all)? {
            crate::cli::Command::BenchLogging(cli) => Ok(cli.resolve()),
            other => panic!("expected bench-logging, got {other:?}"),
        }
    }

    fn run_args(args: &[&str]) -> BenchLoggingArgs {
        parse(args).unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    #[test]
    fn defaults_and_quick() {
        let a = run_args(&[]);
        assert_eq!(
            (a.rounds, a.records, a.idle, a.threads),
            (5, 400_000, 10_000, 2)
        );
        assert_eq!(a.connections, vec![1, 16]);
        // Every server but the interceptor-chain variants, which run only when named.
        assert_eq!(a.servers.len(), SERVERS.len() - 2);
        assert!(a.servers.iter().all(|s| !s.key.starts_with("logd-chain")));
        let named = run_args(&["--servers", "logd-reactor,logd-chain-empty,logd-chain-3"]);
        assert_eq!(named.servers.len(), 3);
        let q = run_args(&["--quick", "--rounds", "2"]);
        assert_eq!((q.rounds, q.records, q.idle), (2, 50_000, 1_000));
    }

    #[test]
    fn options_and_errors() {
        let a = run_args(&[
            "--servers",
            "logd-reactor, ace",
            "--connections",
            "1,4",
            "--idle",
            "0",
            "--threads",
            "4",
        ]);
        assert_eq!(
            a.servers.iter().map(|s| s.key).collect::<Vec<_>>(),
            ["logd-reactor", "ace"]
        );
        assert_eq!(a.connections, vec![1, 4]);
        assert_eq!((a.idle, a.threads), (0, 4));
        assert!(
            parse(&["--servers", "nginx"])
                .unwrap_err()
                .contains("known:")
        );
        assert!(parse(&["--rounds", "0"]).is_err());
        assert!(parse(&["--connections", "1,x"]).is_err());
        assert!(parse(&["--records"]).is_err());
        assert!(parse(&["--bogus", "1"]).is_err());
        assert!(parse(&["--help"]).unwrap_err().contains("--idle <N>"));
    }

    #[test]
    fn who_speaks_what() {
        let by = |k: &str| *SERVERS.iter().find(|s| s.key == k).unwrap();
        assert!(by("logd-reactor").speaks(Wire::Ace) && by("logd-reactor").speaks(Wire::Syslog));
        assert!(by("ace").speaks(Wire::Ace) && !by("ace").speaks(Wire::Syslog));
        assert!(!by("rsyslog").speaks(Wire::Ace) && by("syslog-ng").speaks(Wire::Syslog));
    }

    #[test]
    fn configurations_name_the_port_and_the_file() {
        let ace = ace_conf(Path::new("/d/ace.log"), 22001);
        assert!(ace.contains("\"-s /d/ace.log -f OSTREAM|VERBOSE\""));
        assert!(ace.contains("_make_ACE_Server_Logging_Acceptor() active \"-p 22001\""));
        assert_eq!(ace.lines().count(), 2);
        let rs = rsyslog_conf(Path::new("/s"), Path::new("/d/out.log"), 22002);
        assert!(rs.contains("port=\"22002\" address=\"127.0.0.1\""));
        assert!(rs.contains("file=\"/d/out.log\""));
        let ng = syslog_ng_conf(Path::new("/d/out.log"), 22003);
        assert!(ng.contains("syslog(ip(\"127.0.0.1\") port(22003) transport(\"tcp\")"));
        assert!(ng.contains("flags(flow-control)"));
        assert!(ng.contains("${MSG}\\n"));
    }

    #[test]
    fn ports_skip_a_taken_one() {
        let taken = TcpListener::bind(("0.0.0.0", 0)).unwrap();
        let port = taken.local_addr().unwrap().port();
        let mut ports = Ports(port);
        let got = ports.next().unwrap();
        assert_ne!(got, port);
    }
}
