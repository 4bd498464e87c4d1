//! The remote proxy's codec: round trips, and no panic on any input.

use gof_structural::Error;
use gof_structural::proxy::DeviceOperation;
use gof_structural::proxy::wire::{self, Reply};
use proptest::prelude::*;

fn operation() -> impl Strategy<Value = DeviceOperation> {
    prop_oneof![
        Just(DeviceOperation::Identify),
        any::<u16>().prop_map(DeviceOperation::Read),
        (any::<u16>(), any::<u32>()).prop_map(|(r, v)| DeviceOperation::Write(r, v)),
    ]
}

fn reply() -> impl Strategy<Value = Reply> {
    prop_oneof![
        ".*".prop_map(Reply::Identity),
        any::<u32>().prop_map(Reply::Value),
        Just(()).prop_map(|()| Reply::Done),
        any::<u16>().prop_map(|r| Reply::Failed(Error::NoSuchRegister(r))),
        any::<u16>().prop_map(|r| Reply::Failed(Error::ReadOnlyRegister(r))),
        (".{0,40}", ".{0,40}").prop_map(|(caller, operation)| Reply::Failed(Error::AccessDenied {
            caller,
            operation
        })),
        ".{0,40}".prop_map(|m| Reply::Failed(Error::MalformedFrame(m))),
        ".{0,40}".prop_map(|m| Reply::Failed(Error::Remote(m))),
    ]
}

proptest! {
    #[test]
    fn requests_round_trip(id in any::<u32>(), op in operation()) {
        prop_assert_eq!(wire::decode_request(&wire::encode_request(id, &op)).unwrap(), (id, op));
    }

    #[test]
    fn replies_round_trip(id in any::<u32>(), reply in reply()) {
        let (got_id, got) = wire::decode_reply(&wire::encode_reply(id, &reply)).unwrap();
        prop_assert_eq!(got_id, id);
        prop_assert_eq!(format!("{got:?}"), format!("{reply:?}"));
    }

    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = wire::decode_request(&bytes);
        let _ = wire::decode_reply(&bytes);
        let _ = wire::read_frame(&mut bytes.as_slice(), 32);
    }

    #[test]
    fn every_strict_prefix_of_a_request_is_refused(id in any::<u32>(), op in operation()) {
        let bytes = wire::encode_request(id, &op);
        for cut in 0..bytes.len() {
            prop_assert!(wire::decode_request(&bytes[..cut]).is_err());
        }
    }

    #[test]
    fn frames_round_trip(payload in proptest::collection::vec(any::<u8>(), 0..256)) {
        let mut buf = Vec::new();
        wire::write_frame(&mut buf, &payload, 256).unwrap();
        prop_assert_eq!(wire::read_frame(&mut buf.as_slice(), 256).unwrap(), payload);
    }
}
