//! The crate's error values: refused tokens, a full table, malformed frames.

use std::fmt;

use crate::CompletionToken;

/// Why a token, or a frame carrying one, was refused.
///
/// None of these is a panic: a bad token from a service is a value the initiator can log and
/// drop while every other outstanding operation goes on.
///
/// ```
/// use act::{ActError, TokenTable};
///
/// let mut table = TokenTable::with_limit(4);
/// let token = table.issue("read").unwrap();
/// assert_eq!(table.complete(token), Ok("read"));
/// assert!(matches!(table.complete(token), Err(ActError::Duplicate { .. })));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ActError {
    /// The token was not issued by this table: made up, corrupted, or from another table.
    #[error("token {token} was not issued by this table (forged, corrupted or foreign)")]
    Forged {
        /// The refused token.
        token: CompletionToken,
    },
    /// The token's operation already ended (completed, cancelled or expired) and its slot has
    /// not been reused since: typically a second completion.
    #[error("token {token} was already completed, cancelled or expired")]
    Duplicate {
        /// The refused token.
        token: CompletionToken,
    },
    /// The token's operation ended long ago and its slot now serves a later operation.
    #[error("token {token} is stale: its slot has been reused by a later operation")]
    Stale {
        /// The refused token.
        token: CompletionToken,
    },
    /// The table holds as many outstanding tokens as its limit allows.
    #[error("the token table is full ({limit} outstanding tokens)")]
    Full {
        /// The table's limit.
        limit: usize,
    },
    /// A frame announced a payload larger than the decoder accepts.
    #[error("frame payload of {len} bytes exceeds the limit of {max} bytes")]
    Oversized {
        /// The announced payload length.
        len: u64,
        /// The decoder's limit.
        max: usize,
    },
    /// The stream ended in the middle of a frame.
    #[error("stream ended inside a frame ({buffered} bytes of an incomplete frame)")]
    Truncated {
        /// How many bytes of the incomplete frame had arrived.
        buffered: usize,
    },
}

/// The table was full: the context that could not be stored is handed back.
///
/// ```
/// use act::TokenTable;
///
/// let mut table = TokenTable::with_limit(1);
/// table.issue('a').unwrap();
/// let full = table.issue('b').unwrap_err();
/// assert_eq!(full.limit(), 1);
/// assert_eq!(full.into_inner(), 'b');
/// ```
pub struct Full<C> {
    context: C,
    limit: usize,
}

impl<C> Full<C> {
    pub(crate) fn new(context: C, limit: usize) -> Self {
        Full { context, limit }
    }

    /// The limit the table was at.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The context that was not stored.
    pub fn into_inner(self) -> C {
        self.context
    }
}

impl<C> fmt::Debug for Full<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Full")
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl<C> fmt::Display for Full<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the token table is full ({} outstanding tokens)",
            self.limit
        )
    }
}

impl<C> std::error::Error for Full<C> {}

impl<C> From<Full<C>> for ActError {
    fn from(full: Full<C>) -> Self {
        ActError::Full { limit: full.limit }
    }
}
