//! Building a [`Report`] from the records a replay produced, one record at a time (pure).

use std::collections::BTreeMap;

use bmon_schemas::{
    ChainInvalidBlock, ChainReorg, ChainSplit, Codec, EventBody, Inflation, MempoolConflict, MempoolDivergence,
    MempoolEmpty, MempoolRejectionSpike, NodeEvent, NodeLagging, PolicyDivergence, PropagationAnomaly,
    PropagationSummary, Record, SelfishMiningSuspect, Stage, StaleTip, TemplateDivergence, TxVerdict,
};

use crate::model::{Header, LagSeries, RejectionBucket, Report, SimilarityPoint, SlowBlock, SpreadPoint, TipPoint};

/// How many of the slowest blocks the report lists.
pub const SLOWEST: usize = 10;

const MINUTE_US: i64 = 60_000_000;

/// Collects what a report needs from the replay's records; [`ReportBuilder::finish`] makes it.
#[derive(Debug, Default)]
pub struct ReportBuilder {
    codec: Codec,
    /// The latest revision per network, hash and stage.
    summaries: BTreeMap<(String, String, Stage), PropagationSummary>,
    rejections: BTreeMap<(String, String, i64), u64>,
    report: Report,
    undecodable: u64,
}

fn ms(us: i64) -> f64 {
    us as f64 / 1000.0
}

impl ReportBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that could not be decoded (counted, not shown).
    pub fn undecodable(&self) -> u64 {
        self.undecodable
    }

    /// A derived event (a record that left the pipeline on an events topic).
    pub fn event(&mut self, payload: &[u8]) {
        let Ok(version) = self.codec.writer_version(payload) else {
            self.undecodable += 1;
            return;
        };
        let family = version.family.clone();
        *self.report.events.entry(family.clone()).or_default() += 1;
        let ok = match family.as_str() {
            PropagationSummary::FAMILY => self.decode(payload, |b, s: PropagationSummary| {
                let key = (s.network.clone(), s.hash.clone(), s.stage);
                match b.summaries.get(&key) {
                    Some(have) if have.revision > s.revision => {}
                    _ => {
                        b.summaries.insert(key, s);
                    }
                }
            }),
            PropagationAnomaly::FAMILY => self.push(payload, |r| &mut r.propagation.anomalies),
            ChainReorg::FAMILY => self.push(payload, |r| &mut r.chain.reorgs),
            SelfishMiningSuspect::FAMILY => self.push(payload, |r| &mut r.chain.selfish),
            StaleTip::FAMILY => self.push(payload, |r| &mut r.chain.stale),
            ChainInvalidBlock::FAMILY => self.push(payload, |r| &mut r.chain.invalid),
            NodeLagging::FAMILY => self.push(payload, |r| &mut r.chain.lagging),
            ChainSplit::FAMILY => self.push(payload, |r| &mut r.chain.splits),
            Inflation::FAMILY => self.push(payload, |r| &mut r.chain.inflation),
            MempoolRejectionSpike::FAMILY => self.push(payload, |r| &mut r.mempool.spikes),
            PolicyDivergence::FAMILY => self.push(payload, |r| &mut r.mempool.policy),
            MempoolConflict::FAMILY => self.push(payload, |r| &mut r.mempool.conflicts),
            MempoolEmpty::FAMILY => self.push(payload, |r| &mut r.mempool.empty),
            MempoolDivergence::FAMILY => self.decode(payload, |b, d: MempoolDivergence| {
                b.similarity("mempool", &d.node_id, d.at_us, d.similarity);
                b.report.mempool.divergences.push(d);
            }),
            TemplateDivergence::FAMILY => self.decode(payload, |b, d: TemplateDivergence| {
                b.similarity("template", &d.node_id, d.at_us, d.similarity);
                b.report.mempool.templates.push(d);
            }),
            _ => true, // counted above; no section shows it
        };
        if !ok {
            self.undecodable += 1;
        }
    }

    /// A similarity reading of `of` (mempool or template) for the plot.
    fn similarity(&mut self, of: &str, node: &str, at_us: i64, similarity: f64) {
        let point = SimilarityPoint { node: node.to_owned(), of: of.to_owned(), at_us, similarity };
        self.report.mempool.similarity.push(point);
    }

    /// A node event (each node's tip changes are read from it).
    pub fn node_event(&mut self, payload: &[u8]) {
        match self.codec.decode::<NodeEvent>(payload) {
            Ok(e) => {
                if let EventBody::UpdateTip(tip) = e.event {
                    self.report.chain.tips.push(TipPoint {
                        node: e.envelope.node_id,
                        at_us: e.logged_at_us.unwrap_or(e.envelope.received_at_us),
                        height: tip.height,
                        hash: tip.hash,
                    });
                }
            }
            Err(_) => self.undecodable += 1,
        }
    }

    /// A node's verdict on a transaction (rejections are counted from them).
    pub fn verdict(&mut self, payload: &[u8]) {
        match self.codec.decode::<TxVerdict>(payload) {
            Ok(v) if !v.accepted => {
                let minute = v.at_us.div_euclid(MINUTE_US) * MINUTE_US;
                *self.rejections.entry((v.node_id, v.reason, minute)).or_default() += 1;
            }
            Ok(_) => {}
            Err(_) => self.undecodable += 1,
        }
    }

    fn decode<T: Record + serde::de::DeserializeOwned>(
        &mut self,
        payload: &[u8],
        f: impl FnOnce(&mut Self, T),
    ) -> bool {
        match self.codec.decode::<T>(payload) {
            Ok(v) => {
                f(self, v);
                true
            }
            Err(_) => false,
        }
    }

    fn push<T: Record + serde::de::DeserializeOwned>(
        &mut self,
        payload: &[u8],
        to: fn(&mut Report) -> &mut Vec<T>,
    ) -> bool {
        self.decode(payload, |b, v| to(&mut b.report).push(v))
    }

    /// The report, under `header` (its `late` is filled in here).
    pub fn finish(mut self, mut header: Header) -> Report {
        let summaries: Vec<PropagationSummary> = std::mem::take(&mut self.summaries).into_values().collect();
        header.late = summaries.iter().map(|s| u64::try_from(s.late_count).unwrap_or(0)).sum();
        let mut report = self.report;
        report.header = header;
        report.propagation.summaries = summaries.len() as u64;
        let mut lags: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
        for s in &summaries {
            for l in &s.lags {
                lags.entry((stage_name(s.stage), l.node_id.clone())).or_default().push(ms(l.lag_us));
            }
        }
        report.propagation.lags = lags
            .into_iter()
            .map(|((stage, node), mut lags_ms)| {
                lags_ms.sort_by(f64::total_cmp);
                LagSeries { node, stage, lags_ms }
            })
            .collect();
        let tips: Vec<&PropagationSummary> = summaries.iter().filter(|s| s.stage == Stage::Tip).collect();
        let mut spread: Vec<SpreadPoint> = tips
            .iter()
            .map(|s| SpreadPoint { at_us: s.first_seen_us, hash: s.hash.clone(), spread_ms: ms(s.spread_us) })
            .collect();
        spread.sort_by_key(|p| p.at_us);
        report.propagation.spread = spread;
        let mut slowest: Vec<&&PropagationSummary> = tips.iter().collect();
        slowest.sort_by(|a, b| b.spread_us.cmp(&a.spread_us).then(a.first_seen_us.cmp(&b.first_seen_us)));
        report.propagation.slowest = slowest
            .into_iter()
            .take(SLOWEST)
            .map(|s| SlowBlock {
                hash: s.hash.clone(),
                network: s.network.clone(),
                first_node: s.first_node.clone(),
                first_seen_us: s.first_seen_us,
                spread_ms: ms(s.spread_us),
                lags_ms: s.lags.iter().map(|l| (l.node_id.clone(), ms(l.lag_us))).collect(),
                missing: s.missing_nodes.clone(),
            })
            .collect();
        report.mempool.rejections = self
            .rejections
            .into_iter()
            .map(|((node, reason, minute_us), count)| RejectionBucket { node, reason, minute_us, count })
            .collect();
        sort_by_time(&mut report);
        report
    }
}

/// The stage's name as the schema writes it.
pub fn stage_name(stage: Stage) -> String {
    serde_json::to_value(stage).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

fn sort_by_time(r: &mut Report) {
    r.chain.tips.sort_by(|a, b| (a.at_us, &a.node).cmp(&(b.at_us, &b.node)));
    r.chain.reorgs.sort_by_key(|e| e.detected_at_us);
    r.chain.stale.sort_by_key(|e| e.block_time_us.saturating_add(e.age_us));
    r.chain.invalid.sort_by_key(|e| e.seen_at_us);
    r.chain.lagging.sort_by_key(|e| e.at_us);
    r.chain.splits.sort_by_key(|e| e.at_us);
    r.chain.inflation.sort_by_key(|e| e.at_us);
    r.mempool.spikes.sort_by_key(|e| e.bucket_start_us);
    r.mempool.policy.sort_by_key(|e| e.first_at_us);
    r.mempool.divergences.sort_by_key(|e| e.at_us);
    r.mempool.templates.sort_by_key(|e| e.at_us);
    r.mempool.empty.sort_by_key(|e| e.at_us);
    r.mempool.similarity.sort_by(|a, b| (a.at_us, &a.node).cmp(&(b.at_us, &b.node)));
}
