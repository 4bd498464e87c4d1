//! Strategy: the same client code runs with compile-time, run-time and closure strategies.

use gof_behavioral::strategy::{
    Deadband, Decimate, DynUplink, FnStrategy, Sample, SamplingStrategy, SendAll, Uplink,
    UplinkStats, WindowAverage,
};

/// A temperature trace: a slow ramp with a step in the middle.
fn trace() -> Vec<Sample> {
    (0..20u32)
        .map(|i| {
            let step = if i >= 10 { 2_000 } else { 0 };
            Sample::new(i * 100, 20_000 + i as i32 * 10 + step)
        })
        .collect()
}

/// The client: knows only the context's interface, never which strategy runs.
fn run_shift<S: SamplingStrategy>(uplink: &mut Uplink<S>, batches: &[&[Sample]]) -> Vec<Sample> {
    batches
        .iter()
        .flat_map(|b| uplink.send_batch(b).samples().to_vec())
        .collect()
}

#[test]
fn each_strategy_selects_as_specified() {
    let t = trace();
    let halves: [&[Sample]; 2] = [&t[..10], &t[10..]];
    let values = |s: Vec<Sample>| s.into_iter().map(|s| s.value).collect::<Vec<_>>();

    assert_eq!(run_shift(&mut Uplink::new(SendAll), &halves).len(), 20);
    assert_eq!(
        values(run_shift(&mut Uplink::new(Decimate::new(5)), &halves)),
        [20_000, 20_050, 22_100, 22_150]
    );
    // The ramp moves 10 per sample: only the step and every tenth ramp sample pass a band of 100.
    assert_eq!(
        values(run_shift(&mut Uplink::new(Deadband::new(100)), &halves)),
        [20_000, 22_100]
    );
    assert_eq!(
        values(run_shift(&mut Uplink::new(WindowAverage::new(10)), &halves)),
        [20_045, 22_145]
    );
}

#[test]
fn compile_time_run_time_and_closure_strategies_agree() {
    let t = trace();
    let batches: [&[Sample]; 1] = [&t];
    let generic = run_shift(&mut Uplink::new(Deadband::new(500)), &batches);
    let mut dynamic: DynUplink = Uplink::new(Box::new(Deadband::new(500)));
    let dyn_out = run_shift(&mut dynamic, &batches);
    let mut last: Option<i32> = None;
    let closure = FnStrategy::new(
        "closure-deadband",
        move |batch: &[Sample], out: &mut Vec<Sample>| {
            for s in batch {
                if last.is_none_or(|l| s.value.abs_diff(l) >= 500) {
                    last = Some(s.value);
                    out.push(*s);
                }
            }
        },
    );
    let closure_out = run_shift(&mut Uplink::new(closure), &batches);
    assert_eq!(generic, dyn_out);
    assert_eq!(generic, closure_out);
    assert_eq!(generic.len(), 2);
}

#[test]
fn swapping_at_run_time_keeps_the_context_going() {
    let t = trace();
    let mut uplink: DynUplink = Uplink::new(Box::new(SendAll));
    uplink.send_batch(&t[..10]);
    // Battery low: switch to report-by-exception.
    let previous = uplink.set_strategy(Box::new(Deadband::new(1_000)));
    assert_eq!(previous.name(), "send-all");
    assert_eq!(uplink.strategy().name(), "deadband");
    let frame = uplink.send_batch(&t[10..]);
    assert_eq!(frame.samples(), [t[10]]);
    assert_eq!(
        uplink.stats(),
        UplinkStats {
            samples_in: 20,
            samples_out: 11,
            frames: 2,
            bytes_out: (4 + 10 * 8) + (4 + 8),
        }
    );
}

#[test]
fn frame_bytes_match_the_reported_size() {
    let mut uplink = Uplink::new(Decimate::new(3));
    let frame = uplink.send_batch(&trace());
    assert_eq!(frame.encode().len(), frame.encoded_len());
    assert_eq!(uplink.stats().bytes_out, frame.encoded_len() as u64);
}
