//! Signals as data: a [`SignalSet`] builder, a [`SignalFd`] that turns blocked signals into readable events, and thread-directed delivery.
//!
//! A C signal handler runs at an arbitrary point of an arbitrary thread and may call almost nothing.
//! `signalfd(2)` removes that hazard: the signals of a set are blocked, and instead of interrupting
//! anyone they queue on a descriptor that an event loop reads like a socket, on its own thread.
//!
//! # Blocking the mask: which threads
//! `pthread_sigmask` changes the mask of the *calling thread only*, and threads inherit the mask of
//! the thread that spawned them. A process-directed signal (`kill(pid, ...)`) is delivered to any
//! thread that does not block it, so for a `SignalFd` to receive every SIGTERM, every thread must
//! block SIGTERM: create the `SignalFd` (or call [`SignalSet::block_current_thread`]) on the main
//! thread before spawning others.
//!
//! # The mask is not restored on drop
//! Dropping a [`SignalFd`] closes the descriptor but leaves the signals blocked.
//! Restoring the mask on drop would act on whatever thread happens to drop the value, and would
//! let a pending SIGTERM take its default action (terminate) at that moment.
//! Call [`SignalSet::unblock_current_thread`] explicitly when the thread should see the signals again.

use std::fmt;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::sys::{cvt, owned};

/// The highest signal number Linux knows (`_NSIG - 1`).
const MAX_SIGNAL: i32 = 64;

/// A signal number that is known to be valid (1..=64 on Linux).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Signal(i32);

impl Signal {
    /// Hangup: by convention, "reload your configuration".
    pub const HUP: Signal = Signal(libc::SIGHUP);
    /// Interrupt from the keyboard (Ctrl-C).
    pub const INT: Signal = Signal(libc::SIGINT);
    /// Quit from the keyboard.
    pub const QUIT: Signal = Signal(libc::SIGQUIT);
    /// Kill: cannot be caught, blocked or ignored.
    pub const KILL: Signal = Signal(libc::SIGKILL);
    /// User-defined signal 1.
    pub const USR1: Signal = Signal(libc::SIGUSR1);
    /// User-defined signal 2.
    pub const USR2: Signal = Signal(libc::SIGUSR2);
    /// Write to a pipe or socket with no reader.
    pub const PIPE: Signal = Signal(libc::SIGPIPE);
    /// File size limit exceeded (`RLIMIT_FSIZE`); ignored, a write past the limit fails with
    /// `EFBIG` instead of killing the process.
    pub const XFSZ: Signal = Signal(libc::SIGXFSZ);
    /// Timer expiry from `alarm(2)`.
    pub const ALRM: Signal = Signal(libc::SIGALRM);
    /// Termination request: by convention, "shut down gracefully".
    pub const TERM: Signal = Signal(libc::SIGTERM);
    /// A child process stopped or terminated.
    pub const CHLD: Signal = Signal(libc::SIGCHLD);
    /// Window size change.
    pub const WINCH: Signal = Signal(libc::SIGWINCH);

    /// Wraps a raw signal number, or `None` if the number is not a signal.
    ///
    /// ```
    /// use wrapper_facade::signal::Signal;
    /// assert_eq!(Signal::from_raw(libc::SIGTERM), Some(Signal::TERM));
    /// assert_eq!(Signal::from_raw(0), None);
    /// ```
    pub fn from_raw(signo: i32) -> Option<Signal> {
        (1..=MAX_SIGNAL).contains(&signo).then_some(Signal(signo))
    }

    /// The raw signal number.
    pub fn as_raw(self) -> i32 {
        self.0
    }

    /// The conventional name, such as `"SIGTERM"`, or `"SIG?"` for numbers without a fixed name.
    pub fn name(self) -> &'static str {
        match self.0 {
            libc::SIGHUP => "SIGHUP",
            libc::SIGINT => "SIGINT",
            libc::SIGQUIT => "SIGQUIT",
            libc::SIGKILL => "SIGKILL",
            libc::SIGUSR1 => "SIGUSR1",
            libc::SIGUSR2 => "SIGUSR2",
            libc::SIGPIPE => "SIGPIPE",
            libc::SIGXFSZ => "SIGXFSZ",
            libc::SIGALRM => "SIGALRM",
            libc::SIGTERM => "SIGTERM",
            libc::SIGCHLD => "SIGCHLD",
            libc::SIGWINCH => "SIGWINCH",
            libc::SIGSEGV => "SIGSEGV",
            libc::SIGABRT => "SIGABRT",
            _ => "SIG?",
        }
    }
}

impl From<Signal> for i32 {
    fn from(signal: Signal) -> i32 {
        signal.as_raw()
    }
}

impl fmt::Debug for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.name(), self.0)
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            "SIG?" => write!(f, "signal {}", self.0),
            name => f.write_str(name),
        }
    }
}

/// A set of signals, built fluently and converted to a C `sigset_t` only at the system-call boundary.
///
/// ```
/// use wrapper_facade::signal::{Signal, SignalSet};
/// let set = SignalSet::default().with(Signal::HUP).with(Signal::TERM);
/// assert!(set.contains(Signal::TERM));
/// assert_eq!(set.iter().collect::<Vec<_>>(), [Signal::HUP, Signal::TERM]);
/// ```
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct SignalSet {
    /// Bit `n - 1` stands for signal `n`.
    bits: u64,
}

impl SignalSet {
    /// Returns the set with `signal` added (builder style).
    #[must_use]
    pub fn with(mut self, signal: Signal) -> Self {
        self.insert(signal);
        self
    }

    /// Adds a signal.
    pub fn insert(&mut self, signal: Signal) {
        self.bits |= 1 << (signal.0 - 1);
    }

    /// Removes a signal.
    pub fn remove(&mut self, signal: Signal) {
        self.bits &= !(1 << (signal.0 - 1));
    }

    /// Whether the set holds `signal`.
    pub fn contains(&self, signal: Signal) -> bool {
        self.bits & (1 << (signal.0 - 1)) != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.bits == 0
    }

    /// The signals in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = Signal> + '_ {
        (1..=MAX_SIGNAL).map(Signal).filter(|s| self.contains(*s))
    }

    /// Blocks these signals in the calling thread; returns the mask that was in force before.
    pub fn block_current_thread(&self) -> io::Result<SignalSet> {
        self.sigmask(libc::SIG_BLOCK)
    }

    /// Unblocks these signals in the calling thread; returns the mask that was in force before.
    ///
    /// Signals that were pending are delivered (to their handlers or default actions) right away.
    pub fn unblock_current_thread(&self) -> io::Result<SignalSet> {
        self.sigmask(libc::SIG_UNBLOCK)
    }

    /// The signals blocked in the calling thread.
    pub fn blocked_in_current_thread() -> io::Result<SignalSet> {
        SignalSet::default().sigmask(libc::SIG_BLOCK)
    }

    fn sigmask(&self, how: libc::c_int) -> io::Result<SignalSet> {
        let set = self.to_sigset();
        let mut old = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: `set` is an initialised sigset_t and `old` is valid for writes;
        // pthread_sigmask fills `old` whenever it returns 0.
        let rc = unsafe { libc::pthread_sigmask(how, &set, old.as_mut_ptr()) };
        if rc != 0 {
            // pthread functions return the error number instead of setting errno.
            return Err(io::Error::from_raw_os_error(rc));
        }
        // SAFETY: pthread_sigmask returned 0, so `old` was written.
        let old = unsafe { old.assume_init() };
        Ok(SignalSet::from_sigset(&old))
    }

    pub(crate) fn to_sigset(self) -> libc::sigset_t {
        let mut set = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: sigemptyset initialises the whole sigset_t it is given.
        unsafe { libc::sigemptyset(set.as_mut_ptr()) };
        // SAFETY: initialised just above.
        let mut set = unsafe { set.assume_init() };
        for s in self.iter() {
            // SAFETY: `set` is initialised and `s` is in the valid range, so this cannot fail.
            unsafe { libc::sigaddset(&mut set, s.0) };
        }
        set
    }

    fn from_sigset(set: &libc::sigset_t) -> SignalSet {
        let mut out = SignalSet::default();
        for n in 1..=MAX_SIGNAL {
            // SAFETY: `set` is an initialised sigset_t and `n` is a valid signal number.
            if unsafe { libc::sigismember(set, n) } == 1 {
                out.insert(Signal(n));
            }
        }
        out
    }
}

impl fmt::Debug for SignalSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl FromIterator<Signal> for SignalSet {
    fn from_iter<I: IntoIterator<Item = Signal>>(iter: I) -> Self {
        let mut set = SignalSet::default();
        iter.into_iter().for_each(|s| set.insert(s));
        set
    }
}

/// One signal read from a [`SignalFd`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SigInfo {
    signal: Signal,
    sender_pid: u32,
    sender_uid: u32,
    code: i32,
    status: i32,
}

impl SigInfo {
    /// The signal that arrived.
    pub fn signal(&self) -> Signal {
        self.signal
    }

    /// The process id of the sender (`si_pid`); for a kernel-generated signal this may be 0.
    pub fn sender_pid(&self) -> u32 {
        self.sender_pid
    }

    /// The real user id of the sender (`si_uid`).
    pub fn sender_uid(&self) -> u32 {
        self.sender_uid
    }

    /// The `si_code`: `SI_USER` for `kill`, `SI_TKILL` for `tgkill`, `CLD_*` for SIGCHLD, and so on.
    pub fn code(&self) -> i32 {
        self.code
    }

    /// For SIGCHLD, the child's exit status or signal (`si_status`).
    pub fn status(&self) -> i32 {
        self.status
    }
}

/// A descriptor on which the signals of a [`SignalSet`] arrive as readable events.
///
/// Creating it blocks the set in the calling thread (see the [module docs](self) about threads and
/// about the mask staying blocked after drop), then opens a nonblocking, close-on-exec `signalfd`.
/// It implements [`AsFd`](std::os::fd::AsFd) and [`mio::event::Source`], so a reactor registers it for readability and
/// calls [`read`](Self::read) until it returns `Ok(None)`.
///
/// ```
/// use wrapper_facade::signal::{Signal, SignalFd, SignalSet, ThreadTarget};
/// // Run on a thread of its own: the mask change stays there.
/// std::thread::spawn(|| {
///     let fd = SignalFd::new(&SignalSet::default().with(Signal::USR2)).unwrap();
///     assert_eq!(fd.read().unwrap(), None); // nothing pending yet
///     ThreadTarget::current().send(Signal::USR2).unwrap(); // thread-directed: stays pending here
///     let info = fd.read().unwrap().expect("the signal is queued on the fd");
///     assert_eq!(info.signal(), Signal::USR2);
///     assert_eq!(info.sender_pid(), std::process::id());
/// })
/// .join()
/// .unwrap();
/// ```
#[derive(Debug)]
pub struct SignalFd {
    fd: OwnedFd,
    set: SignalSet,
}

impl SignalFd {
    /// Blocks `set` in the calling thread and opens a signal descriptor for it.
    ///
    /// SIGKILL and SIGSTOP cannot be blocked or read this way; the kernel silently ignores them.
    pub fn new(set: &SignalSet) -> io::Result<SignalFd> {
        seq!(THREAD => "SignalFd", "new(signal set)");
        seq!("SignalFd" => KERNEL, "pthread_sigmask(SIG_BLOCK, set) for this thread");
        set.block_current_thread()?;
        seq!("SignalFd" => KERNEL, "signalfd(-1, mask, SFD_NONBLOCK | SFD_CLOEXEC)");
        let mask = set.to_sigset();
        // SAFETY: `mask` is an initialised sigset_t; -1 asks for a new descriptor.
        let raw =
            cvt(unsafe { libc::signalfd(-1, &mask, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) })?;
        Ok(SignalFd {
            // SAFETY: signalfd returned a new descriptor that we alone own.
            fd: unsafe { owned(raw) },
            set: *set,
        })
    }

    /// The signals this descriptor reports.
    pub fn signals(&self) -> &SignalSet {
        &self.set
    }

    /// Reads one pending signal; `Ok(None)` when none is pending (the descriptor is nonblocking).
    ///
    /// Only signals pending for the process or for the *calling* thread can be read.
    pub fn read(&self) -> io::Result<Option<SigInfo>> {
        seq!(THREAD => "SignalFd", "read()");
        let read = self.read_untraced();
        match &read {
            Ok(Some(info)) => {
                seq!(reply "SignalFd" => THREAD, "Some(SigInfo {{ {}, sender pid }})", info.signal)
            }
            Ok(None) => seq!(reply "SignalFd" => THREAD, "None (EAGAIN: nothing pending)"),
            Err(e) => seq!(fail "SignalFd" => THREAD, "Err({:?})", e.kind()),
        }
        read
    }

    fn read_untraced(&self) -> io::Result<Option<SigInfo>> {
        let mut info = MaybeUninit::<libc::signalfd_siginfo>::zeroed();
        let size = std::mem::size_of::<libc::signalfd_siginfo>();
        let res = crate::sys::cvt_r(|| {
            // SAFETY: `info` is valid for `size` bytes of writes for the whole call.
            unsafe { libc::read(self.fd.as_raw_fd(), info.as_mut_ptr().cast(), size) }
        });
        match res {
            Ok(n) if n as usize == size => {
                // SAFETY: the kernel wrote a whole signalfd_siginfo (and it was zeroed before).
                let info = unsafe { info.assume_init() };
                let signal = Signal::from_raw(info.ssi_signo as i32).ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        "signalfd returned an invalid signal number",
                    )
                })?;
                Ok(Some(SigInfo {
                    signal,
                    sender_pid: info.ssi_pid,
                    sender_uid: info.ssi_uid,
                    code: info.ssi_code,
                    status: info.ssi_status,
                }))
            }
            Ok(_) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "short read from signalfd",
            )),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }
}

crate::impl_fd_traits!(SignalFd, fd);

/// A thread that can be sent a signal (`tgkill(2)`), identified by its kernel thread id.
///
/// Thread-directed signals are what a test needs to interrupt one particular blocking call, and they
/// stay pending in that thread if it blocks them, which is how they reach that thread's [`SignalFd`].
/// We use `tgkill` with a tid rather than `pthread_kill` with a `pthread_t`: after the thread exits, a
/// stale tid yields `ESRCH`, whereas a stale `pthread_t` is undefined behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadTarget {
    pid: libc::pid_t,
    tid: libc::pid_t,
}

impl ThreadTarget {
    /// The calling thread.
    pub fn current() -> ThreadTarget {
        // SAFETY: getpid and gettid cannot fail and touch no memory.
        let (pid, tid) = unsafe {
            (
                libc::getpid(),
                libc::syscall(libc::SYS_gettid) as libc::pid_t,
            )
        };
        ThreadTarget { pid, tid }
    }

    /// The kernel thread id (as shown under `/proc/self/task`).
    pub fn tid(&self) -> i32 {
        self.tid
    }

    /// Sends `signal` to this thread only.
    pub fn send(&self, signal: Signal) -> io::Result<()> {
        // SAFETY: tgkill takes plain integers; a stale tid only yields ESRCH.
        cvt(unsafe {
            libc::syscall(
                libc::SYS_tgkill,
                self.pid as libc::c_long,
                self.tid as libc::c_long,
                signal.0 as libc::c_long,
            )
        })?;
        Ok(())
    }
}

/// Sends `signal` to this whole process (`kill(getpid(), signal)`), as `kill -SIG PID` from a
/// shell would: the kernel delivers it to one thread that does not block it, or, when every
/// thread blocks it, leaves it pending for the process, where a [`SignalFd`] reads it.
///
/// Every thread must block the signal for it to reach a signalfd, so block it before the
/// process starts threads (they inherit the mask). Not run as a doctest: the test harness's own
/// threads do not block it.
///
/// ```no_run
/// use wrapper_facade::signal::{self, Signal, SignalFd, SignalSet};
///
/// // First thing in `main`, before any thread exists.
/// let fd = SignalFd::new(&SignalSet::default().with(Signal::USR2))?;
/// signal::send_to_own_process(Signal::USR2)?;
/// let info = fd.read()?.expect("pending for the process");
/// assert_eq!(info.signal(), Signal::USR2);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn send_to_own_process(signal: Signal) -> io::Result<()> {
    // SAFETY: getpid cannot fail; kill takes plain integers and touches no memory.
    cvt(unsafe { libc::kill(libc::getpid(), signal.0) })?;
    Ok(())
}

/// Whether a handler installed by [`install_counting_handler`] lets interrupted system calls restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Restart {
    /// `SA_RESTART`: the kernel restarts most interrupted calls itself.
    Enabled,
    /// No `SA_RESTART`: blocking calls fail with EINTR, which this facade retries where POSIX allows.
    Disabled,
}

static DELIVERIES: [AtomicU64; MAX_SIGNAL as usize + 1] =
    [const { AtomicU64::new(0) }; MAX_SIGNAL as usize + 1];

extern "C" fn count_delivery(signo: libc::c_int) {
    // Only an atomic increment: async-signal-safe, no allocation, errno untouched.
    if let Some(counter) = usize::try_from(signo).ok().and_then(|i| DELIVERIES.get(i)) {
        counter.fetch_add(1, Ordering::SeqCst);
    }
}

/// Installs, process-wide, a handler for `signal` that only counts deliveries (see [`delivery_count`]).
///
/// It is the async-signal-safe minimum: useful to make a signal interrupt a blocking call without
/// killing the process, and to observe that it was delivered.
pub fn install_counting_handler(signal: Signal, restart: Restart) -> io::Result<()> {
    let flags = match restart {
        Restart::Enabled => libc::SA_RESTART,
        Restart::Disabled => 0,
    };
    let handler: extern "C" fn(libc::c_int) = count_delivery;
    set_action(signal, handler as libc::sighandler_t, flags)
}

/// How many times the counting handler ran for `signal` in this process.
pub fn delivery_count(signal: Signal) -> u64 {
    DELIVERIES[signal.0 as usize].load(Ordering::SeqCst)
}

/// Ignores `signal` process-wide (`SIG_IGN`); typically SIGPIPE.
pub fn ignore(signal: Signal) -> io::Result<()> {
    set_action(signal, libc::SIG_IGN, 0)
}

/// Restores the default action of `signal` process-wide (`SIG_DFL`).
pub fn set_default(signal: Signal) -> io::Result<()> {
    set_action(signal, libc::SIG_DFL, 0)
}

fn set_action(signal: Signal, handler: libc::sighandler_t, flags: libc::c_int) -> io::Result<()> {
    // SAFETY: sigaction is plain old data; all-zero is a valid starting value.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = handler;
    action.sa_flags = flags;
    // SAFETY: `sa_mask` is part of `action`, valid for writes.
    unsafe { libc::sigemptyset(&mut action.sa_mask) };
    // SAFETY: `action` is fully initialised; the handler (if any) is async-signal-safe;
    // a null old-action pointer is allowed.
    cvt(unsafe { libc::sigaction(signal.0, &action, std::ptr::null_mut()) })?;
    Ok(())
}

/// The names in the sequence diagrams drawn from runs.
const THREAD: &str = "@thread";
const KERNEL: &str = "Kernel (libc)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_builder_and_sigset_round_trip() {
        let set: SignalSet = [Signal::HUP, Signal::TERM, Signal::from_raw(64).unwrap()]
            .into_iter()
            .collect();
        assert_eq!(SignalSet::from_sigset(&set.to_sigset()), set);
        let mut other = set;
        other.remove(Signal::TERM);
        assert!(!other.contains(Signal::TERM));
        assert!(other.contains(Signal::HUP));
        assert_eq!(format!("{set:?}"), "{SIGHUP(1), SIGTERM(15), SIG?(64)}");
    }

    #[test]
    fn signal_numbers_are_validated() {
        assert_eq!(Signal::from_raw(65), None);
        assert_eq!(Signal::from_raw(-1), None);
        assert_eq!(Signal::TERM.to_string(), "SIGTERM");
        assert_eq!(Signal::from_raw(40).unwrap().to_string(), "signal 40");
    }

    #[test]
    fn block_and_unblock_in_a_dedicated_thread() {
        std::thread::spawn(|| {
            let set = SignalSet::default().with(Signal::WINCH);
            set.block_current_thread().unwrap();
            assert!(
                SignalSet::blocked_in_current_thread()
                    .unwrap()
                    .contains(Signal::WINCH)
            );
            set.unblock_current_thread().unwrap();
            assert!(
                !SignalSet::blocked_in_current_thread()
                    .unwrap()
                    .contains(Signal::WINCH)
            );
        })
        .join()
        .unwrap();
    }
}
