//! The JSON form of an event, one object per line in `bmon parse-log`.

use bmon_schemas::EventBody;
use serde_json::{Map, Value, json};

use crate::{LineHeader, kind};

/// `{"kind": …, "ts_us": …, "line": …, "thread": …, "category": …, <the event's fields>}`. Absent
/// optional fields are left out; `ts_us` is null for a line without a timestamp.
pub fn event_json(line_no: u64, header: &LineHeader<'_>, event: &EventBody) -> Value {
    let body = match event {
        EventBody::UpdateTip(e) => serde_json::to_value(e),
        EventBody::HeaderSeen(e) => serde_json::to_value(e),
        EventBody::BlockReceived(e) => serde_json::to_value(e),
        EventBody::CompactBlockReconstructed(e) => serde_json::to_value(e),
        EventBody::ConnectBlockTimings(e) => serde_json::to_value(e),
        EventBody::BlockConnected(e) => serde_json::to_value(e),
        EventBody::BlockDisconnected(e) => serde_json::to_value(e),
        EventBody::InvalidBlock(e) => serde_json::to_value(e),
        EventBody::BlockDownloadTimeout(e) => serde_json::to_value(e),
        EventBody::MempoolAccept(e) => serde_json::to_value(e),
        EventBody::MempoolReject(e) => serde_json::to_value(e),
        EventBody::PeerConnected(e) => serde_json::to_value(e),
        EventBody::PeerDisconnected(e) => serde_json::to_value(e),
        EventBody::NodeStart(e) => serde_json::to_value(e),
        EventBody::Unknown(e) => serde_json::to_value(e),
        EventBody::ChainTips(e) => serde_json::to_value(e),
        EventBody::RpcCall(e) => serde_json::to_value(e),
    };
    let mut out = Map::new();
    out.insert("kind".into(), json!(kind(event)));
    out.insert("ts_us".into(), json!(header.logged_at_us));
    out.insert("line".into(), json!(line_no));
    if let Some(t) = header.thread {
        out.insert("thread".into(), json!(t));
    }
    if let Some(c) = header.category {
        out.insert("category".into(), json!(c));
    }
    if let Ok(Value::Object(fields)) = body {
        out.extend(fields.into_iter().filter(|(_, v)| !v.is_null()));
    }
    Value::Object(out)
}
