//! The load generator's result, as one line of JSON that `cargo xtask bench` reads back.

use serde_json::{Value, json};

/// What one load-generator run measured (the warmup excluded).
#[derive(Debug, Clone, PartialEq)]
pub struct LoadReport {
    /// Concurrent connections.
    pub connections: usize,
    /// Bytes per request.
    pub message_bytes: usize,
    /// Seconds actually measured.
    pub seconds: f64,
    /// Requests that completed (full echo received) while measuring.
    pub requests: u64,
    /// Requests that completed in the whole run, warmup included (what the server did while
    /// its CPU time was counted).
    pub total_requests: u64,
    /// `requests / seconds`.
    pub requests_per_sec: f64,
    /// Median round-trip latency, microseconds.
    pub p50_us: f64,
    /// 99th-percentile round-trip latency, microseconds.
    pub p99_us: f64,
    /// Slowest round trip, microseconds.
    pub max_us: f64,
    /// Echoes whose bytes differed from what was sent (always 0 for a correct server).
    pub mismatches: u64,
}

impl LoadReport {
    /// The report as a one-line JSON object.
    pub fn to_json(&self) -> String {
        json!({
            "connections": self.connections,
            "message_bytes": self.message_bytes,
            "seconds": self.seconds,
            "requests": self.requests,
            "total_requests": self.total_requests,
            "requests_per_sec": self.requests_per_sec,
            "p50_us": self.p50_us,
            "p99_us": self.p99_us,
            "max_us": self.max_us,
            "mismatches": self.mismatches,
        })
        .to_string()
    }

    /// Reads a report back from [`to_json`](Self::to_json)'s output.
    pub fn from_json(text: &str) -> Result<LoadReport, String> {
        let value: Value =
            serde_json::from_str(text.trim()).map_err(|e| format!("not JSON: {e}"))?;
        let float = |key: &str| {
            value
                .get(key)
                .and_then(Value::as_f64)
                .ok_or_else(|| format!("`{key}` is missing or not a number"))
        };
        let whole = |key: &str| {
            value
                .get(key)
                .and_then(Value::as_u64)
                .ok_or_else(|| format!("`{key}` is missing or not a whole number"))
        };
        Ok(LoadReport {
            connections: whole("connections")? as usize,
            message_bytes: whole("message_bytes")? as usize,
            seconds: float("seconds")?,
            requests: whole("requests")?,
            total_requests: whole("total_requests")?,
            requests_per_sec: float("requests_per_sec")?,
            p50_us: float("p50_us")?,
            p99_us: float("p99_us")?,
            max_us: float("max_us")?,
            mismatches: whole("mismatches")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> LoadReport {
        LoadReport {
            connections: 64,
            message_bytes: 64,
            seconds: 3.0,
            requests: 300_000,
            total_requests: 400_000,
            requests_per_sec: 100_000.0,
            p50_us: 610.5,
            p99_us: 1_020.0,
            max_us: 4_000.0,
            mismatches: 0,
        }
    }

    #[test]
    fn json_is_one_line_and_round_trips() {
        let text = sample().to_json();
        assert!(!text.contains('\n'));
        assert!(text.contains("\"requests_per_sec\":100000.0"), "{text}");
        assert_eq!(LoadReport::from_json(&text), Ok(sample()));
    }

    #[test]
    fn missing_or_mistyped_fields_are_named() {
        let err = LoadReport::from_json(r#"{"connections": 1}"#).unwrap_err();
        assert!(err.contains("message_bytes"), "{err}");
        let err = LoadReport::from_json(&sample().to_json().replace("3.0", "\"x\"")).unwrap_err();
        assert!(err.contains("seconds"), "{err}");
        assert!(LoadReport::from_json("LISTENING").is_err());
    }
}
