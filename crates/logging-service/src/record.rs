//! The stored record and its one-line format.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::ace::{AceRecord, severity_of};
use crate::syslog::SyslogMessage;

/// One log record, whatever format it arrived in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// The sender's time when the format carries a full one (ACE; RFC 5424), else the time
    /// of receipt; RFC 3339 text.
    pub time: String,
    /// The client host: the host name in the message when it has one, else the peer address.
    pub host: String,
    /// The application (syslog APP-NAME or TAG), or `ace` for ACE records.
    pub app: String,
    /// Process id as text, or `-`.
    pub pid: String,
    /// Syslog facility (ACE records: 1, user).
    pub facility: u8,
    /// Syslog severity.
    pub severity: u8,
    /// The message.
    pub message: String,
}

/// Formats seconds and microseconds since the epoch as RFC 3339 UTC.
pub fn rfc3339(seconds: i64, micros: u32) -> String {
    // Days to civil date (Howard Hinnant's algorithm), valid over the whole i64 day range we need.
    let days = seconds.div_euclid(86_400);
    let secs = seconds.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Now, as RFC 3339 UTC.
pub fn now_rfc3339() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(d.as_secs() as i64, d.subsec_micros())
}

/// Host names become file names: keep `[A-Za-z0-9._-]`, replace the rest, never `.` or `..`.
pub fn sanitize_host(host: &str) -> String {
    let mut s: String = host
        .chars()
        .take(253)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.chars().all(|c| c == '.') {
        s = format!("_{s}");
    }
    s
}

impl LogRecord {
    /// A record from an ACE client at `peer`.
    pub fn from_ace(r: AceRecord, peer: &str) -> Self {
        LogRecord {
            time: rfc3339(r.seconds, r.micros.clamp(0, 999_999) as u32),
            host: sanitize_host(peer),
            app: "ace".into(),
            pid: r.pid.to_string(),
            facility: 1,
            severity: severity_of(r.priority),
            message: r.message,
        }
    }

    /// A record from a syslog sender at `peer`.
    pub fn from_syslog(m: SyslogMessage, peer: &str) -> Self {
        let time = match (m.dialect, m.timestamp) {
            (crate::syslog::Dialect::Rfc5424, Some(t)) => t,
            _ => now_rfc3339(),
        };
        LogRecord {
            time,
            host: sanitize_host(m.hostname.as_deref().unwrap_or(peer)),
            app: m.app.unwrap_or_else(|| "-".into()),
            pid: m.procid.unwrap_or_else(|| "-".into()),
            facility: m.facility,
            severity: m.severity,
            message: m.message,
        }
    }

    /// The stored line: `TIME HOST APP[PID] <FACILITY.SEVERITY> MESSAGE\n`, with the message's
    /// backslashes, newlines and carriage returns escaped (`\\`, `\n`, `\r`) so that one record
    /// is always one line.
    pub fn write_line(&self, out: &mut String) {
        let _ = write!(
            out,
            "{} {} {}[{}] <{}.{}> ",
            self.time,
            self.host,
            self.app.replace(' ', "_"),
            self.pid.replace(' ', "_"),
            self.facility,
            self.severity
        );
        for c in self.message.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                c => out.push(c),
            }
        }
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_instants() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            rfc3339(1_700_000_000, 123_456),
            "2023-11-14T22:13:20.123456Z"
        );
        assert_eq!(rfc3339(951_782_400, 0), "2000-02-29T00:00:00.000000Z");
        assert_eq!(rfc3339(-1, 0), "1969-12-31T23:59:59.000000Z");
    }

    #[test]
    fn hostile_hosts_cannot_escape_the_data_dir() {
        assert_eq!(sanitize_host("../../etc/passwd"), ".._.._etc_passwd");
        assert_eq!(sanitize_host(".."), "_..");
        assert_eq!(sanitize_host(""), "_");
        assert_eq!(sanitize_host("host/with space"), "host_with_space");
        assert_eq!(sanitize_host("127.0.0.1"), "127.0.0.1");
    }

    #[test]
    fn one_record_one_line() {
        let r = LogRecord {
            time: "t".into(),
            host: "h".into(),
            app: "my app".into(),
            pid: "1".into(),
            facility: 1,
            severity: 6,
            message: "two\nlines \\ and\r".into(),
        };
        let mut s = String::new();
        r.write_line(&mut s);
        assert_eq!(s, "t h my_app[1] <1.6> two\\nlines \\\\ and\\r\n");
    }
}
