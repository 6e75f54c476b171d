//! The propagation processor's state survives kill -9 and partition moves.
//!
//! One input stream of observations (three nodes; complete windows, windows with a missing node,
//! late sightings that amend closed windows) is published to the real broker and consumed by
//! independent runs of `bmon process propagation`, each in its own consumer group with its own
//! output topic:
//! - straight through;
//! - two instances in one group, one of which leaves mid-stream so the other takes over its
//!   partitions (and rebuilds their state by replay);
//! - killed with SIGKILL at five points and restarted each time in the same group on the same
//!   state directory (it resumes from its RocksDB checkpoint);
//! - a takeover of 40-minute-old history while the tick runs.
//!
//! Each must publish exactly the summaries the pure window logic computes for the same input (and
//! the killed run, its anomaly events: each partition's baseline is restored from the checkpoint
//! or rebuilt by the replay, whichever a restart takes; `propagation_processor.rs` tests the
//! restore alone).
//! Tolerated: a summary may be published again (its input's offset was not stored when the
//! process died or the partition moved), and then it must be byte-identical to the first copy.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bmon_kafka::partition_for;
use bmon_processors::propagation::baseline::BaselineConfig;
use bmon_processors::propagation::window::{Judged, WindowConfig, Windows};
use bmon_schemas::{
    Codec, FactKey, ObjectKind, Observation, ObservationSource, PropagationAnomaly, PropagationSummary, Stage,
};
use bmon_testbed::{Managed, TestBed, poll_until};
use common::*;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

const PARTITIONS: i32 = 12;
const OBJECTS: i64 = 240;
const NODES: [&str; 3] = ["n0", "n1", "n2"];

fn hash(i: i64) -> String {
    format!("{:064x}", (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

fn obs(h: &str, node: &str, at: i64) -> Observation {
    Observation {
        hash: h.to_owned(),
        object: ObjectKind::Block,
        stage: Stage::Tip,
        node_id: node.to_owned(),
        network: "regtest".into(),
        observed_at_us: at,
        source: ObservationSource::Log,
        height: None,
        fact: FactKey { stream: "log".into(), epoch: "test".into(), offset: at },
        received_at_us: Some(at),
        received_late: false,
    }
}

/// The input in publishing order, in three batches: sightings (every tenth object misses n2),
/// one far-later sighting per partition that moves event time past every deadline, then late n2
/// sightings for half of the incomplete windows.
fn input(t0: i64) -> Vec<Vec<Observation>> {
    let mut main = Vec::new();
    for i in 0..OBJECTS {
        for (j, node) in NODES.iter().enumerate() {
            if j == 2 && i % 10 == 7 {
                continue;
            }
            main.push(obs(&hash(i), node, t0 + i * 1_000_000 + ((i * 31 + j as i64 * 17) % 500) * 1000));
        }
    }
    let mut sweep = Vec::new();
    let mut k = 10_000;
    for p in 0..PARTITIONS {
        while partition_for(hash(k).as_bytes(), PARTITIONS) != p {
            k += 1;
        }
        sweep.push(obs(&hash(k), "n0", t0 + 2_000_000_000));
        k += 1;
    }
    let late = (0..OBJECTS).filter(|i| i % 20 == 7).map(|i| obs(&hash(i), "n2", t0 + 2_100_000_000)).collect();
    vec![main, sweep, late]
}

fn window_config() -> WindowConfig {
    WindowConfig {
        block_timeout_us: 600_000_000,
        tx_timeout_us: 600_000_000,
        closed_retention_us: 3_600_000_000,
        alive_us: 1_800_000_000,
        fleet: BTreeMap::from([("regtest".to_owned(), NODES.iter().map(|n| n.to_string()).collect())]),
        correction_threshold_us: 1_000_000,
        clock_outlier_us: 120_000_000,
        baseline: BaselineConfig { size: 20, min_samples: 5, quantile: 0.8 },
    }
}

type Key = (String, i32);

/// What the pure logic makes of the input, partition by partition.
fn expected(batches: &[Vec<Observation>]) -> BTreeMap<Key, PropagationSummary> {
    judged(batches).into_iter().map(|j| ((j.summary.hash.clone(), j.summary.revision), j.summary)).collect()
}

/// The anomalies the pure logic finds in the input: (hash, revision) → the threshold exceeded.
fn expected_anomalies(batches: &[Vec<Observation>]) -> BTreeMap<Key, i64> {
    judged(batches)
        .into_iter()
        .filter_map(|j| Some(((j.summary.hash, j.summary.revision), j.anomaly_threshold_us?)))
        .collect()
}

fn judged(batches: &[Vec<Observation>]) -> Vec<Judged> {
    let mut windows: BTreeMap<i32, Windows> = BTreeMap::new();
    let mut out: Vec<Judged> = Vec::new();
    for o in batches.iter().flatten() {
        let p = partition_for(o.hash.as_bytes(), PARTITIONS);
        windows.entry(p).or_insert_with(|| Windows::new(window_config())).observe(o, &mut out);
    }
    out
}

/// Anomaly events read so far on `reader`, by (hash, revision); panics if a repeat differs.
fn anomalies(reader: &TopicReader<PropagationAnomaly>) -> BTreeMap<Key, i64> {
    let mut got = BTreeMap::new();
    for a in &reader.facts {
        if let Some(prev) = got.insert((a.hash.clone(), a.revision), a.threshold_us) {
            assert_eq!(prev, a.threshold_us, "a repeated anomaly differs");
        }
    }
    got
}

fn now_us() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_micros() as i64
}

fn create_topics(brokers: &str, names: &[&str]) {
    let admin: AdminClient<DefaultClientContext> =
        rdkafka::ClientConfig::new().set("bootstrap.servers", brokers).create().unwrap();
    let topics: Vec<NewTopic> = names.iter().map(|n| NewTopic::new(n, 3, TopicReplication::Fixed(1))).collect();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let results = rt.block_on(admin.create_topics(&topics, &AdminOptions::new())).unwrap();
    for r in results {
        r.unwrap();
    }
}

/// Publishes `batch`, each record stamped with its observation time (so past history looks past
/// to `offsets_for_times`).
fn publish(producer: &BaseProducer, batch: &[Observation]) {
    let codec = Codec::default();
    for o in batch {
        let payload = codec.encode(o).unwrap();
        let p = partition_for(o.hash.as_bytes(), PARTITIONS);
        let record = BaseRecord::to("bmon.observations")
            .partition(p)
            .key(o.hash.as_bytes())
            .payload(&payload)
            .timestamp(o.observed_at_us / 1000);
        producer.send(record).unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();
}

fn start(bed: &TestBed, instance: &str, group: &str, topic: &str, brokers: &str) -> Managed {
    start_on(bed, instance, group, topic, brokers, 0)
}

/// [`start`], serving `/metrics`, `/healthz` and `/readyz` on `port`.
fn start_on(bed: &TestBed, instance: &str, group: &str, topic: &str, brokers: &str, port: u16) -> Managed {
    start_with(bed, instance, group, topic, brokers, port, "")
}

/// [`start_on`], with `more` (TOML tables) appended to the config.
fn start_with(
    bed: &TestBed,
    instance: &str,
    group: &str,
    topic: &str,
    brokers: &str,
    port: u16,
    more: &str,
) -> Managed {
    let state = bed.dir().join(format!("propagation-state-{instance}"));
    let extra = format!(
        // Closed windows kept an hour (the late batch amends them), and with 10 min timeouts that
        // is the 70 min topology.yaml's store window replays.
        "group = \"{group}\"\n[propagation]\nstate_dir = \"{}\"\nclosed_retention_s = 3600\ntx_timeout_s = 600\n\
         baseline_size = 20\nbaseline_min = 5\nanomaly_quantile = 0.8\n\
         [propagation.fleet]\nregtest = [\"n0\", \"n1\", \"n2\"]\n{more}",
        state.display()
    );
    // This run's summaries go to their own topic: topology.yaml with bmon.events renamed.
    let events = topic.to_owned();
    let topology = write_topology(&bed.dir().join(format!("topology-{instance}")), move |t| {
        t.rename_topics(|n| if n == "bmon.events" { events.clone() } else { n.to_owned() })
    });
    start_processor_on(bed, "propagation", instance, &extra, brokers, port, &topology)
}

/// Summaries read so far on `reader`, by (hash, revision); panics if a repeat differs.
fn summaries(reader: &TopicReader<PropagationSummary>) -> BTreeMap<Key, PropagationSummary> {
    let mut got: BTreeMap<Key, PropagationSummary> = BTreeMap::new();
    // Anomaly events (another schema family) are skipped by the reader.
    for s in &reader.facts {
        if let Some(prev) = got.insert((s.hash.clone(), s.revision), s.clone()) {
            assert_eq!(&prev, s, "a repeated summary differs");
        }
    }
    got
}

/// Checks that `reader` ends up with exactly `want`: nothing missing, nothing different,
/// nothing extra (repeats must be identical; `summaries` fails on a differing one).
fn assert_all(reader: &mut TopicReader<PropagationSummary>, want: &BTreeMap<Key, PropagationSummary>, run: &str) {
    reader.read_until(Duration::from_secs(180), |s| {
        s.iter().map(|x| (x.hash.clone(), x.revision)).collect::<BTreeSet<_>>().len() >= want.len()
    });
    let got = summaries(reader);
    let missing: Vec<_> = want.keys().filter(|k| !got.contains_key(*k)).take(5).collect();
    assert!(missing.is_empty(), "{run}: missing summaries, e.g. {missing:?}");
    for (k, s) in want {
        assert_eq!(&got[k], s, "{run}: summary {k:?} differs");
    }
    assert_eq!(got.len(), want.len(), "{run}: unexpected extra summaries");
}

#[test]
fn summaries_survive_a_rebalance() {
    let mut bed = TestBed::new().unwrap();
    let brokers = bed.broker().unwrap().bootstrap();
    apply_topology(&brokers);
    create_topics(&brokers, &["out.straight", "out.rebalance"]);
    let batches = input(now_us());
    let want = expected(&batches);
    assert_eq!(want.len() as i64, OBJECTS + OBJECTS / 20, "one summary per object plus one per amendment");

    let _straight = start(&bed, "straight", "g-straight", "out.straight", &brokers);
    let mut leaver = start(&bed, "rebalance-a", "g-rebalance", "out.rebalance", &brokers);
    let _stayer = start(&bed, "rebalance-b", "g-rebalance", "out.rebalance", &brokers);
    let mut readers: Vec<TopicReader<PropagationSummary>> =
        ["out.straight", "out.rebalance"].iter().map(|t| TopicReader::new(&brokers, t, 3)).collect();

    let producer: BaseProducer = rdkafka::ClientConfig::new().set("bootstrap.servers", &brokers).create().unwrap();
    let (first, rest) = batches[0].split_at(batches[0].len() / 3);
    publish(&producer, first);
    // Mid-stream: once the rebalance group has published some summaries.
    assert!(readers[1].read_until(Duration::from_secs(90), |s| s.len() >= 10), "no summaries before the disruption");
    leaver.stop(Duration::from_secs(30));
    publish(&producer, rest);
    publish(&producer, &batches[1]);
    publish(&producer, &batches[2]);
    for (reader, run) in readers.iter_mut().zip(["straight", "rebalance"]) {
        assert_all(reader, &want, run);
    }
}

/// kill -9 at five pseudo-random points of the stream, each time restarted in the same consumer
/// group on the same state directory: it resumes from its RocksDB checkpoint or the group's
/// offsets, and its summaries and anomaly events equal the pure logic's, repeats byte-identical.
#[test]
fn summaries_survive_kill_minus_nine_in_the_same_group() {
    let mut bed = TestBed::new().unwrap();
    let brokers = bed.broker().unwrap().bootstrap();
    apply_topology(&brokers);
    create_topics(&brokers, &["out.killed"]);
    let batches = input(now_us());
    let want = expected(&batches);
    let mut reader = TopicReader::<PropagationSummary>::new(&brokers, "out.killed", 3);
    let producer: BaseProducer = rdkafka::ClientConfig::new().set("bootstrap.servers", &brokers).create().unwrap();
    let main = &batches[0];
    // Five cut points, spread by a fixed xorshift so a failure can be reproduced.
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut cuts: Vec<usize> = (0..5)
        .map(|k| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let span = main.len() / 6;
            span * (k + 1) + (x as usize % (span / 2))
        })
        .collect();
    cuts.push(main.len());
    let mut killed = start(&bed, "killed", "g-killed", "out.killed", &brokers);
    let mut from = 0;
    for (round, cut) in cuts.iter().enumerate() {
        publish(&producer, &main[from..*cut]);
        from = *cut;
        if round == cuts.len() - 1 {
            break;
        }
        let before = reader.facts.len();
        assert!(
            reader.read_until(Duration::from_secs(90), |s| s.len() > before),
            "round {round}: no new summaries before the kill"
        );
        killed.kill_hard();
        killed = start(&bed, "killed", "g-killed", "out.killed", &brokers);
    }
    publish(&producer, &batches[1]);
    publish(&producer, &batches[2]);
    assert_all(&mut reader, &want, "killed five times");
    // The anomaly verdicts, too: each partition's baseline is checkpointed with its windows.
    let want_anomalies = expected_anomalies(&batches);
    assert!(want_anomalies.len() >= 5, "the input should hold anomalies: {want_anomalies:?}");
    let mut anomaly_reader = TopicReader::<PropagationAnomaly>::new(&brokers, "out.killed", 3);
    anomaly_reader.read_until(Duration::from_secs(30), |a| a.len() >= want_anomalies.len());
    assert_eq!(anomalies(&anomaly_reader), want_anomalies, "anomaly events after five kills");
    drop(killed);
}

/// Every summary `got` holds must equal `want`'s for its (hash, revision): nothing invented.
fn assert_only(got: &BTreeMap<Key, PropagationSummary>, want: &BTreeMap<Key, PropagationSummary>, run: &str) {
    for (k, s) in got {
        assert_eq!(want.get(k), Some(s), "{run}: summary {k:?} was never published by the first instance");
    }
}

/// A second instance takes over partitions with 40 minutes of history while its tick runs. It
/// replays that history with the wall clock 40 minutes ahead of the data, and must publish
/// nothing the first instance had not published (before the fix, its tick closed windows being
/// replayed as timeouts, naming as missing the nodes not replayed yet); its later summaries
/// equal the pure logic's.
#[test]
fn takeover_of_old_history_invents_nothing() {
    let mut bed = TestBed::new().unwrap();
    let brokers = bed.broker().unwrap().bootstrap();
    apply_topology(&brokers);
    create_topics(&brokers, &["out.takeover"]);
    let t0 = now_us() - 40 * 60 * 1_000_000;
    let batches = input(t0);
    let (main, late) = (&batches[0], &batches[2]);
    // What the first instance publishes: its tick (wall clock, 40 min past the data) times out
    // every incomplete window before the late sightings arrive and amend half of them.
    let mut pure: BTreeMap<i32, Windows> = BTreeMap::new();
    let mut first: Vec<PropagationSummary> = Vec::new();
    let part = |o: &Observation| partition_for(o.hash.as_bytes(), PARTITIONS);
    for o in main {
        pure.entry(part(o)).or_insert_with(|| Windows::new(window_config())).observe(o, &mut first);
    }
    for w in pure.values_mut() {
        w.advance(now_us(), &mut first);
    }
    for o in late {
        pure.entry(part(o)).or_insert_with(|| Windows::new(window_config())).observe(o, &mut first);
    }
    let want_a: BTreeMap<Key, PropagationSummary> =
        first.into_iter().map(|s| ((s.hash.clone(), s.revision), s)).collect();

    let (port_a, port_b) = (bed.service_port(3), bed.service_port(4));
    let mut a = start_on(&bed, "takeover-a", "g-takeover", "out.takeover", &brokers, port_a);
    let producer: BaseProducer = rdkafka::ClientConfig::new().set("bootstrap.servers", &brokers).create().unwrap();
    let mut reader = TopicReader::<PropagationSummary>::new(&brokers, "out.takeover", 3);
    let count = |r: &[PropagationSummary], n: usize| {
        r.iter().map(|x| (x.hash.clone(), x.revision)).collect::<BTreeSet<_>>().len() >= n
    };
    publish(&producer, main);
    let closed_by_main = want_a.keys().filter(|(_, rev)| *rev == 0).count();
    assert!(
        reader.read_until(Duration::from_secs(120), |r| count(r, closed_by_main)),
        "first instance: every window closed"
    );
    publish(&producer, late);
    assert!(reader.read_until(Duration::from_secs(60), |r| count(r, want_a.len())), "first instance: the amendments");
    assert_only(&summaries(&reader), &want_a, "first instance");
    assert_eq!(summaries(&reader).len(), want_a.len());

    let _b = start_on(&bed, "takeover-b", "g-takeover", "out.takeover", &brokers, port_b);
    a.stop(Duration::from_secs(30));
    // Ready only once every partition it took over is replayed.
    poll_until(
        "the second instance to restore every partition",
        Duration::from_secs(120),
        Duration::from_millis(100),
        || http_get(&format!("http://127.0.0.1:{port_b}/readyz")).filter(|(c, _)| *c == 200),
    )
    .unwrap();
    // New objects after the takeover, stamped now: B's summaries of them mark the end of the check.
    let t1 = now_us();
    let after: Vec<Observation> = (OBJECTS..OBJECTS + 24)
        .flat_map(|i| NODES.iter().enumerate().map(move |(j, n)| obs(&hash(i), n, t1 + i + j as i64 * 1000)))
        .collect();
    let mut later: Vec<PropagationSummary> = Vec::new();
    for o in &after {
        pure.entry(part(o)).or_insert_with(|| Windows::new(window_config())).observe(o, &mut later);
    }
    let mut want_all = want_a.clone();
    want_all.extend(later.into_iter().map(|s| ((s.hash.clone(), s.revision), s)));
    publish(&producer, &after);
    assert!(
        reader.read_until(Duration::from_secs(120), |r| count(r, want_all.len())),
        "the second instance's summaries"
    );
    // Tick once more past the last summary, then look at everything published.
    reader.read_until(Duration::from_secs(3), |_| false);
    assert_only(&summaries(&reader), &want_all, "after the takeover");
}

/// propagation's own deliveries fail: the broker is killed while its summaries linger (1.5 s,
/// with a 3 s delivery timeout), right after its metrics show it processed every record published
/// so far. Its consumer loop fails, resets its windows, and restarts from the stored offsets; once
/// the broker is back, its summaries equal the pure logic's (repeats byte-identical).
#[test]
fn summaries_survive_propagations_own_failed_delivery() {
    let mut bed = TestBed::new().unwrap();
    let brokers = bed.broker().unwrap().bootstrap();
    apply_topology(&brokers);
    create_topics(&brokers, &["out.failed"]);
    let batches = input(now_us());
    let want = expected(&batches);
    let port = bed.service_port(1);
    let linger = "[kafka.producer]\n\"message.timeout.ms\" = \"3000\"\n\"linger.ms\" = \"1500\"\n";
    let p = start_with(&bed, "failed", "g-failed", "out.failed", &brokers, port, linger);
    let mut reader = TopicReader::<PropagationSummary>::new(&brokers, "out.failed", 3);
    let producer: BaseProducer = rdkafka::ClientConfig::new().set("bootstrap.servers", &brokers).create().unwrap();
    let (first, rest) = batches[0].split_at(batches[0].len() / 2);
    publish(&producer, first);
    let metric = |name: &str| -> f64 {
        let (_, text) = http_get(&format!("http://127.0.0.1:{port}/metrics")).unwrap_or_default();
        text.lines().filter(|l| l.starts_with(name)).filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum()
    };
    // Every published record processed: the summaries of the last 1.5 s are lingering now.
    poll_until("propagation to process the first half", Duration::from_secs(90), Duration::from_millis(20), || {
        (metric("bmon_processor_records_total") >= first.len() as f64).then_some(())
    })
    .unwrap();
    bed.broker().unwrap().crash();
    let failure =
        poll_until("propagation's delivery to fail", Duration::from_secs(60), Duration::from_millis(100), || {
            let log = std::fs::read_to_string(p.log()).unwrap_or_default();
            log.lines().find(|l| l.contains("consumer loop failed; state reset")).map(str::to_owned)
        })
        .unwrap();
    eprintln!("{failure}");
    assert!(failure.contains("MessageTimedOut"), "the loop failed on a timed-out delivery: {failure}");
    bed.broker().unwrap().restart().unwrap();
    publish(&producer, rest);
    publish(&producer, &batches[1]);
    publish(&producer, &batches[2]);
    assert_all(&mut reader, &want, "after propagation's own failed delivery");
    assert!(metric("bmon_processor_restarts_total") >= 1.0, "the restart is counted");
    drop(p);
}
