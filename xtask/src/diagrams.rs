//! Sequence diagrams drawn from real runs.
//!
//! An example that can draw its own interaction writes a mermaid sequence diagram, made from
//! what it observed while it ran (the reactor's upcall trace, for instance), to the file named
//! by the `POSA_DIAGRAM` environment variable when that is set. `cargo xtask demo` sets it for
//! every example: `--diagrams` writes what the run drew to
//! `docs/patterns/generated/<example>.md` and into every page's block between
//! `<!-- diagram: <example> -->` and `<!-- diagram: end -->`; without it, a drawing that differs
//! from the checked-in file fails the demo (a stale diagram). The tidy test checks that each
//! page's block is the generated file, so a page cannot show a diagram no run drew, and that
//! no generated file is stale without running anything: each ends with a stamp, a hash of the
//! sources that drew it (the example, the files of its crate that emit interaction events with
//! `seq!`, the macro's crate `posa-seq` and the recorder `pattern_core::diagram`), which the
//! test computes again.

use std::fs;
use std::path::{Path, PathBuf};

/// The environment variable naming the file an example draws its diagram into.
pub(crate) const ENV: &str = "POSA_DIAGRAM";

/// Where the generated diagram of `example` is checked in.
pub(crate) fn generated(root: &Path, example: &str) -> PathBuf {
    root.join("docs/patterns/generated")
        .join(format!("{example}.md"))
}

fn open_marker(example: &str) -> String {
    format!("<!-- diagram: {example} -->\n")
}

const CLOSE_MARKER: &str = "<!-- diagram: end -->";

/// The examples whose diagram `page` includes, with the text between the markers.
#[cfg(test)]
pub(crate) fn included(page: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = page;
    while let Some(start) = rest.find("<!-- diagram: ") {
        let after = &rest[start + "<!-- diagram: ".len()..];
        let Some(name_end) = after.find(" -->\n") else {
            break;
        };
        let name = &after[..name_end];
        if name == "end" {
            rest = &after[name_end..];
            continue;
        }
        let body = &after[name_end + " -->\n".len()..];
        let Some(end) = body.find(CLOSE_MARKER) else {
            break;
        };
        out.push((name.to_owned(), body[..end].to_owned()));
        rest = &body[end..];
    }
    out
}

/// `page` with the block of `example` replaced by `diagram`; `None` when it has no such block.
pub(crate) fn include(page: &str, example: &str, diagram: &str) -> Option<String> {
    let open = open_marker(example);
    let start = page.find(&open)? + open.len();
    let end = start + page[start..].find(CLOSE_MARKER)?;
    Some(format!("{}{diagram}{}", &page[..start], &page[end..]))
}

const STAMP: &str = "<!-- sources: ";

/// FNV-1a, 64 bits: stable across Rust versions and platforms (unlike `DefaultHasher`).
fn fnv1a(hash: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(hash, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The files whose change may change what `example` of the crate in `package_dir` draws:
/// the example, the crate's sources that emit interaction events, the macro and the recorder.
fn sources(root: &Path, package_dir: &Path, example: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let single = package_dir.join("examples").join(format!("{example}.rs"));
    if single.exists() {
        files.push(single);
    } else {
        collect(&package_dir.join("examples").join(example), &mut files);
    }
    let mut emitting = Vec::new();
    collect(&package_dir.join("src"), &mut emitting);
    emitting.retain(|f| fs::read_to_string(f).is_ok_and(|t| t.contains("seq!(")));
    emitting.sort();
    files.extend(emitting);
    files.push(root.join("crates/posa-seq/src/lib.rs"));
    files.push(root.join("crates/pattern-core/src/diagram.rs"));
    files
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The stamp line of the sources that draw `example`: their paths (relative) and contents hashed.
pub(crate) fn stamp(root: &Path, package_dir: &Path, example: &str) -> String {
    let mut hash = 0xcbf2_9ce4_8422_2325;
    for file in sources(root, package_dir, example) {
        let rel = file.strip_prefix(root).unwrap_or(&file);
        hash = fnv1a(hash, rel.to_string_lossy().as_bytes());
        hash = fnv1a(hash, &fs::read(&file).unwrap_or_default());
    }
    format!("{STAMP}{hash:016x} -->\n")
}

/// Rule: a generated diagram ends with the stamp of its sources as they are now.
#[cfg(test)]
fn check_fresh(name: &str, text: &str, stamp: &str) -> Option<String> {
    let found = text.lines().last().map(|l| format!("{l}\n"));
    (found.as_deref() != Some(stamp)).then(|| {
        format!(
            "docs/patterns/generated/{name}.md is stale: its sources changed since it was drawn (cargo xtask demo --diagrams)"
        )
    })
}

/// After a run of `example` that drew `diagram`: with `write`, stores it (stamped) and updates
/// the pages that include it; without, checks it against the stored one. `Err` says what is stale.
pub(crate) fn settle(
    root: &Path,
    package_dir: &Path,
    example: &str,
    diagram: &str,
    write: bool,
) -> Result<(), String> {
    let stamped = format!("{diagram}{}", stamp(root, package_dir, example));
    let diagram = stamped.as_str();
    let path = generated(root, example);
    let stored = fs::read_to_string(&path).ok();
    if !write {
        return match stored {
            Some(s) if s == diagram => Ok(()),
            Some(_) => Err(format!(
                "the run drew a different diagram than {}: cargo xtask demo --diagrams",
                path.display()
            )),
            None => Err(format!(
                "the run drew a diagram and {} is missing: cargo xtask demo --diagrams",
                path.display()
            )),
        };
    }
    if stored.as_deref() != Some(diagram) {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        fs::write(&path, diagram).map_err(|e| format!("{}: {e}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    let pages =
        fs::read_dir(root.join("docs/patterns")).map_err(|e| format!("docs/patterns: {e}"))?;
    for entry in pages.flatten() {
        let page = entry.path();
        if page.extension().is_none_or(|e| e != "md") {
            continue;
        }
        let text = fs::read_to_string(&page).map_err(|e| format!("{}: {e}", page.display()))?;
        if let Some(new) = include(&text, example, diagram)
            && new != text
        {
            fs::write(&page, new).map_err(|e| format!("{}: {e}", page.display()))?;
            eprintln!("updated {}", page.display());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = "# P\n\n<!-- diagram: ex -->\nold\n<!-- diagram: end -->\n\ntail\n";

    #[test]
    fn a_block_is_found_and_replaced_between_its_markers() {
        assert_eq!(included(PAGE), [("ex".to_owned(), "old\n".to_owned())]);
        let new = include(PAGE, "ex", "new\n").unwrap();
        assert_eq!(included(&new), [("ex".to_owned(), "new\n".to_owned())]);
        assert!(new.ends_with("<!-- diagram: end -->\n\ntail\n"));
        assert_eq!(include(PAGE, "other", "x"), None);
    }

    #[test]
    fn tidy_a_stale_stamp_is_caught() {
        let stamp = "<!-- sources: 00000000000000aa -->\n";
        assert_eq!(check_fresh("ex", &format!("drawing\n{stamp}"), stamp), None);
        assert!(
            check_fresh("ex", "drawing\n<!-- sources: 00000000000000bb -->\n", stamp).is_some()
        );
        assert!(check_fresh("ex", "drawing without a stamp\n", stamp).is_some());
        assert_ne!(fnv1a(1, b"a"), fnv1a(1, b"b"));
    }

    /// Every generated diagram was drawn from the sources as they are now.
    #[test]
    fn tidy_generated_diagrams_are_fresh() {
        let root = crate::workspace_root().unwrap();
        let mut stale = Vec::new();
        let mut seen = 0;
        for entry in fs::read_dir(root.join("docs/patterns/generated"))
            .unwrap()
            .flatten()
        {
            let path = entry.path();
            let Some(name) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            let package = fs::read_dir(root.join("crates"))
                .unwrap()
                .flatten()
                .map(|e| e.path())
                .find(|dir| {
                    dir.join("examples").join(format!("{name}.rs")).exists()
                        || dir.join("examples").join(name).is_dir()
                })
                .unwrap_or_else(|| panic!("{}: no example {name} draws it", path.display()));
            let text = fs::read_to_string(&path).unwrap();
            stale.extend(check_fresh(name, &text, &stamp(&root, &package, name)));
            seen += 1;
        }
        assert!(seen > 0, "no generated diagram");
        assert!(stale.is_empty(), "{}", stale.join("\n"));
    }

    #[test]
    fn tidy_every_included_diagram_is_the_generated_one() {
        let root = crate::workspace_root().unwrap();
        let mut seen = 0;
        for entry in fs::read_dir(root.join("docs/patterns")).unwrap().flatten() {
            let page = entry.path();
            if page.extension().is_none_or(|e| e != "md") {
                continue;
            }
            let text = fs::read_to_string(&page).unwrap();
            for (example, body) in included(&text) {
                let stored = fs::read_to_string(generated(&root, &example)).unwrap_or_else(|e| {
                    panic!("{} includes {example}, not generated: {e}", page.display())
                });
                assert_eq!(
                    body,
                    stored,
                    "{}: the diagram of {example} differs from the generated one (cargo xtask demo --diagrams)",
                    page.display()
                );
                seen += 1;
            }
        }
        assert!(seen > 0, "no page includes a generated diagram");
    }
}
