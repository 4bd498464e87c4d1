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
//! sources that drew it (the example and the examples' shared modules, the files that emit
//! interaction events with `seq!` in its crate and in every workspace crate that crate uses,
//! the macro's crate `posa-seq` and the recorder `pattern_core::diagram`), which the test
//! computes again.

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

/// Rule: the lines of `page` that start a mermaid sequence diagram outside the blocks drawn
/// from runs (a hand-drawn one, which nothing keeps true).
#[cfg(test)]
pub(crate) fn hand_drawn(page: &str) -> Vec<usize> {
    let mut inside = false;
    let mut found = Vec::new();
    for (n, line) in page.lines().enumerate() {
        if line.starts_with("<!-- diagram: ") {
            inside = line != CLOSE_MARKER;
        } else if !inside && line.trim() == "sequenceDiagram" {
            found.push(n + 1);
        }
    }
    found
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
/// the example (and the modules the crate's examples share, `examples/common`), the sources
/// that emit interaction events of the crate and of every workspace crate it uses (its
/// examples' dependencies included), the macro and the recorder.
fn sources(root: &Path, package_dir: &Path, example: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let examples = package_dir.join("examples");
    let single = examples.join(format!("{example}.rs"));
    if single.exists() {
        files.push(single);
    } else {
        collect(&examples.join(example), &mut files);
    }
    let mut shared = Vec::new();
    collect(&examples.join("common"), &mut shared);
    shared.sort();
    files.extend(shared);
    let mut emitting = Vec::new();
    for dir in crates_used(root, package_dir) {
        collect(&dir.join("src"), &mut emitting);
    }
    emitting.retain(|f| fs::read_to_string(f).is_ok_and(|t| t.contains("seq!(")));
    emitting.sort();
    emitting.dedup();
    files.extend(emitting);
    files.push(root.join("crates/posa-seq/src/lib.rs"));
    files.push(root.join("crates/pattern-core/src/diagram.rs"));
    files
}

/// The crate in `package_dir` and the workspace crates (`crates/<name>`) it uses, with its
/// dev-dependencies (its examples') and the dependencies of those, transitively.
fn crates_used(root: &Path, package_dir: &Path) -> Vec<PathBuf> {
    let mut found = vec![package_dir.to_path_buf()];
    let mut next = 0;
    while next < found.len() {
        let with_dev = next == 0;
        let manifest = fs::read_to_string(found[next].join("Cargo.toml")).unwrap_or_default();
        for name in workspace_dependencies(&manifest, with_dev) {
            let dir = root.join("crates").join(&name);
            if dir.join("Cargo.toml").exists() && !found.contains(&dir) {
                found.push(dir);
            }
        }
        next += 1;
    }
    found
}

/// The names of the dependencies a manifest lists (`name.workspace = true`, `name = { ... }`),
/// in `[dependencies]`, and in `[dev-dependencies]` too with `with_dev`.
fn workspace_dependencies(manifest: &str, with_dev: bool) -> Vec<String> {
    let mut names = Vec::new();
    let mut listing = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            listing = line == "[dependencies]" || (with_dev && line == "[dev-dependencies]");
            continue;
        }
        if !listing || line.starts_with('#') {
            continue;
        }
        let name: String = line
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        if !name.is_empty() {
            names.push(name);
        }
    }
    names
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
    fn the_stamp_follows_the_workspace_crates_an_example_uses() {
        let manifest = "[package]\nname = \"x\"\n\n[dependencies]\nreactor.workspace = true\n# a comment\nmio = { workspace = true }\n\n[dev-dependencies]\npattern-core = { workspace = true, features = [\"diagram\"] }\n\n[[bench]]\nname = \"b\"\n";
        assert_eq!(
            workspace_dependencies(manifest, true),
            ["reactor", "mio", "pattern-core"]
        );
        assert_eq!(workspace_dependencies(manifest, false), ["reactor", "mio"]);
        let root = crate::workspace_root().unwrap();
        let used = crates_used(&root, &root.join("crates/component-configurator"));
        for dep in ["reactor", "wrapper-facade", "pattern-core", "posa-seq"] {
            assert!(
                used.contains(&root.join("crates").join(dep)),
                "{dep}: {used:?}"
            );
        }
        assert!(!used.contains(&root.join("crates/logging-service")));
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
    fn a_hand_drawn_sequence_diagram_is_caught_and_a_drawn_one_is_not() {
        let page = "# P\n\n```mermaid\nsequenceDiagram\n    A->>B: hi\n```\n\n<!-- diagram: ex -->\n```mermaid\nsequenceDiagram\n```\n<!-- diagram: end -->\n\n```mermaid\nclassDiagram\n```\n";
        assert_eq!(hand_drawn(page), [4]);
        assert!(hand_drawn(PAGE).is_empty());
    }

    /// No pattern page shows a sequence diagram that no run drew.
    #[test]
    fn tidy_every_sequence_diagram_on_the_pages_is_drawn_from_a_run() {
        let root = crate::workspace_root().unwrap();
        let mut found = Vec::new();
        for entry in fs::read_dir(root.join("docs/patterns")).unwrap().flatten() {
            let page = entry.path();
            if page.extension().is_none_or(|e| e != "md") {
                continue;
            }
            let text = fs::read_to_string(&page).unwrap();
            for line in hand_drawn(&text) {
                found.push(format!(
                    "{}:{line}: a sequence diagram not drawn from a run (draw it with an example: pattern_core::diagram)",
                    page.display()
                ));
            }
        }
        assert!(found.is_empty(), "{}", found.join("\n"));
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
