//! Pure: what `bmon grep` keeps, how its times are read, and how it prints a hit.

use bmon_schemas::LogLineFact;
use regex::bytes::Regex;

/// One log line that matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// Node id.
    pub node: String,
    /// Chain name.
    pub network: String,
    /// The node's timestamp (µs since the epoch), else the producer's receive time.
    pub ts_us: i64,
    /// The line (lossy UTF-8).
    pub line: String,
    /// Where it sits in the topic.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
}

/// The filters of one search.
#[derive(Debug, Clone)]
pub struct Filter {
    /// The pattern, matched against the line alone.
    pub pattern: Regex,
    /// Whether the pattern may be tried on a record's raw bytes before decoding: not when it is
    /// anchored (`^`, `$`, `\A`, `\z`), since the line sits inside the record.
    pub prefilter: bool,
    /// Only these nodes (empty: all).
    pub nodes: Vec<String>,
    /// Only this network.
    pub network: Option<String>,
    /// Only lines of this log category (`validation`, `net`, …).
    pub category: Option<String>,
    /// Node time range, µs, inclusive.
    pub since_us: i64,
    /// Node time range end, µs, inclusive.
    pub until_us: i64,
}

impl Filter {
    /// Whether a record of node `key` may hold a hit (nodes are the record key, so most
    /// records are passed over without decoding).
    pub fn wants_key(&self, key: Option<&[u8]>) -> bool {
        self.nodes.is_empty() || key.is_some_and(|k| self.nodes.iter().any(|n| n.as_bytes() == k))
    }

    /// Whether the raw record may hold a hit: the pattern (and the network name) must occur
    /// somewhere in its bytes, which is much cheaper than decoding every record.
    pub fn may_match(&self, payload: &[u8]) -> bool {
        (!self.prefilter || self.pattern.is_match(payload))
            && self.network.as_ref().is_none_or(|n| memchr_find(payload, n.as_bytes()))
    }

    /// The hit in a decoded fact, if it is one.
    pub fn hit(&self, fact: &LogLineFact, partition: i32, offset: i64) -> Option<Hit> {
        let env = &fact.envelope;
        if self.network.as_ref().is_some_and(|n| *n != env.network) || !self.pattern.is_match(&fact.line) {
            return None;
        }
        let line = String::from_utf8_lossy(&fact.line).into_owned();
        let header = bmon_logparse::split_line(&line);
        if self.category.as_ref().is_some_and(|c| header.category != Some(c.as_str())) {
            return None;
        }
        let ts_us = header.logged_at_us.unwrap_or(env.received_at_us);
        if ts_us < self.since_us || ts_us > self.until_us {
            return None;
        }
        Some(Hit { node: env.node_id.clone(), network: env.network.clone(), ts_us, line, partition, offset })
    }
}

/// Whether `pattern` can be tried on a whole record's bytes: it holds no anchor.
pub fn prefilter_safe(pattern: &str) -> bool {
    !(pattern.contains('^') || pattern.contains('$') || pattern.contains("\\A") || pattern.contains("\\z"))
}

fn memchr_find(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// Hits in time order (ties: node, then position in the topic).
pub fn sort(hits: &mut [Hit]) {
    hits.sort_by(|a, b| (a.ts_us, &a.node, a.partition, a.offset).cmp(&(b.ts_us, &b.node, b.partition, b.offset)));
}

pub use bmon_logparse::time::format_us;

/// The text form: `node  timestamp  line`.
pub fn text(hit: &Hit) -> String {
    format!("{}\t{}\t{}", hit.node, format_us(hit.ts_us), hit.line)
}

/// The JSON form, one object per hit.
pub fn json(hit: &Hit) -> String {
    serde_json::json!({
        "node": hit.node,
        "network": hit.network,
        "ts": format_us(hit.ts_us),
        "ts_us": hit.ts_us,
        "line": hit.line,
        "partition": hit.partition,
        "offset": hit.offset,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchored_patterns_skip_the_raw_prefilter() {
        assert!(prefilter_safe("UpdateTip.*height=[0-9]+"));
        assert!(!prefilter_safe("^2026-12-02"));
        assert!(!prefilter_safe("accepted$"));
    }
}
