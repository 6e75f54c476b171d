//! Mempool accepts and rejects, Core and BSV forms.

use bmon_schemas::{EventBody, MempoolAccept, MempoolReject};

use crate::rules::chain::split_code;
use crate::scan::{hash_at, hash_field, int_field, int_prefix};

/// `(poolsz N txn, N kB)` or BSV's `(poolsz N txn (pri=…,sec=…), N kB)`: (transactions, bytes).
fn pool_size(s: &str) -> (Option<i64>, Option<i64>) {
    let Some(i) = s.find("poolsz ") else { return (None, None) };
    let rest = &s[i + 7..];
    let txs = int_prefix(rest);
    let kb = rest.find(" kB").and_then(|end| {
        let head = &rest[..end];
        // Past the last non-digit, which may be a multi-byte character (garbled lines).
        let start = head.char_indices().rev().find(|(_, c)| !c.is_ascii_digit()).map_or(0, |(p, c)| p + c.len_utf8());
        int_prefix(&head[start..])
    });
    (txs, kb.map(|k| k * 1000))
}

/// Core: `AcceptToMemoryPool: peer=N: accepted <txid> [(wtxid=<wtxid>) ](poolsz N txn, N kB)`.
pub fn core_accept(m: &str) -> Option<EventBody> {
    let rest = m.strip_prefix("AcceptToMemoryPool: ")?;
    let i = rest.find("accepted ")?;
    let txid = hash_at(&rest[i + 9..])?;
    let (pool_size, pool_bytes) = pool_size(rest);
    Some(EventBody::MempoolAccept(MempoolAccept {
        txid: txid.to_owned(),
        wtxid: hash_field(rest, "wtxid").map(str::to_owned),
        peer: int_field(rest, "peer"),
        pool_size,
        pool_bytes,
    }))
}

/// The reason text of a reject: (token, detail, code, fee rate).
fn reject(txid: &str, wtxid: Option<&str>, peer: Option<i64>, text: &str) -> EventBody {
    let (text, code) = split_code(text.trim());
    let (reason, detail) = match text.split_once(", ") {
        Some((r, d)) => (r, Some(d)),
        None => (text, None),
    };
    let fee_rate = detail.and_then(|d| d.find("feerate ")).and_then(|i| {
        let d = detail.unwrap_or_default();
        let mut words = d[i + 8..].split(' ');
        match (words.next(), words.next()) {
            (Some(v), Some(unit)) => Some(format!("{v} {}", unit.trim_end_matches([',', ';']))),
            _ => None,
        }
    });
    EventBody::MempoolReject(MempoolReject {
        txid: txid.to_owned(),
        wtxid: wtxid.map(str::to_owned),
        peer,
        reason: reason.to_owned(),
        code,
        detail: detail.map(str::to_owned),
        fee_rate,
    })
}

/// Core: `<txid> [(wtxid=<wtxid>) ]from peer=N was not accepted[ into the memory pool]: <reason>[,
/// <detail>][ (code N)]`.
pub fn core_reject(m: &str) -> Option<EventBody> {
    let txid = hash_at(m)?;
    let rest = &m[64..];
    let i = rest.find(" was not accepted")?;
    let head = &rest[..i];
    let tail = &rest[i + 17..];
    let tail = tail.strip_prefix(" into the memory pool").unwrap_or(tail);
    let text = tail.strip_prefix(": ")?;
    Some(reject(txid, hash_field(head, "wtxid"), int_field(head, "peer"), text))
}

/// BSV: `<source>: [non]standard txn= <txid> accepted (poolsz …)` and `… rejected <reason> (code N)`.
pub fn bsv_txn(m: &str) -> Option<EventBody> {
    let i = m.find("standard txn= ")?;
    let rest = &m[i + 14..];
    let txid = hash_at(rest)?;
    let after = rest[64..].trim_start();
    if let Some(tail) = after.strip_prefix("accepted") {
        let (pool_size, pool_bytes) = pool_size(tail);
        return Some(EventBody::MempoolAccept(MempoolAccept {
            txid: txid.to_owned(),
            wtxid: None,
            peer: None,
            pool_size,
            pool_bytes,
        }));
    }
    let text = after.strip_prefix("rejected ")?;
    Some(reject(txid, None, None, text))
}

/// Core with `-debug=validation`: `Enqueuing TransactionAddedToMempool: txid=… wtxid=…`, logged
/// synchronously for every accepted transaction, including the node's own (RPC or wallet)
/// submissions, which no `AcceptToMemoryPool` line reports. A relayed transaction is therefore
/// reported twice (this line without a peer, and `AcceptToMemoryPool` with one).
pub fn validation_accept(m: &str) -> Option<EventBody> {
    let rest = m.strip_prefix("Enqueuing TransactionAddedToMempool: ")?;
    Some(EventBody::MempoolAccept(MempoolAccept {
        txid: hash_field(rest, "txid")?.to_owned(),
        wtxid: hash_field(rest, "wtxid").map(str::to_owned),
        peer: None,
        pool_size: None,
        pool_bytes: None,
    }))
}
