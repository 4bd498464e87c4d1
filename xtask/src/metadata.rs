//! The workspace as `cargo metadata --format-version 1 --no-deps` describes it: members, their
//! example targets, and where cargo puts build output.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use cargo_metadata::{CrateType, Metadata, MetadataCommand};

/// What the demo needs to know about the workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Workspace {
    /// The directory of the root `Cargo.toml`; examples run here.
    pub(crate) root: PathBuf,
    /// Cargo's target directory (honours `CARGO_TARGET_DIR` and `build.target-dir`).
    pub(crate) target_dir: PathBuf,
    /// Workspace members, sorted by name.
    pub(crate) packages: Vec<Package>,
}

/// One workspace member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Package {
    /// The package name, as `-p` takes it.
    pub(crate) name: String,
    /// The directory holding the package's `Cargo.toml`.
    pub(crate) dir: PathBuf,
    /// Its example targets, sorted by name.
    pub(crate) examples: Vec<Example>,
    /// Every feature that `default` turns on, directly or through other features.
    pub(crate) default_features: BTreeSet<String>,
}

/// One `[[example]]` target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Example {
    /// The target name: the binary's file name and the expected-output file's stem.
    pub(crate) name: String,
    /// Its `required-features`.
    pub(crate) required_features: Vec<String>,
    /// Whether it builds an executable (an example may be declared as a library).
    pub(crate) is_binary: bool,
}

impl Package {
    /// The required features of `example` that a default build does not enable.
    pub(crate) fn missing_features<'a>(&self, example: &'a Example) -> Vec<&'a str> {
        example
            .required_features
            .iter()
            .filter(|f| !self.default_features.contains(f.as_str()))
            .map(String::as_str)
            .collect()
    }
}

/// Runs `cargo metadata --no-deps` in the current directory and reads its output.
pub(crate) fn load(cargo: &Path) -> Result<Workspace, String> {
    let metadata = MetadataCommand::new()
        .cargo_path(cargo)
        .no_deps()
        .exec()
        .map_err(|e| format!("`cargo metadata`: {e}"))?;
    Ok(workspace(&metadata))
}

/// Parses the JSON printed by `cargo metadata --format-version 1 --no-deps`.
#[cfg(test)]
pub(crate) fn parse(json: &str) -> Result<Workspace, String> {
    let metadata =
        MetadataCommand::parse(json).map_err(|e| format!("cannot parse cargo metadata: {e}"))?;
    Ok(workspace(&metadata))
}

/// The workspace members and their examples; the `xtask` package itself is left out.
fn workspace(metadata: &Metadata) -> Workspace {
    let mut packages: Vec<Package> = metadata
        .workspace_packages()
        .into_iter()
        .filter(|package| package.name.as_str() != "xtask")
        .map(|package| {
            let mut examples: Vec<Example> = package
                .targets
                .iter()
                .filter(|target| target.is_example())
                .map(|target| Example {
                    name: target.name.clone(),
                    required_features: target.required_features.clone(),
                    is_binary: target.crate_types.contains(&CrateType::Bin),
                })
                .collect();
            examples.sort_by(|a, b| a.name.cmp(&b.name));
            Package {
                name: package.name.to_string(),
                dir: package
                    .manifest_path
                    .parent()
                    .map_or_else(PathBuf::new, |dir| dir.as_std_path().to_path_buf()),
                examples,
                default_features: default_features(&package.features),
            }
        })
        .collect();
    packages.sort_by(|a, b| a.name.cmp(&b.name));
    Workspace {
        root: metadata.workspace_root.clone().into_std_path_buf(),
        target_dir: metadata.target_directory.clone().into_std_path_buf(),
        packages,
    }
}

/// The closure of the `default` feature over the package's `[features]` table.
///
/// Entries such as `dep:foo` and `foo/bar` enable dependencies; for `foo/bar` the feature
/// `foo` (an optional dependency's implicit feature) counts as enabled when it exists.
fn default_features(table: &BTreeMap<String, Vec<String>>) -> BTreeSet<String> {
    let mut enabled = BTreeSet::new();
    let mut pending = vec!["default".to_owned()];
    while let Some(feature) = pending.pop() {
        let Some(entries) = table.get(&feature) else {
            continue;
        };
        if !enabled.insert(feature) {
            continue;
        }
        for entry in entries.iter().filter(|e| !e.starts_with("dep:")) {
            let name = match entry.split_once('/') {
                Some((dependency, _)) => dependency.trim_end_matches('?'),
                None => entry,
            };
            if !enabled.contains(name) {
                pending.push(name.to_owned());
            }
        }
    }
    // `default` is a switch, not something an example requires.
    enabled.remove("default");
    enabled
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A trimmed-down `cargo metadata` output: two members with examples, the xtask, and a
    /// package that is not a member.
    pub(crate) const FIXTURE: &str = r#"{
      "packages": [
        {
          "name": "wrapper-facade",
          "version": "0.1.0",
          "id": "path+file:///ws/crates/wrapper-facade#0.1.0",
          "manifest_path": "/ws/crates/wrapper-facade/Cargo.toml",
          "dependencies": [],
          "features": {},
          "targets": [
            {"kind": ["lib"], "crate_types": ["lib"], "name": "wrapper_facade",
             "src_path": "/ws/crates/wrapper-facade/src/lib.rs"},
            {"kind": ["example"], "crate_types": ["bin"], "name": "wrapper_facade_echo",
             "src_path": "/ws/crates/wrapper-facade/examples/wrapper_facade_echo.rs"},
            {"kind": ["example"], "crate_types": ["bin"], "name": "wrapper_facade_compare",
             "src_path": "/ws/crates/wrapper-facade/examples/wrapper_facade_compare.rs"},
            {"kind": ["test"], "crate_types": ["bin"], "name": "it",
             "src_path": "/ws/crates/wrapper-facade/tests/it/main.rs"}
          ]
        },
        {
          "name": "reactor",
          "version": "0.1.0",
          "id": "path+file:///ws/crates/reactor#0.1.0",
          "manifest_path": "/ws/crates/reactor/Cargo.toml",
          "dependencies": [],
          "features": {
            "default": ["net"],
            "net": ["io", "dep:mio", "tracing?/std"],
            "io": [],
            "tracing": ["dep:tracing"],
            "slow": []
          },
          "targets": [
            {"kind": ["example"], "crate_types": ["bin"], "name": "reactor_net",
             "required-features": ["net", "io"],
             "src_path": "/ws/crates/reactor/examples/reactor_net.rs"},
            {"kind": ["example"], "crate_types": ["bin"], "name": "reactor_slow",
             "required-features": ["slow"],
             "src_path": "/ws/crates/reactor/examples/reactor_slow.rs"},
            {"kind": ["example"], "crate_types": ["lib"], "name": "reactor_plugin",
             "src_path": "/ws/crates/reactor/examples/reactor_plugin.rs"}
          ]
        },
        {
          "name": "xtask",
          "version": "0.1.0",
          "id": "path+file:///ws/xtask#0.1.0",
          "manifest_path": "/ws/xtask/Cargo.toml",
          "dependencies": [],
          "features": {},
          "targets": [
            {"kind": ["example"], "crate_types": ["bin"], "name": "not_a_demo",
             "src_path": "/ws/xtask/examples/not_a_demo.rs"}
          ]
        },
        {
          "name": "outsider",
          "version": "0.1.0",
          "id": "path+file:///elsewhere#0.1.0",
          "manifest_path": "/elsewhere/Cargo.toml",
          "dependencies": [],
          "features": {},
          "targets": [
            {"kind": ["example"], "crate_types": ["bin"], "name": "outside",
             "src_path": "/elsewhere/examples/outside.rs"}
          ]
        }
      ],
      "workspace_members": [
        "path+file:///ws/crates/wrapper-facade#0.1.0",
        "path+file:///ws/crates/reactor#0.1.0",
        "path+file:///ws/xtask#0.1.0"
      ],
      "target_directory": "/ws/target",
      "version": 1,
      "workspace_root": "/ws"
    }"#;

    #[test]
    fn parses_roots_members_and_examples_in_name_order() {
        let ws = parse(FIXTURE).unwrap();
        assert_eq!(ws.root, Path::new("/ws"));
        assert_eq!(ws.target_dir, Path::new("/ws/target"));
        let names: Vec<_> = ws.packages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            ["reactor", "wrapper-facade"],
            "xtask and non-members are left out"
        );

        let facade = &ws.packages[1];
        assert_eq!(facade.dir, Path::new("/ws/crates/wrapper-facade"));
        let examples: Vec<_> = facade.examples.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(examples, ["wrapper_facade_compare", "wrapper_facade_echo"]);
        assert!(
            facade
                .examples
                .iter()
                .all(|e| e.is_binary && e.required_features.is_empty())
        );
    }

    #[test]
    fn default_features_are_followed_through_the_feature_table() {
        let ws = parse(FIXTURE).unwrap();
        let reactor = &ws.packages[0];
        let enabled: Vec<_> = reactor
            .default_features
            .iter()
            .map(String::as_str)
            .collect();
        assert_eq!(enabled, ["io", "net", "tracing"]);

        let by_name = |name: &str| reactor.examples.iter().find(|e| e.name == name).unwrap();
        assert!(reactor.missing_features(by_name("reactor_net")).is_empty());
        assert_eq!(reactor.missing_features(by_name("reactor_slow")), ["slow"]);
        assert!(!by_name("reactor_plugin").is_binary);
    }

    #[test]
    fn malformed_metadata_is_an_error_not_a_panic() {
        assert!(parse("not json").unwrap_err().contains("cannot parse"));
        assert!(parse("{}").unwrap_err().contains("packages"));
        let no_root =
            r#"{"workspace_members": [], "packages": [], "target_directory": "/t", "version": 1}"#;
        assert!(parse(no_root).unwrap_err().contains("workspace_root"));
    }
}
