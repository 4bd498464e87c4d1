//! Protection proxy: an access policy decides, per caller, which operations reach the subject.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{DeviceOperation, DeviceService, registers};
use crate::Error;

/// Decides whether a caller may perform an operation.
///
/// Policies are plain values: share one between many proxies by reference or `Arc`.
pub trait AccessPolicy {
    /// Who asks.
    type Caller;
    /// What is asked for.
    type Operation;
    /// Whether `caller` may perform `operation`.
    fn permits(&self, caller: &Self::Caller, operation: &Self::Operation) -> bool;
}

impl<P: AccessPolicy + ?Sized> AccessPolicy for &P {
    type Caller = P::Caller;
    type Operation = P::Operation;
    fn permits(&self, caller: &Self::Caller, operation: &Self::Operation) -> bool {
        (**self).permits(caller, operation)
    }
}

impl<P: AccessPolicy + ?Sized> AccessPolicy for Arc<P> {
    type Caller = P::Caller;
    type Operation = P::Operation;
    fn permits(&self, caller: &Self::Caller, operation: &Self::Operation) -> bool {
        (**self).permits(caller, operation)
    }
}

/// A surrogate bound to one caller: operations the policy refuses fail with
/// [`Error::AccessDenied`] and never reach the subject.
///
/// Its interface is the subject's, though in effect a subset of it (the course's remark):
/// the refused part answers with errors.
///
/// ```
/// use std::sync::Arc;
/// use gof_structural::{Error, proxy::{registers, DeviceService, FieldDevice, ProtectionProxy, Role, RolePolicy}};
///
/// let device = Arc::new(FieldDevice::new("TC-100", 7));
/// let policy = Arc::new(RolePolicy::default());
/// let observer = ProtectionProxy::new(Arc::clone(&device), Arc::clone(&policy), Role::Observer);
/// let operator = ProtectionProxy::new(Arc::clone(&device), policy, Role::Operator);
///
/// assert_eq!(observer.read_register(registers::SETPOINT)?, 20_000);
/// let refused = observer.write_register(registers::SETPOINT, 0);
/// assert!(matches!(refused, Err(Error::AccessDenied { .. })));
/// operator.write_register(registers::SETPOINT, 22_000)?;
/// assert_eq!(device.served(), 2); // the refused write never got there
/// # Ok::<(), gof_structural::Error>(())
/// ```
pub struct ProtectionProxy<S, P: AccessPolicy> {
    subject: S,
    policy: P,
    caller: P::Caller,
    refused: AtomicU64,
}

impl<S, P: AccessPolicy> ProtectionProxy<S, P> {
    /// Guards `subject` with `policy` on behalf of `caller`.
    pub fn new(subject: S, policy: P, caller: P::Caller) -> Self {
        ProtectionProxy {
            subject,
            policy,
            caller,
            refused: AtomicU64::new(0),
        }
    }

    /// The caller this proxy acts for.
    pub fn caller(&self) -> &P::Caller {
        &self.caller
    }

    /// How many operations the policy refused.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// The subject, if the policy permits `operation`; otherwise [`Error::AccessDenied`].
    ///
    /// This is the building block for forwarding any subject interface through the proxy:
    /// `proxy.guard(&op)?.the_operation(...)`.
    pub fn guard(&self, operation: &P::Operation) -> Result<&S, Error>
    where
        P::Caller: fmt::Display,
        P::Operation: fmt::Display,
    {
        if self.policy.permits(&self.caller, operation) {
            Ok(&self.subject)
        } else {
            self.refused.fetch_add(1, Ordering::Relaxed);
            Err(Error::AccessDenied {
                caller: self.caller.to_string(),
                operation: operation.to_string(),
            })
        }
    }
}

impl<S, P> fmt::Debug for ProtectionProxy<S, P>
where
    P: AccessPolicy + fmt::Debug,
    P::Caller: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The subject stays out of the output: printing it would be a way around the policy.
        f.debug_struct("ProtectionProxy")
            .field("caller", &self.caller)
            .field("policy", &self.policy)
            .field("refused", &self.refused())
            .finish_non_exhaustive()
    }
}

impl<S, P> DeviceService for ProtectionProxy<S, P>
where
    S: DeviceService,
    P: AccessPolicy<Operation = DeviceOperation>,
    P::Caller: fmt::Display,
{
    fn identify(&self) -> Result<String, Error> {
        self.guard(&DeviceOperation::Identify)?.identify()
    }
    fn read_register(&self, register: u16) -> Result<u32, Error> {
        self.guard(&DeviceOperation::Read(register))?
            .read_register(register)
    }
    fn write_register(&self, register: u16, value: u32) -> Result<(), Error> {
        self.guard(&DeviceOperation::Write(register, value))?
            .write_register(register, value)
    }
}

/// The callers of a field device, by what they are trusted with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Role {
    /// Dashboards: may identify the device and read registers.
    Observer,
    /// Plant operators: may also write the operating registers.
    Operator,
    /// Service engineers: may do everything.
    Maintainer,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Observer => "observer",
            Role::Operator => "operator",
            Role::Maintainer => "maintainer",
        })
    }
}

/// Role-based access to a field device: observers read, operators also write the
/// registers listed as operator-writable, maintainers do everything.
///
/// ```
/// use gof_structural::proxy::{registers, AccessPolicy, DeviceOperation, Role, RolePolicy};
///
/// let policy = RolePolicy::default();
/// assert!(policy.permits(&Role::Operator, &DeviceOperation::Write(registers::MODE, 2)));
/// assert!(!policy.permits(&Role::Operator, &DeviceOperation::Write(registers::CALIBRATION, 1)));
/// assert!(policy.permits(&Role::Maintainer, &DeviceOperation::Write(registers::CALIBRATION, 1)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolePolicy {
    operator_writable: BTreeSet<u16>,
}

impl RolePolicy {
    /// A policy letting operators write exactly `registers`.
    pub fn with_operator_registers(registers: impl IntoIterator<Item = u16>) -> Self {
        RolePolicy {
            operator_writable: registers.into_iter().collect(),
        }
    }
}

impl Default for RolePolicy {
    /// Operators may write the set point and the mode.
    fn default() -> Self {
        RolePolicy::with_operator_registers([registers::SETPOINT, registers::MODE])
    }
}

impl AccessPolicy for RolePolicy {
    type Caller = Role;
    type Operation = DeviceOperation;

    fn permits(&self, caller: &Role, operation: &DeviceOperation) -> bool {
        match (caller, operation) {
            (Role::Maintainer, _) => true,
            (_, DeviceOperation::Identify | DeviceOperation::Read(_)) => true,
            (Role::Operator, DeviceOperation::Write(r, _)) => self.operator_writable.contains(r),
            (Role::Observer, DeviceOperation::Write(..)) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Nobody;
    impl AccessPolicy for Nobody {
        type Caller = &'static str;
        type Operation = &'static str;
        fn permits(&self, _: &&'static str, _: &&'static str) -> bool {
            false
        }
    }

    #[test]
    fn guard_works_for_any_subject_and_counts_refusals() {
        let proxy = ProtectionProxy::new(vec![1, 2, 3], Nobody, "alice");
        let err = proxy.guard(&"len").unwrap_err();
        assert_eq!(err.to_string(), "alice may not len");
        assert_eq!(proxy.refused(), 1);
        assert_eq!(*proxy.caller(), "alice");
    }

    #[test]
    fn debug_output_hides_the_subject() {
        let proxy = ProtectionProxy::new("secret", RolePolicy::default(), Role::Observer);
        let text = format!("{proxy:?}");
        assert!(text.contains("Observer"));
        assert!(!text.contains("secret"));
    }
}
