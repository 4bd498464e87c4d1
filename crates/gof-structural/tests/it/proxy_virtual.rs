//! Virtual proxy: the expensive subject is created on first use, exactly once, even under a race.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

use gof_structural::proxy::{DeviceService, FieldDevice, VirtualProxy, registers};

#[test]
fn the_subject_is_not_created_until_first_use() {
    let created = AtomicUsize::new(0);
    let proxy = VirtualProxy::new(|| {
        created.fetch_add(1, Ordering::SeqCst);
        FieldDevice::new("TC-100", 3)
    });
    assert_eq!(created.load(Ordering::SeqCst), 0);
    assert!(proxy.get_if_created().is_none());
    assert_eq!(proxy.identify().unwrap(), "TC-100 #3");
    assert_eq!(created.load(Ordering::SeqCst), 1);
    proxy.write_register(registers::MODE, 2).unwrap();
    assert_eq!(proxy.read_register(registers::MODE).unwrap(), 2);
    assert_eq!(created.load(Ordering::SeqCst), 1);
    assert_eq!(proxy.get().served(), 3);
}

#[test]
fn concurrent_first_uses_create_the_subject_once() {
    const THREADS: usize = 8;
    let created = Arc::new(AtomicUsize::new(0));
    let proxy = {
        let created = Arc::clone(&created);
        Arc::new(VirtualProxy::new(move || {
            created.fetch_add(1, Ordering::SeqCst);
            FieldDevice::new("TC-100", 4)
        }))
    };
    let start = Arc::new(Barrier::new(THREADS));
    let workers: Vec<_> = (0..THREADS)
        .map(|_| {
            let proxy = Arc::clone(&proxy);
            let start = Arc::clone(&start);
            thread::spawn(move || {
                start.wait(); // all threads race for the first use
                proxy.read_register(registers::DEVICE_ID).unwrap();
                std::ptr::from_ref(proxy.get()) as usize
            })
        })
        .collect();
    // Spawn them all before joining any: each waits at the barrier for the others.
    let addresses: Vec<usize> = workers.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(created.load(Ordering::SeqCst), 1);
    assert!(
        addresses.iter().all(|&a| a == addresses[0]),
        "everyone got the same subject"
    );
    assert_eq!(proxy.get().served(), THREADS as u64);
}

#[test]
fn an_unused_proxy_never_pays_for_its_subject() {
    let created = AtomicUsize::new(0);
    {
        let _proxy = VirtualProxy::new(|| {
            created.fetch_add(1, Ordering::SeqCst);
            FieldDevice::new("TC-100", 5)
        });
    }
    assert_eq!(created.load(Ordering::SeqCst), 0);
}
