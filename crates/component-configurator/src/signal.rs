//! Reconfiguration triggers on the reactor: SIGHUP (read from a signal fd, so no work runs in
//! a signal handler) and commands on a local admin socket.

use pattern_core::Token;
use reactor::{Context, DispatchError, Disposition, EventHandler, Interest, Reactor};

use crate::configurator::{Configurator, Report};
use crate::error::Result;

/// Called after each reconfiguration with the configurator and the outcome.
pub type ReconfigureObserver = Box<dyn FnMut(&Configurator, &Result<Report>) + Send>;

/// An event handler that owns the [`Configurator`] and calls
/// [`reconfigure`](Configurator::reconfigure) when the reactor dispatches SIGHUP to it.
///
/// The reactor reads the signal from a signal fd on its loop, so the reconfiguration runs as
/// an ordinary upcall; components serving on their own threads go on meanwhile.
pub struct ReconfigureOnHangup {
    configurator: Configurator,
    observer: ReconfigureObserver,
}

impl std::fmt::Debug for ReconfigureOnHangup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReconfigureOnHangup")
            .field("configurator", &self.configurator)
            .finish_non_exhaustive()
    }
}

impl ReconfigureOnHangup {
    /// Wraps `configurator`; `observer` hears of every reconfiguration.
    pub fn new(
        configurator: Configurator,
        observer: impl FnMut(&Configurator, &Result<Report>) + Send + 'static,
    ) -> Self {
        ReconfigureOnHangup {
            configurator,
            observer: Box::new(observer),
        }
    }

    /// Registers the handler with `reactor` and asks it to deliver SIGHUP.
    ///
    /// The reactor blocks SIGHUP in the calling thread; block it in every thread (before
    /// starting any) so the kernel cannot deliver it elsewhere with its default action.
    pub fn watch(self, reactor: &mut Reactor) -> std::result::Result<Token, DispatchError> {
        let token = reactor.register(Box::new(self), Interest::NONE)?;
        reactor.watch_signal(token, libc_sighup())?;
        Ok(token)
    }
}

fn libc_sighup() -> i32 {
    wrapper_facade::signal::Signal::HUP.as_raw()
}

impl EventHandler for ReconfigureOnHangup {
    fn handle_signal(&mut self, ctx: &mut dyn Context, signal: i32) -> Disposition {
        if signal == libc_sighup() {
            // Named as the dispatcher names this registration in the diagrams drawn from runs.
            let me = ctx.current().map_or_else(
                || "ReconfigureOnHangup".to_owned(),
                |t| format!("handler {t}"),
            );
            let outcome = self.configurator.reconfigure_for(&me);
            (self.observer)(&self.configurator, &outcome);
        }
        Disposition::Continue
    }

    fn handle_notify(
        &mut self,
        ctx: &mut dyn Context,
        message: pattern_core::Message,
    ) -> Disposition {
        if let Ok(request) = message.downcast::<AdminRequest>() {
            let reply = if !request.allow_dynamic && loads_code(&request.command) {
                "refused: `dynamic` directives are not accepted on the admin socket (AdminSocket::allow_dynamic)\nerror\n".to_owned()
            } else {
                self.admin(&request.command)
            };
            // A connection that went away meanwhile is not an error for the configurator.
            let _ = ctx.notify(request.reply_to, Box::new(AdminReply(reply)));
        }
        Disposition::Continue
    }

    fn handle_close(&mut self, _ctx: &mut dyn Context, _reason: reactor::CloseReason) {
        self.configurator.close();
    }
}

/// A command for the configurator, sent by an [`AdminSocket`] connection.
#[derive(Debug)]
struct AdminRequest {
    command: String,
    reply_to: Token,
    /// Whether the socket accepts `dynamic` directives.
    allow_dynamic: bool,
}

/// Whether an admin command would load a library: any `dynamic` directive in it (an
/// unparsable command is passed on, to be refused with its parse error).
fn loads_code(command: &str) -> bool {
    crate::svc_conf::parse("<admin>", command, &|_| None).is_ok_and(|ds| {
        ds.iter()
            .any(|d| matches!(d.directive, crate::svc_conf::Directive::Dynamic { .. }))
    })
}

/// The configurator's answer to an [`AdminRequest`]: lines ending with `ok` or `error`.
#[derive(Debug)]
struct AdminReply(String);

impl ReconfigureOnHangup {
    fn admin(&mut self, command: &str) -> String {
        let mut out = String::new();
        let report = match command.trim() {
            "list" => Ok(Report::default()),
            "reconfigure" => self.configurator.reconfigure(),
            directive => self.configurator.process_directive(directive),
        };
        let ok = match &report {
            Ok(report) => {
                for c in &report.changes {
                    out.push_str(&format!("{c}\n"));
                }
                for e in &report.errors {
                    out.push_str(&format!("error: {e}\n"));
                }
                report.errors.is_empty()
            }
            Err(e) => {
                out.push_str(&format!("refused: {e}\n"));
                false
            }
        };
        if command.trim() == "list" {
            for l in self.configurator.repository().list() {
                out.push_str(&format!("{} {:?} {}\n", l.name, l.state, l.info));
            }
        }
        out.push_str(if ok { "ok\n" } else { "error\n" });
        if command.trim() == "reconfigure" {
            let outcome = report;
            (self.observer)(&self.configurator, &outcome);
        }
        out
    }
}

/// A local admin socket (a Unix stream socket) through which an operator reconfigures the
/// process: each request line is `reconfigure`, `list`, or a directive (`suspend Echo`);
/// each answer is the changes, one per line, then `ok` or `error`.
///
/// Connections forward commands to the [`ReconfigureOnHangup`] handler as reactor
/// notifications, so commands run on the loop, one at a time, like SIGHUP.
///
/// Guarded, since whoever reconfigures the process can make it run code: the socket file is
/// created with mode 0600 (set before it appears at its path, whatever the umask); a
/// connection from a user other than the process's own or root (`SO_PEERCRED`) is closed
/// unanswered and logged; and `dynamic` directives are refused unless
/// [`allow_dynamic`](Self::allow_dynamic) was called.
#[derive(Debug)]
pub struct AdminSocket {
    listener: mio::net::UnixListener,
    configurator: Option<Token>,
    path: std::path::PathBuf,
    allow_dynamic: bool,
}

impl AdminSocket {
    /// Binds `path` (removing a stale socket file first) with mode 0600; connections queue
    /// until [`open`](Self::open).
    ///
    /// The socket is bound in a private directory (mode 0700) beside `path`, made 0600 there,
    /// and renamed into place, so it is never reachable with the umask's mode.
    pub fn bind(path: impl Into<std::path::PathBuf>) -> std::io::Result<Self> {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        let path = path.into();
        if std::fs::symlink_metadata(&path)
            .is_ok_and(|m| std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()))
        {
            std::fs::remove_file(&path)?;
        }
        let name = path.file_name().ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the admin socket path has no file name",
            )
        })?;
        let mut private = path.clone().into_os_string();
        private.push(format!(".{}.tmp", std::process::id()));
        let private = std::path::PathBuf::from(private);
        let _ = std::fs::remove_dir_all(&private);
        std::fs::DirBuilder::new().mode(0o700).create(&private)?;
        let bound = (|| -> std::io::Result<mio::net::UnixListener> {
            let staged = private.join(name);
            let listener = mio::net::UnixListener::bind(&staged)?;
            std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o600))?;
            std::fs::rename(&staged, &path)?;
            Ok(listener)
        })();
        let _ = std::fs::remove_dir_all(&private);
        Ok(AdminSocket {
            listener: bound?,
            configurator: None,
            path,
            allow_dynamic: false,
        })
    }

    /// Accepts `dynamic` directives on this socket (refused by default: they load code).
    pub fn allow_dynamic(mut self, allow: bool) -> Self {
        self.allow_dynamic = allow;
        self
    }

    /// Registers the socket with `reactor`, forwarding commands to the handler at
    /// `configurator` (the token [`ReconfigureOnHangup::watch`] returned).
    pub fn open(
        mut self,
        reactor: &mut Reactor,
        configurator: Token,
    ) -> std::result::Result<Token, DispatchError> {
        self.configurator = Some(configurator);
        reactor.register(Box::new(self), Interest::ACCEPT)
    }
}

impl Drop for AdminSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl EventHandler for AdminSocket {
    fn handle(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        Some(std::os::fd::AsFd::as_fd(&self.listener))
    }

    fn handle_input(&mut self, ctx: &mut dyn Context) -> Disposition {
        let Some(configurator) = self.configurator else {
            return Disposition::Close;
        };
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    if let Err(why) = peer_allowed(&stream) {
                        tracing::warn!(socket = %self.path.display(), "admin connection refused: {why}");
                        continue;
                    }
                    let connection = AdminConnection {
                        stream,
                        configurator,
                        allow_dynamic: self.allow_dynamic,
                        input: Vec::new(),
                        output: Vec::new(),
                        waiting: false,
                        eof: false,
                    };
                    if let Err(e) = ctx.register(Box::new(connection), Interest::READ) {
                        tracing::warn!(error = %e, "admin connection refused");
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    return Disposition::Continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "admin accept failed");
                    return Disposition::Continue;
                }
            }
        }
    }
}

/// Longest admin command accepted.
const MAX_COMMAND: usize = 64 * 1024;

/// Whether the peer of `stream` is this process's user or root (`SO_PEERCRED`).
fn peer_allowed(stream: &mio::net::UnixStream) -> std::result::Result<(), String> {
    use std::os::fd::AsRawFd;
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` are valid for writes of a `ucred`, the size passed in `len`;
    // the descriptor is the open socket `stream` borrows.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(format!(
            "cannot read its credentials: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if cred.uid == me || cred.uid == 0 {
        Ok(())
    } else {
        Err(format!(
            "peer pid {} runs as uid {}, neither this process's user (uid {me}) nor root",
            cred.pid, cred.uid
        ))
    }
}

struct AdminConnection {
    stream: mio::net::UnixStream,
    configurator: Token,
    allow_dynamic: bool,
    input: Vec<u8>,
    output: Vec<u8>,
    waiting: bool,
    eof: bool,
}

impl AdminConnection {
    /// Sends the next complete command, if none is in flight.
    fn next_command(&mut self, ctx: &mut dyn Context) -> Disposition {
        if self.waiting {
            return Disposition::Continue;
        }
        let Some(end) = self.input.iter().position(|&b| b == b'\n') else {
            if self.input.len() > MAX_COMMAND {
                return Disposition::Close;
            }
            return self.finish_if_done();
        };
        let line: Vec<u8> = self.input.drain(..=end).collect();
        let command = String::from_utf8_lossy(&line[..end]).into_owned();
        let Some(me) = ctx.current() else {
            return Disposition::Close;
        };
        let request = AdminRequest {
            command,
            reply_to: me,
            allow_dynamic: self.allow_dynamic,
        };
        match ctx.notify(self.configurator, Box::new(request)) {
            Ok(()) => {
                self.waiting = true;
                Disposition::Continue
            }
            Err(_) => Disposition::Close,
        }
    }

    fn flush(&mut self, ctx: &mut dyn Context) -> Disposition {
        use std::io::Write;
        while !self.output.is_empty() {
            match self.stream.write(&self.output) {
                Ok(n) => {
                    self.output.drain(..n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if let Some(t) = ctx.current() {
                        let _ = ctx.set_interest(t, Interest::READ.add(Interest::WRITE));
                    }
                    return Disposition::Continue;
                }
                Err(_) => return Disposition::Close,
            }
        }
        if let Some(t) = ctx.current() {
            let _ = ctx.set_interest(t, Interest::READ);
        }
        Disposition::Continue
    }

    fn finish_if_done(&self) -> Disposition {
        if self.eof && !self.waiting && self.output.is_empty() {
            Disposition::Close
        } else {
            Disposition::Continue
        }
    }
}

impl EventHandler for AdminConnection {
    fn handle(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        Some(std::os::fd::AsFd::as_fd(&self.stream))
    }

    fn handle_input(&mut self, ctx: &mut dyn Context) -> Disposition {
        use std::io::Read;
        let mut buf = [0u8; 4096];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => self.input.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return Disposition::Close,
            }
        }
        if self.eof
            && let Some(t) = ctx.current()
        {
            // Stop read upcalls at end of stream; replies still go out.
            let _ = ctx.set_interest(t, Interest::NONE);
        }
        self.next_command(ctx)
    }

    fn handle_output(&mut self, ctx: &mut dyn Context) -> Disposition {
        match self.flush(ctx) {
            Disposition::Continue => self.finish_if_done(),
            other => other,
        }
    }

    fn handle_notify(
        &mut self,
        ctx: &mut dyn Context,
        message: pattern_core::Message,
    ) -> Disposition {
        let Ok(reply) = message.downcast::<AdminReply>() else {
            return Disposition::Continue;
        };
        self.waiting = false;
        self.output.extend_from_slice(reply.0.as_bytes());
        if self.flush(ctx) == Disposition::Close {
            return Disposition::Close;
        }
        match self.next_command(ctx) {
            Disposition::Continue => self.finish_if_done(),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::loads_code;

    #[test]
    fn only_dynamic_directives_load_code() {
        assert!(loads_code(
            "dynamic Echo Service_Object * cc_echo:_make_echo() \"-p 0\""
        ));
        assert!(loads_code(
            "suspend Echo\ndynamic T Service_Object * /x/libt.so:_make() \"\""
        ));
        for other in [
            "suspend Echo",
            "resume Echo",
            "remove Echo",
            "static S \"-p 0\"",
            "dynamic Echo",
        ] {
            assert!(!loads_code(other), "{other}");
        }
    }
}
