//! POSA2's Interceptor pattern: services added to a framework transparently, and triggered
//! automatically when certain events occur in it.
//!
//! A framework (logd, a sensor gateway) declares *interception points*: the places where
//! something happens that others may want to see or change ("a record was decoded", "a
//! connection opened").
//! For each point it keeps a [`Dispatcher`], and when the event occurs it fills a *context
//! object* (any type `C` the framework chooses: the record, the connection) and hands it to
//! the dispatcher, which calls every registered [`Interceptor`] in order.
//! An interceptor may read the context, change it (a later interceptor and the framework
//! see the change), or veto the event ([`Verdict::Stop`]), which short-circuits the rest of
//! the chain and tells the framework to drop the event.
//! Interceptors are registered and removed at run time, also from other threads and from
//! inside an interceptor while the chain runs; a panicking interceptor is removed from its
//! chain and counted, and the event goes on to the next one.
//!
//! | Participant (POSA2) | Here |
//! |---|---|
//! | Concrete framework | the program that owns the dispatchers: `logd` (`logging_service::intercept`), the example's `Gateway` |
//! | Interception point | one [`Dispatcher<C>`] per point, named by the framework ([`Dispatcher::point`]) |
//! | Context object | the `C` a dispatcher passes by `&mut` (`logging_service::intercept::RecordContext`, the example's `Reading`) |
//! | Interceptor (interface) | [`Interceptor<C>`] |
//! | Concrete interceptor | your types implementing it, or closures through [`from_fn`] |
//! | Dispatcher | [`Dispatcher<C>`]: [`register`](Dispatcher::register), [`remove`](Dispatcher::remove), [`dispatch`](Dispatcher::dispatch) |
//! | Application | whoever registers interceptors: logd's svc.conf, the example's `main` |
//!
//! # Example
//!
//! ```
//! use interceptor::{Dispatcher, Outcome, Verdict, from_fn};
//!
//! #[derive(Debug)]
//! struct Reading { sensor: String, celsius: f64 }
//!
//! let received: Dispatcher<Reading> = Dispatcher::new("reading received");
//! // Order 10 runs before order 20, whatever the order of registration.
//! received.register(20, from_fn("range check", |r: &mut Reading| {
//!     if r.celsius > 150.0 { Verdict::Stop } else { Verdict::Continue }
//! }));
//! received.register(10, from_fn("calibrate", |r: &mut Reading| {
//!     r.celsius -= 0.5;
//!     Verdict::Continue
//! }));
//!
//! let mut ok = Reading { sensor: "boiler".into(), celsius: 80.5 };
//! assert_eq!(received.dispatch(&mut ok), Outcome::Completed);
//! assert_eq!(ok.celsius, 80.0);
//!
//! let mut wild = Reading { sensor: "boiler".into(), celsius: 900.0 };
//! assert!(matches!(received.dispatch(&mut wild), Outcome::Vetoed { by } if &*by == "range check"));
//! assert_eq!(received.counters().vetoed, 1);
//! ```
#![forbid(unsafe_code)]

/// The `seq!` macro of the interaction events drawn as sequence diagrams (`posa-seq`).
#[macro_use]
extern crate posa_seq;

mod dispatcher;

pub use dispatcher::{
    Counters, Dispatcher, FnInterceptor, Interceptor, Outcome, RegistrationId, Verdict, from_fn,
};
