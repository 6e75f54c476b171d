//! Tip, arrival, connect-timing and validation lines.

use bmon_schemas::{
    BlockConnected, BlockDisconnected, BlockDownloadTimeout, BlockReceived, CompactBlockReconstructed,
    ConnectBlockTimings, EventBody, HeaderSeen, InvalidBlock, PeerDisconnected, UpdateTip,
};

use crate::scan::{field, float_prefix, hash_at, hash_field, int_field, int_prefix, millis_to_micros};
use crate::time::parse_stamp;

/// `UpdateTip: new best=<hash> height=N version=0x… log2_work=F tx=N date='…' progress=F
/// cache=F MiB(Ntxo) [warning='…']`; also the unquoted-date form of Core 0.10/0.11.
pub fn update_tip(m: &str) -> Option<EventBody> {
    let rest = m.strip_prefix("UpdateTip: ")?;
    let hash = hash_field(rest, "best")?;
    let height = int_field(rest, "height")?;
    let block_time_us = rest.find("date=").and_then(|i| {
        let v = &rest[i + 5..];
        let v = v.strip_prefix('\'').unwrap_or(v);
        parse_stamp(v.as_bytes()).map(|s| s.micros)
    });
    let (cache_mib, cache_txo) = match field(rest, "cache") {
        Some(c) => (float_prefix(c), c.find('(').and_then(|i| int_prefix(&c[i + 1..]))),
        None => (None, None),
    };
    let warning = rest.find("warning='").and_then(|i| {
        let w = &rest[i + 9..];
        w.rfind('\'').map(|end| w[..end].to_owned())
    });
    Some(EventBody::UpdateTip(UpdateTip {
        hash: hash.to_owned(),
        height,
        log2_work: field(rest, "log2_work").and_then(float_prefix),
        tx_count: int_field(rest, "tx"),
        block_time_us,
        progress: field(rest, "progress").and_then(float_prefix),
        cache_mib,
        cache_txo,
        warning,
    }))
}

/// `Saw new header hash=… height=N [peer=N]` and `Saw new cmpctblock header hash=… height=N peer=N`.
pub fn header_seen(m: &str) -> Option<EventBody> {
    let (compact, rest) = if let Some(r) = m.strip_prefix("Saw new header ") {
        (false, r)
    } else {
        (true, m.strip_prefix("Saw new cmpctblock header ")?)
    };
    Some(EventBody::HeaderSeen(HeaderSeen {
        hash: hash_field(rest, "hash")?.to_owned(),
        height: int_field(rest, "height"),
        peer: int_field(rest, "peer"),
        compact,
    }))
}

/// `received block <hash> peer=N`.
pub fn block_received(m: &str) -> Option<EventBody> {
    let rest = m.strip_prefix("received block ")?;
    Some(EventBody::BlockReceived(BlockReceived { hash: hash_at(rest)?.to_owned(), peer: int_field(rest, "peer") }))
}

/// `Successfully reconstructed block <hash> with N txn prefilled, N txn from mempool (incl at
/// least N from extra pool) and N txn [(N bytes) ]requested`.
pub fn compact_reconstructed(m: &str) -> Option<EventBody> {
    let rest = m.strip_prefix("Successfully reconstructed block ")?;
    let hash = hash_at(rest)?;
    let after = |needle: &str| rest.find(needle).and_then(|i| int_prefix(&rest[i + needle.len()..]));
    Some(EventBody::CompactBlockReconstructed(CompactBlockReconstructed {
        hash: hash.to_owned(),
        prefilled: after(" with ")?,
        from_mempool: after("prefilled, ")?,
        from_extra_pool: after("incl at least "),
        requested: after(" and ")?,
    }))
}

/// Bench lines: `- Connect block: 111.80ms [...]`, `- Connect 1996 transactions: 34.40ms (...)`,
/// `- Verify 4055 txins: …`; BSV's `- Disconnect block: 0.03ms, hash=…, height=N` is also a
/// disconnection (the only one BSV logs for `invalidateblock`).
pub fn timing(trimmed: &str, out: &mut Vec<EventBody>) -> bool {
    let Some(rest) = trimmed.strip_prefix("- ") else { return false };
    let Some((stage, value)) = rest.split_once(": ") else { return false };
    let Some((duration_us, tail)) = millis_to_micros(value) else { return false };
    let (stage, count) = counted_stage(stage);
    out.push(EventBody::ConnectBlockTimings(ConnectBlockTimings { stage: stage.to_owned(), duration_us, count }));
    if stage == "Disconnect block"
        && let Some(hash) = hash_field(tail, "hash")
    {
        out.push(EventBody::BlockDisconnected(BlockDisconnected {
            hash: Some(hash.to_owned()),
            height: int_field(tail, "height"),
        }));
    }
    true
}

/// BSV: `Got compact block for <hash> from peer=N`, its record of a compact block (and so the
/// header) arriving.
pub fn bsv_compact_block(m: &str) -> Option<EventBody> {
    let rest = m.strip_prefix("Got compact block for ")?;
    Some(EventBody::HeaderSeen(HeaderSeen {
        hash: hash_at(rest)?.to_owned(),
        height: None,
        peer: int_field(rest, "peer"),
        compact: true,
    }))
}

/// BSV: `Performing best chain tip <hash> rollback to older fork point <hash>.`, logged
/// unconditionally when the active tip is disconnected (with `-debug=bench` the tip's
/// `- Disconnect block` line reports it again, with its height).
pub fn bsv_rollback(m: &str) -> Option<EventBody> {
    let rest = m.strip_prefix("Performing best chain tip ")?;
    let hash = hash_at(rest)?;
    rest[64..]
        .starts_with(" rollback")
        .then(|| EventBody::BlockDisconnected(BlockDisconnected { hash: Some(hash.to_owned()), height: None }))
}

/// `Connect 1996 transactions` → (`Connect transactions`, 1996); `Verify 4055 txins` likewise.
fn counted_stage(stage: &str) -> (&str, Option<i64>) {
    for (prefix, suffix, name) in
        [("Connect ", " transactions", "Connect transactions"), ("Verify ", " txins", "Verify txins")]
    {
        if let Some(n) = stage.strip_prefix(prefix).and_then(|s| s.strip_suffix(suffix)).and_then(int_prefix) {
            return (name, Some(n));
        }
    }
    (stage, None)
}

/// `BlockConnected: block hash=… block height=N` (the validation callback, not its `Enqueuing`
/// announcement, so each connection gives one event).
pub fn block_connected(m: &str) -> Option<EventBody> {
    if let Some(rest) = m.strip_prefix("BlockConnected: ") {
        return Some(EventBody::BlockConnected(BlockConnected {
            hash: hash_field(rest, "hash").map(str::to_owned),
            height: int_field(rest, "height"),
        }));
    }
    let rest = m.strip_prefix("BlockDisconnected: ")?;
    Some(EventBody::BlockDisconnected(BlockDisconnected {
        hash: hash_field(rest, "hash").map(str::to_owned),
        height: int_field(rest, "height"),
    }))
}

/// Strips a trailing ` (code N)`.
pub fn split_code(s: &str) -> (&str, Option<i64>) {
    if let Some(i) = s.rfind(" (code ")
        && s.ends_with(')')
        && let Some(code) = int_prefix(&s[i + 7..])
    {
        return (&s[..i], Some(code));
    }
    (s, None)
}

/// Invalid blocks: `InvalidChainFound: invalid block=…`, `[ERROR: ]ConnectTip: ConnectBlock <hash>
/// failed, <reason>` (BSV: `failed (<reason> (code N))`), `[ERROR: ]ConnectBlock(): <reason>`, `ERROR: AcceptBlockHeader: block <hash>
/// is marked invalid`, `ProcessNewBlock: AcceptBlock FAILED (<reason>)`.
pub fn invalid_block(m: &str) -> Option<EventBody> {
    let invalid = |hash: Option<&str>, height, reason: &str, origin: &str| {
        Some(EventBody::InvalidBlock(InvalidBlock {
            hash: hash.map(str::to_owned),
            height,
            reason: reason.to_owned(),
            origin: origin.to_owned(),
        }))
    };
    if let Some(rest) = m.strip_prefix("InvalidChainFound: invalid block=") {
        return invalid(hash_at(rest), int_field(rest, "height"), "", "InvalidChainFound");
    }
    let m = m.strip_prefix("ERROR: ").unwrap_or(m);
    if let Some(rest) =
        m.strip_prefix("ConnectTip: ConnectBlock ").or_else(|| m.strip_prefix("ConnectTip(): ConnectBlock "))
    {
        // Core: `… failed, <reason>, <detail>`; BSV: `… failed (<reason> (code N))`.
        let reason = match (rest.split_once(" failed, "), rest.split_once(" failed (")) {
            (Some((_, r)), _) => r,
            (None, Some((_, r))) => r.strip_suffix(')').unwrap_or(r),
            (None, None) => "",
        };
        return invalid(hash_at(rest), None, split_code(reason).0, "ConnectTip");
    }
    if let Some(rest) = m.strip_prefix("ConnectBlock(): ").or_else(|| m.strip_prefix("ConnectBlock: ")) {
        return invalid(None, None, split_code(rest).0, "ConnectBlock");
    }
    if let Some(rest) = m.strip_prefix("AcceptBlockHeader: block ") {
        let hash = hash_at(rest)?;
        return invalid(Some(hash), None, rest[64..].trim(), "AcceptBlockHeader");
    }
    let rest = m.strip_prefix("ProcessNewBlock: AcceptBlock FAILED (")?;
    invalid(None, None, split_code(rest.strip_suffix(')').unwrap_or(rest)).0, "AcceptBlock")
}

/// `Timeout downloading block <hash> from peer=N, disconnecting` (and `…block <hash>, disconnecting
/// peer=N`): a timeout and a disconnection.
pub fn download_timeout(m: &str, out: &mut Vec<EventBody>) -> bool {
    let Some(rest) = m.strip_prefix("Timeout downloading block ") else { return false };
    let peer = int_field(rest, "peer");
    out.push(EventBody::BlockDownloadTimeout(BlockDownloadTimeout { hash: hash_at(rest).map(str::to_owned), peer }));
    if let (Some(peer), true) = (peer, rest.contains("disconnecting")) {
        out.push(EventBody::PeerDisconnected(PeerDisconnected {
            peer,
            reason: Some("block download timeout".to_owned()),
        }));
    }
    true
}
