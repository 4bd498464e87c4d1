//! Processes and threads: spawn, wait with a timeout, signal; thread groups with cancellation.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use wrapper_facade::notify::Pipe;
use wrapper_facade::process::{ExitStatus, Process, ProcessOptions, Redirect};
use wrapper_facade::signal::Signal;
use wrapper_facade::sync::Lock;
use wrapper_facade::thread::ThreadRegistry;

#[test]
fn child_output_exit_code_and_timeout() {
    let (mut reader, writer) = Pipe::new().unwrap().into_parts();
    let mut child = Process::spawn(
        ProcessOptions::new("sh")
            .args(["-c", "printf 'pid %s' $$; exit 4"])
            .stdout(Redirect::Fd(writer.into()))
            .stderr(Redirect::Null),
    )
    .unwrap();
    let mut out = String::new();
    reader.read_to_string(&mut out).unwrap();
    assert_eq!(out, format!("pid {}", child.pid()));
    assert_eq!(
        child.wait_timeout(Duration::from_secs(30)).unwrap(),
        Some(ExitStatus::Exited(4))
    );
}

#[test]
fn kill_a_child_that_outlives_its_timeout() {
    let mut child =
        Process::spawn(ProcessOptions::new("sleep").arg("60").stdin(Redirect::Null)).unwrap();
    assert_eq!(child.try_wait().unwrap(), None);
    assert_eq!(child.wait_timeout(Duration::from_millis(10)).unwrap(), None);
    child.kill().unwrap();
    assert_eq!(child.wait().unwrap(), ExitStatus::Signaled(Signal::KILL));
    assert!(!child.wait().unwrap().success());
}

#[test]
fn thread_groups_are_cancelled_and_joined_separately() {
    let registry = ThreadRegistry::default();
    let counter = Arc::new(Lock::new(Vec::<String>::new()));
    let stopped = Arc::new(AtomicUsize::new(0));
    for group in ["acceptors", "handlers"] {
        for i in 0..2 {
            let (counter, stopped) = (counter.clone(), stopped.clone());
            let name = format!("{group}-{i}");
            registry
                .spawn(group, &name.clone(), move |token| {
                    counter.guard().push(name);
                    // Periodic work that ends as soon as the group is cancelled, no sleeping.
                    while !token.wait_timeout(Duration::from_secs(60)) {}
                    stopped.fetch_add(1, Ordering::SeqCst);
                })
                .unwrap();
        }
    }
    assert_eq!(registry.groups(), ["acceptors", "handlers"]);
    registry.cancel_group("handlers");
    let joined = registry.join_group("handlers");
    let names: Vec<&str> = joined.iter().map(|o| o.name()).collect();
    assert_eq!(names, ["handlers-0", "handlers-1"]);
    assert_eq!(stopped.load(Ordering::SeqCst), 2);
    assert!(!registry.token("acceptors").is_cancelled());
    assert_eq!(registry.len("acceptors"), 2);
    registry.cancel_all();
    assert_eq!(registry.join_all().len(), 2);
    assert_eq!(stopped.load(Ordering::SeqCst), 4);
    assert_eq!(counter.guard().len(), 4);
}
