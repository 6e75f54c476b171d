//! The network views' side of the mempool processor: each node's getmempoolinfo (sizes, empty
//! mempools), getrawmempool (the lists compared across nodes) and getblocktemplate (templates
//! compared on the same previous block), and the conflict markers that meet them there.

use bmon_schemas::{Envelope, NodeView, Record, TxConflict};

use super::presence::{Applied, Compared};
use super::telemetry::{self as t, label};
use super::templates::TemplatesCompared;
use super::wiring::MempoolProcessor;
use crate::runtime::{Input, Output, RecordError};
use crate::views::{BlockTemplate, MempoolInfo, MempoolTxids};

impl MempoolProcessor {
    /// One record of the network views topic: a node's view, or a conflict marker.
    pub(super) fn network_record(&mut self, input: &Input<'_>, out: &mut Vec<Output>) -> Result<(), RecordError> {
        let family = self.codec.writer_version(input.payload).map_err(|e| RecordError::Undecodable(e.to_string()))?;
        if family.family == TxConflict::FAMILY {
            let c: TxConflict =
                self.codec.decode(input.payload).map_err(|e| RecordError::Undecodable(e.to_string()))?;
            let state = self.states.get_mut(input.topic, input.partition);
            state.presence.entry(c.network.clone()).or_default().conflict(&c, self.presence.conflict_keep_us);
            return Ok(());
        }
        let v: NodeView = self.codec.decode(input.payload).map_err(|e| RecordError::Undecodable(e.to_string()))?;
        let invalid = |e: crate::views::ViewError| RecordError::Invalid(e.to_string());
        match v.method.as_str() {
            "getmempoolinfo" => self.info(input, &v.envelope, &MempoolInfo::parse(&v.view_json).map_err(invalid)?, out),
            "getrawmempool" => self.list(input, &v.envelope, &MempoolTxids::parse(&v.view_json).map_err(invalid)?, out),
            "getblocktemplate" => {
                self.template(input, &v.envelope, &BlockTemplate::from_view(&v.view_json).map_err(invalid)?, out)
            }
            _ => Ok(()),
        }
    }

    fn info(
        &mut self,
        input: &Input<'_>,
        env: &Envelope,
        info: &MempoolInfo,
        out: &mut Vec<Output>,
    ) -> Result<(), RecordError> {
        let Some(size) = info.size.and_then(|s| i64::try_from(s).ok()) else { return Ok(()) };
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
            self.emit(&self.topics.empty, node, net, node, &e, out)?;
        } else if !reported_empty {
            t::EMPTY.with_gauge(labels()).set(0.0);
        }
        Ok(())
    }

    fn list(
        &mut self,
        input: &Input<'_>,
        env: &Envelope,
        txids: &MempoolTxids,
        out: &mut Vec<Output>,
    ) -> Result<(), RecordError> {
        let (net, node, at) = (env.network.as_str(), env.node_id.as_str(), env.received_at_us);
        let state = self.states.get_mut(input.topic, input.partition);
        let presence = state.presence.entry(net.to_owned()).or_default();
        let applied = presence.apply(node, &env.source.epoch, env.source.offset, txids, at);
        let compared = presence.due(&self.presence, at).then(|| presence.compare(&self.presence, net, at));
        let tracked = presence.len().1;
        if input.replay {
            return Ok(());
        }
        match applied {
            Applied::Applied | Applied::Duplicate => {}
            Applied::Gap => {
                t::GAPS.with_counter([label("network", net.to_owned()), label("node", node.to_owned())]).increment(1);
                tracing::info!(
                    node,
                    offset = env.source.offset,
                    "mempool list out of sequence; waiting for a full snapshot"
                );
            }
            Applied::TooManyNodes => {
                tracing::warn!(node, network = net, "more nodes than the mempool comparison holds; left out")
            }
        }
        t::TRACKED.with_gauge([label("network", net.to_owned())]).set(tracked as f64);
        match compared {
            Some(c) => self.publish_compared(net, c, out),
            None => Ok(()),
        }
    }

    fn publish_compared(&self, net: &str, c: Compared, out: &mut Vec<Output>) -> Result<(), RecordError> {
        for f in &c.figures {
            let labels = || [label("network", net.to_owned()), label("node", f.node_id.clone())];
            t::MISSING.with_gauge(labels()).set(f.missing as f64);
            t::EXTRA.with_gauge(labels()).set(f.extra as f64);
            t::CONFLICTING.with_gauge(labels()).set(f.conflicts as f64);
            t::SIMILARITY.with_gauge(labels()).set(f.similarity);
        }
        for d in c.changes {
            t::DIVERGED
                .with_gauge([label("network", net.to_owned()), label("node", d.node_id.clone())])
                .set(if d.diverged { 1.0 } else { 0.0 });
            tracing::info!(node = %d.node_id, diverged = d.diverged, missing = d.missing, extra = d.extra, "mempool divergence");
            self.emit(&self.topics.pool_divergence, &d.node_id, net, &d.node_id, &d, out)?;
        }
        for x in c.conflicts {
            t::CONFLICTS.with_counter([label("network", net.to_owned())]).increment(1);
            tracing::info!(txid = %x.txid, held_by = ?x.held_by, "mempool conflict");
            let refusing = x.refused_by.first().map(|r| r.node_id.clone()).unwrap_or_default();
            self.emit(&self.topics.conflicts, &refusing, net, &x.txid, &x, out)?;
        }
        Ok(())
    }

    fn template(
        &mut self,
        input: &Input<'_>,
        env: &Envelope,
        tpl: &BlockTemplate,
        out: &mut Vec<Output>,
    ) -> Result<(), RecordError> {
        let (net, node, at) = (env.network.as_str(), env.node_id.as_str(), env.received_at_us);
        let state = self.states.get_mut(input.topic, input.partition);
        let presence = state.presence.get(net);
        let first = |x: &super::presence::Txid| presence.and_then(|p| p.first_held(x));
        let found = state.templates.entry(net.to_owned()).or_default().add(&self.templates, net, node, tpl, at, first);
        if input.replay {
            return Ok(());
        }
        self.publish_templates(net, found, out)
    }

    fn publish_templates(&self, net: &str, c: TemplatesCompared, out: &mut Vec<Output>) -> Result<(), RecordError> {
        for f in &c.figures {
            let labels = || [label("network", net.to_owned()), label("node", f.node_id.clone())];
            t::TEMPLATE_SIMILARITY.with_gauge(labels()).set(f.similarity);
            t::TEMPLATE_MISSING.with_gauge(labels()).set(f.missing as f64);
            t::TEMPLATE_EXTRA.with_gauge(labels()).set(f.extra as f64);
        }
        for d in c.divergences {
            t::TEMPLATE_DIVERGENCES
                .with_counter([label("network", net.to_owned()), label("node", d.node_id.clone())])
                .increment(1);
            tracing::info!(node = %d.node_id, missing = d.missing, extra = d.extra, "template divergence");
            self.emit(&self.topics.template_divergence, &d.node_id, net, &d.previous_block, &d, out)?;
        }
        Ok(())
    }
}
