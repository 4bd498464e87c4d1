//! The GoF structural patterns of the course, Adapter, Bridge and Proxy, as reusable and tested Rust,
//! told through scenarios from distributed embedded systems.
//!
//! * [`adapter`]: a legacy C-style sensor SDK made to fit a new [`adapter::Sensor`] trait,
//!   with an object adapter, a class adapter and a two-way adapter, so their consequences can be compared.
//! * [`bridge`]: telemetry publishers (periodic, on-change) and the links that carry their frames
//!   (UDP, an in-memory serial line, a file) varying independently, bound statically or dynamically.
//! * [`proxy`]: the four proxies the course names (virtual, protection, smart, remote) in front of a
//!   field device, each keeping the device's interface.
//!
//! | Pattern | Participant | Type |
//! |---|---|---|
//! | Adapter | Target | [`adapter::Sensor`] |
//! | Adapter | Adaptee | [`adapter::legacy::SensorDriverApi`], [`adapter::legacy::LegacyThermoDriver`] |
//! | Adapter | Object adapter | [`adapter::DriverAdapter`] |
//! | Adapter | Class adapter | `impl Sensor for LegacyThermoDriver` |
//! | Adapter | Two-way adapter | [`adapter::TwoWayAdapter`] |
//! | Bridge | Abstraction / refined | [`bridge::TelemetryPublisher`] / [`bridge::PeriodicPublisher`], [`bridge::OnChangePublisher`] |
//! | Bridge | Implementor / concrete | [`bridge::Link`] / [`bridge::UdpLink`], [`bridge::SerialLink`], [`bridge::FileLink`] |
//! | Proxy | Subject / real subject | [`proxy::DeviceService`] / [`proxy::FieldDevice`] |
//! | Proxy | Proxies | [`proxy::VirtualProxy`], [`proxy::ProtectionProxy`], [`proxy::SmartProxy`], [`proxy::RemoteDevice`] |
//!
//! All three at once: a legacy driver adapted to a `Sensor`, its readings published through a bridge,
//! and the set point it is compared with fetched through a proxy.
//!
//! ```
//! use std::time::Instant;
//! use gof_structural::adapter::{legacy::LegacyThermoDriver, DriverAdapter, Sensor};
//! use gof_structural::bridge::{OnChangePublisher, SerialLine, TelemetryFrame, TelemetryPublisher};
//! use gof_structural::proxy::{registers, DeviceService, FieldDevice, VirtualProxy};
//!
//! let mut sensor = DriverAdapter::new(LegacyThermoDriver::new([352])); // 22 °C
//! let (serial, rx) = SerialLine::with_capacity(128);
//! let mut publisher = OnChangePublisher::new("boiler/temp", 100, serial);
//! let controller = VirtualProxy::new(|| FieldDevice::new("TC-100", 1));
//!
//! let reading = sensor.read()?;
//! publisher.record(i64::from(reading.millidegrees()), Instant::now())?;
//! let setpoint = controller.read_register(registers::SETPOINT)?;
//!
//! let frame = TelemetryFrame::decode(&rx.try_recv_frame()?.unwrap())?;
//! assert_eq!(frame.value, 22_000);
//! assert!(i64::from(setpoint) < frame.value);
//! # Ok::<(), gof_structural::Error>(())
//! ```

#![forbid(unsafe_code)]

/// The `seq!` macro of the interaction events drawn as sequence diagrams (`posa-seq`).
#[macro_use]
extern crate posa_seq;

pub(crate) use posa_seq::short;

pub mod adapter;
pub mod bridge;
mod error;
pub mod proxy;

pub use error::Error;
