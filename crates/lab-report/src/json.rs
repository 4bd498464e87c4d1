//! The JSON lines the lab's clients print and `cargo xtask` reads back, one struct each.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// What one `loadgen` run measured (the warmup excluded): one JSON line on its stdout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

/// What one `ingest` run measured: one JSON line on its stdout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestReport {
    /// Connections used.
    pub connections: usize,
    /// Records sent, over all connections.
    pub sent: u64,
    /// Marked lines found in the files when the wait ended.
    pub stored: u64,
    /// Seconds from the start of sending until the last byte was written to the sockets.
    pub send_secs: f64,
    /// Seconds from the start of sending until the files held every record (or the bound).
    pub store_secs: f64,
    /// Records stored per second of the end-to-end time (`stored / store_secs`, 0 if no time
    /// passed).
    pub records_per_sec: f64,
}

impl IngestReport {
    /// A report, its rate computed from the counts and the time.
    pub fn new(
        connections: usize,
        sent: u64,
        stored: u64,
        send_secs: f64,
        store_secs: f64,
    ) -> Self {
        let records_per_sec = if store_secs > 0.0 {
            stored as f64 / store_secs
        } else {
            0.0
        };
        Self {
            connections,
            sent,
            stored,
            send_secs,
            store_secs,
            records_per_sec,
        }
    }
}

macro_rules! json_line {
    ($type:ty, $client:literal) => {
        impl $type {
            /// The report as a one-line JSON object.
            pub fn to_json(&self) -> String {
                serde_json::to_string(self).expect("a report of numbers always serialises")
            }

            #[doc = concat!("Reads the last line of `", $client, "`'s stdout that is a JSON object.")]
            pub fn from_stdout(stdout: &str) -> Result<Self, String> {
                last_json_line(stdout, $client)
            }
        }
    };
}

json_line!(LoadReport, "loadgen");
json_line!(IngestReport, "ingest");

fn last_json_line<T: DeserializeOwned>(stdout: &str, client: &str) -> Result<T, String> {
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .ok_or_else(|| format!("{client} printed no JSON line"))?;
    serde_json::from_str(line).map_err(|e| format!("{client}'s JSON line: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load() -> LoadReport {
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
    fn load_reports_are_one_line_and_round_trip_through_stdout() {
        let text = load().to_json();
        assert!(!text.contains('\n'));
        assert!(text.contains("\"requests_per_sec\":100000.0"), "{text}");
        let stdout = format!("{{not the report\n{text}\ntrailing words\n");
        assert_eq!(LoadReport::from_stdout(&stdout), Ok(load()));
    }

    #[test]
    fn missing_or_mistyped_fields_are_named() {
        let err = LoadReport::from_stdout(r#"{"connections": 1}"#).unwrap_err();
        assert!(err.contains("message_bytes"), "{err}");
        let err = LoadReport::from_stdout(&load().to_json().replace("3.0", "\"x\"")).unwrap_err();
        assert!(err.contains("loadgen's JSON line"), "{err}");
        let err = LoadReport::from_stdout("LISTENING 127.0.0.1:1").unwrap_err();
        assert_eq!(err, "loadgen printed no JSON line");
    }

    #[test]
    fn ingest_reports_compute_their_rate_and_round_trip() {
        let r = IngestReport::new(2, 10, 10, 0.5, 2.0);
        assert_eq!(r.records_per_sec, 5.0);
        assert_eq!(IngestReport::new(1, 1, 0, 0.0, 0.0).records_per_sec, 0.0);
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(
            (v["stored"].as_u64(), v["records_per_sec"].as_f64()),
            (Some(10), Some(5.0))
        );
        assert_eq!(IngestReport::from_stdout(&r.to_json()), Ok(r));
        assert!(
            IngestReport::from_stdout("")
                .unwrap_err()
                .contains("ingest printed no JSON")
        );
    }
}
