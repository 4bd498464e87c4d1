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

// The consequences on docs/patterns/strategy.md, one test each (the course lists Memento's
// under Strategy by mistake; these are Strategy's own).

/// A strategy the crate does not know: the largest reading of each run of `run` samples.
#[derive(Debug)]
struct PeakOfRun {
    run: usize,
}

impl SamplingStrategy for PeakOfRun {
    fn name(&self) -> &str {
        "peak-of-run"
    }

    fn reduce(&mut self, batch: &[Sample], out: &mut Vec<Sample>) {
        out.extend(
            batch
                .chunks(self.run)
                .filter_map(|run| run.iter().max_by_key(|s| s.value).copied()),
        );
    }
}

/// Families of related algorithms: one client function ships through every member of the
/// family, and what differs is only what each selects from the same input.
#[test]
fn families_of_related_algorithms_run_under_one_client_function() {
    let t = trace();
    let batches: [&[Sample]; 2] = [&t[..10], &t[10..]];
    let family: Vec<Box<dyn SamplingStrategy + Send>> = vec![
        Box::new(SendAll),
        Box::new(Decimate::new(5)),
        Box::new(Deadband::new(100)),
        Box::new(WindowAverage::new(10)),
    ];
    let kept: Vec<(String, usize)> = family
        .into_iter()
        .map(|s| {
            let mut uplink: DynUplink = Uplink::new(s);
            let sent = run_shift(&mut uplink, &batches);
            (uplink.strategy().name().to_owned(), sent.len())
        })
        .collect();
    let expected = [
        ("send-all", 20),
        ("decimate", 4),
        ("deadband", 2),
        ("window-average", 2),
    ];
    assert_eq!(
        kept,
        expected.map(|(n, k)| (n.to_owned(), k)),
        "one client, four algorithms"
    );
}

/// An alternative to conditionals and to subclassing the context: a new way of thinning data,
/// written outside the crate, runs in the unchanged `Uplink` (which has no mode to `match` on
/// and no subclass to write); the framing and counters are the context's, as for the others.
#[test]
fn an_alternative_to_conditionals_a_strategy_written_outside_the_crate_needs_no_change_to_the_uplink()
 {
    let t = trace();
    let mut uplink = Uplink::new(PeakOfRun { run: 5 });
    let sent = run_shift(&mut uplink, &[&t[..10], &t[10..]]);
    assert_eq!(
        sent.iter().map(|s| s.value).collect::<Vec<_>>(),
        [20_040, 20_090, 22_140, 22_190]
    );
    assert_eq!(
        uplink.stats(),
        UplinkStats {
            samples_in: 20,
            samples_out: 4,
            frames: 2,
            bytes_out: 2 * (4 + 2 * 8),
        }
    );
    // And it swaps in at run time like the crate's own.
    let mut swappable: DynUplink = Uplink::new(Box::new(SendAll));
    swappable.set_strategy(Box::new(PeakOfRun { run: 20 }));
    assert_eq!(swappable.send_batch(&t).samples(), [t[19]]);
}

/// Choice of binding time: bound at compile time the strategy is part of the context's type
/// and costs no pointer (a stateless one costs nothing at all); bound at run time the context
/// holds a boxed trait object (a pointer and a vtable pointer) and may swap it.
#[test]
fn choice_of_binding_time_compile_time_costs_no_pointer_run_time_a_fat_one_and_swaps() {
    use std::mem::size_of;
    let stats = size_of::<UplinkStats>();
    assert_eq!(size_of::<Uplink<SendAll>>(), stats);
    assert_eq!(size_of::<DynUplink>(), stats + 2 * size_of::<usize>());
    // The same strategy gives the same frames bound either way, and only the run-time binding
    // can change while running (`swapping_at_run_time_keeps_the_context_going`).
    let t = trace();
    let mut fixed = Uplink::new(Decimate::new(4));
    let mut late: DynUplink = Uplink::new(Box::new(Decimate::new(4)));
    assert_eq!(fixed.send_batch(&t), late.send_batch(&t));
    late.set_strategy(Box::new(SendAll));
    assert_eq!(late.send_batch(&t).samples().len(), t.len());
}

/// Clients must know the strategies exist: an uplink has no default strategy, so the client
/// names one; and every strategy gets the same inputs, even those it does not need: a strategy
/// that only counts samples is still handed every sample of every batch.
#[test]
fn clients_must_know_the_strategies_and_each_strategy_gets_the_whole_batch_it_may_not_need() {
    let t = trace();
    let mut handed = Vec::new();
    let mut counted = 0;
    let count_only = FnStrategy::new("count-only", |batch: &[Sample], _out: &mut Vec<Sample>| {
        counted += batch.len();
        handed.extend_from_slice(batch);
    });
    let mut uplink = Uplink::new(count_only);
    run_shift(&mut uplink, &[&t[..7], &t[7..]]);
    drop(uplink);
    assert_eq!(counted, t.len());
    assert_eq!(handed, t, "the values and times it never looks at came too");
}

/// More objects: each strategy is a value of its own. A stateless one is zero-sized and can
/// be copied into any number of contexts for free (the Flyweight relation); a stateful one
/// keeps its state per object, so two streams need two objects, and one object shared by two
/// streams mixes them.
#[test]
fn more_objects_stateless_strategies_are_free_and_stateful_ones_are_one_per_stream() {
    assert_eq!(std::mem::size_of::<SendAll>(), 0);
    let (mut a, mut b) = (Uplink::new(SendAll), Uplink::new(SendAll));
    assert_eq!(a.send_batch(&trace()), b.send_batch(&trace()));

    let t = trace();
    let (first, second) = (&t[..3], &t[3..6]);
    // Two sensors, each with its own decimator: each keeps its first sample.
    let mut own_a = Uplink::new(Decimate::new(2));
    let mut own_b = Uplink::new(Decimate::new(2));
    assert_eq!(own_a.send_batch(first).samples(), [t[0], t[2]]);
    assert_eq!(own_b.send_batch(second).samples(), [t[3], t[5]]);
    // One decimator for both: its phase runs on from the first sensor into the second.
    let mut shared = Uplink::new(Decimate::new(2));
    assert_eq!(shared.send_batch(first).samples(), [t[0], t[2]]);
    assert_eq!(shared.send_batch(second).samples(), [t[4]]);
}
