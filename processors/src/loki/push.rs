//! Pure: a batch of entries as a Loki push request body, protobuf + snappy (Loki's native
//! form) or JSON, with entries grouped by stream and sorted by time within each; and how a
//! push's HTTP status is to be treated.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::entry::Entry;

/// The push request's encoding.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// `application/x-protobuf`, snappy block compression.
    #[default]
    Protobuf,
    /// `application/json`.
    Json,
}

impl Format {
    /// The Content-Type header.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Protobuf => "application/x-protobuf",
            Format::Json => "application/json",
        }
    }
}

/// logproto.PushRequest.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PushRequest {
    /// The streams.
    #[prost(message, repeated, tag = "1")]
    pub streams: Vec<StreamAdapter>,
}

/// logproto.StreamAdapter.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StreamAdapter {
    /// `{name="value",…}`.
    #[prost(string, tag = "1")]
    pub labels: String,
    /// Its entries, oldest first.
    #[prost(message, repeated, tag = "2")]
    pub entries: Vec<EntryAdapter>,
}

/// logproto.EntryAdapter.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EntryAdapter {
    /// When.
    #[prost(message, optional, tag = "1")]
    pub timestamp: Option<Timestamp>,
    /// The line.
    #[prost(string, tag = "2")]
    pub line: String,
    /// Structured metadata.
    #[prost(message, repeated, tag = "3")]
    pub structured_metadata: Vec<LabelPair>,
}

/// google.protobuf.Timestamp.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Timestamp {
    /// Seconds since the epoch.
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    /// Nanoseconds within the second.
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

/// logproto.LabelPairAdapter.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LabelPair {
    /// Name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// Entries grouped by stream (streams in label order), each stream's sorted by time; entries
/// of equal time keep their order.
pub fn group<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> BTreeMap<&'a str, Vec<&'a Entry>> {
    let mut streams: BTreeMap<&str, Vec<&Entry>> = BTreeMap::new();
    for e in entries {
        streams.entry(e.stream.as_str()).or_default().push(e);
    }
    for list in streams.values_mut() {
        list.sort_by_key(|e| e.ts_ns);
    }
    streams
}

/// The request body for `entries` in `format`.
pub fn body<'a>(format: Format, entries: impl IntoIterator<Item = &'a Entry>) -> Vec<u8> {
    let streams = group(entries);
    match format {
        Format::Protobuf => {
            let request = PushRequest {
                streams: streams
                    .into_iter()
                    .map(|(labels, list)| StreamAdapter {
                        labels: labels.to_owned(),
                        entries: list
                            .into_iter()
                            .map(|e| EntryAdapter {
                                timestamp: Some(Timestamp {
                                    seconds: e.ts_ns.div_euclid(1_000_000_000),
                                    nanos: e.ts_ns.rem_euclid(1_000_000_000) as i32,
                                }),
                                line: e.line.clone(),
                                structured_metadata: e
                                    .metadata
                                    .iter()
                                    .map(|(k, v)| LabelPair { name: k.clone(), value: v.clone() })
                                    .collect(),
                            })
                            .collect(),
                    })
                    .collect(),
            };
            let raw = prost::Message::encode_to_vec(&request);
            // Compressing into a buffer of the bound's size cannot fail.
            snap::raw::Encoder::new().compress_vec(&raw).unwrap_or_default()
        }
        Format::Json => {
            let streams: Vec<serde_json::Value> = streams
                .into_iter()
                .map(|(labels, list)| {
                    let values: Vec<serde_json::Value> = list
                        .into_iter()
                        .map(|e| {
                            let meta: serde_json::Map<String, serde_json::Value> =
                                e.metadata.iter().map(|(k, v)| (k.clone(), v.clone().into())).collect();
                            if meta.is_empty() {
                                serde_json::json!([e.ts_ns.to_string(), e.line])
                            } else {
                                serde_json::json!([e.ts_ns.to_string(), e.line, meta])
                            }
                        })
                        .collect();
                    serde_json::json!({ "stream": parse_labels(labels), "values": values })
                })
                .collect();
            serde_json::json!({ "streams": streams }).to_string().into_bytes()
        }
    }
}

/// Reads back labels rendered by [`super::entry::StreamLabels::render`] (for the JSON form,
/// which carries them as an object).
pub fn parse_labels(rendered: &str) -> serde_json::Map<String, serde_json::Value> {
    let mut out = serde_json::Map::new();
    let inner = rendered.trim_start_matches('{').trim_end_matches('}');
    let mut rest = inner;
    while let Some((name, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => {}
                },
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        out.insert(name.trim_start_matches(',').to_owned(), value.into());
        rest = &after[end..];
    }
    out
}

/// What a push's answer means for its batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Loki holds the batch.
    Accepted,
    /// Try the same batch again after a backoff: rate limited, a server error, or credentials
    /// or an address an operator must fix (dead-lettering every line meanwhile would lose the
    /// logs the fix should let through). The reason is a bounded label.
    Retry(&'static str),
    /// Loki refused the content: split the batch to find the entries it refuses, and
    /// dead-letter those. The reason is a bounded label.
    Refused(&'static str),
}

/// The verdict for HTTP `status` with response `body`.
pub fn verdict(status: u16, body: &str) -> Verdict {
    let b = body.to_ascii_lowercase();
    match status {
        200..=299 => Verdict::Accepted,
        429 => Verdict::Retry("rate_limited"),
        401 | 403 | 407 => Verdict::Retry("unauthorized"),
        404 | 405 => Verdict::Retry("not_found"),
        408 => Verdict::Retry("timeout"),
        413 => Verdict::Refused("too_large"),
        400..=499 if b.contains("too far behind") || b.contains("out of order") || b.contains("too old") => {
            Verdict::Refused("too_far_behind")
        }
        400..=499 if b.contains("too large") || b.contains("too long") || b.contains("exceed") => {
            Verdict::Refused("too_large")
        }
        400..=499 if b.contains("label") => Verdict::Refused("invalid_labels"),
        400..=499 => Verdict::Refused("bad_request"),
        _ => Verdict::Retry("server_error"),
    }
}
