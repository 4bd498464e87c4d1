//! The strict Leader/Followers protocol: a handle leaves the handle set while it is processed
//! and comes back afterwards, with nothing that arrived meanwhile lost.

use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;
use std::time::Duration;

use leader_followers::LeaderFollowers;
use pattern_core::{Context, Dispatcher, Disposition, EventHandler, Interest};

/// Reads what is there, reports it, and blocks in its first upcall until released.
struct Held {
    stream: UnixStream,
    got: Sender<Vec<u8>>,
    release: Option<Receiver<()>>,
}

impl EventHandler for Held {
    fn handle(&self) -> Option<BorrowedFd<'_>> {
        Some(self.stream.as_fd())
    }

    fn handle_input(&mut self, _ctx: &mut dyn Context) -> Disposition {
        let mut buf = [0u8; 64];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return Disposition::Close,
                Ok(n) => {
                    let _ = self.got.send(buf[..n].to_vec());
                }
                Err(_) => break,
            }
        }
        if let Some(release) = self.release.take() {
            // Data written now arrives while the handle is out of the handle set.
            let _ = release.recv_timeout(Duration::from_secs(10));
        }
        Disposition::Continue
    }
}

#[test]
fn what_arrives_while_a_handle_is_deactivated_is_reported_when_it_comes_back() {
    for threads in [1, 2] {
        let mut pool = LeaderFollowers::builder()
            .threads(threads)
            .strict(true)
            .build()
            .unwrap();
        assert!(pool.is_strict());
        let (ours, mut peer) = UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        let (got_tx, got) = mpsc::channel();
        let (release_tx, release) = mpsc::channel();
        pool.register(
            Box::new(Held {
                stream: ours,
                got: got_tx,
                release: Some(release),
            }),
            Interest::READ,
        )
        .unwrap();
        let remote = pool.remote();
        let running = thread::spawn(move || pool.run());
        peer.write_all(b"first").unwrap();
        let wait = Duration::from_secs(10);
        assert_eq!(got.recv_timeout(wait).unwrap(), b"first");
        // The upcall is blocked: the handle is out of the set. Write, then let it return.
        peer.write_all(b"second").unwrap();
        release_tx.send(()).unwrap();
        assert_eq!(
            got.recv_timeout(wait).unwrap(),
            b"second",
            "{threads} thread(s): the data that arrived while deactivated was lost"
        );
        remote.end();
        running.join().unwrap().unwrap();
    }
}
