//! The scenario: a sensor node's configuration (the originator), its full and delta mementos, and the commands that edit it.

mod codec;

use std::fmt;
use std::mem::size_of;

use super::{Command, Footprint, Originator};
use crate::Error;

/// Longest device name, in bytes.
pub const MAX_NAME_LEN: usize = 32;
/// Longest channel label, in bytes.
pub const MAX_LABEL_LEN: usize = 16;
/// Most channels a device has.
pub const MAX_CHANNELS: usize = 32;
/// Highest sample rate, in Hz.
pub const MAX_SAMPLE_RATE_HZ: u32 = 100_000;

pub use codec::{MAX_ENCODED_LEN, MEMENTO_VERSION};

fn check_len(field: &'static str, text: &str, max: usize) -> Result<(), Error> {
    if text.len() > max {
        return Err(Error::TooLong {
            field,
            len: text.len(),
            max,
        });
    }
    Ok(())
}

/// One measuring channel of a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelConfig {
    label: String,
    threshold: i32,
    enabled: bool,
}

impl ChannelConfig {
    /// An enabled channel with an alarm `threshold` in milli-units.
    ///
    /// # Errors
    ///
    /// [`Error::TooLong`] if `label` exceeds [`MAX_LABEL_LEN`] bytes.
    pub fn new(label: impl Into<String>, threshold: i32) -> Result<Self, Error> {
        let label = label.into();
        check_len("channel label", &label, MAX_LABEL_LEN)?;
        Ok(Self {
            label,
            threshold,
            enabled: true,
        })
    }

    /// The channel's label.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The alarm threshold, in milli-units.
    pub fn threshold(&self) -> i32 {
        self.threshold
    }

    /// Whether the channel is sampled.
    pub fn enabled(&self) -> bool {
        self.enabled
    }
}

impl Footprint for ChannelConfig {
    fn footprint(&self) -> usize {
        size_of::<Self>() + self.label.capacity()
    }
}

/// A device's configuration: the originator.
///
/// Every setter validates before it changes anything, so a failed edit leaves the configuration as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceConfig {
    name: String,
    sample_rate_hz: u32,
    report_interval_s: u16,
    channels: Vec<ChannelConfig>,
}

impl DeviceConfig {
    /// A configuration named `name`: 10 Hz sampling, a report every 60 s, no channels.
    ///
    /// # Errors
    ///
    /// [`Error::TooLong`] if `name` exceeds [`MAX_NAME_LEN`] bytes.
    pub fn new(name: impl Into<String>) -> Result<Self, Error> {
        let name = name.into();
        check_len("device name", &name, MAX_NAME_LEN)?;
        Ok(Self {
            name,
            sample_rate_hz: 10,
            report_interval_s: 60,
            channels: Vec::new(),
        })
    }

    /// The device name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The sample rate, in Hz.
    pub fn sample_rate_hz(&self) -> u32 {
        self.sample_rate_hz
    }

    /// Seconds between reports.
    pub fn report_interval_s(&self) -> u16 {
        self.report_interval_s
    }

    /// The channels, in index order.
    pub fn channels(&self) -> &[ChannelConfig] {
        &self.channels
    }

    /// Renames the device; returns the old name.
    ///
    /// # Errors
    ///
    /// [`Error::TooLong`] if `name` exceeds [`MAX_NAME_LEN`] bytes.
    pub fn rename(&mut self, name: impl Into<String>) -> Result<String, Error> {
        let name = name.into();
        check_len("device name", &name, MAX_NAME_LEN)?;
        Ok(std::mem::replace(&mut self.name, name))
    }

    /// Sets the sample rate; returns the old one.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSampleRate`] outside `1..=MAX_SAMPLE_RATE_HZ`.
    pub fn set_sample_rate(&mut self, hz: u32) -> Result<u32, Error> {
        if !(1..=MAX_SAMPLE_RATE_HZ).contains(&hz) {
            return Err(Error::InvalidSampleRate(hz));
        }
        Ok(std::mem::replace(&mut self.sample_rate_hz, hz))
    }

    /// Sets the report interval; returns the old one.
    pub fn set_report_interval(&mut self, seconds: u16) -> u16 {
        std::mem::replace(&mut self.report_interval_s, seconds)
    }

    fn channel_mut(&mut self, channel: usize) -> Result<&mut ChannelConfig, Error> {
        let channels = self.channels.len();
        self.channels
            .get_mut(channel)
            .ok_or(Error::NoSuchChannel { channel, channels })
    }

    /// Sets a channel's alarm threshold; returns the old one.
    ///
    /// # Errors
    ///
    /// [`Error::NoSuchChannel`] if there is no channel `channel`.
    pub fn set_threshold(&mut self, channel: usize, threshold: i32) -> Result<i32, Error> {
        let ch = self.channel_mut(channel)?;
        Ok(std::mem::replace(&mut ch.threshold, threshold))
    }

    /// Enables or disables a channel; returns whether it was enabled.
    ///
    /// # Errors
    ///
    /// [`Error::NoSuchChannel`] if there is no channel `channel`.
    pub fn set_enabled(&mut self, channel: usize, enabled: bool) -> Result<bool, Error> {
        let ch = self.channel_mut(channel)?;
        Ok(std::mem::replace(&mut ch.enabled, enabled))
    }

    /// Adds a channel; returns its index.
    ///
    /// # Errors
    ///
    /// [`Error::TooManyChannels`] if the device already has [`MAX_CHANNELS`].
    pub fn add_channel(&mut self, channel: ChannelConfig) -> Result<usize, Error> {
        if self.channels.len() >= MAX_CHANNELS {
            return Err(Error::TooManyChannels { max: MAX_CHANNELS });
        }
        self.channels.push(channel);
        Ok(self.channels.len() - 1)
    }
}

impl Footprint for DeviceConfig {
    fn footprint(&self) -> usize {
        size_of::<Self>()
            + self.name.capacity()
            + self
                .channels
                .iter()
                .map(Footprint::footprint)
                .sum::<usize>()
            + (self.channels.capacity() - self.channels.len()) * size_of::<ChannelConfig>()
    }
}

/// A full snapshot of a [`DeviceConfig`]: the memento.
///
/// Its contents are private to the originator's module.
/// Outside, it can be cloned, compared, measured, encoded to bytes and decoded back, and handed to [`DeviceConfig::restore`].
///
/// ```
/// use gof_behavioral::memento::{ConfigMemento, DeviceConfig, Originator};
///
/// let mut config = DeviceConfig::new("pump-7")?;
/// let bytes = config.save().to_bytes();
/// config.set_sample_rate(500)?;
/// config.restore(ConfigMemento::from_bytes(&bytes)?);
/// assert_eq!(config.sample_rate_hz(), 10);
/// # Ok::<(), gof_behavioral::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ConfigMemento {
    state: DeviceConfig,
}

impl ConfigMemento {
    /// Encodes the memento: magic `DCFG`, a version byte, then the fields (see the Memento docs page for the layout).
    pub fn to_bytes(&self) -> Vec<u8> {
        codec::encode(&self.state)
    }

    /// Decodes a memento from bytes produced by [`to_bytes`](Self::to_bytes), checking every limit and invariant.
    ///
    /// # Errors
    ///
    /// [`Error::Oversized`], [`Error::BadMagic`], [`Error::UnsupportedVersion`], [`Error::Truncated`], [`Error::TooLong`],
    /// [`Error::InvalidUtf8`], [`Error::InvalidSampleRate`], [`Error::TooManyChannels`], [`Error::InvalidFlags`] or [`Error::TrailingBytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        codec::decode(bytes).map(|state| Self { state })
    }

    /// The length of [`to_bytes`](Self::to_bytes)' output, without encoding.
    pub fn encoded_len(&self) -> usize {
        codec::encoded_len(&self.state)
    }
}

impl fmt::Debug for ConfigMemento {
    // Opaque on purpose: the narrow interface does not show the state.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigMemento")
            .field("encoded_len", &self.encoded_len())
            .finish_non_exhaustive()
    }
}

impl Footprint for ConfigMemento {
    fn footprint(&self) -> usize {
        self.state.footprint()
    }
}

impl Originator for DeviceConfig {
    type Memento = ConfigMemento;

    fn save(&self) -> ConfigMemento {
        ConfigMemento {
            state: self.clone(),
        }
    }

    fn restore(&mut self, memento: ConfigMemento) {
        *self = memento.state;
    }
}

/// An edit of a [`DeviceConfig`], undoable through the [`ConfigDelta`] its execution returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigCommand {
    /// Rename the device.
    Rename(String),
    /// Set the sample rate, in Hz.
    SetSampleRate(u32),
    /// Set the report interval, in seconds.
    SetReportInterval(u16),
    /// Set a channel's alarm threshold.
    SetThreshold {
        /// Channel index.
        channel: usize,
        /// New threshold, in milli-units.
        threshold: i32,
    },
    /// Enable or disable a channel.
    SetEnabled {
        /// Channel index.
        channel: usize,
        /// Whether the channel is sampled.
        enabled: bool,
    },
    /// Append a channel.
    AddChannel(ChannelConfig),
}

impl fmt::Display for ConfigCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rename(name) => write!(f, "rename to {name:?}"),
            Self::SetSampleRate(hz) => write!(f, "sample rate {hz} Hz"),
            Self::SetReportInterval(s) => write!(f, "report every {s} s"),
            Self::SetThreshold { channel, threshold } => {
                write!(f, "channel {channel} threshold {threshold}")
            }
            Self::SetEnabled { channel, enabled } => {
                write!(
                    f,
                    "channel {channel} {}",
                    if *enabled { "on" } else { "off" }
                )
            }
            Self::AddChannel(ch) => write!(f, "add channel {:?}", ch.label),
        }
    }
}

impl Footprint for ConfigCommand {
    fn footprint(&self) -> usize {
        size_of::<Self>()
            + match self {
                Self::Rename(name) => name.capacity(),
                Self::AddChannel(ch) => ch.label.capacity(),
                _ => 0,
            }
    }
}

/// What one [`ConfigCommand`] changed: the delta memento, holding only the old value of the field it touched.
///
/// Opaque like [`ConfigMemento`]: only the configuration's module reads it.
#[derive(Clone, PartialEq, Eq)]
pub struct ConfigDelta(Delta);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Delta {
    Name(String),
    SampleRate(u32),
    ReportInterval(u16),
    Threshold { channel: usize, old: i32 },
    Enabled { channel: usize, old: bool },
    ChannelAdded,
}

impl fmt::Debug for ConfigDelta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigDelta")
            .field("footprint", &self.footprint())
            .finish_non_exhaustive()
    }
}

impl Footprint for ConfigDelta {
    fn footprint(&self) -> usize {
        size_of::<Self>()
            + match &self.0 {
                Delta::Name(name) => name.capacity(),
                _ => 0,
            }
    }
}

impl Command<DeviceConfig> for ConfigCommand {
    type Memento = ConfigDelta;
    type Error = Error;

    fn execute(&self, target: &mut DeviceConfig) -> Result<ConfigDelta, Error> {
        seq!("ConfigCommand" => "DeviceConfig (originator)", "{self}");
        let delta = match self {
            Self::Rename(name) => Delta::Name(target.rename(name.clone())?),
            Self::SetSampleRate(hz) => Delta::SampleRate(target.set_sample_rate(*hz)?),
            Self::SetReportInterval(s) => Delta::ReportInterval(target.set_report_interval(*s)),
            Self::SetThreshold { channel, threshold } => Delta::Threshold {
                channel: *channel,
                old: target.set_threshold(*channel, *threshold)?,
            },
            Self::SetEnabled { channel, enabled } => Delta::Enabled {
                channel: *channel,
                old: target.set_enabled(*channel, *enabled)?,
            },
            Self::AddChannel(ch) => {
                target.add_channel(ch.clone())?;
                Delta::ChannelAdded
            }
        };
        seq!(reply "DeviceConfig (originator)" => "ConfigCommand", "old value: {delta:?}");
        Ok(ConfigDelta(delta))
    }

    fn undo(&self, target: &mut DeviceConfig, memento: ConfigDelta) {
        seq!("ConfigCommand" => "DeviceConfig (originator)", "write back {:?}", memento.0);
        // The fields are written directly: the old values passed validation when they were first set.
        match memento.0 {
            Delta::Name(name) => target.name = name,
            Delta::SampleRate(hz) => target.sample_rate_hz = hz,
            Delta::ReportInterval(s) => target.report_interval_s = s,
            Delta::Threshold { channel, old } => {
                if let Some(ch) = target.channels.get_mut(channel) {
                    ch.threshold = old;
                }
            }
            Delta::Enabled { channel, old } => {
                if let Some(ch) = target.channels.get_mut(channel) {
                    ch.enabled = old;
                }
            }
            Delta::ChannelAdded => {
                target.channels.pop();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device() -> DeviceConfig {
        let mut d = DeviceConfig::new("node-1").unwrap();
        d.add_channel(ChannelConfig::new("temp", 30_000).unwrap())
            .unwrap();
        d
    }

    #[test]
    fn every_command_undoes_exactly() {
        let commands = [
            ConfigCommand::Rename("node-2".into()),
            ConfigCommand::SetSampleRate(400),
            ConfigCommand::SetReportInterval(5),
            ConfigCommand::SetThreshold {
                channel: 0,
                threshold: -5,
            },
            ConfigCommand::SetEnabled {
                channel: 0,
                enabled: false,
            },
            ConfigCommand::AddChannel(ChannelConfig::new("hum", 80_000).unwrap()),
        ];
        for cmd in commands {
            let mut d = device();
            let before = d.clone();
            let delta = cmd.execute(&mut d).unwrap();
            assert_ne!(d, before, "{cmd} changed nothing");
            cmd.undo(&mut d, delta);
            assert_eq!(d, before, "{cmd} did not undo");
        }
    }

    #[test]
    fn failing_commands_leave_the_target_unchanged() {
        let mut d = device();
        let before = d.clone();
        let bad = [
            ConfigCommand::Rename("x".repeat(MAX_NAME_LEN + 1)),
            ConfigCommand::SetSampleRate(0),
            ConfigCommand::SetSampleRate(MAX_SAMPLE_RATE_HZ + 1),
            ConfigCommand::SetThreshold {
                channel: 1,
                threshold: 0,
            },
            ConfigCommand::SetEnabled {
                channel: 9,
                enabled: true,
            },
        ];
        for cmd in bad {
            assert!(cmd.execute(&mut d).is_err(), "{cmd}");
            assert_eq!(d, before);
        }
        for _ in 1..MAX_CHANNELS {
            d.add_channel(ChannelConfig::new("c", 0).unwrap()).unwrap();
        }
        let full = d.clone();
        let add = ConfigCommand::AddChannel(ChannelConfig::new("one-more", 0).unwrap());
        assert_eq!(
            add.execute(&mut d),
            Err(Error::TooManyChannels { max: MAX_CHANNELS })
        );
        assert_eq!(d, full);
    }

    #[test]
    fn delta_mementos_are_smaller_than_full_ones() {
        let mut d = device();
        for i in 1..8 {
            d.add_channel(ChannelConfig::new(format!("ch{i}"), i).unwrap())
                .unwrap();
        }
        let full = d.save().footprint();
        let delta = ConfigCommand::SetThreshold {
            channel: 3,
            threshold: 1,
        }
        .execute(&mut d)
        .unwrap()
        .footprint();
        assert!(delta * 10 < full, "delta {delta} B vs full {full} B");
    }

    #[test]
    fn memento_debug_does_not_leak_state() {
        let text = format!("{:?}", device().save());
        assert!(!text.contains("node-1"), "{text}");
        assert!(text.starts_with("ConfigMemento"));
    }
}
