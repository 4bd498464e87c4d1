//! Strategy on a sensor node: one uplink (the context) thins its temperature data with interchangeable strategies,
//! chosen at compile time, swapped at run time when the battery runs low, or written as a closure.
//!
//! Run with `cargo run -p gof-behavioral --example strategy_sensor_compression`.

use gof_behavioral::strategy::{
    Deadband, Decimate, DynUplink, FnStrategy, Sample, SamplingStrategy, SendAll, Uplink,
    WindowAverage,
};

/// Ten minutes of readings at 1 Hz, in m°C: a slow triangle wave, a little deterministic noise, and a step when a heater starts.
fn trace() -> Vec<Sample> {
    let mut noise: u32 = 12_345;
    (0..600u32)
        .map(|t| {
            noise = noise.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let jitter = (noise >> 16) as i32 % 41 - 20; // -20..=20
            let phase = (t % 300) as i32;
            let wave = if phase < 150 {
                phase * 10
            } else {
                (300 - phase) * 10
            };
            let heater = if t >= 420 { 3_000 } else { 0 };
            Sample::new(t * 1_000, 21_000 + wave + heater + jitter)
        })
        .collect()
}

/// The client: ships the trace in one-minute batches; it never names the strategy it runs.
fn ship<S: SamplingStrategy>(uplink: &mut Uplink<S>, trace: &[Sample]) {
    for minute in trace.chunks(60) {
        uplink.send_batch(minute);
    }
}

fn report<S: SamplingStrategy>(uplink: &Uplink<S>, baseline: u64) {
    let s = uplink.stats();
    println!(
        "{:<16} kept {:>3}/{} samples, {:>4} bytes on air ({:>5.1}% of send-all)",
        uplink.strategy().name(),
        s.samples_out,
        s.samples_in,
        s.bytes_out,
        100.0 * s.bytes_out as f64 / baseline as f64
    );
}

fn main() -> std::io::Result<()> {
    // `cargo xtask demo --diagrams` draws the Strategy page's sequence diagram from the run-time
    // part below (the compile-time part sends the same frames through fixed strategies).
    let diagram = pattern_core::diagram::Diagram::from_env("strategy_sensor_compression");
    diagram.pause();
    let trace = trace();

    println!("== Compile time: the strategy is a type parameter ==");
    let mut baseline = Uplink::new(SendAll);
    ship(&mut baseline, &trace);
    let all_bytes = baseline.stats().bytes_out;
    report(&baseline, all_bytes);
    let mut decimate = Uplink::new(Decimate::new(10));
    ship(&mut decimate, &trace);
    report(&decimate, all_bytes);
    let mut average = Uplink::new(WindowAverage::new(30));
    ship(&mut average, &trace);
    report(&average, all_bytes);
    let mut deadband = Uplink::new(Deadband::new(250));
    ship(&mut deadband, &trace);
    report(&deadband, all_bytes);
    let steps: Vec<String> = deadband_values(&trace, 1_000);
    println!("deadband of 1 C reports: {}", steps.join(", "));

    println!();
    println!("== Run time: swap the strategy when the battery runs low ==");
    let mut uplink: DynUplink = Uplink::new(Box::new(SendAll));
    diagram.resume();
    for (minute, batch) in trace.chunks(60).enumerate() {
        let battery = 100 - minute as u32 * 9;
        if battery < 60 && uplink.strategy().name() == "send-all" {
            diagram.note("client", &format!("battery {battery}%"));
            let old = uplink.set_strategy(Box::new(Deadband::new(250)));
            println!(
                "minute {minute}: battery {battery}%, switching {} -> deadband",
                old.name()
            );
        }
        let frame = uplink.send_batch(batch);
        println!(
            "minute {minute}: {:<9} sent {:>2} samples in {:>3} bytes",
            uplink.strategy().name(),
            frame.samples().len(),
            frame.encoded_len()
        );
    }
    diagram.pause();
    report(&uplink, all_bytes);

    println!();
    println!("== A closure as a strategy: only readings above 25 C ==");
    let mut hot = Uplink::new(FnStrategy::new(
        "over-25C",
        |batch: &[Sample], out: &mut Vec<Sample>| {
            out.extend(batch.iter().filter(|s| s.value > 25_000))
        },
    ));
    ship(&mut hot, &trace);
    report(&hot, all_bytes);
    diagram.finish()
}

/// The values a 1 °C deadband reports, in °C with one decimal.
fn deadband_values(trace: &[Sample], band: u32) -> Vec<String> {
    let mut uplink = Uplink::new(Deadband::new(band));
    trace
        .chunks(60)
        .flat_map(|b| uplink.send_batch(b).samples().to_vec())
        .map(|s| format!("{}s:{:.1}", s.at_ms / 1_000, f64::from(s.value) / 1_000.0))
        .collect()
}
