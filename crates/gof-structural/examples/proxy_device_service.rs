//! Proxy demo: one field-device interface, four kinds of surrogate in front of it:
//! virtual (created on first use), protection (per-caller policy), smart (counted, released
//! with its last user) and remote (a client stub over an in-process transport and over TCP).

use std::net::TcpListener;
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::Duration;

use gof_structural::proxy::{
    DeviceService, DeviceSkeleton, FieldDevice, InProcessTransport, ProtectionProxy, RemoteDevice,
    Role, RolePolicy, SmartProxy, TcpConfig, TcpDeviceServer, TcpTransport, VirtualProxy,
    registers, wire,
};

/// A client that knows only the subject interface; it cannot tell what it is talking to.
fn commission(label: &str, device: &dyn DeviceService) {
    let id = device.identify().map_err(|e| e.to_string());
    let write = device
        .write_register(registers::SETPOINT, 21_500)
        .map_err(|e| e.to_string());
    let read = device
        .read_register(registers::SETPOINT)
        .map_err(|e| e.to_string());
    println!("{label:<22} identify={id:?} set-point write={write:?} read={read:?}");
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `cargo xtask demo --diagrams` draws the Proxy page's sequence diagram from the remote
    // proxy over TCP below (the other proxies are shown by their printed lines).
    let mut diagram = pattern_core::diagram::Diagram::from_env("proxy_device_service");
    diagram.alias("transport", "TcpTransport");
    diagram.pause();
    println!("== virtual proxy: the controller boots on first use ==");
    let (booted_tx, booted) = mpsc::channel();
    let lazy = VirtualProxy::new(move || {
        booted_tx.send(()).expect("demo is listening");
        FieldDevice::new("TC-100", 101)
    });
    println!("proxy made; controller booted yet? {}", lazy.is_created());
    commission("virtual proxy", &lazy);
    commission("virtual proxy again", &lazy);
    println!("controller booted {} time(s)", booted.try_iter().count());

    println!();
    println!("== protection proxy: one device, a policy per caller ==");
    let device = Arc::new(FieldDevice::new("TC-100", 102));
    let policy = Arc::new(RolePolicy::default());
    for role in [Role::Observer, Role::Operator, Role::Maintainer] {
        let proxy = ProtectionProxy::new(Arc::clone(&device), Arc::clone(&policy), role);
        commission(&format!("as {role}"), &proxy);
        let calibrate = proxy.write_register(registers::CALIBRATION, 999_000);
        println!(
            "{:<22} calibrate -> {}",
            "",
            calibrate.map_or_else(|e| e.to_string(), |()| "ok".into())
        );
    }
    println!(
        "operations that reached the device: {} (refusals never got there)",
        device.served()
    );

    println!();
    println!("== smart proxy: counted users, released with the last one ==");
    let (released_tx, released) = mpsc::channel();
    let shared = SmartProxy::with_release(FieldDevice::new("TC-100", 103), move |dev| {
        released_tx.send(dev.served()).expect("demo is listening");
    });
    let users: Vec<_> = (0..3)
        .map(|_| {
            let user = shared.clone();
            thread::spawn(move || {
                for _ in 0..4 {
                    user.read_register(registers::TEMPERATURE)
                        .expect("readable");
                }
            })
        })
        .collect();
    for user in users {
        user.join().expect("user thread");
    }
    println!(
        "users now: {}, accesses so far: {}",
        shared.users(),
        shared.accesses()
    );
    println!("released yet? {}", released.try_recv().is_ok());
    drop(shared);
    println!(
        "last user gone: released after serving {} operations",
        released.recv()?
    );

    println!();
    println!("== remote proxy: the same interface across a transport ==");
    let in_process = RemoteDevice::new(InProcessTransport::new(DeviceSkeleton::new(
        FieldDevice::new("TC-100", 104),
    )));
    commission("remote, in-process", &in_process);

    let server = TcpDeviceServer::spawn(
        TcpListener::bind("127.0.0.1:0")?,
        // Proxies stack: the server guards its device, serving everyone as an observer.
        DeviceSkeleton::new(ProtectionProxy::new(
            FieldDevice::new("TC-100", 105),
            RolePolicy::default(),
            Role::Observer,
        )),
        wire::DEFAULT_MAX_FRAME,
    )?;
    let config = TcpConfig {
        reply_timeout: Duration::from_millis(300),
        ..TcpConfig::default()
    };
    diagram.resume();
    let over_tcp = RemoteDevice::new(TcpTransport::new(server.local_addr(), config));
    commission("remote, TCP, observer", &over_tcp);
    server.shutdown();
    diagram.note("Client", "the server shuts down");
    let after = over_tcp.identify().map_err(|e| e.to_string());
    println!("{:<22} after server shutdown: {after:?}", "");

    // A peer that accepts and then never answers: the call times out instead of hanging.
    let silent = TcpListener::bind("127.0.0.1:0")?;
    let (quit_tx, quit) = mpsc::channel::<()>();
    let silent_addr = silent.local_addr()?;
    let peer = thread::spawn(move || {
        let (_stream, _) = silent.accept().expect("one client");
        let _ = quit.recv();
    });
    let stuck = RemoteDevice::new(TcpTransport::new(silent_addr, config));
    diagram.note(
        "Client",
        "a peer that accepts and never answers (300 ms reply timeout)",
    );
    println!(
        "{:<22} silent peer: {:?}",
        "",
        stuck.identify().map_err(|e| e.to_string())
    );
    quit_tx.send(())?;
    peer.join().expect("silent peer");
    diagram.finish()?;
    Ok(())
}
