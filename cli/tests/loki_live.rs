//! The Loki sink end to end, against VictoriaLogs (it takes Loki's push API): three Core nodes
//! and two BSV nodes, a producer each, logparse, propagation and the sink.
//!
//! After a scenario (blocks, transactions, a reorg) every node is stopped, so its debug.log is
//! final, and VictoriaLogs must hold:
//! - every line of every node's file exactly once (no line missing, none twice), with the
//!   node's labels and the node's own timestamp to the microsecond (ns digits: the line's byte
//!   offset modulo 1000);
//! - every record of `bmon.events` exactly once, as its JSON, labelled with its kind;
//! - the records a `bmon replay --out-topic bmon.events --allow-live-topic` publishes, once
//!   each, under the label `replay` with the replay's id, and the live streams unchanged;
//! - no stream label outside the allowed set, on any stream received.
//!
//! `bmon grep` is then checked over the same bed: for a pattern and a node-time range it
//! prints exactly the lines `grep -E` finds in the files in that range, and reads exactly the
//! records stamped in its range (counted against a full read of the topic).

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod common;
mod loki;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bmon_schemas::Codec;
use bmon_testbed::{Implementation, Managed, TestBed, poll_until, stop_all};
use common::*;
use loki::*;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

const WAIT: Duration = Duration::from_secs(180);
const ALLOWED: &[&str] = &["network", "node", "implementation", "source", "kind", "replay"];

/// Every record of `topic` (partition, offset, timestamp ms, payload).
fn read_all(brokers: &str, topic: &str, partitions: i32) -> Vec<(i32, i64, i64, Vec<u8>)> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "test-read-all")
        .set("enable.partition.eof", "true")
        .set("fetch.wait.max.ms", "10")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    let mut open = BTreeSet::new();
    for p in 0..partitions {
        let (low, high) = c.fetch_watermarks(topic, p, Duration::from_secs(10)).unwrap();
        if high > low {
            tpl.add_partition_offset(topic, p, Offset::Offset(low)).unwrap();
            open.insert(p);
        }
    }
    c.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while !open.is_empty() && std::time::Instant::now() < deadline {
        match c.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => out.push((
                m.partition(),
                m.offset(),
                m.timestamp().to_millis().unwrap(),
                m.payload().unwrap_or_default().to_vec(),
            )),
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => {
                open.remove(&p);
            }
            _ => {}
        }
    }
    assert!(open.is_empty(), "{topic}: partitions {open:?} not read to their end");
    out
}

#[test]
fn every_line_and_event_reaches_loki_once_and_grep_finds_what_grep_finds() {
    let mut bed = TestBed::new().unwrap();
    let brokers = bed.broker().unwrap().bootstrap();
    apply_topology(&brokers);
    let core = bed.start_network(Implementation::Core, 3).unwrap();
    let bsv = bed.start_network(Implementation::Bsv, 2).unwrap();
    let mut nodes: Vec<(String, String, &str, std::path::PathBuf)> = Vec::new();
    for (net, network, implementation) in [(core, "regtest", "core"), (bsv, "regtest-bsv", "bsv")] {
        for n in bed.network(net).nodes() {
            nodes.push((n.name().to_owned(), network.to_owned(), implementation, n.log_path()));
        }
    }
    let state = bed.dir().join("loki-state");
    let loki_section = section(bed.victoria_logs(&[]).unwrap(), &state, "");
    let mut producers: Vec<Managed> = nodes
        .iter()
        .map(|(name, network, implementation, log)| {
            let sources = format!("[log]\npath = \"{}\"\npoll_ms = 50\n", log.display());
            let program = [env!("CARGO_BIN_EXE_bmon"), "produce"];
            start_producer_on(network, &program, &bed, name, implementation, &sources, &brokers, None)
        })
        .collect();
    let fleet =
        |net: &str| nodes.iter().filter(|n| n.1 == net).map(|n| format!("\"{}\"", n.0)).collect::<Vec<_>>().join(", ");
    let propagation_settings = format!(
        "[propagation]\nstate_dir = \"{}\"\n[propagation.fleet]\nregtest = [{}]\nregtest-bsv = [{}]\n",
        bed.dir().join("propagation-state").display(),
        fleet("regtest"),
        fleet("regtest-bsv")
    );
    let mut processors = [
        start_processor(&bed, "logparse", "0", "", &brokers, 0),
        start_processor(&bed, "propagation", "0", &propagation_settings, &brokers, 0),
        start_processor(&bed, "loki", "0", &loki_section, &brokers, 0),
    ];

    // The nodes' start-up lines are on the topic before the scenario starts, so that grep's
    // range below leaves records out (the check of records read is not vacuous).
    let lines_now: usize = nodes.iter().map(|n| std::fs::read(&n.3).unwrap().split(|b| *b == b'\n').count() - 1).sum();
    poll_until("the start-up lines on the topic", WAIT, Duration::from_millis(500), || {
        (read_all(&brokers, "bmon.node.log", 6).len() >= lines_now).then_some(())
    })
    .unwrap();
    std::thread::sleep(Duration::from_millis(10)); // a clock step: records after this are stamped later
    // The scenario: transactions and blocks on both networks, and a reorg on Core.
    let grep_since = now_us();
    for round in 0..3 {
        bed.network(core).send_tx(0).unwrap();
        bed.network(core).mine(round % 3, 1).unwrap();
        bed.network(bsv).send_tx(0).unwrap();
        bed.network(bsv).mine(round % 2, 1).unwrap();
    }
    bed.network(core).wait_synced().unwrap();
    bed.network(bsv).wait_synced().unwrap();
    let reorg = bed.network(core).reorg(2, 1).unwrap();
    let grep_until = now_us();
    for _ in 0..2 {
        bed.network(core).send_tx(0).unwrap();
        bed.network(core).mine(0, 1).unwrap();
    }
    bed.network(core).wait_synced().unwrap();

    // Every node stops; its file is then final.
    for net in [core, bsv] {
        for n in bed.network_mut(net).nodes_mut() {
            n.shutdown();
        }
    }
    let config = bed.dir().join("replay.toml"); // for the replay below
    let vlogs = bed.victoria_logs(&[]).unwrap();
    for (name, network, implementation, log) in &nodes {
        let want = sorted(expected(log, name, network, implementation));
        let query = format!("_stream:{{source=\"log\",node=\"{name}\"}}");
        let got = wait_held(vlogs, &query, &want, WAIT);
        let (missing, extra) = diff(&want, &got);
        assert!(
            got == want,
            "{name}: {} lines in the file, {} entries held; missing {missing:?}; extra {extra:?}",
            want.len(),
            got.len()
        );
        eprintln!("{name}: all {} lines held once, with their node timestamps", want.len());
    }
    // The reorg's lines are there, findable by the orphaned block's hash (structured metadata).
    let orphaned = &reorg.orphaned[0];
    let by_hash = vlogs.query(&format!("\"hash\":\"{orphaned}\"")).unwrap();
    assert!(
        by_hash.iter().any(|e| e["node"] == reorg.node.as_str()),
        "the reorged node's lines naming {orphaned} carry it as metadata"
    );

    // Every derived event, once, as its JSON (the pipeline is stopped first, so no more come).
    stop_all(producers.iter_mut().chain(processors.iter_mut().take(2)), Duration::from_secs(10));
    let codec = Codec::default();
    let events: Vec<(BTreeMap<String, String>, String)> = read_all(&brokers, "bmon.events", 3)
        .iter()
        .map(|(_, _, _, payload)| {
            let (family, value) = codec.decode_json(payload).unwrap();
            let labels = stream_labels(&serde_json::json!({ "_stream": bmon_processors::loki::entry::event_entry(&family, &value, None, None).stream }));
            (labels, value.to_string())
        })
        .collect();
    assert!(!events.is_empty(), "the scenario made derived events");
    let mut want: Vec<_> = events.clone();
    want.sort();
    let deadline = std::time::Instant::now() + WAIT;
    let got = loop {
        let mut got: Vec<(BTreeMap<String, String>, String)> = vlogs
            .query("_stream:{source=\"event\"}")
            .unwrap()
            .iter()
            .map(|e| (stream_labels(e), e["_msg"].as_str().unwrap().to_owned()))
            .collect();
        got.sort();
        if got == want || std::time::Instant::now() > deadline {
            break got;
        }
        std::thread::sleep(Duration::from_millis(500)); // poll interval
    };
    assert_eq!(got.len(), want.len(), "every event once");
    assert!(got == want, "the events held are bmon.events' records");
    eprintln!("all {} derived events held once", want.len());

    // A replay published onto the live events topic: the sink labels its records `replay`
    // with the replay's id (its records' header), so they never pass for live ones.
    let before: BTreeSet<(i32, i64)> = read_all(&brokers, "bmon.events", 3).iter().map(|r| (r.0, r.1)).collect();
    std::fs::write(&config, format!("[kafka]\nbrokers = \"{brokers}\"\n{propagation_settings}")).unwrap();
    let (ok, out, err) = bmon(&[
        "replay",
        "--config",
        config.to_str().unwrap(),
        "--processors",
        "propagation",
        "--from",
        &format!("@{}", grep_since / 1_000_000),
        "--to",
        &format!("@{}", now_us() / 1_000_000 + 1),
        "--out-topic",
        "bmon.events",
        "--allow-live-topic",
        "--id",
        "loki-check",
    ]);
    assert!(ok, "replay failed: {err}\n{out}");
    let mut replayed: Vec<(BTreeMap<String, String>, String)> = read_all(&brokers, "bmon.events", 3)
        .iter()
        .filter(|r| !before.contains(&(r.0, r.1)))
        .map(|(_, _, _, payload)| {
            let (family, value) = codec.decode_json(payload).unwrap();
            let entry = bmon_processors::loki::entry::event_entry(&family, &value, None, Some("loki-check"));
            (stream_labels(&serde_json::json!({ "_stream": entry.stream })), value.to_string())
        })
        .collect();
    replayed.sort();
    assert!(!replayed.is_empty(), "the replay published the range's summaries");
    let labelled = |e: &serde_json::Value| (stream_labels(e), e["_msg"].as_str().unwrap().to_owned());
    let held = poll_until("the replayed events in Loki", WAIT, Duration::from_millis(500), || {
        let mut got: Vec<_> =
            vlogs.query("_stream:{source=\"event\",replay=\"loki-check\"}").unwrap().iter().map(labelled).collect();
        got.sort();
        (got.len() >= replayed.len()).then_some(got)
    })
    .unwrap();
    assert!(held == replayed, "each replayed record once, labelled replay=\"loki-check\"");
    let mut live: Vec<_> = vlogs
        .query("_stream:{source=\"event\"}")
        .unwrap()
        .iter()
        .map(labelled)
        .filter(|(labels, _)| !labels.contains_key("replay"))
        .collect();
    live.sort();
    assert!(live == want, "the live streams are as before the replay");
    eprintln!("{} replayed events held under replay=\"loki-check\", apart from the live ones", held.len());

    // No label outside the allowed set, on any stream received.
    let streams: BTreeSet<String> =
        vlogs.query("*").unwrap().iter().map(|e| e["_stream"].as_str().unwrap().to_owned()).collect();
    for s in &streams {
        let labels = stream_labels(&serde_json::json!({ "_stream": s }));
        assert!(labels.keys().all(|k| ALLOWED.contains(&k.as_str())), "stream {s} has a label outside {ALLOWED:?}");
        assert!(labels.len() <= 6, "stream {s}: more than 6 labels");
    }
    eprintln!("{} streams, all labels allowed", streams.len());

    // bmon grep over the same range: what `grep -E` finds in the files, in node time.
    let pattern = "UpdateTip|AcceptToMemoryPool";
    let since = format!("@{}", grep_since / 1_000_000);
    let until = format!("@{}", grep_until / 1_000_000 + 1);
    let (lo_us, hi_us) = ((grep_since / 1_000_000) * 1_000_000, (grep_until / 1_000_000 + 1) * 1_000_000);
    let (ok, out, err) =
        bmon(&["grep", pattern, "--since", &since, "--until", &until, "--brokers", &brokers, "--json"]);
    assert!(ok, "bmon grep failed: {err}");
    let got: Vec<(String, String)> = out
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (v["node"].as_str().unwrap().to_owned(), v["line"].as_str().unwrap().to_owned())
        })
        .collect();
    let mut want: Vec<(String, String)> = Vec::new();
    for (name, _, _, log) in &nodes {
        let grep = std::process::Command::new("grep").args(["-E", pattern]).arg(log).output().unwrap();
        for line in String::from_utf8_lossy(&grep.stdout).lines() {
            let Some(us) = bmon_logparse::split_line(line).logged_at_us else { continue };
            if (lo_us..=hi_us).contains(&us) {
                want.push((name.clone(), line.to_owned()));
            }
        }
    }
    let (mut g, mut w) = (got.clone(), want.clone());
    g.sort();
    w.sort();
    assert!(!w.is_empty(), "the range holds matching lines");
    assert_eq!(g.len(), w.len(), "bmon grep: {} hits, grep -E: {}", g.len(), w.len());
    assert!(g == w, "bmon grep prints exactly grep -E's lines");
    let times: Vec<i64> =
        out.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["ts_us"].as_i64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "hits in time order");
    // It read exactly the records stamped from --since to --until plus the 60 s lag, as a
    // full read of the topic counts them (per partition: from the first record stamped at or
    // after the start, to the first stamped after the end).
    let all = read_all(&brokers, "bmon.node.log", 6);
    let (lo_ms, hi_ms) = (lo_us / 1000, hi_us / 1000 + 60_000);
    let mut expected_read = 0i64;
    for p in 0..6 {
        let recs: Vec<&(i32, i64, i64, Vec<u8>)> = all.iter().filter(|r| r.0 == p).collect();
        let from = recs.iter().find(|r| r.2 >= lo_ms).map(|r| r.1);
        let to = recs.iter().find(|r| r.2 > hi_ms).map(|r| r.1).unwrap_or_else(|| recs.last().map_or(0, |r| r.1 + 1));
        if let Some(from) = from {
            expected_read += (to - from).max(0);
        }
    }
    let read: i64 = err
        .split("matches; ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no record count in {err}"));
    assert_eq!(read, expected_read, "records read (of {} in the topic): {err}", all.len());
    assert!((read as usize) < all.len(), "the range leaves the start-up records out");
    eprintln!("bmon grep: {} hits, {read} records read of {}", g.len(), all.len());
    stop_all(processors.iter_mut(), Duration::from_secs(10));
}

fn now_us() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as i64
}
