//! ACE's own encoding: a fixture written by libACE's `operator<<`, and a live ACE client.

use std::path::PathBuf;
use std::process::Command;

use pattern_core::peer;

use logging_service::ace::{AceDecoder, AceRecord, ByteOrder, SecondsLayout, encode};

use crate::support::Server;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/fixtures")
        .join(name)
}

/// `ace7_le_two_records.bin` was produced by `fixtures/ace_encode.cpp` linked with Debian's
/// ACE 7.0.8: ACE's `ACE_Log_Record` CDR insertion and the header `ACE_Log_Msg_IPC` sends.
#[test]
fn ace7_bytes_decode_and_our_encoder_matches_them() {
    let bytes = std::fs::read(fixture("ace7_le_two_records.bin")).unwrap();
    let mut d = AceDecoder::new(4096);
    d.extend(&bytes);
    let first = d.next_record().unwrap().unwrap();
    let second = d.next_record().unwrap().unwrap();
    assert_eq!(d.next_record().unwrap(), None);
    assert_eq!(
        first,
        AceRecord {
            priority: 8,
            pid: 4242,
            seconds: 1_700_000_000,
            micros: 123_456,
            message: "hello from ACE".into()
        }
    );
    assert_eq!(second.priority, 128);
    assert_eq!(second.message, "second record, a bit longer: 0123456789");
    let ours: Vec<u8> = [&first, &second]
        .iter()
        .flat_map(|r| encode(r, ByteOrder::Little, SecondsLayout::Wide))
        .collect();
    assert_eq!(ours.len(), bytes.len());
    // Byte for byte, except the header's three pad bytes, which ACE leaves uninitialised.
    let second_header = 8 + 39;
    for (i, (a, b)) in ours.iter().zip(&bytes).enumerate() {
        let pad = (1..4).contains(&i) || (second_header + 1..second_header + 4).contains(&i);
        assert!(pad || a == b, "byte {i}: ours {a:#04x}, ACE {b:#04x}");
    }
}

/// Builds `fixtures/ace_client.cpp` against libACE (Debian's `libace-dev`, installed by
/// `.ci/run`) and lets it talk to logd over TCP.
#[test]
fn a_real_ace_client_talks_to_logd() {
    let Some(gxx) = peer::program("g++", "g++") else {
        return;
    };
    if peer::file(
        &["/usr/include/ace/Log_Record.h"],
        "libACE headers",
        "libace-dev",
    )
    .is_none()
    {
        return;
    }
    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    // Per process: two test runs at once must not exec a file the other is still writing.
    let exe = out_dir.join(format!("ace_client-{}", std::process::id()));
    let build = crate::support::output(
        Command::new(gxx)
            .args(["-O1", "-o"])
            .arg(&exe)
            .arg(fixture("ace_client.cpp"))
            .arg("-lACE"),
    )
    .expect("run g++");
    assert!(
        build.status.success(),
        "building the ACE client against libACE failed:\n{}",
        String::from_utf8_lossy(&build.stderr)
    );
    let server = Server::start("ace-client", |c| c.syslog_port = None);
    let addr = server.at.ace.unwrap();
    let run = crate::support::output(Command::new(&exe).args([
        "127.0.0.1",
        &addr.port().to_string(),
        "500",
    ]))
    .expect("run the ACE client");
    let _ = std::fs::remove_file(&exe);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let (stats, stored) = server.stop();
    assert_eq!(stats.ace, 500);
    let records = &stored[0].1;
    assert_eq!(records.len(), 500);
    assert_eq!(
        (records[0].time.as_str(), records[0].host.as_str()),
        ("2023-11-14T22:13:20.000000Z", "127.0.0.1")
    );
    assert_eq!(records[1].time, "2023-11-14T22:13:21.000001Z");
    for (i, r) in records.iter().enumerate() {
        // The newline every other record ends with is trimmed.
        assert_eq!(r.message, format!("ace client record {i}"), "{r:?}");
        assert_eq!(
            (r.app.as_deref(), r.priority().as_str()),
            (Some("ace"), "user.info")
        );
    }
}

/// `logc --format ace` sends what libACE's own `operator<<` writes: the fixture's first record,
/// byte for byte but for the header's pad bytes.
#[test]
fn logc_ace_frames_match_libace_byte_for_byte() {
    use logging_service::client::{Format, Message, Transport, encode as logc_encode};
    let bytes = std::fs::read(fixture("ace7_le_two_records.bin")).unwrap();
    let mut m = Message::new("hello from ACE");
    m.severity = 6; // LM_INFO, priority 8
    m.pid = Some(4242);
    m.time = (1_700_000_000, 123_456);
    let ours = logc_encode(&m, Format::Ace, Transport::Tcp).unwrap();
    let theirs = &bytes[..ours.len()];
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
        assert!(
            (1..4).contains(&i) || a == b,
            "byte {i}: ours {a:#04x}, ACE {b:#04x}"
        );
    }
    let first_len = 8 + u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize;
    assert_eq!(ours.len(), first_len, "one whole ACE frame");
}
