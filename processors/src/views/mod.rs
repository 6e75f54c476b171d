//! Typed, tolerant views of the RPC snapshots processors read.
//!
//! A snapshot carries the node's JSON as it answered (`RpcOk.json`); Core, BSV and Litecoin differ
//! in fields and types. Each view keeps the fields bmon uses, as `Option`s: a field the node does
//! not send, or sends with another type, is `None`, never an error or a panic; unknown fields are
//! ignored. Only JSON that is not an object (or an array, for the list methods) is an error.
//! Golden tests read real captures from all three implementations (`tests/fixtures/rpc`).

mod chain;
mod mempool;
mod peers;

pub use chain::{BlockchainInfo, ChainTip, TipStatus, TxOutSetInfo, chain_tips};
pub use mempool::{BlockTemplate, MempoolInfo, MempoolTxids, TemplateTx};
pub use peers::{PeerInfo, peer_info};

use serde::de::{Deserialize, DeserializeOwned, Deserializer};

/// Why a snapshot has no view.
#[derive(Debug, thiserror::Error)]
#[error("{method}: {message}")]
pub struct ViewError {
    /// The RPC method.
    pub method: &'static str,
    /// What was wrong with the JSON.
    pub message: String,
}

/// Parses `json` as the view `T` of `method`, whose answer is an object (or, with `list`, an
/// array of objects).
pub(crate) fn parse<T: DeserializeOwned>(method: &'static str, json: &str, list: bool) -> Result<T, ViewError> {
    let err = |message: String| ViewError { method, message };
    let v: serde_json::Value = serde_json::from_str(json).map_err(|e| err(e.to_string()))?;
    let shape_ok =
        if list { v.as_array().is_some_and(|a| a.iter().all(serde_json::Value::is_object)) } else { v.is_object() };
    if !shape_ok {
        return Err(err(format!("expected {}", if list { "a list of objects" } else { "an object" })));
    }
    serde_json::from_value(v).map_err(|e| err(e.to_string()))
}

/// A field that is `None` when absent, null or of another type.
pub(crate) fn lenient<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<Option<T>, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    Ok(serde_json::from_value(v).ok())
}
