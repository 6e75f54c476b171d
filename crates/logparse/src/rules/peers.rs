//! Peer connections and node start-up.

use bmon_schemas::{EventBody, NodeStart, PeerConnected, PeerDisconnected};

use crate::scan::{int_field, int_prefix};

/// The text after `label: ` up to the next `, ` (or the end).
fn labelled<'a>(s: &'a str, label: &str) -> Option<&'a str> {
    let i = s.find(label)?;
    let v = &s[i + label.len()..];
    Some(v.split(", ").next().unwrap_or(v))
}

/// `New <type> peer connected: [transport: v2, ]version: N, [subver: …, ]blocks=N, peer=N[,
/// peeraddr=…][ (<type>)]`.
pub fn connected(m: &str) -> Option<EventBody> {
    let rest = m.strip_prefix("New ")?;
    let (kind, fields) = rest.split_once(" peer connected: ")?;
    let peer = int_field(fields, "peer")?;
    let mut conn_type = kind.trim().to_owned();
    if let Some(open) = fields.rfind(" (")
        && fields.ends_with(')')
    {
        let detail = &fields[open + 2..fields.len() - 1];
        conn_type = format!("{conn_type}-{detail}");
    }
    Some(EventBody::PeerConnected(PeerConnected {
        peer,
        addr: crate::scan::field(fields, "peeraddr").map(str::to_owned),
        version: labelled(fields, "version: ").and_then(int_prefix),
        subver: labelled(fields, "subver: ").map(str::to_owned),
        inbound: kind.starts_with("inbound"),
        conn_type: Some(conn_type),
    }))
}

/// `[<reason>, ]disconnecting peer=N`.
pub fn disconnected(m: &str) -> Option<EventBody> {
    let i = m.find("disconnecting peer=")?;
    let peer = int_prefix(&m[i + 19..])?;
    let reason = m[..i].trim_end().trim_end_matches(',').trim();
    Some(EventBody::PeerDisconnected(PeerDisconnected {
        peer,
        reason: (!reason.is_empty()).then(|| reason.to_owned()),
    }))
}

/// `Bitcoin Core version v31.99.0-… (release build)`, `Bitcoin SV version v1.0.13-dev`, `Litecoin
/// Core version v0.21.2.1-…`, `Bitcoin version v0.10.0` and the `Daemon` variants.
pub fn node_start(m: &str) -> Option<EventBody> {
    if !(m.starts_with("Bitcoin") || m.starts_with("Litecoin")) {
        return None;
    }
    let i = m.find(" version ")?;
    let name = &m[..i];
    if name.split(' ').count() > 3 {
        return None;
    }
    let version = m[i + 9..].split(' ').next()?;
    if !version.starts_with(['v', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9']) {
        return None;
    }
    Some(EventBody::NodeStart(NodeStart { version: format!("{name} {version}") }))
}
