//! How an operation ended, as its completion handler sees it.

/// The outcome delivered with a token: the service's result, or why there is none.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Completion<R> {
    /// The service finished and returned this result with the token.
    Done(R),
    /// The token's deadline passed before the service answered.
    TimedOut,
    /// The service dropped an object-reference ACT without completing it
    /// (see [`ObjectAct`](crate::ObjectAct)).
    Abandoned,
}

impl<R> Completion<R> {
    /// The result, if the service delivered one.
    ///
    /// ```
    /// use act::Completion;
    /// assert_eq!(Completion::Done(7).ok(), Some(7));
    /// assert_eq!(Completion::<i32>::TimedOut.ok(), None);
    /// ```
    pub fn ok(self) -> Option<R> {
        match self {
            Completion::Done(r) => Some(r),
            _ => None,
        }
    }

    /// Whether the service delivered a result.
    pub fn is_done(&self) -> bool {
        matches!(self, Completion::Done(_))
    }
}
