//! Hostile input: bad frames cost only themselves (or their connection), never the server.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use logging_service::ace::{AceDecoder, AceRecord, ByteOrder, SecondsLayout, encode};
use logging_service::syslog::{self, SyslogFramer};
use proptest::prelude::*;

use crate::support::{Server, ace_frame as good, send_and_wait};

#[test]
fn a_bad_ace_header_closes_only_that_connection() {
    let server = Server::start("bad-header", |c| c.max_frame = 1024);
    let addr = server.at.ace.unwrap();
    let mut bad = TcpStream::connect(addr).unwrap();
    let mut frame = good("before");
    frame.extend([9, 0, 0, 0, 1, 0, 0, 0]); // byte-order flag 9
    frame.extend(good("never stored"));
    bad.write_all(&frame).unwrap();
    bad.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    assert_eq!(bad.read(&mut [0u8; 8]).unwrap(), 0, "closed by the server");
    // An oversized frame is refused from its header alone.
    let mut huge = good("before huge");
    huge.extend([1, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f]);
    let mut big = TcpStream::connect(addr).unwrap();
    big.write_all(&huge).unwrap();
    big.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    assert_eq!(big.read(&mut [0u8; 8]).unwrap(), 0);
    // Others are unaffected.
    send_and_wait(addr, &good("after"));
    let (stats, stored) = server.stop();
    assert_eq!(stats.ace, 3);
    assert_eq!(stats.rejected, 2);
    // Per input: the bad header is malformed, the huge one oversized; what followed them
    // on their connections is not counted again as an unfinished frame.
    let i = stats.ace_input;
    assert_eq!(
        (i.read, i.records, i.rejected, i.oversized, i.unfinished),
        (5, 3, 1, 1, 0)
    );
    let lines = &stored[0].1;
    assert!(lines.iter().any(|r| r.message == "after"));
    assert!(!lines.iter().any(|r| r.message == "never stored"));
}

#[test]
fn malformed_syslog_messages_are_counted_and_skipped() {
    let server = Server::start("bad-syslog", |c| c.max_frame = 256);
    let mut bytes = Vec::new();
    bytes.extend(b"<13>ok one\n");
    bytes.extend(b"no priority at all\n"); // RFC 3164 4.3.3: user.notice
    bytes.extend(b"<999>pri out of range\n");
    bytes.extend(format!("<13>{}\n", "y".repeat(1000)).into_bytes()); // oversized
    bytes.extend(b"8 <13>two!"); // octet counted, good
    bytes.extend(b"<13>1 - - - - - [unterminated\n");
    bytes.extend(b"<13>ok three\n");
    send_and_wait(server.at.syslog_tcp.unwrap(), &bytes);
    let (stats, stored) = server.stop();
    assert_eq!(stats.syslog, 4);
    assert_eq!(stats.rejected, 3);
    let messages: Vec<&str> = stored[0].1.iter().map(|r| r.message.as_str()).collect();
    assert_eq!(
        messages,
        ["ok one", "no priority at all", "two!", "ok three"]
    );
}

#[test]
fn a_truncated_frame_at_end_of_stream_is_dropped_and_counted() {
    let server = Server::start("truncated", |_| {});
    let mut bytes = good("complete");
    let partial = good("partial");
    bytes.extend(&partial[..partial.len() - 3]);
    send_and_wait(server.at.ace.unwrap(), &bytes);
    let (stats, _) = server.stop();
    assert_eq!(stats.ace, 1);
    assert_eq!(
        (stats.ace_input.read, stats.ace_input.unfinished),
        (2, 1),
        "the cut frame is read and counted, not dropped quietly"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Arbitrary bytes never panic the decoders, and what the ACE decoder accepts re-encodes
    /// to a frame that decodes the same.
    #[test]
    fn decoders_survive_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512), split in 0usize..512) {
        let mut d = AceDecoder::new(256);
        let split = split.min(bytes.len());
        d.extend(&bytes[..split]);
        let mut records = Vec::new();
        loop {
            match d.next_record() {
                Ok(Some(r)) => records.push(r),
                Ok(None) => break,
                Err(_) => break,
            }
        }
        d.extend(&bytes[split..]);
        while let Ok(Some(r)) = d.next_record() {
            records.push(r);
        }
        for r in records {
            let mut again = AceDecoder::new(1 << 20);
            again.extend(&encode(&r, ByteOrder::Big, SecondsLayout::Wide));
            prop_assert_eq!(again.next_record().unwrap(), Some(r));
        }
        let mut f = SyslogFramer::new(128);
        f.extend(&bytes);
        for _ in 0..bytes.len() + 1 {
            match f.next_message() {
                Ok(Some(m)) => { let _ = syslog::parse(m); }
                Ok(None) => break,
                Err(_) => {}
            }
        }
        let _ = syslog::parse(&bytes);
    }

    /// Any record survives encoding in every order and layout, fed in any split.
    #[test]
    fn ace_round_trip(pid in any::<i32>(), secs in -(1i64 << 31)..(1i64 << 31), micros in 0i32..1_000_000,
                      msg in "[^\u{0}]{0,200}", big in any::<bool>(), narrow in any::<bool>(), cut in 0usize..300) {
        let r = AceRecord { priority: 8, pid, seconds: secs, micros, message: msg };
        let order = if big { ByteOrder::Big } else { ByteOrder::Little };
        let layout = if narrow { SecondsLayout::Narrow } else { SecondsLayout::Wide };
        let frame = encode(&r, order, layout);
        let cut = cut.min(frame.len());
        let mut d = AceDecoder::new(1 << 16);
        d.extend(&frame[..cut]);
        let early = d.next_record().unwrap();
        d.extend(&frame[cut..]);
        let got = match early { Some(x) => x, None => d.next_record().unwrap().unwrap() };
        prop_assert_eq!(got, r);
    }
}
