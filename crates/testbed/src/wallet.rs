//! Coins to mine to and spend from. Core here has no wallet, so it signs with a key of its own
//! (`signrawtransactionwithkey`); BSV and Litecoin use their node wallets.

use bitcoincore_rpc::bitcoin::secp256k1::{Secp256k1, SecretKey};
use bitcoincore_rpc::bitcoin::{Address, CompressedPublicKey, Network, PrivateKey};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{Implementation, Node, TestbedError};

/// Fee paid by every test transaction, in satoshis.
const FEE_SATS: u64 = 10_000;
/// Outputs a coinbase is split into, so one mature coinbase funds many transactions while staying
/// under the mempool's descendant limit.
const SPLIT_OUTPUTS: u64 = 20;
/// Blocks before a coinbase output is spendable.
const COINBASE_MATURITY: u64 = 100;

#[derive(Debug, Clone)]
pub(crate) struct Coin {
    txid: String,
    vout: u32,
    sats: u64,
}

/// A node's source of addresses and coins.
#[derive(Debug)]
pub(crate) enum Wallet {
    /// Not opened yet.
    Placeholder,
    /// A raw key; coins tracked here (Core without a wallet).
    /// `keys[0]` receives mined coins; a coinbase is split across all keys (one output may not
    /// repeat an address).
    Key { keys: Vec<(String, String)>, pool: Vec<Coin>, used_coinbases: Vec<(String, u32)> },
    /// The node's own wallet.
    Node { address: String },
}

#[derive(Deserialize)]
struct Unspent {
    txid: String,
    vout: u32,
    amount: f64,
    coinbase: bool,
    height: u64,
}

#[derive(Deserialize)]
struct ScanResult {
    unspents: Vec<Unspent>,
}

#[derive(Deserialize)]
struct Signed {
    hex: String,
    complete: bool,
}

fn btc(sats: u64) -> Value {
    json!(sats as f64 / 100_000_000.0)
}

impl Wallet {
    pub(crate) fn placeholder() -> Wallet {
        Wallet::Placeholder
    }

    /// Opens the wallet for node number `index`.
    pub(crate) fn open(node: &Node, index: usize) -> Result<Wallet, TestbedError> {
        match node.implementation() {
            Implementation::Core => {
                let secp = Secp256k1::new();
                let keys = (0..SPLIT_OUTPUTS)
                    .map(|j| {
                        let mut seed = [0u8; 32];
                        seed[30] = u8::try_from(index % 250).unwrap_or(0) + 1;
                        seed[31] = j as u8 + 1;
                        let sk = SecretKey::from_slice(&seed).map_err(|e| node.rpc_err("key", e))?;
                        let private = PrivateKey::new(sk, Network::Regtest);
                        let public = CompressedPublicKey::from_private_key(&secp, &private)
                            .map_err(|e| node.rpc_err("key", e))?;
                        Ok((private.to_wif(), Address::p2wpkh(&public, Network::Regtest).to_string()))
                    })
                    .collect::<Result<Vec<_>, TestbedError>>()?;
                Ok(Wallet::Key { keys, pool: Vec::new(), used_coinbases: Vec::new() })
            }
            Implementation::Litecoin => {
                node.call::<Value>("createwallet", &[json!("bmon")])?;
                let address: String = node.call("getnewaddress", &[])?;
                Ok(Wallet::Node { address })
            }
            Implementation::Bsv => {
                let address: String = node.call("getnewaddress", &[])?;
                Ok(Wallet::Node { address })
            }
        }
    }

    /// Where mined coins and sent payments go.
    pub(crate) fn address(&self) -> &str {
        match self {
            Wallet::Key { keys, .. } => keys.first().map_or("", |(_, a)| a.as_str()),
            Wallet::Node { address } => address,
            Wallet::Placeholder => "",
        }
    }

    /// Sends one transaction; returns its txid.
    pub(crate) fn send(&mut self, node: &Node) -> Result<String, TestbedError> {
        match self {
            Wallet::Placeholder => Err(node.rpc_err("send", "wallet not opened")),
            Wallet::Node { address } => node.call("sendtoaddress", &[json!(address.clone()), json!(0.1)]),
            Wallet::Key { keys, pool, used_coinbases } => {
                let wifs: Vec<&str> = keys.iter().map(|(w, _)| w.as_str()).collect();
                let home = keys.first().map(|(_, a)| a.clone()).unwrap_or_default();
                if let Some(coin) = pool.pop() {
                    let outputs = json!([{ home: btc(coin.sats - FEE_SATS) }]);
                    return sign_and_send(node, &wifs, &coin, outputs);
                }
                // Refill: split one mature, unused coinbase into SPLIT_OUTPUTS coins.
                let coinbase = mature_coinbase(node, &home, used_coinbases)?;
                used_coinbases.push((coinbase.txid.clone(), coinbase.vout));
                let each = (coinbase.sats - FEE_SATS) / SPLIT_OUTPUTS;
                let outputs: Vec<Value> = keys.iter().map(|(_, a)| json!({ a.clone(): btc(each) })).collect();
                let txid = sign_and_send(node, &wifs, &coinbase, Value::Array(outputs))?;
                pool.extend((0..SPLIT_OUTPUTS as u32).map(|vout| Coin { txid: txid.clone(), vout, sats: each }));
                Ok(txid)
            }
        }
    }
}

impl Wallet {
    /// Two signed transactions spending the same coin with different fees (a double spend), as
    /// raw hex; neither is sent.
    pub(crate) fn conflicting_pair(&mut self, node: &Node) -> Result<(String, String), TestbedError> {
        let (coin, wifs, home) = self.take_coin(node, "double spend")?;
        let wifs: Option<Vec<&str>> = wifs.as_ref().map(|w| w.iter().map(String::as_str).collect());
        let a = sign(node, wifs.as_deref(), &coin, json!({ home.clone(): btc(coin.sats - FEE_SATS) }))?;
        let b = sign(node, wifs.as_deref(), &coin, json!({ home: btc(coin.sats - 2 * FEE_SATS) }))?;
        Ok((a, b))
    }

    /// Two signed transactions spending the same coin with the same fee (the second carries an
    /// OP_RETURN output as well), as raw hex: neither can replace the other, so a node holding
    /// one refuses the other. Neither is sent.
    pub(crate) fn double_spend_pair(&mut self, node: &Node) -> Result<(String, String), TestbedError> {
        let (coin, wifs, home) = self.take_coin(node, "double spend")?;
        let wifs: Option<Vec<&str>> = wifs.as_ref().map(|w| w.iter().map(String::as_str).collect());
        // Outputs as an object: BSV's createrawtransaction takes no list.
        let a = sign(node, wifs.as_deref(), &coin, json!({ home.clone(): btc(coin.sats - FEE_SATS) }))?;
        let b = sign(node, wifs.as_deref(), &coin, json!({ home: btc(coin.sats - FEE_SATS), "data": "6473" }))?;
        Ok((a, b))
    }

    /// Sends a transaction with an OP_RETURN output (`data`, hex) beside its change; its txid.
    pub(crate) fn send_op_return(&mut self, node: &Node, data: &str) -> Result<String, TestbedError> {
        let (coin, wifs, home) = self.take_coin(node, "op_return")?;
        let wifs: Option<Vec<&str>> = wifs.as_ref().map(|w| w.iter().map(String::as_str).collect());
        let outputs = json!([{ home: btc(coin.sats - FEE_SATS) }, { "data": data }]);
        let hex = sign(node, wifs.as_deref(), &coin, outputs)?;
        node.call("sendrawtransaction", &[json!(hex)])
    }

    /// A coin to spend, the keys that sign for it (none: the node's wallet) and the address to
    /// pay back to.
    fn take_coin(&mut self, node: &Node, what: &str) -> Result<(Coin, Option<Vec<String>>, String), TestbedError> {
        if matches!(self, Wallet::Key { pool, .. } if pool.is_empty()) {
            // Refills the pool with the split of a coinbase.
            self.send(node)?;
        }
        match self {
            Wallet::Placeholder => Err(node.rpc_err(what, "wallet not opened")),
            Wallet::Key { keys, pool, .. } => {
                let coin = pool.pop().ok_or_else(|| node.rpc_err(what, "no coin to spend"))?;
                let wifs: Vec<String> = keys.iter().map(|(w, _)| w.clone()).collect();
                Ok((coin, Some(wifs), keys.first().map(|(_, a)| a.clone()).unwrap_or_default()))
            }
            Wallet::Node { address } => {
                let unspent: Vec<WalletUnspent> = node.call("listunspent", &[json!(1)])?;
                let u = unspent
                    .into_iter()
                    .find(|u| u.amount > 0.01)
                    .ok_or_else(|| node.rpc_err(what, "no confirmed coin in the wallet"))?;
                let coin = Coin { txid: u.txid, vout: u.vout, sats: (u.amount * 100_000_000.0).round() as u64 };
                Ok((coin, None, address.clone()))
            }
        }
    }
}

fn mature_coinbase(node: &Node, address: &str, used: &[(String, u32)]) -> Result<Coin, TestbedError> {
    let tip = node.height()?;
    let scan: ScanResult =
        node.call("scantxoutset", &[json!("start"), json!([{ "desc": format!("addr({address})") }])])?;
    scan.unspents
        .into_iter()
        .filter(|u| u.coinbase && u.height + COINBASE_MATURITY <= tip)
        .filter(|u| !used.iter().any(|(t, v)| *t == u.txid && *v == u.vout))
        .map(|u| Coin { txid: u.txid, vout: u.vout, sats: (u.amount * 100_000_000.0).round() as u64 })
        .find(|c| c.sats > FEE_SATS * (SPLIT_OUTPUTS + 1))
        .ok_or_else(|| node.rpc_err("send", "no mature coinbase left: mine more blocks to this node"))
}

fn sign_and_send(node: &Node, wifs: &[&str], coin: &Coin, outputs: Value) -> Result<String, TestbedError> {
    let hex = sign(node, Some(wifs), coin, outputs)?;
    node.call("sendrawtransaction", &[json!(hex)])
}

/// Builds and signs a transaction spending `coin`: with `wifs` when given, else with the node's
/// wallet. Returns the raw hex.
fn sign(node: &Node, wifs: Option<&[&str]>, coin: &Coin, outputs: Value) -> Result<String, TestbedError> {
    let inputs = json!([{ "txid": coin.txid, "vout": coin.vout }]);
    let raw: String = node.call("createrawtransaction", &[inputs, outputs])?;
    let (method, args) = match (wifs, node.implementation()) {
        (Some(wifs), _) => ("signrawtransactionwithkey", vec![json!(raw), json!(wifs)]),
        (None, Implementation::Bsv) => ("signrawtransaction", vec![json!(raw)]),
        (None, _) => ("signrawtransactionwithwallet", vec![json!(raw)]),
    };
    let signed: Signed = node.call(method, &args)?;
    if !signed.complete {
        return Err(node.rpc_err(method, "signature incomplete"));
    }
    Ok(signed.hex)
}

#[derive(Deserialize)]
struct WalletUnspent {
    txid: String,
    vout: u32,
    amount: f64,
}
