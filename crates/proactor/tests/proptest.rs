//! Random sequences of operations, cancellations, closes and dispatch rounds on socket pairs
//! (handlers that keep the provided buffers lent to them, so that reads wait for one):
//! every operation started ends exactly once, every handler is closed exactly once and its
//! close is its last upcall, and nothing stays in flight.

mod common;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::Duration;

use common::{Ev, FOREVER, Log, Recorder, of, terminal_ops};
use proactor::{Config, HandlerId, OpId, Proactor};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Action {
    Read(usize),
    ContinuousRead(usize),
    MultishotRead(usize),
    Write(usize),
    PeerWrite(usize),
    Cancel(usize, usize),
    Close(usize),
    /// A zero timeout on some live handler, then one dispatch round (it cannot block for
    /// long: the timeout completes at once).
    Turn(usize),
    /// The handler starts keeping the provided buffers its multishot reads lend it.
    Keep(usize),
    /// The handler stops keeping them and gives back those it kept.
    GiveBack(usize),
}

fn action() -> impl Strategy<Value = Action> {
    // Multishot reads, peer writes and dispatch rounds weigh more, so that handlers keeping
    // their lent buffers run the kernel dry now and then (a read then waits for a buffer).
    prop_oneof![
        1 => (0..4usize).prop_map(Action::Read),
        1 => (0..4usize).prop_map(Action::ContinuousRead),
        3 => (0..4usize).prop_map(Action::MultishotRead),
        1 => (0..4usize).prop_map(Action::Write),
        4 => (0..4usize).prop_map(Action::PeerWrite),
        1 => (0..4usize, 0..8usize).prop_map(|(h, i)| Action::Cancel(h, i)),
        1 => (0..4usize).prop_map(Action::Close),
        4 => (0..4usize).prop_map(Action::Turn),
        1 => (0..4usize).prop_map(Action::Keep),
        1 => (0..4usize).prop_map(Action::GiveBack),
    ]
}

struct Pair {
    id: HandlerId,
    peer: UnixStream,
    sock: UnixStream,
    ops: Vec<OpId>,
    keep: Rc<RefCell<(bool, Vec<proactor::ProvidedBuf>)>>,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn every_operation_ends_once_and_every_handler_closes_once_last(
        actions in proptest::collection::vec(action(), 1..40),
        cap in 5usize..12,
    ) {
        let log: Log = Rc::new(RefCell::new(Vec::new()));
        let mut p = Proactor::with_config(Config {
            max_in_flight: cap,
            provided_buffers: Some((2, 8)),
            ..Config::default()
        }).unwrap();
        let mut pairs = Vec::new();
        for name in 0..4u32 {
            let (peer, sock) = UnixStream::pair().unwrap();
            let mine = sock.try_clone().unwrap();
            // A long timeout keeps the handler alive until it is closed.
            let recorder = Recorder::new(name, mine, &log).on_open(|cx, _| {
                cx.timeout(FOREVER).unwrap();
            });
            // Handlers start out keeping their lent buffers (the pool is shared: two kept
            // anywhere run it dry).
            recorder.keep.borrow_mut().0 = true;
            let keep = recorder.keep.clone();
            let id = p.register(recorder);
            pairs.push(Pair { id, peer, sock, ops: Vec::new(), keep });
        }
        let mut started = 0usize;
        for a in actions {
            match a {
                Action::Read(h) | Action::ContinuousRead(h) | Action::MultishotRead(h) | Action::Write(h) => {
                    let pair = &mut pairs[h];
                    let fd = pair.sock.as_fd();
                    let r = p.initiate(pair.id, |cx| match a {
                        Action::Read(_) => cx.read(fd, vec![0; 8]).map_err(|e| e.error),
                        Action::ContinuousRead(_) => cx.read_continuous(fd, vec![0; 8]).map_err(|e| e.error),
                        Action::MultishotRead(_) => cx.read_multishot(fd),
                        _ => cx.write(fd, b"data".to_vec()).map_err(|e| e.error),
                    });
                    match r {
                        Some(Ok(op)) => { pair.ops.push(op); started += 1; }
                        Some(Err(proactor::Error::TooManyInFlight { limit })) => prop_assert_eq!(limit, cap),
                        Some(Err(proactor::Error::Closed)) | None => {}
                        Some(Err(e)) => prop_assert!(false, "unexpected {e:?}"),
                    }
                    prop_assert!(p.in_flight() <= cap);
                }
                Action::PeerWrite(h) => pairs[h].peer.write_all(b"peer").unwrap(),
                Action::Cancel(h, i) => {
                    let pair = &pairs[h];
                    if let Some(op) = pair.ops.get(i % pair.ops.len().max(1)).copied() {
                        let _ = p.initiate(pair.id, |cx| cx.cancel(op));
                    }
                }
                Action::Close(h) => { let _ = p.close(pairs[h].id); }
                Action::Keep(h) => pairs[h].keep.borrow_mut().0 = true,
                Action::GiveBack(h) => *pairs[h].keep.borrow_mut() = (false, Vec::new()),
                Action::Turn(h) => {
                    let live = (0..4).map(|k| (h + k) % 4).find(|&k| {
                        p.initiate(pairs[k].id, |cx| cx.timeout(Duration::ZERO).ok()).flatten().is_some()
                    });
                    if live.is_some() {
                        p.turn().unwrap();
                    }
                }
            }
        }
        p.shutdown().unwrap();
        prop_assert_eq!((p.in_flight(), p.handlers()), (0, 0));
        prop_assert_eq!(p.stats().refused, 0);
        // Kept buffers stay lent until given back, whatever happened to their handlers.
        let kept: usize = pairs.iter().map(|pair| pair.keep.borrow().1.len()).sum();
        prop_assert_eq!(p.provided_buffers_free(), Some(2 - kept as u16));
        for pair in &pairs {
            pair.keep.borrow_mut().1.clear();
        }
        prop_assert_eq!(p.provided_buffers_free(), Some(2));

        // Every operation the test started ended exactly once.
        let mut ends: BTreeMap<OpId, usize> = BTreeMap::new();
        for op in terminal_ops(&log) {
            *ends.entry(op).or_default() += 1;
        }
        prop_assert!(ends.values().all(|&n| n == 1), "an operation ended twice: {:?}", ends);
        let mine: Vec<OpId> = pairs.iter().flat_map(|p| p.ops.iter().copied()).collect();
        prop_assert_eq!(mine.len(), started);
        for op in &mine {
            prop_assert_eq!(ends.get(op), Some(&1), "operation {} did not end once", op);
        }
        // Every handler closed exactly once, as its last upcall, and chunks came only
        // from continuous reads before their end.
        for name in 0..4u32 {
            let evs = of(&log, name);
            let closes = evs.iter().filter(|e| matches!(e, Ev::Close(..))).count();
            prop_assert_eq!(closes, 1, "{:?}", evs);
            prop_assert!(matches!(evs.last(), Some(Ev::Close(..))), "{:?}", evs);
            prop_assert_eq!(&evs[0], &Ev::Open(name));
        }
    }
}
