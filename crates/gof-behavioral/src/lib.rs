//! GoF behavioral patterns for distributed embedded systems: Observer (with publish-subscribe and event compression), Strategy, and Memento (with undo/redo).
//!
//! Behavioral patterns assign responsibilities between objects and shape how they talk.
//! Here a sensor's readings reach alarm panels, loggers and uplinks that the sensor does not know (**Observer**),
//! without flooding them when the readings change faster than they can use them (event compression);
//! a node's uplink picks how to thin its data without its own code changing (**Strategy**);
//! and a device's configuration is edited with undo and redo while its state stays private to it (**Memento**).
//!
//! | pattern | participant | type |
//! |---|---|---|
//! | Observer | Subject, ConcreteSubject | [`observer::StateSubject`] (owns state; push with [`observer::Change`] or pull) |
//! | | Subject, publish-subscribe variant | [`observer::Subject`], [`observer::SyncSubject`], [`observer::Broker`] (by topic), [`observer::Compressor`] (compressed) |
//! | | Observer | [`observer::Observer`] trait objects, closures, channels, [`observer::Mailbox`], [`observer::Worker`] |
//! | | subscription | [`observer::Subscription`], [`observer::SyncSubscription`]: guards |
//! | | event compression | [`observer::CompressionPolicy`]: [`observer::CoalesceByKey`], [`observer::LatestWins`], [`observer::Debounce`] |
//! | Strategy | Strategy | [`strategy::SamplingStrategy`] |
//! | | concrete strategies | [`strategy::SendAll`], [`strategy::Decimate`], [`strategy::Deadband`], [`strategy::WindowAverage`], [`strategy::FnStrategy`] |
//! | | Context | [`strategy::Uplink`], [`strategy::DynUplink`] |
//! | Memento | Originator | [`memento::Originator`], [`memento::DeviceConfig`] |
//! | | Memento | [`memento::ConfigMemento`] (full), [`memento::ConfigDelta`] (delta) |
//! | | Caretaker | [`memento::Caretaker`], [`memento::UndoStack`] |
//! | | Command (with Memento) | [`memento::Command`], [`memento::ConfigCommand`], [`memento::Snapshotting`] |
//!
//! Time-driven code reads time through [`clock::Clock`], so tests and demos use a [`clock::ManualClock`] and never sleep.
//!
//! # Example
//!
//! A temperature sensor publishes readings; an alarm observer raises an alarm through a debounce,
//! so a reading that flaps around the limit raises one alarm, not many; the alarm limit is edited with undo.
//!
//! ```
//! use std::cell::Cell;
//! use std::rc::Rc;
//! use std::time::Duration;
//! use gof_behavioral::clock::ManualClock;
//! use gof_behavioral::memento::{ChannelConfig, ConfigCommand, DeviceConfig, UndoStack};
//! use gof_behavioral::observer::{Compressor, Debounce, Subject};
//!
//! // Memento: the alarm limit lives in the device configuration, edited with undo.
//! let mut config = DeviceConfig::new("boiler-1")?;
//! config.add_channel(ChannelConfig::new("water", 80_000)?)?;
//! let mut edits = UndoStack::default();
//! edits.apply(&mut config, ConfigCommand::SetThreshold { channel: 0, threshold: 85_000 })?;
//! edits.undo(&mut config);
//! let limit = config.channels()[0].threshold();
//!
//! // Observer with event compression.
//! let clock = ManualClock::default();
//! let alarms = Rc::new(Compressor::new(Debounce::new(Duration::from_secs(5)), clock.clone()));
//! let raised = Rc::new(Cell::new(0));
//! let r = Rc::clone(&raised);
//! let _panel = alarms.subscribe(move |_: &i32| r.set(r.get() + 1));
//!
//! let sensor = Subject::default();
//! let a = Rc::clone(&alarms);
//! let _alarm_rule = sensor.subscribe(move |m: &i32| if *m > limit { a.publish(*m) });
//! for milli_celsius in [79_000, 81_000, 79_500, 80_500, 82_000] {
//!     sensor.publish(milli_celsius);
//!     clock.advance(Duration::from_secs(1));
//!     alarms.flush();
//! }
//! clock.advance(Duration::from_secs(5));
//! alarms.flush();
//! assert_eq!(raised.get(), 1);
//! # Ok::<(), gof_behavioral::Error>(())
//! ```
#![forbid(unsafe_code)]

/// The `seq!` macro of the interaction events drawn as sequence diagrams (`posa-seq`).
#[macro_use]
extern crate posa_seq;

pub(crate) use posa_seq::short;

pub mod clock;
mod error;
pub mod memento;
pub mod observer;
pub mod strategy;

pub use error::Error;
