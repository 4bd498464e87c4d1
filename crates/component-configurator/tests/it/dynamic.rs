//! Dynamic components: loading, serving, suspend/resume, removal and unloading, refusals.

use std::io::Write;
use std::sync::Arc;

use component_configurator::{
    Change, Component, ComponentState, Configurator, Error, LoadedLibrary, is_mapped,
};
use parking_lot::Mutex;

use crate::support::{addr_of, listening_here, plugin, plugin_dir, request};

fn configurator() -> Configurator {
    let mut cfg = Configurator::default();
    cfg.add_search_dir(plugin_dir());
    cfg
}

/// A private copy of a plugin, so that no other test shares (and keeps mapped) the library.
fn private_copy(name: &str, tag: &str) -> crate::support::InTempDir {
    let path = crate::support::temp_dir(tag).keep(&format!("lib{tag}.so"));
    std::fs::copy(plugin(name), &path).unwrap();
    path
}

#[test]
fn load_init_serve_suspend_resume_remove() {
    let library = private_copy("cc-echo", "echo_unload");
    let mut cfg = configurator();
    let report = cfg
        .process_directive(&format!(
            "dynamic Echo Service_Object * {}:_make_echo() \"-p 0\"",
            library.display()
        ))
        .unwrap();
    assert!(report.is_ok(), "{:?}", report.errors);
    assert_eq!(
        report.changes,
        vec![Change::Added {
            name: "Echo".into()
        }]
    );
    let record = cfg.repository().find("Echo").unwrap();
    let info = record.component().info();
    assert!(info.ends_with("(serving)"), "{info}");
    assert_eq!(record.args(), ["-p", "0"]);
    let addr = addr_of(&info);
    assert_eq!(request(addr, "hello plugin").unwrap(), "hello plugin");
    assert!(listening_here(addr.port()));

    cfg.repository_mut().suspend("Echo").unwrap();
    assert!(matches!(
        cfg.repository().find("Echo"),
        Err(Error::Suspended(_))
    ));
    assert!(
        !listening_here(addr.port()),
        "a suspended service must not listen"
    );

    cfg.repository_mut().resume("Echo").unwrap();
    assert_eq!(request(addr, "back").unwrap(), "back");
    assert!(listening_here(addr.port()));

    assert!(is_mapped(&library));
    let removal = cfg.repository_mut().remove("Echo").unwrap();
    assert!(removal.fini.is_ok());
    let unloaded = removal.unloaded.expect("the last user unloads the library");
    assert_eq!(unloaded.path, library);
    // The service thread was joined in fini and ran its own thread-local destructors, so
    // nothing pins the library: it is really gone.
    assert!(unloaded.unmapped);
    assert!(!is_mapped(&library));
    // The service's listener is closed.
    assert!(!listening_here(addr.port()));
    assert!(matches!(
        cfg.repository().find("Echo"),
        Err(Error::NotFound(_))
    ));
}

#[test]
fn fini_runs_once_on_removal() {
    // A static wrapper around the dynamic component counts calls reaching it.
    #[derive(Debug)]
    struct Counting(Box<dyn Component>, Arc<Mutex<Vec<&'static str>>>);
    impl Component for Counting {
        fn init(&mut self, a: &[String]) -> Result<(), component_configurator::ComponentError> {
            self.1.lock().push("init");
            self.0.init(a)
        }
        fn fini(&mut self) -> Result<(), component_configurator::ComponentError> {
            self.1.lock().push("fini");
            self.0.fini()
        }
        fn suspend(&mut self) -> Result<(), component_configurator::ComponentError> {
            self.1.lock().push("suspend");
            self.0.suspend()
        }
        fn info(&self) -> String {
            self.0.info()
        }
    }
    let lib = LoadedLibrary::open(&plugin("cc-time")).unwrap();
    let calls = Arc::new(Mutex::new(Vec::new()));
    let mut cfg = configurator();
    let (lib2, calls2) = (Arc::clone(&lib), Arc::clone(&calls));
    cfg.register_static("Time", move || {
        Box::new(Counting(
            Box::new(lib2.create("_make_time").unwrap()),
            Arc::clone(&calls2),
        ))
    });
    cfg.process_directive("static Time \"-p 0\"").unwrap();
    let addr = addr_of(&cfg.repository().find("Time").unwrap().component().info());
    assert!(request(addr, "now?").unwrap().starts_with("time "));
    assert!(listening_here(addr.port()));
    cfg.repository_mut().remove("Time").unwrap();
    assert_eq!(*calls.lock(), vec!["init", "suspend", "fini"]);
    // The service's listener is closed.
    assert!(!listening_here(addr.port()));
}

#[test]
fn the_library_stays_loaded_while_an_object_lives() {
    let path = plugin("cc-stats").canonicalize().unwrap();
    let lib = LoadedLibrary::open(&path).unwrap();
    let mut component = lib.create("_make_stats").unwrap();
    // Our handle goes; the component's keeps the library mapped and callable.
    let lib = LoadedLibrary::unload(lib).expect_err("the component still holds the library");
    drop(lib);
    assert!(is_mapped(&path));
    component.init(&["-p".into(), "0".into()]).unwrap();
    let addr = addr_of(&component.info());
    assert_eq!(request(addr, "count").unwrap(), "requests 1");
    component.fini().unwrap();
    assert_eq!(
        component.export_state().unwrap(),
        Some(1u64.to_le_bytes().to_vec())
    );
    drop(component);
}

#[test]
fn a_wrong_abi_version_is_refused_before_any_code_runs() {
    // The plugin's constructor and factory abort the process if they ever run.
    let mut cfg = configurator();
    let report = cfg
        .process_directive("dynamic Bad Service_Object * cc_wrong_abi:_make_wrong() \"\"")
        .unwrap();
    assert_eq!(report.errors.len(), 1);
    let message = report.errors[0].to_string();
    assert!(
        matches!(
            &report.errors[0].error,
            Error::AbiMismatch { field: "the ABI version", found, .. } if found == "42"
        ),
        "{message}"
    );
    assert!(message.starts_with("<directive 1>:1:1: Bad: "), "{message}");
    assert!(message.contains("none of its code was run"), "{message}");
    assert!(!is_mapped(&plugin("cc-wrong-abi").canonicalize().unwrap()));
    assert!(cfg.repository().is_empty());
}

#[test]
fn a_missing_factory_symbol_is_an_error() {
    let mut cfg = configurator();
    let report = cfg
        .process_directive("dynamic Echo Service_Object * cc_echo:_make_nothing() \"-p 0\"")
        .unwrap();
    assert!(
        matches!(&report.errors[0].error, Error::MissingSymbol { factory, .. } if factory == "_make_nothing"),
        "{}",
        report.errors[0]
    );
    assert!(cfg.repository().is_empty());
}

#[test]
fn a_missing_library_is_an_error_and_others_still_load() {
    let mut cfg = configurator();
    let report = cfg
        .process_directive(
            "dynamic Ghost Service_Object * no_such_plugin:_make() \"\"\n\
             dynamic Echo Service_Object * cc_echo:_make_echo() \"-p 0\"",
        )
        .unwrap();
    assert_eq!(report.errors.len(), 1);
    assert!(
        matches!(&report.errors[0].error, Error::LibraryNotFound { spec, .. } if spec == "no_such_plugin")
    );
    assert_eq!(report.errors[0].position.line, 1);
    assert_eq!(
        report.changes,
        vec![Change::Added {
            name: "Echo".into()
        }]
    );
    assert_eq!(cfg.repository().names(), ["Echo"]);
}

#[test]
fn a_library_without_our_descriptor_is_refused_unloaded() {
    // A C library certainly present on the system, which has no descriptor.
    let libc = [
        "/lib/x86_64-linux-gnu/libm.so.6",
        "/usr/lib/x86_64-linux-gnu/libm.so.6",
        "/lib64/libm.so.6",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists())
    .expect("libm on this system");
    let err = LoadedLibrary::open(std::path::Path::new(libc)).unwrap_err();
    assert!(matches!(err, Error::NotAComponentLibrary { .. }), "{err}");
    assert!(
        err.to_string().contains("no exported descriptor symbol"),
        "{err}"
    );
    // Not an ELF file at all.
    let dir = crate::support::temp_dir("notelf");
    let fake = dir.join("libfake.so");
    std::fs::File::create(&fake)
        .unwrap()
        .write_all(b"#!/bin/sh\necho hi\n")
        .unwrap();
    let err = LoadedLibrary::open(&fake).unwrap_err();
    assert!(
        err.to_string().contains("not a loadable ELF library"),
        "{err}"
    );
}

#[test]
fn a_panicking_init_is_an_error_and_the_host_goes_on() {
    let mut cfg = configurator();
    let report = cfg
        .process_directive(
            "dynamic Boom Service_Object * cc_panicky:_make_panicky() \"\"\n\
             dynamic Bang Service_Object * cc_panicky:_make_panicky_factory() \"\"\n\
             dynamic Echo Service_Object * cc_echo:_make_echo() \"-p 0\"",
        )
        .unwrap();
    assert_eq!(report.errors.len(), 2);
    match &report.errors[0].error {
        Error::Component {
            operation: "init",
            error,
            ..
        } => {
            assert!(error.panicked);
            assert_eq!(error.message, "init refused to start");
        }
        other => panic!("unexpected {other}"),
    }
    match &report.errors[1].error {
        Error::Component {
            operation: "create",
            error,
            ..
        } => {
            assert!(error.panicked);
            assert_eq!(error.message, "the factory gave up");
        }
        other => panic!("unexpected {other}"),
    }
    let addr = addr_of(&cfg.repository().find("Echo").unwrap().component().info());
    assert_eq!(request(addr, "still here").unwrap(), "still here");
}

#[test]
fn inactive_components_start_suspended() {
    let mut cfg = configurator();
    cfg.process_directive("dynamic Echo Service_Object * cc_echo:_make_echo() inactive \"-p 0\"")
        .unwrap();
    let record = cfg.repository().get("Echo").unwrap();
    assert_eq!(record.state(), ComponentState::Suspended);
    assert!(record.component().info().ends_with("(suspended)"));
    let listing = cfg.repository().list();
    assert_eq!(listing.len(), 1);
    assert_eq!(listing[0].state, ComponentState::Suspended);
}

#[test]
fn a_panicking_plugin_can_still_be_unmapped() {
    let library = private_copy("cc-panicky", "panicky_unload");
    let lib = LoadedLibrary::open(&library).unwrap();
    let mut component = lib.create("_make_panicky").unwrap();
    assert!(component.init(&[]).unwrap_err().panicked);
    drop(component);
    let unloaded = LoadedLibrary::unload(lib).unwrap();
    assert!(unloaded.unmapped, "the plugin's panic hook must not pin it");
}

#[test]
fn unloading_reports_a_library_pinned_by_a_thread_local_destructor() {
    let library = private_copy("cc-panicky", "pinning");
    let mut cfg = configurator();
    cfg.process_directive(&format!(
        "dynamic Pin Service_Object * {}:_make_pinning() \"\"",
        library.display()
    ))
    .unwrap();
    let removal = cfg.repository_mut().remove("Pin").unwrap();
    let unloaded = removal.unloaded.expect("last user");
    // std::thread::spawn registered a destructor of the plugin's std on this test thread:
    // dlclose cannot unmap the library until this thread exits, and the report says so.
    assert!(!unloaded.unmapped);
    assert!(is_mapped(&library));
}

mod elf_mutations {
    use component_configurator::abi::{DESCRIPTOR_SIZE, DESCRIPTOR_SYMBOL, Descriptor};
    use component_configurator::elf::read_symbol;
    use proptest::prelude::*;

    use crate::support::plugin;

    fn section_table(bytes: &[u8]) -> (usize, usize) {
        let shoff = u64::from_le_bytes(bytes[40..48].try_into().unwrap()) as usize;
        let len = usize::from(u16::from_le_bytes([bytes[58], bytes[59]]))
            * usize::from(u16::from_le_bytes([bytes[60], bytes[61]]));
        (shoff, len)
    }

    #[test]
    fn the_reader_finds_the_plugins_descriptor() {
        let bytes = std::fs::read(plugin("cc-echo")).unwrap();
        let d = read_symbol(&bytes[..], DESCRIPTOR_SYMBOL, DESCRIPTOR_SIZE).unwrap();
        assert_eq!(
            Descriptor::from_bytes(&d),
            Some(Descriptor::current("echo"))
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]
        #[test]
        fn corrupted_headers_and_section_tables_never_panic(
            edits in prop::collection::vec((any::<bool>(), any::<usize>(), any::<u8>()), 1..8)
        ) {
            static BYTES: std::sync::OnceLock<std::sync::Mutex<Vec<u8>>> = std::sync::OnceLock::new();
            let mut bytes = BYTES
                .get_or_init(|| std::sync::Mutex::new(std::fs::read(plugin("cc-echo")).unwrap()))
                .lock()
                .unwrap();
            let (shoff, shlen) = section_table(&bytes);
            // Edit in place (the ELF header or the section table), then restore.
            let mut undo = Vec::new();
            for (header, at, value) in edits {
                let i = if header || shlen == 0 { at % 64 } else { shoff + at % shlen };
                if i < bytes.len() {
                    undo.push((i, bytes[i]));
                    bytes[i] = value;
                }
            }
            let result = read_symbol(&bytes[..], DESCRIPTOR_SYMBOL, DESCRIPTOR_SIZE);
            for (i, old) in undo.into_iter().rev() {
                bytes[i] = old;
            }
            if let Ok(d) = result {
                prop_assert_eq!(d.len(), DESCRIPTOR_SIZE);
            }
        }
    }
}
