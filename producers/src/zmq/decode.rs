//! Turning a ZMQ notification body into a fact payload. Pure.

use bitcoincore_rpc::bitcoin::block::Header;
use bitcoincore_rpc::bitcoin::consensus::Decodable;
use bitcoincore_rpc::bitcoin::{Transaction, VarInt};
use bmon_schemas::{ZmqHash, ZmqOther, ZmqPayload, ZmqRawBlock, ZmqRawTx, ZmqSequence};

/// A body that does not fit its topic. The producer still publishes it (as `ZmqOther`), so nothing
/// is lost, and counts it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{topic}: {reason}")]
pub struct DecodeError {
    /// The topic.
    pub topic: String,
    /// What did not fit.
    pub reason: String,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Decodes `body` of `topic`. Unknown topics become `ZmqOther`.
pub fn decode(topic: &str, body: &[u8]) -> Result<ZmqPayload, DecodeError> {
    let err = |reason: String| DecodeError { topic: topic.to_owned(), reason };
    // BSV's second-generation topics (hashtx2, rawblock2, ...) share the first ones' bodies.
    let base = topic.trim_end_matches('2');
    match base {
        "hashblock" | "hashtx" => {
            if body.len() != 32 {
                return Err(err(format!("{} bytes, want 32", body.len())));
            }
            // Published in display order already.
            Ok(ZmqPayload::Hash(ZmqHash { hash: hex(body) }))
        }
        "rawblock" => {
            let mut r = body;
            let header = Header::consensus_decode(&mut r).map_err(|e| err(format!("header: {e}")))?;
            let count = VarInt::consensus_decode(&mut r).map_err(|e| err(format!("tx count: {e}")))?;
            Ok(ZmqPayload::RawBlock(ZmqRawBlock {
                hash: header.block_hash().to_string(),
                header: body[..80].to_vec(),
                size: body.len() as i64,
                tx_count: count.0 as i64,
            }))
        }
        "rawtx" => {
            let mut r = body;
            let tx = Transaction::consensus_decode(&mut r).map_err(|e| err(format!("tx: {e}")))?;
            Ok(ZmqPayload::RawTx(ZmqRawTx { txid: tx.compute_txid().to_string(), size: body.len() as i64 }))
        }
        "sequence" => {
            if body.len() != 33 && body.len() != 41 {
                return Err(err(format!("{} bytes, want 33 or 41", body.len())));
            }
            let label = (body[32] as char).to_string();
            let mempool_sequence =
                body.get(33..41).and_then(|b| b.try_into().ok()).map(|b: [u8; 8]| u64::from_le_bytes(b) as i64);
            Ok(ZmqPayload::Sequence(ZmqSequence { hash: hex(&body[..32]), label, mempool_sequence }))
        }
        _ => Ok(ZmqPayload::Other(ZmqOther { body: body.to_vec() })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Bitcoin's genesis block: header, one transaction.
    const GENESIS: &str = "0100000000000000000000000000000000000000000000000000000000000000000000003ba3edfd7a7b12b27ac72c3e67768f617fc81bc3888a51323a9fb8aa4b1e5e4a29ab5f49ffff001d1dac2b7c0101000000010000000000000000000000000000000000000000000000000000000000000000ffffffff4d04ffff001d0104455468652054696d65732030332f4a616e2f32303039204368616e63656c6c6f72206f6e206272696e6b206f66207365636f6e64206261696c6f757420666f722062616e6b73ffffffff0100f2052a01000000434104678afdb0fe5548271967f1a67130b7105cd6a828e03909a67962e0ea1f61deb649f6bc3f4cef38c4f35504e51ec112de5c384df7ba0b8d578a4c702b6bf11d5fac00000000";

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn rawblock_summarises_the_genesis_block() {
        let ZmqPayload::RawBlock(b) = decode("rawblock", &unhex(GENESIS)).unwrap() else { panic!() };
        assert_eq!(b.hash, "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f");
        assert_eq!(b.tx_count, 1);
        assert_eq!(b.header.len(), 80);
        assert_eq!(b.size, GENESIS.len() as i64 / 2);
    }

    #[test]
    fn rawtx_computes_the_txid() {
        let tx = &unhex(GENESIS)[81..];
        let ZmqPayload::RawTx(t) = decode("rawtx", tx).unwrap() else { panic!() };
        assert_eq!(t.txid, "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b");
    }

    #[test]
    fn hashes_sequence_and_unknown_topics() {
        let h = [0xabu8; 32];
        assert_eq!(decode("hashblock", &h).unwrap(), ZmqPayload::Hash(ZmqHash { hash: "ab".repeat(32) }));
        let mut seq = h.to_vec();
        seq.push(b'A');
        seq.extend_from_slice(&7u64.to_le_bytes());
        let ZmqPayload::Sequence(s) = decode("sequence", &seq).unwrap() else { panic!() };
        assert_eq!((s.label.as_str(), s.mempool_sequence), ("A", Some(7)));
        assert!(matches!(decode("invalidtx", b"{}").unwrap(), ZmqPayload::Other(_)));
        assert!(decode("hashtx", &[1, 2]).is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_bodies_never_panic(topic in prop::sample::select(vec!["hashblock", "rawblock", "rawtx", "sequence", "hashtx2", "x"]),
                                        body in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode(topic, &body);
        }
    }
}
