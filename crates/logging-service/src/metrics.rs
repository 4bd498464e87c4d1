//! Prometheus metrics over HTTP: an Acceptor and a small HTTP/1.1 connection handler on
//! logd's own dispatcher, answering `GET /metrics` with the counters of a [`Stats`] snapshot
//! taken at scrape time, encoded by the `prometheus-client` crate.
//!
//! The registry is built anew from the snapshot on every scrape ([`encode`]), so a new
//! field of [`Stats`] is one line in [`registry`].
//! A request head is read with a size bound ([`MAX_HEAD`]) and a deadline
//! ([`REQUEST_TIMEOUT`]); anything but `GET /metrics` (or `HEAD /metrics`) is answered with
//! 404, 405, 400 or 431, and every response closes its connection, so a hostile client
//! costs only its own connection.

use std::any::Any;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;
use std::time::Duration;

use component_configurator::{Component, ComponentError};
use pattern_core::{Context, Disposition, EventHandler, Interest, Removal, TimerId, Token};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use reactor::SockStream as TcpStream;
use reactor::{Acceptor, ServiceFactory};
use wrapper_facade::{AcceptorOptions, InetAddr, SockAcceptor};

use crate::services::ServiceEnv;
use crate::store::Stats;

/// The largest request head read; a longer one is answered with 431 and closed.
pub const MAX_HEAD: usize = 8 * 1024;

/// How long a connection may take from accept to the end of its response (slowloris bound).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The content type of [`encode`]'s text (OpenMetrics, which Prometheus asks for first).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The content type of [`encode_text`]'s text (Prometheus' text format 0.0.4), served to
/// clients that do not ask for OpenMetrics (curl, `promtool check metrics`).
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Bytes a closing connection reads and throws away before it gives up on the client's
/// half-close (reading them keeps the kernel from resetting the response away).
const DRAIN_LIMIT: usize = 64 * 1024;

type Labels = [(&'static str, &'static str); 1];

fn counter(reg: &mut Registry, name: &str, help: &str, value: u64) {
    let c: Counter = Counter::default();
    c.inc_by(value);
    reg.register(name, help, c);
}

fn gauge(reg: &mut Registry, name: &str, help: &str, value: u64) {
    let g: Gauge = Gauge::default();
    g.set(i64::try_from(value).unwrap_or(i64::MAX));
    reg.register(name, help, g);
}

fn family(
    reg: &mut Registry,
    name: &str,
    help: &str,
    key: &'static str,
    values: &[(&'static str, u64)],
) {
    let f: Family<Labels, Counter> = Family::default();
    for &(label, v) in values {
        f.get_or_create(&[(key, label)]).inc_by(v);
    }
    reg.register(name, help, f);
}

/// The metrics of one snapshot, under the prefix `logd` (counters get `_total`).
pub fn registry(s: &Stats) -> Registry {
    let mut r = Registry::with_prefix("logd");
    let reg = &mut r;
    family(
        reg,
        "records_received",
        "Records received, by input",
        "input",
        &[
            ("ace", s.ace),
            ("syslog_tcp", s.syslog.saturating_sub(s.syslog_udp)),
            ("syslog_udp", s.syslog_udp),
            ("relp", s.relp),
        ],
    );
    counter(
        reg,
        "records_stored",
        "Records written to a host file as whole lines",
        s.stored,
    );
    counter(
        reg,
        "records_overflow",
        "Records stored in _overflow.log because --max-hosts host files existed",
        s.overflow,
    );
    family(
        reg,
        "records_dropped",
        "Records dropped because they could not be stored, by reason",
        "reason",
        &[
            ("dropped_pending_full", s.dropped_pending_full),
            ("dropped_write_failed", s.dropped_write_failed),
        ],
    );
    family(
        reg,
        "records_intercepted",
        "Records taken by an interceptor (crate::intercept), by what became of them",
        "fate",
        &[
            ("dropped", s.intercepted.saturating_sub(s.rate_limited)),
            ("rate_limited", s.rate_limited),
            ("routed", s.routed),
            ("kept_from_forwarder", s.forward_intercepted),
        ],
    );
    family(
        reg,
        "messages_refused",
        "Frames or messages refused, by reason",
        "reason",
        &[("rejected", s.rejected), ("udp_oversized", s.udp_oversized)],
    );
    counter(
        reg,
        "udp_kernel_drops",
        "Syslog UDP datagrams the kernel dropped because the receive buffer was full (SO_RXQ_OVFL)",
        s.udp_kernel_drops,
    );
    counter(
        reg,
        "connections_accepted",
        "TCP connections accepted",
        s.connections,
    );
    family(
        reg,
        "connections_closed",
        "TCP connections closed by logd, by reason",
        "reason",
        &[
            ("idle_closed", s.idle_closed),
            ("idle_partial", s.idle_partial),
            ("oversized_closed", s.oversized_closed),
            ("buffer_cap_closed", s.buffer_cap_closed),
            ("intercepted", s.connections_vetoed),
        ],
    );
    gauge(
        reg,
        "records_held",
        "Records held in memory for a retry of their write",
        s.held,
    );
    gauge(reg, "open_files", "Host files open", s.open_files);
    gauge(
        reg,
        "buffered_bytes",
        "Bytes held in unfinished frames",
        s.buffered_bytes,
    );
    gauge(
        reg,
        "buffered_bytes_peak",
        "The most bytes ever held in unfinished frames at once",
        s.buffered_peak,
    );
    counter(
        reg,
        "write_errors",
        "Writes to host files that failed",
        s.write_errors,
    );
    counter(reg, "syncs", "fdatasync calls", s.syncs);
    counter(
        reg,
        "torn_lines_repaired",
        "Torn last lines ended with a newline",
        s.torn_repaired,
    );
    counter(
        reg,
        "data_dir_recreated",
        "Times the data directory was made again",
        s.dir_recreated,
    );
    counter(
        reg,
        "rotate_failures",
        "Size rotations that failed",
        s.rotate_failures,
    );
    counter(
        reg,
        "backlog_pauses",
        "Times a TCP connection paused for a backlogged store",
        s.pauses,
    );
    counter(
        reg,
        "records_forwarded",
        "Records delivered upstream and removed from the spool (over RELP: acknowledged)",
        s.forwarded,
    );
    gauge(
        reg,
        "forward_queued",
        "Records waiting for the upstream, in memory or in the spool",
        s.forward_queued,
    );
    gauge(
        reg,
        "relp_in_flight",
        "Records sent upstream over RELP and not yet acknowledged",
        s.relp_in_flight,
    );
    counter(
        reg,
        "relp_resent",
        "Records sent upstream again after a RELP session broke with them unacknowledged",
        s.relp_resent,
    );
    counter(
        reg,
        "relp_bad_txnr",
        "RELP acknowledgements naming no record in flight (forged or stale), refused",
        s.relp_bad_txnr,
    );
    counter(
        reg,
        "relp_unacked_closes",
        "RELP sessions closed without acknowledging a batch that was not stored yet (the sender sends it again)",
        s.relp_unacked_closes,
    );
    if let Some(f) = &s.forwarder {
        counter(
            reg,
            "records_spooled",
            "Records the forwarder wrote to its spool on disk (memory queue full, or at a stop)",
            f.spooled,
        );
        family(
            reg,
            "records_forward_dropped",
            "Records the forwarder dropped, by reason",
            "reason",
            &f.drops(),
        );
        gauge(
            reg,
            "forward_upstream_up",
            "Whether the forwarder is connected to its upstream (1) or not (0)",
            u64::from(f.connected),
        );
        counter(
            reg,
            "forward_outages",
            "Times the upstream went away (or was away at start)",
            f.outages,
        );
        counter(
            reg,
            "forward_reconnects",
            "Connections to the upstream made again after an outage",
            f.reconnects,
        );
        counter(
            reg,
            "forward_connect_failures",
            "Connection attempts to the upstream that failed",
            f.connect_failures,
        );
        counter(
            reg,
            "forward_tls_handshake_failures",
            "TLS sessions to the upstream that ended before their handshake finished",
            f.tls_handshake_failures,
        );
    }
    counter(
        reg,
        "clickhouse_rows_inserted",
        "Rows ClickHouse answered 200 for",
        s.clickhouse_inserted,
    );
    gauge(
        reg,
        "clickhouse_queued",
        "Rows waiting for ClickHouse, in memory or in the spool",
        s.clickhouse_queued,
    );
    counter(
        reg,
        "clickhouse_rows_dropped",
        "Rows the ClickHouse spool dropped (full, its disk refused them, or unreadable)",
        s.clickhouse_dropped,
    );
    counter(
        reg,
        "clickhouse_rows_unreadable",
        "Spooled rows that could not be read back as a row, dropped (also in rows_dropped)",
        s.clickhouse_unreadable,
    );
    counter(
        reg,
        "clickhouse_inserts_failed",
        "Inserts into ClickHouse that failed (no answer, or not 200)",
        s.clickhouse_failed,
    );
    counter(
        reg,
        "clickhouse_batches_retried",
        "Batches sent to ClickHouse again after a failed insert (possible duplicates)",
        s.clickhouse_retried,
    );
    counter(
        reg,
        "accept_backoffs",
        "Times accepting paused for lack of descriptors",
        s.accept_backoffs,
    );
    counter(
        reg,
        "tls_sessions",
        "TLS sessions established and admitted",
        s.tls_sessions,
    );
    family(
        reg,
        "tls_handshake_failures",
        "TLS connections refused before any record, by reason",
        "reason",
        &[
            (
                "handshake",
                s.tls_handshake_failures
                    .saturating_sub(s.tls_not_permitted + s.tls_handshake_timeouts),
            ),
            ("not_permitted", s.tls_not_permitted),
            ("timeout", s.tls_handshake_timeouts),
        ],
    );
    family(
        reg,
        "tls_reloads",
        "TLS certificate reloads (SIGHUP), by result",
        "result",
        &[("ok", s.tls_reloads), ("failed", s.tls_reload_failures)],
    );
    counter(
        reg,
        "peer_connections_refused",
        "Connections closed at once because their peer had --max-connections-per-peer open",
        s.peer_connections_refused,
    );
    counter(
        reg,
        "peer_rate_pauses",
        "Times a connection stopped reading because its peer was over --max-rate-per-peer",
        s.peer_rate_pauses,
    );
    family(
        reg,
        "reconfigurations",
        "Reconfigurations (SIGHUP), by result",
        "result",
        &[
            (
                "ok",
                s.reconfigurations.saturating_sub(s.reconfigurations_failed),
            ),
            ("failed", s.reconfigurations_failed),
        ],
    );
    r
}

/// The exposition text of one snapshot.
pub fn encode(s: &Stats) -> String {
    let mut text = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut text, &registry(s));
    text
}

/// The same metrics in Prometheus' text format 0.0.4.
///
/// The crate encodes OpenMetrics only; the two formats differ, for what logd exposes, in
/// two points: a counter's `# HELP` and `# TYPE` lines name the family without `_total` in
/// OpenMetrics and with it in 0.0.4 (where they must name the sample), and OpenMetrics ends
/// with `# EOF`.
/// This rewrites exactly those lines of the crate's output; samples pass through untouched.
pub fn encode_text(s: &Stats) -> String {
    openmetrics_to_text(&encode(s))
}

fn openmetrics_to_text(om: &str) -> String {
    let counters: std::collections::HashSet<&str> = om
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(om.len() + 16 * counters.len());
    for line in om.lines() {
        if line == "# EOF" {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|p| Some((p, line.strip_prefix(p)?)));
        match meta {
            Some((prefix, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                if counters.contains(name) && !name.ends_with("_total") {
                    out.push_str(&format!("{prefix}{name}_total {tail}"));
                } else {
                    out.push_str(line);
                }
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// Whether a request head asks for OpenMetrics in its `Accept` header.
fn wants_openmetrics(head: &str) -> bool {
    head.lines().skip(1).any(|h| {
        h.split_once(':').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case("accept")
                && value.contains("application/openmetrics-text")
        })
    })
}

/// Takes the snapshot a scrape shows.
pub type Snapshot = Arc<dyn Fn() -> Stats + Send + Sync>;

/// Makes an [`HttpConnection`] per accepted client and starts its deadline.
pub struct HttpFactory {
    snapshot: Snapshot,
}

impl std::fmt::Debug for HttpFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpFactory").finish_non_exhaustive()
    }
}

impl HttpFactory {
    /// Connections answering with the metrics of `snapshot()`.
    pub fn new(snapshot: Snapshot) -> Self {
        HttpFactory { snapshot }
    }
}

impl ServiceFactory for HttpFactory {
    fn make_service(
        &mut self,
        stream: TcpStream,
        _peer: SocketAddr,
    ) -> Option<(Box<dyn EventHandler>, Interest)> {
        let conn = HttpConnection {
            stream,
            snapshot: self.snapshot.clone(),
            head: Vec::new(),
            state: State::Reading,
            response: Vec::new(),
            sent: 0,
            drained: 0,
        };
        Some((Box::new(conn), Interest::READ))
    }

    fn opened(&mut self, ctx: &mut dyn Context, token: Token) {
        let _ = ctx.schedule_timer(token, REQUEST_TIMEOUT, None, Box::new(()));
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Reading,
    Writing,
    /// The response is sent and the write side shut: reading to the client's close.
    Draining,
}

/// One HTTP/1.1 client: reads one request head, answers it, closes.
pub struct HttpConnection {
    stream: TcpStream,
    snapshot: Snapshot,
    head: Vec<u8>,
    state: State,
    response: Vec<u8>,
    sent: usize,
    drained: usize,
}

impl std::fmt::Debug for HttpConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConnection")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// Where the request head ends, if it has.
fn head_end(buf: &[u8]) -> Option<usize> {
    memchr::memmem::find(buf, b"\r\n\r\n")
        .map(|i| i + 4)
        .or_else(|| memchr::memmem::find(buf, b"\n\n").map(|i| i + 2))
}

/// A response: status line, headers, body (not sent for `HEAD`).
fn response(status: &str, extra: &str, content_type: &str, body: &str, with_body: bool) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n",
        body.len()
    )
    .into_bytes();
    if with_body {
        r.extend_from_slice(body.as_bytes());
    }
    r
}

fn plain(status: &str, extra: &str) -> Vec<u8> {
    response(
        status,
        extra,
        "text/plain; charset=utf-8",
        &format!("{status}\n"),
        true,
    )
}

/// The answer to a request head (without its terminating empty line).
fn answer(head: &[u8], snapshot: &dyn Fn() -> Stats) -> Vec<u8> {
    let Ok(head) = std::str::from_utf8(head) else {
        return plain("400 Bad Request", "");
    };
    let line = head.lines().next().unwrap_or("");
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return plain("400 Bad Request", "");
    };
    if !version.starts_with("HTTP/1.") || method.is_empty() || !target.starts_with('/') {
        return plain("400 Bad Request", "");
    }
    let path = target.split('?').next().unwrap_or(target);
    if path != "/metrics" {
        return plain("404 Not Found", "");
    }
    match method {
        "GET" | "HEAD" if wants_openmetrics(head) => response(
            "200 OK",
            "",
            CONTENT_TYPE,
            &encode(&snapshot()),
            method == "GET",
        ),
        "GET" | "HEAD" => response(
            "200 OK",
            "",
            TEXT_CONTENT_TYPE,
            &encode_text(&snapshot()),
            method == "GET",
        ),
        _ => plain("405 Method Not Allowed", "Allow: GET, HEAD\r\n"),
    }
}

impl HttpConnection {
    fn respond(&mut self, ctx: &mut dyn Context, response: Vec<u8>) -> Disposition {
        self.response = response;
        self.state = State::Writing;
        let d = self.write_out();
        if d == Disposition::Continue
            && self.state == State::Writing
            && let Some(me) = ctx.current()
            && ctx.set_interest(me, Interest::WRITE).is_err()
        {
            return Disposition::Close;
        }
        if self.state == State::Draining
            && let Some(me) = ctx.current()
            && ctx.set_interest(me, Interest::READ).is_err()
        {
            return Disposition::Close;
        }
        d
    }

    /// Writes what is left of the response; on the end, shuts the write side and drains.
    fn write_out(&mut self) -> Disposition {
        while self.sent < self.response.len() {
            match self.stream.write(&self.response[self.sent..]) {
                Ok(0) => return Disposition::Close,
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Disposition::Continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Disposition::Close,
            }
        }
        if self.stream.shutdown(Shutdown::Write).is_err() {
            return Disposition::Close;
        }
        self.state = State::Draining;
        self.drain()
    }

    /// Reads and discards until the client closes (it has its response).
    fn drain(&mut self) -> Disposition {
        let mut buf = [0u8; 4096];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return Disposition::Close,
                Ok(n) => {
                    self.drained += n;
                    if self.drained > DRAIN_LIMIT {
                        return Disposition::Close;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Disposition::Continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Disposition::Close,
            }
        }
    }
}

impl EventHandler for HttpConnection {
    fn handle(&self) -> Option<BorrowedFd<'_>> {
        Some(self.stream.as_fd())
    }

    fn handle_input(&mut self, ctx: &mut dyn Context) -> Disposition {
        match self.state {
            State::Reading => {}
            State::Writing => return Disposition::Continue,
            State::Draining => return self.drain(),
        }
        let mut buf = [0u8; 4096];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return Disposition::Close,
                Ok(n) => {
                    self.head.extend_from_slice(&buf[..n]);
                    if let Some(end) = head_end(&self.head) {
                        if end > MAX_HEAD {
                            return self
                                .respond(ctx, plain("431 Request Header Fields Too Large", ""));
                        }
                        let answer = answer(&self.head[..end], &*self.snapshot);
                        return self.respond(ctx, answer);
                    }
                    if self.head.len() > MAX_HEAD {
                        return self.respond(ctx, plain("431 Request Header Fields Too Large", ""));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Disposition::Continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Disposition::Close,
            }
        }
    }

    fn handle_output(&mut self, ctx: &mut dyn Context) -> Disposition {
        if self.state != State::Writing {
            return Disposition::Continue;
        }
        let d = self.write_out();
        if self.state == State::Draining
            && let Some(me) = ctx.current()
            && ctx.set_interest(me, Interest::READ).is_err()
        {
            return Disposition::Close;
        }
        d
    }

    fn handle_timeout(
        &mut self,
        _ctx: &mut dyn Context,
        _timer: TimerId,
        _act: &mut (dyn Any + Send),
    ) -> Disposition {
        if self.state == State::Reading {
            tracing::debug!("metrics: closing a connection that sent no whole request in time");
        }
        Disposition::Close
    }
}

/// Binds `addr` with logd's backlog and registers the metrics acceptor on the dispatcher;
/// returns its token and the address it got, which it also publishes in [`crate::server::Listening`].
pub fn open(env: &ServiceEnv, addr: SocketAddr) -> Result<(Token, SocketAddr), ComponentError> {
    let bind_err = |e: io::Error| ComponentError::io(format_args!("cannot listen on {addr}"), &e);
    let opts = AcceptorOptions::default()
        .backlog(env.backlog)
        .nonblocking(true)
        .reuse_addr(true);
    let listener = SockAcceptor::open(&InetAddr::from(addr), &opts).map_err(bind_err)?;
    let bound = SocketAddr::from(listener.local_addr().map_err(bind_err)?);
    let snap_env = env.clone();
    let snapshot: Snapshot = Arc::new(move || snap_env.stats());
    let acceptor = Acceptor::from_listener(listener, HttpFactory::new(snapshot));
    let token = env.register(Box::new(acceptor), Interest::ACCEPT)?;
    env.listening.lock().metrics = Some(bound);
    Ok((token, bound))
}

fn parse_metrics_args(args: &[String]) -> Result<SocketAddr, ComponentError> {
    match args {
        [flag, v] if flag == "-a" => v
            .parse()
            .map_err(|_| ComponentError::new(format!("-a: bad address `{v}` (expected IP:PORT)"))),
        _ => Err(ComponentError::new("expected -a IP:PORT")),
    }
}

/// The metrics endpoint as a svc.conf service: `static Metrics "-a 127.0.0.1:9120"`.
#[derive(Debug)]
pub struct MetricsService {
    env: ServiceEnv,
    token: Option<Token>,
    addr: Option<SocketAddr>,
}

impl MetricsService {
    /// An endpoint, not yet listening.
    pub fn new(env: ServiceEnv) -> Self {
        MetricsService {
            env,
            token: None,
            addr: None,
        }
    }
}

impl Component for MetricsService {
    fn check(&self, args: &[String]) -> Result<(), ComponentError> {
        parse_metrics_args(args).map(drop)
    }

    fn init(&mut self, args: &[String]) -> Result<(), ComponentError> {
        let (token, bound) = open(&self.env, parse_metrics_args(args)?)?;
        self.token = Some(token);
        self.addr = Some(bound);
        Ok(())
    }

    fn fini(&mut self) -> Result<(), ComponentError> {
        if let Some(t) = self.token.take() {
            self.env
                .for_each(&[t], |ctx, t| ctx.remove(t, Removal::Close));
        }
        let mut l = self.env.listening.lock();
        if l.metrics == self.addr {
            l.metrics = None;
        }
        self.addr = None;
        Ok(())
    }

    fn info(&self) -> String {
        match self.addr {
            Some(a) => format!("metrics (http) listening on {a}"),
            None => "metrics (http), not listening".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats() -> Stats {
        Stats {
            ace: 3,
            syslog: 5,
            syslog_udp: 2,
            relp: 4,
            relp_unacked_closes: 1,
            rejected: 1,
            ..Stats::default()
        }
    }

    #[test]
    fn the_text_has_every_input_and_reason() {
        let text = encode(&stats());
        assert!(
            text.contains("logd_records_received_total{input=\"ace\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("logd_records_received_total{input=\"syslog_tcp\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("logd_records_received_total{input=\"syslog_udp\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("logd_records_received_total{input=\"relp\"} 4\n"),
            "{text}"
        );
        assert!(
            text.contains("logd_relp_unacked_closes_total 1\n"),
            "{text}"
        );
        assert!(text.contains("logd_relp_in_flight 0\n"), "{text}");
        assert!(
            text.contains("logd_messages_refused_total{reason=\"rejected\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("logd_records_dropped_total{reason=\"dropped_write_failed\"} 0\n"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn the_004_text_names_counters_with_total_and_has_no_eof() {
        let text = encode_text(&stats());
        assert!(
            text.contains("# HELP logd_records_stored_total Records written"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE logd_records_stored_total counter\n"),
            "{text}"
        );
        assert!(text.contains("# TYPE logd_open_files gauge\n"), "{text}");
        assert!(
            text.contains("logd_records_received_total{input=\"ace\"} 3\n"),
            "{text}"
        );
        assert!(!text.contains("# EOF"), "{text}");
        let ct = |head: &[u8]| {
            let r = String::from_utf8(answer(head, &stats)).unwrap();
            r.lines().nth(1).unwrap().to_owned()
        };
        assert_eq!(
            ct(b"GET /metrics HTTP/1.1\r\n\r\n"),
            format!("Content-Type: {TEXT_CONTENT_TYPE}")
        );
        assert_eq!(
            ct(b"GET /metrics HTTP/1.1\r\naccept: application/openmetrics-text;version=1.0.0,text/plain;q=0.5\r\n\r\n"),
            format!("Content-Type: {CONTENT_TYPE}")
        );
    }

    #[test]
    fn requests_other_than_get_metrics_are_refused() {
        let snap = || stats();
        let status = |head: &[u8]| {
            let r = answer(head, &snap);
            String::from_utf8_lossy(&r)
                .lines()
                .next()
                .unwrap()
                .to_owned()
        };
        assert_eq!(
            status(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            "HTTP/1.1 200 OK"
        );
        assert_eq!(
            status(b"GET /metrics?x=1 HTTP/1.0\r\n\r\n"),
            "HTTP/1.1 200 OK"
        );
        assert_eq!(status(b"GET / HTTP/1.1\r\n\r\n"), "HTTP/1.1 404 Not Found");
        assert_eq!(
            status(b"POST /metrics HTTP/1.1\r\n\r\n"),
            "HTTP/1.1 405 Method Not Allowed"
        );
        assert_eq!(status(b"\xff\xfe\r\n\r\n"), "HTTP/1.1 400 Bad Request");
        assert_eq!(status(b"GET /metrics\r\n\r\n"), "HTTP/1.1 400 Bad Request");
        assert_eq!(
            status(b"GET /metrics SPDY/3\r\n\r\n"),
            "HTTP/1.1 400 Bad Request"
        );
        let head = answer(b"HEAD /metrics HTTP/1.1\r\n\r\n", &snap);
        assert!(String::from_utf8_lossy(&head).ends_with("\r\n\r\n"));
    }
}
