//! Running a child process with a time limit while capturing its stdout and stderr.

use std::io::{self, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

/// How long to wait for the output pipes to close after the child itself has exited.
///
/// A grandchild that inherited the pipes can keep them open; we then report what we have.
const PIPE_GRACE: Duration = Duration::from_secs(2);
/// The longest pause between two `try_wait` polls.
const MAX_POLL_INTERVAL: Duration = Duration::from_millis(20);

/// What a finished (or killed) run left behind.
#[derive(Debug)]
pub(crate) struct Captured {
    /// The exit status, or `None` if the time limit was reached and the child was killed.
    pub(crate) status: Option<ExitStatus>,
    /// Everything the child wrote to stdout.
    pub(crate) stdout: Vec<u8>,
    /// Everything the child wrote to stderr.
    pub(crate) stderr: Vec<u8>,
    /// Wall-clock time from spawn to exit (or kill).
    pub(crate) elapsed: Duration,
    /// Set when the output pipes stayed open after the child exited.
    pub(crate) pipes_left_open: bool,
}

impl Captured {
    /// Whether the child exited on its own with status 0.
    pub(crate) fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }
}

/// Spawns `command` with stdin from `/dev/null` and piped stdout and stderr, and waits for it
/// for at most `timeout`, killing it when the limit is reached.
pub(crate) fn run(command: &mut Command, timeout: Duration) -> io::Result<Captured> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = command.spawn()?;

    // Both pipes are drained on their own threads so that a chatty child never blocks on a
    // full pipe while we wait for it.
    let (done_tx, done_rx) = mpsc::channel();
    let stdout = drain(child.stdout.take(), done_tx.clone());
    let stderr = drain(child.stderr.take(), done_tx);

    let status = wait_until(&mut child, start + timeout)?;
    let elapsed = start.elapsed();
    let pipes_left_open = !pipes_closed(&done_rx, 2, Instant::now() + PIPE_GRACE);

    Ok(Captured {
        status,
        stdout: take(&stdout),
        stderr: take(&stderr),
        elapsed,
        pipes_left_open,
    })
}

/// Polls the child until it exits or `deadline` passes; in the latter case kills and reaps it
/// and returns `None`.
fn wait_until(child: &mut Child, deadline: Instant) -> io::Result<Option<ExitStatus>> {
    let mut interval = Duration::from_millis(1);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let now = Instant::now();
        if now >= deadline {
            // The child may exit between `try_wait` and `kill`; `kill` then fails harmlessly
            // and `wait` reaps it either way.
            let _ = child.kill();
            child.wait()?;
            return Ok(None);
        }
        thread::sleep(interval.min(deadline - now));
        interval = (interval * 2).min(MAX_POLL_INTERVAL);
    }
}

/// Reads `pipe` to its end on a new thread, appending to a shared buffer (so that what was
/// read is available even if the end never comes) and signalling `done` at the end.
fn drain<R: Read + Send + 'static>(pipe: Option<R>, done: Sender<()>) -> Arc<Mutex<Vec<u8>>> {
    let buffer = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&buffer);
    thread::spawn(move || {
        if let Some(mut pipe) = pipe {
            let mut chunk = [0_u8; 8192];
            loop {
                match pipe.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => lock(&sink).extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
        }
        // The receiver may have given up waiting; nothing to do then.
        let _ = done.send(());
    });
    buffer
}

/// Waits until `count` readers have signalled the end of their pipe, or `deadline` passes.
fn pipes_closed(done: &Receiver<()>, count: usize, deadline: Instant) -> bool {
    for _ in 0..count {
        let left = deadline.saturating_duration_since(Instant::now());
        match done.recv_timeout(left) {
            Ok(()) => {}
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return false,
        }
    }
    true
}

/// Takes the bytes collected so far out of a shared buffer.
fn take(buffer: &Mutex<Vec<u8>>) -> Vec<u8> {
    std::mem::take(&mut *lock(buffer))
}

/// Locks a buffer; a reader thread never panics while holding it, but a poisoned buffer still
/// holds valid bytes.
fn lock(buffer: &Mutex<Vec<u8>>) -> std::sync::MutexGuard<'_, Vec<u8>> {
    buffer.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut command = Command::new("sh");
        command.args(["-c", script]);
        command
    }

    #[test]
    fn captures_both_streams_and_the_exit_status() {
        let run = run(
            &mut sh("echo out; echo err >&2; exit 3"),
            Duration::from_secs(60),
        )
        .unwrap();
        assert_eq!(run.status.and_then(|s| s.code()), Some(3));
        assert!(!run.succeeded());
        assert_eq!(run.stdout, b"out\n");
        assert_eq!(run.stderr, b"err\n");
        assert!(!run.pipes_left_open);
    }

    #[test]
    fn output_larger_than_a_pipe_buffer_does_not_block_the_child() {
        let run = run(
            &mut sh("head -c 1000000 /dev/zero"),
            Duration::from_secs(60),
        )
        .unwrap();
        assert!(run.succeeded());
        assert_eq!(run.stdout.len(), 1_000_000);
    }

    #[test]
    fn a_child_past_its_time_limit_is_killed() {
        // `exec` makes the shell itself the sleeping process, so killing it closes the pipes.
        let run = run(&mut sh("exec sleep 600"), Duration::from_millis(300)).unwrap();
        assert!(run.status.is_none(), "reported as timed out");
        assert!(!run.pipes_left_open);
    }

    #[test]
    fn a_missing_program_is_a_spawn_error() {
        let err = run(
            &mut Command::new("/nonexistent/xtask-test-program"),
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
