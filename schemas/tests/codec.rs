//! Round-trips, framing, schema evolution and corrupt input for the codec.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::sync::Arc;

use apache_avro::Schema;
use apache_avro::schema_compatibility::SchemaCompatibility;
use bmon_schemas::samples;
use bmon_schemas::*;
use proptest::prelude::*;

fn roundtrip<T: Record + PartialEq + std::fmt::Debug>(codec: &Codec, value: &T) {
    let bytes = codec.encode(value).unwrap();
    let back: T = codec.decode(&bytes).unwrap();
    assert_eq!(&back, value);
}

fn confluent_codec() -> Codec {
    let set = SchemaSet::builtin();
    let mut ids = ConfluentIds::default();
    for (i, v) in set.versions().enumerate() {
        ids.insert(100 + i as u32, &v.family, v.version);
    }
    Codec::new(set, Framing::Confluent(ids))
}

#[test]
fn every_record_type_round_trips_in_both_framings() {
    for codec in [Codec::default(), confluent_codec()] {
        roundtrip(&codec, &samples::log_line());
        samples::zmq_facts().iter().for_each(|f| roundtrip(&codec, f));
        samples::rpc_facts().iter().for_each(|f| roundtrip(&codec, f));
        samples::node_events().iter().for_each(|e| roundtrip(&codec, e));
        roundtrip(&codec, &samples::observation());
        roundtrip(&codec, &samples::propagation_summary());
        roundtrip(&codec, &samples::propagation_anomaly());
        roundtrip(&codec, &samples::node_view());
        roundtrip(&codec, &samples::dead_letter());
        roundtrip(&codec, &samples::chain_reorg());
        roundtrip(&codec, &samples::chain_split());
        let (selfish, stale, invalid, lagging, inflation) = samples::chain_events();
        roundtrip(&codec, &selfish);
        roundtrip(&codec, &stale);
        roundtrip(&codec, &invalid);
        roundtrip(&codec, &lagging);
        roundtrip(&codec, &inflation);
        let (connect, comparison) = samples::block_connects();
        roundtrip(&codec, &connect);
        roundtrip(&codec, &comparison);
        let (spike, empty) = samples::mempool_events();
        roundtrip(&codec, &spike);
        roundtrip(&codec, &empty);
        let (verdict, divergence) = samples::policy_events();
        roundtrip(&codec, &verdict);
        roundtrip(&codec, &divergence);
        let (conflict, pool, pair, template) = samples::divergence_events();
        roundtrip(&codec, &conflict);
        roundtrip(&codec, &pool);
        roundtrip(&codec, &pair);
        roundtrip(&codec, &template);
    }
}

#[test]
fn single_object_header_is_magic_plus_fingerprint() {
    let codec = Codec::default();
    let bytes = codec.encode(&samples::observation()).unwrap();
    assert_eq!(&bytes[..2], &[0xC3, 0x01]);
    let fp = SchemaSet::builtin().latest("observation").unwrap().fingerprint;
    assert_eq!(&bytes[2..10], &fp.to_le_bytes());
}

#[test]
fn apache_avro_reads_our_single_object_frames() {
    // An independent reader (apache-avro's own single-object reader) accepts our framing.
    let set = SchemaSet::builtin();
    let schema = set.latest("observation").unwrap().schema.clone();
    let reader = apache_avro::GenericSingleObjectReader::builder().schema(schema).build().unwrap();
    let bytes = Codec::default().encode(&samples::observation()).unwrap();
    let value = reader.read_value(&mut bytes.as_slice()).unwrap();
    let back: Observation = apache_avro::from_value(&value).unwrap();
    assert_eq!(back, samples::observation());
}

#[test]
fn confluent_header_is_zero_plus_big_endian_id() {
    let codec = confluent_codec();
    let bytes = codec.encode(&samples::dead_letter()).unwrap();
    assert_eq!(bytes[0], 0);
    let id = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
    assert!(id >= 100);
    // A codec in Confluent mode still reads single-object records.
    let so = Codec::default().encode(&samples::dead_letter()).unwrap();
    assert_eq!(codec.decode::<DeadLetter>(&so).unwrap(), samples::dead_letter());
    // An unregistered id is an error value.
    let mut bad = bytes.clone();
    bad[1..5].copy_from_slice(&9999u32.to_be_bytes());
    assert!(matches!(codec.decode::<DeadLetter>(&bad), Err(CodecError::UnknownSchemaId(9999))));
}

#[test]
fn wrong_family_unknown_fingerprint_and_trailing_bytes_are_errors() {
    let codec = Codec::default();
    let bytes = codec.encode(&samples::observation()).unwrap();
    assert!(matches!(codec.decode::<DeadLetter>(&bytes), Err(CodecError::WrongFamily { .. })));
    let mut unknown = bytes.clone();
    unknown[2] ^= 0xff;
    assert!(matches!(codec.decode::<Observation>(&unknown), Err(CodecError::UnknownFingerprint(_))));
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(matches!(codec.decode::<Observation>(&trailing), Err(CodecError::TrailingBytes(1))));
    assert!(matches!(codec.decode::<Observation>(&[]), Err(CodecError::TooShort(0))));
    assert!(matches!(codec.decode::<Observation>(&[0xC3, 0x01, 1]), Err(CodecError::TooShort(3))));
    assert!(matches!(codec.decode::<Observation>(&[0xC3, 0x02, 0, 0, 0, 0, 0, 0, 0, 0]), Err(CodecError::BadMagic(2))));
    assert!(matches!(codec.decode::<Observation>(&[0x00, 0, 0, 0, 1]), Err(CodecError::BadMagic(0))));
}

/// Every version of every family can read data written with the version before it, both by the
/// schema compatibility rules and by decoding real bytes.
#[test]
fn each_version_reads_the_previous_one() {
    let set = SchemaSet::builtin();
    let mut pairs = 0;
    for newer in set.versions() {
        let Some(older) = (newer.version > 1).then(|| set.version(&newer.family, newer.version - 1)).flatten() else {
            continue;
        };
        SchemaCompatibility::can_read(&older.schema, &newer.schema)
            .unwrap_or_else(|e| panic!("{} v{} cannot read v{}: {e}", newer.family, newer.version, older.version));
        pairs += 1;
    }
    assert!(pairs >= 1, "no evolved schema family to check");
}

/// Bytes written by dead_letter v1 (before Kafka headers were kept) decode into today's type.
#[test]
fn dead_letter_v1_bytes_decode_with_empty_headers() {
    let set = SchemaSet::builtin();
    let v1 = set.version("dead_letter", 1).unwrap();
    let d = samples::dead_letter();
    let record = apache_avro::types::Value::Record(vec![
        ("topic".into(), d.topic.clone().into()),
        ("partition".into(), d.partition.into()),
        ("offset".into(), d.offset.into()),
        (
            "key".into(),
            apache_avro::types::Value::Union(1, Box::new(apache_avro::types::Value::Bytes(d.key.clone().unwrap()))),
        ),
        ("payload".into(), apache_avro::types::Value::Bytes(d.payload.clone())),
        ("reason".into(), d.reason.clone().into()),
        ("error_class".into(), d.error_class.clone().into()),
        ("processor".into(), d.processor.clone().into()),
        ("failed_at_us".into(), apache_avro::types::Value::TimestampMicros(d.failed_at_us)),
    ]);
    let body = apache_avro::writer::datum::GenericDatumWriter::builder(&v1.schema)
        .build()
        .unwrap()
        .write_value_to_vec(record)
        .unwrap();
    let mut framed = vec![0xC3, 0x01];
    framed.extend_from_slice(&v1.fingerprint.to_le_bytes());
    framed.extend_from_slice(&body);
    let back: DeadLetter = Codec::default().decode(&framed).unwrap();
    assert_eq!(back, DeadLetter { headers: Default::default(), ..d });
}

#[test]
fn rust_types_match_latest_schema_field_names() {
    // Encoding validates against the schema; this catches a renamed field on either side.
    let set = SchemaSet::builtin();
    for family in set.families() {
        let Schema::Record(rec) = &set.latest(family).unwrap().schema else { panic!("{family} is not a record") };
        assert!(!rec.fields.is_empty());
    }
}

fn any_codec() -> impl Strategy<Value = Arc<Codec>> {
    prop_oneof![Just(Arc::new(Codec::default())), Just(Arc::new(confluent_codec()))]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Arbitrary bytes never panic the decoder.
    #[test]
    fn arbitrary_bytes_never_panic(codec in any_codec(), bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = codec.decode::<NodeEvent>(&bytes);
        let _ = codec.decode::<ZmqFact>(&bytes);
    }

    /// A valid header with a corrupted or truncated body is an error value, never a panic.
    #[test]
    fn corrupted_bodies_never_panic(idx in any::<prop::sample::Index>(), flip in 1u8..=255, cut in 0usize..400) {
        let codec = Codec::default();
        for bytes in samples::node_events().iter().map(|e| codec.encode(e).unwrap()) {
            let mut corrupt = bytes.clone();
            let at = 10 + idx.index(corrupt.len() - 10);
            corrupt[at] ^= flip;
            let _ = codec.decode::<NodeEvent>(&corrupt);
            let truncated = &bytes[..cut.min(bytes.len())];
            if truncated.len() < bytes.len() {
                prop_assert!(codec.decode::<NodeEvent>(truncated).is_err());
            }
        }
    }
}

/// Observations written as v1 (before the receive time) decode with `received_at_us: None`.
#[test]
fn observation_v1_bytes_decode_without_receive_time() {
    let set = SchemaSet::builtin();
    let v1 = set.version("observation", 1).unwrap();
    let mut o = samples::observation();
    o.received_at_us = None;
    // Encode with v1 by writing the newest value minus the fields added since through v1's schema.
    let value = apache_avro::to_value(&o).unwrap();
    let apache_avro::types::Value::Record(fields) = value else { panic!("not a record") };
    let fields: Vec<_> = fields.into_iter().filter(|(n, _)| n != "received_at_us" && n != "received_late").collect();
    let body = apache_avro::writer::datum::GenericDatumWriter::builder(&v1.schema)
        .build()
        .unwrap()
        .write_value_to_vec(apache_avro::types::Value::Record(fields))
        .unwrap();
    let mut framed = vec![0xC3, 0x01];
    framed.extend_from_slice(&v1.fingerprint.to_le_bytes());
    framed.extend_from_slice(&body);
    let back: Observation = Codec::default().decode(&framed).unwrap();
    assert_eq!(back, o);
}
