//! The abstraction side of the bridge: telemetry publishers deciding *when* to publish.

use std::time::{Duration, Instant};

use super::Link;
use crate::Error;

/// One telemetry frame as it travels on every link: `"<topic> #<seq> <value>"` in ASCII.
///
/// ```
/// use gof_structural::bridge::TelemetryFrame;
///
/// let frame = TelemetryFrame { topic: "motor/temp".into(), seq: 7, value: -1250 };
/// let bytes = frame.encode();
/// assert_eq!(bytes, b"motor/temp #7 -1250");
/// assert_eq!(TelemetryFrame::decode(&bytes)?, frame);
/// # Ok::<(), gof_structural::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TelemetryFrame {
    /// What is measured.
    pub topic: String,
    /// The publisher's sequence number, starting at 0 and counting published frames.
    pub seq: u64,
    /// The measured value, in the topic's integer unit.
    pub value: i64,
}

impl TelemetryFrame {
    /// The frame's bytes.
    pub fn encode(&self) -> Vec<u8> {
        format!("{} #{} {}", self.topic, self.seq, self.value).into_bytes()
    }

    /// Parses bytes made by [`TelemetryFrame::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let bad = |why: &str| Error::MalformedFrame(format!("telemetry frame: {why}"));
        let text = std::str::from_utf8(bytes).map_err(|_| bad("not UTF-8"))?;
        let mut parts = text.rsplitn(3, ' ');
        let value = parts
            .next()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| bad("no value"))?;
        let seq = parts
            .next()
            .and_then(|s| s.strip_prefix('#'))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("no sequence number"))?;
        let topic = parts
            .next()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| bad("no topic"))?;
        Ok(TelemetryFrame {
            topic: topic.to_owned(),
            seq,
            value,
        })
    }
}

/// The abstraction interface: a publisher is fed samples and clock ticks, and decides when a
/// frame goes out. How it goes out is the [`Link`]'s business.
///
/// Time is passed in rather than read, so publishers run the same under a test's manual clock.
/// Both methods return the sequence number of the frame they published, if any.
pub trait TelemetryPublisher {
    /// Offers a new sample taken at `now`.
    fn record(&mut self, value: i64, now: Instant) -> Result<Option<u64>, Error>;
    /// Lets time pass: publishers with a schedule publish here.
    fn tick(&mut self, now: Instant) -> Result<Option<u64>, Error>;
    /// How many frames have been published.
    fn published(&self) -> u64;
    /// The topic frames are published under.
    fn topic(&self) -> &str;
}

impl<P: TelemetryPublisher + ?Sized> TelemetryPublisher for Box<P> {
    fn record(&mut self, value: i64, now: Instant) -> Result<Option<u64>, Error> {
        (**self).record(value, now)
    }
    fn tick(&mut self, now: Instant) -> Result<Option<u64>, Error> {
        (**self).tick(now)
    }
    fn published(&self) -> u64 {
        (**self).published()
    }
    fn topic(&self) -> &str {
        (**self).topic()
    }
}

/// What every publisher shares: the topic, the sequence counter and the bridge to the link.
#[derive(Debug)]
struct Channel<L> {
    /// The refined abstraction's name, for the sequence diagrams drawn from runs.
    owner: &'static str,
    topic: String,
    seq: u64,
    link: L,
}

impl<L: Link> Channel<L> {
    fn publish(&mut self, value: i64) -> Result<u64, Error> {
        let frame = TelemetryFrame {
            topic: self.topic.clone(),
            seq: self.seq,
            value,
        };
        seq!(self.owner => crate::short::<L>(), "send(frame #{}: {}={value})", frame.seq, frame.topic);
        self.link.send(&frame.encode())?;
        // A frame the link refused keeps its number, so receivers see no gap for it.
        self.seq += 1;
        Ok(frame.seq)
    }
}

/// Publishes the latest sample at a fixed period, whether it changed or not.
///
/// The first tick after the first sample publishes at once; later ones keep the cadence,
/// skipping periods missed entirely rather than bursting to catch up.
///
/// ```
/// use std::time::{Duration, Instant};
/// use gof_structural::bridge::{PeriodicPublisher, SerialLine, TelemetryFrame, TelemetryPublisher};
///
/// let (serial, rx) = SerialLine::with_capacity(256);
/// let mut publisher = PeriodicPublisher::new("cabin/temp", Duration::from_secs(1), serial);
/// let t0 = Instant::now();
/// publisher.record(215, t0)?;
/// assert_eq!(publisher.tick(t0)?, Some(0));
/// assert_eq!(publisher.tick(t0 + Duration::from_millis(500))?, None); // not due yet
/// assert_eq!(publisher.tick(t0 + Duration::from_secs(1))?, Some(1)); // due: same value again
/// let frames = rx.drain_frames()?;
/// assert_eq!(TelemetryFrame::decode(&frames[1])?.value, 215);
/// # Ok::<(), gof_structural::Error>(())
/// ```
#[derive(Debug)]
pub struct PeriodicPublisher<L> {
    channel: Channel<L>,
    period: Duration,
    latest: Option<i64>,
    next_due: Option<Instant>,
}

impl<L: Link> PeriodicPublisher<L> {
    /// Publishes `topic` every `period` over `link`.
    pub fn new(topic: impl Into<String>, period: Duration, link: L) -> Self {
        PeriodicPublisher {
            channel: Channel {
                owner: "PeriodicPublisher",
                topic: topic.into(),
                seq: 0,
                link,
            },
            period,
            latest: None,
            next_due: None,
        }
    }

    /// The period between frames.
    pub fn period(&self) -> Duration {
        self.period
    }
}

impl<L: Link> TelemetryPublisher for PeriodicPublisher<L> {
    fn record(&mut self, value: i64, _now: Instant) -> Result<Option<u64>, Error> {
        self.latest = Some(value);
        Ok(None)
    }

    fn tick(&mut self, now: Instant) -> Result<Option<u64>, Error> {
        let Some(value) = self.latest else {
            return Ok(None);
        };
        if self.next_due.is_some_and(|due| now < due) {
            return Ok(None);
        }
        let seq = self.channel.publish(value)?;
        let mut next = self.next_due.unwrap_or(now) + self.period;
        if next <= now {
            next = now + self.period;
        }
        self.next_due = Some(next);
        Ok(Some(seq))
    }

    fn published(&self) -> u64 {
        self.channel.seq
    }

    fn topic(&self) -> &str {
        &self.channel.topic
    }
}

/// Publishes a sample only when it differs from the last published one by more than a dead band,
/// plus, optionally, a heartbeat repeating the last value when nothing was published for a while.
///
/// ```
/// use std::time::Instant;
/// use gof_structural::bridge::{OnChangePublisher, SerialLine, TelemetryPublisher};
///
/// let (serial, rx) = SerialLine::with_capacity(256);
/// let mut publisher = OnChangePublisher::new("tank/level", 5, serial);
/// let now = Instant::now();
/// assert_eq!(publisher.record(100, now)?, Some(0)); // first sample always goes out
/// assert_eq!(publisher.record(104, now)?, None); // within the dead band
/// assert_eq!(publisher.record(106, now)?, Some(1));
/// assert_eq!(rx.drain_frames()?.len(), 2);
/// # Ok::<(), gof_structural::Error>(())
/// ```
#[derive(Debug)]
pub struct OnChangePublisher<L> {
    channel: Channel<L>,
    dead_band: u64,
    heartbeat: Option<Duration>,
    last: Option<(i64, Instant)>,
}

impl<L: Link> OnChangePublisher<L> {
    /// Publishes `topic` over `link` when a sample moves more than `dead_band` from the last one sent.
    pub fn new(topic: impl Into<String>, dead_band: u64, link: L) -> Self {
        OnChangePublisher {
            channel: Channel {
                owner: "OnChangePublisher",
                topic: topic.into(),
                seq: 0,
                link,
            },
            dead_band,
            heartbeat: None,
            last: None,
        }
    }

    /// Also republishes the last value on a tick when nothing went out for `interval`.
    pub fn with_heartbeat(mut self, interval: Duration) -> Self {
        self.heartbeat = Some(interval);
        self
    }
}

impl<L: Link> TelemetryPublisher for OnChangePublisher<L> {
    fn record(&mut self, value: i64, now: Instant) -> Result<Option<u64>, Error> {
        let changed = match self.last {
            None => true,
            Some((last, _)) => value.abs_diff(last) > self.dead_band,
        };
        if !changed {
            return Ok(None);
        }
        let seq = self.channel.publish(value)?;
        self.last = Some((value, now));
        Ok(Some(seq))
    }

    fn tick(&mut self, now: Instant) -> Result<Option<u64>, Error> {
        let (Some(interval), Some((value, sent_at))) = (self.heartbeat, self.last) else {
            return Ok(None);
        };
        if now.saturating_duration_since(sent_at) < interval {
            return Ok(None);
        }
        let seq = self.channel.publish(value)?;
        self.last = Some((value, now));
        Ok(Some(seq))
    }

    fn published(&self) -> u64 {
        self.channel.seq
    }

    fn topic(&self) -> &str {
        &self.channel.topic
    }
}

/// Access to the implementor behind a publisher, shared by both refined abstractions.
///
/// With a concrete `L` (static bridge) `replace_link` swaps in another link of the same type;
/// with `L = DynLink` (dynamic bridge) it swaps in any link at all.
pub trait LinkedPublisher<L> {
    /// The link frames go out on.
    fn link(&self) -> &L;
    /// Replaces the link between two frames and returns the old one.
    fn replace_link(&mut self, link: L) -> L;
}

impl<L: Link> LinkedPublisher<L> for PeriodicPublisher<L> {
    fn link(&self) -> &L {
        &self.channel.link
    }
    fn replace_link(&mut self, link: L) -> L {
        std::mem::replace(&mut self.channel.link, link)
    }
}

impl<L: Link> LinkedPublisher<L> for OnChangePublisher<L> {
    fn link(&self) -> &L {
        &self.channel.link
    }
    fn replace_link(&mut self, link: L) -> L {
        std::mem::replace(&mut self.channel.link, link)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bridge::SerialLine;

    #[test]
    fn periodic_skips_missed_periods_instead_of_bursting() {
        let (serial, rx) = SerialLine::with_capacity(1024);
        let mut p = PeriodicPublisher::new("t", Duration::from_secs(1), serial);
        let t0 = Instant::now();
        assert_eq!(p.tick(t0).unwrap(), None, "nothing recorded yet");
        p.record(1, t0).unwrap();
        assert_eq!(p.tick(t0).unwrap(), Some(0));
        // Ten periods later: one frame, and the next is due a full period after that.
        let late = t0 + Duration::from_secs(10);
        assert_eq!(p.tick(late).unwrap(), Some(1));
        assert_eq!(p.tick(late).unwrap(), None);
        assert_eq!(p.tick(late + Duration::from_secs(1)).unwrap(), Some(2));
        assert_eq!(rx.drain_frames().unwrap().len(), 3);
    }

    #[test]
    fn on_change_heartbeat_repeats_the_last_value() {
        let (serial, rx) = SerialLine::with_capacity(1024);
        let mut p = OnChangePublisher::new("t", 0, serial).with_heartbeat(Duration::from_secs(5));
        let t0 = Instant::now();
        p.record(7, t0).unwrap();
        assert_eq!(p.tick(t0 + Duration::from_secs(4)).unwrap(), None);
        assert_eq!(p.tick(t0 + Duration::from_secs(5)).unwrap(), Some(1));
        let frames = rx.drain_frames().unwrap();
        assert_eq!(TelemetryFrame::decode(&frames[1]).unwrap().value, 7);
    }

    #[test]
    fn a_refused_frame_keeps_its_sequence_number() {
        let (serial, rx) = SerialLine::with_capacity(16);
        let mut p = OnChangePublisher::new("topic", 0, serial);
        let now = Instant::now();
        assert_eq!(p.record(1, now).unwrap(), Some(0));
        assert!(matches!(p.record(2, now), Err(Error::LinkFull { .. })));
        rx.drain_frames().unwrap();
        assert_eq!(p.record(3, now).unwrap(), Some(1));
    }

    #[test]
    fn frames_with_spaces_in_the_topic_round_trip() {
        let frame = TelemetryFrame {
            topic: "left wing/temp".into(),
            seq: 3,
            value: 9,
        };
        assert_eq!(TelemetryFrame::decode(&frame.encode()).unwrap(), frame);
        assert!(TelemetryFrame::decode(b"#1 2").is_err());
        assert!(TelemetryFrame::decode(b"t 1 2").is_err());
        assert!(TelemetryFrame::decode(&[0xff, b' ', b'#', b'1', b' ', b'2']).is_err());
    }
}
