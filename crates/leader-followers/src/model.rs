//! Placeholder: the per-registration state machine, as a pure model.
