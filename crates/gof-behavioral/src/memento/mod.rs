//! Memento: capture an originator's state without exposing it, and a caretaker that keeps the captures for undo and redo.
//!
//! | participant | type |
//! |---|---|
//! | Originator | [`Originator`], implemented by [`DeviceConfig`] |
//! | Memento (full) | [`ConfigMemento`]: opaque outside [`device`](self::DeviceConfig)'s module, byte-serialisable |
//! | Memento (delta) | [`ConfigDelta`]: only the fields one command changed |
//! | Caretaker | [`Caretaker`] (snapshots) and [`UndoStack`] (commands with their mementos) |
//! | Command | [`Command`], implemented by [`ConfigCommand`]; [`Snapshotting`] makes any command undo through full snapshots |
//!
//! # Narrow and wide interfaces
//!
//! A memento's fields are private to the module that defines its originator, so only the originator (the wide interface) can read them.
//! Everyone else, the caretakers included, sees the narrow interface: clone it, compare it, measure it, serialise it, hand it back.
//! The compiler enforces this:
//!
//! ```compile_fail
//! use gof_behavioral::memento::{DeviceConfig, Originator};
//!
//! let config = DeviceConfig::new("pump-7").unwrap();
//! let memento = config.save();
//! let _peek = memento.state; // error[E0616]: field `state` of struct `ConfigMemento` is private
//! ```

mod caretaker;
mod device;
mod timeline;
mod undo_stack;

pub use caretaker::{Caretaker, DEFAULT_HISTORY_LIMIT};
pub use device::{
    ChannelConfig, ConfigCommand, ConfigDelta, ConfigMemento, DeviceConfig, MAX_CHANNELS,
    MAX_ENCODED_LEN, MAX_LABEL_LEN, MAX_NAME_LEN, MAX_SAMPLE_RATE_HZ, MEMENTO_VERSION,
};
pub use undo_stack::{Snapshotting, UndoStack};

/// An object whose state can be captured in a memento and restored from it (the GoF *Originator*).
pub trait Originator {
    /// The memento type; its contents should be readable only by the originator.
    type Memento;

    /// Captures the current state.
    fn save(&self) -> Self::Memento;

    /// Returns to the state captured in `memento`.
    fn restore(&mut self, memento: Self::Memento);
}

/// An action on a target that can be undone with the memento it returns (the GoF *Command*, using a *Memento* for undo).
///
/// # Contract
///
/// * If `execute` fails, the target is unchanged.
/// * `undo(target, m)`, with `m` from the `execute` that brought the target to its current state, restores the state before that `execute`.
pub trait Command<T> {
    /// What `execute` captures to undo itself.
    type Memento;
    /// Why `execute` may refuse.
    type Error;

    /// Applies the command, returning what is needed to undo it.
    ///
    /// # Errors
    ///
    /// When the command does not apply to `target`; the target is then unchanged.
    fn execute(&self, target: &mut T) -> Result<Self::Memento, Self::Error>;

    /// Reverts the effect of the `execute` that returned `memento`.
    fn undo(&self, target: &mut T, memento: Self::Memento);
}

/// The memory a value holds: its own size plus the heap it owns, in bytes.
///
/// Used to measure what a history of mementos costs (the course: "using mementos might be expensive").
pub trait Footprint {
    /// Bytes held, inline and on the heap.
    fn footprint(&self) -> usize;
}
