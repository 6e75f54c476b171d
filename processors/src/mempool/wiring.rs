//! Connects the pure mempool logic to the runtime: decoding node events and network views,
//! per-partition state checkpointed to RocksDB, metrics and events.

use std::collections::BTreeMap;
use std::time::Duration;

use bmon_schemas::{Codec, EventBody, MempoolEmpty, MempoolRejectionSpike, NodeEvent, NodeView, Record};
use bmon_topology::{BindError, Topology};
use serde::{Deserialize, Serialize};

use super::config::MempoolConfig;
use super::empty::{EmptyConfig, Pools};
use super::rejections::{Rejections, SpikeConfig, reason_label};
use super::telemetry::{self as t, label};
use crate::runtime::{
    Input, KeyFields, KeyKind, Output, OutputTopic, PartitionStates, Processor, RecordError, SnapshotError,
};
use crate::views::MempoolInfo;

/// mempool's topics, from topology.yaml: node events and network views in, one output topic per
/// event kind (`bmon.events` today), keyed by network and node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MempoolTopics {
    /// The node-event input.
    pub events_in: String,
    /// The network-view input.
    pub views_in: String,
    spike: OutputTopic,
    empty: OutputTopic,
}

impl MempoolTopics {
    /// Binds the topics of topology processor `name`.
    pub fn bind(t: &Topology, name: &str) -> Result<MempoolTopics, BindError> {
        let p = t.processor_named(name)?;
        let keys = [KeyKind::NetworkObject, KeyKind::Network, KeyKind::NodeId];
        Ok(MempoolTopics {
            events_in: t.input_of(p, NodeEvent::FAMILY)?.name.clone(),
            views_in: t.input_of(p, NodeView::FAMILY)?.name.clone(),
            spike: OutputTopic::bind(t, p, MempoolRejectionSpike::FAMILY, &keys)?,
            empty: OutputTopic::bind(t, p, MempoolEmpty::FAMILY, &keys)?,
        })
    }
}

/// One input partition's state: the nodes of a node-event partition, or the networks of a view
/// partition.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct PartitionState {
    nodes: BTreeMap<String, Rejections>,
    networks: BTreeMap<String, Pools>,
}

/// The mempool operator as the runtime runs it.
pub struct MempoolProcessor {
    spike: SpikeConfig,
    empty: EmptyConfig,
    topics: MempoolTopics,
    replay: Duration,
    states: PartitionStates<PartitionState>,
    codec: Codec,
}

impl MempoolProcessor {
    /// Opens the state store under `config.state_dir`; publishes to `topics`; a partition new to
    /// this instance is rebuilt from `replay` of its input (topology.yaml's store window).
    pub fn open(config: &MempoolConfig, topics: MempoolTopics, replay: Duration) -> Result<Self, SnapshotError> {
        Ok(MempoolProcessor {
            spike: config.spike(),
            empty: config.empty(),
            topics,
            replay,
            states: PartitionStates::open(&config.state_dir)?,
            codec: Codec::default(),
        })
    }

    fn event(&mut self, input: &Input<'_>, out: &mut Vec<Output>) -> Result<(), RecordError> {
        let e: NodeEvent = self.codec.decode(input.payload).map_err(|e| RecordError::Undecodable(e.to_string()))?;
        let EventBody::MempoolReject(r) = &e.event else { return Ok(()) };
        let env = &e.envelope;
        let at = e.logged_at_us.unwrap_or(env.received_at_us);
        let state = self.states.get_mut(input.topic, input.partition);
        let node = state.nodes.entry(env.node_id.clone()).or_default();
        let spike = node.add(&self.spike, &env.node_id, &env.network, &r.reason, at);
        if input.replay {
            return Ok(());
        }
        let labels = [
            label("network", env.network.clone()),
            label("node", env.node_id.clone()),
            label("reason", reason_label(&r.reason)),
        ];
        t::REJECTIONS.with_counter(labels.clone()).increment(1);
        if let Some(s) = spike {
            t::SPIKES.with_counter(labels).increment(1);
            tracing::warn!(node = %s.node_id, reason = %s.reason, count = s.count, baseline = s.baseline, "rejection spike");
            self.emit(&self.topics.spike, &s.node_id, &s.network, &s, out)?;
        }
        Ok(())
    }

    fn view(&mut self, input: &Input<'_>, out: &mut Vec<Output>) -> Result<(), RecordError> {
        let v: NodeView = self.codec.decode(input.payload).map_err(|e| RecordError::Undecodable(e.to_string()))?;
        if v.method != "getmempoolinfo" {
            return Ok(());
        }
        let info = MempoolInfo::parse(&v.view_json).map_err(|e| RecordError::Invalid(e.to_string()))?;
        let Some(size) = info.size.and_then(|s| i64::try_from(s).ok()) else { return Ok(()) };
        let env = &v.envelope;
        let (net, node) = (env.network.as_str(), env.node_id.as_str());
        let state = self.states.get_mut(input.topic, input.partition);
        let pools = state.networks.entry(net.to_owned()).or_default();
        let found = pools.size(&self.empty, net, node, size, env.received_at_us);
        let reported_empty = pools.empty_for(node, env.received_at_us).is_some_and(|d| d >= self.empty.after_us);
        if input.replay {
            return Ok(());
        }
        let labels = || [label("network", net.to_owned()), label("node", node.to_owned())];
        t::SIZE.with_gauge(labels()).set(size as f64);
        if let Some(b) = info.bytes {
            t::BYTES.with_gauge(labels()).set(b as f64);
        }
        if let Some(u) = info.usage {
            t::USAGE.with_gauge(labels()).set(u as f64);
        }
        if let Some(f) = info.mempoolminfee {
            t::MIN_FEE.with_gauge(labels()).set(f);
        }
        if let Some(e) = found {
            t::EMPTY.with_gauge(labels()).set(if e.empty { 1.0 } else { 0.0 });
            tracing::info!(node, empty = e.empty, others = e.others_max_size, "mempool empty state changed");
            self.emit(&self.topics.empty, node, net, &e, out)?;
        } else if !reported_empty {
            t::EMPTY.with_gauge(labels()).set(0.0);
        }
        Ok(())
    }

    fn emit<T: Record>(
        &self,
        topic: &OutputTopic,
        node_id: &str,
        network: &str,
        value: &T,
        out: &mut Vec<Output>,
    ) -> Result<(), RecordError> {
        let payload = self.codec.encode(value).map_err(|e| RecordError::Invalid(e.to_string()))?;
        out.push(topic.output(&KeyFields { node_id, network, hash: node_id }, payload));
        Ok(())
    }
}

impl Processor for MempoolProcessor {
    fn process(&mut self, input: &Input<'_>, out: &mut Vec<Output>) -> Result<(), RecordError> {
        if input.topic == self.topics.events_in {
            self.event(input, out)
        } else if input.topic == self.topics.views_in {
            self.view(input, out)
        } else {
            Err(RecordError::Invalid(format!("mempool does not read {}", input.topic)))
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
