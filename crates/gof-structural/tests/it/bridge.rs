//! Bridge: publishers and links vary independently, bound statically or dynamically, swapped while running.

use std::net::UdpSocket;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use gof_structural::Error;
use gof_structural::bridge::{
    DynLink, FileLink, Link, LinkedPublisher, OnChangePublisher, PeriodicPublisher, SerialLine,
    SerialReceiver, SwappableLink, TelemetryFrame, TelemetryPublisher, UdpLink,
};

fn temp_path(tag: &str) -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!(
        "gof-structural-it-{}-{tag}-{n}.log",
        std::process::id()
    ))
}

/// One receiving end per kind of link, yielding decoded frames.
enum Receiver {
    Udp(UdpSocket),
    Serial(SerialReceiver),
    File(PathBuf),
}

impl Receiver {
    fn frames(&self, expected: usize) -> Vec<TelemetryFrame> {
        match self {
            Receiver::Udp(socket) => (0..expected)
                .map(|_| {
                    let mut buf = [0u8; 512];
                    let n = socket.recv(&mut buf).expect("datagram on loopback");
                    TelemetryFrame::decode(&buf[..n]).unwrap()
                })
                .collect(),
            Receiver::Serial(rx) => rx
                .drain_frames()
                .unwrap()
                .iter()
                .map(|f| TelemetryFrame::decode(f).unwrap())
                .collect(),
            Receiver::File(path) => std::fs::read_to_string(path)
                .unwrap()
                .lines()
                .map(|l| TelemetryFrame::decode(l.as_bytes()).unwrap())
                .collect(),
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Receiver::File(path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Every concrete implementor, boxed, with its receiving end.
fn all_links() -> Vec<(DynLink, Receiver)> {
    let collector = UdpSocket::bind("127.0.0.1:0").unwrap();
    // A safety net so a lost datagram fails the test instead of hanging it.
    collector
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let udp = UdpLink::connect(collector.local_addr().unwrap()).unwrap();
    let (serial, serial_rx) = SerialLine::with_capacity(4096);
    let path = temp_path("matrix");
    let file = FileLink::create(&path).unwrap();
    vec![
        (Box::new(udp), Receiver::Udp(collector)),
        (Box::new(serial), Receiver::Serial(serial_rx)),
        (Box::new(file), Receiver::File(path)),
    ]
}

/// The same scenario for every publisher: a sensor drifting 0, 3, 20, 21, 40 with ticks between.
fn run_scenario(publisher: &mut dyn TelemetryPublisher) -> u64 {
    let t0 = Instant::now();
    for (i, value) in [0, 3, 20, 21, 40].into_iter().enumerate() {
        let now = t0 + Duration::from_secs(i as u64);
        publisher.record(value, now).unwrap();
        publisher.tick(now).unwrap();
    }
    publisher.published()
}

#[test]
fn every_publisher_works_over_every_link() {
    type MakePublisher = fn(DynLink) -> Box<dyn TelemetryPublisher>;
    let publishers: [(MakePublisher, Vec<i64>); 2] = [
        (
            |l| Box::new(PeriodicPublisher::new("t", Duration::from_secs(2), l)),
            vec![0, 20, 40],
        ),
        (
            |l| Box::new(OnChangePublisher::new("t", 5, l)),
            vec![0, 20, 40],
        ),
    ];
    let mut combinations = 0;
    for (make, expected) in &publishers {
        for (link, receiver) in all_links() {
            let mut publisher = make(link);
            let published = run_scenario(publisher.as_mut());
            let frames = receiver.frames(published as usize);
            let values: Vec<i64> = frames.iter().map(|f| f.value).collect();
            let seqs: Vec<u64> = frames.iter().map(|f| f.seq).collect();
            assert_eq!(&values, expected);
            assert_eq!(seqs, (0..published).collect::<Vec<_>>());
            combinations += 1;
        }
    }
    // Two abstractions and three implementations: six working combinations from five types.
    assert_eq!(combinations, 6);
}

/// A link written after the publishers, knowing nothing of them.
#[derive(Default, Clone)]
struct RecordingLink(Arc<Mutex<Vec<Vec<u8>>>>);

impl Link for RecordingLink {
    fn describe(&self) -> String {
        "recorder".into()
    }
    fn send(&self, frame: &[u8]) -> Result<(), Error> {
        self.0.lock().unwrap().push(frame.to_vec());
        Ok(())
    }
}

#[test]
fn a_new_implementation_needs_no_change_to_the_abstractions() {
    let recorder = RecordingLink::default();
    let mut periodic = PeriodicPublisher::new("p", Duration::from_secs(1), recorder.clone());
    let mut on_change = OnChangePublisher::new("c", 0, recorder.clone());
    run_scenario(&mut periodic);
    run_scenario(&mut on_change);
    assert_eq!(
        recorder.0.lock().unwrap().len() as u64,
        periodic.published() + 5
    );
}

/// A publisher written after the links, knowing nothing of them: publishes only above a limit.
struct AlarmPublisher<L> {
    link: L,
    limit: i64,
    sent: u64,
}

impl<L: Link> TelemetryPublisher for AlarmPublisher<L> {
    fn record(&mut self, value: i64, _now: Instant) -> Result<Option<u64>, Error> {
        if value <= self.limit {
            return Ok(None);
        }
        let frame = TelemetryFrame {
            topic: "alarm".into(),
            seq: self.sent,
            value,
        };
        self.link.send(&frame.encode())?;
        self.sent += 1;
        Ok(Some(frame.seq))
    }
    fn tick(&mut self, _now: Instant) -> Result<Option<u64>, Error> {
        Ok(None)
    }
    fn published(&self) -> u64 {
        self.sent
    }
    fn topic(&self) -> &str {
        "alarm"
    }
}

#[test]
fn a_new_abstraction_needs_no_change_to_the_implementations() {
    for (link, receiver) in all_links() {
        let mut alarm = AlarmPublisher {
            link,
            limit: 15,
            sent: 0,
        };
        assert_eq!(run_scenario(&mut alarm), 3);
        let values: Vec<i64> = receiver.frames(3).into_iter().map(|f| f.value).collect();
        assert_eq!(values, [20, 21, 40]);
    }
}

#[test]
fn static_and_dynamic_bridges_behave_alike() {
    let (serial_static, rx_static) = SerialLine::with_capacity(1024);
    let (serial_dynamic, rx_dynamic) = SerialLine::with_capacity(1024);
    // Static: the link type is part of the publisher's type, resolved at compile time.
    let mut fixed: OnChangePublisher<_> = OnChangePublisher::new("t", 5, serial_static);
    // Dynamic: both sides behind trait objects, chosen at run time.
    let mut chosen: Box<dyn TelemetryPublisher> = Box::new(OnChangePublisher::<DynLink>::new(
        "t",
        5,
        Box::new(serial_dynamic),
    ));
    run_scenario(&mut fixed);
    run_scenario(chosen.as_mut());
    assert_eq!(
        rx_static.drain_frames().unwrap(),
        rx_dynamic.drain_frames().unwrap()
    );
}

#[test]
fn the_static_bridge_swaps_only_within_one_implementation_type() {
    let (first, rx_first) = SerialLine::with_capacity(1024);
    let (second, rx_second) = SerialLine::with_capacity(1024);
    let mut publisher = OnChangePublisher::new("t", 0, first);
    publisher.record(1, Instant::now()).unwrap();
    let old = publisher.replace_link(second);
    assert_eq!(old.describe(), "serial line (1024 byte FIFO)");
    publisher.record(2, Instant::now()).unwrap();
    assert_eq!(rx_first.drain_frames().unwrap().len(), 1);
    assert_eq!(rx_second.drain_frames().unwrap().len(), 1);
}

#[test]
fn the_dynamic_bridge_rebinds_to_another_kind_of_link() {
    let mut links = all_links();
    let (file_link, file_rx) = links.pop().unwrap();
    let (serial_link, serial_rx) = links.pop().unwrap();
    let (udp_link, udp_rx) = links.pop().unwrap();
    let mut publisher = PeriodicPublisher::<DynLink>::new("t", Duration::from_secs(1), udp_link);
    let t0 = Instant::now();
    publisher.record(1, t0).unwrap();
    publisher.tick(t0).unwrap();
    publisher.replace_link(serial_link);
    publisher.tick(t0 + Duration::from_secs(1)).unwrap();
    publisher.replace_link(file_link);
    publisher.tick(t0 + Duration::from_secs(2)).unwrap();
    assert_eq!(udp_rx.frames(1)[0].seq, 0);
    assert_eq!(serial_rx.frames(1)[0].seq, 1);
    assert_eq!(file_rx.frames(1)[0].seq, 2);
    assert!(publisher.link().describe().starts_with("file "));
}

#[test]
fn the_link_can_be_swapped_from_another_thread_while_the_publisher_runs() {
    let (serial, serial_rx) = SerialLine::with_capacity(64 * 1024);
    let path = temp_path("swap");
    let file: Arc<dyn Link + Send + Sync> = Arc::new(FileLink::create(&path).unwrap());
    let slot = SwappableLink::new(Arc::new(serial));

    let (to_publisher, orders) = mpsc::channel::<u64>();
    let (to_main, done) = mpsc::channel::<u64>();
    let publisher_link = slot.clone();
    let worker = thread::spawn(move || {
        let mut publisher = OnChangePublisher::new("rpm", 0, publisher_link);
        let now = Instant::now();
        let mut value = 0;
        // Each order says how many frames to publish, then the worker reports back.
        for count in orders {
            for _ in 0..count {
                value += 1;
                publisher.record(value, now).unwrap();
            }
            to_main.send(publisher.published()).unwrap();
        }
    });
    to_publisher.send(10).unwrap();
    assert_eq!(done.recv().unwrap(), 10);
    slot.swap(file); // the publisher is alive, mid-run, and is not told
    to_publisher.send(5).unwrap();
    assert_eq!(done.recv().unwrap(), 15);
    drop(to_publisher);
    worker.join().unwrap();

    let on_serial = serial_rx.drain_frames().unwrap();
    let on_file = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(on_serial.len(), 10);
    let file_seqs: Vec<u64> = on_file
        .lines()
        .map(|l| TelemetryFrame::decode(l.as_bytes()).unwrap().seq)
        .collect();
    assert_eq!(file_seqs, (10..15).collect::<Vec<_>>());
}

#[test]
fn concurrent_swaps_never_lose_or_duplicate_a_frame() {
    let (a, rx_a) = SerialLine::with_capacity(1 << 20);
    let (b, rx_b) = SerialLine::with_capacity(1 << 20);
    let a: Arc<dyn Link + Send + Sync> = Arc::new(a);
    let b: Arc<dyn Link + Send + Sync> = Arc::new(b);
    let slot = SwappableLink::new(Arc::clone(&a));
    const FRAMES: i64 = 2000;
    let publisher_link = slot.clone();
    let worker = thread::spawn(move || {
        let mut publisher = OnChangePublisher::new("x", 0, publisher_link);
        let now = Instant::now();
        for value in 0..FRAMES {
            publisher.record(value, now).unwrap();
        }
    });
    let mut flips = 0u32;
    while !worker.is_finished() {
        let next = if flips % 2 == 0 { &b } else { &a };
        slot.swap(Arc::clone(next));
        flips += 1;
    }
    worker.join().unwrap();
    let mut values: Vec<i64> = rx_a
        .drain_frames()
        .unwrap()
        .into_iter()
        .chain(rx_b.drain_frames().unwrap())
        .map(|f| TelemetryFrame::decode(&f).unwrap().value)
        .collect();
    values.sort_unstable();
    assert_eq!(values, (0..FRAMES).collect::<Vec<_>>());
}

#[test]
fn a_failing_link_is_an_error_and_the_publisher_goes_on() {
    let (serial, rx) = SerialLine::with_capacity(12);
    let mut publisher = OnChangePublisher::new("t", 0, serial);
    let now = Instant::now();
    assert_eq!(publisher.record(1, now).unwrap(), Some(0));
    assert!(matches!(
        publisher.record(2, now),
        Err(Error::LinkFull { .. })
    ));
    rx.drain_frames().unwrap();
    assert_eq!(publisher.record(2, now).unwrap(), Some(1));
}
