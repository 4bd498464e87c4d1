//! Strategy: interchangeable sampling and compression algorithms for sensor data behind one trait.
//!
//! The context is an [`Uplink`], which batches sensor [`Sample`]s into radio frames.
//! What it sends is decided by a [`SamplingStrategy`], chosen three ways with the same client code:
//!
//! * at compile time, `Uplink<Deadband>`: the strategy is a type parameter, calls are static and inlined;
//! * at run time, `Uplink<Box<dyn SamplingStrategy>>` ([`DynUplink`]): swap the strategy with [`Uplink::set_strategy`] while running;
//! * as a closure, [`FnStrategy`]: a one-off algorithm without a named type.

use std::fmt;

/// One sensor reading: milliseconds since boot and the value in milli-units (m°C, mbar, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sample {
    /// Milliseconds since boot.
    pub at_ms: u32,
    /// The reading, in milli-units.
    pub value: i32,
}

impl Sample {
    /// A sample of `value` taken at `at_ms`.
    pub const fn new(at_ms: u32, value: i32) -> Self {
        Self { at_ms, value }
    }
}

/// The strategy interface: choose, from one batch of samples, the samples worth sending.
///
/// A strategy may keep state between batches (the last value sent, a phase counter), so `reduce` takes `&mut self`.
pub trait SamplingStrategy: fmt::Debug {
    /// A short name for logs.
    fn name(&self) -> &str;

    /// Appends to `out` the samples to send for `batch`, in time order.
    fn reduce(&mut self, batch: &[Sample], out: &mut Vec<Sample>);
}

impl<S: SamplingStrategy + ?Sized> SamplingStrategy for Box<S> {
    fn name(&self) -> &str {
        (**self).name()
    }

    fn reduce(&mut self, batch: &[Sample], out: &mut Vec<Sample>) {
        (**self).reduce(batch, out);
    }
}

/// Sends every sample: the baseline.
#[derive(Debug, Clone, Copy, Default)]
pub struct SendAll;

impl SamplingStrategy for SendAll {
    fn name(&self) -> &str {
        "send-all"
    }

    fn reduce(&mut self, batch: &[Sample], out: &mut Vec<Sample>) {
        out.extend_from_slice(batch);
    }
}

/// Keeps one sample in every `every`, counting across batches.
#[derive(Debug, Clone)]
pub struct Decimate {
    every: u32,
    phase: u32,
}

impl Decimate {
    /// Keeps the first sample, then one in every `every` (`every` of 0 is treated as 1).
    pub fn new(every: u32) -> Self {
        Self {
            every: every.max(1),
            phase: 0,
        }
    }
}

impl SamplingStrategy for Decimate {
    fn name(&self) -> &str {
        "decimate"
    }

    fn reduce(&mut self, batch: &[Sample], out: &mut Vec<Sample>) {
        for s in batch {
            if self.phase == 0 {
                out.push(*s);
            }
            self.phase = (self.phase + 1) % self.every;
        }
    }
}

/// Sends a sample only when it differs from the last one sent by at least `threshold` (report by exception).
///
/// The first sample is always sent.
///
/// ```
/// use gof_behavioral::strategy::{Deadband, Sample, SamplingStrategy};
///
/// let mut deadband = Deadband::new(100);
/// let batch = [Sample::new(0, 20_000), Sample::new(1, 20_050), Sample::new(2, 20_120)];
/// let mut out = Vec::new();
/// deadband.reduce(&batch, &mut out);
/// assert_eq!(out, [Sample::new(0, 20_000), Sample::new(2, 20_120)]);
/// ```
#[derive(Debug, Clone)]
pub struct Deadband {
    threshold: u32,
    last_sent: Option<i32>,
}

impl Deadband {
    /// A deadband of `threshold` milli-units.
    pub fn new(threshold: u32) -> Self {
        Self {
            threshold,
            last_sent: None,
        }
    }
}

impl SamplingStrategy for Deadband {
    fn name(&self) -> &str {
        "deadband"
    }

    fn reduce(&mut self, batch: &[Sample], out: &mut Vec<Sample>) {
        for s in batch {
            let send = self
                .last_sent
                .is_none_or(|last| s.value.abs_diff(last) >= self.threshold);
            if send {
                self.last_sent = Some(s.value);
                out.push(*s);
            }
        }
    }
}

/// Replaces each run of `window` samples with their mean, stamped with the run's last time (a box-car filter).
///
/// A shorter run at the end of a batch is averaged on its own.
#[derive(Debug, Clone)]
pub struct WindowAverage {
    window: usize,
}

impl WindowAverage {
    /// Averages over runs of `window` samples (`window` of 0 is treated as 1).
    pub fn new(window: usize) -> Self {
        Self {
            window: window.max(1),
        }
    }
}

impl SamplingStrategy for WindowAverage {
    fn name(&self) -> &str {
        "window-average"
    }

    fn reduce(&mut self, batch: &[Sample], out: &mut Vec<Sample>) {
        for run in batch.chunks(self.window) {
            let sum: i64 = run.iter().map(|s| i64::from(s.value)).sum();
            let mean = sum / run.len() as i64;
            let last = run.last().expect("chunks are never empty");
            // The mean of i32 values is within i32 range.
            out.push(Sample::new(last.at_ms, mean as i32));
        }
    }
}

/// A closure used as a strategy.
///
/// ```
/// use gof_behavioral::strategy::{FnStrategy, Sample, Uplink};
///
/// // Send only readings above 30 °C.
/// let hot_only = FnStrategy::new("hot-only", |batch: &[Sample], out: &mut Vec<Sample>| {
///     out.extend(batch.iter().filter(|s| s.value > 30_000));
/// });
/// let mut uplink = Uplink::new(hot_only);
/// let frame = uplink.send_batch(&[Sample::new(0, 25_000), Sample::new(1, 31_000)]);
/// assert_eq!(frame.samples(), [Sample::new(1, 31_000)]);
/// ```
pub struct FnStrategy<F> {
    name: String,
    f: F,
}

impl<F: FnMut(&[Sample], &mut Vec<Sample>)> FnStrategy<F> {
    /// Wraps `f` under `name`.
    pub fn new(name: impl Into<String>, f: F) -> Self {
        Self {
            name: name.into(),
            f,
        }
    }
}

impl<F> fmt::Debug for FnStrategy<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FnStrategy")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<F: FnMut(&[Sample], &mut Vec<Sample>)> SamplingStrategy for FnStrategy<F> {
    fn name(&self) -> &str {
        &self.name
    }

    fn reduce(&mut self, batch: &[Sample], out: &mut Vec<Sample>) {
        (self.f)(batch, out);
    }
}

/// One radio frame, as the uplink would transmit it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    samples: Vec<Sample>,
}

/// Bytes of a frame header: the sample count, `u32` little-endian.
pub const FRAME_HEADER_BYTES: usize = 4;
/// Bytes per encoded sample: time `u32` and value `i32`, little-endian.
pub const SAMPLE_BYTES: usize = 8;

impl Frame {
    /// The samples carried.
    pub fn samples(&self) -> &[Sample] {
        &self.samples
    }

    /// The frame's size on the air.
    pub fn encoded_len(&self) -> usize {
        FRAME_HEADER_BYTES + SAMPLE_BYTES * self.samples.len()
    }

    /// The frame's bytes: a `u32` count, then each sample's time and value, all little-endian.
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.encoded_len());
        let count =
            u32::try_from(self.samples.len()).expect("a frame holds at most u32::MAX samples");
        bytes.extend_from_slice(&count.to_le_bytes());
        for s in &self.samples {
            bytes.extend_from_slice(&s.at_ms.to_le_bytes());
            bytes.extend_from_slice(&s.value.to_le_bytes());
        }
        bytes
    }
}

/// What an uplink has done so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UplinkStats {
    /// Samples handed to the uplink.
    pub samples_in: u64,
    /// Samples sent.
    pub samples_out: u64,
    /// Frames sent.
    pub frames: u64,
    /// Bytes sent, headers included.
    pub bytes_out: u64,
}

/// The context: a sensor node's uplink, which sends what its strategy selects.
///
/// The uplink's own code (framing, accounting) never changes with the strategy.
///
/// ```
/// use gof_behavioral::strategy::{Deadband, DynUplink, Sample, SendAll, Uplink};
///
/// let batch: Vec<Sample> = (0..10).map(|i| Sample::new(i * 100, 20_000 + i as i32 * 10)).collect();
///
/// // Compile time: the strategy is part of the type.
/// let mut fixed = Uplink::new(Deadband::new(50));
/// assert_eq!(fixed.send_batch(&batch).samples().len(), 2);
///
/// // Run time: swap while running.
/// let mut swappable: DynUplink = Uplink::new(Box::new(SendAll));
/// assert_eq!(swappable.send_batch(&batch).samples().len(), 10);
/// let old = swappable.set_strategy(Box::new(Deadband::new(50)));
/// assert_eq!(old.name(), "send-all");
/// assert_eq!(swappable.send_batch(&batch).samples().len(), 2);
/// ```
#[derive(Debug)]
pub struct Uplink<S> {
    strategy: S,
    stats: UplinkStats,
}

/// An uplink whose strategy is chosen, and may be swapped, at run time.
pub type DynUplink = Uplink<Box<dyn SamplingStrategy + Send>>;

impl<S: SamplingStrategy> Uplink<S> {
    /// An uplink using `strategy`.
    pub fn new(strategy: S) -> Self {
        Self {
            strategy,
            stats: UplinkStats::default(),
        }
    }

    /// Reduces `batch` with the strategy and sends the result as one frame, which it returns.
    pub fn send_batch(&mut self, batch: &[Sample]) -> Frame {
        let strategy = format!("{} (strategy)", self.strategy.name());
        seq!("client" => "Uplink (context)", "send_batch({} samples)", batch.len());
        seq!("Uplink (context)" => strategy, "reduce(batch, out)");
        let mut samples = Vec::new();
        self.strategy.reduce(batch, &mut samples);
        seq!(reply strategy => "Uplink (context)", "{} samples kept", samples.len());
        let frame = Frame { samples };
        self.stats.samples_in += batch.len() as u64;
        self.stats.samples_out += frame.samples.len() as u64;
        self.stats.frames += 1;
        self.stats.bytes_out += frame.encoded_len() as u64;
        seq!(reply "Uplink (context)" => "client", "Frame of {} bytes", frame.encoded_len());
        frame
    }

    /// The strategy in use.
    pub fn strategy(&self) -> &S {
        &self.strategy
    }

    /// Replaces the strategy, returning the old one; the counters carry on.
    pub fn set_strategy(&mut self, strategy: S) -> S {
        seq!("client" => "Uplink (context)", "set_strategy({})", strategy.name());
        let old = std::mem::replace(&mut self.strategy, strategy);
        seq!(reply "Uplink (context)" => "client", "old strategy ({})", old.name());
        old
    }

    /// The counters so far.
    pub fn stats(&self) -> UplinkStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(n: u32) -> Vec<Sample> {
        (0..n)
            .map(|i| Sample::new(i * 10, i as i32 * 100))
            .collect()
    }

    fn run<S: SamplingStrategy>(mut s: S, batch: &[Sample]) -> Vec<Sample> {
        let mut out = Vec::new();
        s.reduce(batch, &mut out);
        out
    }

    #[test]
    fn decimate_counts_across_batches() {
        let mut d = Decimate::new(3);
        let mut out = Vec::new();
        d.reduce(&ramp(4), &mut out); // keeps 0, 3
        d.reduce(&ramp(4), &mut out); // phase continues: keeps index 2
        assert_eq!(
            out,
            [
                Sample::new(0, 0),
                Sample::new(30, 300),
                Sample::new(20, 200)
            ]
        );
    }

    #[test]
    fn deadband_remembers_last_sent_not_last_seen() {
        // Creeping drift of 40 per sample: each step is inside the band, the sum is not.
        let batch: Vec<_> = (0..8).map(|i| Sample::new(i, i as i32 * 40)).collect();
        let out = run(Deadband::new(100), &batch);
        assert_eq!(
            out.iter().map(|s| s.value).collect::<Vec<_>>(),
            [0, 120, 240]
        );
    }

    #[test]
    fn window_average_handles_a_short_tail() {
        let out = run(WindowAverage::new(4), &ramp(6));
        assert_eq!(out, [Sample::new(30, 150), Sample::new(50, 450)]);
    }

    #[test]
    fn window_average_does_not_overflow() {
        let batch = [Sample::new(0, i32::MAX), Sample::new(1, i32::MAX)];
        assert_eq!(
            run(WindowAverage::new(2), &batch),
            [Sample::new(1, i32::MAX)]
        );
    }

    #[test]
    fn frames_encode_little_endian() {
        let mut uplink = Uplink::new(SendAll);
        let frame = uplink.send_batch(&[Sample::new(0x0102_0304, -2)]);
        assert_eq!(
            frame.encode(),
            [1, 0, 0, 0, 4, 3, 2, 1, 0xfe, 0xff, 0xff, 0xff]
        );
        assert_eq!(frame.encoded_len(), 12);
        assert_eq!(uplink.stats().bytes_out, 12);
    }

    #[test]
    fn zero_parameters_are_clamped() {
        assert_eq!(run(Decimate::new(0), &ramp(3)).len(), 3);
        assert_eq!(run(WindowAverage::new(0), &ramp(3)).len(), 3);
    }
}
