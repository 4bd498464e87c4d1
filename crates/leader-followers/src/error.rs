//! The crate's one error type: a concurrency model name that could not be parsed.

/// Why a [`Concurrency`](crate::Concurrency) could not be read from a string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConcurrencyError {
    /// The model's name is none of `reactor`, `leader-followers`, `half-sync-half-async`.
    #[error(
        "unknown concurrency model `{0}` (expected reactor, leader-followers or half-sync-half-async)"
    )]
    UnknownModel(String),
    /// A thread count or queue bound is not a positive number.
    #[error("bad number `{0}` in concurrency model (expected a positive integer)")]
    BadNumber(String),
    /// More `:`-separated parameters than the model takes.
    #[error("too many parameters for `{0}`")]
    TooManyParameters(String),
}
