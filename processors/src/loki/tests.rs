//! Unit tests of the pure parts: entries, their encoding, push bodies and verdicts, and the
//! pushed-offset store.

use std::collections::HashMap;

use bmon_schemas::{Envelope, LogLineFact, NodeImplementation, SourceSeq};
use proptest::prelude::*;

use super::entry::{self, Entry, StreamLabels};
use super::push::{self, Format, PushRequest, Verdict};
use super::pushed::Pushed;

fn fact(line: &str, offset: i64) -> LogLineFact {
    LogLineFact {
        envelope: Envelope {
            node_id: "core-1".into(),
            network: "main".into(),
            implementation: NodeImplementation::Core,
            node_version: "v31.99".into(),
            received_at_us: 42,
            source: SourceSeq { stream: "log".into(), epoch: "e".into(), offset },
        },
        path: "/d/debug.log".into(),
        line: line.as_bytes().to_vec(),
        truncated: false,
        end_offset: offset + line.len() as i64 + 1,
        backlog: false,
    }
}

const HASH: &str = "0000000000000000000320283a032748cef8227873ff4872689bf23f1cda83a5";

#[test]
fn a_line_keeps_its_node_timestamp_and_carries_its_ids_as_metadata() {
    let line = format!(
        "2026-12-02T01:02:03.456789Z [msghand] [validation:info] UpdateTip: new best={HASH} height=850000 version=0x20000000"
    );
    let e = entry::log_entry(&fact(&line, 12_345), None);
    assert_eq!(e.stream, r#"{network="main",node="core-1",implementation="core",source="log"}"#);
    assert_eq!(e.ts_ns, 1_796_173_323_456_789_000 + 345, "node µs, then offset % 1000 as ns");
    assert_eq!(e.line, line);
    let meta: HashMap<&str, &str> = e.metadata.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(meta.get("hash"), Some(&HASH));
    assert_eq!(meta.get("height"), Some(&"850000"));
    assert_eq!(meta.get("thread"), Some(&"msghand"));
    assert_eq!(meta.get("category"), Some(&"validation"));
    assert_eq!(meta.get("level"), Some(&"info"));
    assert!(!meta.contains_key("txid"));
}

#[test]
fn a_rejection_names_its_transaction_not_a_block() {
    let line = format!("2026-12-02T01:02:03Z {HASH} from peer=7 was not accepted: txn-mempool-conflict");
    let e = entry::log_entry(&fact(&line, 0), None);
    let meta: HashMap<&str, &str> = e.metadata.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(meta.get("txid"), Some(&HASH));
    assert_eq!(meta.get("peer"), Some(&"7"));
    assert!(!meta.contains_key("hash"));
}

#[test]
fn a_line_without_a_timestamp_takes_the_receive_time_and_bad_bytes_survive() {
    let mut f = fact("continuation", 1001);
    f.line = vec![b'a', 0xff, b'b'];
    let e = entry::log_entry(&f, Some("r1"));
    assert_eq!(e.ts_ns, 42_000 + 1);
    assert_eq!(e.line, "a\u{fffd}b");
    assert!(e.stream.ends_with(r#"source="log",replay="r1"}"#), "{}", e.stream);
}

#[test]
fn labels_are_escaped_and_empty_ones_left_out() {
    let l = StreamLabels {
        network: Some("main"),
        node: Some("a\"b\\c\nd"),
        source: "log",
        kind: Some(""),
        ..Default::default()
    };
    assert_eq!(l.render(), r#"{network="main",node="a\"b\\c\nd",source="log"}"#);
    let parsed = push::parse_labels(&l.render());
    assert_eq!(parsed["node"], "a\"b\\c\nd");
}

#[test]
fn an_event_is_its_json_at_its_own_time() {
    let v = serde_json::json!({"node_id": "core-2", "network": "main", "new_tip": HASH, "new_height": 5, "detected_at_us": 7_000_000});
    let e = entry::event_entry("chain_reorg", &v, Some(1), None);
    assert_eq!(e.stream, r#"{network="main",node="core-2",source="event",kind="chain_reorg"}"#);
    assert_eq!(e.ts_ns, 7_000_000_000);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&e.line).unwrap(), v);
    assert_eq!(e.metadata, vec![("hash".into(), HASH.into()), ("height".into(), "5".into())]);
    let timeless = entry::event_entry("x", &serde_json::json!({"network": "main"}), Some(3), None);
    assert_eq!(timeless.ts_ns, 3_000_000, "no time field: the record's timestamp");
}

#[test]
fn source_keys_read_back() {
    assert_eq!(
        entry::parse_source_key(&entry::source_key("bmon.node.log", 3, 99)),
        Some(("bmon.node.log".into(), 3, 99))
    );
    assert_eq!(entry::parse_source_key(b"nonsense"), None);
}

proptest! {
    #[test]
    fn entries_encode_and_decode(stream in ".*", ts in any::<i64>(), line in ".*", meta in proptest::collection::vec((".*", ".*"), 0..4)) {
        let e = Entry { stream, ts_ns: ts, line, metadata: meta };
        prop_assert_eq!(entry::decode(&entry::encode(&e)), Ok(e));
    }

    #[test]
    fn decoding_garbage_is_an_error_not_a_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = entry::decode(&bytes);
    }
}

fn e(stream: &str, ts: i64, line: &str) -> Entry {
    Entry { stream: stream.into(), ts_ns: ts, line: line.into(), metadata: vec![("hash".into(), "h".into())] }
}

#[test]
fn a_protobuf_body_groups_streams_and_sorts_each_by_time() {
    let entries = [e("{a=\"2\"}", 30, "x"), e("{a=\"1\"}", 20, "y"), e("{a=\"2\"}", 10, "z"), e("{a=\"2\"}", 10, "w")];
    let body = push::body(Format::Protobuf, &entries);
    let raw = snap::raw::Decoder::new().decompress_vec(&body).unwrap();
    let req: PushRequest = prost::Message::decode(raw.as_slice()).unwrap();
    type Shape = Vec<(String, Vec<(i64, i32, String)>)>;
    let shape: Shape = req
        .streams
        .iter()
        .map(|s| {
            let t = s.entries.iter().map(|x| {
                let ts = x.timestamp.clone().unwrap();
                (ts.seconds, ts.nanos, x.line.clone())
            });
            (s.labels.clone(), t.collect())
        })
        .collect();
    assert_eq!(
        shape,
        vec![
            ("{a=\"1\"}".into(), vec![(0, 20, "y".into())]),
            ("{a=\"2\"}".into(), vec![(0, 10, "z".into()), (0, 10, "w".into()), (0, 30, "x".into())]),
        ]
    );
    assert_eq!(req.streams[0].entries[0].structured_metadata[0].name, "hash");
}

#[test]
fn a_json_body_is_lokis_json_form() {
    let body = push::body(Format::Json, &[e("{node=\"n\",source=\"log\"}", 1_500_000_000_123, "l")]);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"streams": [{"stream": {"node": "n", "source": "log"}, "values": [["1500000000123", "l", {"hash": "h"}]]}]})
    );
}

#[test]
fn answers_are_retried_or_refused_by_status() {
    assert_eq!(push::verdict(204, ""), Verdict::Accepted);
    assert_eq!(push::verdict(429, ""), Verdict::Retry("rate_limited"));
    assert_eq!(push::verdict(503, ""), Verdict::Retry("server_error"));
    assert_eq!(push::verdict(401, ""), Verdict::Retry("unauthorized"));
    assert_eq!(push::verdict(404, ""), Verdict::Retry("not_found"));
    assert_eq!(push::verdict(413, ""), Verdict::Refused("too_large"));
    assert_eq!(
        push::verdict(400, "entry for stream '{a=\"b\"}' has timestamp too old"),
        Verdict::Refused("too_far_behind")
    );
    assert_eq!(
        push::verdict(400, "entry too far behind, oldest acceptable timestamp is"),
        Verdict::Refused("too_far_behind")
    );
    assert_eq!(push::verdict(400, "max entry size '262144' bytes exceeded"), Verdict::Refused("too_large"));
    assert_eq!(push::verdict(400, "error parsing labels"), Verdict::Refused("invalid_labels"));
    assert_eq!(push::verdict(400, "?"), Verdict::Refused("bad_request"));
}

#[test]
fn pushed_offsets_only_advance_and_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let p = Pushed::open(dir.path()).unwrap();
    assert_eq!(p.get("t", 0), None);
    p.advance(&HashMap::from([(("t".into(), 0), 10), (("t".into(), 1), 3)])).unwrap();
    p.advance(&HashMap::from([(("t".into(), 0), 7)])).unwrap();
    assert_eq!(p.get("t", 0), Some(10), "never moves back");
    drop(p);
    let p = Pushed::open(dir.path()).unwrap();
    assert_eq!((p.get("t", 0), p.get("t", 1)), (Some(10), Some(3)));
}
