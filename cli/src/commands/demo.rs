//! `bmon demo`: the whole pipeline on the local test bed, with a live table of block lags.
//!
//! It starts a broker, three Core nodes (the third behind a 300 ms delay proxy) and two BSV nodes,
//! a producer per node, logparse, propagation and Prometheus; then mines a block and sends a
//! transaction on each network every few seconds and prints each block's tip-stage summary: every
//! node's lag behind the first node to see it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};
use bmon_schemas::{Codec, PropagationSummary, Record, Stage};
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

fn producer_config(
    id: &str,
    implementation: &str,
    log: &Path,
    zmq: Option<String>,
    brokers: &str,
    state: &Path,
) -> String {
    let zmq = zmq
        .map(|z| format!("[zmq]\nendpoints = [\"{z}\"]\ntopics = [\"hashblock\", \"hashtx\"]\n"))
        .unwrap_or_default();
    format!(
        "[node]\nid = \"{id}\"\nnetwork = \"regtest-{implementation}\"\nimplementation = \"{implementation}\"\n\
         [log]\npath = \"{}\"\n\
         poll_ms = 20\n{zmq}[kafka]\nbrokers = \"{brokers}\"\n[state]\ndir = \"{}\"\n[service]\nlisten = \"127.0.0.1:0\"\n",
        log.display(),
        state.display()
    )
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
            let cfg =
                producer_config(node.name(), implementation, &node.log_path(), node.zmq_endpoint(), &brokers, &state);
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
    let rules = PathBuf::from("prometheus/rules/propagation.rules.yml").canonicalize().ok();
    let prom_url =
        bed.prometheus(&[("propagation".into(), format!("127.0.0.1:{metrics_port}"))], rules.as_slice())?.url();
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
        for net in [core, bsv] {
            let n = bed.network(net);
            let i = (round as usize) % n.nodes().len();
            if let Err(e) = n.send_tx(0) {
                eprintln!("tx on {} failed: {e}", n.node(0).name());
            }
            if let Err(e) = n.mine(i, 1) {
                eprintln!("mining on {} failed: {e}", n.node(i).name());
            }
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
