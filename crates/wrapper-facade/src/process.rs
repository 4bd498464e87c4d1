//! Processes: spawn with `posix_spawnp(3)`, wait (optionally with a timeout through a pidfd), signal.
//!
//! The C sequence `fork`, fix up descriptors, reset signal state, `execvp`, `waitpid` with
//! `WIFEXITED`/`WEXITSTATUS` macros, is one type here, and the easily forgotten steps are done for
//! the caller: the child starts with an empty signal mask and default signal dispositions, even if
//! the parent blocked signals for a [`SignalFd`](crate::signal::SignalFd) or ignores SIGPIPE.

use std::ffi::CString;
use std::fmt;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use crate::signal::{Signal, SignalSet};
use crate::sys::{self, cvt, owned};

/// Where a child's standard stream comes from or goes to.
#[derive(Debug)]
#[non_exhaustive]
pub enum Redirect {
    /// The parent's descriptor (the default).
    Inherit,
    /// `/dev/null`.
    Null,
    /// A descriptor handed over to the child, such as one end of a [`Pipe`](crate::notify::Pipe).
    /// The parent's copy is closed once the child has started.
    Fd(OwnedFd),
}

/// What to run and how: program, arguments, standard streams.
///
/// ```
/// use wrapper_facade::process::{ExitStatus, Process, ProcessOptions, Redirect};
/// let mut child = Process::spawn(ProcessOptions::new("sh").arg("-c").arg("exit 3").stdout(Redirect::Null))?;
/// assert_eq!(child.wait()?, ExitStatus::Exited(3));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct ProcessOptions {
    program: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    stdin: Redirect,
    stdout: Redirect,
    stderr: Redirect,
}

impl ProcessOptions {
    /// Runs `program`, looked up in `PATH` unless it contains a slash; `argv[0]` is `program`.
    pub fn new(program: impl Into<String>) -> Self {
        ProcessOptions {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            stdin: Redirect::Inherit,
            stdout: Redirect::Inherit,
            stderr: Redirect::Inherit,
        }
    }

    /// Appends one argument.
    #[must_use]
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Appends several arguments.
    #[must_use]
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable for the child (the rest of the parent's environment is inherited).
    #[must_use]
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Sets the child's standard input.
    #[must_use]
    pub fn stdin(mut self, r: Redirect) -> Self {
        self.stdin = r;
        self
    }

    /// Sets the child's standard output.
    #[must_use]
    pub fn stdout(mut self, r: Redirect) -> Self {
        self.stdout = r;
        self
    }

    /// Sets the child's standard error.
    #[must_use]
    pub fn stderr(mut self, r: Redirect) -> Self {
        self.stderr = r;
        self
    }
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExitStatus {
    /// It called `exit` with this code.
    Exited(i32),
    /// A signal ended it.
    Signaled(Signal),
}

impl ExitStatus {
    /// Whether it exited with code 0.
    pub fn success(&self) -> bool {
        *self == ExitStatus::Exited(0)
    }

    fn from_wait_status(status: libc::c_int) -> io::Result<ExitStatus> {
        if libc::WIFEXITED(status) {
            Ok(ExitStatus::Exited(libc::WEXITSTATUS(status)))
        } else if libc::WIFSIGNALED(status) {
            Signal::from_raw(libc::WTERMSIG(status))
                .map(ExitStatus::Signaled)
                .ok_or_else(|| {
                    io::Error::new(io::ErrorKind::InvalidData, "bad signal in wait status")
                })
        } else {
            Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "unexpected wait status (stopped or continued)",
            ))
        }
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitStatus::Exited(code) => write!(f, "exit code {code}"),
            ExitStatus::Signaled(sig) => write!(f, "killed by {sig}"),
        }
    }
}

/// A child process that this process spawned and will reap.
///
/// On Linux 5.3 and later a pidfd refers to the child, so waiting with a timeout needs no polling
/// loop and signals can never hit a recycled pid. Dropping an unreaped `Process` does not wait for it
/// (the child keeps running and becomes a zombie when it exits); call [`wait`](Self::wait).
#[derive(Debug)]
pub struct Process {
    pid: libc::pid_t,
    pidfd: Option<OwnedFd>,
    status: Option<ExitStatus>,
}

/// Spawns hold it shared, checks that descriptors are gone hold it exclusively.
static FORK_WINDOW: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// Shared: held while this thread spawns a process (see [`without_spawns`]). Spawns on
/// several threads proceed together.
pub fn spawning() -> std::sync::RwLockReadGuard<'static, ()> {
    FORK_WINDOW
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Exclusive: while held, no thread of this process is between the fork and the exec of a
/// child spawned under [`spawning`], so a descriptor closed now is really closed.
///
/// Between a child's fork and its exec the child holds a copy of every descriptor of its
/// parent, close-on-exec ones included, and with them what they keep alive: a listening
/// socket still accepts connections, a `flock` lock is still held. [`Process::spawn`] holds
/// [`spawning`] while it forks; code spawning with `std::process::Command` can hold it too.
/// A thread that closes such a descriptor and relies on it being gone at once (a test that a
/// port now refuses connections, or that a lock can be taken again) holds this around both.
///
/// ```
/// use wrapper_facade::process::without_spawns;
///
/// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
/// let addr = listener.local_addr()?;
/// let _settled = without_spawns();
/// drop(listener);
/// assert!(std::net::TcpStream::connect(addr).is_err());
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn without_spawns() -> std::sync::RwLockWriteGuard<'static, ()> {
    FORK_WINDOW
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Process {
    /// Starts the program described by `opts`.
    ///
    /// Errors: `InvalidInput` for a NUL byte in the program or an argument; `NotFound` (ENOENT) when
    /// the program does not exist. Descriptors handed over with [`Redirect::Fd`] are closed in the
    /// parent either way.
    pub fn spawn(opts: ProcessOptions) -> io::Result<Process> {
        let to_c = |s: &str| {
            CString::new(s).map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "NUL byte in program or argument",
                )
            })
        };
        let program = to_c(&opts.program)?;
        let mut argv_owned = vec![program.clone()];
        for a in &opts.args {
            argv_owned.push(to_c(a)?);
        }
        let mut argv: Vec<*mut libc::c_char> =
            argv_owned.iter().map(|s| s.as_ptr().cast_mut()).collect();
        argv.push(std::ptr::null_mut());

        // The environment is read through std (which locks it against concurrent `set_var`)
        // rather than through the raw `environ` pointer.
        let mut env: Vec<(std::ffi::OsString, std::ffi::OsString)> = std::env::vars_os()
            .filter(|(k, _)| !opts.env.iter().any(|(ek, _)| k.as_os_str() == ek.as_str()))
            .collect();
        env.extend(opts.env.iter().map(|(k, v)| (k.into(), v.into())));
        let mut envp_owned = Vec::with_capacity(env.len());
        for (k, v) in env {
            let mut kv = k.into_encoded_bytes();
            kv.push(b'=');
            kv.extend(v.into_encoded_bytes());
            envp_owned.push(CString::new(kv).map_err(|_| {
                io::Error::new(io::ErrorKind::InvalidInput, "NUL byte in environment")
            })?);
        }
        let mut envp: Vec<*mut libc::c_char> =
            envp_owned.iter().map(|s| s.as_ptr().cast_mut()).collect();
        envp.push(std::ptr::null_mut());

        let actions = FileActions::new()?;
        let dev_null = c"/dev/null";
        for (redirect, target) in [
            (&opts.stdin, libc::STDIN_FILENO),
            (&opts.stdout, libc::STDOUT_FILENO),
            (&opts.stderr, libc::STDERR_FILENO),
        ] {
            match redirect {
                Redirect::Inherit => {}
                Redirect::Null => actions.open(target, dev_null, libc::O_RDWR)?,
                Redirect::Fd(fd) => actions.dup2(fd.as_raw_fd(), target)?,
            }
        }
        let attr = SpawnAttr::new()?;
        attr.reset_signals()?;

        let mut pid: libc::pid_t = 0;
        let _forking = spawning();
        // SAFETY: every pointer is valid for the call: the strings live in `argv_owned` and
        // `envp_owned`, argv and envp are NULL-terminated, the actions and attributes are initialised.
        let rc = unsafe {
            libc::posix_spawnp(
                &mut pid,
                program.as_ptr(),
                &actions.0,
                &attr.0,
                argv.as_ptr(),
                envp.as_ptr(),
            )
        };
        drop(opts); // closes the parent's copies of handed-over descriptors
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        // SAFETY: pidfd_open takes plain integers and returns a new descriptor or -1.
        let pidfd = match cvt(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, libc::O_CLOEXEC) })
        {
            // SAFETY: pidfd_open returned a new descriptor that we alone own.
            Ok(raw) => Some(unsafe { owned(raw as libc::c_int) }),
            Err(_) => None, // an older kernel: fall back to pid-based waiting
        };
        Ok(Process {
            pid,
            pidfd,
            status: None,
        })
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.pid as u32
    }

    /// Reaps the child if it has ended, without blocking.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        self.waitpid(libc::WNOHANG)
    }

    /// Blocks until the child ends, then reaps it. EINTR is retried.
    pub fn wait(&mut self) -> io::Result<ExitStatus> {
        match self.waitpid(0)? {
            Some(s) => Ok(s),
            None => Err(io::Error::other("waitpid returned without a status")),
        }
    }

    /// Waits up to `timeout` for the child to end; `Ok(None)` if it is still running.
    pub fn wait_timeout(&mut self, timeout: Duration) -> io::Result<Option<ExitStatus>> {
        if let Some(s) = self.status {
            return Ok(Some(s));
        }
        let deadline = Instant::now() + timeout;
        match &self.pidfd {
            Some(pidfd) => match sys::poll_until(pidfd.as_fd(), libc::POLLIN, Some(deadline))? {
                Some(_) => self.wait().map(Some),
                None => self.try_wait(),
            },
            None => {
                // No pidfd: poll with a growing pause, never past the deadline.
                let mut pause = Duration::from_millis(1);
                loop {
                    if let Some(s) = self.try_wait()? {
                        return Ok(Some(s));
                    }
                    let now = Instant::now();
                    if now >= deadline {
                        return Ok(None);
                    }
                    std::thread::sleep(pause.min(deadline - now));
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
            }
        }
    }

    /// Sends `signal` to the child; fails with `InvalidInput` once it has been reaped, so a
    /// recycled pid is never hit.
    pub fn signal(&self, signal: Signal) -> io::Result<()> {
        if self.status.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the process was already reaped",
            ));
        }
        match &self.pidfd {
            // SAFETY: pidfd_send_signal with a valid pidfd, a null siginfo and no flags.
            Some(pidfd) => cvt(unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    pidfd.as_raw_fd(),
                    signal.as_raw(),
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                )
            })
            .map(drop),
            // SAFETY: kill takes plain integers; the child is unreaped, so the pid is still ours.
            None => cvt(unsafe { libc::kill(self.pid, signal.as_raw()) }).map(drop),
        }
    }

    /// Sends SIGKILL.
    pub fn kill(&self) -> io::Result<()> {
        self.signal(Signal::KILL)
    }

    fn waitpid(&mut self, flags: libc::c_int) -> io::Result<Option<ExitStatus>> {
        if let Some(s) = self.status {
            return Ok(Some(s));
        }
        let mut status: libc::c_int = 0;
        // SAFETY: `status` is valid for writes.
        let pid = sys::cvt_r(|| unsafe { libc::waitpid(self.pid, &mut status, flags) })?;
        if pid == 0 {
            return Ok(None);
        }
        let s = ExitStatus::from_wait_status(status)?;
        self.status = Some(s);
        Ok(Some(s))
    }
}

/// Owns a `posix_spawn_file_actions_t` and destroys it on drop.
struct FileActions(libc::posix_spawn_file_actions_t);

impl FileActions {
    fn new() -> io::Result<FileActions> {
        let mut raw = MaybeUninit::<libc::posix_spawn_file_actions_t>::uninit();
        // SAFETY: init writes the whole structure when it returns 0.
        check(unsafe { libc::posix_spawn_file_actions_init(raw.as_mut_ptr()) })?;
        // SAFETY: initialised just above.
        Ok(FileActions(unsafe { raw.assume_init() }))
    }

    fn open(&self, fd: libc::c_int, path: &std::ffi::CStr, flags: libc::c_int) -> io::Result<()> {
        // SAFETY: the structure is initialised; glibc copies `path`. The cast to *mut is what the
        // C prototype wants; the actions are only mutated through this pointer by libc.
        check(unsafe {
            libc::posix_spawn_file_actions_addopen(
                (&raw const self.0).cast_mut(),
                fd,
                path.as_ptr(),
                flags,
                0,
            )
        })
    }

    fn dup2(&self, from: libc::c_int, to: libc::c_int) -> io::Result<()> {
        // SAFETY: the structure is initialised; see `open` about the pointer cast.
        check(unsafe {
            libc::posix_spawn_file_actions_adddup2((&raw const self.0).cast_mut(), from, to)
        })
    }
}

impl Drop for FileActions {
    fn drop(&mut self) {
        // SAFETY: initialised in `new` and destroyed exactly once.
        unsafe { libc::posix_spawn_file_actions_destroy(&mut self.0) };
    }
}

/// Owns a `posix_spawnattr_t` and destroys it on drop.
struct SpawnAttr(libc::posix_spawnattr_t);

impl SpawnAttr {
    fn new() -> io::Result<SpawnAttr> {
        let mut raw = MaybeUninit::<libc::posix_spawnattr_t>::uninit();
        // SAFETY: init writes the whole structure when it returns 0.
        check(unsafe { libc::posix_spawnattr_init(raw.as_mut_ptr()) })?;
        // SAFETY: initialised just above.
        Ok(SpawnAttr(unsafe { raw.assume_init() }))
    }

    /// Child starts with an empty signal mask and every catchable signal at its default action.
    fn reset_signals(&self) -> io::Result<()> {
        let empty = SignalSet::default().to_sigset();
        let all: SignalSet = (1..=64)
            .filter_map(Signal::from_raw)
            .filter(|s| *s != Signal::KILL && s.as_raw() != libc::SIGSTOP)
            .collect();
        let all = all.to_sigset();
        let attr = (&raw const self.0).cast_mut();
        // SAFETY: `attr` is initialised; the sigsets are initialised and copied by libc.
        unsafe {
            check(libc::posix_spawnattr_setsigmask(attr, &empty))?;
            check(libc::posix_spawnattr_setsigdefault(attr, &all))?;
            check(libc::posix_spawnattr_setflags(
                attr,
                (libc::POSIX_SPAWN_SETSIGMASK | libc::POSIX_SPAWN_SETSIGDEF) as libc::c_short,
            ))
        }
    }
}

impl Drop for SpawnAttr {
    fn drop(&mut self) {
        // SAFETY: initialised in `new` and destroyed exactly once.
        unsafe { libc::posix_spawnattr_destroy(&mut self.0) };
    }
}

/// posix_spawn* functions return an error number rather than setting errno.
fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(rc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::Pipe;
    use std::io::Read;

    #[test]
    fn exit_code_and_output_through_a_pipe() {
        let (mut reader, writer) = Pipe::new().unwrap().into_parts();
        let mut child = Process::spawn(
            ProcessOptions::new("sh")
                .args(["-c", "echo $WF_GREETING; exit 7"])
                .env("WF_GREETING", "hi")
                .stdout(Redirect::Fd(writer.into())),
        )
        .unwrap();
        let mut out = String::new();
        reader.read_to_string(&mut out).unwrap(); // EOF: the parent's write end was closed
        assert_eq!(out, "hi\n");
        assert_eq!(child.wait().unwrap(), ExitStatus::Exited(7));
        assert_eq!(child.try_wait().unwrap(), Some(ExitStatus::Exited(7)));
    }

    #[test]
    fn wait_timeout_then_kill() {
        let mut child =
            Process::spawn(ProcessOptions::new("sleep").arg("30").stdin(Redirect::Null)).unwrap();
        assert_eq!(child.wait_timeout(Duration::from_millis(20)).unwrap(), None);
        child.signal(Signal::TERM).unwrap();
        assert_eq!(
            child.wait_timeout(Duration::from_secs(30)).unwrap(),
            Some(ExitStatus::Signaled(Signal::TERM))
        );
        assert_eq!(
            child.kill().unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
    }

    #[test]
    fn missing_program_is_not_found() {
        let err = Process::spawn(ProcessOptions::new("/no/such/program")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        let err = Process::spawn(ProcessOptions::new("a\0b")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}
