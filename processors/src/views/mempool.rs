//! getmempoolinfo and getblocktemplate.

use serde::{Deserialize, Serialize};

use super::{ViewError, lenient, parse};

/// getmempoolinfo.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MempoolInfo {
    /// Whether the mempool finished loading from disk (absent on BSV).
    #[serde(deserialize_with = "lenient")]
    pub loaded: Option<bool>,
    /// Transactions.
    #[serde(deserialize_with = "lenient")]
    pub size: Option<u64>,
    /// Sum of transaction sizes, bytes.
    #[serde(deserialize_with = "lenient")]
    pub bytes: Option<u64>,
    /// Memory usage, bytes.
    #[serde(deserialize_with = "lenient")]
    pub usage: Option<u64>,
    /// Memory limit, bytes.
    #[serde(deserialize_with = "lenient")]
    pub maxmempool: Option<u64>,
    /// Minimum fee rate to enter, coins/kvB.
    #[serde(deserialize_with = "lenient")]
    pub mempoolminfee: Option<f64>,
    /// Minimum relay fee rate, coins/kvB (absent on BSV).
    #[serde(deserialize_with = "lenient")]
    pub minrelaytxfee: Option<f64>,
    /// Total fees, coins (Core ≥ 23).
    #[serde(deserialize_with = "lenient")]
    pub total_fee: Option<f64>,
}

impl MempoolInfo {
    /// Parses a getmempoolinfo result.
    pub fn parse(json: &str) -> Result<Self, ViewError> {
        parse("getmempoolinfo", json, false)
    }
}

/// One transaction of a block template.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TemplateTx {
    /// Transaction id.
    #[serde(deserialize_with = "lenient")]
    pub txid: Option<String>,
    /// Witness hash (the txid without witness data); left out of the view when the txid is there.
    #[serde(deserialize_with = "lenient", skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// Fee, satoshis.
    #[serde(deserialize_with = "lenient")]
    pub fee: Option<i64>,
    /// Weight (absent on BSV).
    #[serde(deserialize_with = "lenient")]
    pub weight: Option<u64>,
    /// Raw transaction, hex (its length / 2 is the size).
    #[serde(deserialize_with = "lenient", skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// Serialized size, bytes: not sent by nodes; set from `data` when the raw data is dropped
    /// (see [`BlockTemplate::without_data`]).
    #[serde(deserialize_with = "lenient")]
    pub size: Option<u64>,
    /// 1-based indexes of the template's transactions this one spends (left out of the view).
    #[serde(deserialize_with = "lenient", skip_serializing_if = "Option::is_none")]
    pub depends: Option<Vec<u32>>,
}

impl TemplateTx {
    /// Serialized size, bytes, from the raw data (or as noted when it was dropped).
    pub fn size(&self) -> Option<u64> {
        self.size.or_else(|| self.data.as_ref().map(|d| d.len() as u64 / 2))
    }
}

/// getblocktemplate.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BlockTemplate {
    /// Block version.
    #[serde(deserialize_with = "lenient")]
    pub version: Option<i64>,
    /// The block it builds on.
    #[serde(deserialize_with = "lenient")]
    pub previousblockhash: Option<String>,
    /// Height of the block it builds.
    #[serde(deserialize_with = "lenient")]
    pub height: Option<u64>,
    /// Coinbase value (subsidy plus fees), satoshis.
    #[serde(deserialize_with = "lenient")]
    pub coinbasevalue: Option<i64>,
    /// The template's time, s.
    #[serde(deserialize_with = "lenient")]
    pub curtime: Option<i64>,
    /// Compact target.
    #[serde(deserialize_with = "lenient")]
    pub bits: Option<String>,
    /// Its transactions (absent or malformed: empty).
    #[serde(deserialize_with = "lenient")]
    pub transactions: Option<Vec<TemplateTx>>,
}

impl BlockTemplate {
    /// Parses a getblocktemplate result.
    pub fn parse(json: &str) -> Result<Self, ViewError> {
        parse("getblocktemplate", json, false)
    }

    /// Its transactions.
    pub fn txs(&self) -> &[TemplateTx] {
        self.transactions.as_deref().unwrap_or_default()
    }

    /// The template without its transactions' raw data (megabytes on mainnet), their sizes kept,
    /// and without what no processor reads (dependencies, and witness hashes where the txid is
    /// given): the view netviews publishes, parsed by mempool for every poll of every node.
    pub fn without_data(mut self) -> BlockTemplate {
        for t in self.transactions.iter_mut().flatten() {
            t.size = t.size();
            t.data = None;
            t.depends = None;
            if t.txid.is_some() {
                t.hash = None;
            }
        }
        self
    }

    /// Total fees, satoshis (transactions without a fee count as 0).
    pub fn total_fees(&self) -> i64 {
        self.txs().iter().filter_map(|t| t.fee).fold(0i64, i64::saturating_add)
    }
}

/// getrawmempool as the producer publishes it (producers/src/rpc/mempool.rs): a chunk of a full
/// snapshot, or the change since the stream's previous fact. A plain list (the node's own
/// answer, as older producers sent it) reads as a full snapshot in one chunk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum MempoolTxids {
    /// Chunk `chunk` of `chunks` of the node's whole list.
    Full {
        /// 0-based.
        chunk: u32,
        /// How many chunks the snapshot has.
        chunks: u32,
        /// Txids.
        txids: Vec<String>,
    },
    /// The change since the previous fact of the stream.
    Delta {
        /// Txids that entered.
        added: Vec<String>,
        /// Txids that left.
        removed: Vec<String>,
    },
}

/// The producer's form, read directly (one allocation per txid).
#[derive(Deserialize)]
struct RawTxids {
    kind: String,
    chunk: Option<u32>,
    chunks: Option<u32>,
    #[serde(default)]
    txids: Vec<String>,
    #[serde(default)]
    added: Vec<String>,
    #[serde(default)]
    removed: Vec<String>,
}

impl MempoolTxids {
    /// Parses a getrawmempool fact (either form). Entries that are not strings are left out.
    pub fn parse(json: &str) -> Result<Self, ViewError> {
        // The common case first: the producer's object (or netviews' view of it), well typed.
        if let Ok(r) = serde_json::from_str::<RawTxids>(json) {
            match (r.kind.as_str(), r.chunk, r.chunks) {
                ("full", Some(chunk), Some(chunks)) if chunk < chunks => {
                    return Ok(MempoolTxids::Full { chunk, chunks, txids: r.txids });
                }
                ("delta", _, _) => return Ok(MempoolTxids::Delta { added: r.added, removed: r.removed }),
                _ => {}
            }
        }
        Self::parse_lenient(json)
    }

    fn parse_lenient(json: &str) -> Result<Self, ViewError> {
        let err = |message: String| ViewError { method: "getrawmempool", message };
        let v: serde_json::Value = serde_json::from_str(json).map_err(|e| err(e.to_string()))?;
        let strings = |v: &serde_json::Value| -> Vec<String> {
            v.as_array().into_iter().flatten().filter_map(|t| t.as_str().map(str::to_owned)).collect()
        };
        if v.is_array() {
            return Ok(MempoolTxids::Full { chunk: 0, chunks: 1, txids: strings(&v) });
        }
        let count = |k: &str| v.get(k).and_then(serde_json::Value::as_u64).and_then(|n| u32::try_from(n).ok());
        match v.get("kind").and_then(serde_json::Value::as_str) {
            Some("full") => match (count("chunk"), count("chunks")) {
                (Some(chunk), Some(chunks)) if chunk < chunks => {
                    Ok(MempoolTxids::Full { chunk, chunks, txids: strings(&v["txids"]) })
                }
                _ => Err(err("a full snapshot without a valid chunk and chunks".into())),
            },
            Some("delta") => Ok(MempoolTxids::Delta { added: strings(&v["added"]), removed: strings(&v["removed"]) }),
            _ => Err(err("expected a list of txids or a bmon-mempool-v1 object".into())),
        }
    }
}

impl BlockTemplate {
    /// Reads a template view as netviews wrote it (the JSON of a [`BlockTemplate`]): its types
    /// are bmon's own, so a strict read does, several times faster than the lenient one (a
    /// mainnet template has thousands of transactions). Anything else is read leniently.
    pub fn from_view(json: &str) -> Result<Self, ViewError> {
        match serde_json::from_str::<strict::Template>(json) {
            Ok(t) => Ok(t.into()),
            Err(_) => Self::parse(json),
        }
    }
}

/// The strict mirror of the template view.
mod strict {
    use serde::Deserialize;

    #[derive(Deserialize)]
    #[serde(default)]
    #[derive(Default)]
    pub(super) struct Tx {
        txid: Option<String>,
        hash: Option<String>,
        fee: Option<i64>,
        weight: Option<u64>,
        size: Option<u64>,
        depends: Option<Vec<u32>>,
    }

    #[derive(Deserialize, Default)]
    #[serde(default)]
    pub(super) struct Template {
        version: Option<i64>,
        previousblockhash: Option<String>,
        height: Option<u64>,
        coinbasevalue: Option<i64>,
        curtime: Option<i64>,
        bits: Option<String>,
        transactions: Option<Vec<Tx>>,
    }

    impl From<Template> for super::BlockTemplate {
        fn from(t: Template) -> Self {
            super::BlockTemplate {
                version: t.version,
                previousblockhash: t.previousblockhash,
                height: t.height,
                coinbasevalue: t.coinbasevalue,
                curtime: t.curtime,
                bits: t.bits,
                transactions: t.transactions.map(|txs| {
                    txs.into_iter()
                        .map(|x| super::TemplateTx {
                            txid: x.txid,
                            hash: x.hash,
                            fee: x.fee,
                            weight: x.weight,
                            data: None,
                            size: x.size,
                            depends: x.depends,
                        })
                        .collect()
                }),
            }
        }
    }
}
