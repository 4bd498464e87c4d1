//! RELP, the acknowledged hop: logd's listener acknowledges a record only once it is stored,
//! its forwarder commits a record only once the upstream acknowledged it (with a window, and
//! every unacknowledged record sent again after a broken session), against a test-owned RELP
//! upstream, against another logd, and against rsyslog's own imrelp and omrelp.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use logging_service::client::{ClientError, RelpClient};
use logging_service::forward::Transport;
use logging_service::logd::LogdConfig;
use logging_service::relp::{Command, RelpDecoder, encode, encode_rsp};
use parking_lot::Mutex;

use crate::support::upstream::{
    self, Rsyslogd, forwarding_to, lines_of_file, messages_of, numbered, rsyslog_with, send_ace,
};
use crate::support::{Server, TempDir, wait_until};

fn syslog(host: &str, msg: &str) -> Vec<u8> {
    format!("<13>1 2026-01-01T00:00:00Z {host} app - - - {msg}").into_bytes()
}

fn relp_server(tag: &str, edit: impl FnOnce(&mut LogdConfig)) -> Server {
    Server::start(tag, |c| {
        c.syslog_port = None;
        c.relp_port = Some(0);
        edit(c);
    })
}

#[test]
fn the_listener_acknowledges_every_record_once_it_is_stored() {
    let server = relp_server("relp-ack", |_| {});
    let mut c = RelpClient::connect(server.at.relp.unwrap(), 16, Duration::from_secs(30)).unwrap();
    for i in 0..200 {
        c.send(&syslog("relp-host", &format!("m {i}"))).unwrap();
    }
    c.flush().unwrap();
    // Acknowledged means stored: the lines are in the file before the server stops.
    let stored = server.stored();
    assert_eq!(
        messages_of(&stored, "relp-host"),
        (0..200).map(|i| format!("m {i}")).collect::<Vec<_>>()
    );
    assert_eq!(c.close().unwrap(), 200);
    let (stats, _) = server.stop();
    assert_eq!((stats.relp, stats.records, stats.stored), (200, 200, 200));
    assert_eq!(stats.relp_unacked_closes, 0);
}

/// A record the store cannot write (its file is a directory here: EISDIR) is held for a
/// retry and never acknowledged: the session ends with `serverclose`, the sender keeps the
/// record, and sends it again; once the store can write, the held copy and the resent one
/// are both stored (a duplicate, counted by the sender as a resend, never a loss).
#[test]
fn a_record_whose_write_is_held_is_never_acknowledged() {
    let server = relp_server("relp-held", |c| {
        c.store.max_pending = 1000;
    });
    let addr = server.at.relp.unwrap();
    std::fs::create_dir_all(server.dir.0.join("blocked.log").join("x")).unwrap();
    let mut c = RelpClient::connect(addr, 4, Duration::from_secs(30)).unwrap();
    c.send(&syslog("blocked", "held")).unwrap();
    match c.flush() {
        Err(ClientError::Relp(why)) => assert!(why.contains("closed"), "{why}"),
        other => panic!("acknowledged a record that is not stored: {other:?}"),
    }
    assert_eq!(c.acked(), 0);
    let s = server.output.stats();
    assert_eq!(
        (s.relp, s.held, s.stored, s.relp_unacked_closes),
        (1, 1, 0, 1)
    );
    // Other sessions go on meanwhile.
    let mut other = RelpClient::connect(addr, 4, Duration::from_secs(30)).unwrap();
    other.send(&syslog("fine", "ok")).unwrap();
    assert_eq!(other.close().unwrap(), 1);
    // The store can write again: the retry stores the held record, the resend is acknowledged.
    std::fs::remove_dir_all(server.dir.0.join("blocked.log")).unwrap();
    wait_until("the held record is stored", || {
        server.output.stats().held == 0
    });
    let mut again = RelpClient::connect(addr, 4, Duration::from_secs(30)).unwrap();
    again.send(&syslog("blocked", "held")).unwrap();
    assert_eq!(again.close().unwrap(), 1);
    let (stats, stored) = server.stop();
    assert_eq!(messages_of(&stored, "blocked"), ["held", "held"]);
    assert_eq!((stats.relp, stats.stored, stats.held), (3, 3, 0));
}

/// Malformed, truncated, oversized and hostile sessions cost only themselves.
#[test]
fn bad_sessions_are_closed_and_counted_and_cost_only_themselves() {
    let server = relp_server("relp-hostile", |c| c.max_frame = 1024);
    let addr = server.at.relp.unwrap();
    let mut good = RelpClient::connect(addr, 4, Duration::from_secs(30)).unwrap();
    let talk = |wire: &[u8]| -> Vec<u8> {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s.write_all(wire).unwrap();
        let mut answer = Vec::new();
        let _ = s.read_to_end(&mut answer);
        answer
    };
    let mut open = Vec::new();
    encode(
        &mut open,
        1,
        Command::Open,
        b"relp_version=0\ncommands=syslog",
    );
    // Garbage where a frame must be: closed without an answer.
    assert_eq!(talk(b"GET / HTTP/1.1\r\n\r\n"), b"");
    // A syslog frame before open: closed.
    assert_eq!(talk(b"1 syslog 2 hi\n"), b"");
    // An oversized frame after open: the open is answered, then the session closes.
    let mut wire = open.clone();
    wire.extend_from_slice(b"2 syslog 99999 ");
    let answer = talk(&wire);
    assert!(answer.starts_with(b"1 rsp "), "{answer:?}");
    // A message that is not syslog is answered 500 and counted; the session goes on.
    let mut wire = open.clone();
    encode(&mut wire, 2, Command::Syslog, b"");
    encode(&mut wire, 3, Command::Syslog, &syslog("h", "after"));
    encode(&mut wire, 4, Command::Close, b"");
    let answer = String::from_utf8(talk(&wire)).unwrap();
    assert!(
        answer
            .contains("\n2 rsp 28 500 malformed syslog message\n3 rsp 6 200 OK\n4 rsp 6 200 OK\n"),
        "{answer}"
    );
    good.send(&syslog("good", "still here")).unwrap();
    assert_eq!(good.close().unwrap(), 1);
    let (stats, stored) = server.stop();
    assert_eq!(messages_of(&stored, "good"), ["still here"]);
    assert_eq!(messages_of(&stored, "h"), ["after"]);
    assert_eq!(stats.oversized_closed, 1);
    // Garbage, the frame before open, the oversized frame, the empty message.
    assert_eq!(stats.rejected, 4, "{stats:?}");
}

/// A RELP upstream owned by the test: answers `open`, keeps every message, and
/// acknowledges them, holds its acknowledgements, or sends forged and duplicate ones first.
struct RelpUpstream {
    addr: SocketAddr,
    messages: Arc<Mutex<Vec<String>>>,
    ack: Arc<AtomicBool>,
    forge: Arc<AtomicBool>,
    running: Option<(Arc<AtomicBool>, JoinHandle<()>, Conns)>,
}

type Conns = Arc<Mutex<Vec<(TcpStream, JoinHandle<()>)>>>;

fn serve_session(
    mut s: TcpStream,
    out: Arc<Mutex<Vec<String>>>,
    ack: Arc<AtomicBool>,
    forge: Arc<AtomicBool>,
) {
    let mut dec = RelpDecoder::new(1 << 20);
    let mut buf = [0u8; 8192];
    loop {
        let n = match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        dec.extend(&buf[..n]);
        let mut wire = Vec::new();
        while let Some(f) = dec.next_frame().unwrap() {
            match f.command {
                Command::Open => encode(
                    &mut wire,
                    f.txnr,
                    Command::Rsp,
                    b"200 OK\nrelp_version=0\nrelp_software=test\ncommands=syslog",
                ),
                Command::Syslog => {
                    let msg = String::from_utf8_lossy(f.data);
                    out.lock()
                        .push(msg.splitn(8, ' ').nth(7).unwrap().to_string());
                    if forge.load(Ordering::SeqCst) {
                        encode_rsp(&mut wire, f.txnr + 500_000, 200, "OK");
                    }
                    if ack.load(Ordering::SeqCst) {
                        encode_rsp(&mut wire, f.txnr, 200, "OK");
                        if forge.load(Ordering::SeqCst) {
                            encode_rsp(&mut wire, f.txnr, 200, "OK");
                        }
                    }
                }
                _ => encode(&mut wire, f.txnr, Command::Rsp, b""),
            }
        }
        if s.write_all(&wire).is_err() {
            return;
        }
    }
}

impl RelpUpstream {
    fn new() -> Self {
        // An address of its own per upstream, 127.0.81.N, as forwarding.rs' `Upstream`: its
        // port stays free while it is down, never given to a concurrent test's upstream.
        static NEXT: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(1);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        assert!(n < 255, "more upstreams than addresses");
        let l = TcpListener::bind((std::net::Ipv4Addr::new(127, 0, 81, n), 0)).unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        RelpUpstream {
            addr,
            messages: Arc::default(),
            ack: Arc::new(AtomicBool::new(true)),
            forge: Arc::new(AtomicBool::new(false)),
            running: None,
        }
    }

    fn start(&mut self) {
        let listener = TcpListener::bind(self.addr).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let conns: Conns = Arc::default();
        let (st, cs) = (stop.clone(), conns.clone());
        let (out, ack, forge) = (self.messages.clone(), self.ack.clone(), self.forge.clone());
        let accept = std::thread::spawn(move || {
            for s in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(s) = s else { continue };
                let keep = s.try_clone().unwrap();
                let (out, ack, forge) = (out.clone(), ack.clone(), forge.clone());
                let t = std::thread::spawn(move || serve_session(s, out, ack, forge));
                cs.lock().push((keep, t));
            }
        });
        self.running = Some((stop, accept, conns));
    }

    /// Closes the listener and every session (the records they did not acknowledge stay
    /// with the forwarder).
    fn stop(&mut self) {
        let (stop, accept, conns) = self.running.take().unwrap();
        stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        accept.join().unwrap();
        for (s, t) in std::mem::take(&mut *conns.lock()) {
            let _ = s.shutdown(Shutdown::Both);
            t.join().unwrap();
        }
    }

    fn received(&self) -> Vec<String> {
        self.messages.lock().clone()
    }
}

impl Drop for RelpUpstream {
    fn drop(&mut self) {
        if self.running.is_some() {
            self.stop();
        }
    }
}

fn forwarding_relp(up: SocketAddr, window: usize) -> impl FnOnce(&mut LogdConfig) {
    move |c| {
        forwarding_to(up, Transport::Relp)(c);
        c.forwarding.relp_window = window;
    }
}

/// Unacknowledged records stay in the spool, never more than the window are in flight, and
/// after the session breaks they are sent again (counted as resent) and committed only when
/// the new session acknowledges them.
#[test]
fn the_forwarder_commits_only_acknowledged_records_and_resends_the_rest() {
    let mut up = RelpUpstream::new();
    up.ack.store(false, Ordering::SeqCst);
    up.start();
    let edge = Server::start("relp-fwd-window", forwarding_relp(up.addr, 4));
    let fwd = edge.forwarder();
    send_ace(&edge, "w", 0..10);
    wait_until("the window is full", || fwd.stats().relp_in_flight == 4);
    wait_until("the upstream read four", || up.received().len() >= 4);
    // The window bounds what is in flight: the upstream got exactly four.
    assert_eq!(up.received(), numbered("w", 0..4));
    let f = fwd.stats();
    assert_eq!((f.forwarded, f.queued), (0, 10));
    up.stop();
    up.ack.store(true, Ordering::SeqCst);
    up.start();
    wait_until("everything is acknowledged", || fwd.stats().forwarded == 10);
    edge.stop();
    let f = fwd.stats();
    assert_eq!((f.forwarded, f.queued, f.relp_resent), (10, 0, 4));
    let got = up.received();
    assert_eq!(got[..4], numbered("w", 0..4));
    assert_eq!(got[4..], numbered("w", 0..10), "all ten again, in order");
}

/// Answers naming no record in flight (forged) or a record already answered (stale) are
/// refused and counted; they never commit anything.
#[test]
fn forged_and_stale_acknowledgements_are_refused_and_counted() {
    let mut up = RelpUpstream::new();
    up.forge.store(true, Ordering::SeqCst);
    up.start();
    let edge = Server::start("relp-fwd-forged", forwarding_relp(up.addr, 1));
    let fwd = edge.forwarder();
    send_ace(&edge, "f", 0..5);
    wait_until("five forwarded", || fwd.stats().forwarded == 5);
    edge.stop();
    let f = fwd.stats();
    // Per record, one forged answer and one duplicate of the real one.
    assert_eq!((f.forwarded, f.relp_bad_txnr, f.relp_resent), (5, 10, 0));
    assert_eq!(up.received(), numbered("f", 0..5));
}

/// logd to logd over RELP: the upstream's listener acknowledges once stored, the edge commits
/// on that acknowledgement; nothing is left in the spool.
#[test]
fn logd_forwards_to_logd_over_relp() {
    let upstream = relp_server("relp-upstream", |c| c.ace_port = None);
    let edge = Server::start("relp-edge", forwarding_relp(upstream.at.relp.unwrap(), 16));
    let fwd = edge.forwarder();
    send_ace(&edge, "hop", 0..300);
    wait_until("300 acknowledged", || fwd.stats().forwarded == 300);
    edge.stop();
    let (stats, stored) = upstream.stop();
    assert_eq!(stats.relp, 300);
    assert_eq!(messages_of(&stored, "127.0.0.1"), numbered("hop", 0..300));
    assert_eq!(fwd.stats().queued, 0);
}

/// rsyslog with its RELP modules and the test's `conf` (a work directory given), or `None`
/// after the skip line.
fn rsyslogd(work: &TempDir, conf: &str) -> Option<Rsyslogd> {
    let rsyslogd = rsyslog_with("imrelp.so", "rsyslog's RELP modules", "rsyslog-relp")?;
    let conf = format!("global(workDirectory=\"{}\")\n{conf}", work.0.display());
    Some(Rsyslogd::start(&rsyslogd, &work.0, &conf))
}

/// A port on 127.0.0.82 (no other test binds there), for rsyslogd.
fn free_port() -> u16 {
    upstream::free_port("127.0.0.82")
}

/// logd's RELP forwarder to rsyslog's imrelp: every record acknowledged and written by
/// rsyslog, in order.
#[test]
fn logd_forwards_to_rsyslog_imrelp() {
    let work = TempDir::new("imrelp");
    std::fs::create_dir_all(&work.0).unwrap();
    let port = free_port();
    let out = work.0.join("out.log");
    let Some(_rsyslogd) = rsyslogd(
        &work,
        &format!(
            "module(load=\"imrelp\")\n\
             input(type=\"imrelp\" port=\"{port}\" address=\"127.0.0.82\")\n\
             template(name=\"plain\" type=\"string\" string=\"%HOSTNAME% %APP-NAME% %msg%\\n\")\n\
             action(type=\"omfile\" file=\"{}\" template=\"plain\")\n",
            out.display()
        ),
    ) else {
        return;
    };
    let upstream: SocketAddr = format!("127.0.0.82:{port}").parse().unwrap();
    wait_until("rsyslogd listens", || TcpStream::connect(upstream).is_ok());
    let edge = Server::start("to-imrelp", forwarding_relp(upstream, 32));
    let fwd = edge.forwarder();
    send_ace(&edge, "to imrelp", 0..100);
    wait_until("100 acknowledged by rsyslog", || {
        fwd.stats().forwarded == 100
    });
    edge.stop();
    wait_until("rsyslog wrote 100 lines", || {
        lines_of_file(&out).len() >= 100
    });
    let lines = lines_of_file(&out);
    let want: Vec<String> = (0..100)
        .map(|i| format!("127.0.0.1 ace to imrelp {i}"))
        .collect();
    assert_eq!(lines, want);
    assert_eq!(fwd.stats().relp_bad_txnr, 0);
}

/// rsyslog's omrelp to logd's RELP listener: rsyslog reads a file of lines (imfile) and
/// sends each over RELP; logd stores every one.
#[test]
fn rsyslog_omrelp_sends_to_logd() {
    let server = relp_server("from-omrelp", |c| c.ace_port = None);
    let relp = server.at.relp.unwrap();
    let work = TempDir::new("omrelp");
    std::fs::create_dir_all(&work.0).unwrap();
    let input = work.0.join("in.log");
    let lines: String = (0..50).map(|i| format!("from omrelp {i}\n")).collect();
    std::fs::write(&input, lines).unwrap();
    let Some(_rsyslogd) = rsyslogd(
        &work,
        &format!(
            "module(load=\"imfile\")\n\
             module(load=\"omrelp\")\n\
             input(type=\"imfile\" file=\"{}\" tag=\"omrelp-test\" readMode=\"0\")\n\
             template(name=\"t\" type=\"string\" string=\"<%PRI%>1 %TIMESTAMP:::date-rfc3339% %HOSTNAME% %APP-NAME% - - - %msg%\")\n\
             action(type=\"omrelp\" target=\"{}\" port=\"{}\" template=\"t\")\n",
            input.display(),
            relp.ip(),
            relp.port()
        ),
    ) else {
        return;
    };
    wait_until("logd stored 50 records from rsyslog", || {
        server.output.stats().relp >= 50
    });
    let (stats, stored) = server.stop();
    assert_eq!(stats.relp, 50);
    let all: Vec<String> = stored
        .iter()
        .flat_map(|(_, l)| l.iter().map(|r| r.message.clone()))
        .collect();
    assert_eq!(all, numbered("from omrelp", 0..50));
}

/// The RELP listener is a svc.conf component like the others: checked by `--check-config`
/// (a bad argument names the file and line), and started from the file.
#[test]
fn relp_logging_is_a_svc_conf_component() {
    let work = TempDir::new("relp-svc");
    std::fs::create_dir_all(&work.0).unwrap();
    let conf = work.0.join("svc.conf");
    let check = |text: &str| {
        std::fs::write(&conf, text).unwrap();
        crate::support::output(
            std::process::Command::new(env!("CARGO_BIN_EXE_logd"))
                .arg("--check-config")
                .arg("-f")
                .arg(&conf),
        )
        .unwrap()
    };
    let ok = check("static RELP_Logging \"-p 0 -b 127.0.0.1\"\n");
    assert!(ok.status.success(), "{ok:?}");
    let bad = check("static ACE_Logging \"-p 0\"\nstatic RELP_Logging \"-p notaport\"\n");
    assert_eq!(bad.status.code(), Some(78), "EX_CONFIG");
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("svc.conf:2:1: RELP_Logging: bad arguments: -p: bad port `notaport`"),
        "{err}"
    );
    std::fs::write(&conf, "static RELP_Logging \"-p 0\"\n").unwrap();
    let server = Server::start("relp-svc-run", |c| c.svc_conf = Some(conf.clone()));
    assert_eq!((server.at.ace, server.at.syslog_tcp), (None, None));
    let mut c = RelpClient::connect(server.at.relp.unwrap(), 4, Duration::from_secs(30)).unwrap();
    c.send(&syslog("svc", "from svc.conf")).unwrap();
    assert_eq!(c.close().unwrap(), 1);
    let (stats, _) = server.stop();
    assert_eq!(stats.relp, 1);
}

/// Eight RELP senders at once under each concurrency model: every record acknowledged,
/// stored once, in order per sender (the session handler follows the same contract as the
/// other connections).
#[test]
fn concurrent_relp_sessions_under_every_concurrency_model() {
    for model in ["reactor", "leader-followers:2", "half-sync-half-async:2"] {
        let concurrency: leader_followers::Concurrency = model.parse().unwrap();
        let server = relp_server(model, |c| c.concurrency = concurrency);
        let addr = server.at.relp.unwrap();
        let senders: Vec<_> = (0..8)
            .map(|s| {
                std::thread::spawn(move || {
                    let mut c = RelpClient::connect(addr, 8, Duration::from_secs(30)).unwrap();
                    for i in 0..300 {
                        c.send(&syslog(&format!("sender{s}"), &format!("{s} {i}")))
                            .unwrap();
                    }
                    c.close().unwrap()
                })
            })
            .collect();
        for s in senders {
            assert_eq!(s.join().unwrap(), 300, "{model}");
        }
        let (stats, stored) = server.stop();
        assert_eq!((stats.relp, stats.stored), (2400, 2400), "{model}");
        for s in 0..8 {
            assert_eq!(
                messages_of(&stored, &format!("sender{s}")),
                (0..300).map(|i| format!("{s} {i}")).collect::<Vec<_>>(),
                "{model}"
            );
        }
    }
}

/// A graceful stop while the upstream withholds its answers ends at the stop timeout, and
/// the unacknowledged records stay in the spool: the next start sends them again (counted as
/// recovered), and only the acknowledgement removes them.
#[test]
fn unacknowledged_records_survive_a_stop_in_the_spool() {
    let mut up = RelpUpstream::new();
    up.ack.store(false, Ordering::SeqCst);
    up.start();
    let spool = TempDir::new("relp-stop-spool");
    let up_addr = up.addr;
    let with_spool = |c: &mut LogdConfig| {
        forwarding_relp(up_addr, 8)(c);
        c.forwarding.spool_dir = Some(spool.0.clone());
    };
    let edge = Server::start("relp-stop-1", with_spool);
    let fwd = edge.forwarder();
    send_ace(&edge, "kept", 0..10);
    wait_until("the window is in flight", || {
        fwd.stats().relp_in_flight == 8
    });
    edge.stop();
    let f = fwd.stats();
    assert_eq!((f.forwarded, f.queued, f.relp_resent), (0, 10, 8));
    up.stop();
    up.ack.store(true, Ordering::SeqCst);
    up.start();
    let edge = Server::start("relp-stop-2", with_spool);
    let fwd = edge.forwarder();
    wait_until("the spool is delivered", || fwd.stats().forwarded == 10);
    edge.stop();
    let f = fwd.stats();
    assert_eq!((f.recovered, f.forwarded, f.queued), (10, 10, 0));
    let got = up.received();
    assert_eq!(got[got.len() - 10..], numbered("kept", 0..10));
}
