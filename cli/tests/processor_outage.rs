//! The processors lose nothing when the broker goes away for longer than their delivery timeout.
//!
//! Three Core nodes, a producer each, logparse and propagation run as in production, with the
//! processors' `message.timeout.ms` cut to 3 s. While transactions stream (one every 250 ms) and
//! blocks are mined, the broker is killed (SIGKILL) and restarted on the same storage 10 s later;
//! at the end it is also stopped gracefully and restarted. Outputs in flight when the broker died time out,
//! and the processor's consumer loop fails and restarts from its stored offsets with its
//! in-memory state reset.
//!
//! The processors' outputs linger 1.5 s before they are sent, so logparse, which handles the
//! streamed lines, has outputs in flight at every kill. The kills repeat (at most six) until its
//! log shows the failure, and the test fails if it never does, since it would have proved
//! nothing. propagation (one summary per window, a hop later) loses its group session in the
//! outage and rebuilds by replay; whether its own deliveries also failed is printed (on this bed
//! they mostly do not: its summaries are sent before the kill).
//!
//! Asserted, from the real topics:
//! - every block mined in the test has a tip-stage summary with all three nodes, and every
//!   (node, block, tip) is on `bmon.observations`. Before the fix, the dedup map and stage tracker
//!   had already advanced past the lost outputs, so they were never published again.
//! - Tolerated: an observation or summary may appear twice, when the broker stored a record but
//!   its acknowledgement was lost (the processor then publishes it again from the unstored input
//!   offset). Such a repeat must be byte-identical to the first copy; the count is printed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bmon_schemas::{Observation, PropagationSummary, Stage};
use bmon_testbed::{Implementation, TestBed};
use common::*;

const OUTAGE: Duration = Duration::from_secs(10);
const MAX_OUTAGES: usize = 6;

/// Processor settings for the test: deliveries time out after 3 s, and outputs linger 1.5 s
/// before they are sent, so a processor that handled records in the last 1.5 s has outputs
/// in flight when the broker dies (without it, that is a race lost most of the time).
const SHORT_TIMEOUT: &str = "[kafka.producer]\n\"message.timeout.ms\" = \"3000\"\n\"linger.ms\" = \"1500\"\n";

#[test]
fn processors_lose_nothing_through_a_long_broker_outage() {
    let mut bed = TestBed::new().unwrap();
    let brokers = bed.broker().unwrap().bootstrap();
    apply_topology(&brokers);
    let net = bed.start_network(Implementation::Core, 3).unwrap();
    // Transactions come from node 0 (it holds the coins): 20 more mature coinbases.
    bed.network(net).mine(0, 20).unwrap();
    let names: Vec<String> = bed.network(net).nodes().iter().map(|n| n.name().to_owned()).collect();
    let _producers: Vec<_> = bed
        .network(net)
        .nodes()
        .iter()
        .map(|n| start_producer(&bed, n.name(), "core", &n.log_path(), &brokers))
        .collect();
    let logparse = start_processor(&bed, "logparse", "0", SHORT_TIMEOUT, &brokers, 0);
    let fleet: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
    let extra = format!(
        "[propagation]\nstate_dir = \"{}\"\n[propagation.fleet]\nregtest = [{}]\n{SHORT_TIMEOUT}",
        bed.dir().join("propagation-state").display(),
        fleet.join(", ")
    );
    let propagation = start_processor(&bed, "propagation", "0", &extra, &brokers, 0);

    let round = |bed: &TestBed, i: usize| {
        bed.network(net).send_tx(0).unwrap();
        bed.network(net).mine(i % 3, 1).unwrap()
    };
    let mut blocks: Vec<String> = (0..3).flat_map(|i| round(&bed, i)).collect();
    let mut summaries = TopicReader::<PropagationSummary>::new(&brokers, "bmon.events", 3);
    let complete = |s: &[PropagationSummary], blocks: &[String]| {
        let tips: BTreeSet<&str> =
            s.iter().filter(|x| x.stage == Stage::Tip && x.lags.len() == 3).map(|x| x.hash.as_str()).collect();
        blocks.iter().all(|b| tips.contains(b.as_str()))
    };
    assert!(summaries.read_until(Duration::from_secs(120), |s| complete(s, &blocks)), "summaries before the outage");

    let failed = |p: &bmon_testbed::Managed| {
        std::fs::read_to_string(p.log()).unwrap_or_default().contains("consumer loop failed; state reset")
    };
    let mut outages = 0;
    while !failed(&logparse) {
        assert!(outages < MAX_OUTAGES, "after {outages} broker kills logparse never saw a delivery fail");
        outages += 1;
        // Transactions stream from node 0 for 4 s, long enough for their observations to reach
        // propagation through logparse's lingering outputs, and the broker dies mid-stream.
        for _ in 0..16 {
            bed.network(net).node(0).send_tx().unwrap();
            std::thread::sleep(Duration::from_millis(250)); // pacing the stream, not synchronisation
        }
        bed.broker().unwrap().crash();
        let outage_start = std::time::Instant::now();
        for _ in 0..5 {
            bed.network(net).node(0).send_tx().unwrap();
            std::thread::sleep(Duration::from_millis(100)); // pacing the stream, not synchronisation
        }
        blocks.extend(round(&bed, outages));
        std::thread::sleep(OUTAGE.saturating_sub(outage_start.elapsed())); // the outage itself, not a synchronisation
        bed.broker().unwrap().restart().unwrap();
        blocks.extend(round(&bed, outages + 1));
        assert!(
            summaries.read_until(Duration::from_secs(240), |s| complete(s, &blocks)),
            "kill {outages}: every block's tip summary has all three nodes; got {} summaries",
            summaries.facts.len()
        );
    }
    eprintln!(
        "{outages} broker kills until logparse had failed deliveries; propagation's failed too: {}",
        failed(&propagation)
    );
    // A stop and restart of the broker on the same storage, with blocks mined meanwhile.
    bed.broker().unwrap().stop();
    blocks.extend(round(&bed, 7));
    bed.broker().unwrap().restart().unwrap();
    blocks.extend(round(&bed, 8));
    assert!(
        summaries.read_until(Duration::from_secs(240), |s| complete(s, &blocks)),
        "after the restart: every block's tip summary has all three nodes"
    );

    // Every (node, hash, stage) the nodes' logs give, on bmon.observations.
    let mut observations = TopicReader::<Observation>::new(&brokers, "bmon.observations", 12);
    let want: BTreeSet<(String, String, Stage)> =
        names.iter().flat_map(|n| blocks.iter().map(move |b| (n.clone(), b.clone(), Stage::Tip))).collect();
    let seen = |o: &[Observation]| -> BTreeSet<(String, String, Stage)> {
        o.iter().map(|x| (x.node_id.clone(), x.hash.clone(), x.stage)).collect()
    };
    assert!(
        observations.read_until(Duration::from_secs(60), |o| want.is_subset(&seen(o))),
        "tip observations missing: {:?}",
        want.difference(&seen(&observations.facts)).take(5).collect::<Vec<_>>()
    );
    let mut first: BTreeMap<(String, String, Stage), &Observation> = BTreeMap::new();
    let mut repeats = 0;
    for o in &observations.facts {
        if let Some(prev) = first.insert((o.node_id.clone(), o.hash.clone(), o.stage), o) {
            assert_eq!(prev, o, "a repeated observation differs");
            repeats += 1;
        }
    }
    let mut by_key: BTreeMap<(String, Stage, String, i32), &PropagationSummary> = BTreeMap::new();
    let mut summary_repeats = 0;
    // Anomaly events (another schema family) are skipped by the reader.
    for s in &summaries.facts {
        if let Some(prev) = by_key.insert((s.network.clone(), s.stage, s.hash.clone(), s.revision), s) {
            assert_eq!(prev, s, "a repeated summary differs");
            summary_repeats += 1;
        }
    }
    eprintln!(
        "{} observations ({repeats} identical repeats), {} summaries ({summary_repeats} identical repeats)",
        observations.facts.len(),
        by_key.len()
    );
}
