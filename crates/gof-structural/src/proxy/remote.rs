//! Remote proxy: a client stub that makes a device across a transport look like a local one.

use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use super::wire::{self, Reply};
use super::{DeviceOperation, DeviceService};
use crate::Error;

/// Carries one request payload to the remote side and brings back its reply payload.
///
/// Implementations decide what "remote" means: [`InProcessTransport`] calls a skeleton directly,
/// [`TcpTransport`](super::TcpTransport) crosses a socket. Timeouts and dropped connections
/// come back as [`Error::Timeout`] and [`Error::Disconnected`], never as a hang.
pub trait Transport {
    /// Sends `request` and returns the reply payload.
    fn round_trip(&self, request: &[u8]) -> Result<Vec<u8>, Error>;
}

impl<T: Transport + ?Sized> Transport for &T {
    fn round_trip(&self, request: &[u8]) -> Result<Vec<u8>, Error> {
        (**self).round_trip(request)
    }
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn round_trip(&self, request: &[u8]) -> Result<Vec<u8>, Error> {
        (**self).round_trip(request)
    }
}

impl<T: Transport + ?Sized> Transport for Arc<T> {
    fn round_trip(&self, request: &[u8]) -> Result<Vec<u8>, Error> {
        (**self).round_trip(request)
    }
}

/// The remote proxy (client stub): a [`DeviceService`] whose operations are marshalled into
/// requests, carried by a [`Transport`], and whose replies are unmarshalled back into results.
///
/// The subject's own errors arrive as the same [`Error`] variants a local call would return;
/// the path adds only its own (timeouts, dropped connections, bad frames: [`Error::is_transport`]).
///
/// ```
/// use gof_structural::proxy::{registers, DeviceService, DeviceSkeleton, FieldDevice, InProcessTransport, RemoteDevice};
///
/// let transport = InProcessTransport::new(DeviceSkeleton::new(FieldDevice::new("TC-100", 7)));
/// let remote = RemoteDevice::new(transport);
/// assert_eq!(remote.identify()?, "TC-100 #7");
/// remote.write_register(registers::SETPOINT, 23_000)?;
/// assert_eq!(remote.read_register(registers::SETPOINT)?, 23_000);
/// assert!(remote.write_register(registers::TEMPERATURE, 1).is_err());
/// # Ok::<(), gof_structural::Error>(())
/// ```
#[derive(Debug)]
pub struct RemoteDevice<T> {
    transport: T,
    next_id: AtomicU32,
}

impl<T: Transport> RemoteDevice<T> {
    /// A stub talking through `transport`.
    pub fn new(transport: T) -> Self {
        RemoteDevice {
            transport,
            next_id: AtomicU32::new(1),
        }
    }

    /// The transport underneath.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    fn call(&self, operation: DeviceOperation) -> Result<Reply, Error> {
        seq!("Client" => "RemoteDevice", "{operation:?}");
        let result = self.call_once(operation);
        match &result {
            Ok(reply) => seq!(reply "RemoteDevice" => "Client", "Ok({reply:?})"),
            Err(e) => seq!(fail "RemoteDevice" => "Client", "Err({e})"),
        }
        result
    }

    fn call_once(&self, operation: DeviceOperation) -> Result<Reply, Error> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        seq!("RemoteDevice" => crate::short::<T>(), "round_trip(request {id}: {operation:?})");
        let reply = self
            .transport
            .round_trip(&wire::encode_request(id, &operation))?;
        let (reply_id, reply) = wire::decode_reply(&reply)?;
        if reply_id != id {
            return Err(Error::MalformedFrame(format!(
                "reply to request {reply_id} arrived for request {id}"
            )));
        }
        match reply {
            Reply::Failed(err) => Err(err),
            reply => Ok(reply),
        }
    }
}

fn unexpected(reply: Reply, operation: &str) -> Error {
    Error::MalformedFrame(format!("unexpected reply {reply:?} to {operation}"))
}

impl<T: Transport> DeviceService for RemoteDevice<T> {
    fn identify(&self) -> Result<String, Error> {
        match self.call(DeviceOperation::Identify)? {
            Reply::Identity(text) => Ok(text),
            other => Err(unexpected(other, "identify")),
        }
    }

    fn read_register(&self, register: u16) -> Result<u32, Error> {
        match self.call(DeviceOperation::Read(register))? {
            Reply::Value(value) => Ok(value),
            other => Err(unexpected(other, "read")),
        }
    }

    fn write_register(&self, register: u16, value: u32) -> Result<(), Error> {
        match self.call(DeviceOperation::Write(register, value))? {
            Reply::Done => Ok(()),
            other => Err(unexpected(other, "write")),
        }
    }
}

/// The server side of the remote proxy: unmarshals requests, calls the real subject,
/// marshals the results. Any [`DeviceService`] can sit behind it, another proxy included.
///
/// ```
/// use gof_structural::proxy::{wire, DeviceOperation, DeviceSkeleton, FieldDevice};
///
/// let skeleton = DeviceSkeleton::new(FieldDevice::new("TC-100", 7));
/// let reply = skeleton.handle(&wire::encode_request(1, &DeviceOperation::Identify));
/// assert!(matches!(wire::decode_reply(&reply)?, (1, wire::Reply::Identity(id)) if id == "TC-100 #7"));
/// // A request it cannot decode gets an error reply, not a panic.
/// assert!(matches!(wire::decode_reply(&skeleton.handle(b"??"))?, (0, wire::Reply::Failed(_))));
/// # Ok::<(), gof_structural::Error>(())
/// ```
#[derive(Debug)]
pub struct DeviceSkeleton<S> {
    subject: S,
}

impl<S: DeviceService> DeviceSkeleton<S> {
    /// A skeleton serving `subject`.
    pub fn new(subject: S) -> Self {
        DeviceSkeleton { subject }
    }

    /// The served subject.
    pub fn subject(&self) -> &S {
        &self.subject
    }

    /// Answers one request payload with one reply payload.
    /// Undecodable requests are answered with an error reply under id 0.
    pub fn handle(&self, request: &[u8]) -> Vec<u8> {
        let (id, operation) = match wire::decode_request(request) {
            Ok(decoded) => decoded,
            Err(err) => return wire::encode_reply(0, &Reply::Failed(err)),
        };
        let subject = crate::short::<S>();
        seq!("DeviceSkeleton" => subject, "{operation:?}");
        let reply = match operation {
            DeviceOperation::Identify => self.subject.identify().map(Reply::Identity),
            DeviceOperation::Read(r) => self.subject.read_register(r).map(Reply::Value),
            DeviceOperation::Write(r, v) => self.subject.write_register(r, v).map(|()| Reply::Done),
        };
        match &reply {
            Ok(reply) => seq!(reply subject => "DeviceSkeleton", "Ok({reply:?})"),
            Err(e) => seq!(fail subject => "DeviceSkeleton", "Err({e})"),
        }
        seq!(reply "DeviceSkeleton" => "transport", "reply frame {id}");
        wire::encode_reply(id, &reply.unwrap_or_else(Reply::Failed))
    }

    /// Serves one connection until the peer closes it: reads frames, answers each.
    ///
    /// Returns `Ok` when the peer closes between frames, and the error otherwise;
    /// a frame above `max_frame` ends the connection, since the stream cannot be resynchronised.
    pub fn serve(&self, mut stream: impl Read + Write, max_frame: usize) -> Result<(), Error> {
        loop {
            let request = match wire::read_frame(&mut stream, max_frame) {
                Ok(request) => request,
                Err(Error::Disconnected) => return Ok(()),
                Err(err) => return Err(err),
            };
            let reply = self.handle(&request);
            wire::write_frame(&mut stream, &reply, max_frame)?;
        }
    }
}

/// A transport that hands requests straight to a skeleton in the same process.
///
/// The requests and replies are still marshalled, so the stub and skeleton are exercised exactly
/// as across a network; only the network is missing.
#[derive(Debug)]
pub struct InProcessTransport<S> {
    skeleton: DeviceSkeleton<S>,
}

impl<S: DeviceService> InProcessTransport<S> {
    /// A transport delivering to `skeleton`.
    pub fn new(skeleton: DeviceSkeleton<S>) -> Self {
        InProcessTransport { skeleton }
    }

    /// The skeleton on the far side.
    pub fn skeleton(&self) -> &DeviceSkeleton<S> {
        &self.skeleton
    }
}

impl<S: DeviceService> Transport for InProcessTransport<S> {
    fn round_trip(&self, request: &[u8]) -> Result<Vec<u8>, Error> {
        Ok(self.skeleton.handle(request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A transport answering every request with fixed bytes.
    struct Canned(Vec<u8>);
    impl Transport for Canned {
        fn round_trip(&self, _: &[u8]) -> Result<Vec<u8>, Error> {
            Ok(self.0.clone())
        }
    }

    #[test]
    fn a_reply_for_another_request_is_refused() {
        let remote = RemoteDevice::new(Canned(wire::encode_reply(99, &Reply::Done)));
        assert!(matches!(
            remote.write_register(1, 1),
            Err(Error::MalformedFrame(_))
        ));
    }

    #[test]
    fn a_reply_of_the_wrong_kind_is_refused() {
        let remote = RemoteDevice::new(Canned(wire::encode_reply(1, &Reply::Done)));
        assert!(matches!(
            remote.read_register(1),
            Err(Error::MalformedFrame(_))
        ));
    }

    #[test]
    fn garbage_replies_are_errors() {
        let remote = RemoteDevice::new(Canned(vec![1, 2, 3]));
        assert!(matches!(remote.identify(), Err(Error::MalformedFrame(_))));
    }
}
