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
    /// Puts an entry back on the undo side (a redo, or an undo that failed), keeping the limit:
    /// after the limit was lowered, redoing drops the oldest undo steps.
    pub(crate) fn push_undo(&mut self, entry: U) {
        self.undo.push_back(entry);
        self.trim();
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

#[cfg(test)]
mod tests {
    use super::Timeline;

    /// Undoes one step the way both caretakers do: the undo entry comes off, a redo entry goes on.
    fn undo(t: &mut Timeline<&'static str, &'static str>) -> Option<&'static str> {
        let entry = t.pop_undo()?;
        t.push_redo(entry);
        Some(entry)
    }

    /// Redoes one step the way both caretakers do.
    fn redo(t: &mut Timeline<&'static str, &'static str>) -> Option<&'static str> {
        let entry = t.pop_redo()?;
        t.push_undo(entry);
        Some(entry)
    }

    fn undo_side(t: &Timeline<&'static str, &'static str>) -> Vec<&'static str> {
        t.undo_entries().copied().collect()
    }

    #[test]
    fn a_fresh_timeline_is_empty_and_saved() {
        let t: Timeline<&str, &str> = Timeline::new(3);
        assert_eq!((t.undo_len(), t.redo_len(), t.limit()), (0, 0, 3));
        assert!(t.is_saved());
    }

    #[test]
    fn recording_past_the_limit_drops_the_oldest() {
        let mut t = Timeline::new(2);
        for entry in ["a", "b", "c", "d"] {
            t.record(entry);
        }
        assert_eq!(undo_side(&t), ["c", "d"]);
        assert_eq!(undo(&mut t), Some("d"));
        assert_eq!(undo(&mut t), Some("c"));
        assert_eq!(undo(&mut t), None, "at most `limit` undos");
    }

    #[test]
    fn a_zero_limit_keeps_nothing() {
        let mut t: Timeline<&str, &str> = Timeline::new(0);
        t.record("a");
        assert_eq!((t.undo_len(), t.redo_len()), (0, 0));
    }

    #[test]
    fn recording_after_an_undo_drops_the_redo_side() {
        let mut t = Timeline::new(5);
        t.record("a");
        t.record("b");
        assert_eq!(undo(&mut t), Some("b"));
        assert_eq!(t.redo_len(), 1);
        t.record("c");
        assert_eq!(t.redo_len(), 0);
        assert_eq!(redo(&mut t), None);
        assert_eq!(undo_side(&t), ["a", "c"]);
    }

    #[test]
    fn the_saved_marker_follows_undo_and_redo() {
        let mut t = Timeline::new(5);
        t.record("a");
        t.mark_saved();
        t.record("b");
        assert!(!t.is_saved());
        undo(&mut t);
        assert!(t.is_saved());
        undo(&mut t);
        assert!(!t.is_saved());
        redo(&mut t);
        assert!(t.is_saved());
        // A redo that fails is put back unchanged: the marker does not move.
        let entry = t.pop_redo().unwrap();
        t.push_redo(entry);
        assert!(t.is_saved());
    }

    #[test]
    fn an_edit_from_the_saved_state_keeps_the_marker() {
        let mut t = Timeline::new(5);
        t.record("a");
        t.record("b");
        undo(&mut t);
        assert!(!t.is_saved());
        t.mark_saved();
        // The edit discards "b" on the redo side, but the saved state (position 1) stays on the undo side.
        t.record("c");
        assert!(!t.is_saved());
        undo(&mut t);
        assert!(t.is_saved());
    }

    #[test]
    fn the_saved_marker_dies_with_the_discarded_redo_side() {
        let mut t = Timeline::new(5);
        t.record("a");
        t.mark_saved();
        undo(&mut t);
        // Back at the saved depth, but on another branch: not the saved state.
        t.record("b");
        assert_eq!(t.undo_len(), 1);
        assert!(!t.is_saved());
        undo(&mut t);
        redo(&mut t);
        assert!(!t.is_saved());
    }

    #[test]
    fn the_saved_marker_shifts_with_the_limit_and_dies_beyond_it() {
        let mut t = Timeline::new(2);
        t.record("a");
        t.mark_saved();
        // Dropping "a" shifts every position down by one; the saved state is still reachable.
        t.record("b");
        t.record("c");
        assert_eq!(undo_side(&t), ["b", "c"]);
        undo(&mut t);
        undo(&mut t);
        assert!(t.is_saved());
        // Edits from there push the saved state (now position 0) off the front once they exceed the limit.
        t.record("d");
        t.record("e");
        t.record("f");
        while undo(&mut t).is_some() {
            assert!(!t.is_saved());
        }
        assert!(!t.is_saved(), "the saved state fell off the history");
        t.mark_saved();
        assert!(t.is_saved());
    }

    #[test]
    fn lowering_the_limit_trims_the_undo_side_and_redo_keeps_it() {
        let mut t = Timeline::new(5);
        for entry in ["a", "b", "c"] {
            t.record(entry);
        }
        t.mark_saved();
        undo(&mut t);
        undo(&mut t);
        t.set_limit(0);
        assert_eq!((t.undo_len(), t.redo_len(), t.limit()), (0, 2, 0));
        redo(&mut t);
        redo(&mut t);
        assert!(
            t.is_saved(),
            "the marker on the redo side shifted with the trim"
        );
        // Redo keeps the lowered limit: at most `limit` undo steps, ever.
        assert_eq!(t.undo_len(), 0);
    }

    #[test]
    fn clear_keeps_the_marker_only_at_the_saved_state() {
        let mut t = Timeline::new(5);
        t.record("a");
        t.mark_saved();
        t.record("b");
        undo(&mut t);
        t.clear();
        assert_eq!((t.undo_len(), t.redo_len()), (0, 0));
        assert!(t.is_saved());
        t.record("c");
        t.clear();
        assert!(!t.is_saved());
    }
}
