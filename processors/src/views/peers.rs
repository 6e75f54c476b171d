//! getpeerinfo.

use serde::{Deserialize, Serialize};

use super::{ViewError, lenient, parse};

/// One peer of getpeerinfo.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PeerInfo {
    /// The node's peer id.
    #[serde(deserialize_with = "lenient")]
    pub id: Option<i64>,
    /// Address and port.
    #[serde(deserialize_with = "lenient")]
    pub addr: Option<String>,
    /// User agent.
    #[serde(deserialize_with = "lenient")]
    pub subver: Option<String>,
    /// Protocol version.
    #[serde(deserialize_with = "lenient")]
    pub version: Option<i64>,
    /// Whether the peer connected to us.
    #[serde(deserialize_with = "lenient")]
    pub inbound: Option<bool>,
    /// Connection type (Core ≥ 0.21, Litecoin 0.21; absent on BSV).
    #[serde(deserialize_with = "lenient")]
    pub connection_type: Option<String>,
    /// Network (ipv4, ipv6, onion, …; absent on BSV).
    #[serde(deserialize_with = "lenient")]
    pub network: Option<String>,
    /// Last header height in common.
    #[serde(deserialize_with = "lenient")]
    pub synced_headers: Option<i64>,
    /// Last block height in common.
    #[serde(deserialize_with = "lenient")]
    pub synced_blocks: Option<i64>,
    /// Last ping time, s.
    #[serde(deserialize_with = "lenient")]
    pub pingtime: Option<f64>,
    /// Bytes sent.
    #[serde(deserialize_with = "lenient")]
    pub bytessent: Option<u64>,
    /// Bytes received.
    #[serde(deserialize_with = "lenient")]
    pub bytesrecv: Option<u64>,
}

/// Parses a getpeerinfo result (a list).
pub fn peer_info(json: &str) -> Result<Vec<PeerInfo>, ViewError> {
    parse("getpeerinfo", json, true)
}
