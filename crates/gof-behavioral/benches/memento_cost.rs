//! What mementos cost: bytes held and time taken by full snapshots versus delta mementos, on the same edits.
//!
//! Run with `cargo bench -p gof-behavioral --bench memento_cost`.
//! The byte counts are printed first; criterion then times the two undo stacks.

// `criterion_group!` generates a public function without docs.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group};
use gof_behavioral::memento::{
    ChannelConfig, ConfigCommand, DeviceConfig, Originator, Snapshotting, UndoStack,
};

const EDITS: usize = 100;

fn gateway(channels: usize) -> DeviceConfig {
    let mut d = DeviceConfig::new("gw-bench").expect("short name");
    for i in 0..channels {
        d.add_channel(ChannelConfig::new(format!("probe-{i:02}"), 0).expect("short label"))
            .expect("within the channel limit");
    }
    d
}

fn edit(i: usize, channels: usize) -> ConfigCommand {
    ConfigCommand::SetThreshold {
        channel: i % channels,
        threshold: i as i32,
    }
}

fn delta_history(channels: usize) -> (DeviceConfig, UndoStack<DeviceConfig, ConfigCommand>) {
    let mut d = gateway(channels);
    let mut stack = UndoStack::with_limit(EDITS);
    for i in 0..EDITS {
        stack.apply(&mut d, edit(i, channels)).expect("valid edit");
    }
    (d, stack)
}

fn full_history(
    channels: usize,
) -> (
    DeviceConfig,
    UndoStack<DeviceConfig, Snapshotting<ConfigCommand>>,
) {
    let mut d = gateway(channels);
    let mut stack = UndoStack::with_limit(EDITS);
    for i in 0..EDITS {
        stack
            .apply(&mut d, Snapshotting(edit(i, channels)))
            .expect("valid edit");
    }
    (d, stack)
}

fn print_memory_cost() {
    println!("memory held by an undo history of {EDITS} threshold edits (commands included):");
    for channels in [1, 8, 32] {
        let (d, delta) = delta_history(channels);
        let (_, full) = full_history(channels);
        println!(
            "  {channels:>2} channel(s): delta {:>7} B, full {:>7} B, full/delta = {:>5.1}x; one memento encodes to {} B",
            delta.footprint(),
            full.footprint(),
            full.footprint() as f64 / delta.footprint() as f64,
            d.save().encoded_len(),
        );
    }
}

fn undo_stacks(c: &mut Criterion) {
    let mut group = c.benchmark_group("apply_and_undo_100_edits");
    for channels in [1, 8, 32] {
        group.bench_with_input(BenchmarkId::new("delta", channels), &channels, |b, &n| {
            b.iter(|| {
                let (mut d, mut stack) = delta_history(n);
                while stack.undo(&mut d).is_some() {}
                black_box(d)
            });
        });
        group.bench_with_input(BenchmarkId::new("full", channels), &channels, |b, &n| {
            b.iter(|| {
                let (mut d, mut stack) = full_history(n);
                while stack.undo(&mut d).is_some() {}
                black_box(d)
            });
        });
    }
    group.finish();
}

fn encoding(c: &mut Criterion) {
    let memento = gateway(32).save();
    let bytes = memento.to_bytes();
    c.bench_function("encode_32_channels", |b| {
        b.iter(|| black_box(&memento).to_bytes())
    });
    c.bench_function("decode_32_channels", |b| {
        b.iter(|| gof_behavioral::memento::ConfigMemento::from_bytes(black_box(&bytes)))
    });
}

criterion_group!(benches, undo_stacks, encoding);

fn main() {
    print_memory_cost();
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
