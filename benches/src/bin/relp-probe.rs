//! `relp-probe`: a second client's round trips while another client floods logd.
//!
//! One RELP session with a window of 1: send a syslog message, wait for its `rsp 200`, again,
//! until the file `--until` exists (or `--max` round trips). A RELP answer comes once logd
//! has put the record in its place (written, and synced under `--fsync batch`), so each round
//! trip is what one client waits for while logd serves the flood: the echo-like round trip of
//! the Active Object measurement (`benches/scripts/before-after.sh` with `PROBE=`). Prints one
//! JSON line: round trips, p50, p99 and max in microseconds.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use logging_service::client::RelpClient;

/// `relp-probe`: round trips of one RELP client (window 1) until a file exists.
#[derive(Debug, Parser)]
#[command(name = "relp-probe")]
struct Args {
    /// logd's RELP listener.
    #[arg(long, value_name = "HOST:PORT")]
    addr: SocketAddr,
    /// Stop once this file exists.
    #[arg(long, value_name = "PATH")]
    until: PathBuf,
    /// Stop after this many round trips at the latest.
    #[arg(long, value_name = "N", default_value = "100000")]
    max: usize,
}

/// The `q` quantile of sorted `v`, in microseconds.
fn quantile(v: &[Duration], q: f64) -> u128 {
    let i = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1;
    v[i].as_micros()
}

fn main() -> ExitCode {
    let args = Args::parse();
    let run = || -> Result<Vec<Duration>, String> {
        let mut c = RelpClient::connect(args.addr, 1, Duration::from_secs(60))
            .map_err(|e| e.to_string())?;
        let mut n = 0;
        while n < args.max && !args.until.exists() {
            let msg = format!("<14>1 2026-01-01T00:00:00Z probe relp-probe - - - round trip {n}");
            c.send(msg.as_bytes()).map_err(|e| e.to_string())?;
            c.flush().map_err(|e| e.to_string())?;
            n += 1;
        }
        let mut lat = c.latencies().to_vec();
        c.close().map_err(|e| e.to_string())?;
        lat.sort();
        Ok(lat)
    };
    match run() {
        Ok(lat) if !lat.is_empty() => {
            println!(
                "{{\"round_trips\":{},\"p50_us\":{},\"p99_us\":{},\"max_us\":{}}}",
                lat.len(),
                quantile(&lat, 0.5),
                quantile(&lat, 0.99),
                quantile(&lat, 1.0)
            );
            ExitCode::SUCCESS
        }
        Ok(_) => {
            eprintln!(
                "relp-probe: no round trip before {} existed",
                args.until.display()
            );
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("relp-probe: {e}");
            ExitCode::FAILURE
        }
    }
}
