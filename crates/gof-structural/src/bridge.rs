//! Bridge: telemetry publishers (the abstraction) and links (the implementation), varying independently.
//!
//! | Course participant | Here |
//! |---|---|
//! | Abstraction | [`TelemetryPublisher`] |
//! | Refined abstractions | [`PeriodicPublisher`], [`OnChangePublisher`] |
//! | Implementor | [`Link`] |
//! | Concrete implementors | [`UdpLink`], [`SerialLink`] (an in-memory [`SerialLine`]), [`FileLink`] |
//! | The "bridge" (the abstraction's reference to its implementor) | the `L` inside each publisher |
//!
//! Two publishers and three links make six combinations from five types, not six classes;
//! a new link works with every publisher, and a new publisher with every link.
//! The bridge comes in two builds from the same types:
//!
//! * **static**: `PeriodicPublisher<UdpLink>`, bound at compile time, monomorphised, no indirection;
//! * **dynamic**: `PeriodicPublisher<DynLink>` or `Box<dyn TelemetryPublisher>`, bound at run time,
//!   with the link replaceable between frames ([`LinkedPublisher::replace_link`]) or, through a
//!   [`SwappableLink`], from another thread while the publisher runs.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use gof_structural::bridge::{
//!     DynLink, FileLink, LinkedPublisher, OnChangePublisher, SerialLine, TelemetryPublisher,
//! };
//!
//! let (serial, rx) = SerialLine::with_capacity(256);
//! let mut publisher: OnChangePublisher<DynLink> =
//!     OnChangePublisher::new("battery/mv", 10, Box::new(serial));
//! let now = Instant::now();
//! publisher.record(3700, now)?;
//!
//! // Same publisher, another kind of link, chosen at run time.
//! let path = std::env::temp_dir().join(format!("gof-bridge-doc-{}.log", std::process::id()));
//! publisher.replace_link(Box::new(FileLink::create(&path)?));
//! publisher.record(3650, now)?;
//!
//! assert_eq!(rx.drain_frames()?, vec![b"battery/mv #0 3700".to_vec()]);
//! assert_eq!(std::fs::read_to_string(&path)?, "battery/mv #1 3650\n");
//! # std::fs::remove_file(&path)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod link;
mod publisher;

pub use link::{
    DynLink, FileLink, Link, SerialLine, SerialLink, SerialReceiver, SwappableLink, UdpLink,
};
pub use publisher::{
    LinkedPublisher, OnChangePublisher, PeriodicPublisher, TelemetryFrame, TelemetryPublisher,
};
