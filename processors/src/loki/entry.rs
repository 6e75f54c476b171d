//! Pure: log-line facts and derived events as Loki entries (stream labels, timestamp, line,
//! structured metadata), and the compact encoding that carries an entry from the processor to
//! the sink inside an output record.

use bmon_logparse::scan;
use bmon_schemas::{LogLineFact, NodeImplementation};
use serde_json::Value;

/// The only stream labels bmon sets, in the order they are rendered. Everything with more
/// values than a fleet has nodes goes to structured metadata instead.
pub const LABELS: &[&str] = &["network", "node", "implementation", "source", "kind", "replay"];

/// The structured-metadata names bmon sets.
pub const METADATA: &[&str] = &["hash", "height", "txid", "peer", "category", "thread", "level"];

/// One Loki entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The stream's labels, rendered `{name="value",…}` in [`LABELS`] order.
    pub stream: String,
    /// Nanoseconds since the epoch.
    pub ts_ns: i64,
    /// The line.
    pub line: String,
    /// Structured metadata, in [`METADATA`] order.
    pub metadata: Vec<(String, String)>,
}

impl Entry {
    /// Roughly the bytes the entry adds to a push request (for batching by size).
    pub fn size(&self) -> usize {
        self.line.len() + self.metadata.iter().map(|(k, v)| k.len() + v.len() + 4).sum::<usize>() + 16
    }
}

/// The stream labels of one entry, before rendering.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamLabels<'a> {
    /// Chain name.
    pub network: Option<&'a str>,
    /// Node id.
    pub node: Option<&'a str>,
    /// Node software.
    pub implementation: Option<&'a str>,
    /// `log` or `event`.
    pub source: &'a str,
    /// The event's schema family (events only).
    pub kind: Option<&'a str>,
    /// The replay's id (replayed data only).
    pub replay: Option<&'a str>,
}

impl StreamLabels<'_> {
    /// `{network="regtest",node="a",…}`: the labels present, values escaped as in PromQL.
    pub fn render(&self) -> String {
        let values = [self.network, self.node, self.implementation, Some(self.source), self.kind, self.replay];
        let mut s = String::from("{");
        for (name, value) in LABELS.iter().zip(values) {
            let Some(v) = value.filter(|v| !v.is_empty()) else { continue };
            if s.len() > 1 {
                s.push(',');
            }
            s.push_str(name);
            s.push_str("=\"");
            for c in v.chars() {
                match c {
                    '\\' => s.push_str("\\\\"),
                    '"' => s.push_str("\\\""),
                    '\n' => s.push_str("\\n"),
                    c => s.push(c),
                }
            }
            s.push('"');
        }
        s.push('}');
        s
    }
}

/// The label value of an implementation.
pub fn implementation_label(i: NodeImplementation) -> &'static str {
    match i {
        NodeImplementation::Core => "core",
        NodeImplementation::Bsv => "bsv",
        NodeImplementation::Litecoin => "litecoin",
        NodeImplementation::Unknown => "unknown",
    }
}

/// The entry of one debug.log line. Its timestamp is the node's own (with microseconds) or, for
/// a line without one, the producer's receive time. The nanosecond digits below the microsecond
/// are the line's byte offset modulo 1000: two identical lines logged in the same microsecond
/// stay two entries (Loki drops an entry equal in stream, timestamp and line), and a line
/// pushed again after a crash is byte-identical, so Loki drops the repeat.
pub fn log_entry(fact: &LogLineFact, replay: Option<&str>) -> Entry {
    let line = String::from_utf8_lossy(&fact.line).into_owned();
    let header = bmon_logparse::split_line(&line);
    let us = header.logged_at_us.unwrap_or(fact.envelope.received_at_us);
    let ts_ns = us.saturating_mul(1000).saturating_add(fact.envelope.source.offset.rem_euclid(1000));
    let m = header.message;
    let txid = scan::hash_field(m, "txid").or_else(|| tx_hash(m));
    let hash = scan::hash_field(m, "best")
        .or_else(|| scan::hash_field(m, "hash"))
        .or_else(|| scan::hash_field(m, "block"))
        .or_else(|| if txid.is_none() { first_hash(m) } else { None });
    let height = scan::field(m, "height").filter(|h| h.bytes().all(|c| c.is_ascii_digit()) && !h.is_empty());
    let peer = scan::field(m, "peer").filter(|p| !p.is_empty());
    let fields = [hash, height, txid, peer, header.category, header.thread, header.level];
    let metadata =
        METADATA.iter().zip(fields).filter_map(|(k, v)| v.map(|v| ((*k).to_owned(), v.to_owned()))).collect();
    let labels = StreamLabels {
        network: Some(&fact.envelope.network),
        node: Some(&fact.envelope.node_id),
        implementation: Some(implementation_label(fact.envelope.implementation)),
        source: "log",
        kind: None,
        replay,
    };
    Entry { stream: labels.render(), ts_ns, line, metadata }
}

/// The first 64-hex-digit word of `s`.
fn first_hash(s: &str) -> Option<&str> {
    s.split([' ', '=', ',', '(', ')', '\'']).find_map(|w| if w.len() == 64 { scan::hash_at(w) } else { None })
}

/// A transaction hash in a message about a transaction (`tx 0123…`, `txid=…`, `wtxid=…`,
/// acceptance and rejection lines).
fn tx_hash(s: &str) -> Option<&str> {
    if s.contains("txid") || s.contains(" tx ") || s.contains("was not accepted") || s.starts_with("AcceptToMemoryPool")
    {
        first_hash(s)
    } else {
        None
    }
}

/// The fields that give an event's own time, in order of preference (µs since the epoch).
const EVENT_TIMES: &[&str] =
    &["detected_at_us", "closed_at_us", "at_us", "seen_at_us", "first_at_us", "failed_at_us", "first_seen_us"];

/// The entry of one derived event: its JSON as the line, its own time (else `record_ts_ms`, the
/// record's timestamp), `network`, `node_id` and the family as labels, its hash, height and
/// txid as metadata.
pub fn event_entry(family: &str, event: &Value, record_ts_ms: Option<i64>, replay: Option<&str>) -> Entry {
    let str_field = |k: &str| event.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
    let us = EVENT_TIMES
        .iter()
        .find_map(|k| event.get(*k).and_then(Value::as_i64))
        .or_else(|| record_ts_ms.map(|ms| ms.saturating_mul(1000)))
        .unwrap_or(0);
    let hash = ["hash", "new_tip", "tip", "block_hash"].iter().find_map(|k| str_field(k));
    let height = ["height", "new_height", "node_height"].iter().find_map(|k| event.get(*k).and_then(Value::as_i64));
    let txid = str_field("txid");
    let height = height.map(|h| h.to_string());
    let fields = [hash.map(str::to_owned), height, txid.map(str::to_owned)];
    let metadata = METADATA.iter().zip(fields).filter_map(|(k, v)| v.map(|v| ((*k).to_owned(), v))).collect();
    let labels = StreamLabels {
        network: str_field("network"),
        node: str_field("node_id"),
        implementation: None,
        source: "event",
        kind: Some(family),
        replay,
    };
    Entry { stream: labels.render(), ts_ns: us.saturating_mul(1000), line: event.to_string(), metadata }
}

/// Why an encoded entry could not be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed encoded entry: {0}")]
pub struct DecodeError(&'static str);

fn put(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn take<'a>(b: &mut &'a [u8]) -> Result<&'a str, DecodeError> {
    let (len, rest) = b.split_at_checked(4).ok_or(DecodeError("length"))?;
    let n = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
    let (s, rest) = rest.split_at_checked(n).ok_or(DecodeError("string"))?;
    *b = rest;
    std::str::from_utf8(s).map_err(|_| DecodeError("utf-8"))
}

/// The entry as bytes: timestamp, stream, line, then metadata pairs, strings length-prefixed.
pub fn encode(e: &Entry) -> Vec<u8> {
    let mut out = Vec::with_capacity(e.size() + e.stream.len() + 16);
    out.extend_from_slice(&e.ts_ns.to_le_bytes());
    put(&mut out, &e.stream);
    put(&mut out, &e.line);
    for (k, v) in &e.metadata {
        put(&mut out, k);
        put(&mut out, v);
    }
    out
}

/// Reads back what [`encode`] wrote.
pub fn decode(mut b: &[u8]) -> Result<Entry, DecodeError> {
    let (ts, rest) = b.split_at_checked(8).ok_or(DecodeError("timestamp"))?;
    let mut ts_bytes = [0u8; 8];
    ts_bytes.copy_from_slice(ts);
    b = rest;
    let stream = take(&mut b)?.to_owned();
    let line = take(&mut b)?.to_owned();
    let mut metadata = Vec::new();
    while !b.is_empty() {
        let k = take(&mut b)?.to_owned();
        metadata.push((k, take(&mut b)?.to_owned()));
    }
    Ok(Entry { stream, ts_ns: i64::from_le_bytes(ts_bytes), line, metadata })
}

/// The output key that names an entry's source record, `topic/partition/offset`: the sink
/// advances that partition's pushed offset once Loki holds the entry.
pub fn source_key(topic: &str, partition: i32, offset: i64) -> Vec<u8> {
    format!("{topic}/{partition}/{offset}").into_bytes()
}

/// Reads back a [`source_key`].
pub fn parse_source_key(key: &[u8]) -> Option<(String, i32, i64)> {
    let s = std::str::from_utf8(key).ok()?;
    let (rest, offset) = s.rsplit_once('/')?;
    let (topic, partition) = rest.rsplit_once('/')?;
    Some((topic.to_owned(), partition.parse().ok()?, offset.parse().ok()?))
}
