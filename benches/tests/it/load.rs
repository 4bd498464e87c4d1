//! The load generator against a live server: its report is consistent.

use std::time::Duration;

use benches::cli::LoadArgs;
use benches::loadgen;
use lab_report::LoadReport;

use crate::{Kind, spawn};

#[test]
fn a_short_run_reports_verified_round_trips() {
    for kind in [
        Kind::RawMio,
        Kind::Reactor,
        Kind::LeaderFollowers(2),
        Kind::HalfSync(2),
    ] {
        let args = LoadArgs {
            addr: spawn(kind),
            connections: 8,
            size: 100,
            warmup: Duration::from_millis(20),
            duration: Duration::from_millis(200),
        };
        let report = loadgen::run(&args).expect("load");
        assert_eq!((report.connections, report.message_bytes), (8, 100));
        assert!(report.total_requests >= report.requests);
        assert_eq!(report.mismatches, 0, "{kind:?}");
        assert!(report.requests > 0, "{kind:?} completed nothing");
        assert!(
            report.seconds >= 0.2,
            "measured at least the duration asked"
        );
        let rate = report.requests as f64 / report.seconds;
        assert!((report.requests_per_sec - rate).abs() < 1e-6 * rate);
        assert!(report.p50_us > 0.0 && report.p50_us <= report.p99_us);
        assert!(report.p99_us <= report.max_us);
        let back = LoadReport::from_stdout(&report.to_json()).expect("own JSON reads back");
        assert_eq!(
            (back.requests, back.p99_us),
            (report.requests, report.p99_us)
        );
        assert!((back.requests_per_sec - report.requests_per_sec).abs() < 1e-6 * rate);
    }
}

#[test]
fn a_refused_connection_is_an_error() {
    // Bind then drop: nothing listens on that port any more.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let args = LoadArgs {
        addr,
        connections: 1,
        size: 64,
        warmup: Duration::ZERO,
        duration: Duration::from_millis(10),
    };
    assert!(loadgen::run(&args).is_err());
}
