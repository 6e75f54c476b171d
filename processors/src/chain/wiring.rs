//! Connects the pure chain logic to the runtime: decoding node events and network views,
//! per-partition state checkpointed to RocksDB, metrics and events.

use std::collections::BTreeMap;
use std::time::Duration;

use bmon_schemas::{
    BlockConnect, BlockConnectComparison, ChainInvalidBlock, ChainReorg, ChainSplit, Codec, Inflation, NodeEvent,
    NodeLagging, NodeView, Record, SelfishMiningSuspect, StaleTip,
};
use bmon_topology::{BindError, Topology};
use serde::{Deserialize, Serialize};

use super::config::ChainConfig;
use super::connects::Connects;
use super::network::{Network, NetworkConfig, SupplyCheck};
use super::node::{Findings, NodeChain, NodeConfig};
use super::telemetry::{self as t, label};
use crate::runtime::{
    Input, KeyFields, KeyKind, Output, OutputTopic, PartitionStates, Processor, RecordError, Rows, SnapshotError,
};
use crate::views::{BlockchainInfo, TxOutSetInfo};

/// chain's topics, from topology.yaml: node events and network views in, one output topic per
/// event kind (all of them `bmon.events` today), keyed by network and hash; and block connect
/// times out and back in, keyed by network and hash, to compare one block's across nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainTopics {
    /// The node-event input.
    pub events_in: String,
    /// The network-view input.
    pub views_in: String,
    /// The block-connect-time input (chain's own output, re-keyed by block).
    pub connects_in: String,
    connects: OutputTopic,
    comparison: OutputTopic,
    reorg: OutputTopic,
    selfish: OutputTopic,
    stale: OutputTopic,
    invalid: OutputTopic,
    lagging: OutputTopic,
    inflation: OutputTopic,
    split: OutputTopic,
}

impl ChainTopics {
    /// Binds the topics of topology processor `name`.
    pub fn bind(t: &Topology, name: &str) -> Result<ChainTopics, BindError> {
        let p = t.processor_named(name)?;
        let keys = [KeyKind::NetworkObject, KeyKind::Network, KeyKind::NodeId];
        let out = |family: &str| OutputTopic::bind(t, p, family, &keys);
        Ok(ChainTopics {
            events_in: t.input_of(p, NodeEvent::FAMILY)?.name.clone(),
            views_in: t.input_of(p, NodeView::FAMILY)?.name.clone(),
            connects_in: t.input_of(p, BlockConnect::FAMILY)?.name.clone(),
            connects: out(BlockConnect::FAMILY)?,
            comparison: out(BlockConnectComparison::FAMILY)?,
            reorg: out(ChainReorg::FAMILY)?,
            selfish: out(SelfishMiningSuspect::FAMILY)?,
            stale: out(StaleTip::FAMILY)?,
            invalid: out(ChainInvalidBlock::FAMILY)?,
            lagging: out(NodeLagging::FAMILY)?,
            inflation: out(Inflation::FAMILY)?,
            split: out(ChainSplit::FAMILY)?,
        })
    }
}

/// One input partition's state: the nodes of a node-event partition, the networks of a view
/// partition, or the open block comparisons of a connect-time partition.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct PartitionState {
    nodes: BTreeMap<String, NodeChain>,
    networks: BTreeMap<String, Network>,
    #[serde(default)]
    connects: Connects,
}

/// All of it is in the value.
impl Rows for PartitionState {}

/// The chain operator as the runtime runs it.
pub struct ChainProcessor {
    node_config: NodeConfig,
    connect_window_us: i64,
    network_config: NetworkConfig,
    topics: ChainTopics,
    replay: Duration,
    states: PartitionStates<PartitionState>,
    codec: Codec,
}

impl ChainProcessor {
    /// Opens the state store under `config.state_dir`; publishes to `topics`; a partition new to
    /// this instance is rebuilt from `replay` of its input (topology.yaml's store window).
    pub fn open(config: &ChainConfig, topics: ChainTopics, replay: Duration) -> Result<ChainProcessor, SnapshotError> {
        Ok(ChainProcessor {
            node_config: config.node(),
            connect_window_us: config.connect_window_us(),
            network_config: config.network(),
            topics,
            replay,
            states: PartitionStates::open(&config.state_dir)?,
            codec: Codec::default(),
        })
    }

    fn event(&mut self, input: &Input<'_>, out: &mut Vec<Output>) -> Result<(), RecordError> {
        let e: NodeEvent = self.codec.decode(input.payload).map_err(|e| RecordError::Undecodable(e.to_string()))?;
        let env = &e.envelope;
        let state = self.states.get_mut(input.topic, input.partition);
        let chain = state.nodes.entry(env.node_id.clone()).or_insert_with(|| NodeChain::new(&env.network));
        chain.network.clone_from(&env.network);
        let f = chain.apply(&self.node_config, &e);
        if input.replay {
            return Ok(());
        }
        let (net, node) = (env.network.clone(), env.node_id.clone());
        let labels = || [label("network", net.clone()), label("node", node.clone())];
        if f.tip_changed
            && let Some(tip) = chain.tip()
        {
            t::TIP_HEIGHT.with_gauge(labels()).set(tip.height as f64);
            t::TIP_CHANGED.with_gauge(labels()).set(tip.changed_at_us as f64 / 1e6);
            if let Some(bt) = tip.block_time_us {
                t::TIP_BLOCK_TIME.with_gauge(labels()).set(bt as f64 / 1e6);
            }
        }
        if let Some(us) = f.header_to_tip_us {
            t::HEADER_TO_TIP.with_histogram(labels()).record(us as f64 / 1e6);
        }
        if let Some(us) = f.connect_us {
            t::CONNECT.with_histogram(labels()).record(us as f64 / 1e6);
        }
        // Not while catching up: a node in initial block download times every block it fetches.
        if let (Some(connect_us), Some((hash, height)), false) =
            (f.connect_us, f.connect_block.clone(), chain.catching_up())
        {
            let at_us = e.logged_at_us.unwrap_or(env.received_at_us);
            let c = BlockConnect { node_id: node.clone(), network: net.clone(), hash, height, connect_us, at_us };
            self.emit(&self.topics.connects, &node, &net, &c.hash, &c, out)?;
        }
        if f.started {
            t::STARTS.with_counter(labels()).increment(1);
            let at = e.logged_at_us.unwrap_or(env.received_at_us);
            t::STARTED.with_gauge(labels()).set(at as f64 / 1e6);
            tracing::info!(node = %node, "node started");
        }
        self.publish_findings(f, out)
    }

    fn publish_findings(&self, f: Findings, out: &mut Vec<Output>) -> Result<(), RecordError> {
        for r in f.reorgs {
            let labels = [label("network", r.network.clone()), label("node", r.node_id.clone())];
            t::REORGS.with_counter(labels.clone()).increment(1);
            t::REORG_DEPTH.with_histogram(labels).record(r.depth as f64);
            tracing::info!(node = %r.node_id, depth = r.depth, old = %r.old_tip, new = %r.new_tip, source = %r.source, "reorg");
            self.emit(&self.topics.reorg, &r.node_id, &r.network, &r.new_tip, &r, out)?;
        }
        if let Some(s) = f.selfish {
            t::SELFISH
                .with_counter([label("network", s.network.clone()), label("node", s.node_id.clone())])
                .increment(1);
            self.emit(&self.topics.selfish, &s.node_id, &s.network, &s.new_tip, &s, out)?;
        }
        if let Some(s) = f.stale {
            t::STALE.with_counter([label("network", s.network.clone()), label("node", s.node_id.clone())]).increment(1);
            self.emit(&self.topics.stale, &s.node_id, &s.network, &s.hash, &s, out)?;
        }
        if let Some(i) = f.invalid {
            t::INVALID
                .with_counter([
                    label("network", i.network.clone()),
                    label("node", i.node_id.clone()),
                    label("reason", t::reason_label(&i.reason)),
                ])
                .increment(1);
            let hash = i.hash.clone().unwrap_or_default();
            self.emit(&self.topics.invalid, &i.node_id, &i.network, &hash, &i, out)?;
        }
        Ok(())
    }

    fn connect(&mut self, input: &Input<'_>, out: &mut Vec<Output>) -> Result<(), RecordError> {
        let c: BlockConnect = self.codec.decode(input.payload).map_err(|e| RecordError::Undecodable(e.to_string()))?;
        let state = self.states.get_mut(input.topic, input.partition);
        let added = super::connects::add(&mut state.connects, &c, self.connect_window_us);
        if input.replay {
            return Ok(());
        }
        if added.late {
            t::CONNECTS_LATE.with_counter([label("network", c.network.clone())]).increment(1);
        }
        self.publish_comparisons(added.closed, out)
    }

    fn publish_comparisons(
        &self,
        closed: Vec<BlockConnectComparison>,
        out: &mut Vec<Output>,
    ) -> Result<(), RecordError> {
        for cmp in closed {
            for n in &cmp.nodes {
                t::CONNECT_RATIO
                    .with_gauge([label("network", cmp.network.clone()), label("node", n.node_id.clone())])
                    .set(n.ratio);
            }
            t::SLOWEST
                .with_counter([label("network", cmp.network.clone()), label("node", cmp.slowest_node.clone())])
                .increment(1);
            self.emit(&self.topics.comparison, &cmp.slowest_node, &cmp.network, &cmp.hash, &cmp, out)?;
        }
        Ok(())
    }

    fn view(&mut self, input: &Input<'_>, out: &mut Vec<Output>) -> Result<(), RecordError> {
        // The views topic also carries mempool's conflict markers: not chain's.
        let writer = self.codec.writer_version(input.payload).map_err(|e| RecordError::Undecodable(e.to_string()))?;
        if writer.family != NodeView::FAMILY {
            return Ok(());
        }
        let v: NodeView = self.codec.decode(input.payload).map_err(|e| RecordError::Undecodable(e.to_string()))?;
        let env = &v.envelope;
        let (net, node) = (env.network.as_str(), env.node_id.as_str());
        let state = self.states.get_mut(input.topic, input.partition);
        let network = state.networks.entry(net.to_owned()).or_default();
        let invalid = |e: crate::views::ViewError| RecordError::Invalid(e.to_string());
        let labels = || [label("network", net.to_owned()), label("node", node.to_owned())];
        match v.method.as_str() {
            "getblockchaininfo" => {
                let info = BlockchainInfo::parse(&v.view_json).map_err(invalid)?;
                let lagging = network.blockchain_info(&self.network_config, net, node, &info, env.received_at_us);
                let split = network.split_check(&self.network_config, net, env.received_at_us);
                if input.replay {
                    return Ok(());
                }
                if let Some(n) = network.nodes.get(node) {
                    t::IBD.with_gauge(labels()).set(if n.ibd { 1.0 } else { 0.0 });
                    t::LAGGING.with_gauge(labels()).set(if n.lagging { 1.0 } else { 0.0 });
                }
                if let Some((best, _)) = network.best(&self.network_config, env.received_at_us) {
                    t::BEST_HEIGHT.with_gauge([label("network", net.to_owned())]).set(best as f64);
                    if let Some(n) = network.nodes.get(node) {
                        t::BEHIND.with_gauge(labels()).set((best - n.height) as f64);
                    }
                }
                if let Some(l) = lagging {
                    tracing::info!(node, lagging = l.lagging, behind = l.blocks_behind, "lagging state changed");
                    self.emit(&self.topics.lagging, node, net, "", &l, out)?;
                }
                if let Some(s) = split {
                    t::SPLIT.with_gauge([label("network", net.to_owned())]).set(if s.split { 1.0 } else { 0.0 });
                    tracing::warn!(network = net, split = s.split, height = s.height, "chain split state changed");
                    self.emit(&self.topics.split, node, net, "", &s, out)?;
                }
            }
            "getchaintips" => {
                let tips = crate::views::chain_tips(&v.view_json).map_err(invalid)?;
                network.chain_tips(&self.network_config, node, &tips, env.received_at_us);
                if input.replay {
                    return Ok(());
                }
                if let Some((best, _)) = network.best(&self.network_config, env.received_at_us) {
                    for window in [1008, super::network::STALE_WINDOW_MAX] {
                        let stale = network.stale_blocks(best, window);
                        let labels = [label("network", net.to_owned()), label("window", window.to_string())];
                        t::STALE_BLOCKS.with_gauge(labels.clone()).set(stale as f64);
                        t::STALE_RATE.with_gauge(labels).set(stale as f64 / window as f64);
                    }
                }
            }
            "gettxoutsetinfo" => {
                let info = TxOutSetInfo::parse(&v.view_json).map_err(invalid)?;
                let check = network.txoutset(env.implementation, net, node, &info, env.received_at_us);
                if input.replay {
                    return Ok(());
                }
                let result = match &check {
                    SupplyCheck::Ok { .. } => "ok",
                    SupplyCheck::Inflated(_) => "inflated",
                    SupplyCheck::Skipped => "skipped",
                };
                t::SUPPLY_CHECKS.with_counter([label("network", net.to_owned()), label("result", result)]).increment(1);
                match check {
                    SupplyCheck::Inflated(found) => {
                        let excess = found.iter().map(|i| i.excess_sat).max().unwrap_or(0);
                        t::INFLATION_EXCESS.with_gauge(labels()).set(excess as f64);
                        for i in found {
                            t::INFLATION
                                .with_counter([
                                    label("network", net.to_owned()),
                                    label("node", node.to_owned()),
                                    label("check", i.check.clone()),
                                ])
                                .increment(1);
                            tracing::warn!(node, check = %i.check, excess_sat = i.excess_sat, "inflation");
                            self.emit(&self.topics.inflation, node, net, "", &i, out)?;
                        }
                    }
                    SupplyCheck::Ok { .. } => t::INFLATION_EXCESS.with_gauge(labels()).set(0.0),
                    SupplyCheck::Skipped => {}
                }
            }
            _ => return Ok(()),
        }
        Ok(())
    }

    fn emit<T: Record>(
        &self,
        topic: &OutputTopic,
        node_id: &str,
        network: &str,
        hash: &str,
        value: &T,
        out: &mut Vec<Output>,
    ) -> Result<(), RecordError> {
        let payload = self.codec.encode(value).map_err(|e| RecordError::Invalid(e.to_string()))?;
        out.push(topic.output(&KeyFields { node_id, network, hash }, payload));
        Ok(())
    }
}

impl Processor for ChainProcessor {
    fn process(&mut self, input: &Input<'_>, out: &mut Vec<Output>) -> Result<(), RecordError> {
        if input.topic == self.topics.events_in {
            self.event(input, out)
        } else if input.topic == self.topics.views_in {
            self.view(input, out)
        } else if input.topic == self.topics.connects_in {
            self.connect(input, out)
        } else {
            Err(RecordError::Invalid(format!("chain does not read {}", input.topic)))
        }
    }

    fn tick(&mut self, now_us: i64, idle: &[(&str, i32)], out: &mut Vec<Output>) {
        let mut found = Vec::new();
        let mut closed = Vec::new();
        for (topic, partition) in idle {
            let Some(state) = self.states.peek_mut(topic, *partition) else { continue };
            let due = super::connects::compared(state.connects.close_due(now_us, self.connect_window_us));
            let mut changed = !due.is_empty();
            closed.extend(due);
            for (node, chain) in &mut state.nodes {
                // Something waiting may end without an event (a reorg that comes to none, say).
                changed |= chain.has_pending();
                let f = chain.idle(&self.node_config, node, now_us);
                changed |= f.has_events();
                if f.has_events() {
                    found.push(f);
                }
            }
            if changed {
                self.states.touch(topic, *partition);
            }
        }
        for f in found {
            if let Err(e) = self.publish_findings(f, out) {
                tracing::warn!(error = %e, "chain event not published");
            }
        }
        if let Err(e) = self.publish_comparisons(closed, out) {
            tracing::warn!(error = %e, "block connect comparison not published");
        }
    }

    fn assigned(&mut self, topic: &str, partition: i32) {
        self.states.drop_state(topic, partition);
    }

    fn reset(&mut self, topic: &str, partition: i32) {
        // The local store holds only acknowledged state; the partition restores from it.
        self.states.drop_state(topic, partition);
    }

    fn revoked(&mut self, topic: &str, partition: i32) {
        self.states.revoked(topic, partition);
    }

    fn replay_window(&self) -> Option<Duration> {
        Some(self.replay)
    }

    fn restore(&mut self, topic: &str, partition: i32, first: i64) -> Option<i64> {
        self.states.restore(topic, partition, first)
    }

    fn checkpoint(&mut self, positions: &[(String, i32, i64)]) {
        self.states.checkpoint(positions);
    }
}
