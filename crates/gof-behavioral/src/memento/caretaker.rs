//! The snapshot caretaker: keeps full mementos for undo and redo without ever looking inside them.

use std::fmt;

use super::timeline::Timeline;
use super::{Footprint, Originator};

/// How many undo steps a caretaker keeps unless told otherwise.
pub const DEFAULT_HISTORY_LIMIT: usize = 64;

/// Keeps an originator's mementos: undo, redo, a history limit and a saved marker (the GoF *Caretaker*).
///
/// The caretaker stores and hands back mementos but cannot read them.
/// Every recorded edit costs one full memento; see [`UndoStack`](super::UndoStack) for mementos that hold only what changed.
///
/// # Laws
///
/// * After an edit, `undo` restores the state before it.
/// * After an `undo`, `redo` restores the state the undo left.
/// * A new edit discards everything that could be redone.
/// * Beyond `limit` steps the oldest are forgotten: at most `limit` undos are possible.
/// * `is_saved` holds exactly when the originator is back at the state last marked with `mark_saved`;
///   once that state is unreachable (discarded by an edit or beyond the limit) it stays false until the next mark.
///
/// ```
/// use gof_behavioral::memento::{Caretaker, DeviceConfig};
///
/// let mut config = DeviceConfig::new("pump-7")?;
/// let mut history = Caretaker::default();
///
/// history.try_edit(&mut config, |c| c.set_sample_rate(100))?;
/// history.try_edit(&mut config, |c| c.set_sample_rate(250))?;
/// assert!(history.undo(&mut config));
/// assert_eq!(config.sample_rate_hz(), 100);
/// assert!(history.redo(&mut config));
/// assert_eq!(config.sample_rate_hz(), 250);
///
/// // A failed edit is rolled back from the memento and not recorded.
/// assert!(history.try_edit(&mut config, |c| c.set_sample_rate(0)).is_err());
/// assert_eq!(config.sample_rate_hz(), 250);
/// assert_eq!(history.undo_len(), 2);
/// # Ok::<(), gof_behavioral::Error>(())
/// ```
pub struct Caretaker<O: Originator> {
    timeline: Timeline<O::Memento, O::Memento>,
}

impl<O: Originator> Default for Caretaker<O> {
    fn default() -> Self {
        Self::with_limit(DEFAULT_HISTORY_LIMIT)
    }
}

impl<O: Originator> fmt::Debug for Caretaker<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Caretaker")
            .field("undo", &self.timeline.undo_len())
            .field("redo", &self.timeline.redo_len())
            .field("limit", &self.timeline.limit())
            .field("saved", &self.timeline.is_saved())
            .finish()
    }
}

impl<O: Originator> Caretaker<O> {
    /// A caretaker keeping at most `limit` undo steps (0 keeps none).
    pub fn with_limit(limit: usize) -> Self {
        Self {
            timeline: Timeline::new(limit),
        }
    }

    /// Records the originator's current state, before the caller changes it directly.
    pub fn checkpoint(&mut self, originator: &O) {
        self.timeline.record(originator.save());
    }

    /// Records the current state, then applies `edit`.
    pub fn edit<R>(&mut self, originator: &mut O, edit: impl FnOnce(&mut O) -> R) -> R {
        self.checkpoint(originator);
        edit(originator)
    }

    /// Applies `edit`; records it if it succeeds, and restores the state from before it if it fails (a rollback).
    ///
    /// # Errors
    ///
    /// Whatever `edit` returns; nothing is recorded then.
    pub fn try_edit<T, E>(
        &mut self,
        originator: &mut O,
        edit: impl FnOnce(&mut O) -> Result<T, E>,
    ) -> Result<T, E> {
        let originator_name = format!("{} (originator)", crate::short::<O>());
        seq!("operator" => "Caretaker", "try_edit(edit)");
        seq!("Caretaker" => originator_name, "save()");
        let before = originator.save();
        seq!(reply originator_name => "Caretaker", "memento (full snapshot)");
        seq!("Caretaker" => originator_name, "edit(&mut originator)");
        match edit(originator) {
            Ok(value) => {
                seq!(note "Caretaker", "keep the memento for undo");
                self.timeline.record(before);
                Ok(value)
            }
            Err(err) => {
                seq!(fail originator_name => "Caretaker", "Err: the edit failed half-way");
                seq!("Caretaker" => originator_name, "restore(memento)");
                originator.restore(before);
                Err(err)
            }
        }
    }

    /// Steps back one edit; returns `false` if there is none to undo.
    pub fn undo(&mut self, originator: &mut O) -> bool {
        let Some(memento) = self.timeline.pop_undo() else {
            return false;
        };
        self.timeline.push_redo(originator.save());
        originator.restore(memento);
        true
    }

    /// Re-applies the last undone edit; returns `false` if there is none.
    pub fn redo(&mut self, originator: &mut O) -> bool {
        let Some(memento) = self.timeline.pop_redo() else {
            return false;
        };
        self.timeline.push_undo(originator.save());
        originator.restore(memento);
        true
    }

    /// Whether `undo` would do something.
    pub fn can_undo(&self) -> bool {
        self.timeline.undo_len() > 0
    }

    /// Whether `redo` would do something.
    pub fn can_redo(&self) -> bool {
        self.timeline.redo_len() > 0
    }

    /// How many undo steps are kept.
    pub fn undo_len(&self) -> usize {
        self.timeline.undo_len()
    }

    /// How many redo steps are kept.
    pub fn redo_len(&self) -> usize {
        self.timeline.redo_len()
    }

    /// The history limit.
    pub fn limit(&self) -> usize {
        self.timeline.limit()
    }

    /// Changes the history limit, forgetting the oldest steps beyond it.
    pub fn set_limit(&mut self, limit: usize) {
        self.timeline.set_limit(limit);
    }

    /// Marks the current state as saved (written to flash, sent to the device, ...).
    pub fn mark_saved(&mut self) {
        self.timeline.mark_saved();
    }

    /// Whether the originator is at the state last marked saved.
    pub fn is_saved(&self) -> bool {
        self.timeline.is_saved()
    }

    /// Forgets all undo and redo steps; the saved marker survives only if the current state is the saved one.
    pub fn clear(&mut self) {
        self.timeline.clear();
    }
}

impl<O: Originator> Caretaker<O>
where
    O::Memento: Footprint,
{
    /// Bytes held by the kept mementos.
    pub fn footprint(&self) -> usize {
        self.timeline
            .undo_entries()
            .map(Footprint::footprint)
            .sum::<usize>()
            + self
                .timeline
                .redo_entries()
                .map(Footprint::footprint)
                .sum::<usize>()
    }
}
