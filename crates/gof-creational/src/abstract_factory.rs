//! Abstract Factory: a hardware-abstraction layer whose families (Linux host, simulated board) cannot be mixed.
//!
//! Firmware written against [`Hal`] asks the factory for a GPIO line, a timer and a UART and
//! never names a concrete class, so the same code runs on a Linux host ([`LinuxHost`], backed
//! by files laid out like sysfs and tty devices) and on a simulated board ([`SimBoard`], in
//! memory with a virtual clock and a trace).
//! No `#[cfg]` or `if platform` appears in the client ([`heartbeat`]).
//!
//! The products of one family are meant to be used together: a [`Timer`] blinks a line, a
//! [`Uart`] raises an RS-485 driver-enable line around a transmission and stamps log lines
//! with a timer.
//! The factory's associated types tie each product to its siblings
//! (`Timer<Line = Self::Line>`, `Uart<Line = Self::Line, Timer = Self::Timer>`), so handing a
//! host line to a simulated timer is a type error, not a run-time surprise:
//!
//! ```compile_fail,E0308
//! use gof_creational::abstract_factory::{Hal, LinuxHost, SimBoard, Timer};
//!
//! let mut sim = SimBoard::default();
//! let mut host = LinuxHost::open(std::env::temp_dir().join("gof-hal-doc-mix")).unwrap();
//! let mut timer = sim.timer();
//! let mut led = host.gpio(2).unwrap();
//! timer.blink(&mut led, 1, 10).unwrap(); // expected `SimLine`, found `HostLine`
//! ```
//!
//! The same holds in generic code: a timer of one factory only accepts that factory's lines.
//!
//! ```compile_fail,E0308
//! use gof_creational::abstract_factory::{Hal, Timer};
//!
//! fn mix<A: Hal, B: Hal>(a: &mut A, b: &mut B) {
//!     let mut timer = a.timer();
//!     let mut led = b.gpio(2).unwrap();
//!     timer.blink(&mut led, 1, 10).unwrap(); // expected `A::Line`, found `B::Line`
//! }
//! ```
//!
//! Within one family, the types are equal for every instance, so mixing two simulated boards
//! is caught at run time instead ([`Error::ForeignProduct`]); every product knows its
//! [`BoardId`].
//! Both snippets above compile once the products come from the same factory:
//!
//! ```
//! use gof_creational::abstract_factory::{Hal, Level, SimBoard, Timer};
//!
//! fn same<A: Hal>(a: &mut A) -> Result<Level, gof_creational::Error> {
//!     let mut timer = a.timer();
//!     let mut led = a.gpio(2)?;
//!     timer.blink(&mut led, 1, 10)
//! }
//! assert_eq!(same(&mut SimBoard::default())?, Level::Low);
//! # Ok::<(), gof_creational::Error>(())
//! ```

use std::cell::RefCell;
use std::collections::{BTreeSet, VecDeque};
use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::{Error, short};

/// Identifies one board instance; every product carries the id of the board that made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BoardId(u64);

impl BoardId {
    fn next() -> BoardId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        BoardId(NEXT.fetch_add(1, Ordering::Relaxed))
    }

    /// The id as a number, unique within the process.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for BoardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

fn same_board(product: &'static str, owner: BoardId, expected: BoardId) -> Result<(), Error> {
    if owner == expected {
        Ok(())
    } else {
        Err(Error::ForeignProduct {
            product,
            owner: owner.0,
            expected: expected.0,
        })
    }
}

/// A logic level on a GPIO line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Level {
    /// 0 V.
    Low,
    /// Supply voltage.
    High,
}

impl Level {
    /// The other level.
    pub fn toggled(self) -> Level {
        match self {
            Level::Low => Level::High,
            Level::High => Level::Low,
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Low => "low",
            Level::High => "high",
        })
    }
}

/// What every product has: the board it belongs to.
pub trait BoardProduct: fmt::Debug {
    /// The board that created this product.
    fn board(&self) -> BoardId;
}

/// Abstract product: one GPIO output line.
///
/// ```
/// use gof_creational::abstract_factory::{GpioLine, Hal, Level, SimBoard};
///
/// let mut board = SimBoard::default();
/// let mut led = board.gpio(3)?;
/// assert_eq!(led.toggle()?, Level::High);
/// assert_eq!(led.level()?, Level::High);
/// # Ok::<(), gof_creational::Error>(())
/// ```
pub trait GpioLine: BoardProduct {
    /// The line's number on its board.
    fn line(&self) -> u8;
    /// Drives the line to `level`.
    fn set(&mut self, level: Level) -> Result<(), Error>;
    /// The level the line is driven to.
    fn level(&self) -> Result<Level, Error>;
    /// Drives the line to the other level and returns it.
    fn toggle(&mut self) -> Result<Level, Error> {
        let next = self.level()?.toggled();
        self.set(next)?;
        Ok(next)
    }
}

/// Abstract product: a millisecond timer that can drive lines of its own family.
///
/// ```
/// use gof_creational::abstract_factory::{Hal, SimBoard, Timer};
///
/// let mut board = SimBoard::default();
/// let mut timer = board.timer();
/// timer.delay_ms(25);
/// assert_eq!(timer.now_ms(), 25); // the simulated clock is virtual
/// ```
pub trait Timer: BoardProduct {
    /// The GPIO type of the same family: the only lines this timer accepts.
    type Line: GpioLine;
    /// Milliseconds since the board started.
    fn now_ms(&self) -> u64;
    /// Waits `ms` milliseconds.
    fn delay_ms(&mut self, ms: u64);
    /// Blinks `line` `times` times (high for `half_period_ms`, then low as long) and
    /// returns the level it is left at.
    ///
    /// Fails with [`Error::ForeignProduct`] if the line comes from another board of the same family.
    fn blink(
        &mut self,
        line: &mut Self::Line,
        times: u32,
        half_period_ms: u64,
    ) -> Result<Level, Error> {
        seq!(CLIENT => short::<Self>(), "blink(line {}, {times}, {half_period_ms})", line.line());
        if let Err(e) = same_board("GPIO line", line.board(), self.board()) {
            seq!(fail short::<Self>() => CLIENT, "{e}");
            return Err(e);
        }
        for _ in 0..times {
            seq!(short::<Self>() => short::<Self::Line>(), "set(High)");
            line.set(Level::High)?;
            self.delay_ms(half_period_ms);
            seq!(short::<Self>() => short::<Self::Line>(), "set(Low)");
            line.set(Level::Low)?;
            self.delay_ms(half_period_ms);
        }
        seq!(reply short::<Self>() => CLIENT, "Ok(Low)");
        line.level()
    }
}

/// Abstract product: a serial port that works with the line and timer types of its own family.
///
/// ```
/// use gof_creational::abstract_factory::{Hal, SimBoard, Uart};
///
/// let mut board = SimBoard::default();
/// let mut console = board.uart(0)?;
/// let timer = board.timer();
/// console.log_line(&timer, "boot")?;
/// assert_eq!(board.transmitted(0), b"[     0 ms] boot\n");
/// # Ok::<(), gof_creational::Error>(())
/// ```
pub trait Uart: BoardProduct {
    /// The GPIO type of the same family, used as the RS-485 driver-enable line.
    type Line: GpioLine;
    /// The timer type of the same family, used for timestamps.
    type Timer: Timer;
    /// The port's number on its board.
    fn port(&self) -> u8;
    /// Transmits `bytes`.
    fn write(&mut self, bytes: &[u8]) -> Result<(), Error>;
    /// Takes whatever has been received since the last call.
    fn read_available(&mut self) -> Result<Vec<u8>, Error>;

    /// Half-duplex (RS-485) transmission: raises `driver_enable`, transmits, lowers it again
    /// even when the transmission fails.
    fn write_half_duplex(
        &mut self,
        driver_enable: &mut Self::Line,
        bytes: &[u8],
    ) -> Result<(), Error> {
        seq!(CLIENT => short::<Self>(), "write_half_duplex(line {}, {:?})", driver_enable.line(), String::from_utf8_lossy(bytes).trim_end());
        same_board("driver-enable line", driver_enable.board(), self.board())?;
        seq!(short::<Self>() => short::<Self::Line>(), "set(High)");
        driver_enable.set(Level::High)?;
        let sent = self.write(bytes);
        seq!(short::<Self>() => short::<Self::Line>(), "set(Low)");
        driver_enable.set(Level::Low)?;
        sent
    }

    /// Transmits `text` as one line prefixed with the timer's time.
    fn log_line(&mut self, timer: &Self::Timer, text: &str) -> Result<(), Error> {
        seq!(CLIENT => short::<Self>(), "log_line(timer, {text:?})");
        same_board("timer", timer.board(), self.board())?;
        seq!(short::<Self>() => short::<Self::Timer>(), "now_ms()");
        self.write(format!("[{:>6} ms] {text}\n", timer.now_ms()).as_bytes())
    }
}

/// The abstract factory: creates a family of hardware products that work together.
///
/// The equalities on the associated types are what keeps families apart.
///
/// ```
/// use gof_creational::abstract_factory::{heartbeat, Hal, SimBoard};
///
/// fn family_name<H: Hal>(_: &H) -> &'static str { H::FAMILY }
///
/// let mut board = SimBoard::default();
/// assert_eq!(family_name(&board), "simulated board");
/// let report = heartbeat(&mut board, 2)?;
/// assert_eq!(report.led, gof_creational::abstract_factory::Level::Low);
/// # Ok::<(), gof_creational::Error>(())
/// ```
pub trait Hal: fmt::Debug {
    /// The family's name.
    const FAMILY: &'static str;
    /// Concrete GPIO product.
    type Line: GpioLine;
    /// Concrete timer product, driving this family's lines only.
    type Timer: Timer<Line = Self::Line>;
    /// Concrete UART product, working with this family's lines and timers only.
    type Uart: Uart<Line = Self::Line, Timer = Self::Timer>;

    /// This board's id, carried by all its products.
    fn id(&self) -> BoardId;
    /// Hands out GPIO line `line`; each line is handed out once.
    fn gpio(&mut self, line: u8) -> Result<Self::Line, Error>;
    /// Creates a timer; timers share the board's clock.
    fn timer(&mut self) -> Self::Timer;
    /// Hands out UART port `port`; each port is handed out once.
    fn uart(&mut self, port: u8) -> Result<Self::Uart, Error>;
}

/// The client's name in the sequence diagrams drawn from runs.
const CLIENT: &str = "firmware (client)";

/// What [`heartbeat`] observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatReport {
    /// The family the firmware ran on.
    pub family: &'static str,
    /// The level the LED was left at.
    pub led: Level,
    /// The commands received on the console, one per line.
    pub commands: Vec<String>,
}

/// The GPIO line the heartbeat firmware uses as its LED.
pub const LED_LINE: u8 = 2;
/// The GPIO line the heartbeat firmware uses as RS-485 driver enable.
pub const DRIVER_ENABLE_LINE: u8 = 3;
/// The UART port the heartbeat firmware uses as its console.
pub const CONSOLE_PORT: u8 = 0;

/// The client: firmware written once against [`Hal`], with no platform switch.
///
/// It logs a boot line, blinks the LED `blinks` times, answers every command received on
/// the console over the half-duplex link and logs that it is done.
///
/// ```
/// use gof_creational::abstract_factory::{heartbeat, SimBoard, CONSOLE_PORT};
///
/// let mut board = SimBoard::default();
/// board.receive(CONSOLE_PORT, b"status\n");
/// let report = heartbeat(&mut board, 1)?;
/// assert_eq!(report.commands, ["status"]);
/// # Ok::<(), gof_creational::Error>(())
/// ```
pub fn heartbeat<H: Hal>(hal: &mut H, blinks: u32) -> Result<HeartbeatReport, Error> {
    let factory = format!("{} (concrete factory)", short::<H>());
    seq!(CLIENT => factory, "gpio(LED_LINE), gpio(DRIVER_ENABLE_LINE)");
    let mut led = hal.gpio(LED_LINE)?;
    let mut driver_enable = hal.gpio(DRIVER_ENABLE_LINE)?;
    seq!(reply factory => CLIENT, "{0}, {0}", short::<H::Line>());
    seq!(CLIENT => factory, "timer(), uart(CONSOLE_PORT)");
    let mut timer = hal.timer();
    let mut console = hal.uart(CONSOLE_PORT)?;
    seq!(reply factory => CLIENT, "{}, {}", short::<H::Timer>(), short::<H::Uart>());

    console.log_line(&timer, &format!("boot on {}", H::FAMILY))?;
    let led_level = timer.blink(&mut led, blinks, 10)?;
    seq!(CLIENT => short::<H::Uart>(), "read_available()");
    let received = console.read_available()?;
    let commands: Vec<String> = String::from_utf8_lossy(&received)
        .lines()
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect();
    for command in &commands {
        console.write_half_duplex(&mut driver_enable, format!("ack {command}\n").as_bytes())?;
    }
    console.log_line(&timer, "heartbeat done")?;
    Ok(HeartbeatReport {
        family: H::FAMILY,
        led: led_level,
        commands,
    })
}

// ---------------------------------------------------------------------------------------------
// The Linux host family: files laid out like /sys/class/gpio and tty devices.
// ---------------------------------------------------------------------------------------------

/// Concrete factory for a Linux host: products backed by files under a root directory.
///
/// GPIO line `n` is the file `<root>/gpio/gpio<n>/value` holding `0` or `1`, like sysfs;
/// UART port `n` transmits by appending to `<root>/tty/ttyS<n>.tx` and receives by reading
/// new bytes from `<root>/tty/ttyS<n>.rx`.
/// Pointing the root at a tmpfs gives an in-memory host; the timer is the host's monotonic clock.
///
/// ```
/// use gof_creational::abstract_factory::{GpioLine, Hal, Level, LinuxHost};
///
/// let root = std::env::temp_dir().join(format!("gof-hal-doc-{}", std::process::id()));
/// let mut host = LinuxHost::open(&root)?;
/// let mut led = host.gpio(17)?;
/// led.set(Level::High)?;
/// assert_eq!(std::fs::read_to_string(root.join("gpio/gpio17/value"))?, "1\n");
/// # std::fs::remove_dir_all(&root)?;
/// # Ok::<(), gof_creational::Error>(())
/// ```
#[derive(Debug)]
pub struct LinuxHost {
    id: BoardId,
    root: PathBuf,
    started: Instant,
    lines_taken: BTreeSet<u8>,
    ports_taken: BTreeSet<u8>,
}

impl LinuxHost {
    /// How many GPIO lines the host offers.
    pub const LINES: u8 = 64;
    /// How many UART ports the host offers.
    pub const PORTS: u8 = 4;

    /// Opens (creating if needed) a host rooted at `root`.
    pub fn open(root: impl AsRef<Path>) -> Result<LinuxHost, Error> {
        let root = root.as_ref().to_path_buf();
        fs::create_dir_all(root.join("gpio"))?;
        fs::create_dir_all(root.join("tty"))?;
        Ok(LinuxHost {
            id: BoardId::next(),
            root,
            started: Instant::now(),
            lines_taken: BTreeSet::new(),
            ports_taken: BTreeSet::new(),
        })
    }

    /// The directory the host's files live in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The path of UART port `port`'s transmit file.
    pub fn tx_path(&self, port: u8) -> PathBuf {
        self.root.join(format!("tty/ttyS{port}.tx"))
    }

    /// The path of UART port `port`'s receive file.
    pub fn rx_path(&self, port: u8) -> PathBuf {
        self.root.join(format!("tty/ttyS{port}.rx"))
    }

    /// The path of GPIO line `line`'s value file.
    pub fn value_path(&self, line: u8) -> PathBuf {
        self.root.join(format!("gpio/gpio{line}/value"))
    }
}

impl Hal for LinuxHost {
    const FAMILY: &'static str = "linux host";
    type Line = HostLine;
    type Timer = HostTimer;
    type Uart = HostUart;

    fn id(&self) -> BoardId {
        self.id
    }

    fn gpio(&mut self, line: u8) -> Result<HostLine, Error> {
        if line >= Self::LINES {
            return Err(Error::NoSuchLine {
                line,
                lines: Self::LINES,
            });
        }
        if !self.lines_taken.insert(line) {
            return Err(Error::InUse {
                product: format!("GPIO line {line}"),
            });
        }
        let value = self.value_path(line);
        if let Some(dir) = value.parent() {
            fs::create_dir_all(dir)?;
        }
        // Exporting a line drives it low, as a freshly configured output would be.
        fs::write(&value, "0\n")?;
        Ok(HostLine {
            board: self.id,
            line,
            value,
        })
    }

    fn timer(&mut self) -> HostTimer {
        HostTimer {
            board: self.id,
            started: self.started,
        }
    }

    fn uart(&mut self, port: u8) -> Result<HostUart, Error> {
        if port >= Self::PORTS {
            return Err(Error::NoSuchPort {
                port,
                ports: Self::PORTS,
            });
        }
        if !self.ports_taken.insert(port) {
            return Err(Error::InUse {
                product: format!("UART port {port}"),
            });
        }
        let tx = self.tx_path(port);
        fs::write(&tx, "")?;
        let rx = self.rx_path(port);
        OpenOptions::new().create(true).append(true).open(&rx)?;
        Ok(HostUart {
            board: self.id,
            port,
            tx,
            rx,
            read_offset: 0,
        })
    }
}

/// Concrete product: a Linux host GPIO line (a sysfs-like value file).
#[derive(Debug)]
pub struct HostLine {
    board: BoardId,
    line: u8,
    value: PathBuf,
}

impl BoardProduct for HostLine {
    fn board(&self) -> BoardId {
        self.board
    }
}

impl GpioLine for HostLine {
    fn line(&self) -> u8 {
        self.line
    }
    fn set(&mut self, level: Level) -> Result<(), Error> {
        fs::write(
            &self.value,
            if level == Level::High { "1\n" } else { "0\n" },
        )?;
        Ok(())
    }
    fn level(&self) -> Result<Level, Error> {
        match fs::read_to_string(&self.value)?.trim() {
            "0" => Ok(Level::Low),
            "1" => Ok(Level::High),
            other => Err(Error::Malformed {
                reason: format!("{} holds `{other}`, not 0 or 1", self.value.display()),
            }),
        }
    }
}

/// Concrete product: the Linux host's monotonic clock.
#[derive(Debug)]
pub struct HostTimer {
    board: BoardId,
    started: Instant,
}

impl BoardProduct for HostTimer {
    fn board(&self) -> BoardId {
        self.board
    }
}

impl Timer for HostTimer {
    type Line = HostLine;
    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
    fn delay_ms(&mut self, ms: u64) {
        // A real delay: this is the host's timer, not a synchronisation device.
        std::thread::sleep(Duration::from_millis(ms));
    }
}

/// Concrete product: a Linux host serial port (a transmit file and a receive file).
#[derive(Debug)]
pub struct HostUart {
    board: BoardId,
    port: u8,
    tx: PathBuf,
    rx: PathBuf,
    read_offset: u64,
}

impl BoardProduct for HostUart {
    fn board(&self) -> BoardId {
        self.board
    }
}

impl Uart for HostUart {
    type Line = HostLine;
    type Timer = HostTimer;
    fn port(&self) -> u8 {
        self.port
    }
    fn write(&mut self, bytes: &[u8]) -> Result<(), Error> {
        OpenOptions::new()
            .append(true)
            .open(&self.tx)?
            .write_all(bytes)?;
        Ok(())
    }
    fn read_available(&mut self) -> Result<Vec<u8>, Error> {
        let mut file = fs::File::open(&self.rx)?;
        file.seek(SeekFrom::Start(self.read_offset))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        self.read_offset += bytes.len() as u64;
        Ok(bytes)
    }
}

// ---------------------------------------------------------------------------------------------
// The simulated family: in memory, virtual time, a trace of everything that happened.
// ---------------------------------------------------------------------------------------------

/// One thing that happened on a simulated board.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SimEvent {
    /// A GPIO line was driven.
    Gpio {
        /// Virtual time in milliseconds.
        at_ms: u64,
        /// The line.
        line: u8,
        /// The level it was driven to.
        level: Level,
    },
    /// Bytes were transmitted on a UART port.
    Transmit {
        /// Virtual time in milliseconds.
        at_ms: u64,
        /// The port.
        port: u8,
        /// What was sent, lossily decoded as UTF-8.
        text: String,
    },
}

impl fmt::Display for SimEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimEvent::Gpio { at_ms, line, level } => {
                write!(f, "t={at_ms:>3} ms  gpio{line} -> {level}")
            }
            SimEvent::Transmit { at_ms, port, text } => {
                write!(f, "t={at_ms:>3} ms  ttyS{port} <- {:?}", text)
            }
        }
    }
}

#[derive(Debug)]
struct SimState {
    now_ms: u64,
    levels: Vec<Level>,
    transmitted: Vec<Vec<u8>>,
    received: Vec<VecDeque<u8>>,
    trace: Vec<SimEvent>,
}

/// Concrete factory for a simulated board: in memory, deterministic, with a virtual clock.
///
/// ```
/// use gof_creational::abstract_factory::{GpioLine, Hal, Level, SimBoard, SimEvent};
///
/// let mut board = SimBoard::default();
/// board.gpio(1)?.set(Level::High)?;
/// assert_eq!(board.trace(), [SimEvent::Gpio { at_ms: 0, line: 1, level: Level::High }]);
/// # Ok::<(), gof_creational::Error>(())
/// ```
#[derive(Debug)]
pub struct SimBoard {
    id: BoardId,
    state: Rc<RefCell<SimState>>,
    lines_taken: BTreeSet<u8>,
    ports_taken: BTreeSet<u8>,
}

impl Default for SimBoard {
    /// A board with 8 GPIO lines and 2 UART ports.
    fn default() -> SimBoard {
        SimBoard::new(8, 2)
    }
}

impl SimBoard {
    /// A board with `lines` GPIO lines and `ports` UART ports.
    pub fn new(lines: u8, ports: u8) -> SimBoard {
        SimBoard {
            id: BoardId::next(),
            state: Rc::new(RefCell::new(SimState {
                now_ms: 0,
                levels: vec![Level::Low; usize::from(lines)],
                transmitted: vec![Vec::new(); usize::from(ports)],
                received: vec![VecDeque::new(); usize::from(ports)],
                trace: Vec::new(),
            })),
            lines_taken: BTreeSet::new(),
            ports_taken: BTreeSet::new(),
        }
    }

    /// Everything that happened on the board, in order.
    pub fn trace(&self) -> Vec<SimEvent> {
        self.state.borrow().trace.clone()
    }

    /// Every byte transmitted on `port` so far (empty for a port the board lacks).
    pub fn transmitted(&self, port: u8) -> Vec<u8> {
        self.state
            .borrow()
            .transmitted
            .get(usize::from(port))
            .cloned()
            .unwrap_or_default()
    }

    /// Feeds `bytes` to `port`'s receiver, as if a peer had sent them; ignored for a port the board lacks.
    pub fn receive(&self, port: u8, bytes: &[u8]) {
        if let Some(queue) = self.state.borrow_mut().received.get_mut(usize::from(port)) {
            queue.extend(bytes);
        }
    }

    /// The virtual time in milliseconds.
    pub fn now_ms(&self) -> u64 {
        self.state.borrow().now_ms
    }

    fn line_count(&self) -> u8 {
        u8::try_from(self.state.borrow().levels.len()).unwrap_or(u8::MAX)
    }

    fn port_count(&self) -> u8 {
        u8::try_from(self.state.borrow().transmitted.len()).unwrap_or(u8::MAX)
    }
}

impl Hal for SimBoard {
    const FAMILY: &'static str = "simulated board";
    type Line = SimLine;
    type Timer = SimTimer;
    type Uart = SimUart;

    fn id(&self) -> BoardId {
        self.id
    }

    fn gpio(&mut self, line: u8) -> Result<SimLine, Error> {
        let lines = self.line_count();
        if line >= lines {
            return Err(Error::NoSuchLine { line, lines });
        }
        if !self.lines_taken.insert(line) {
            return Err(Error::InUse {
                product: format!("GPIO line {line}"),
            });
        }
        Ok(SimLine {
            board: self.id,
            line,
            state: Rc::clone(&self.state),
        })
    }

    fn timer(&mut self) -> SimTimer {
        SimTimer {
            board: self.id,
            state: Rc::clone(&self.state),
        }
    }

    fn uart(&mut self, port: u8) -> Result<SimUart, Error> {
        let ports = self.port_count();
        if port >= ports {
            return Err(Error::NoSuchPort { port, ports });
        }
        if !self.ports_taken.insert(port) {
            return Err(Error::InUse {
                product: format!("UART port {port}"),
            });
        }
        Ok(SimUart {
            board: self.id,
            port,
            state: Rc::clone(&self.state),
        })
    }
}

/// Concrete product: a simulated GPIO line.
#[derive(Debug)]
pub struct SimLine {
    board: BoardId,
    line: u8,
    state: Rc<RefCell<SimState>>,
}

impl BoardProduct for SimLine {
    fn board(&self) -> BoardId {
        self.board
    }
}

impl GpioLine for SimLine {
    fn line(&self) -> u8 {
        self.line
    }
    fn set(&mut self, level: Level) -> Result<(), Error> {
        let mut state = self.state.borrow_mut();
        state.levels[usize::from(self.line)] = level;
        let at_ms = state.now_ms;
        state.trace.push(SimEvent::Gpio {
            at_ms,
            line: self.line,
            level,
        });
        Ok(())
    }
    fn level(&self) -> Result<Level, Error> {
        Ok(self.state.borrow().levels[usize::from(self.line)])
    }
}

/// Concrete product: the simulated board's virtual clock.
#[derive(Debug)]
pub struct SimTimer {
    board: BoardId,
    state: Rc<RefCell<SimState>>,
}

impl BoardProduct for SimTimer {
    fn board(&self) -> BoardId {
        self.board
    }
}

impl Timer for SimTimer {
    type Line = SimLine;
    fn now_ms(&self) -> u64 {
        self.state.borrow().now_ms
    }
    fn delay_ms(&mut self, ms: u64) {
        // Virtual time: a delay advances the clock and returns at once.
        self.state.borrow_mut().now_ms += ms;
    }
}

/// Concrete product: a simulated serial port.
#[derive(Debug)]
pub struct SimUart {
    board: BoardId,
    port: u8,
    state: Rc<RefCell<SimState>>,
}

impl BoardProduct for SimUart {
    fn board(&self) -> BoardId {
        self.board
    }
}

impl Uart for SimUart {
    type Line = SimLine;
    type Timer = SimTimer;
    fn port(&self) -> u8 {
        self.port
    }
    fn write(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let mut state = self.state.borrow_mut();
        state.transmitted[usize::from(self.port)].extend_from_slice(bytes);
        let at_ms = state.now_ms;
        let text = String::from_utf8_lossy(bytes).into_owned();
        state.trace.push(SimEvent::Transmit {
            at_ms,
            port: self.port,
            text,
        });
        Ok(())
    }
    fn read_available(&mut self) -> Result<Vec<u8>, Error> {
        Ok(self.state.borrow_mut().received[usize::from(self.port)]
            .drain(..)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn board_ids_differ() {
        assert_ne!(SimBoard::default().id(), SimBoard::default().id());
    }

    #[test]
    fn sim_refuses_missing_and_taken_products() {
        let mut board = SimBoard::new(4, 1);
        assert!(matches!(
            board.gpio(4),
            Err(Error::NoSuchLine { line: 4, lines: 4 })
        ));
        assert!(matches!(
            board.uart(1),
            Err(Error::NoSuchPort { port: 1, ports: 1 })
        ));
        board.gpio(0).unwrap();
        assert!(matches!(board.gpio(0), Err(Error::InUse { .. })));
        board.uart(0).unwrap();
        assert!(matches!(board.uart(0), Err(Error::InUse { .. })));
    }
}
