//! Smart proxy: accesses are counted and the subject is released when its last user is gone.

use std::sync::{Arc, Barrier, mpsc};
use std::thread;

use gof_structural::proxy::{DeviceService, FieldDevice, SmartProxy, registers};

#[test]
fn accesses_are_counted_across_all_users() {
    let first = SmartProxy::new(FieldDevice::new("TC", 1));
    let second = first.clone();
    first.identify().unwrap();
    second.read_register(registers::MODE).unwrap();
    second.write_register(registers::MODE, 2).unwrap();
    assert_eq!(first.accesses(), 3);
    assert_eq!(second.accesses(), 3);
    assert_eq!(first.users(), 2);
    // The subject saw exactly what went through the proxies.
    assert_eq!(first.served(), 3); // through `Deref`: one more access
    assert_eq!(first.accesses(), 4);
}

#[test]
fn the_subject_is_released_once_when_the_last_user_is_gone() {
    const USERS: usize = 6;
    let (released_tx, released) = mpsc::channel();
    let proxy = SmartProxy::with_release(FieldDevice::new("TC", 1), move |device| {
        released_tx.send(device.served()).unwrap();
    });
    let start = Arc::new(Barrier::new(USERS));
    let workers: Vec<_> = (0..USERS)
        .map(|_| {
            let user = proxy.clone();
            let start = Arc::clone(&start);
            thread::spawn(move || {
                start.wait();
                for _ in 0..10 {
                    user.read_register(registers::SETPOINT).unwrap();
                }
                // `user` is dropped here, on this thread.
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    // Every worker has dropped its user; ours keeps the subject alive.
    assert_eq!(proxy.users(), 1);
    assert!(released.try_recv().is_err());
    assert_eq!(proxy.accesses(), (USERS * 10) as u64);
    drop(proxy);
    assert_eq!(released.try_recv().unwrap(), (USERS * 10) as u64);
    assert!(released.try_recv().is_err(), "released exactly once");
}

#[test]
fn the_last_user_may_be_on_another_thread() {
    let (released_tx, released) = mpsc::channel();
    let proxy = SmartProxy::with_release(String::from("sensor bus"), move |bus| {
        released_tx
            .send((bus, thread::current().name().map(str::to_owned)))
            .unwrap();
    });
    let user = proxy.clone();
    drop(proxy);
    assert!(released.try_recv().is_err());
    thread::Builder::new()
        .name("last-user".into())
        .spawn(move || drop(user))
        .unwrap()
        .join()
        .unwrap();
    let (bus, thread_name) = released.try_recv().unwrap();
    assert_eq!(bus, "sensor bus");
    assert_eq!(thread_name.as_deref(), Some("last-user"));
}
