//! `bmon replay --from T1 --to T2`: re-run the processors over a past time range, in this
//! process, and write a report (HTML and/or JSON) and/or publish what they produce to a topic
//! of its own.
//!
//! The live pipeline is never touched: the range is read by manual assignment (no group, no
//! commit), state lives in a temporary directory removed at the end, and metrics go to the
//! replay's own recorder (see [`bmon_processors::replay`]).
//!
//! - [`progress`]: bars on a TTY, JSON lines otherwise;
//! - [`publish`]: the records published with `--out-topic`;
//! - [`alerts`]: the shipped alert rules over the replay's metrics, by Prometheus.

pub mod alerts;
pub mod progress;
pub mod publish;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::TryRecvError;
use std::time::Instant;

use anyhow::{Context, anyhow, bail};
use bmon_kafka::ClientSettings;
use bmon_processors::config::ProcessorFile;
use bmon_processors::replay::{self, Filter, Replay, ReplaySpec};
use bmon_processors::runtime::bounded::Range;
use bmon_processors::runtime::inprocess::Emitted;
use bmon_report::model::{Header, PartitionRange};
use bmon_report::{Report, ReportBuilder};
use bmon_schemas::{NodeEvent, Record, TxVerdict};
use bmon_topology::Topology;
use clap::Args;
use sha2::Digest;

use super::when;

/// The git commit this binary was built from (see build.rs).
pub const GIT_COMMIT: &str = env!("BMON_GIT_COMMIT");

/// Arguments of `bmon replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Start of the range (broker time): 2026-12-02T14:00:00Z, @SECONDS or a span ago (2h).
    #[arg(long)]
    from: String,
    /// End of the range (exclusive), in the same forms. A time in the future ends at the
    /// topics' ends as they are when the replay starts.
    #[arg(long)]
    to: String,
    /// The processors to run, comma-separated (default: all that produce records). Processors
    /// whose output a chosen one needs are added and named in the report.
    #[arg(long, value_delimiter = ',')]
    processors: Vec<String>,
    /// Only these nodes' facts (comma-separated or repeated).
    #[arg(long, value_delimiter = ',')]
    nodes: Vec<String>,
    /// Only this network's facts.
    #[arg(long)]
    network: Option<String>,
    /// A processor config file (the `bmon process` format): its [kafka] section, topology and
    /// processor sections are used, so settings can be changed to ask "what if".
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Where to write the report: a path ending in .html or .json (repeat for both).
    #[arg(long = "out")]
    outs: Vec<PathBuf>,
    /// Publish what the processors produce to this topic (created if missing), each record with
    /// a `bmon-replay-id` header.
    #[arg(long)]
    out_topic: Option<String>,
    /// Allow --out-topic to name a live topic of topology.yaml.
    #[arg(long)]
    allow_live_topic: bool,
    /// Replication factor of a created --out-topic.
    #[arg(long, default_value_t = 1)]
    replication_factor: i16,
    /// The replay's id, 1 to 64 characters (default: `replay-` and the start time). A Loki sink
    /// reading the --out-topic labels its streams `replay` with it.
    #[arg(long)]
    id: Option<String>,
    /// Read at most this many records a second (all inputs together), to leave the broker and
    /// the host to a live pipeline beside the replay. Default: as fast as they come.
    #[arg(long)]
    max_rate: Option<std::num::NonZeroU64>,
    /// Brokers (overrides the config's).
    #[arg(long, env = "BMON_BROKERS")]
    brokers: Option<String>,
}

/// What to write where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Html,
    Json,
}

fn format_of(path: &Path) -> anyhow::Result<Format> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html" | "htm") => Ok(Format::Html),
        Some("json") => Ok(Format::Json),
        _ => bail!("--out {}: the name must end in .html or .json", path.display()),
    }
}

/// Writes `text` to `path` through a temporary file beside it, so a reader never sees half.
fn write_atomically(path: &Path, text: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension(format!("{}.tmp", path.extension().and_then(|e| e.to_str()).unwrap_or("out")));
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
}

/// The sum of a counter in Prometheus text (every series of it).
fn counter_sum(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
        .sum::<f64>() as u64
}

/// Runs the replay; the summary goes to stdout, progress to stderr.
pub fn run(args: ReplayArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let now_us = when::now_us();
    let from_us = when::parse_time(&args.from, now_us).map_err(|e| anyhow!("--from {e}"))?;
    let to_us = when::parse_time(&args.to, now_us).map_err(|e| anyhow!("--to {e}"))?;
    if to_us < from_us {
        bail!("--to is before --from");
    }
    let formats: Vec<(PathBuf, Format)> =
        args.outs.iter().map(|p| format_of(p).map(|f| (p.clone(), f))).collect::<anyhow::Result<_>>()?;
    if formats.is_empty() && args.out_topic.is_none() {
        bail!("nothing to write: give --out report.html, --out report.json and/or --out-topic NAME");
    }
    let (file, config_hash) = match &args.config {
        Some(path) => {
            let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            (Some(ProcessorFile::load(path)?), hex(&sha2::Sha256::digest(&bytes)))
        }
        None => (None, String::new()),
    };
    let topology = match &file {
        Some(f) => {
            Topology::load(&f.topology).map_err(|e| anyhow!("{e}")).with_context(|| f.topology.display().to_string())?
        }
        None => bmon_processors::registry::builtin_topology().map_err(|e| anyhow!("{e}"))?,
    };
    let mut settings = file.as_ref().map_or_else(|| ClientSettings::plaintext("127.0.0.1:9092"), |f| f.kafka.clone());
    if let Some(b) = &args.brokers {
        settings.brokers = b.clone();
    }
    if let Some(topic) = &args.out_topic
        && topology.topic(topic).is_some()
        && !args.allow_live_topic
    {
        bail!(
            "--out-topic {topic} is a live topic of topology.yaml: pass --allow-live-topic to publish the replay there anyway"
        );
    }
    let replay_id = args.id.clone().unwrap_or_else(|| {
        let stamp = when::format_us(from_us);
        format!("replay-{}", stamp.get(..19).unwrap_or(&stamp).replace([':', '-'], ""))
    });
    if !bmon_processors::loki::config::valid_replay_id(&replay_id) {
        bail!("--id {replay_id:?}: a replay id is 1 to 64 characters (it becomes the Loki label `replay`)");
    }
    let sections = file.as_ref().map(|f| f.sections.clone()).unwrap_or_default();
    let requested: Vec<&str> = if args.processors.is_empty() {
        replay::default_processors(&topology)
    } else {
        args.processors.iter().map(String::as_str).collect()
    };
    let filter = Filter { nodes: args.nodes.clone(), network: args.network.clone() };
    let state =
        tempfile::Builder::new().prefix("bmon-replay-").tempdir().context("creating the replay's state directory")?;
    let spec = ReplaySpec {
        topology: &topology,
        sections: &sections,
        processors: &requested,
        state_dir: state.path(),
        filter: &filter,
        max_rate: args.max_rate,
    };
    let range = Range { from_ms: from_us.div_euclid(1000), to_ms: to_us.div_euclid(1000) };
    let mut replay = Replay::open(&settings, &spec, range, now_us / 1000)?;
    let node_events = topology.topic_of(NodeEvent::FAMILY)?.name.clone();
    let verdicts = topology.topic_of(TxVerdict::FAMILY)?.name.clone();
    replay.tap(&[&node_events, &verdicts]);
    let mut publisher = match &args.out_topic {
        Some(t) => Some(publish::Publisher::open(&settings, &topology, t, &replay_id, args.replication_factor)?),
        None => None,
    };
    let mut totals: BTreeMap<String, u64> = BTreeMap::new();
    for (topic, _, span) in replay.spans() {
        *totals.entry(topic.clone()).or_default() += u64::try_from(span.end - span.start).unwrap_or(0);
    }
    let mut progress = progress::Progress::new(totals);
    let stop = super::ctrl_c_channel()?;
    let mut builder = ReportBuilder::new();
    let mut produced: BTreeMap<String, u64> = BTreeMap::new();
    let mut sampler = alerts::Sampler::for_rules();
    let mut interrupted = false;
    let mut first = true;
    loop {
        match stop.try_recv() {
            Ok(()) | Err(TryRecvError::Disconnected) => {
                interrupted = true;
                break;
            }
            Err(TryRecvError::Empty) => {}
        }
        match replay.step()? {
            Some((topic, _)) => {
                if std::mem::take(&mut first) {
                    tracing::debug!(elapsed_s = started.elapsed().as_secs_f64(), "replay: first record");
                }
                progress.record(topic)
            }
            None => break,
        }
        sampler.observe(replay.now_ms(), || replay.metrics());
        drain(&mut replay, &mut builder, &mut produced, publisher.as_mut(), &node_events, &verdicts)?;
    }
    tracing::debug!(elapsed_s = started.elapsed().as_secs_f64(), "replay: range read");
    let outcome_metrics;
    let outcome = {
        let mut outcome = replay.finish();
        outcome_metrics = std::mem::take(&mut outcome.metrics);
        let outputs = std::mem::take(&mut outcome.outputs);
        let tapped = std::mem::take(&mut outcome.tapped);
        hand_over(outputs, tapped, &mut builder, &mut produced, publisher.as_mut(), &node_events, &verdicts)?;
        outcome
    };
    progress.finish(outcome.complete);
    let published = publisher.map(publish::Publisher::finish).transpose()?;
    let header = Header {
        replay_id: replay_id.clone(),
        from_us,
        to_us,
        end_us: outcome.end_ms.saturating_mul(1000),
        complete: outcome.complete && !interrupted,
        processors: outcome.selection.processors.iter().map(|p| (*p).to_owned()).collect(),
        added: outcome.selection.added.iter().map(|p| (*p).to_owned()).collect(),
        nodes: args.nodes.clone(),
        network: args.network.clone(),
        partitions: outcome
            .spans
            .iter()
            .map(|(topic, partition, s)| PartitionRange {
                topic: topic.clone(),
                partition: *partition,
                start: s.start,
                end: s.end,
            })
            .collect(),
        records_read: outcome.read.clone(),
        records_produced: produced,
        filtered: outcome.filtered,
        lost: outcome.lost,
        rejected: outcome.counts.rejected.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
        duplicates: counter_sum(&outcome_metrics, "bmon_logparse_duplicate_facts_total"),
        late: 0, // from the summaries, by the builder
        late_views: counter_sum(&outcome_metrics, "bmon_mempool_late_views_total"),
        warmup_wanted_from_us: outcome.warmup.wanted_from_ms.saturating_mul(1000),
        warmup_from_us: outcome.warmup.from_ms.saturating_mul(1000),
        warmup_outputs: outcome.warmup_outputs,
        bmon_version: env!("CARGO_PKG_VERSION").to_owned(),
        git_commit: GIT_COMMIT.to_owned(),
        config_hash,
        wall_time_s: started.elapsed().as_secs_f64(),
        generated_at_us: when::now_us(),
    };
    let mut report: Report = builder.finish(header);
    if !formats.is_empty() {
        sampler.finish(outcome.end_ms, &outcome_metrics);
        tracing::debug!(elapsed_s = started.elapsed().as_secs_f64(), "replay: report built");
        report.alerts = alerts::evaluate(&sampler, outcome.warmup.from_ms, from_us / 1000, outcome.end_ms);
        tracing::debug!(elapsed_s = started.elapsed().as_secs_f64(), "replay: alerts evaluated");
    }
    for (path, format) in &formats {
        let text = match format {
            Format::Html => bmon_report::html::render(&report),
            Format::Json => serde_json::to_string_pretty(&report)?,
        };
        write_atomically(path, &text)?;
    }
    tracing::debug!(elapsed_s = started.elapsed().as_secs_f64(), "replay: report written");
    print_summary(&report, &formats, published, &args.out_topic);
    if interrupted {
        bail!("interrupted: what was read so far is written, marked incomplete");
    }
    Ok(())
}

/// Hands the replay's new outputs and tapped records to the report and the publisher.
fn drain(
    replay: &mut Replay,
    builder: &mut ReportBuilder,
    produced: &mut BTreeMap<String, u64>,
    publisher: Option<&mut publish::Publisher>,
    node_events: &str,
    verdicts: &str,
) -> anyhow::Result<()> {
    let (outputs, tapped) = (replay.take_outputs(), replay.take_tapped());
    hand_over(outputs, tapped, builder, produced, publisher, node_events, verdicts)
}

/// Outputs go to the publisher and the report (node events and verdicts, when a chosen
/// processor's outputs leave the pipeline with them, are read as the tapped ones are).
fn hand_over(
    outputs: Vec<Emitted>,
    tapped: Vec<Emitted>,
    builder: &mut ReportBuilder,
    produced: &mut BTreeMap<String, u64>,
    mut publisher: Option<&mut publish::Publisher>,
    node_events: &str,
    verdicts: &str,
) -> anyhow::Result<()> {
    for e in outputs {
        match produced.get_mut(&e.output.topic) {
            Some(n) => *n += 1,
            None => {
                produced.insert(e.output.topic.clone(), 1);
            }
        }
        if e.output.topic == node_events {
            builder.node_event(&e.output.payload);
        } else if e.output.topic == verdicts {
            builder.verdict(&e.output.payload);
        } else {
            builder.event(&e.output.payload);
        }
        if let Some(p) = publisher.as_deref_mut() {
            p.send(&e.output)?;
        }
    }
    for t in tapped {
        if t.output.topic == node_events {
            builder.node_event(&t.output.payload);
        } else if t.output.topic == verdicts {
            builder.verdict(&t.output.payload);
        }
    }
    Ok(())
}

fn print_summary(report: &Report, formats: &[(PathBuf, Format)], published: Option<u64>, topic: &Option<String>) {
    let h = &report.header;
    let read: u64 = h.records_read.values().sum();
    let produced: u64 = h.records_produced.values().sum();
    println!(
        "replay {}: {} → {}{}",
        h.replay_id,
        when::format_us(h.from_us),
        when::format_us(h.to_us),
        if h.complete { "" } else { " (INCOMPLETE)" }
    );
    println!(
        "  processors {}; {read} records read, {produced} produced, {} filtered out, in {:.2} s",
        h.processors.join(", "),
        h.filtered,
        h.wall_time_s
    );
    println!(
        "  {} summaries, {} reorgs, {} anomalies, {} policy divergences",
        report.propagation.summaries,
        report.chain.reorgs.len(),
        report.propagation.anomalies.len(),
        report.mempool.policy.len()
    );
    for (path, _) in formats {
        println!("  wrote {}", path.display());
    }
    if let (Some(n), Some(t)) = (published, topic) {
        println!("  published {n} records to {t} (header bmon-replay-id: {})", h.replay_id);
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
