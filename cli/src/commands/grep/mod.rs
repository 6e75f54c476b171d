//! `bmon grep PATTERN`: search every node's debug.log lines straight from the log-line topic,
//! no Loki needed (the seed's `bmon-infra rg` over ssh, replaced).
//!
//! The time range is resolved per partition with `offsets_for_times`, partitions are read in
//! parallel, and the pattern is a regex as ripgrep reads it. A record's bytes are checked for
//! the pattern before it is decoded, so most records are passed over cheaply. Hits print as
//! `node  timestamp  line`, in node-time order; `--json` prints one object per hit, and
//! `--events` adds the derived events of the same range.
//!
//! - [`matcher`]: pure: filters, time forms, output;
//! - [`super::scan`]: the partition reader (shared with `bmon lookup`).

pub mod matcher;

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use bmon_schemas::{Codec, LogLineFact, Record};
use bmon_topology::Topology;
use clap::Args;
use regex::bytes::Regex;

use super::{scan, when};
use matcher::{Filter, Hit};

/// Arguments of `bmon grep`.
#[derive(Debug, Args)]
pub struct GrepArgs {
    /// A regex (ripgrep's syntax), matched against each line.
    pattern: String,
    /// Only this node's lines (repeat for several).
    #[arg(long = "node")]
    nodes: Vec<String>,
    /// Only this network's lines (main, test, signet, regtest).
    #[arg(long)]
    network: Option<String>,
    /// From this node time: 2026-12-02T01:00:00Z, @SECONDS or a span ago (15m, 2h). Default: 1h.
    #[arg(long, default_value = "1h")]
    since: String,
    /// Until this node time (inclusive), in the same forms. Default: now.
    #[arg(long)]
    until: Option<String>,
    /// Lines of this log category only (validation, net, mempool, …); with --events, events of
    /// this kind only (chain_reorg, stale_tip, …).
    #[arg(long)]
    kind: Option<String>,
    /// Also show the derived events of the range (from the events topic), after the lines.
    #[arg(long)]
    events: bool,
    /// One JSON object per hit.
    #[arg(long)]
    json: bool,
    /// How long after a line's node time bmon may have received it: records stamped up to this
    /// long after --until are read too. Default 60 s.
    #[arg(long, default_value_t = 60)]
    lag_s: u64,
    /// Brokers.
    #[arg(long, env = "BMON_BROKERS", default_value = "127.0.0.1:9092")]
    brokers: String,
    /// topology.yaml (its log-line and events topics). Default: the one bmon was built with.
    #[arg(long)]
    topology: Option<std::path::PathBuf>,
}

/// Runs the search, printing hits to stdout and a summary to stderr.
pub fn run(args: GrepArgs) -> anyhow::Result<()> {
    let topology = match &args.topology {
        Some(path) => Topology::load(path).map_err(|e| anyhow!("{e}")).with_context(|| path.display().to_string())?,
        None => bmon_processors::registry::builtin_topology().map_err(|e| anyhow!("{e}"))?,
    };
    let lines_topic = topology.topic_of(LogLineFact::FAMILY)?.name.clone();
    let now = when::now_us();
    let since_us = when::parse_time(&args.since, now).map_err(|e| anyhow!("--since {e}"))?;
    let until_us = match &args.until {
        Some(u) => when::parse_time(u, now).map_err(|e| anyhow!("--until {e}"))?,
        None => now,
    };
    if until_us < since_us {
        return Err(anyhow!("--until is before --since"));
    }
    let pattern = Regex::new(&args.pattern).with_context(|| format!("pattern {:?}", args.pattern))?;
    let filter = Arc::new(Filter {
        prefilter: matcher::prefilter_safe(&args.pattern),
        pattern,
        nodes: args.nodes.clone(),
        network: args.network.clone(),
        category: if args.events { None } else { args.kind.clone() },
        since_us,
        until_us,
    });
    let started = Instant::now();
    let lag_ms = (args.lag_s * 1000) as i64;
    let spans = scan::spans(&args.brokers, &lines_topic, since_us / 1000, until_us / 1000 + lag_ms)?;
    let total: i64 = spans.iter().map(|s| s.to - s.from).sum();
    let read = Arc::new(AtomicU64::new(0));
    let progress = progress(&read, total as u64);
    let codec = Arc::new(Codec::default());
    let undecodable = Arc::new(AtomicU64::new(0));
    let (f, c, bad) = (Arc::clone(&filter), Arc::clone(&codec), Arc::clone(&undecodable));
    let mut hits: Vec<Hit> = scan::read(&args.brokers, &lines_topic, &spans, &read, move |p, o, key, payload, out| {
        if !f.wants_key(key) || !f.may_match(payload) {
            return;
        }
        match c.decode::<LogLineFact>(payload) {
            Ok(fact) => out.extend(f.hit(&fact, p, o)),
            Err(_) => {
                bad.fetch_add(1, Ordering::Relaxed);
            }
        }
    })?;
    matcher::sort(&mut hits);
    if let Some(stop) = progress {
        stop();
    }
    let mut stdout = std::io::stdout().lock();
    for hit in &hits {
        let line = if args.json { matcher::json(hit) } else { matcher::text(hit) };
        writeln!(stdout, "{line}")?;
    }
    let records = read.load(Ordering::Relaxed);
    let secs = started.elapsed().as_secs_f64();
    let mut events = 0;
    if args.events {
        events = print_events(&args, &topology, since_us, until_us, &mut stdout)?;
    }
    stdout.flush()?;
    eprintln!(
        "bmon grep: {} matches; {records} records read from {} partitions of {lines_topic} in {secs:.2} s ({:.0} records/s){}{}",
        hits.len(),
        spans.len(),
        records as f64 / secs.max(1e-9),
        if args.events { format!("; {events} events") } else { String::new() },
        match undecodable.load(Ordering::Relaxed) {
            0 => String::new(),
            n => format!("; {n} undecodable records skipped"),
        }
    );
    Ok(())
}

/// A progress line on stderr while a terminal watches; returns what ends it.
fn progress(read: &Arc<AtomicU64>, total: u64) -> Option<impl FnOnce()> {
    if !std::io::stderr().is_terminal() || total == 0 {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} records, {per_sec}, eta {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let (bar2, read2) = (bar.clone(), Arc::clone(read));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let done2 = Arc::clone(&done);
    let ticker = std::thread::spawn(move || {
        while !done2.load(Ordering::Relaxed) {
            bar2.set_position(read2.load(Ordering::Relaxed));
            std::thread::sleep(Duration::from_millis(100)); // refresh rate of a display
        }
    });
    Some(move || {
        done.store(true, Ordering::Relaxed);
        let _ = ticker.join();
        bar.finish_and_clear();
    })
}

/// Prints the derived events stamped in the range (events are stamped when they were
/// published, a little after the lines that caused them; the lag applies), filtered by
/// `--kind`, `--node` and `--network`. Returns how many.
fn print_events(
    args: &GrepArgs,
    topology: &Topology,
    since_us: i64,
    until_us: i64,
    out: &mut impl Write,
) -> anyhow::Result<usize> {
    let topic = topology.topic_of(bmon_schemas::ChainReorg::FAMILY)?.name.clone();
    let lag_ms = (args.lag_s * 1000) as i64;
    let spans = scan::spans(&args.brokers, &topic, since_us / 1000, until_us / 1000 + lag_ms)?;
    let read = Arc::new(AtomicU64::new(0));
    let codec = Arc::new(Codec::default());
    let c = Arc::clone(&codec);
    let mut events: Vec<(i64, String, serde_json::Value)> =
        scan::read(&args.brokers, &topic, &spans, &read, move |_, _, _, payload, out| {
            if let Ok((family, value)) = c.decode_json(payload) {
                out.push((0, family, value));
            }
        })?;
    let str_of = |v: &serde_json::Value, k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_owned);
    events.retain(|(_, family, v)| {
        args.kind.as_ref().is_none_or(|k| k == family)
            && args.network.as_ref().is_none_or(|n| str_of(v, "network").as_ref() == Some(n))
            && (args.nodes.is_empty() || str_of(v, "node_id").is_some_and(|n| args.nodes.contains(&n)))
    });
    for e in &mut events {
        let entry = bmon_processors::loki::entry::event_entry(&e.1, &e.2, None, None);
        e.0 = entry.ts_ns / 1000;
    }
    events.retain(|(ts, _, _)| *ts == 0 || (*ts >= since_us && *ts <= until_us));
    events.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    for (ts, family, value) in &events {
        if args.json {
            writeln!(out, "{}", serde_json::json!({ "event": family, "ts": matcher::format_us(*ts), "body": value }))?;
        } else {
            writeln!(out, "event\t{}\t{family}\t{value}", matcher::format_us(*ts))?;
        }
    }
    Ok(events.len())
}
