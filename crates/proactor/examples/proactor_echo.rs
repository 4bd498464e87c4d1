//! An echo server on the proactor: an `Acceptor` keeps an asynchronous accept in flight, each
//! connection gets an echo completion handler (read completes → write the same buffer back →
//! read again), and three `Connector`s act as clients in the same loop. The clients send one
//! line at a time and wait for its echo before the next, so the narrative is deterministic.
//! The end shows the ACT check in the kernel's own queue: a forged completion is refused.

use std::cell::RefCell;
use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::rc::Rc;

use proactor::{
    Acceptor, CloseReason, CompletionHandler, Connector, Initiator, OpId, Outcome, Proactor,
};

type Out = Rc<RefCell<Vec<String>>>;

fn say(out: &Out, line: String) {
    println!("{line}");
    out.borrow_mut().push(line);
}

/// The server side of one connection.
struct EchoService {
    n: usize,
    stream: TcpStream,
    out: Out,
    bytes: usize,
}

impl CompletionHandler for EchoService {
    fn on_open(&mut self, cx: &mut Initiator<'_>) {
        cx.read(self.stream.as_fd(), vec![0; 256]).expect("read");
    }

    fn on_read(&mut self, cx: &mut Initiator<'_>, _: OpId, o: Outcome<usize>, mut buf: Vec<u8>) {
        match o {
            Outcome::Done(0) => say(&self.out, format!("  service #{}: end of stream", self.n)),
            Outcome::Done(n) => {
                buf.truncate(n);
                self.bytes += n;
                say(
                    &self.out,
                    format!(
                        "  service #{}: read completed with {:?}; writing the same buffer back",
                        self.n,
                        String::from_utf8_lossy(&buf)
                    ),
                );
                cx.write(self.stream.as_fd(), buf).expect("write");
            }
            other => say(
                &self.out,
                format!("  service #{}: read ended {other:?}", self.n),
            ),
        }
    }

    fn on_write(&mut self, cx: &mut Initiator<'_>, _: OpId, _: Outcome<usize>, mut buf: Vec<u8>) {
        buf.clear();
        buf.resize(256, 0);
        cx.read(self.stream.as_fd(), buf).expect("read");
    }

    fn on_close(&mut self, reason: CloseReason) {
        say(
            &self.out,
            format!(
                "  service #{}: closed ({reason:?}) after echoing {} bytes",
                self.n, self.bytes
            ),
        );
    }
}

/// A client: writes each line, reads its echo, then hangs up.
struct Client {
    name: char,
    stream: TcpStream,
    lines: Vec<&'static str>,
    out: Out,
}

impl Client {
    fn send_next(&mut self, cx: &mut Initiator<'_>) {
        if self.lines.is_empty() {
            say(&self.out, format!("client {}: hangs up", self.name));
            let _ = self.stream.shutdown(std::net::Shutdown::Write);
            return;
        }
        let line = self.lines.remove(0);
        say(&self.out, format!("client {}: sends {line:?}", self.name));
        cx.write(self.stream.as_fd(), line.as_bytes().to_vec())
            .expect("write");
    }
}

impl CompletionHandler for Client {
    fn on_open(&mut self, cx: &mut Initiator<'_>) {
        self.send_next(cx);
    }

    fn on_write(&mut self, cx: &mut Initiator<'_>, _: OpId, o: Outcome<usize>, buf: Vec<u8>) {
        let n = o.ok().unwrap_or(0);
        let mut back = buf;
        back.clear();
        back.resize(n, 0);
        cx.read(self.stream.as_fd(), back).expect("read");
    }

    fn on_read(&mut self, cx: &mut Initiator<'_>, _: OpId, o: Outcome<usize>, mut buf: Vec<u8>) {
        match o {
            Outcome::Done(n) if n > 0 => {
                buf.truncate(n);
                say(
                    &self.out,
                    format!(
                        "client {}: got {:?} back",
                        self.name,
                        String::from_utf8_lossy(&buf)
                    ),
                );
                self.send_next(cx);
            }
            _ => say(&self.out, format!("client {}: connection ended", self.name)),
        }
    }

    fn on_close(&mut self, reason: CloseReason) {
        say(
            &self.out,
            format!("client {}: closed ({reason:?})", self.name),
        );
    }
}

fn main() -> io::Result<()> {
    // `cargo xtask demo --diagrams` draws the Proactor page's sequence diagram from this run.
    let diagram = pattern_core::diagram::Diagram::from_env_limited("proactor_echo", 120);
    let out: Out = Rc::new(RefCell::new(Vec::new()));
    let mut proactor = Proactor::new().map_err(io::Error::other)?;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;

    let scripts: [(char, Vec<&'static str>); 3] = [
        ('A', vec!["hello", "how are you?"]),
        ('B', vec!["one", "two", "three"]),
        ('C', vec!["proactor"]),
    ];
    say(
        &out,
        "proactor: acceptor registered on a loopback port; it keeps one accept in flight".into(),
    );
    // Accept and connect complete in the same kernel round, in either order: the handlers
    // only note them, and the main loop tells them in a fixed order.
    let accepted = Rc::new(RefCell::new(0));
    let (acc_out, acc_n) = (out.clone(), accepted.clone());
    proactor.register(Acceptor::with_limit(
        listener,
        scripts.len(),
        move |stream| -> Box<dyn CompletionHandler> {
            *acc_n.borrow_mut() += 1;
            Box::new(EchoService {
                n: *acc_n.borrow(),
                stream,
                out: acc_out.clone(),
                bytes: 0,
            })
        },
    ));

    // One client at a time, so that the story reads in order.
    for (k, (name, lines)) in scripts.into_iter().enumerate() {
        say(&out, format!("client {name}: connect started"));
        let connected: Rc<RefCell<Option<TcpStream>>> = Rc::new(RefCell::new(None));
        let slot = connected.clone();
        proactor.register(Connector::new(
            addr,
            move |r: io::Result<TcpStream>| -> Option<Box<dyn CompletionHandler>> {
                *slot.borrow_mut() = Some(r.expect("connect"));
                None
            },
        ));
        while connected.borrow().is_none() || *accepted.borrow() == k {
            proactor.turn().map_err(io::Error::other)?;
        }
        say(
            &out,
            format!(
                "  acceptor: accept #{} completed; registered an echo service handler",
                k + 1
            ),
        );
        say(
            &out,
            format!("client {name}: connect completed; registering the client handler"),
        );
        let stream = connected.borrow_mut().take().expect("connected");
        proactor.register(Client {
            name,
            stream,
            lines,
            out: out.clone(),
        });
        // Dispatch until this client and its service have both closed.
        let closed = |o: &Out| o.borrow().iter().filter(|l| l.contains("closed")).count();
        let before = closed(&out);
        while closed(&out) < before + 2 {
            proactor.turn().map_err(io::Error::other)?;
        }
    }

    // The acceptor closed itself after its last accept.
    proactor.run().map_err(io::Error::other)?;
    say(
        &out,
        format!("proactor: {} handlers left", proactor.handlers()),
    );

    // A completion that no operation of ours asked for: the ACT table refuses it.
    proactor
        .inject_completion(0x0bad_f00d_dead_beef)
        .map_err(io::Error::other)?;
    while proactor.stats().refused == 0 {
        proactor.turn().map_err(io::Error::other)?;
    }
    let stats = proactor.stats();
    say(
        &out,
        format!(
            "proactor: a forged completion was refused and dropped (refused: {}); completions delivered: {}, closed handlers: {}",
            stats.refused, stats.delivered, stats.closed
        ),
    );
    diagram.finish()?;
    Ok(())
}
