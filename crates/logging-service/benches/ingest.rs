//! Criterion benchmarks of logd's per-record hot path, without sockets: what a connection's
//! input upcall does with the bytes it read.
//!
//! The input is what `benches`' `ingest` client sends: records with 64 bytes of message text,
//! as ACE frames (little-endian CDR, 8-byte seconds) or RFC 5424 with octet counting, handed
//! to the framing in 64 KiB reads, 4 reads (the connection's read budget) per batch.
//!
//! - `decode_format`: framing, decoding into a `RecordBatch`, and formatting each stored line
//!   into memory (a sink that keeps nothing).
//! - `decode_format_store`: the same, stored by a `FileStore` (one `write(2)` per batch and
//!   host, `--fsync none`) in a temporary directory.
//!
//! Throughput is in records.

use std::hint::black_box;
use std::io;
use std::path::PathBuf;

use criterion::{BenchmarkId, Criterion, Throughput};
use logging_service::client::{Format, Message, Transport, encode};
use logging_service::record::RecordBatch;
use logging_service::server::{AceFraming, Framing, SyslogFraming};
use logging_service::store::{Durability, FileStore, Output, RecordSink, StoreConfig};

const MESSAGE_BYTES: usize = 64;
const READ: usize = 64 * 1024;
const READS_PER_BATCH: usize = 4;

fn message(seq: usize) -> String {
    let mut m = format!("blmark c0 r{seq} ");
    let fill = b"abcdefghijklmnopqrstuvwxyz";
    while m.len() < MESSAGE_BYTES {
        m.push(fill[m.len() % fill.len()] as char);
    }
    m
}

/// One batch's worth of framed records (`READS_PER_BATCH` reads) and the records it holds.
fn input(format: &str) -> (Vec<u8>, u64) {
    let mut bytes = Vec::new();
    let mut n = 0;
    let wire = match format {
        "ace" => Format::Ace,
        _ => Format::Rfc5424,
    };
    while bytes.len() < READ * READS_PER_BATCH {
        // Encoded by logc's library, as `benches`' ingest client sends them.
        let m = Message {
            host: "bench-host".into(),
            app: "ingest".into(),
            pid: Some(4242),
            facility: 1,
            severity: 6,
            msgid: None,
            structured_data: None,
            text: message(n),
            time: (1_764_000_000, 0),
        };
        bytes.extend(encode(&m, wire, Transport::Tcp).expect("valid fields"));
        n += 1;
    }
    // Whole records only: the last one may straddle the batch's end, as on a real stream.
    (bytes, n as u64)
}

/// Formats every line, as the file store does, and keeps nothing.
#[derive(Debug, Default)]
struct LinesOnly(String);

impl RecordSink for LinesOnly {
    fn write_batch(&mut self, batch: &RecordBatch) -> io::Result<()> {
        self.0.clear();
        for r in batch.iter() {
            r.write_line(&mut self.0);
        }
        black_box(self.0.len());
        Ok(())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn run<F: Framing>(framing: &mut F, bytes: &[u8], batch: &mut RecordBatch, output: &Output) {
    let mut rejected = 0;
    for read in bytes.chunks(READ) {
        framing
            .feed(read, "127.0.0.1", batch, &mut rejected)
            .expect("well-formed input");
    }
    output.write(batch);
    batch.clear();
    assert_eq!(rejected, 0);
}

fn scratch_dir() -> PathBuf {
    std::env::temp_dir().join(format!("logd-bench-{}", std::process::id()))
}

fn bench(c: &mut Criterion) {
    let dir = scratch_dir();
    for (group, store) in [("decode_format", false), ("decode_format_store", true)] {
        let mut g = c.benchmark_group(group);
        for format in ["ace", "syslog"] {
            let (bytes, records) = input(format);
            g.throughput(Throughput::Elements(records));
            let sink: Box<dyn RecordSink> = if store {
                let _ = std::fs::remove_dir_all(&dir);
                let mut cfg = StoreConfig::new(&dir);
                // Rotation (deleting the full file) keeps the directory small.
                cfg.rotate_bytes = 256 << 20;
                cfg.keep = 0;
                cfg.durability = Durability::None;
                Box::new(FileStore::open(cfg).expect("scratch directory"))
            } else {
                Box::new(LinesOnly::default())
            };
            let output = Output::new(vec![sink]);
            let mut batch = RecordBatch::new();
            g.bench_function(BenchmarkId::from_parameter(format), |b| {
                // A framing per stream; its buffer carries the partial record across batches.
                if format == "ace" {
                    let mut f = AceFraming::new(64 * 1024);
                    b.iter(|| run(&mut f, &bytes, &mut batch, &output));
                } else {
                    let mut f = SyslogFraming::new(64 * 1024);
                    b.iter(|| run(&mut f, &bytes, &mut batch, &output));
                }
            });
        }
        g.finish();
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}
