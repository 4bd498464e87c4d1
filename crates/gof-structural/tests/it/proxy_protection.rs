//! Protection proxy: a per-caller policy; refused operations are errors and never reach the subject.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use gof_structural::Error;
use gof_structural::proxy::{
    AccessPolicy, DeviceOperation, DeviceService, DeviceSkeleton, FieldDevice, InProcessTransport,
    ProtectionProxy, RemoteDevice, Role, RolePolicy, registers,
};

/// A subject that only counts what reaches it.
#[derive(Default)]
struct Tally(AtomicU64);

impl DeviceService for Tally {
    fn identify(&self) -> Result<String, Error> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok("tally".into())
    }
    fn read_register(&self, _: u16) -> Result<u32, Error> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(0)
    }
    fn write_register(&self, _: u16, _: u32) -> Result<(), Error> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[test]
fn each_caller_gets_what_its_role_allows() {
    let device = Arc::new(FieldDevice::new("TC-100", 1));
    let policy = Arc::new(RolePolicy::default());
    let proxy = |role| ProtectionProxy::new(Arc::clone(&device), Arc::clone(&policy), role);
    let (observer, operator, maintainer) = (
        proxy(Role::Observer),
        proxy(Role::Operator),
        proxy(Role::Maintainer),
    );

    for p in [&observer, &operator, &maintainer] {
        assert_eq!(p.identify().unwrap(), "TC-100 #1");
        assert_eq!(p.read_register(registers::CALIBRATION).unwrap(), 1_000_000);
    }
    assert!(observer.write_register(registers::SETPOINT, 1).is_err());
    operator
        .write_register(registers::SETPOINT, 21_000)
        .unwrap();
    assert!(
        operator
            .write_register(registers::CALIBRATION, 999_000)
            .is_err()
    );
    maintainer
        .write_register(registers::CALIBRATION, 999_000)
        .unwrap();
    assert_eq!(device.read_register(registers::SETPOINT).unwrap(), 21_000);
    assert_eq!(
        device.read_register(registers::CALIBRATION).unwrap(),
        999_000
    );
    assert_eq!(
        (observer.refused(), operator.refused(), maintainer.refused()),
        (1, 1, 0)
    );
}

#[test]
fn refused_operations_never_reach_the_subject() {
    let subject = Tally::default();
    let observer = ProtectionProxy::new(&subject, RolePolicy::default(), Role::Observer);
    for register in 0..100 {
        assert!(observer.write_register(register, 1).is_err());
    }
    assert_eq!(subject.0.load(Ordering::SeqCst), 0);
    observer.read_register(0).unwrap();
    assert_eq!(subject.0.load(Ordering::SeqCst), 1);
}

#[test]
fn a_refusal_names_the_caller_and_the_operation() {
    let observer = ProtectionProxy::new(
        FieldDevice::new("TC", 1),
        RolePolicy::default(),
        Role::Observer,
    );
    let err = observer.write_register(registers::MODE, 0).unwrap_err();
    match &err {
        Error::AccessDenied { caller, operation } => {
            assert_eq!(caller, "observer");
            assert_eq!(operation, "write 0 to 0x0011");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(!err.is_transport());
}

#[test]
fn the_subjects_own_errors_pass_through_unchanged() {
    let maintainer = ProtectionProxy::new(
        FieldDevice::new("TC", 1),
        RolePolicy::default(),
        Role::Maintainer,
    );
    assert!(matches!(
        maintainer.write_register(registers::TEMPERATURE, 1),
        Err(Error::ReadOnlyRegister(registers::TEMPERATURE))
    ));
}

#[test]
fn any_policy_can_be_plugged_in() {
    /// Callers are badge numbers; odd badges may only identify the device.
    struct Badges;
    impl AccessPolicy for Badges {
        type Caller = u32;
        type Operation = DeviceOperation;
        fn permits(&self, badge: &u32, op: &DeviceOperation) -> bool {
            badge % 2 == 0 || *op == DeviceOperation::Identify
        }
    }
    let subject = Tally::default();
    let odd = ProtectionProxy::new(&subject, Badges, 7);
    let even = ProtectionProxy::new(&subject, Badges, 8);
    assert!(odd.identify().is_ok());
    assert!(
        matches!(odd.read_register(1), Err(Error::AccessDenied { caller, .. }) if caller == "7")
    );
    assert!(even.write_register(1, 1).is_ok());
    assert_eq!(subject.0.load(Ordering::SeqCst), 2);
}

#[test]
fn a_refusal_on_the_server_crosses_the_wire_as_the_same_error() {
    // Stacked proxies: a remote stub in front of a protection proxy in front of the device.
    let guarded = ProtectionProxy::new(
        FieldDevice::new("TC", 1),
        RolePolicy::default(),
        Role::Observer,
    );
    let remote = RemoteDevice::new(InProcessTransport::new(DeviceSkeleton::new(guarded)));
    assert!(remote.read_register(registers::SETPOINT).is_ok());
    assert!(matches!(
        remote.write_register(registers::SETPOINT, 5),
        Err(Error::AccessDenied { caller, .. }) if caller == "observer"
    ));
}
