//! The crate's one error type, shared by the four patterns.

use std::io;

/// Everything that can go wrong while creating or using the objects of this crate.
///
/// ```
/// use gof_creational::Error;
///
/// let err = Error::UnknownPrototype { name: "lidar".into() };
/// assert_eq!(err.to_string(), "no prototype registered under `lidar`");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A factory method could not build a domain object from its raw input.
    #[error("malformed input: {reason}")]
    Malformed {
        /// What was wrong with the input.
        reason: String,
    },
    /// No application of that name is known to the dynamic factory.
    #[error("no log application named `{name}`")]
    UnknownApplication {
        /// The name that was asked for.
        name: String,
    },
    /// A board was asked for a GPIO line it does not have.
    #[error("GPIO line {line} does not exist (the board has {lines} lines)")]
    NoSuchLine {
        /// The line asked for.
        line: u8,
        /// How many lines the board has.
        lines: u8,
    },
    /// A board was asked for a UART port it does not have.
    #[error("UART port {port} does not exist (the board has {ports} ports)")]
    NoSuchPort {
        /// The port asked for.
        port: u8,
        /// How many ports the board has.
        ports: u8,
    },
    /// A product was handed to a product of another board instance of the same family.
    #[error("the {product} belongs to board #{owner}, not to board #{expected}")]
    ForeignProduct {
        /// Which kind of product was handed over.
        product: &'static str,
        /// The board that made it.
        owner: u64,
        /// The board that was expected.
        expected: u64,
    },
    /// A product is already taken (each GPIO line and UART port is handed out once).
    #[error("{product} is already in use")]
    InUse {
        /// The product, e.g. `GPIO line 17`.
        product: String,
    },
    /// The Linux host backend failed to read or write its files.
    #[error("host I/O failed")]
    Io(#[from] io::Error),
    /// No prototype is registered under that name.
    #[error("no prototype registered under `{name}`")]
    UnknownPrototype {
        /// The name that was asked for.
        name: String,
    },
}
