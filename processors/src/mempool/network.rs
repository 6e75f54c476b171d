//! The network views' side of the mempool processor: each node's getmempoolinfo (sizes, empty
//! mempools), getrawmempool (the lists compared across nodes) and getblocktemplate (templates
//! compared on the same previous block), and the conflict markers that meet them there, all
//! applied in event-time order ([`crate::reorder`]).

use bmon_schemas::{Envelope, NodeView, Record, TxConflict};

use super::presence::{Applied, Compared};
use super::telemetry::{self as t, label};
use super::templates::TemplatesCompared;
use super::wiring::MempoolProcessor;
use crate::reorder::{Held, Pushed};
use crate::runtime::{Input, Output, RecordError};
use crate::views::{BlockTemplate, MempoolInfo, MempoolTxids};

/// A record of the network views topic, parsed: a node's view, or a conflict marker.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum ViewRecord {
    /// A node refused a transaction as conflicting (mempool's own marker).
    Conflict(TxConflict),
    /// getmempoolinfo.
    Info(Envelope, MempoolInfo),
    /// getrawmempool.
    List(Envelope, MempoolTxids),
    /// getblocktemplate.
    Template(Envelope, BlockTemplate),
}

impl ViewRecord {
    /// The network, the node, the event time, µs (a marker's refusal, a view's answer), and
    /// the kind's rank at equal times (a marker before the lists it bears on).
    fn order(&self) -> (&str, &str, i64, u8) {
        match self {
            ViewRecord::Conflict(c) => (&c.network, &c.node_id, c.at_us, 0),
            ViewRecord::Info(e, _) => (&e.network, &e.node_id, e.received_at_us, 1),
            ViewRecord::List(e, _) => (&e.network, &e.node_id, e.received_at_us, 2),
            ViewRecord::Template(e, _) => (&e.network, &e.node_id, e.received_at_us, 3),
        }
    }
}

impl MempoolProcessor {
    /// One record of the network views topic. Its network's records are held until event time
    /// has moved `order_bound_us` past them, then applied in event-time order (docs/design.md,
    /// "Mempool", event-time order): so a comparison sees the same markers and lists live and
    /// replayed. Only records release records, never the wall clock, so the outcome is a
    /// function of the input alone.
    pub(super) fn network_record(&mut self, input: &Input<'_>, out: &mut Vec<Output>) -> Result<(), RecordError> {
        let Some(record) = self.parse_view(input.payload)? else { return Ok(()) };
        let (net, node, at, rank) = record.order();
        let (net, node) = (net.to_owned(), node.to_owned());
        // A clock far ahead would move the buffer's time on and make every later record late:
        // no record orders later than its broker time plus the bound.
        let at = match input.timestamp_ms {
            Some(ms) => at.min(ms.saturating_mul(1000).saturating_add(self.order_bound_us)),
            None => at,
        };
        let state = self.states.get_mut(input.topic, input.partition);
        let buffer = state.pending.entry(net.clone()).or_default();
        let mut ready = Vec::new();
        if let Pushed::Late(h) = buffer.push(at, &node, rank, input.payload.to_vec(), record) {
            if !input.replay {
                t::LATE_VIEWS.with_counter([label("network", net.clone()), label("node", node)]).increment(1);
            }
            ready.push(h);
        }
        ready.extend(buffer.release(self.order_bound_us).into_iter().map(|(_, h)| h));
        let held = buffer.len();
        if !input.replay {
            t::HELD_VIEWS.with_gauge([label("network", net)]).set(held as f64);
        }
        self.apply_views(input, ready, out);
        Ok(())
    }

    /// The view records `ready` applied in order; `input` is the record that released them,
    /// and says whether outputs are published (the records it releases were released at the
    /// same point of the same input before, when it is replayed).
    fn apply_views(&mut self, input: &Input<'_>, ready: Vec<Held<ViewRecord>>, out: &mut Vec<Output>) {
        for held in ready {
            // Parsed when read; a record restored from the store is parsed again (it was
            // valid when read, so an error here is a codec change, and it is logged).
            let record = match held.parsed {
                Some(r) => Some(r),
                None => self.parse_view(&held.raw).unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "a held view no longer parses; dropped");
                    None
                }),
            };
            let Some(record) = record else { continue };
            if let Err(e) = self.apply_view(input, record, out) {
                tracing::warn!(error = %e, "a held view's outputs not published");
            }
        }
    }

    /// A record of the views topic parsed; `None` for views mempool does not read.
    fn parse_view(&self, payload: &[u8]) -> Result<Option<ViewRecord>, RecordError> {
        let undecodable = |e: bmon_schemas::CodecError| RecordError::Undecodable(e.to_string());
        let family = self.codec.writer_version(payload).map_err(undecodable)?;
        if family.family == TxConflict::FAMILY {
            return Ok(Some(ViewRecord::Conflict(self.codec.decode(payload).map_err(undecodable)?)));
        }
        let v: NodeView = self.codec.decode(payload).map_err(undecodable)?;
        let invalid = |e: crate::views::ViewError| RecordError::Invalid(e.to_string());
        Ok(Some(match v.method.as_str() {
            "getmempoolinfo" => ViewRecord::Info(v.envelope, MempoolInfo::parse(&v.view_json).map_err(invalid)?),
            "getrawmempool" => ViewRecord::List(v.envelope, MempoolTxids::parse(&v.view_json).map_err(invalid)?),
            "getblocktemplate" => {
                ViewRecord::Template(v.envelope, BlockTemplate::from_view(&v.view_json).map_err(invalid)?)
            }
            _ => return Ok(None),
        }))
    }

    fn apply_view(&mut self, input: &Input<'_>, record: ViewRecord, out: &mut Vec<Output>) -> Result<(), RecordError> {
        match record {
            ViewRecord::Conflict(c) => {
                let state = self.states.get_mut(input.topic, input.partition);
                state.presence.entry(c.network.clone()).or_default().conflict(&c, self.presence.conflict_keep_us);
                Ok(())
            }
            ViewRecord::Info(env, info) => self.info(input, &env, &info, out),
            ViewRecord::List(env, txids) => self.list(input, &env, &txids, out),
            ViewRecord::Template(env, tpl) => self.template(input, &env, &tpl, out),
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
