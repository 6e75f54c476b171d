//! Blocks crafted from a `getblocktemplate` result, for nodes that cannot build one for us
//! (`generateblock` is Core's only): a coinbase-only block on the template's parent.

use bitcoincore_rpc::bitcoin::absolute::LockTime;
use bitcoincore_rpc::bitcoin::block::{Header, Version};
use bitcoincore_rpc::bitcoin::opcodes::OP_TRUE;
use bitcoincore_rpc::bitcoin::script::Builder;
use bitcoincore_rpc::bitcoin::{
    Amount, Block, BlockHash, CompactTarget, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxMerkleNode, TxOut,
    Witness, transaction,
};
use serde_json::Value;

/// A block on `template`'s parent holding only a coinbase that pays `coinbasevalue + extra_sat`
/// to `OP_TRUE`, its proof of work ground (regtest targets take a few tries). An error names the
/// template field that was missing or malformed.
pub fn from_template(template: &Value, extra_sat: u64) -> Result<Block, String> {
    let field = |name: &str| template.get(name).ok_or_else(|| format!("template has no `{name}`: {template}"));
    let int = |name: &str| field(name)?.as_i64().ok_or_else(|| format!("template `{name}` is not an integer"));
    let height = int("height")?;
    let value = u64::try_from(int("coinbasevalue")?).map_err(|e| e.to_string())?;
    let prev: BlockHash = field("previousblockhash")?
        .as_str()
        .ok_or("template `previousblockhash` is not a string")?
        .parse()
        .map_err(|e| format!("previousblockhash: {e}"))?;
    let bits = field("bits")?.as_str().ok_or("template `bits` is not a string")?;
    let bits = u32::from_str_radix(bits, 16).map_err(|e| format!("bits: {e}"))?;
    let coinbase = Transaction {
        version: transaction::Version::ONE,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint::null(),
            // BIP34: the height first; a second push keeps the script at least 2 bytes long.
            script_sig: Builder::new().push_int(height).push_int(0).into_script(),
            sequence: Sequence::MAX,
            witness: Witness::new(),
        }],
        output: vec![TxOut {
            value: Amount::from_sat(value + extra_sat),
            script_pubkey: ScriptBuf::builder().push_opcode(OP_TRUE).into_script(),
        }],
    };
    let mut block = Block {
        header: Header {
            version: Version::from_consensus(int("version")? as i32),
            prev_blockhash: prev,
            merkle_root: TxMerkleNode::from_raw_hash(coinbase.compute_txid().to_raw_hash()),
            time: u32::try_from(int("curtime")?).map_err(|e| e.to_string())?,
            bits: CompactTarget::from_consensus(bits),
            nonce: 0,
        },
        txdata: vec![coinbase],
    };
    while block.header.validate_pow(block.header.target()).is_err() {
        block.header.nonce = block.header.nonce.checked_add(1).ok_or("no nonce meets the target")?;
    }
    Ok(block)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_coinbase_only_block_meets_a_regtest_target_and_pays_what_was_asked() {
        let template = serde_json::json!({
            "height": 300, "coinbasevalue": 312_500_000, "version": 536_870_912, "curtime": 1_764_021_600,
            "bits": "207fffff",
            "previousblockhash": "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206"
        });
        let block = from_template(&template, 1).unwrap();
        assert!(block.header.validate_pow(block.header.target()).is_ok());
        assert_eq!(block.txdata[0].output[0].value, Amount::from_sat(312_500_001));
        assert_eq!(block.bip34_block_height().ok(), Some(300));
        assert!(from_template(&serde_json::json!({"height": 1}), 0).unwrap_err().contains("coinbasevalue"));
    }
}
