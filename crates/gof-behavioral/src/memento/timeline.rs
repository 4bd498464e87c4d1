//! The bookkeeping shared by both caretakers: an undo side, a redo side, a history limit and a saved marker.

use std::collections::VecDeque;

/// Undo entries of type `U` (oldest first) and redo entries of type `R` (next to redo last).
///
/// Positions count undo entries: the current state is at position `undo.len()`,
/// and the saved marker names the position whose state was last saved, if it is still reachable.
#[derive(Debug, Clone)]
pub(crate) struct Timeline<U, R> {
    undo: VecDeque<U>,
    redo: Vec<R>,
    limit: usize,
    saved: Option<usize>,
}

impl<U, R> Timeline<U, R> {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            undo: VecDeque::new(),
            redo: Vec::new(),
            limit,
            // A fresh history starts at its saved state.
            saved: Some(0),
        }
    }

    /// Records a new edit: the redo side is discarded, and the oldest entries beyond the limit are dropped.
    pub(crate) fn record(&mut self, entry: U) {
        if self.saved.is_some_and(|s| s > self.undo.len()) {
            // The saved state lay on the redo side, which this edit discards.
            self.saved = None;
        }
        self.redo.clear();
        self.undo.push_back(entry);
        self.trim();
    }

    fn trim(&mut self) {
        while self.undo.len() > self.limit {
            self.undo.pop_front();
            self.saved = match self.saved {
                Some(0) | None => None,
                Some(s) => Some(s - 1),
            };
        }
    }

    pub(crate) fn pop_undo(&mut self) -> Option<U> {
        self.undo.pop_back()
    }

    /// Puts back an entry taken by `pop_undo` or moved over from the redo side; never trims or clears.
    pub(crate) fn push_undo(&mut self, entry: U) {
        self.undo.push_back(entry);
    }

    pub(crate) fn pop_redo(&mut self) -> Option<R> {
        self.redo.pop()
    }

    pub(crate) fn push_redo(&mut self, entry: R) {
        self.redo.push(entry);
    }

    pub(crate) fn undo_len(&self) -> usize {
        self.undo.len()
    }

    pub(crate) fn redo_len(&self) -> usize {
        self.redo.len()
    }

    pub(crate) fn undo_entries(&self) -> impl DoubleEndedIterator<Item = &U> + ExactSizeIterator {
        self.undo.iter()
    }

    pub(crate) fn redo_entries(&self) -> impl DoubleEndedIterator<Item = &R> + ExactSizeIterator {
        self.redo.iter()
    }

    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    pub(crate) fn set_limit(&mut self, limit: usize) {
        self.limit = limit;
        // Trimming with a non-empty redo side is fine: every position shifts by one per dropped entry.
        self.trim();
    }

    pub(crate) fn mark_saved(&mut self) {
        self.saved = Some(self.undo.len());
    }

    pub(crate) fn is_saved(&self) -> bool {
        self.saved == Some(self.undo.len())
    }

    pub(crate) fn clear(&mut self) {
        let saved_here = self.is_saved();
        self.undo.clear();
        self.redo.clear();
        self.saved = saved_here.then_some(0);
    }
}
