//! Connects the pure view logic to the runtime: decoding, encoding, topics and keys.

use bmon_schemas::{Codec, NodeEvent, NodeView, Record, RpcSnapshotFact};
use bmon_topology::{BindError, Topology};

use super::config::NetViewsConfig;
use super::logic::{Outcome, chain_tips_event, view_of};
use super::telemetry::{self as t, label};
use crate::runtime::{Input, KeyFields, KeyKind, Output, OutputTopic, Processor, RecordError};

/// netviews' topics, from topology.yaml: views go to the topic carrying `node_view`, keyed by
/// network (every node of a network in one partition; that is the point); chain tips also go to
/// the topic carrying `node_event`, keyed by node, beside the node's log events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetViewsTopics {
    /// Where views go.
    pub views: OutputTopic,
    /// Where chain-tip node events go.
    pub events: OutputTopic,
}

impl NetViewsTopics {
    /// Binds the topics of topology processor `name` (its input must carry RPC snapshots).
    pub fn bind(t: &Topology, name: &str) -> Result<NetViewsTopics, BindError> {
        let p = t.processor_named(name)?;
        t.input_of(p, RpcSnapshotFact::FAMILY)?;
        Ok(NetViewsTopics {
            views: OutputTopic::bind(t, p, NodeView::FAMILY, &[KeyKind::Network])?,
            events: OutputTopic::bind(t, p, NodeEvent::FAMILY, &[KeyKind::NodeId])?,
        })
    }
}

/// The netviews operator as the runtime runs it.
#[derive(Debug)]
pub struct NetViewsProcessor {
    config: NetViewsConfig,
    topics: NetViewsTopics,
    codec: Codec,
}

impl NetViewsProcessor {
    /// A processor publishing to `topics`.
    pub fn new(config: NetViewsConfig, topics: NetViewsTopics) -> NetViewsProcessor {
        NetViewsProcessor { config, topics, codec: Codec::default() }
    }
}

impl Processor for NetViewsProcessor {
    fn process(&mut self, input: &Input<'_>, out: &mut Vec<Output>) -> Result<(), RecordError> {
        let fact: RpcSnapshotFact =
            self.codec.decode(input.payload).map_err(|e| RecordError::Undecodable(e.to_string()))?;
        let invalid = |e: crate::views::ViewError| RecordError::Invalid(e.to_string());
        if self.config.methods.contains(&fact.method)
            && let Some(event) = chain_tips_event(&fact).map_err(invalid)?
        {
            let payload = self.codec.encode(&event).map_err(|e| RecordError::Invalid(e.to_string()))?;
            let e = &event.envelope;
            out.push(
                self.topics.events.output(&KeyFields { node_id: &e.node_id, network: &e.network, hash: "" }, payload),
            );
        }
        let view = match view_of(&fact, &self.config.methods).map_err(invalid)? {
            Outcome::View(v) => v,
            Outcome::Skipped => return Ok(()),
        };
        let payload = self.codec.encode(&view).map_err(|e| RecordError::Invalid(e.to_string()))?;
        let e = &view.envelope;
        if !input.replay {
            t::VIEWS
                .with_counter([label("network", e.network.clone()), label("method", view.method.clone())])
                .increment(1);
        }
        out.push(self.topics.views.output(&KeyFields { node_id: &e.node_id, network: &e.network, hash: "" }, payload));
        Ok(())
    }
}
