//! `bmon demo`: the whole pipeline on the local test bed, with a live table of block lags.
//!
//! It starts a broker, three Core nodes (the third behind a 300 ms delay proxy) and two BSV nodes,
//! a producer per node (log, ZMQ and RPC), logparse, propagation, netviews, chain and Prometheus;
//! then mines a block and sends a transaction on each network every few seconds and prints each
//! block's tip-stage summary (every node's lag behind the first node to see it) and chain events
//! as they come. Every tenth round it makes a reorg on Core: core-2, cut off, mines two blocks
//! while core-0 mines one, then reconnects. A round never waits for the network: the table goes on.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};
use bmon_schemas::{
    ChainInvalidBlock, ChainReorg, Codec, Inflation, NodeLagging, PropagationSummary, Record, SelfishMiningSuspect,
    Stage, StaleTip,
};
use bmon_testbed::{DelayProxy, Implementation, Managed, TestBed};
use clap::Args;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};

/// Arguments of `demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Seconds between rounds (a block and a transaction per network).
    #[arg(long, default_value_t = 5)]
    every: u64,
    /// Delay injected between core-2 and core-0, ms.
    #[arg(long, default_value_t = 300)]
    delay_ms: u64,
    /// Stop after this many rounds (0: until Ctrl-C).
    #[arg(long, default_value_t = 0)]
    rounds: u64,
}

fn spawn(bed: &TestBed, name: &str, args: &[&str], config: &str) -> anyhow::Result<Managed> {
    Ok(bed.spawn_with_config(name, &std::env::current_exe()?, args, config)?)
}

fn producer_config(node: &bmon_testbed::Node, implementation: &str, brokers: &str, state: &Path) -> String {
    let zmq = node
        .zmq_endpoint()
        .map(|z| format!("[zmq]\nendpoints = [\"{z}\"]\ntopics = [\"hashblock\", \"hashtx\"]\n"))
        .unwrap_or_default();
    format!(
        "[node]\nid = \"{}\"\nnetwork = \"regtest-{implementation}\"\nimplementation = \"{implementation}\"\n\
         [log]\npath = \"{}\"\npoll_ms = 20\n{zmq}\
         [rpc]\nurl = \"{}\"\ncookie_file = \"{}\"\ninterval_s = 2\ntxoutset_interval_s = 30\n\
         [kafka]\nbrokers = \"{brokers}\"\n[state]\ndir = \"{}\"\n[service]\nlisten = \"127.0.0.1:0\"\n",
        node.name(),
        node.log_path().display(),
        node.rpc_url(),
        node.cookie_path().display(),
        state.display()
    )
}

/// One line for a chain event on bmon.events, if the record is one.
fn chain_line(codec: &Codec, payload: &[u8]) -> Option<String> {
    let family = codec.writer_version(payload).ok()?.family.clone();
    let short = |h: &str| h.get(..12).unwrap_or(h).to_owned();
    Some(match family.as_str() {
        f if f == ChainReorg::FAMILY => {
            let r: ChainReorg = codec.decode(payload).ok()?;
            format!("reorg     {} depth {} {} -> {}", r.node_id, r.depth, short(&r.old_tip), short(&r.new_tip))
        }
        f if f == SelfishMiningSuspect::FAMILY => {
            let s: SelfishMiningSuspect = codec.decode(payload).ok()?;
            format!("selfish?  {} won by {} blocks, gaps {:?} µs", s.node_id, s.branch_length, s.arrival_gaps_us)
        }
        f if f == StaleTip::FAMILY => {
            let s: StaleTip = codec.decode(payload).ok()?;
            format!("stale     {} tip {} is {} s old", s.node_id, s.height, s.age_us / 1_000_000)
        }
        f if f == ChainInvalidBlock::FAMILY => {
            let i: ChainInvalidBlock = codec.decode(payload).ok()?;
            format!("invalid   {} {} ({})", i.node_id, short(i.hash.as_deref().unwrap_or("?")), i.reason)
        }
        f if f == NodeLagging::FAMILY => {
            let l: NodeLagging = codec.decode(payload).ok()?;
            let what = if l.lagging { "lagging" } else { "caught up" };
            format!("{what:<9} {} {} blocks behind {}", l.node_id, l.blocks_behind, l.best_node)
        }
        f if f == Inflation::FAMILY => {
            let i: Inflation = codec.decode(payload).ok()?;
            format!("INFLATION {} {} sat over the schedule at {}", i.node_id, i.excess_sat, i.to_height)
        }
        _ => return None,
    })
}

/// Core's reorg for the demo: core-2, cut off, mines two blocks while core-0 mines one, then
/// reconnects through its proxy (`via`) at once; the others reorg onto core-2's branch. Waits
/// only for core-2 to drop its peers.
fn make_reorg(bed: &TestBed, core: usize, via: &str) -> anyhow::Result<()> {
    let n = bed.network(core);
    n.node(2).set_network_active(false)?;
    bmon_testbed::poll_until("core-2 to drop its peers", Duration::from_secs(5), Duration::from_millis(50), || {
        (n.node(2).peer_count().ok()? == 0).then_some(())
    })?;
    n.node(0).mine(1)?;
    n.node(2).mine(2)?;
    n.node(2).set_network_active(true)?;
    n.node(2).connect_now(via)?;
    Ok(())
}

/// Stops in order: producers and processors together (they store what was acknowledged and
/// exit within seconds of SIGTERM), then every node at once, then the broker.
fn stop(mut running: Vec<Managed>, bed: &mut TestBed) {
    bmon_testbed::stop_all(running.iter_mut(), Duration::from_secs(10));
    bed.shutdown();
}

/// Runs the demo until Ctrl-C (or `--rounds`).
pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    let topology = PathBuf::from("topology.yaml");
    if !topology.exists() {
        bail!("run the demo from the repository root (topology.yaml not found)");
    }
    let mut bed = TestBed::new().context("claim a port block")?;
    let brokers = bed.broker().context("start tansu")?.bootstrap();
    let ok = Command::new(std::env::current_exe()?)
        .args(["topology", "apply", "--brokers", &brokers, "--replication-factor", "1"])
        .status()?;
    if !ok.success() {
        bail!("topology apply failed");
    }
    let core = bed.start_nodes(Implementation::Core, 3).context("start Core nodes")?;
    let proxy = DelayProxy::start(
        bed.service_port(1),
        bed.network(core).node(0).p2p_addr().parse()?,
        Duration::from_millis(args.delay_ms),
    )?;
    bed.network(core).link(1, &bed.network(core).node(0).p2p_addr(), 1)?;
    bed.network(core).link(2, &proxy.addr().to_string(), 1)?;
    bed.network(core).mine_initial()?;
    let bsv = bed.start_network(Implementation::Bsv, 2).context("start BSV nodes")?;
    // Transactions are sent from node 0 of each network: 20 more blocks give it 21 mature coinbases.
    for net in [core, bsv] {
        bed.network(net).mine(0, 20)?;
    }

    let mut running = Vec::new();
    let mut names = Vec::new();
    let mut fleet = String::new();
    for (net, implementation) in [(core, "core"), (bsv, "bsv")] {
        let ids: Vec<String> = bed.network(net).nodes().iter().map(|n| format!("\"{}\"", n.name())).collect();
        fleet.push_str(&format!("regtest-{implementation} = [{}]\n", ids.join(", ")));
        for node in bed.network(net).nodes() {
            let state = bed.dir().join(format!("state-{}", node.name()));
            let cfg = producer_config(node, implementation, &brokers, &state);
            running.push(spawn(&bed, &format!("producer-{}", node.name()), &["produce"], &cfg)?);
            names.push(node.name().to_owned());
        }
    }
    let metrics_port = bed.service_port(2);
    // tansu answers every fetch only when fetch.wait.max.ms has run out; keep it short here.
    let common = format!("[kafka]\nbrokers = \"{brokers}\"\nconsumer = {{ \"fetch.wait.max.ms\" = \"10\" }}\n");
    running.push(spawn(
        &bed,
        "logparse",
        &["process", "logparse"],
        &format!("{common}[service]\nlisten = \"127.0.0.1:0\"\n"),
    )?);
    let prop = format!(
        "{common}[service]\nlisten = \"127.0.0.1:{metrics_port}\"\n[propagation]\nstate_dir = \"{}\"\n\
         [propagation.fleet]\n{fleet}",
        bed.dir().join("propagation-state").display()
    );
    running.push(spawn(&bed, "propagation", &["process", "propagation"], &prop)?);
    running.push(spawn(
        &bed,
        "netviews",
        &["process", "netviews"],
        &format!("{common}[service]\nlisten = \"127.0.0.1:0\"\n"),
    )?);
    let chain_port = bed.service_port(4);
    let chain = format!(
        "{common}[service]\nlisten = \"127.0.0.1:{chain_port}\"\n[chain]\nstate_dir = \"{}\"\n",
        bed.dir().join("chain-state").display()
    );
    running.push(spawn(&bed, "chain", &["process", "chain"], &chain)?);
    let rules: Vec<PathBuf> = ["propagation", "chain"]
        .iter()
        .filter_map(|r| PathBuf::from(format!("prometheus/rules/{r}.rules.yml")).canonicalize().ok())
        .collect();
    let targets = [
        ("propagation".to_owned(), format!("127.0.0.1:{metrics_port}")),
        ("chain".to_owned(), format!("127.0.0.1:{chain_port}")),
    ];
    let prom_url = bed.prometheus(&targets, &rules)?.url();
    println!("broker      {brokers}");
    println!("metrics     http://127.0.0.1:{metrics_port}/metrics");
    println!("prometheus  {prom_url}");
    println!(
        "PromQL      histogram_quantile(0.9, sum by (le, node) (rate(bmon_propagation_node_lag_seconds_bucket{{stage=\"tip\"}}[5m])))"
    );
    println!("dir         {}", bed.dir().display());
    println!("core-2 reaches core-0 through a {} ms delay proxy; Ctrl-C stops everything\n", args.delay_ms);

    let consumer: BaseConsumer =
        rdkafka::ClientConfig::new().set("bootstrap.servers", &brokers).set("group.id", "bmon-demo").create()?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..3 {
        tpl.add_partition_offset("bmon.events", p, Offset::End)?;
    }
    consumer.assign(&tpl)?;
    let codec = Codec::default();
    let header = names.iter().map(|n| format!("{n:>9}")).collect::<Vec<_>>().join(" ");
    println!("{:<14} {:<8} {header} {:>9}", "block", "stage", "spread");

    let rx = super::ctrl_c_channel()?;
    let mut round = 0u64;
    loop {
        // Nothing here waits for the network (a transaction in every mempool, a block on every
        // node): the table must go on whatever the nodes do.
        for net in [core, bsv] {
            let n = bed.network(net);
            let i = (round as usize) % n.nodes().len();
            if let Err(e) = n.node(0).send_tx() {
                eprintln!("tx on {} failed: {e}", n.node(0).name());
            }
            if let Err(e) = n.node(i).mine(1) {
                eprintln!("mining on {} failed: {e}", n.node(i).name());
            }
        }
        if round % 10 == 9
            && let Err(e) = make_reorg(&bed, core, &proxy.addr().to_string())
        {
            eprintln!("the demo's reorg failed: {e}");
        }
        round += 1;
        let until = std::time::Instant::now() + Duration::from_secs(args.every);
        while std::time::Instant::now() < until {
            if rx.try_recv().is_ok() {
                println!("stopping");
                // First the demo's own consumer: closed after the broker, it would wait for it.
                drop(consumer);
                stop(running, &mut bed);
                return Ok(());
            }
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
                // bmon.events carries several kinds: the schema says which (keys are network/hash).
                let payload = m.payload().unwrap_or_default();
                if let Some(line) = chain_line(&codec, payload) {
                    println!("  {line}");
                    continue;
                }
                if !codec.writer_version(payload).is_ok_and(|v| v.family == PropagationSummary::FAMILY) {
                    continue;
                }
                let Ok(s) = codec.decode::<PropagationSummary>(payload) else { continue };
                if s.stage != Stage::Tip || s.revision != 0 {
                    continue;
                }
                let cells: Vec<String> = names
                    .iter()
                    .map(|n| match s.lags.iter().find(|l| &l.node_id == n) {
                        Some(l) => format!("{:>7.1}ms", l.lag_us as f64 / 1000.0),
                        None => format!("{:>9}", "-"),
                    })
                    .collect();
                println!(
                    "{:<14} {:<8} {} {:>7.1}ms",
                    &s.hash[..12],
                    "tip",
                    cells.join(" "),
                    s.spread_us as f64 / 1000.0
                );
            }
        }
        if args.rounds > 0 && round >= args.rounds {
            drop(consumer);
            stop(running, &mut bed);
            return Ok(());
        }
    }
}
