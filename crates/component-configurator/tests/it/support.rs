//! Shared helpers: building and locating the plugin libraries, temp dirs, a line client.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use component_configurator::{Component, ComponentError};

/// The plugins the tests load.
pub(crate) const PLUGINS: &[&str] = &[
    "cc-echo",
    "cc-time",
    "cc-stats",
    "cc-panicky",
    "cc-wrong-abi",
    "cc-gate",
];

/// `target/<profile>`, where cargo puts the plugin libraries; built on first use.
pub(crate) fn plugin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // The test executable lives in target/<profile>/deps/.
        let exe = std::env::current_exe().expect("current exe");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile>/deps")
            .to_owned();
        let target = profile_dir.parent().expect("target dir").to_owned();
        let profile = profile_dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("debug");
        let mut cmd = Command::new(env!("CARGO"));
        cmd.arg("build").arg("--quiet");
        match profile {
            "debug" => {}
            "release" => {
                cmd.arg("--release");
            }
            other => {
                cmd.args(["--profile", other]);
            }
        }
        for p in PLUGINS {
            cmd.args(["-p", p]);
        }
        cmd.env("CARGO_TARGET_DIR", &target)
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        // Spawning under the fork-window lock (see wrapper_facade::process::without_spawns);
        // tests call this before they take `without_spawns`, never while holding it.
        let mut child = {
            let _forking = wrapper_facade::process::spawning();
            cmd.spawn().expect("run cargo build for the plugins")
        };
        let status = child.wait().expect("wait for cargo build");
        assert!(status.success(), "building the plugins failed");
        profile_dir
    })
}

/// The path of a plugin's library, e.g. `plugin("cc-echo")`.
pub(crate) fn plugin(name: &str) -> PathBuf {
    plugin_dir().join(format!("lib{}.so", name.replace('-', "_")))
}

/// A fresh, empty directory for one test, removed when the guard drops.
#[derive(Debug)]
pub(crate) struct TempDir(PathBuf);

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl TempDir {
    /// `name` in this directory, kept alive (and removed) with it.
    pub(crate) fn keep(self, name: &str) -> InTempDir {
        InTempDir {
            path: self.0.join(name),
            _dir: self,
        }
    }
}

/// A path inside a [`TempDir`] that owns the directory.
#[derive(Debug)]
pub(crate) struct InTempDir {
    path: PathBuf,
    _dir: TempDir,
}

impl std::ops::Deref for InTempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.path
    }
}

impl PartialEq<InTempDir> for PathBuf {
    fn eq(&self, other: &InTempDir) -> bool {
        *self == other.path
    }
}

impl AsRef<Path> for InTempDir {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

/// A fresh, empty directory for one test, e.g. `temp_dir("sighup")`.
pub(crate) fn temp_dir(tag: &str) -> TempDir {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "cc-it-{}-{}-{tag}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    TempDir(dir.canonicalize().expect("canonical temp dir"))
}

/// Sends one line and reads one line back.
pub(crate) fn request(addr: SocketAddr, line: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(addr)?;
    stream.write_all(format!("{line}\n").as_bytes())?;
    let mut reply = String::new();
    BufReader::new(stream).read_line(&mut reply)?;
    Ok(reply.trim_end().to_owned())
}

/// The address in an info line such as `echo service on 127.0.0.1:4242 (serving)`.
pub(crate) fn addr_of(info: &str) -> SocketAddr {
    let start = info.find("127.0.0.1:").expect("an address in the info");
    let rest = &info[start..];
    let end = rest.find([' ', ',', ')']).unwrap_or(rest.len());
    rest[..end].parse().expect("a socket address")
}

/// A static component that records every call in a shared log.
#[derive(Debug)]
pub(crate) struct Logged {
    pub(crate) name: String,
    pub(crate) log: std::sync::Arc<parking_lot::Mutex<Vec<String>>>,
}

impl Logged {
    fn note(&self, what: &str) {
        self.log.lock().push(format!("{what} {}", self.name));
    }
}

/// `Logged` refuses in `check` an argument starting with "bad", and in `init` (which it logs
/// first) one starting with "busy": a resource that only `init` can find taken.
impl Component for Logged {
    fn check(&self, args: &[String]) -> Result<(), ComponentError> {
        match args.iter().find(|a| a.starts_with("bad")) {
            Some(a) => Err(ComponentError::new(format!("`{a}` is not a number"))),
            None => Ok(()),
        }
    }
    fn init(&mut self, args: &[String]) -> Result<(), ComponentError> {
        self.note(&format!("init{args:?}"));
        match args.iter().find(|a| a.starts_with("busy")) {
            Some(a) => Err(ComponentError::new(format!("`{a}` is taken"))),
            None => Ok(()),
        }
    }
    fn fini(&mut self) -> Result<(), ComponentError> {
        self.note("fini");
        Ok(())
    }
    fn suspend(&mut self) -> Result<(), ComponentError> {
        self.note("suspend");
        Ok(())
    }
    fn resume(&mut self) -> Result<(), ComponentError> {
        self.note("resume");
        Ok(())
    }
    fn info(&self) -> String {
        format!("logged {}", self.name)
    }
}

/// Whether a socket of this process listens on TCP `port` (from `/proc/net/tcp`, whose
/// listening sockets are matched by inode against this process's descriptors).
///
/// This is how the tests check that a service closed its port: connecting could reach another
/// test's listener that took the freed port, and a child between fork and exec may still hold
/// a copy of ours; neither is a socket of this process.
pub(crate) fn listening_here(port: u16) -> bool {
    let ours: std::collections::HashSet<String> = std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|target| {
            let t = target.to_string_lossy().into_owned();
            Some(t.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
        })
        .collect();
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    table.lines().skip(1).any(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        // sl local_address rem_address st ... inode (10th field); state 0A is LISTEN.
        f.len() > 9
            && f[3] == "0A"
            && f[1].rsplit(':').next() == Some(&format!("{port:04X}"))
            && ours.contains(f[9])
    })
}

/// A static component with state, logging every call like [`Logged`], whose `export_state`
/// fails on demand: `export` is what it hands over (`Err` with a message makes it fail).
/// `import_state` takes any bytes; `info` shows the state it holds.
#[derive(Debug)]
pub(crate) struct Stateful {
    pub(crate) name: String,
    pub(crate) log: std::sync::Arc<parking_lot::Mutex<Vec<String>>>,
    pub(crate) state: Vec<u8>,
    pub(crate) export: Result<(), String>,
}

impl Stateful {
    fn note(&self, what: &str) {
        self.log.lock().push(format!("{what} {}", self.name));
    }
}

impl Component for Stateful {
    fn init(&mut self, args: &[String]) -> Result<(), ComponentError> {
        self.note(&format!("init{args:?}"));
        Ok(())
    }
    fn fini(&mut self) -> Result<(), ComponentError> {
        self.note("fini");
        Ok(())
    }
    fn suspend(&mut self) -> Result<(), ComponentError> {
        self.note("suspend");
        Ok(())
    }
    fn resume(&mut self) -> Result<(), ComponentError> {
        self.note("resume");
        Ok(())
    }
    fn info(&self) -> String {
        format!("stateful {} holding {:?}", self.name, self.state)
    }
    fn export_state(&self) -> Result<Option<Vec<u8>>, ComponentError> {
        self.note("export_state");
        match &self.export {
            Ok(()) => Ok(Some(self.state.clone())),
            Err(message) => Err(ComponentError::new(message.clone())),
        }
    }
    fn import_state(&mut self, state: &[u8]) -> Result<(), ComponentError> {
        self.note(&format!("import_state{state:?}"));
        self.state = state.to_vec();
        Ok(())
    }
}
