//! `bmon replay` of a recorded test-bed run, and `bmon lookup`, against the live pipeline.
//!
//! Three Core nodes with producers (log and RPC), and logparse, netviews, propagation, chain and
//! mempool running live. The scenario: transactions and blocks, a 1-deep reorg of core-2, and a
//! double spend that each of core-0 and core-1 refuses. Then the producers stop, the live
//! output settles, and the run's range is replayed with `--out-topic` and both reports:
//!
//! - **equivalence**: the replay's records equal the live run's `bmon.events` records of the
//!   range, record for record (as decoded records, per kind), mempool's cross-node comparisons
//!   included (mempool applies its views and conflict markers in event-time order). The live
//!   side is taken as a set: a redelivery repeats a record byte for byte, and the replay has
//!   none;
//! - **isolation**: the live groups' committed offsets, the live processors' RocksDB files and
//!   their `/metrics` are the same before and after the replay (metric lines that change on
//!   their own while the pipeline is idle, read twice before the replay, are left out, and
//!   counted);
//! - **lookup**: `bmon lookup` of a mined block gives each node's tip time equal to the live
//!   summary's;
//! - **alerts**: Prometheus, over the replay's own metrics, finds the reorg alert firing;
//! - **the report is looked at**: the HTML renders in headless Chromium to a PNG of the window's
//!   size that is not blank.
//!
//! With `BMON_EXAMPLE_DIR` set, the report and its screenshot are copied there (docs/replay/ is
//! made so).

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bmon_report::Report;
use bmon_schemas::{Codec, PropagationSummary, Stage};
use bmon_testbed::{Implementation, Managed, TestBed, poll_until};
use common::*;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};

const EVENTS: &str = "bmon.events";
const OUT_TOPIC: &str = "replay.check";
const WAIT: Duration = Duration::from_secs(90);
const MEMPOOL: &str = "mempool_span_s = 5\nmempool_min_txs = 3\nmempool_every_s = 2\n";

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

/// One record as read.
#[derive(Debug, Clone)]
struct Raw {
    key: Vec<u8>,
    payload: Vec<u8>,
    timestamp_ms: i64,
    headers: BTreeMap<String, String>,
}

/// Every record of `topic` up to its current end.
fn read_all(brokers: &str, topic: &str) -> Vec<Raw> {
    let c: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "replay-live-reader")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "10")
        .create()
        .unwrap();
    let meta = c.fetch_metadata(Some(topic), Duration::from_secs(10)).unwrap();
    let parts: Vec<i32> = meta.topics()[0].partitions().iter().map(|p| p.id()).collect();
    let mut tpl = rdkafka::TopicPartitionList::new();
    let mut ends = BTreeMap::new();
    for p in &parts {
        let (low, high) = c.fetch_watermarks(topic, *p, Duration::from_secs(10)).unwrap();
        if high > low {
            tpl.add_partition_offset(topic, *p, rdkafka::Offset::Offset(low)).unwrap();
            ends.insert(*p, high);
        }
    }
    c.assign(&tpl).unwrap();
    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
    let mut out = Vec::new();
    poll_until(&format!("all of {topic}"), WAIT, Duration::from_millis(1), || {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
            next.insert(m.partition(), m.offset() + 1);
            let headers = m
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|x| (x.key.to_owned(), String::from_utf8_lossy(x.value.unwrap_or_default()).into_owned()))
                        .collect()
                })
                .unwrap_or_default();
            out.push(Raw {
                key: m.key().unwrap_or_default().to_vec(),
                payload: m.payload().unwrap_or_default().to_vec(),
                timestamp_ms: m.timestamp().to_millis().unwrap_or(0),
                headers,
            });
        }
        ends.iter().all(|(p, end)| next.get(p).is_some_and(|n| n >= end)).then_some(())
    })
    .unwrap();
    out
}

/// Records as (kind, decoded JSON), sorted; byte-identical repeats once.
fn decoded(records: &[Raw]) -> BTreeMap<String, Vec<String>> {
    let codec = Codec::default();
    let mut seen = BTreeSet::new();
    let mut by_kind: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in records {
        if !seen.insert((r.key.clone(), r.payload.clone())) {
            continue;
        }
        let (family, value) = codec.decode_json(&r.payload).unwrap();
        by_kind.entry(family).or_default().push(value.to_string());
    }
    for v in by_kind.values_mut() {
        v.sort();
    }
    by_kind
}

/// The committed offsets of the live groups on their inputs.
fn committed(brokers: &str) -> Vec<String> {
    let topology = bmon_processors::registry::builtin_topology().unwrap();
    let mut out = Vec::new();
    for p in topology.processors.iter().filter(|p| p.name != "loki") {
        let c: BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", &p.consumer_group)
            .create()
            .unwrap();
        let mut tpl = rdkafka::TopicPartitionList::new();
        for input in &p.inputs {
            for part in 0..topology.topic(input).unwrap().partitions {
                tpl.add_partition(input, part);
            }
        }
        let got = c.committed_offsets(tpl, Duration::from_secs(10)).unwrap();
        out.extend(
            got.elements().iter().map(|e| format!("{} {}[{}] {:?}", p.name, e.topic(), e.partition(), e.offset())),
        );
    }
    out
}

/// Whether every live group's committed offset is its input partition's end.
fn caught_up(brokers: &str) -> bool {
    let c: BaseConsumer = rdkafka::ClientConfig::new().set("bootstrap.servers", brokers).create().unwrap();
    committed(brokers).iter().all(|line| {
        // "<processor> <topic>[<partition>] <offset>"
        let mut parts = line.split(' ');
        let (Some(_), Some(tp), Some(offset)) = (parts.next(), parts.next(), parts.next()) else { return false };
        let Some((topic, partition)) = tp.strip_suffix(']').and_then(|t| t.split_once('[')) else { return false };
        let (_, high) = c.fetch_watermarks(topic, partition.parse().unwrap(), Duration::from_secs(10)).unwrap();
        offset == format!("Offset({high})") || (high == 0 && offset == "Invalid")
    })
}

/// Every file under `dir` with its bytes' length and a digest of them.
fn files(dir: &Path) -> BTreeMap<PathBuf, (u64, u64)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                let digest = bytes
                    .iter()
                    .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3));
                out.insert(path, (bytes.len() as u64, digest));
            }
        }
    }
    out
}

/// `/metrics` of each live processor, as lines.
fn metrics(ports: &[(String, u16)]) -> BTreeMap<String, BTreeSet<String>> {
    ports
        .iter()
        .map(|(name, port)| {
            let (_, text) = http_get(&format!("http://127.0.0.1:{port}/metrics")).unwrap();
            (name.clone(), text.lines().filter(|l| !l.starts_with('#')).map(str::to_owned).collect())
        })
        .collect()
}

/// Renders `html` with headless Chromium to a PNG of `size`; returns its path.
fn screenshot(html: &Path, size: (u32, u32)) -> PathBuf {
    let png = html.with_extension("png");
    let out = std::process::Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"])
        .arg(format!("--window-size={},{}", size.0, size.1))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", html.display()))
        .output()
        .expect("chromium (scripts/install-debs.sh installs it)");
    assert!(png.exists(), "chromium wrote no PNG: {}", String::from_utf8_lossy(&out.stderr));
    png
}

#[test]
fn a_replay_of_a_recorded_run_equals_it_and_leaves_the_live_pipeline_alone() {
    let mut bed = TestBed::new().unwrap();
    let brokers = bed.broker().unwrap().bootstrap();
    apply_topology(&brokers);
    let net = bed.start_network(Implementation::Core, 3).unwrap();
    let names: Vec<String> = bed.network(net).nodes().iter().map(|n| n.name().to_owned()).collect();
    let from = now_ms() - 1;
    let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
    let fleet = format!("fleet = {{ regtest = [{}] }}\n", quoted.join(", "));
    let settings = |which: &str| match which {
        "propagation" => fleet.clone(),
        "mempool" => MEMPOOL.to_owned(),
        _ => String::new(),
    };
    let mut running: Vec<Managed> = Vec::new();
    let mut ports = Vec::new();
    for (k, which) in ["logparse", "netviews", "propagation", "chain", "mempool"].iter().enumerate() {
        let port = bed.service_port(k as u16 + 1);
        let extra = if ["logparse", "netviews"].contains(which) {
            String::new()
        } else {
            let state = bed.dir().join(format!("{which}-state"));
            format!("[{which}]\n{}state_dir = \"{}\"\n", settings(which), state.display())
        };
        running.push(start_processor(&bed, which, "0", &extra, &brokers, port));
        ports.push(((*which).to_owned(), port));
    }
    let producers: Vec<Managed> = bed
        .network(net)
        .nodes()
        .iter()
        .map(|node| {
            start_producer_with(
                &bed,
                node.name(),
                "core",
                &log_and_rpc_sources(node, "mempool_full_every = 5\n"),
                &brokers,
            )
        })
        .collect();

    // The scenario.
    let n = bed.network(net);
    let mut blocks = Vec::new();
    for _ in 0..3 {
        n.send_tx(0).unwrap();
        blocks.extend(n.mine(0, 1).unwrap());
    }
    let reorg = n.reorg(2, 1).unwrap();
    // Mempools are compared once they hold `mempool_min_txs` (3): three transactions first, then
    // the double spend; its conflict is reported before the next block takes the spends away.
    let held: Vec<String> = (0..3).map(|_| n.send_tx(0).unwrap()).collect();
    poll_until("every node holds the three", WAIT, Duration::from_millis(200), || {
        (0..3).all(|i| held.iter().all(|t| n.node(i).in_mempool(t).unwrap_or(false))).then_some(())
    })
    .unwrap();
    let (a, b) = n.node(0).double_spend_pair().unwrap();
    let ta = n.node(0).send_raw(&a).unwrap();
    n.node(1).send_raw(&b).unwrap();
    let mut conflicts: TopicReader<bmon_schemas::MempoolConflict> = TopicReader::new(&brokers, EVENTS, 3);
    assert!(conflicts.read_until(WAIT, |c| c.iter().any(|x| x.txid == ta)), "the live double spend");
    blocks.extend(n.mine(0, 1).unwrap());
    n.wait_synced().unwrap();

    // The live run's events, until they are all there and the output settles.
    let mut summaries: TopicReader<PropagationSummary> = TopicReader::new(&brokers, EVENTS, 3);
    let all_tips = |s: &[PropagationSummary]| {
        blocks.iter().all(|h| s.iter().any(|x| &x.hash == h && x.stage == Stage::Tip && x.lags.len() == 3))
    };
    assert!(summaries.read_until(WAIT, all_tips), "live tip summaries of every block");
    let mut reorgs: TopicReader<bmon_schemas::ChainReorg> = TopicReader::new(&brokers, EVENTS, 3);
    assert!(reorgs.read_until(WAIT, |r| r.iter().any(|x| x.old_tip == reorg.old_tip)), "the live reorg");
    drop(producers);
    // The live run is idle once the last window that closes by time has: the last block's
    // connect-time comparison (chain's 60 s window). Isolation is checked against an idle run.
    let last = blocks.last().unwrap().clone();
    let mut compared: TopicReader<bmon_schemas::BlockConnectComparison> = TopicReader::new(&brokers, EVENTS, 3);
    assert!(
        compared.read_until(Duration::from_secs(150), |c| c.iter().any(|x| x.hash == last)),
        "the last block's connect comparison"
    );
    // Every live group has consumed and committed everything (offsets are committed a while
    // after they are stored), then the events topic stays the same for 10 s (windows that close
    // by time).
    poll_until(
        "the live groups to commit their inputs' ends",
        Duration::from_secs(180),
        Duration::from_millis(500),
        || caught_up(&brokers).then_some(()),
    )
    .unwrap();
    let settled = |brokers: &str| read_all(brokers, EVENTS).len();
    let mut last = settled(&brokers);
    poll_until(
        "the live output to settle (no new event for 10 s)",
        Duration::from_secs(180),
        Duration::from_secs(10),
        || {
            let now = settled(&brokers);
            let still = now == last;
            last = now;
            still.then_some(())
        },
    )
    .unwrap();
    let to = now_ms() + 1;

    // Isolation: what the live pipeline holds before.
    let offsets_before = committed(&brokers);
    let state_before: Vec<_> =
        ["propagation", "chain", "mempool"].iter().map(|w| files(&bed.dir().join(format!("{w}-state")))).collect();
    let m1 = metrics(&ports);
    poll_until("a few seconds of idle metrics", Duration::from_secs(10), Duration::from_millis(500), || {
        (now_ms() > to + 3000).then_some(())
    })
    .unwrap();
    let m2 = metrics(&ports);

    let out = bed.dir().join("report");
    std::fs::create_dir_all(&out).unwrap();
    let config = out.join("replay.toml");
    std::fs::write(
        &config,
        format!(
            "topology = \"{}\"\n[kafka]\nbrokers = \"{brokers}\"\n[propagation]\n{}[mempool]\n{}",
            repo_root().join("topology.yaml").display(),
            settings("propagation"),
            settings("mempool")
        ),
    )
    .unwrap();
    let (html, json) = (out.join("report.html"), out.join("report.json"));
    let (ok, stdout, stderr) = bmon(&[
        "replay",
        "--config",
        config.to_str().unwrap(),
        "--from",
        &format!("@{}", from / 1000),
        "--to",
        &format!("@{}", to / 1000 + 1),
        "--out",
        html.to_str().unwrap(),
        "--out",
        json.to_str().unwrap(),
        "--out-topic",
        OUT_TOPIC,
        "--id",
        "replay-check",
    ]);
    assert!(ok, "replay failed: {stderr}\n{stdout}");
    eprintln!("{stdout}");

    // Isolation: the same after.
    assert_eq!(offsets_before, committed(&brokers), "the replay moved a live group's offsets");
    for (i, w) in ["propagation", "chain", "mempool"].iter().enumerate() {
        assert_eq!(state_before[i], files(&bed.dir().join(format!("{w}-state"))), "{w}'s RocksDB files changed");
    }
    let m3 = metrics(&ports);
    let series = |line: &str| line.rsplit_once(' ').map_or(line, |(name, _)| name).to_owned();
    let mut drifting = 0;
    for (name, first) in &m1 {
        let moving: BTreeSet<String> = first.symmetric_difference(&m2[name]).map(|l| series(l)).collect();
        drifting += moving.len();
        let steady = |lines: &BTreeSet<String>| -> BTreeSet<String> {
            lines.iter().filter(|l| !moving.contains(&series(l))).cloned().collect()
        };
        let (before, after) = (steady(&m2[name]), steady(&m3[name]));
        let changed: Vec<&String> = before.symmetric_difference(&after).collect();
        assert!(changed.is_empty(), "{name}'s /metrics changed during the replay: {changed:?}");
    }
    eprintln!("{drifting} metric series move on their own while idle and were left out");

    // Equivalence.
    let live: Vec<Raw> =
        read_all(&brokers, EVENTS).into_iter().filter(|r| r.timestamp_ms >= from && r.timestamp_ms < to).collect();
    let replayed = read_all(&brokers, OUT_TOPIC);
    assert!(replayed.iter().all(|r| r.headers.get("bmon-replay-id").map(String::as_str) == Some("replay-check")));
    assert!(replayed.iter().all(|r| r.headers.get("bmon-replay-topic").map(String::as_str) == Some(EVENTS)));
    let (live, replayed) = (decoded(&live), decoded(&replayed));
    let kinds: BTreeSet<&String> = live.keys().chain(replayed.keys()).collect();
    let mut differ = Vec::new();
    for kind in kinds {
        let (l, r) = (live.get(kind).cloned().unwrap_or_default(), replayed.get(kind).cloned().unwrap_or_default());
        eprintln!("{kind}: {} live, {} replayed", l.len(), r.len());
        if l != r {
            let only_live: Vec<&String> = l.iter().filter(|x| !r.contains(x)).collect();
            let only_replay: Vec<&String> = r.iter().filter(|x| !l.contains(x)).collect();
            let text = format!("{kind}:\n  live only {only_live:#?}\n  replay only {only_replay:#?}");
            differ.push(text);
        }
    }
    assert!(differ.is_empty(), "the replay differs from the live run:\n{}", differ.join("\n"));
    for kind in ["chain_reorg", "propagation_summary", "mempool_conflict"] {
        assert!(live.contains_key(kind), "the live run has no {kind}, so its equality says nothing");
    }

    // The report.
    let report: Report = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(report.header.complete);
    assert_eq!(report.header.processors, ["logparse", "propagation", "netviews", "chain", "mempool"]);
    assert_eq!(report.events.values().sum::<u64>() as usize, replayed.values().map(Vec::len).sum::<usize>());
    assert!(report.chain.reorgs.iter().any(|r| r.old_tip == reorg.old_tip));
    assert!(report.chain.tips.iter().any(|t| t.hash == *blocks.last().unwrap()), "tips come from the node events");
    assert!(report.mempool.rejections.iter().any(|r| r.count >= 1), "the refused spends, by reason");
    // The header's counters, from the replay's own metrics, are the live run's over the same
    // input (the live side read it all once, and no live processor restarted).
    let live_sum = |which: &str, name: &str| -> u64 {
        m3[which]
            .iter()
            .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
            .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
            .sum::<f64>() as u64
    };
    assert_eq!(report.header.late_views, live_sum("mempool", "bmon_mempool_late_views_total"), "late views");
    assert_eq!(report.header.duplicates, live_sum("logparse", "bmon_logparse_duplicate_facts_total"), "duplicates");
    assert!(report.alerts.evaluated, "{}", report.alerts.note);
    let fired = |alert: &str, node: &str| {
        report.alerts.firing.iter().any(|f| f.alert == alert && f.labels.get("node").map(String::as_str) == Some(node))
    };
    assert!(
        fired("BmonChainReorg", &reorg.node),
        "the reorg alert, computed by Prometheus: {:?}",
        report.alerts.firing
    );
    let size = (1100, 2400);
    let png = screenshot(&html, size);
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let frame = reader.next_frame(&mut pixels).unwrap();
    assert_eq!((frame.width, frame.height), size, "the screenshot has the window's size");
    let colours: BTreeSet<&[u8]> = pixels[..frame.buffer_size()].chunks(frame.color_type.samples()).collect();
    assert!(colours.len() > 16, "the page is not blank: {} colours", colours.len());
    if let Ok(dir) = std::env::var("BMON_EXAMPLE_DIR") {
        std::fs::create_dir_all(&dir).unwrap();
        for f in [&html, &json, &png] {
            std::fs::copy(f, Path::new(&dir).join(f.file_name().unwrap())).unwrap();
        }
    }

    // Lookup of a mined block: each node's tip time, as the live summary has it.
    let block = &blocks[1];
    let summary = summaries.facts.iter().find(|s| &s.hash == block && s.stage == Stage::Tip).unwrap();
    let (ok, stdout, stderr) = bmon(&[
        "lookup",
        block,
        "--brokers",
        &brokers,
        "--around",
        &format!("@{}", from / 1000),
        "--window",
        "30m",
        "--json",
    ]);
    assert!(ok, "lookup: {stderr}");
    eprintln!("{stderr}");
    let found: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    for lag in &summary.lags {
        let seen = found["observations"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["node_id"] == lag.node_id.as_str() && o["stage"] == "TIP")
            .filter_map(|o| o["observed_at_us"].as_i64())
            .min();
        assert_eq!(seen, Some(lag.observed_at_us), "{}'s tip time of {block}", lag.node_id);
    }
    assert!(found["summaries"].as_array().unwrap().iter().any(|s| s["stage"] == "TIP"), "the summary is shown");
    // By default the read widens from a minute around the time: the same sightings and summaries.
    let (ok, narrow, stderr) =
        bmon(&["lookup", block, "--brokers", &brokers, "--around", &format!("@{}", from / 1000), "--json"]);
    assert!(ok, "lookup, default window: {stderr}");
    eprintln!("{stderr}");
    let narrow: serde_json::Value = serde_json::from_str(&narrow).unwrap();
    assert_eq!(narrow, found, "the default window finds what --window 30m does");
    drop(running);
}
