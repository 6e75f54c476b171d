//! Loading a benchmark's input onto the bed's broker, and reading it back as a plain consumer.

use std::time::{Duration, Instant};

use bmon_kafka::partition_for;
use bmon_schemas::Codec;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

/// The observations topic and its partition count (topology.yaml).
pub const OBSERVATIONS: (&str, i32) = ("bmon.observations", 12);

/// Produces the observations, stamped now; returns how many.
#[allow(dead_code)] // not every benchmark loads them stamped now
pub fn load_observations(brokers: &str, objects: usize, nodes: usize) -> usize {
    load_observations_over(brokers, objects, nodes, None)
}

/// Produces the observations; returns how many. With `over`, object `i`'s records are stamped
/// `over × i / objects` after `now − over` (the density of a fleet over that span), else now.
pub fn load_observations_over(brokers: &str, objects: usize, nodes: usize, over: Option<Duration>) -> usize {
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let over_ms = over.map(|d| d.as_millis() as i64);
    let codec = Codec::default();
    let producer: BaseProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "20")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .unwrap();
    let mut n = 0;
    for (i, sightings) in super::bench_input::observations(objects, nodes).into_iter().enumerate() {
        let stamp = over_ms.map(|over| now_ms - over + over * i as i64 / objects.max(1) as i64);
        for o in &sightings {
            let partition = partition_for(o.hash.as_bytes(), OBSERVATIONS.1);
            let payload = codec.encode(o).unwrap();
            loop {
                let mut record = BaseRecord::to(OBSERVATIONS.0).partition(partition).key(&o.hash).payload(&payload);
                if let Some(ms) = stamp {
                    record = record.timestamp(ms);
                }
                match producer.send(record) {
                    Ok(()) => break,
                    Err((_, _)) => {
                        producer.poll(Duration::from_millis(10));
                    }
                }
            }
            producer.poll(Duration::ZERO);
            n += 1;
        }
    }
    producer.flush(Duration::from_secs(300)).unwrap();
    n
}

/// The group's committed offsets on `topic`, summed over its `partitions` (0 where none).
pub fn committed(brokers: &str, group: &str, topic: &str, partitions: i32) -> i64 {
    let consumer: BaseConsumer =
        rdkafka::ClientConfig::new().set("bootstrap.servers", brokers).set("group.id", group).create().unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let Ok(got) = consumer.committed_offsets(tpl, Duration::from_secs(5)) else { return 0 };
    got.elements()
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(o) => o,
            _ => 0,
        })
        .sum()
}

/// Reads `total` records of `topic` with a plain consumer (manual assignment); returns the time.
pub fn raw_consume(brokers: &str, topic: &str, partitions: i32, total: i64) -> Duration {
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "bench-raw")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "10")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning).unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let start = Instant::now();
    let mut n = 0;
    while n < total {
        if let Some(m) = consumer.poll(Duration::from_millis(500)) {
            m.unwrap();
            n += 1;
        }
        assert!(start.elapsed() < Duration::from_secs(600), "raw consume stalled at {n}");
    }
    start.elapsed()
}
