//! Expected output: where it lives and how an example's actual stdout is compared with it.

use std::path::{Path, PathBuf};

/// How many changed lines of each side a diff shows before eliding the rest.
const MAX_CHANGED_LINES: usize = 8;
/// How many unchanged lines a diff shows around the change.
const CONTEXT_LINES: usize = 2;

/// The file holding the exact expected stdout of `example` in the package at `package_dir`.
pub(crate) fn path(package_dir: &Path, example: &str) -> PathBuf {
    package_dir
        .join("examples")
        .join("expected")
        .join(format!("{example}.stdout"))
}

/// Compares outputs byte for byte; on a mismatch returns a short diff of the differing region.
pub(crate) fn compare(expected: &[u8], actual: &[u8]) -> Option<String> {
    if expected == actual {
        None
    } else {
        Some(diff(
            &String::from_utf8_lossy(expected),
            &String::from_utf8_lossy(actual),
        ))
    }
}

/// A unified-style diff with one hunk: the region between the longest common prefix and the
/// longest common suffix of the two texts' lines, with a little context and long runs elided.
///
/// Lines keep their terminators while being compared, so a missing final newline shows up.
pub(crate) fn diff(expected: &str, actual: &str) -> String {
    let old: Vec<&str> = expected.split_inclusive('\n').collect();
    let new: Vec<&str> = actual.split_inclusive('\n').collect();
    let prefix = old.iter().zip(&new).take_while(|(a, b)| a == b).count();
    let suffix = old[prefix..]
        .iter()
        .rev()
        .zip(new[prefix..].iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    let (old_changed, new_changed) = (
        &old[prefix..old.len() - suffix],
        &new[prefix..new.len() - suffix],
    );

    let mut out = String::from("--- expected\n+++ actual\n");
    let context_start = prefix.saturating_sub(CONTEXT_LINES);
    out.push_str(&format!(
        "@@ first difference at line {} (expected {} lines, got {}) @@\n",
        prefix + 1,
        old.len(),
        new.len()
    ));
    for line in &old[context_start..prefix] {
        push_line(&mut out, ' ', line);
    }
    push_side(&mut out, '-', old_changed);
    push_side(&mut out, '+', new_changed);
    if old_changed.is_empty() && new_changed.is_empty() {
        // Only possible when invalid UTF-8 was replaced by the same character on both sides.
        out.push_str("(the outputs differ only in bytes that are not valid UTF-8)\n");
    }
    let after = old.len() - suffix;
    for line in old[after..].iter().take(CONTEXT_LINES) {
        push_line(&mut out, ' ', line);
    }
    out
}

/// Appends up to [`MAX_CHANGED_LINES`] lines with `marker`, then a note of how many were elided.
fn push_side(out: &mut String, marker: char, lines: &[&str]) {
    for line in lines.iter().take(MAX_CHANGED_LINES) {
        push_line(out, marker, line);
    }
    if lines.len() > MAX_CHANGED_LINES {
        out.push_str(&format!(
            "{marker} ... {} more lines\n",
            lines.len() - MAX_CHANGED_LINES
        ));
    }
}

/// Appends one line with its marker, flagging a line that lacks its newline.
fn push_line(out: &mut String, marker: char, line: &str) {
    out.push(marker);
    match line.strip_suffix('\n') {
        Some(body) => {
            out.push_str(body);
            out.push('\n');
        }
        None => {
            out.push_str(line);
            out.push_str("\n\\ no newline at end of output\n");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_files_sit_beside_the_examples() {
        assert_eq!(
            path(Path::new("/ws/crates/reactor"), "reactor_echo"),
            Path::new("/ws/crates/reactor/examples/expected/reactor_echo.stdout")
        );
    }

    #[test]
    fn identical_output_matches() {
        assert_eq!(compare(b"a\nb\n", b"a\nb\n"), None);
        assert_eq!(compare(b"", b""), None);
    }

    #[test]
    fn a_changed_line_is_shown_with_context() {
        let diff = compare(
            b"one\ntwo\nthree\nfour\nfive\nsix\n",
            b"one\ntwo\nthree\nFOUR\nfive\nsix\n",
        )
        .expect("outputs differ");
        assert_eq!(
            diff,
            "--- expected\n+++ actual\n\
             @@ first difference at line 4 (expected 6 lines, got 6) @@\n \
             two\n three\n-four\n+FOUR\n five\n six\n"
        );
    }

    #[test]
    fn extra_and_missing_lines_appear_on_one_side_only() {
        let diff = diff("a\nb\nc\n", "a\nc\n");
        assert!(diff.contains("\n-b\n"), "{diff}");
        assert!(!diff.lines().skip(2).any(|l| l.starts_with('+')), "{diff}");

        let diff = super::diff("a\nc\n", "a\nb\nc\n");
        assert!(diff.contains("\n+b\n"), "{diff}");
        assert!(!diff.lines().skip(2).any(|l| l.starts_with('-')), "{diff}");
    }

    #[test]
    fn a_missing_final_newline_is_a_difference_and_is_flagged() {
        let diff = compare(b"done\n", b"done").expect("outputs differ");
        assert!(
            diff.contains("-done\n+done\n\\ no newline at end of output\n"),
            "{diff}"
        );
    }

    #[test]
    fn long_changes_are_elided() {
        let expected: String = (0..30).map(|i| format!("line {i}\n")).collect();
        let diff = diff(&expected, "");
        assert_eq!(
            diff.lines().filter(|l| l.starts_with("-line")).count(),
            MAX_CHANGED_LINES
        );
        assert!(diff.contains("- ... 22 more lines\n"), "{diff}");
    }

    #[test]
    fn invalid_utf8_is_compared_by_bytes_and_shown_lossily() {
        let diff = compare(b"\xff\n", b"\xfe\n").expect("bytes differ");
        assert!(diff.contains("not valid UTF-8"), "{diff}");
    }
}
