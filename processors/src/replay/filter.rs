//! `--nodes` and `--network`: which input records a replay feeds.
//!
//! A record is kept when its node and network (top-level `node_id` and `network`, or the same in
//! its `envelope`, as every fact and view carries them) are among those asked for; a record with
//! neither field is kept. Records are decoded only when a filter is set.

use bmon_schemas::Codec;

/// The nodes and network a replay is limited to (empty: everything).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only these nodes (empty: every node).
    pub nodes: Vec<String>,
    /// Only this network.
    pub network: Option<String>,
}

impl Filter {
    /// True when nothing is filtered out.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty() && self.network.is_none()
    }

    /// Whether the record `payload` is kept. An undecodable record is kept: the processor that
    /// reads it counts it as a dead letter, as it would live.
    pub fn wants(&self, codec: &Codec, payload: &[u8]) -> bool {
        if self.is_empty() {
            return true;
        }
        let Ok((_, value)) = codec.decode_json(payload) else { return true };
        let field = |name: &str| {
            value.get(name).or_else(|| value.get("envelope").and_then(|e| e.get(name))).and_then(|v| v.as_str())
        };
        let node_ok = self.nodes.is_empty() || field("node_id").is_none_or(|n| self.nodes.iter().any(|w| w == n));
        let net_ok = self.network.as_deref().is_none_or(|want| field("network").is_none_or(|n| n == want));
        node_ok && net_ok
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn facts_are_kept_by_their_envelope_and_observations_by_their_fields() {
        let codec = Codec::default();
        let fact = bmon_schemas::samples::log_line();
        let obs = bmon_schemas::samples::observation();
        let (fact_bytes, obs_bytes) = (codec.encode(&fact).unwrap(), codec.encode(&obs).unwrap());
        let only = |nodes: &[&str], network: Option<&str>| Filter {
            nodes: nodes.iter().map(|n| (*n).to_owned()).collect(),
            network: network.map(str::to_owned),
        };
        assert!(Filter::default().wants(&codec, b"not even a record"));
        assert!(only(&[&fact.envelope.node_id], None).wants(&codec, &fact_bytes));
        assert!(!only(&["elsewhere"], None).wants(&codec, &fact_bytes));
        assert!(only(&[], Some(&fact.envelope.network)).wants(&codec, &fact_bytes));
        assert!(!only(&[], Some("nowhere")).wants(&codec, &fact_bytes));
        assert!(only(&[&obs.node_id], Some(&obs.network)).wants(&codec, &obs_bytes));
        assert!(!only(&[&obs.node_id], Some("nowhere")).wants(&codec, &obs_bytes));
        assert!(only(&["x"], None).wants(&codec, b"garbage"), "undecodable records go on to be dead letters");
    }
}
