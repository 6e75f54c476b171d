//! The bounded source reads exactly `[from, to)` of a topic, in time order, and commits nothing.
//!
//! Records with set timestamps (1 000 ms apart, spread over 3 partitions of a fresh topic) are
//! produced to tansu. Then:
//! - an interior range gives exactly the records inside it, ordered by timestamp across partitions;
//! - a range before the data gives nothing, a range past it gives nothing (tansu answers 0 there,
//!   which the source checks), and a range covering everything gives everything;
//! - an empty partition is handled (tansu answers 0 for it too);
//! - under a pace (its partitions assigned one at a time) every range gives the same records in
//!   the same order;
//! - under a pace, a record larger than a paced fetch is still read (tansu never returns a record
//!   over the fetch limit, so the source widens its fetches once the partition stalls);
//! - the source's group has no committed offsets afterwards.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use std::num::NonZeroU64;
use std::time::Duration;

use bmon_kafka::ClientSettings;
use bmon_processors::runtime::bounded::{BoundedSource, PACED_FETCH_BYTES, Range};
use bmon_testbed::TestBed;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

const TOPIC: &str = "bounded.test";
/// One partition: a small record, one larger than a paced fetch, a small one.
const LARGE: &str = "bounded.large";
const T0: i64 = 1_700_000_000_000;

fn read(settings: &ClientSettings, from_ms: i64, to_ms: i64) -> Vec<i64> {
    read_at(settings, from_ms, to_ms, None)
}

fn read_at(settings: &ClientSettings, from_ms: i64, to_ms: i64, max_rate: Option<NonZeroU64>) -> Vec<i64> {
    read_topic(settings, (TOPIC, 4), Range { from_ms, to_ms }, max_rate).into_iter().map(|(ts, _)| ts).collect()
}

/// Every record of `range` in `topic` (name, partitions): timestamps and payload sizes.
fn read_topic(
    settings: &ClientSettings,
    (topic, partitions): (&str, i32),
    range: Range,
    max_rate: Option<NonZeroU64>,
) -> Vec<(i64, usize)> {
    let mut src = BoundedSource::open(settings, &[(topic.to_owned(), partitions)], range, max_rate, 1 << 20).unwrap();
    let mut out = Vec::new();
    while let Some(r) = src.next_record().unwrap() {
        out.push((r.timestamp_ms, r.payload.len()));
    }
    out
}

#[test]
fn a_bounded_read_is_exactly_its_range_in_time_order() {
    let mut bed = TestBed::new().unwrap();
    let brokers = bed.broker().unwrap().bootstrap();
    let admin: AdminClient<DefaultClientContext> =
        rdkafka::ClientConfig::new().set("bootstrap.servers", &brokers).create().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    // Four partitions; the fourth stays empty.
    let topics =
        [NewTopic::new(TOPIC, 4, TopicReplication::Fixed(1)), NewTopic::new(LARGE, 1, TopicReplication::Fixed(1))];
    let created = rt.block_on(admin.create_topics(&topics, &AdminOptions::new()));
    created.unwrap().into_iter().for_each(|r| {
        r.unwrap();
    });
    let producer: BaseProducer = rdkafka::ClientConfig::new().set("bootstrap.servers", &brokers).create().unwrap();
    for i in 0..30i64 {
        let ts = T0 + i * 1000;
        let record = BaseRecord::to(TOPIC).partition((i % 3) as i32).key("k").payload("v").timestamp(ts);
        producer.send(record).unwrap();
    }
    let large = usize::try_from(PACED_FETCH_BYTES).unwrap() + 4096;
    let sizes = [10, large, 10];
    for (i, size) in sizes.iter().enumerate() {
        let payload = vec![b'x'; *size];
        producer.send(BaseRecord::to(LARGE).key("k").payload(&payload).timestamp(T0 + i as i64)).unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    let settings = ClientSettings::plaintext(brokers.clone());

    let inner = read(&settings, T0 + 4_500, T0 + 12_500);
    assert_eq!(inner, (5..=12).map(|i| T0 + i * 1000).collect::<Vec<_>>(), "exactly the range, in time order");
    assert_eq!(read(&settings, T0 + 5_000, T0 + 5_001), vec![T0 + 5_000], "from is inclusive");
    assert_eq!(read(&settings, T0 + 5_001, T0 + 6_000), Vec::<i64>::new(), "to is exclusive");
    assert!(read(&settings, T0 - 10_000, T0 - 1).is_empty(), "before the data");
    assert!(read(&settings, T0 + 100_000, T0 + 200_000).is_empty(), "past the end");
    assert_eq!(read(&settings, 0, i64::MAX / 2).len(), 30, "everything");
    // The pace itself is the reader thread's (`read_ahead`); the source only fetches less ahead
    // and assigns its partitions one at a time, which must not change what it reads.
    for (from_ms, to_ms) in [(T0 + 4_500, T0 + 12_500), (0, i64::MAX / 2), (T0 + 100_000, T0 + 200_000)] {
        assert_eq!(
            read_at(&settings, from_ms, to_ms, NonZeroU64::new(1_000)),
            read(&settings, from_ms, to_ms),
            "paced, {from_ms}..{to_ms}"
        );
    }
    let everything = Range { from_ms: 0, to_ms: i64::MAX / 2 };
    let want: Vec<(i64, usize)> = sizes.iter().enumerate().map(|(i, size)| (T0 + i as i64, *size)).collect();
    assert_eq!(read_topic(&settings, (LARGE, 1), everything, None), want, "a large record, unpaced");
    assert_eq!(read_topic(&settings, (LARGE, 1), everything, NonZeroU64::new(1_000)), want, "a large record, paced");

    let group = format!("bmon-bounded-{}", std::process::id());
    let c: rdkafka::consumer::BaseConsumer =
        rdkafka::ClientConfig::new().set("bootstrap.servers", &brokers).set("group.id", &group).create().unwrap();
    use rdkafka::consumer::Consumer;
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..4 {
        tpl.add_partition(TOPIC, p);
    }
    let committed = c.committed_offsets(tpl, Duration::from_secs(10)).unwrap();
    assert!(
        committed.elements().iter().all(|e| !matches!(e.offset(), rdkafka::Offset::Offset(_))),
        "the bounded source committed offsets: {committed:?}"
    );
}
