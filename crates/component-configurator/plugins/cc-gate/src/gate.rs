//! The gate's code: a component, a record filter and statistics. The plugin exports it from
//! `lib.rs`; the extension interface benchmark compiles this file into itself as well, to call
//! the same code directly (`benches/extension_interface.rs`).

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use component_configurator::ext::{FilterInput, FilterVerdict, RecordFilter, Statistics};
use component_configurator::{Component, ComponentError};

/// The gate.
#[derive(Debug)]
pub struct Gate {
    threshold: AtomicU8,
    seen: AtomicU64,
    dropped: AtomicU64,
    rewritten: AtomicU64,
}

impl Default for Gate {
    fn default() -> Self {
        Gate {
            threshold: AtomicU8::new(6),
            seen: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            rewritten: AtomicU64::new(0),
        }
    }
}

fn parse(args: &[String]) -> Result<u8, ComponentError> {
    match args {
        [] => Ok(6),
        [flag, v] if flag == "-s" => match v.parse::<u8>() {
            Ok(s) if s <= 7 => Ok(s),
            _ => Err(ComponentError::new(format!("-s: bad severity `{v}` (0-7)"))),
        },
        _ => Err(ComponentError::new("expected -s SEVERITY")),
    }
}

impl Component for Gate {
    fn check(&self, args: &[String]) -> Result<(), ComponentError> {
        parse(args).map(drop)
    }
    fn init(&mut self, args: &[String]) -> Result<(), ComponentError> {
        self.threshold.store(parse(args)?, Ordering::Relaxed);
        Ok(())
    }
    fn fini(&mut self) -> Result<(), ComponentError> {
        Ok(())
    }
    fn info(&self) -> String {
        format!(
            "gate keeping severity 0-{}",
            self.threshold.load(Ordering::Relaxed)
        )
    }
}

/// Masks every digit of a run of 13 or more digits (dashes and spaces allowed inside)
/// but the last four.
fn mask_cards(text: &str) -> Option<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut changed = false;
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_digit() {
            let mut j = i;
            while j < chars.len()
                && (chars[j].is_ascii_digit() || chars[j] == '-' || chars[j] == ' ')
            {
                j += 1;
            }
            while j > i && !chars[j - 1].is_ascii_digit() {
                j -= 1;
            }
            let digits = chars[i..j].iter().filter(|c| c.is_ascii_digit()).count();
            if digits >= 13 {
                let mut left = digits;
                for &c in &chars[i..j] {
                    if c.is_ascii_digit() {
                        out.push(if left > 4 { '*' } else { c });
                        left -= 1;
                    } else {
                        out.push(c);
                    }
                }
                changed = true;
            } else {
                out.extend(&chars[i..j]);
            }
            i = j;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    changed.then_some(out)
}

impl RecordFilter for Gate {
    fn filter(&self, r: &FilterInput<'_>) -> FilterVerdict {
        self.seen.fetch_add(1, Ordering::Relaxed);
        if r.severity > self.threshold.load(Ordering::Relaxed) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return FilterVerdict::Drop;
        }
        match mask_cards(r.message) {
            Some(masked) => {
                self.rewritten.fetch_add(1, Ordering::Relaxed);
                FilterVerdict::Rewrite(masked)
            }
            None => FilterVerdict::Pass,
        }
    }
}

impl Statistics for Gate {
    fn counters(&self) -> Vec<(String, u64)> {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        vec![
            ("seen".into(), get(&self.seen)),
            ("dropped".into(), get(&self.dropped)),
            ("rewritten".into(), get(&self.rewritten)),
        ]
    }
}
