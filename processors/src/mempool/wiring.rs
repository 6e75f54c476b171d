//! Connects the pure mempool logic to the runtime: decoding node events and verdicts,
//! per-partition state checkpointed to RocksDB, metrics and events. The network views are
//! handled in [`super::network`].

use std::time::Duration;

use bmon_schemas::{
    Codec, EventBody, MempoolConflict, MempoolDivergence, MempoolEmpty, MempoolRejectionSpike, NodeEvent, NodeView,
    PolicyDivergence, Record, TemplateDivergence, TxConflict, TxVerdict,
};
use bmon_topology::{BindError, Topology};

use super::config::MempoolConfig;
use super::divergence::{self, is_conflict};
use super::empty::EmptyConfig;
use super::presence::PresenceConfig;
use super::rejections::{SpikeConfig, reason_label};
use super::state::PartitionState;
use super::telemetry::{self as t, label};
use super::templates::TemplateConfig;
use crate::runtime::{
    Input, KeyFields, KeyKind, Output, OutputTopic, PartitionStates, Processor, RecordError, SnapshotError,
};

/// mempool's topics, from topology.yaml: node events, network views and verdicts in; one output
/// topic per event kind (`bmon.events` today); verdicts keyed by transaction, and conflict
/// markers onto the network's views.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MempoolTopics {
    /// The node-event input.
    pub events_in: String,
    /// The network-view input.
    pub views_in: String,
    /// The verdict input (mempool's own output, re-keyed by transaction).
    pub verdicts_in: String,
    verdicts: OutputTopic,
    pub(super) conflict_marks: OutputTopic,
    spike: OutputTopic,
    pub(super) empty: OutputTopic,
    divergence: OutputTopic,
    pub(super) pool_divergence: OutputTopic,
    pub(super) conflicts: OutputTopic,
    pub(super) template_divergence: OutputTopic,
}

impl MempoolTopics {
    /// Binds the topics of topology processor `name`.
    pub fn bind(t: &Topology, name: &str) -> Result<MempoolTopics, BindError> {
        let p = t.processor_named(name)?;
        let keys = [KeyKind::NetworkObject, KeyKind::Network, KeyKind::NodeId];
        Ok(MempoolTopics {
            events_in: t.input_of(p, NodeEvent::FAMILY)?.name.clone(),
            views_in: t.input_of(p, NodeView::FAMILY)?.name.clone(),
            verdicts_in: t.input_of(p, TxVerdict::FAMILY)?.name.clone(),
            verdicts: OutputTopic::bind(t, p, TxVerdict::FAMILY, &keys)?,
            conflict_marks: OutputTopic::bind(t, p, TxConflict::FAMILY, &keys)?,
            spike: OutputTopic::bind(t, p, MempoolRejectionSpike::FAMILY, &keys)?,
            empty: OutputTopic::bind(t, p, MempoolEmpty::FAMILY, &keys)?,
            divergence: OutputTopic::bind(t, p, PolicyDivergence::FAMILY, &keys)?,
            pool_divergence: OutputTopic::bind(t, p, MempoolDivergence::FAMILY, &keys)?,
            conflicts: OutputTopic::bind(t, p, MempoolConflict::FAMILY, &keys)?,
            template_divergence: OutputTopic::bind(t, p, TemplateDivergence::FAMILY, &keys)?,
        })
    }
}

/// The mempool operator as the runtime runs it.
pub struct MempoolProcessor {
    spike: SpikeConfig,
    divergence_window_us: i64,
    pub(super) empty: EmptyConfig,
    pub(super) presence: PresenceConfig,
    pub(super) templates: TemplateConfig,
    pub(super) order_bound_us: i64,
    pub(super) topics: MempoolTopics,
    replay: Duration,
    pub(super) states: PartitionStates<PartitionState>,
    pub(super) codec: Codec,
}

impl MempoolProcessor {
    /// Opens the state store under `config.state_dir`; publishes to `topics`; a partition new to
    /// this instance is rebuilt from `replay` of its input (topology.yaml's store window).
    pub fn open(config: &MempoolConfig, topics: MempoolTopics, replay: Duration) -> Result<Self, SnapshotError> {
        Ok(MempoolProcessor {
            spike: config.spike(),
            divergence_window_us: config.divergence_window_us(),
            empty: config.empty(),
            presence: config.presence(),
            templates: config.templates(),
            order_bound_us: config.order_bound_us(),
            topics,
            replay,
            states: PartitionStates::open(&config.state_dir)?,
            codec: Codec::default(),
        })
    }

    fn event(&mut self, input: &Input<'_>, out: &mut Vec<Output>) -> Result<(), RecordError> {
        let e: NodeEvent = self.codec.decode(input.payload).map_err(|e| RecordError::Undecodable(e.to_string()))?;
        let env = &e.envelope;
        let at = e.logged_at_us.unwrap_or(env.received_at_us);
        // Every verdict goes to the transaction's partition, where the nodes' verdicts meet.
        let (txid, reason) = match &e.event {
            EventBody::MempoolAccept(a) => (&a.txid, None),
            EventBody::MempoolReject(r) => (&r.txid, Some(r)),
            _ => return Ok(()),
        };
        // The reason as logged, with its detail: a refused replacement is `insufficient fee,
        // rejecting replacement …`, a conflict, where `insufficient fee` alone is a policy.
        let logged = reason.map(|r| match &r.detail {
            Some(d) => format!("{}, {d}", r.reason),
            None => r.reason.clone(),
        });
        let conflict = logged.as_deref().is_some_and(is_conflict);
        if !input.replay {
            let v = TxVerdict {
                node_id: env.node_id.clone(),
                network: env.network.clone(),
                node_version: env.node_version.clone(),
                txid: txid.clone(),
                accepted: reason.is_none(),
                reason: if conflict { logged.clone() } else { reason.map(|r| r.reason.clone()) }.unwrap_or_default(),
                at_us: at,
            };
            self.emit(&self.topics.verdicts, &v.node_id, &v.network, &v.txid, &v, out)?;
            if conflict {
                // To the network's views, where the nodes' mempools meet.
                let c = TxConflict {
                    node_id: v.node_id.clone(),
                    network: v.network.clone(),
                    node_version: v.node_version.clone(),
                    txid: v.txid.clone(),
                    reason: v.reason.clone(),
                    at_us: at,
                };
                self.emit(&self.topics.conflict_marks, &c.node_id, &c.network, &c.txid, &c, out)?;
            }
        }
        let Some(r) = reason else { return Ok(()) };
        let state = self.states.get_mut(input.topic, input.partition);
        let node = state.nodes.entry(env.node_id.clone()).or_default();
        if !node.first_refusal(&r.txid) {
            return Ok(());
        }
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
            self.emit(&self.topics.spike, &s.node_id, &s.network, &s.node_id, &s, out)?;
        }
        Ok(())
    }

    fn verdict(&mut self, input: &Input<'_>, out: &mut Vec<Output>) -> Result<(), RecordError> {
        let v: TxVerdict = self.codec.decode(input.payload).map_err(|e| RecordError::Undecodable(e.to_string()))?;
        let state = self.states.get_mut(input.topic, input.partition);
        let added = divergence::add(&mut state.transactions, &v, self.divergence_window_us);
        if input.replay {
            return Ok(());
        }
        self.publish_divergences(added.closed, out)
    }

    fn publish_divergences(&self, found: Vec<PolicyDivergence>, out: &mut Vec<Output>) -> Result<(), RecordError> {
        for d in found {
            for r in &d.rejected_by {
                t::DIVERGENCES
                    .with_counter([
                        label("network", d.network.clone()),
                        label("node", r.node_id.clone()),
                        label("reason", reason_label(&r.reason)),
                    ])
                    .increment(1);
            }
            let rejecting = d.rejected_by.first().map(|r| r.node_id.clone()).unwrap_or_default();
            tracing::info!(txid = %d.txid, rejected_by = %rejecting, "policy divergence");
            self.emit(&self.topics.divergence, &rejecting, &d.network, &d.txid, &d, out)?;
        }
        Ok(())
    }

    /// Publishes `value` on `topic`, keyed from the node, the network and the object.
    pub(super) fn emit<T: Record>(
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

impl Processor for MempoolProcessor {
    fn process(&mut self, input: &Input<'_>, out: &mut Vec<Output>) -> Result<(), RecordError> {
        if input.topic == self.topics.events_in {
            self.event(input, out)
        } else if input.topic == self.topics.views_in {
            self.network_record(input, out)
        } else if input.topic == self.topics.verdicts_in {
            self.verdict(input, out)
        } else {
            Err(RecordError::Invalid(format!("mempool does not read {}", input.topic)))
        }
    }

    fn tick(&mut self, now_us: i64, idle: &[(&str, i32)], out: &mut Vec<Output>) {
        let mut found = Vec::new();
        for (topic, partition) in idle {
            let Some(state) = self.states.peek_mut(topic, *partition) else { continue };
            let closed = state.transactions.close_due(now_us, self.divergence_window_us);
            if !closed.is_empty() {
                found.extend(divergence::diverged(closed, self.divergence_window_us));
                self.states.touch(topic, *partition);
            }
        }
        if let Err(e) = self.publish_divergences(found, out) {
            tracing::warn!(error = %e, "policy divergence not published");
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
