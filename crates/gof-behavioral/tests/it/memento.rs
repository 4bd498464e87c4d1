//! Memento: caretakers, the saved marker, history limits, and the cost of full versus delta mementos.

use gof_behavioral::memento::{
    Caretaker, ChannelConfig, ConfigCommand, DeviceConfig, Footprint, Originator, Snapshotting,
    UndoStack,
};

fn device(channels: usize) -> DeviceConfig {
    let mut d = DeviceConfig::new("gateway-north").unwrap();
    for i in 0..channels {
        d.add_channel(ChannelConfig::new(format!("sensor-{i:02}"), 1_000 * i as i32).unwrap())
            .unwrap();
    }
    d
}

fn threshold(channel: usize, threshold: i32) -> ConfigCommand {
    ConfigCommand::SetThreshold { channel, threshold }
}

#[test]
fn caretaker_checkpoint_undo_redo() {
    let mut d = device(2);
    let original = d.clone();
    let mut history = Caretaker::default();
    history.checkpoint(&d);
    d.set_threshold(1, 7).unwrap();
    let edited = d.clone();
    assert!(history.undo(&mut d));
    assert_eq!(d, original);
    assert!(!history.undo(&mut d));
    assert!(history.redo(&mut d));
    assert_eq!(d, edited);
    assert!(!history.redo(&mut d));
}

#[test]
fn the_saved_marker_follows_undo_and_redo_and_dies_with_its_branch() {
    let mut d = device(1);
    let mut stack = UndoStack::default();
    assert!(stack.is_saved(), "a fresh history is at its saved state");
    stack.apply(&mut d, threshold(0, 1)).unwrap();
    assert!(!stack.is_saved());
    stack.mark_saved();
    stack.apply(&mut d, threshold(0, 2)).unwrap();
    assert!(!stack.is_saved());
    stack.undo(&mut d);
    assert!(stack.is_saved());
    stack.undo(&mut d);
    assert!(!stack.is_saved());
    stack.redo(&mut d).unwrap();
    assert!(stack.is_saved());
    // Undo below the saved state, then branch: the saved state is gone for good.
    stack.undo(&mut d);
    stack.apply(&mut d, threshold(0, 3)).unwrap();
    assert!(!stack.is_saved());
    stack.undo(&mut d);
    assert!(!stack.is_saved());
    stack.mark_saved();
    assert!(stack.is_saved());
}

#[test]
fn the_limit_forgets_the_oldest_steps_and_a_saved_state_among_them() {
    let mut d = device(1);
    let mut history = Caretaker::with_limit(3);
    history.mark_saved();
    for t in 1..=5 {
        history.try_edit(&mut d, |c| c.set_threshold(0, t)).unwrap();
    }
    assert_eq!(history.undo_len(), 3);
    while history.undo(&mut d) {}
    assert_eq!(
        d.channels()[0].threshold(),
        2,
        "steps 1 and 2 were forgotten"
    );
    assert!(!history.is_saved(), "the saved state fell off the history");
    history.set_limit(1);
    assert_eq!(
        history.redo_len(),
        3,
        "lowering the limit trims only the undo side"
    );
    while history.redo(&mut d) {}
    assert_eq!(d.channels()[0].threshold(), 5, "every step redone");
    assert_eq!(history.undo_len(), 1, "redo keeps the lowered limit");
}

#[test]
fn a_zero_limit_keeps_nothing() {
    let mut d = device(1);
    let mut stack = UndoStack::with_limit(0);
    stack.apply(&mut d, threshold(0, 9)).unwrap();
    assert!(!stack.can_undo());
    assert_eq!(stack.undo(&mut d), None);
    assert_eq!(d.channels()[0].threshold(), 9);
}

#[test]
fn a_failed_command_is_not_recorded_and_a_failed_redo_stays_redoable() {
    let mut d = device(1);
    let mut stack = UndoStack::default();
    assert!(stack.apply(&mut d, threshold(5, 1)).is_err());
    assert!(!stack.can_undo());
    let add = ConfigCommand::AddChannel(ChannelConfig::new("extra", 0).unwrap());
    stack.apply(&mut d, add.clone()).unwrap();
    stack.apply(&mut d, threshold(1, 42)).unwrap();
    assert_eq!(stack.undo(&mut d), Some(&threshold(1, 42)));
    // Replace the target behind the stack's back, so that channel 1 is gone.
    d = device(1);
    let before = d.clone();
    assert!(stack.redo(&mut d).is_err());
    assert_eq!(d, before);
    assert_eq!(
        stack.redo_commands().collect::<Vec<_>>(),
        [&threshold(1, 42)]
    );
    d = device(2);
    assert_eq!(stack.redo(&mut d).unwrap(), Some(&threshold(1, 42)));
    assert_eq!(d.channels()[1].threshold(), 42);
    assert_eq!(
        stack.undo_commands().collect::<Vec<_>>(),
        [&add, &threshold(1, 42)]
    );
}

#[test]
fn undo_stacks_with_full_and_delta_mementos_agree_and_deltas_cost_less() {
    const EDITS: usize = 100;
    let mut delta_target = device(16);
    let mut full_target = device(16);
    let mut delta = UndoStack::with_limit(EDITS);
    let mut full = UndoStack::with_limit(EDITS);
    for i in 0..EDITS {
        let cmd = threshold(i % 16, i as i32);
        delta.apply(&mut delta_target, cmd.clone()).unwrap();
        full.apply(&mut full_target, Snapshotting(cmd)).unwrap();
    }
    assert_eq!(delta_target, full_target);
    let (delta_bytes, full_bytes) = (delta.footprint(), full.footprint());
    let encoded = full_target.save().encoded_len() * EDITS;
    println!(
        "{EDITS} edits of a 16-channel config: delta mementos {delta_bytes} B, \
         full mementos {full_bytes} B in memory ({encoded} B encoded)"
    );
    assert!(
        delta_bytes * 10 < full_bytes,
        "delta {delta_bytes} B, full {full_bytes} B"
    );
    while delta.undo(&mut delta_target).is_some() {}
    while full.undo(&mut full_target).is_some() {}
    assert_eq!(delta_target, device(16));
    assert_eq!(full_target, device(16));
}

#[test]
fn footprint_grows_with_the_state_captured() {
    let small = device(1).save().footprint();
    let large = device(32).save().footprint();
    assert!(large > small * 10, "{small} vs {large}");
    let mut history: Caretaker<DeviceConfig> = Caretaker::default();
    let d = device(4);
    history.checkpoint(&d);
    history.checkpoint(&d);
    assert_eq!(history.footprint(), 2 * d.save().footprint());
}
