//! Peer connections, node start-up and RPC calls.

use bmon_schemas::{EventBody, NodeStart, PeerConnected, PeerDisconnected, RpcCall};

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
    let conn_type = connection_type(kind, fields);
    Some(EventBody::PeerConnected(PeerConnected {
        peer,
        addr: crate::scan::field(fields, "peeraddr").map(str::to_owned),
        version: labelled(fields, "version: ").and_then(int_prefix),
        subver: labelled(fields, "subver: ").map(str::to_owned),
        inbound: kind.starts_with("inbound"),
        conn_type: Some(conn_type.to_owned()),
    }))
}

/// The connection type in v31's words, from `New <words> peer connected: … [(<type>)]`: the
/// transport (`v1`, `v2`) is dropped, and the 0.21–v24 form `outbound … (manual)` becomes
/// `manual`, `(full-relay)` `outbound-full-relay`, `(block-relay)` `block-relay-only`.
fn connection_type<'a>(kind: &'a str, fields: &'a str) -> &'a str {
    let words = kind.trim().trim_end_matches(" v1").trim_end_matches(" v2");
    let detail = fields.rfind(" (").filter(|_| fields.ends_with(')')).map(|i| &fields[i + 2..fields.len() - 1]);
    match (words, detail) {
        ("outbound", Some("full-relay")) => "outbound-full-relay",
        ("outbound", Some("block-relay")) => "block-relay-only",
        ("outbound", Some(other)) => other,
        (w, _) => w,
    }
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

/// `ThreadRPCServer method=<method> user=<user>` (Core and Litecoin with `-debug=rpc`).
pub fn rpc_call(m: &str) -> Option<EventBody> {
    let rest = m.strip_prefix("ThreadRPCServer method=")?;
    let method = rest.split(' ').next().filter(|s| !s.is_empty())?;
    Some(EventBody::RpcCall(RpcCall { method: method.to_owned() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpc_calls() {
        let e = rpc_call("ThreadRPCServer method=invalidateblock user=__cookie__");
        assert_eq!(e, Some(EventBody::RpcCall(RpcCall { method: "invalidateblock".into() })));
        assert_eq!(rpc_call("ThreadRPCServer method= user=x"), None);
    }

    fn conn_type(m: &str) -> Option<String> {
        match connected(m) {
            Some(EventBody::PeerConnected(p)) => p.conn_type,
            _ => None,
        }
    }

    #[test]
    fn connection_types_use_v31_names() {
        assert_eq!(
            conn_type("New outbound peer connected: version: 70016, blocks=3, peer=0 (manual)").as_deref(),
            Some("manual")
        );
        assert_eq!(
            conn_type("New outbound peer connected: version: 70016, blocks=0, peer=0 (full-relay)").as_deref(),
            Some("outbound-full-relay")
        );
        assert_eq!(
            conn_type("New outbound peer connected: version: 70016, blocks=0, peer=0 (block-relay)").as_deref(),
            Some("block-relay-only")
        );
        assert_eq!(
            conn_type("New outbound-full-relay v2 peer connected: transport: v2, version: 70016, blocks=1, peer=3")
                .as_deref(),
            Some("outbound-full-relay")
        );
        assert_eq!(conn_type("New inbound v1 peer connected: version: 70016, peer=4").as_deref(), Some("inbound"));
    }
}
