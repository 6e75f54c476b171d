//! getblockchaininfo, getchaintips and gettxoutsetinfo.

use serde::{Deserialize, Serialize};

use super::{ViewError, lenient, parse};

/// getblockchaininfo.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BlockchainInfo {
    /// Chain name (main, test, signet, regtest).
    #[serde(deserialize_with = "lenient")]
    pub chain: Option<String>,
    /// Height of the active tip.
    #[serde(deserialize_with = "lenient")]
    pub blocks: Option<u64>,
    /// Height of the best known header.
    #[serde(deserialize_with = "lenient")]
    pub headers: Option<u64>,
    /// Hash of the active tip.
    #[serde(deserialize_with = "lenient")]
    pub bestblockhash: Option<String>,
    /// Difficulty.
    #[serde(deserialize_with = "lenient")]
    pub difficulty: Option<f64>,
    /// The tip's block time (absent on BSV), s.
    #[serde(deserialize_with = "lenient")]
    pub time: Option<i64>,
    /// Median time past, s.
    #[serde(deserialize_with = "lenient")]
    pub mediantime: Option<i64>,
    /// Verification progress, 0 to 1.
    #[serde(deserialize_with = "lenient")]
    pub verificationprogress: Option<f64>,
    /// In initial block download (absent on BSV).
    #[serde(deserialize_with = "lenient")]
    pub initialblockdownload: Option<bool>,
    /// Total work of the active chain, hex.
    #[serde(deserialize_with = "lenient")]
    pub chainwork: Option<String>,
    /// Whether the node prunes.
    #[serde(deserialize_with = "lenient")]
    pub pruned: Option<bool>,
    /// Warnings: a string before Core 28, a list since.
    #[serde(deserialize_with = "lenient")]
    pub warnings: Option<serde_json::Value>,
}

impl BlockchainInfo {
    /// Parses a getblockchaininfo result.
    pub fn parse(json: &str) -> Result<Self, ViewError> {
        parse("getblockchaininfo", json, false)
    }

    /// The warnings as a list, whichever form the node sends (empty strings dropped).
    pub fn warning_list(&self) -> Vec<String> {
        match &self.warnings {
            Some(serde_json::Value::String(s)) if !s.is_empty() => vec![s.clone()],
            Some(serde_json::Value::Array(a)) => a.iter().filter_map(|w| w.as_str().map(str::to_owned)).collect(),
            _ => Vec::new(),
        }
    }
}

/// A chain tip's status in getchaintips.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TipStatus {
    /// The active chain's tip.
    Active,
    /// A fully validated branch that is not active.
    ValidFork,
    /// Headers and data valid, not fully validated.
    ValidHeaders,
    /// Headers only.
    HeadersOnly,
    /// A branch with at least one invalid block.
    Invalid,
    /// A status this version of bmon does not know.
    Other(String),
}

impl TipStatus {
    /// The status as the node writes it.
    pub fn as_str(&self) -> &str {
        match self {
            TipStatus::Active => "active",
            TipStatus::ValidFork => "valid-fork",
            TipStatus::ValidHeaders => "valid-headers",
            TipStatus::HeadersOnly => "headers-only",
            TipStatus::Invalid => "invalid",
            TipStatus::Other(s) => s,
        }
    }
}

impl Serialize for TipStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for TipStatus {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(match s.as_str() {
            "active" => TipStatus::Active,
            "valid-fork" => TipStatus::ValidFork,
            "valid-headers" => TipStatus::ValidHeaders,
            "headers-only" => TipStatus::HeadersOnly,
            "invalid" => TipStatus::Invalid,
            _ => TipStatus::Other(s),
        })
    }
}

/// One entry of getchaintips.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ChainTip {
    /// Height.
    #[serde(deserialize_with = "lenient")]
    pub height: Option<u64>,
    /// Block hash.
    #[serde(deserialize_with = "lenient")]
    pub hash: Option<String>,
    /// Blocks from the tip down to the active chain (0 for the active tip).
    #[serde(deserialize_with = "lenient")]
    pub branchlen: Option<u64>,
    /// Status.
    #[serde(deserialize_with = "lenient")]
    pub status: Option<TipStatus>,
}

/// Parses a getchaintips result (a list).
pub fn chain_tips(json: &str) -> Result<Vec<ChainTip>, ViewError> {
    parse("getchaintips", json, true)
}

/// gettxoutsetinfo.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TxOutSetInfo {
    /// Height of the block the set is at.
    #[serde(deserialize_with = "lenient")]
    pub height: Option<u64>,
    /// That block's hash.
    #[serde(deserialize_with = "lenient")]
    pub bestblock: Option<String>,
    /// Unspent outputs.
    #[serde(deserialize_with = "lenient")]
    pub txouts: Option<u64>,
    /// Transactions with unspent outputs (absent with the coinstatsindex).
    #[serde(deserialize_with = "lenient")]
    pub transactions: Option<u64>,
    /// Total amount, in coins.
    #[serde(deserialize_with = "lenient")]
    pub total_amount: Option<f64>,
    /// Core's `hash_serialized_3` (or Litecoin's `_2`, BSV's `hash_serialized`), when asked for.
    #[serde(deserialize_with = "lenient", alias = "hash_serialized_2", alias = "hash_serialized")]
    pub hash_serialized_3: Option<String>,
    /// The MuHash of the set, when asked for.
    #[serde(deserialize_with = "lenient")]
    pub muhash: Option<String>,
}

impl TxOutSetInfo {
    /// Parses a gettxoutsetinfo result.
    pub fn parse(json: &str) -> Result<Self, ViewError> {
        parse("gettxoutsetinfo", json, false)
    }
}
