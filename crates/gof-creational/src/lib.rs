//! The GoF creational patterns: Factory Method, Abstract Factory, Singleton and Prototype.
//!
//! Creational patterns put indirection between the code that needs an object and the
//! decision of which concrete type to build, so that decision can change without touching
//! the code that uses the object.
//! Each pattern places that decision somewhere else: in a method an application overrides
//! (Factory Method), in a factory object that stands for a whole family (Abstract Factory),
//! in the object being copied (Prototype), or in one place for the whole process (Singleton).
//!
//! | Pattern | Participant | Our type |
//! |---|---|---|
//! | Factory Method | Creator (template method + factory method) | [`factory_method::LogApplication`], [`factory_method::LogFramework::process`] |
//! | | Concrete creator | [`factory_method::AccessLogApp`], [`factory_method::SensorLogApp`], any `Box<dyn DynLogApplication>` |
//! | | Product / concrete product | [`factory_method::LogRecord`] / [`factory_method::AccessRecord`], [`factory_method::SensorRecord`] |
//! | Abstract Factory | Abstract factory | [`abstract_factory::Hal`] |
//! | | Concrete factory | [`abstract_factory::LinuxHost`], [`abstract_factory::SimBoard`] |
//! | | Abstract products | [`abstract_factory::GpioLine`], [`abstract_factory::Timer`], [`abstract_factory::Uart`] |
//! | | Concrete products | `HostLine`, `HostTimer`, `HostUart`; `SimLine`, `SimTimer`, `SimUart` |
//! | | Client | [`abstract_factory::heartbeat`] |
//! | Singleton | Singleton, `getInstance()` | [`singleton::Singleton`], [`singleton::Singleton::instance`], [`singleton::Config::global`] |
//! | Prototype | Prototype interface, `clone()` | [`prototype::Device`], [`prototype::CloneDevice::clone_box`], [`prototype::Device::deep_clone_box`] |
//! | | Concrete prototypes | [`prototype::TemperatureSensor`], [`prototype::Relay`] |
//! | | Prototype registry | [`prototype::PrototypeRegistry`] |
//!
//! All four at work together: a registry of device prototypes (Prototype), a simulated
//! board family (Abstract Factory), the application's global settings (Singleton) and a
//! log framework that lets the application create its own records (Factory Method).
//!
//! ```
//! use gof_creational::abstract_factory::{heartbeat, SimBoard};
//! use gof_creational::factory_method::{AccessLogApp, LogFramework};
//! use gof_creational::prototype::{Device, PrototypeRegistry, Relay};
//! use gof_creational::singleton::Config;
//!
//! let mut devices: PrototypeRegistry<dyn Device> = PrototypeRegistry::default();
//! devices.register("relay", Box::new(Relay::new("relay", 0)));
//! let mut fan = devices.create("relay")?;
//! fan.rename("fan");
//! assert_eq!(fan.describe(), "relay fan on channel 0 (open)");
//!
//! let report = heartbeat(&mut SimBoard::default(), 3)?;
//! assert_eq!(report.family, "simulated board");
//!
//! assert!(Config::global().sample_period_ms() > 0);
//!
//! let log = AccessLogApp.process("GET /status 200\nGET /missing 404\n");
//! assert_eq!(log.accepted().len(), 2);
//! # Ok::<(), gof_creational::Error>(())
//! ```
#![forbid(unsafe_code)]

/// The `seq!` macro of the interaction events drawn as sequence diagrams (`posa-seq`).
#[macro_use]
extern crate posa_seq;

pub(crate) use posa_seq::short;

pub mod abstract_factory;
mod error;
pub mod factory_method;
pub mod prototype;
pub mod singleton;

pub use error::Error;
