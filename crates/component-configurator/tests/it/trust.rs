//! Trusted plugins: who may have written a library is checked on the opened file before any
//! of its code runs, and the loader maps that same file (`/proc/self/fd/N`).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use component_configurator::{Configurator, Error, LoadedLibrary, PluginTrust, is_mapped};

use crate::support::{InTempDir, plugin, temp_dir};

/// A copy of a plugin in a directory of its own, both with the modes given.
fn copy_with_modes(name: &str, tag: &str, file_mode: u32, dir_mode: u32) -> InTempDir {
    let path = temp_dir(tag).keep(&format!("lib{tag}.so"));
    std::fs::copy(plugin(name), &path).unwrap();
    chmod(&path, file_mode);
    chmod(path.parent().unwrap(), dir_mode);
    path
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The refusal's path and reason; fails if the library loaded or failed otherwise.
fn refusal(path: &Path, trust: PluginTrust) -> (PathBuf, String) {
    match LoadedLibrary::open_with(path, trust) {
        Err(Error::UntrustedLibrary { path, reason }) => (path, reason),
        Err(e) => panic!("refused for another reason: {e}"),
        Ok(_) => panic!("{} was loaded", path.display()),
    }
}

#[test]
fn a_library_anyone_may_write_is_refused_before_any_code_runs() {
    let lib = copy_with_modes("cc-echo", "trust_world", 0o666, 0o755);
    let (what, reason) = refusal(&lib, PluginTrust::Strict);
    assert_eq!(what, lib);
    assert_eq!(
        reason,
        "writable by anyone (mode 0666); only its owner and root may write it"
    );
    assert!(!is_mapped(&lib), "none of its code ran");
    chmod(&lib, 0o664);
    let (_, reason) = refusal(&lib, PluginTrust::Strict);
    assert!(
        reason.starts_with("writable by its group (mode 0664)"),
        "{reason}"
    );
    // The message tells the operator the way out.
    let err = LoadedLibrary::open(&lib).unwrap_err().to_string();
    assert!(err.contains("--insecure-plugins"), "{err}");
    // Explicitly insecure: loaded.
    let loaded = LoadedLibrary::open_with(&lib, PluginTrust::Insecure).unwrap();
    assert!(is_mapped(&lib));
    assert!(LoadedLibrary::unload(loaded).unwrap().unmapped);
}

#[test]
fn a_directory_others_may_write_is_refused_unless_sticky() {
    let lib = copy_with_modes("cc-echo", "trust_dir", 0o644, 0o777);
    let dir = lib.parent().unwrap().to_owned();
    let (what, reason) = refusal(&lib, PluginTrust::Strict);
    assert_eq!(what, dir, "the directory is named");
    assert!(
        reason.starts_with("writable by anyone (mode 0777)"),
        "{reason}"
    );
    assert!(!is_mapped(&lib));
    // Sticky, like /tmp: others may add files but not replace ours.
    chmod(&dir, 0o1777);
    let loaded = LoadedLibrary::open(&lib).unwrap();
    assert!(LoadedLibrary::unload(loaded).unwrap().unmapped);
    chmod(&dir, 0o755);
}

#[test]
fn a_library_owned_by_another_user_is_refused() {
    if effective_uid() != 0 {
        println!("skipped: giving a file to another user needs root");
        return;
    }
    let lib = copy_with_modes("cc-echo", "trust_owner", 0o644, 0o755);
    std::os::unix::fs::chown(&lib, Some(65534), None).unwrap();
    let (what, reason) = refusal(&lib, PluginTrust::Strict);
    assert_eq!(what, lib);
    assert_eq!(
        reason,
        "owned by uid 65534, neither root nor this process's user (uid 0)"
    );
    assert!(!is_mapped(&lib));
    let dir = lib.parent().unwrap();
    std::os::unix::fs::chown(&lib, Some(0), None).unwrap();
    std::os::unix::fs::chown(dir, Some(65534), None).unwrap();
    let (what, _) = refusal(&lib, PluginTrust::Strict);
    assert_eq!(what, dir);
}

/// Libraries are loaded through the descriptor that was checked, and the loader knows them
/// by that descriptor's name: a library loaded after another was unloaded gets the same
/// descriptor number, and must still be itself, not the loader's memory of the first.
#[test]
fn each_library_is_the_one_its_checked_descriptor_names() {
    let a = copy_with_modes("cc-echo", "trust_name_a", 0o644, 0o755);
    let b = copy_with_modes("cc-stats", "trust_name_b", 0o644, 0o755);
    let first = LoadedLibrary::open(&a).unwrap();
    assert!(first.create("_make_echo").is_ok());
    assert!(LoadedLibrary::unload(first).unwrap().unmapped);
    let second = LoadedLibrary::open(&b).unwrap();
    assert_eq!(second.path(), &*b);
    assert!(is_mapped(&b) && !is_mapped(&a));
    assert!(second.create("_make_stats").is_ok(), "b's own factory");
    assert!(second.create("_make_echo").is_err(), "not a's");
    // Both at once: two descriptors, two libraries.
    let first = LoadedLibrary::open(&a).unwrap();
    assert!(first.create("_make_echo").is_ok() && second.create("_make_echo").is_err());
    assert!(is_mapped(&a) && is_mapped(&b));
}

#[test]
fn the_configurator_checks_dynamic_directives_and_can_be_told_not_to() {
    let lib = copy_with_modes("cc-echo", "trust_cfg", 0o666, 0o755);
    let directive = format!(
        "dynamic Echo Service_Object * {}:_make_echo() \"-p 0\"",
        lib.display()
    );
    let mut cfg = Configurator::default();
    let report = cfg.process_directive(&directive).unwrap();
    assert!(
        matches!(
            report.errors.as_slice(),
            [e] if e.to_string().contains("writable by anyone")
        ),
        "{report:?}"
    );
    assert!(cfg.repository().get("Echo").is_none());
    cfg.close();
    let mut cfg = Configurator::default();
    cfg.set_plugin_trust(PluginTrust::Insecure);
    let report = cfg.process_directive(&directive).unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert!(cfg.repository().get("Echo").is_some());
    cfg.close();
}

fn effective_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").unwrap().uid()
}
