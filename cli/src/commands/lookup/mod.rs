//! `bmon lookup HASH [--around T]`: when did each node see this block or transaction?
//!
//! The hash's records meet in one partition (Kafka's murmur2 of the key, as logparse publishes
//! them), so only that partition of the observations topic is read, around `--around`: a minute
//! either side, then ten, then `--window`, until the sightings found lie well inside the window
//! read ([`search`]); then the one partition of the events topic that holds the object's
//! summaries, from the first sighting on. One consumer does every read ([`read`]). Keys come
//! from topology.yaml's key kinds, as the processors build them.

mod read;
mod search;

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Instant;

use anyhow::{Context, anyhow};
use bmon_kafka::partition_for;
use bmon_processors::runtime::keys::{KeyFields, KeyKind, OutputTopic};
use bmon_schemas::{Codec, Observation, PropagationSummary, Record};
use bmon_topology::Topology;
use clap::Args;
use rdkafka::consumer::{BaseConsumer, Consumer};

use super::{scan, when};
use read::KeyReader;

/// The widest window read by default.
const DEFAULT_WINDOW: &str = "1h";

/// Arguments of `bmon lookup`.
#[derive(Debug, Args)]
pub struct LookupArgs {
    /// A block hash or txid (hex, as nodes print it).
    hash: String,
    /// Around this time (2026-12-02T14:00:00Z, @SECONDS or a span ago). Default: now.
    #[arg(long)]
    around: Option<String>,
    /// How far either side of --around to read, e.g. 30m or 2h: the whole window is read.
    /// Default: up to an hour, from a minute outwards, stopping at the first window whose
    /// sightings lie 30 s inside it.
    #[arg(long)]
    window: Option<String>,
    /// One JSON object instead of tables.
    #[arg(long)]
    json: bool,
    /// Brokers.
    #[arg(long, env = "BMON_BROKERS", default_value = "127.0.0.1:9092")]
    brokers: String,
    /// topology.yaml. Default: the one bmon was built with.
    #[arg(long)]
    topology: Option<std::path::PathBuf>,
}

/// A window length such as `30m`, in µs.
fn span_us(s: &str) -> anyhow::Result<i64> {
    let back = when::parse_time(s, 0).map_err(|e| anyhow!("--window {e}"))?;
    if back > 0 || s.starts_with('@') {
        return Err(anyhow!("--window {s}: a length such as 30m or 2h"));
    }
    Ok(-back)
}

/// A reader of `key` in the partition of `topic` that holds it.
fn reader<'c>(c: &'c BaseConsumer, topic: &bmon_topology::Topic, key: Vec<u8>) -> anyhow::Result<KeyReader<'c>> {
    // The broker's count, as the live sink partitions by it (topology.yaml's may differ for an
    // older topic).
    let count = bmon_kafka::partition_count(c.client(), &topic.name, std::time::Duration::from_secs(10))?
        .ok_or_else(|| anyhow!("topic {} does not exist", topic.name))?;
    let partition = partition_for(&key, count);
    Ok(KeyReader::new(c, &topic.name, partition, key))
}

/// Looks the object up and prints each node's sightings and the summaries' lags.
pub fn run(args: LookupArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let topology = match &args.topology {
        Some(path) => Topology::load(path).map_err(|e| anyhow!("{e}")).with_context(|| path.display().to_string())?,
        None => bmon_processors::registry::builtin_topology().map_err(|e| anyhow!("{e}"))?,
    };
    let now = when::now_us();
    let around = match &args.around {
        Some(t) => when::parse_time(t, now).map_err(|e| anyhow!("--around {e}"))?,
        None => now,
    };
    let window = span_us(args.window.as_deref().unwrap_or(DEFAULT_WINDOW))?;
    let hash = args.hash.trim().to_ascii_lowercase();
    let bind = |processor: &str, family: &str| -> anyhow::Result<(OutputTopic, bmon_topology::Topic)> {
        let declared = topology.processor_named(processor)?;
        let out = OutputTopic::bind(&topology, declared, family, &KeyKind::ALL)?;
        let topic = topology.topic(&out.name).cloned().ok_or_else(|| anyhow!("no topic {}", out.name))?;
        Ok((out, topic))
    };
    let consumer: BaseConsumer =
        scan::config(&args.brokers).set("enable.partition.eof", "false").create().context("creating a consumer")?;

    // The sightings: windows around the time, narrowest first, until one holds them all.
    let (obs_out, obs_topic) = bind("logparse", Observation::FAMILY)?;
    let mut sightings = reader(&consumer, &obs_topic, obs_out.key(&KeyFields { hash: &hash, ..KeyFields::default() }))?;
    let (mut since, mut until) = (around, around);
    for half in search::half_widths(window, args.window.is_none()) {
        (since, until) = (around.saturating_sub(half), around.saturating_add(half));
        sightings.cover(since, until)?;
        let times: Vec<i64> = sightings.found.iter().map(|f| f.at_us).collect();
        if search::settled(&times, since, until, now) {
            break;
        }
    }
    let codec = Codec::default();
    let mut observations: Vec<Observation> =
        sightings.found.iter().filter_map(|f| codec.decode(&f.payload).ok()).collect();
    observations.sort_by(|a, b| (a.observed_at_us, &a.node_id).cmp(&(b.observed_at_us, &b.node_id)));

    // The summaries, published when propagation closes the object's windows: soon after the
    // last sighting, or up to its window's length later. Read from the first sighting on, as
    // far as the first that holds one.
    let mut summaries: Vec<PropagationSummary> = Vec::new();
    let mut sum_read = 0;
    let networks: std::collections::BTreeSet<&str> = observations.iter().map(|o| o.network.as_str()).collect();
    let (sum_out, sum_topic) = bind("propagation", PropagationSummary::FAMILY)?;
    let close = topology.processor_named("propagation")?.replay_window().map_or(0, |w| w.as_micros() as i64);
    let first = sightings.found.iter().map(|f| f.at_us).min().unwrap_or(since);
    let last = sightings.found.iter().map(|f| f.at_us).max().unwrap_or(until);
    for network in networks {
        let key = sum_out.key(&KeyFields { hash: &hash, network, node_id: "" });
        let mut r = reader(&consumer, &sum_topic, key)?;
        for after in search::half_widths(close, args.window.is_none()) {
            r.cover(first.saturating_sub(search::MARGIN_US), last.saturating_add(after))?;
            if r.found.iter().any(|f| is_summary(&codec, &f.payload)) {
                break;
            }
        }
        sum_read += r.read;
        summaries.extend(
            r.found.iter().filter(|f| is_summary(&codec, &f.payload)).filter_map(|f| codec.decode(&f.payload).ok()),
        );
    }
    summaries.sort_by_key(|s| (s.stage, s.revision));
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::json!({ "hash": hash, "observations": observations, "summaries": summaries }))?;
    } else {
        print_tables(&mut out, &hash, &observations, &summaries)?;
    }
    eprintln!(
        "bmon lookup: {} sightings, {} summaries; read {} records of {}[{}] ({} to {}) and {sum_read} of {} in {:.3} s",
        observations.len(),
        summaries.len(),
        sightings.read,
        obs_topic.name,
        sightings.partition(),
        when::format_us(since),
        when::format_us(until),
        sum_topic.name,
        started.elapsed().as_secs_f64()
    );
    if observations.is_empty() {
        return Err(anyhow!(
            "no node saw {hash} between {} and {}: try --around with the time it was seen, or a wider --window",
            when::format_us(since),
            when::format_us(until)
        ));
    }
    Ok(())
}

fn is_summary(codec: &Codec, payload: &[u8]) -> bool {
    codec.writer_version(payload).is_ok_and(|v| v.family == PropagationSummary::FAMILY)
}

fn print_tables(
    out: &mut impl Write,
    hash: &str,
    observations: &[Observation],
    summaries: &[PropagationSummary],
) -> std::io::Result<()> {
    let first = observations.first();
    writeln!(
        out,
        "{} {hash} on {}{}",
        first.map_or("object", |o| if matches!(o.object, bmon_schemas::ObjectKind::Block) {
            "block"
        } else {
            "transaction"
        }),
        first.map_or("?", |o| o.network.as_str()),
        observations.iter().find_map(|o| o.height).map_or(String::new(), |h| format!(", height {h}"))
    )?;
    // Each node's first sighting per stage.
    let mut seen: BTreeMap<&str, BTreeMap<String, (i64, &str)>> = BTreeMap::new();
    for o in observations {
        let stage = bmon_report::build::stage_name(o.stage);
        let source = match o.source {
            bmon_schemas::ObservationSource::Log => "log",
            bmon_schemas::ObservationSource::Zmq => "zmq",
            bmon_schemas::ObservationSource::Rpc => "rpc",
            bmon_schemas::ObservationSource::Unknown => "?",
        };
        seen.entry(o.node_id.as_str()).or_default().entry(stage).or_insert((o.observed_at_us, source));
    }
    let stages: std::collections::BTreeSet<&String> = seen.values().flat_map(|m| m.keys()).collect();
    write!(out, "{:<16}", "node")?;
    for s in &stages {
        write!(out, "  {s:<33}")?;
    }
    writeln!(out)?;
    for (node, by_stage) in &seen {
        write!(out, "{node:<16}")?;
        for s in &stages {
            match by_stage.get(*s) {
                Some((at, source)) => write!(out, "  {:<27} {source:<5}", when::format_us(*at))?,
                None => write!(out, "  {:<33}", "—")?,
            }
        }
        writeln!(out)?;
    }
    for s in summaries {
        let lags: Vec<String> =
            s.lags.iter().map(|l| format!("{} {:.3} ms", l.node_id, l.lag_us as f64 / 1000.0)).collect();
        writeln!(
            out,
            "summary {} rev {}: first {} at {}, spread {:.3} ms; {}{}",
            bmon_report::build::stage_name(s.stage),
            s.revision,
            s.first_node,
            when::format_us(s.first_seen_us),
            s.spread_us as f64 / 1000.0,
            lags.join(", "),
            if s.missing_nodes.is_empty() {
                String::new()
            } else {
                format!("; missing {}", s.missing_nodes.join(", "))
            }
        )?;
    }
    Ok(())
}
