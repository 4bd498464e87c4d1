//! The crate's one error type.

use thiserror::Error;

/// Everything that can go wrong in this crate.
///
/// Topic and filter errors come from the publish-subscribe [`Broker`](crate::observer::Broker),
/// configuration errors from editing a [`DeviceConfig`](crate::memento::DeviceConfig),
/// and the decode errors from [`ConfigMemento::from_bytes`](crate::memento::ConfigMemento::from_bytes),
/// which must turn any byte string, however broken, into a value or one of these errors and never panic.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Error {
    /// A topic to publish on is not a valid concrete topic.
    #[error("invalid topic {topic:?}: {reason}")]
    InvalidTopic {
        /// The topic as given.
        topic: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A subscription filter is malformed.
    #[error("invalid topic filter {filter:?}: {reason}")]
    InvalidFilter {
        /// The filter as given.
        filter: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A worker observer's callback panicked; its subscription ended with it.
    #[error("observer worker panicked")]
    ObserverPanicked,
    /// A configuration edit named a channel the device does not have.
    #[error("no channel {channel}: the device has {channels} channel(s)")]
    NoSuchChannel {
        /// The channel index asked for.
        channel: usize,
        /// How many channels the device has.
        channels: usize,
    },
    /// A sample rate outside `1..=MAX_SAMPLE_RATE_HZ`.
    #[error("sample rate {0} Hz is out of range")]
    InvalidSampleRate(u32),
    /// Adding a channel would exceed the device's maximum.
    #[error("too many channels: at most {max}")]
    TooManyChannels {
        /// The maximum channel count.
        max: usize,
    },
    /// A text field is longer than its limit.
    #[error("{field} is {len} bytes long, at most {max} allowed")]
    TooLong {
        /// Which field.
        field: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// The encoded memento ended before a field was complete.
    #[error("truncated memento: needed {needed} more byte(s) at offset {at}")]
    Truncated {
        /// Offset at which the missing field starts.
        at: usize,
        /// How many bytes were missing.
        needed: usize,
    },
    /// The encoded memento does not start with the expected magic bytes.
    #[error("not a device configuration memento (bad magic)")]
    BadMagic,
    /// The encoding's version byte is one this build cannot read.
    #[error("unsupported memento version {0}")]
    UnsupportedVersion(u8),
    /// The input is larger than any valid encoding can be.
    #[error("memento of {len} bytes exceeds the maximum of {max}")]
    Oversized {
        /// The input length.
        len: usize,
        /// The largest valid encoding.
        max: usize,
    },
    /// A text field is not valid UTF-8.
    #[error("{field} is not valid UTF-8")]
    InvalidUtf8 {
        /// Which field.
        field: &'static str,
    },
    /// A flags byte has bits set that this version does not define.
    #[error("invalid flags byte {0:#04x}")]
    InvalidFlags(u8),
    /// Bytes follow a complete memento.
    #[error("{0} trailing byte(s) after the memento")]
    TrailingBytes(usize),
}
