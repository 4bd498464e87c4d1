//! The client side of the logging service, as a library (`logc` is its command-line face).
//!
//! A [`Message`] is encoded in one of logd's wire formats ([`Format`]: ACE's CDR records, syslog
//! RFC 5424 or RFC 3164) and framed for a [`Transport`] (TCP with RFC 6587 octet counting, TCP
//! with newline framing, UDP datagrams, RELP). [`Client`] sends messages over one connection;
//! [`bench()`] drives several connections at a target rate; [`check`] sends a marker and waits
//! until it shows up in a data directory, or over RELP until logd acknowledges it.
//! [`RelpClient`] is a small blocking RELP sender with a window of unacknowledged messages.
//!
//! ```
//! use logging_service::client::{Format, Message, Transport, encode};
//!
//! let mut m = Message::new("valve 2 opened");
//! m.host = "plc-4".into();
//! m.app = "ladder".into();
//! m.pid = Some(33);
//! m.time = (1_700_000_000, 0);
//! let frame = encode(&m, Format::Rfc5424, Transport::Tcp).unwrap();
//! assert_eq!(frame, b"68 <13>1 2023-11-14T22:13:20.000000Z plc-4 ladder 33 - - valve 2 opened");
//! let frame = encode(&m, Format::Rfc3164, Transport::TcpNewline).unwrap();
//! assert_eq!(frame, b"<13>Nov 14 22:13:20 plc-4 ladder[33]: valve 2 opened\n");
//! ```

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::ace::{self, AceRecord, ByteOrder, SecondsLayout};
use crate::record::rfc3339;

/// The wire format of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// ACE's logging protocol: a CDR header and an `ACE_Log_Record`, as ACE 7 sends it
    /// (little-endian, 8-byte seconds).
    Ace,
    /// Syslog, RFC 5424.
    Rfc5424,
    /// BSD syslog, RFC 3164.
    Rfc3164,
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Format::Ace => "ace",
            Format::Rfc5424 => "rfc5424",
            Format::Rfc3164 => "rfc3164",
        })
    }
}

/// How records travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Transport {
    /// TCP; syslog framed by RFC 6587 octet counting, ACE by its own header.
    Tcp,
    /// TCP with syslog messages ended by a newline (RFC 6587's non-transparent framing).
    TcpNewline,
    /// One UDP datagram per syslog message.
    Udp,
    /// RELP over TCP: each syslog message acknowledged by the server once it is stored.
    Relp,
}

/// Why a message could not be encoded or sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The format cannot travel over that transport (ACE's records need TCP).
    #[error("{format} records cannot be sent over {transport}")]
    Unsupported {
        /// The format asked for.
        format: Format,
        /// The transport asked for.
        transport: Transport,
    },
    /// A field holds something its format cannot carry.
    #[error("{0}")]
    BadField(String),
    /// Connecting, sending or waiting failed.
    #[error("{what} {addr}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The peer.
        addr: SocketAddr,
        /// The cause.
        source: io::Error,
    },
    /// The RELP server refused a message or broke the protocol.
    #[error("RELP: {0}")]
    Relp(String),
    /// The marker of [`check`] did not arrive in time.
    #[error("marker {marker:?} not found under {dir} within {waited:?}")]
    NotStored {
        /// The marker text.
        marker: String,
        /// The data directory searched.
        dir: String,
        /// How long it waited.
        waited: Duration,
    },
}

/// One log record as a client states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The sending host's name (syslog HOSTNAME; ACE's format carries none, logd uses the peer address).
    pub host: String,
    /// The application (syslog APP-NAME / TAG).
    pub app: String,
    /// The process id, if any.
    pub pid: Option<u32>,
    /// Syslog facility, 0..=23.
    pub facility: u8,
    /// Syslog severity, 0 (emergency) ..= 7 (debug).
    pub severity: u8,
    /// RFC 5424 MSGID (ignored by the other formats).
    pub msgid: Option<String>,
    /// RFC 5424 STRUCTURED-DATA, as written on the wire (`[id key="value"]`; ignored by the other formats).
    pub structured_data: Option<String>,
    /// The message text.
    pub text: String,
    /// Seconds and microseconds since the Unix epoch.
    pub time: (i64, u32),
}

impl Message {
    /// A user.notice message from this host and process, stamped now.
    pub fn new(text: impl Into<String>) -> Self {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Message {
            host: local_host_name(),
            app: "logc".into(),
            pid: Some(std::process::id()),
            facility: 1,
            severity: 5,
            msgid: None,
            structured_data: None,
            text: text.into(),
            time: (now.as_secs() as i64, now.subsec_micros()),
        }
    }
}

/// This machine's host name (`/proc/sys/kernel/hostname`), or `localhost`.
pub fn local_host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// ACE's priority bit for a syslog severity (the inverse of [`ace::severity_of`] where one exists).
fn ace_priority(severity: u8) -> u32 {
    match severity {
        0 => 0x400, // LM_EMERGENCY
        1 => 0x200, // LM_ALERT
        2 => 0x100, // LM_CRITICAL
        3 => 0x080, // LM_ERROR
        4 => 0x020, // LM_WARNING
        5 => 0x010, // LM_NOTICE
        6 => 0x008, // LM_INFO
        _ => 0x004, // LM_DEBUG
    }
}

/// An RFC 5424 header field: `-` when empty; printable US-ASCII within `max` characters.
fn header_field(out: &mut String, name: &str, value: &str, max: usize) -> Result<(), ClientError> {
    if value.is_empty() {
        out.push('-');
    } else if value.len() > max || !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ClientError::BadField(format!(
            "{name} {value:?} is not 1 to {max} printable US-ASCII characters"
        )));
    } else {
        out.push_str(value);
    }
    out.push(' ');
    Ok(())
}

/// Encodes `m` as one frame of `format` for `transport` (length prefix or newline included).
pub fn encode(m: &Message, format: Format, transport: Transport) -> Result<Vec<u8>, ClientError> {
    if m.facility > 23 || m.severity > 7 {
        return Err(ClientError::BadField(format!(
            "facility {} / severity {} out of range (0..=23 / 0..=7)",
            m.facility, m.severity
        )));
    }
    if format == Format::Ace {
        if transport != Transport::Tcp {
            return Err(ClientError::Unsupported { format, transport });
        }
        let record = AceRecord {
            priority: ace_priority(m.severity),
            pid: m.pid.map_or(0, |p| p as i32),
            seconds: m.time.0,
            micros: m.time.1 as i32,
            message: m.text.clone(),
        };
        return Ok(ace::encode(&record, ByteOrder::Little, SecondsLayout::Wide));
    }
    let pri = u16::from(m.facility) * 8 + u16::from(m.severity);
    let pid = m.pid.map(|p| p.to_string()).unwrap_or_default();
    let mut msg = format!("<{pri}>");
    if format == Format::Rfc5424 {
        msg.push_str("1 ");
        msg.push_str(&rfc3339(m.time.0, m.time.1));
        msg.push(' ');
        header_field(&mut msg, "host", &m.host, 255)?;
        header_field(&mut msg, "app", &m.app, 48)?;
        header_field(&mut msg, "pid", &pid, 128)?;
        header_field(&mut msg, "msgid", m.msgid.as_deref().unwrap_or(""), 32)?;
        match m.structured_data.as_deref() {
            None | Some("") => msg.push('-'),
            Some(sd) if sd.starts_with('[') && sd.ends_with(']') => msg.push_str(sd),
            Some(sd) => {
                return Err(ClientError::BadField(format!(
                    "structured data {sd:?} must be written as [id key=\"value\"]..."
                )));
            }
        }
        msg.push(' ');
    } else {
        // RFC 3164: "Mmm dd hh:mm:ss", the day padded with a space, from the RFC 3339 stamp.
        let stamp = rfc3339(m.time.0, m.time.1);
        let month: usize = stamp[5..7].parse().expect("two digits");
        let day: u8 = stamp[8..10].parse().expect("two digits");
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        msg.push_str(&format!(
            "{} {day:>2} {} ",
            MONTHS[month - 1],
            &stamp[11..19]
        ));
        header_field(&mut msg, "host", &m.host, 255)?;
        msg.pop();
        msg.push(' ');
        if m.app.is_empty()
            || !m
                .app
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b))
        {
            return Err(ClientError::BadField(format!(
                "tag {:?} must be letters, digits, '-', '_', '.' or '/'",
                m.app
            )));
        }
        msg.push_str(&m.app);
        if !pid.is_empty() {
            msg.push_str(&format!("[{pid}]"));
        }
        msg.push_str(": ");
    }
    match transport {
        Transport::Tcp => {
            msg.push_str(&m.text);
            Ok(format!("{} {msg}", msg.len()).into_bytes())
        }
        Transport::TcpNewline => {
            if m.text.contains('\n') {
                return Err(ClientError::BadField(
                    "a newline-framed message cannot contain a newline (use --transport tcp)"
                        .into(),
                ));
            }
            msg.push_str(&m.text);
            msg.push('\n');
            Ok(msg.into_bytes())
        }
        Transport::Udp | Transport::Relp => {
            msg.push_str(&m.text);
            Ok(msg.into_bytes())
        }
    }
}

/// A blocking RELP sender: `open`, then `syslog` frames with at most `window` of them
/// unacknowledged, then `close`. Each acknowledgement's latency (from the send of its frame)
/// is kept, for [`bench()`].
#[derive(Debug)]
pub struct RelpClient {
    stream: TcpStream,
    addr: SocketAddr,
    decoder: crate::relp::RelpDecoder,
    next: u32,
    window: usize,
    /// Transaction numbers in flight, oldest first, with when they were sent.
    pending: std::collections::VecDeque<(u32, Instant)>,
    acked: u64,
    latencies: Vec<Duration>,
}

impl RelpClient {
    /// Connects and opens a session (waits up to `timeout` for the server's answer).
    pub fn connect(
        addr: SocketAddr,
        window: usize,
        timeout: Duration,
    ) -> Result<RelpClient, ClientError> {
        let io = |what| move |source| ClientError::Io { what, addr, source };
        let stream = TcpStream::connect_timeout(&addr, timeout).map_err(io("cannot connect to"))?;
        stream
            .set_nodelay(true)
            .map_err(io("cannot set TCP_NODELAY for"))?;
        stream
            .set_read_timeout(Some(timeout))
            .map_err(io("cannot set a timeout on"))?;
        let mut c = RelpClient {
            stream,
            addr,
            decoder: crate::relp::RelpDecoder::new(1 << 20),
            next: 1,
            window: window.max(1),
            pending: Default::default(),
            acked: 0,
            latencies: Vec::new(),
        };
        let offers = crate::relp::offers(&format!("logc,{},-", env!("CARGO_PKG_VERSION")));
        c.frame(crate::relp::Command::Open, offers.as_bytes())?;
        let (code, text) = c.answer()?;
        if code != 200 {
            return Err(ClientError::Relp(format!("open refused: {code} {text}")));
        }
        c.pending.clear();
        c.latencies.clear();
        c.acked = 0;
        Ok(c)
    }

    fn frame(&mut self, command: crate::relp::Command, data: &[u8]) -> Result<u32, ClientError> {
        let txnr = self.next;
        self.next = if txnr >= crate::relp::MAX_TXNR {
            1
        } else {
            txnr + 1
        };
        let mut wire = Vec::with_capacity(data.len() + 24);
        crate::relp::encode(&mut wire, txnr, command, data);
        self.stream
            .write_all(&wire)
            .map_err(|source| ClientError::Io {
                what: "cannot send to",
                addr: self.addr,
                source,
            })?;
        self.pending.push_back((txnr, Instant::now()));
        Ok(txnr)
    }

    /// Reads the next answer, which must be for the oldest frame in flight.
    fn answer(&mut self) -> Result<(u16, String), ClientError> {
        let addr = self.addr;
        let mut buf = [0u8; 8192];
        loop {
            let f = self
                .decoder
                .next_frame()
                .map_err(|e| ClientError::Relp(e.to_string()))?;
            if let Some(f) = f {
                if f.command == crate::relp::Command::ServerClose {
                    return Err(ClientError::Relp("the server closed the session".into()));
                }
                let (txnr, sent) = self.pending.pop_front().ok_or_else(|| {
                    ClientError::Relp(format!(
                        "an answer for txnr {} with nothing in flight",
                        f.txnr
                    ))
                })?;
                if f.command != crate::relp::Command::Rsp || f.txnr != txnr {
                    return Err(ClientError::Relp(format!(
                        "expected the answer for txnr {txnr}, got {} {}",
                        f.command, f.txnr
                    )));
                }
                let (code, text) =
                    crate::relp::parse_rsp(f.data).map_err(|e| ClientError::Relp(e.to_string()))?;
                self.latencies.push(sent.elapsed());
                return Ok((code, String::from_utf8_lossy(text).into_owned()));
            }
            match self.stream.read(&mut buf) {
                Ok(0) => {
                    return Err(ClientError::Relp(format!(
                        "the server closed the session with {} messages unacknowledged",
                        self.pending.len()
                    )));
                }
                Ok(n) => self.decoder.extend(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(ClientError::Io {
                        what: "no answer from",
                        addr,
                        source,
                    });
                }
            }
        }
    }

    fn take_answer(&mut self) -> Result<(), ClientError> {
        let (code, text) = self.answer()?;
        if code != 200 {
            return Err(ClientError::Relp(format!("message refused: {code} {text}")));
        }
        self.acked += 1;
        Ok(())
    }

    /// Sends one syslog message (without framing); waits for acknowledgements first while
    /// the window is full. Returns its transaction number.
    pub fn send(&mut self, message: &[u8]) -> Result<u32, ClientError> {
        while self.pending.len() >= self.window {
            self.take_answer()?;
        }
        self.frame(crate::relp::Command::Syslog, message)
    }

    /// Waits until every message sent is acknowledged.
    pub fn flush(&mut self) -> Result<(), ClientError> {
        while !self.pending.is_empty() {
            self.take_answer()?;
        }
        Ok(())
    }

    /// Messages acknowledged so far.
    pub fn acked(&self) -> u64 {
        self.acked
    }

    /// The time from sending each acknowledged message to its acknowledgement, in order.
    pub fn latencies(&self) -> &[Duration] {
        &self.latencies
    }

    /// Waits for every acknowledgement, sends `close` and waits for its answer. Returns the
    /// messages acknowledged.
    pub fn close(mut self) -> Result<u64, ClientError> {
        self.flush()?;
        self.frame(crate::relp::Command::Close, b"")?;
        self.answer()?;
        Ok(self.acked)
    }
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Transport::Tcp => "tcp",
            Transport::TcpNewline => "tcp-newline",
            Transport::Udp => "udp",
            Transport::Relp => "relp",
        })
    }
}

/// A client's TLS settings (`logc --tls`): whom to trust, which name to expect of the
/// server, and the client certificate to show, if any.
#[derive(Clone)]
pub struct ClientTls {
    config: std::sync::Arc<rustls::ClientConfig>,
    server_name: rustls::pki_types::ServerName<'static>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("server_name", &self.server_name)
            .finish()
    }
}

impl ClientTls {
    /// Trusts the CAs in `ca` (PEM), expects the server's certificate to name `server_name`,
    /// and shows the certificate chain and key in `identity` (PEM files) if given.
    pub fn new(
        ca: &Path,
        server_name: &str,
        identity: Option<(&Path, &Path)>,
    ) -> Result<ClientTls, crate::tls::TlsError> {
        let cfg = crate::tls::client_config(ca, identity, crate::tls::MinVersion::Tls12)?;
        let server_name =
            rustls::pki_types::ServerName::try_from(server_name.to_owned()).map_err(|e| {
                crate::tls::TlsError::Config(format!("server name `{server_name}`: {e}"))
            })?;
        Ok(ClientTls {
            config: cfg,
            server_name,
        })
    }

    /// Connects to `addr` and runs the handshake (blocking, within `timeout` per read).
    fn connect(
        &self,
        addr: SocketAddr,
        timeout: Duration,
    ) -> Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>, ClientError> {
        let io = |what| move |source| ClientError::Io { what, addr, source };
        let sock = TcpStream::connect_timeout(&addr, timeout).map_err(io("cannot connect to"))?;
        sock.set_nodelay(true)
            .map_err(io("cannot set TCP_NODELAY for"))?;
        sock.set_read_timeout(Some(timeout))
            .map_err(io("cannot set a timeout on"))?;
        let conn = rustls::ClientConnection::new(self.config.clone(), self.server_name.clone())
            .map_err(|e| io("cannot start TLS with")(io::Error::other(e)))?;
        let mut tls = rustls::StreamOwned::new(conn, sock);
        while tls.conn.is_handshaking() {
            tls.conn
                .complete_io(&mut tls.sock)
                .map_err(io("TLS handshake failed with"))?;
        }
        Ok(tls)
    }

    /// Connects `n` times in a row, each a full handshake; returns how long they took.
    pub fn handshakes(&self, addr: SocketAddr, n: u64) -> Result<Duration, ClientError> {
        let start = Instant::now();
        for _ in 0..n {
            let mut tls = self.connect(addr, Duration::from_secs(10))?;
            tls.conn.send_close_notify();
            let _ = tls.conn.complete_io(&mut tls.sock);
        }
        Ok(start.elapsed())
    }
}

enum Conn {
    Tcp(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
    Udp(UdpSocket),
    Relp(Box<RelpClient>),
}

/// A connection to logd over one transport, sending messages in one format.
pub struct Client {
    conn: Conn,
    addr: SocketAddr,
    format: Format,
    transport: Transport,
    sent: u64,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("addr", &self.addr)
            .field("format", &self.format)
            .field("transport", &self.transport)
            .field("sent", &self.sent)
            .finish()
    }
}

impl Client {
    /// Connects (TCP) or binds and connects a datagram socket (UDP) to `addr`.
    pub fn connect(
        addr: SocketAddr,
        format: Format,
        transport: Transport,
    ) -> Result<Client, ClientError> {
        Client::connect_with(addr, format, transport, None)
    }

    /// [`connect`](Self::connect), over TLS when `tls` is given (TCP transports only).
    pub fn connect_with(
        addr: SocketAddr,
        format: Format,
        transport: Transport,
        tls: Option<&ClientTls>,
    ) -> Result<Client, ClientError> {
        if format == Format::Ace && transport != Transport::Tcp {
            return Err(ClientError::Unsupported { format, transport });
        }
        let io = |what| move |source| ClientError::Io { what, addr, source };
        let conn = match (transport, tls) {
            (Transport::Tcp | Transport::TcpNewline, Some(tls)) => {
                Conn::Tls(Box::new(tls.connect(addr, Duration::from_secs(10))?))
            }
            (Transport::Relp | Transport::Udp, Some(_)) => {
                return Err(ClientError::Io {
                    what: "TLS is for the TCP transports only (not RELP or UDP), to",
                    addr,
                    source: io::ErrorKind::Unsupported.into(),
                });
            }
            (transport, None) => match transport {
                Transport::Tcp | Transport::TcpNewline => {
                    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(10))
                        .map_err(io("cannot connect to"))?;
                    s.set_nodelay(true)
                        .map_err(io("cannot set TCP_NODELAY for"))?;
                    Conn::Tcp(s)
                }
                Transport::Relp => Conn::Relp(Box::new(RelpClient::connect(
                    addr,
                    RELP_WINDOW,
                    Duration::from_secs(30),
                )?)),
                Transport::Udp => {
                    let local: SocketAddr = if addr.is_ipv4() {
                        "0.0.0.0:0".parse().expect("literal")
                    } else {
                        "[::]:0".parse().expect("literal")
                    };
                    let s = UdpSocket::bind(local).map_err(io("cannot bind a socket to reach"))?;
                    s.connect(addr).map_err(io("cannot connect to"))?;
                    Conn::Udp(s)
                }
            },
        };
        Ok(Client {
            conn,
            addr,
            format,
            transport,
            sent: 0,
        })
    }

    /// Encodes and sends one message.
    pub fn send(&mut self, m: &Message) -> Result<(), ClientError> {
        let frame = encode(m, self.format, self.transport)?;
        self.send_frame(&frame)
    }

    /// Sends an already encoded frame (from [`encode`] with this client's format and transport).
    pub fn send_frame(&mut self, frame: &[u8]) -> Result<(), ClientError> {
        let addr = self.addr;
        let io = |source| ClientError::Io {
            what: "cannot send to",
            addr,
            source,
        };
        match &mut self.conn {
            Conn::Tcp(s) => s.write_all(frame).map_err(io)?,
            Conn::Tls(s) => s.write_all(frame).map_err(io)?,
            Conn::Udp(s) => {
                s.send(frame).map_err(io)?;
            }
            Conn::Relp(c) => {
                c.send(frame)?;
            }
        }
        self.sent += 1;
        Ok(())
    }

    /// Sends `count` frames, encoded back to back in `frames` (each from [`encode`] with this
    /// client's format and transport), with one write: over TLS, one TLS record while they fit
    /// in 16 KiB. TCP transports only: a datagram or a RELP frame carries one message.
    pub fn send_frames(&mut self, frames: &[u8], count: u64) -> Result<(), ClientError> {
        let addr = self.addr;
        let io = |source| ClientError::Io {
            what: "cannot send to",
            addr,
            source,
        };
        match &mut self.conn {
            Conn::Tcp(s) => s.write_all(frames).map_err(io)?,
            Conn::Tls(s) => s.write_all(frames).map_err(io)?,
            Conn::Udp(_) | Conn::Relp(_) => {
                return Err(ClientError::Io {
                    what: "several messages in one write are for the TCP transports only, to",
                    addr,
                    source: io::ErrorKind::Unsupported.into(),
                });
            }
        }
        self.sent += count;
        Ok(())
    }

    /// Messages sent so far.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// The acknowledgement latencies so far (RELP only; empty for other transports).
    pub fn latencies(&self) -> &[Duration] {
        match &self.conn {
            Conn::Relp(c) => c.latencies(),
            _ => &[],
        }
    }

    /// Ends the stream and, over TCP, waits until logd has closed its side, which it does only
    /// after it has handled every record received (up to `timeout`); over RELP, waits until
    /// logd acknowledged every message (it does once each is stored), then closes the session.
    pub fn finish(self, timeout: Duration) -> Result<u64, ClientError> {
        self.finish_with_latencies(timeout).map(|(n, _)| n)
    }

    /// [`finish`](Self::finish), also returning the acknowledgement latencies (RELP).
    pub fn finish_with_latencies(
        self,
        timeout: Duration,
    ) -> Result<(u64, Vec<Duration>), ClientError> {
        let addr = self.addr;
        let io = |what| move |source| ClientError::Io { what, addr, source };
        if let Conn::Relp(mut c) = self.conn {
            c.flush()?;
            let latencies = std::mem::take(&mut c.latencies);
            c.close()?;
            return Ok((self.sent, latencies));
        }
        if let Conn::Tls(mut s) = self.conn {
            // close_notify, then wait for logd's close (it closes once it handled everything).
            s.conn.send_close_notify();
            s.flush().map_err(io("cannot send to"))?;
            s.sock
                .set_read_timeout(Some(timeout))
                .map_err(io("cannot set a timeout on"))?;
            let mut sink = [0u8; 512];
            loop {
                match s.read(&mut sink) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
                    Err(e) => return Err(io("no end of stream from")(e)),
                }
            }
            return Ok((self.sent, Vec::new()));
        }
        if let Conn::Tcp(mut s) = self.conn {
            s.shutdown(Shutdown::Write)
                .map_err(io("cannot half-close"))?;
            s.set_read_timeout(Some(timeout))
                .map_err(io("cannot set a timeout on"))?;
            let mut sink = [0u8; 512];
            loop {
                match s.read(&mut sink) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(io("no end of stream from")(e)),
                }
            }
        }
        Ok((self.sent, Vec::new()))
    }
}

/// Messages a [`Client`] over RELP keeps unacknowledged at most.
pub const RELP_WINDOW: usize = 128;

/// What [`bench()`] does.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// Records to send in all.
    pub count: u64,
    /// Target records per second over all connections; 0 for as fast as possible.
    pub rate: u64,
    /// Connections (for UDP: sockets) sending at once.
    pub conns: usize,
    /// The wire format.
    pub format: Format,
    /// The transport.
    pub transport: Transport,
    /// Bytes of message text per record.
    pub size: usize,
    /// Over TLS (TCP transports).
    pub tls: Option<ClientTls>,
    /// Bytes per write over the TCP transports: 0 writes each record on its own (over TLS,
    /// one TLS record per record); `N` gathers as many whole records as fit in `N` bytes (at
    /// least one) into each write, which over TLS is one TLS record while `N` is at most
    /// 16 KiB. rsyslog's `omfwd` does the latter when it has a backlog: it gathers frames in a
    /// 16 KiB send buffer and writes it when full and at the end of each batch.
    pub write_bytes: usize,
}

/// What [`bench()`] measured.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchReport {
    /// Records sent.
    pub sent: u64,
    /// Records not sent because a send failed (the connection is given up).
    pub errors: u64,
    /// From the first send to the last connection's end.
    pub elapsed: Duration,
    /// Over RELP, each record's time from its send to logd's acknowledgement (which logd
    /// sends once the record is stored), sorted; empty for transports that do not acknowledge.
    pub latencies: Vec<Duration>,
}

impl BenchReport {
    /// Records sent per second.
    pub fn rate(&self) -> f64 {
        self.sent as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The acknowledgement latency at quantile `q` (0.5: the median), when measured.
    pub fn latency(&self, q: f64) -> Option<Duration> {
        if self.latencies.is_empty() {
            return None;
        }
        let i = ((self.latencies.len() - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize;
        Some(self.latencies[i])
    }
}

/// Sends `cfg.count` records over `cfg.conns` connections, paced to `cfg.rate`, and waits for
/// logd to close each TCP connection (so every record sent was handled). `progress` is called
/// from the calling thread about every 100 ms with the records sent so far.
pub fn bench(
    addr: SocketAddr,
    cfg: &BenchConfig,
    mut progress: impl FnMut(u64),
) -> Result<BenchReport, ClientError> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    let conns = cfg.conns.max(1);
    let mut clients = Vec::with_capacity(conns);
    for _ in 0..conns {
        clients.push(Client::connect_with(
            addr,
            cfg.format,
            cfg.transport,
            cfg.tls.as_ref(),
        )?);
    }
    let sent = Arc::new(AtomicU64::new(0));
    let text: String = "x".repeat(cfg.size);
    let start = Instant::now();
    let workers: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, mut client)| {
            let share = cfg.count / conns as u64 + u64::from((i as u64) < cfg.count % conns as u64);
            let per_conn_rate = cfg.rate as f64 / conns as f64;
            let sent = Arc::clone(&sent);
            let mut m = Message::new(text.clone());
            m.app = "logc-bench".into();
            m.host = format!("bench-{i}");
            let frame = encode(&m, cfg.format, cfg.transport);
            let write_bytes = match cfg.transport {
                Transport::Tcp | Transport::TcpNewline => cfg.write_bytes,
                Transport::Udp | Transport::Relp => 0,
            };
            let send = move || -> (u64, u64, Vec<Duration>) {
                let Ok(frame) = frame else {
                    return (0, share, Vec::new());
                };
                // Records per write, and the bytes of a full write.
                let per_write = (write_bytes / frame.len()).max(1) as u64;
                let frames = frame.repeat(per_write as usize);
                let mut n = 0;
                while n < share {
                    if per_conn_rate > 0.0 {
                        // Pace against the start, so a late send is followed by a catch-up.
                        let due = start + Duration::from_secs_f64(n as f64 / per_conn_rate);
                        if let Some(wait) = due.checked_duration_since(Instant::now()) {
                            std::thread::sleep(wait);
                        }
                    }
                    let k = per_write.min(share - n);
                    let result = if per_write == 1 {
                        client.send_frame(&frame)
                    } else {
                        client.send_frames(&frames[..k as usize * frame.len()], k)
                    };
                    if result.is_err() {
                        let latencies = client.latencies().to_vec();
                        return (n, share - n, latencies);
                    }
                    sent.fetch_add(k, Ordering::Relaxed);
                    n += k;
                }
                let acknowledging = client.transport == Transport::Relp;
                match client.finish_with_latencies(Duration::from_secs(60)) {
                    Ok((n, l)) => (n, 0, l),
                    // Over RELP a record whose acknowledgement did not come is an error.
                    Err(_) if acknowledging => (0, share, Vec::new()),
                    Err(_) => (share, 0, Vec::new()),
                }
            };
            // Each sender notes when it ended: the progress loop's wake-ups must not round
            // the elapsed time up.
            std::thread::spawn(move || (send(), Instant::now()))
        })
        .collect();
    while !workers.iter().all(|w| w.is_finished()) {
        progress(sent.load(Ordering::Relaxed));
        std::thread::park_timeout(Duration::from_millis(100));
    }
    let mut end = start;
    let mut report = BenchReport {
        sent: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
    };
    for w in workers {
        let ((ok, failed, latencies), ended) = w.join().expect("a bench sender panicked");
        end = end.max(ended);
        report.sent += ok;
        report.errors += failed;
        report.latencies.extend(latencies);
    }
    report.latencies.sort_unstable();
    report.elapsed = end.duration_since(start);
    progress(report.sent);
    Ok(report)
}

/// Sends one marker record and waits until a file under `data_dir` holds it (logd's store
/// files are read with [`crate::line::parse_line`]; other collectors' files are searched for
/// its bytes): the end-to-end check an operator runs after installing or reconfiguring logd.
/// Returns the time it took.
///
/// Over RELP the acknowledgement is the proof (logd acknowledges a record only once it is
/// stored), so `data_dir` may be `None`; when given, the marker is looked for there as well.
pub fn check(
    addr: SocketAddr,
    format: Format,
    transport: Transport,
    data_dir: Option<&Path>,
    timeout: Duration,
) -> Result<Duration, ClientError> {
    let start = Instant::now();
    let marker = format!(
        "logc-check-{}-{}",
        std::process::id(),
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
    );
    let mut client = Client::connect(addr, format, transport)?;
    client.send(&Message::new(marker.clone()))?;
    client.finish(timeout)?;
    let Some(data_dir) = data_dir else {
        if transport == Transport::Relp {
            return Ok(start.elapsed());
        }
        return Err(ClientError::BadField(
            "a data directory is needed to check a transport that does not acknowledge".into(),
        ));
    };
    loop {
        if dir_contains(data_dir, &marker) {
            return Ok(start.elapsed());
        }
        if start.elapsed() >= timeout {
            return Err(ClientError::NotStored {
                marker,
                dir: data_dir.display().to_string(),
                waited: timeout,
            });
        }
        std::thread::park_timeout(Duration::from_millis(20));
    }
}

/// Whether a file under `dir` (recursively) holds `marker`: a logd store file (`HOST.log`,
/// `HOST.log.N`) a record whose message is `marker`, read with the store's parser; any other
/// file (another collector's) the bytes of `marker`.
fn dir_contains(dir: &Path, marker: &str) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    let store: Vec<std::path::PathBuf> = crate::store::store_files(dir, true)
        .map(|f| f.into_iter().map(|(_, p)| p).collect())
        .unwrap_or_default();
    entries.flatten().any(|e| {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => dir_contains(&p, marker),
            Ok(t) if t.is_file() => {
                let parsed = store
                    .contains(&p)
                    .then(|| crate::store::read_file(&p).ok())
                    .flatten();
                match parsed {
                    Some(records) => records.iter().any(|r| r.message == marker),
                    None => std::fs::read(&p)
                        .is_ok_and(|b| memchr::memmem::find(&b, marker.as_bytes()).is_some()),
                }
            }
            _ => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg() -> Message {
        Message {
            host: "gw-1".into(),
            app: "mqttd".into(),
            pid: Some(812),
            facility: 1,
            severity: 6,
            msgid: Some("CONN".into()),
            structured_data: Some("[meta seq=\"7\"]".into()),
            text: "broker started".into(),
            time: (1_700_000_000, 250_000),
        }
    }

    #[test]
    fn rfc5424_carries_msgid_and_structured_data_and_counts_octets() {
        let f = encode(&msg(), Format::Rfc5424, Transport::Tcp).unwrap();
        let text = String::from_utf8(f).unwrap();
        let (len, rest) = text.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), rest.len());
        assert_eq!(
            rest,
            "<14>1 2023-11-14T22:13:20.250000Z gw-1 mqttd 812 CONN [meta seq=\"7\"] broker started"
        );
    }

    #[test]
    fn the_ace_frame_is_the_ace_encoder_s_with_the_mapped_priority() {
        let f = encode(&msg(), Format::Ace, Transport::Tcp).unwrap();
        let mut d = ace::AceDecoder::new(4096);
        d.extend(&f);
        let r = d.next_record().unwrap().unwrap();
        assert_eq!(ace::severity_of(r.priority), 6);
        assert_eq!((r.pid, r.seconds, r.micros), (812, 1_700_000_000, 250_000));
        assert_eq!(r.message, "broker started");
        for s in 0..=7u8 {
            let back = ace::severity_of(ace_priority(s));
            assert_eq!(back, s, "severity {s} survives ACE's priority bits");
        }
    }

    #[test]
    fn bad_fields_and_combinations_are_errors_not_garbage() {
        let mut m = msg();
        m.host = "two words".into();
        assert!(matches!(
            encode(&m, Format::Rfc5424, Transport::Tcp),
            Err(ClientError::BadField(_))
        ));
        let mut m = msg();
        m.severity = 8;
        assert!(encode(&m, Format::Rfc3164, Transport::Udp).is_err());
        let mut m = msg();
        m.structured_data = Some("meta".into());
        assert!(encode(&m, Format::Rfc5424, Transport::Udp).is_err());
        let mut m = msg();
        m.text = "two\nlines".into();
        assert!(encode(&m, Format::Rfc3164, Transport::TcpNewline).is_err());
        assert!(encode(&m, Format::Rfc3164, Transport::Tcp).is_ok());
        assert!(matches!(
            encode(&msg(), Format::Ace, Transport::Udp),
            Err(ClientError::Unsupported { .. })
        ));
    }

    #[test]
    fn rfc3164_pads_the_day_with_a_space() {
        let mut m = msg();
        m.time = (1_700_000_000 - 13 * 86_400, 0); // 1 November 2023
        let f = encode(&m, Format::Rfc3164, Transport::Udp).unwrap();
        assert_eq!(f, b"<14>Nov  1 22:13:20 gw-1 mqttd[812]: broker started");
    }
}
