//! The command caretaker: an undo stack of commands, each with the memento it needs to undo itself.

use std::fmt;

use super::timeline::Timeline;
use super::{Command, Footprint, Originator};

/// An undo stack of commands (Command combined with Memento, as the course suggests for undo and redo).
///
/// Each applied command is kept with the memento its `execute` returned; `undo` hands the memento back to the command,
/// and `redo` executes the command again.
/// With delta mementos such as [`ConfigDelta`](super::ConfigDelta), each step costs only what it changed;
/// wrap the commands in [`Snapshotting`] to undo through full snapshots instead.
/// History limit and saved marker behave as in [`Caretaker`](super::Caretaker), and so do the laws listed there.
///
/// ```
/// use gof_behavioral::memento::{ChannelConfig, ConfigCommand, DeviceConfig, UndoStack};
///
/// let mut config = DeviceConfig::new("pump-7")?;
/// config.add_channel(ChannelConfig::new("inlet", 4_000)?)?;
/// let mut stack = UndoStack::default();
///
/// stack.apply(&mut config, ConfigCommand::SetThreshold { channel: 0, threshold: 4_500 })?;
/// stack.apply(&mut config, ConfigCommand::SetSampleRate(50))?;
/// assert_eq!(stack.undo(&mut config), Some(&ConfigCommand::SetSampleRate(50)));
/// stack.undo(&mut config);
/// assert_eq!(config.channels()[0].threshold(), 4_000);
/// stack.redo(&mut config)?;
/// assert_eq!(config.channels()[0].threshold(), 4_500);
/// # Ok::<(), gof_behavioral::Error>(())
/// ```
pub struct UndoStack<T, C: Command<T>> {
    timeline: Timeline<(C, C::Memento), C>,
}

impl<T, C: Command<T>> Default for UndoStack<T, C> {
    fn default() -> Self {
        Self::with_limit(super::DEFAULT_HISTORY_LIMIT)
    }
}

impl<T, C: Command<T> + fmt::Debug> fmt::Debug for UndoStack<T, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UndoStack")
            .field(
                "undo",
                &self
                    .timeline
                    .undo_entries()
                    .map(|(c, _)| c)
                    .collect::<Vec<_>>(),
            )
            .field("redo", &self.timeline.redo_entries().collect::<Vec<_>>())
            .field("limit", &self.timeline.limit())
            .field("saved", &self.timeline.is_saved())
            .finish()
    }
}

/// The caretaker's names in the sequence diagrams drawn from runs.
const OPERATOR: &str = "operator";
const STACK: &str = "UndoStack (caretaker)";

impl<T, C: Command<T>> UndoStack<T, C> {
    /// A stack keeping at most `limit` undo steps (0 keeps none).
    pub fn with_limit(limit: usize) -> Self {
        Self {
            timeline: Timeline::new(limit),
        }
    }

    /// Executes `command` and records it; the redo side is discarded.
    ///
    /// # Errors
    ///
    /// The command's error; the target is unchanged and nothing is recorded.
    pub fn apply(&mut self, target: &mut T, command: C) -> Result<(), C::Error> {
        seq!(OPERATOR => STACK, "apply(command)");
        seq!(STACK => crate::short::<C>(), "execute(&mut target)");
        let memento = command.execute(target).inspect_err(|_| {
            seq!(fail crate::short::<C>() => STACK, "Err: nothing recorded");
        })?;
        seq!(reply crate::short::<C>() => STACK, "memento (opaque)");
        seq!(note STACK, "push (command, memento), clear redo, trim to {}", self.limit());
        self.timeline.record((command, memento));
        Ok(())
    }

    /// Undoes the last command and returns it, or `None` if there is nothing to undo.
    pub fn undo(&mut self, target: &mut T) -> Option<&C> {
        seq!(OPERATOR => STACK, "undo(&mut target)");
        let (command, memento) = self.timeline.pop_undo()?;
        seq!(STACK => crate::short::<C>(), "undo(&mut target, memento)");
        command.undo(target, memento);
        self.timeline.push_redo(command);
        self.timeline.redo_entries().next_back()
    }

    /// Executes the last undone command again and returns it, or `Ok(None)` if there is nothing to redo.
    ///
    /// # Errors
    ///
    /// The command's error, if it no longer applies; the command stays on the redo side and the target is unchanged.
    pub fn redo(&mut self, target: &mut T) -> Result<Option<&C>, C::Error> {
        seq!(OPERATOR => STACK, "redo(&mut target)");
        let Some(command) = self.timeline.pop_redo() else {
            return Ok(None);
        };
        seq!(STACK => crate::short::<C>(), "execute(&mut target) again");
        match command.execute(target) {
            Ok(memento) => {
                self.timeline.push_undo((command, memento));
                Ok(self.timeline.undo_entries().next_back().map(|(c, _)| c))
            }
            Err(err) => {
                self.timeline.push_redo(command);
                Err(err)
            }
        }
    }

    /// The commands that can be undone, oldest first.
    pub fn undo_commands(&self) -> impl DoubleEndedIterator<Item = &C> + ExactSizeIterator {
        self.timeline.undo_entries().map(|(c, _)| c)
    }

    /// The commands that can be redone, next to redo first.
    pub fn redo_commands(&self) -> impl DoubleEndedIterator<Item = &C> + ExactSizeIterator {
        self.timeline.redo_entries().rev()
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

    /// Marks the current state as saved.
    pub fn mark_saved(&mut self) {
        self.timeline.mark_saved();
    }

    /// Whether the target is at the state last marked saved.
    pub fn is_saved(&self) -> bool {
        self.timeline.is_saved()
    }

    /// Forgets all undo and redo steps; the saved marker survives only if the current state is the saved one.
    pub fn clear(&mut self) {
        self.timeline.clear();
    }
}

impl<T, C> UndoStack<T, C>
where
    C: Command<T> + Footprint,
    C::Memento: Footprint,
{
    /// Bytes held by the kept commands and their mementos.
    pub fn footprint(&self) -> usize {
        self.timeline
            .undo_entries()
            .map(|(c, m)| c.footprint() + m.footprint())
            .sum::<usize>()
            + self
                .timeline
                .redo_entries()
                .map(Footprint::footprint)
                .sum::<usize>()
    }
}

/// Runs a command but undoes it through a full snapshot of the target instead of the command's own memento.
///
/// Putting `UndoStack<T, C>` beside `UndoStack<T, Snapshotting<C>>` compares delta and full mementos on the same edits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshotting<C>(pub C);

impl<T: Originator, C: Command<T>> Command<T> for Snapshotting<C> {
    type Memento = T::Memento;
    type Error = C::Error;

    fn execute(&self, target: &mut T) -> Result<T::Memento, C::Error> {
        let before = target.save();
        self.0.execute(target)?;
        Ok(before)
    }

    fn undo(&self, target: &mut T, memento: T::Memento) {
        target.restore(memento);
    }
}

impl<C: Footprint> Footprint for Snapshotting<C> {
    fn footprint(&self) -> usize {
        self.0.footprint()
    }
}
