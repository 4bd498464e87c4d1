//! Sequence diagrams drawn from real runs.
//!
//! An example that can draw its own interaction writes a mermaid sequence diagram, made from
//! what it observed while it ran (the reactor's upcall trace, for instance), to the file named
//! by the `POSA_DIAGRAM` environment variable when that is set. `cargo xtask demo` sets it for
//! every example: `--diagrams` writes what the run drew to
//! `docs/patterns/generated/<example>.md` and into every page's block between
//! `<!-- diagram: <example> -->` and `<!-- diagram: end -->`; without it, a drawing that differs
//! from the checked-in file fails the demo (a stale diagram). The tidy test checks that each
//! page's block is the generated file, so a page cannot show a diagram no run drew.

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

/// After a run of `example` that drew `diagram`: with `write`, stores it and updates the pages
/// that include it; without, checks it against the stored one. `Err` says what is stale.
pub(crate) fn settle(root: &Path, example: &str, diagram: &str, write: bool) -> Result<(), String> {
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
    fn every_included_diagram_is_the_generated_one() {
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
