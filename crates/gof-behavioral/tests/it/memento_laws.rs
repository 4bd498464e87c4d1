//! The undo/redo laws as property tests, and a model check of both caretakers against a reference history.

use gof_behavioral::memento::{
    Caretaker, ChannelConfig, Command, ConfigCommand, DeviceConfig, Snapshotting, UndoStack,
};
use proptest::prelude::*;

fn start() -> DeviceConfig {
    let mut d = DeviceConfig::new("rtu-3").unwrap();
    d.add_channel(ChannelConfig::new("flow", 100).unwrap())
        .unwrap();
    d.add_channel(ChannelConfig::new("level", 200).unwrap())
        .unwrap();
    d
}

/// Edits, some of which fail (too-long names, bad rates, missing channels).
fn command() -> impl Strategy<Value = ConfigCommand> {
    prop_oneof![
        "[a-z]{0,40}".prop_map(ConfigCommand::Rename),
        (0u32..200_000).prop_map(ConfigCommand::SetSampleRate),
        any::<u16>().prop_map(ConfigCommand::SetReportInterval),
        (0usize..4, any::<i32>())
            .prop_map(|(channel, threshold)| ConfigCommand::SetThreshold { channel, threshold }),
        (0usize..4, any::<bool>())
            .prop_map(|(channel, enabled)| ConfigCommand::SetEnabled { channel, enabled }),
        "[a-z]{0,8}".prop_map(|l| ConfigCommand::AddChannel(ChannelConfig::new(l, 0).unwrap())),
    ]
}

#[derive(Debug, Clone)]
enum Op {
    Edit(ConfigCommand),
    Undo,
    Redo,
    MarkSaved,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => command().prop_map(Op::Edit),
        2 => Just(Op::Undo),
        2 => Just(Op::Redo),
        1 => Just(Op::MarkSaved),
    ]
}

/// The reference: the list of reachable states, the current position, the saved position.
#[derive(Debug)]
struct Model {
    states: Vec<DeviceConfig>,
    cursor: usize,
    saved: Option<usize>,
    limit: usize,
}

impl Model {
    fn new(limit: usize) -> Self {
        Self {
            states: vec![start()],
            cursor: 0,
            saved: Some(0),
            limit,
        }
    }

    fn apply(&mut self, op: &Op) {
        match op {
            Op::Edit(cmd) => {
                let mut next = self.states[self.cursor].clone();
                if cmd.execute(&mut next).is_ok() {
                    self.states.truncate(self.cursor + 1);
                    if self.saved.is_some_and(|s| s > self.cursor) {
                        self.saved = None;
                    }
                    self.states.push(next);
                    self.cursor += 1;
                    while self.cursor > self.limit {
                        self.states.remove(0);
                        self.cursor -= 1;
                        self.saved = self.saved.and_then(|s| s.checked_sub(1));
                    }
                }
            }
            Op::Undo => self.cursor = self.cursor.saturating_sub(1),
            Op::Redo => {
                if self.cursor + 1 < self.states.len() {
                    self.cursor += 1;
                }
            }
            Op::MarkSaved => self.saved = Some(self.cursor),
        }
    }

    fn current(&self) -> &DeviceConfig {
        &self.states[self.cursor]
    }

    fn undo_len(&self) -> usize {
        self.cursor
    }

    fn redo_len(&self) -> usize {
        self.states.len() - 1 - self.cursor
    }

    fn is_saved(&self) -> bool {
        self.saved == Some(self.cursor)
    }
}

/// Runs `ops` on an undo stack of delta mementos.
fn run_delta(stack: &mut UndoStack<DeviceConfig, ConfigCommand>, d: &mut DeviceConfig, ops: &[Op]) {
    for op in ops {
        match op {
            Op::Edit(cmd) => {
                let _ = stack.apply(d, cmd.clone());
            }
            Op::Undo => {
                stack.undo(d);
            }
            Op::Redo => {
                stack.redo(d).unwrap();
            }
            Op::MarkSaved => stack.mark_saved(),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn both_caretakers_match_the_model(limit in 0usize..6, ops in prop::collection::vec(op(), 0..60)) {
        let mut model = Model::new(limit);
        let (mut a, mut b, mut c) = (start(), start(), start());
        let mut snapshots: Caretaker<DeviceConfig> = Caretaker::with_limit(limit);
        let mut deltas: UndoStack<DeviceConfig, ConfigCommand> = UndoStack::with_limit(limit);
        let mut fulls: UndoStack<DeviceConfig, Snapshotting<ConfigCommand>> = UndoStack::with_limit(limit);
        for op in &ops {
            model.apply(op);
            match op {
                Op::Edit(cmd) => {
                    let _ = snapshots.try_edit(&mut a, |d| cmd.execute(d).map(drop));
                    let _ = deltas.apply(&mut b, cmd.clone());
                    let _ = fulls.apply(&mut c, Snapshotting(cmd.clone()));
                }
                Op::Undo => {
                    snapshots.undo(&mut a);
                    deltas.undo(&mut b);
                    fulls.undo(&mut c);
                }
                Op::Redo => {
                    snapshots.redo(&mut a);
                    deltas.redo(&mut b).unwrap();
                    fulls.redo(&mut c).unwrap();
                }
                Op::MarkSaved => {
                    snapshots.mark_saved();
                    deltas.mark_saved();
                    fulls.mark_saved();
                }
            }
            for (state, undo, redo, saved) in [
                (&a, snapshots.undo_len(), snapshots.redo_len(), snapshots.is_saved()),
                (&b, deltas.undo_len(), deltas.redo_len(), deltas.is_saved()),
                (&c, fulls.undo_len(), fulls.redo_len(), fulls.is_saved()),
            ] {
                prop_assert_eq!(state, model.current(), "after {:?}", op);
                prop_assert_eq!(undo, model.undo_len());
                prop_assert_eq!(redo, model.redo_len());
                prop_assert_eq!(saved, model.is_saved());
            }
        }
    }

    #[test]
    fn undo_after_an_edit_restores(prefix in prop::collection::vec(op(), 0..30), cmd in command()) {
        let (mut stack, mut d) = (UndoStack::default(), start());
        run_delta(&mut stack, &mut d, &prefix);
        let before = d.clone();
        if stack.apply(&mut d, cmd.clone()).is_ok() {
            prop_assert_eq!(stack.undo(&mut d), Some(&cmd));
        }
        prop_assert_eq!(d, before);
    }

    #[test]
    fn redo_after_undo_reapplies(prefix in prop::collection::vec(op(), 0..30), cmd in command()) {
        let (mut stack, mut d) = (UndoStack::default(), start());
        run_delta(&mut stack, &mut d, &prefix);
        prop_assume!(stack.apply(&mut d, cmd).is_ok());
        let after = d.clone();
        stack.undo(&mut d);
        prop_assert!(stack.redo(&mut d).unwrap().is_some());
        prop_assert_eq!(d, after);
    }

    #[test]
    fn a_new_edit_clears_redo(
        prefix in prop::collection::vec(op(), 0..30),
        undos in 1usize..5,
        cmd in command(),
    ) {
        let (mut stack, mut d) = (UndoStack::default(), start());
        run_delta(&mut stack, &mut d, &prefix);
        for _ in 0..undos {
            stack.undo(&mut d);
        }
        prop_assume!(stack.apply(&mut d, cmd).is_ok());
        prop_assert!(!stack.can_redo());
        let before = d.clone();
        prop_assert!(stack.redo(&mut d).unwrap().is_none());
        prop_assert_eq!(d, before);
    }

    #[test]
    fn the_limit_drops_the_oldest(limit in 0usize..8, cmds in prop::collection::vec(command(), 0..30)) {
        let (mut history, mut d) = (Caretaker::with_limit(limit), start());
        let mut states = vec![d.clone()];
        for cmd in &cmds {
            if history.try_edit(&mut d, |d| cmd.execute(d).map(drop)).is_ok() {
                states.push(d.clone());
            }
        }
        let edits = states.len() - 1;
        prop_assert_eq!(history.undo_len(), edits.min(limit));
        while history.undo(&mut d) {}
        prop_assert_eq!(&d, &states[edits - edits.min(limit)]);
    }
}
