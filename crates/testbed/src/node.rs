//! One regtest node process with an RPC client.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use bitcoincore_rpc::{Client, RpcApi};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::wallet::Wallet;
use crate::{Managed, TestbedError, Tools, poll_until};

/// Node software.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Implementation {
    /// Bitcoin Core v31.99 (no wallet, no ZMQ in this build).
    Core,
    /// BSV node v1.0.13 (ZMQ and wallet).
    Bsv,
    /// Litecoin Core 0.21 (wallet, no ZMQ).
    Litecoin,
}

impl Implementation {
    /// Short lowercase name: core, bsv, litecoin.
    pub fn as_str(self) -> &'static str {
        match self {
            Implementation::Core => "core",
            Implementation::Bsv => "bsv",
            Implementation::Litecoin => "litecoin",
        }
    }

    /// Where the node writes its log, relative to the data dir.
    pub fn log_file(self) -> &'static str {
        match self {
            Implementation::Bsv => "regtest/bitcoind.log",
            Implementation::Core | Implementation::Litecoin => "regtest/debug.log",
        }
    }

    fn args(self, zmq: Option<u16>) -> Vec<String> {
        let mut a: Vec<String> = match self {
            Implementation::Core => vec![
                "-logtimemicros=1",
                "-logthreadnames=1",
                "-listenonion=0",
                "-fixedseeds=0",
                "-debug=net",
                "-debug=mempool",
                "-debug=mempoolrej",
                "-debug=validation",
                "-debug=cmpctblock",
                "-debug=bench",
                "-debug=rpc",
            ],
            Implementation::Bsv => vec![
                "-logtimemicros=1",
                "-excessiveblocksize=0",
                "-maxstackmemoryusageconsensus=0",
                "-minminingtxfee=0.00000500",
                "-debug=net",
                "-debug=mempool",
                "-debug=mempoolrej",
                "-debug=bench",
                "-debug=cmpctblock",
                "-debug=zmq",
                "-debug=txnval",
                "-debug=txnsrc",
                "-debug=doublespend",
                "-invalidtxsink=ZMQ",
            ],
            Implementation::Litecoin => vec![
                "-logtimemicros=1",
                "-logthreadnames=1",
                "-listenonion=0",
                "-fallbackfee=0.0001",
                "-debug=net",
                "-debug=mempool",
                "-debug=mempoolrej",
                "-debug=validation",
                "-debug=cmpctblock",
                "-debug=bench",
            ],
        }
        .into_iter()
        .map(String::from)
        .collect();
        if let (Implementation::Bsv, Some(port)) = (self, zmq) {
            for topic in ["hashblock", "hashtx", "rawblock", "rawtx", "invalidtx"] {
                a.push(format!("-zmqpub{topic}=tcp://127.0.0.1:{port}"));
            }
        }
        a
    }
}

/// An RPC client over the minreq transport, which (unlike the default one) accepts the chunked
/// responses BSV sends for larger results such as `getrawmempool`.
fn rpc_client(url: &str, cookie: &Path) -> Result<Client, String> {
    let cookie = std::fs::read_to_string(cookie).map_err(|e| e.to_string())?;
    let transport = jsonrpc::http::minreq_http::Builder::new()
        .url(url)
        .map_err(|e| e.to_string())?
        .timeout(Duration::from_secs(30))
        .cookie_auth(cookie.trim())
        .build();
    Ok(Client::from_jsonrpc(jsonrpc::Client::with_transport(transport)))
}

/// A running regtest node.
pub struct Node {
    name: String,
    implementation: Implementation,
    datadir: PathBuf,
    p2p_port: u16,
    rpc_port: u16,
    zmq_port: Option<u16>,
    rpc: Client,
    wallet: Mutex<Wallet>,
    process: Managed,
    launch: Launch,
}

/// How to (re)start a node process.
#[derive(Debug)]
struct Launch {
    name: String,
    bin: PathBuf,
    args: Vec<String>,
    datadir: PathBuf,
    pid_dir: PathBuf,
    stdout: PathBuf,
    url: String,
}

impl Launch {
    /// Spawns the node and waits until its RPC answers.
    fn start(&self) -> Result<(Managed, Client), TestbedError> {
        let mut cmd = Command::new(&self.bin);
        cmd.args(&self.args).current_dir(&self.datadir);
        let mut process = Managed::spawn(&self.name, cmd, &self.pid_dir, &self.stdout)?;
        let cookie = self.datadir.join("regtest/.cookie");
        // Some(None): the process died, stop waiting; Some(Some(client)): ready.
        let rpc =
            poll_until(&format!("{} RPC", self.name), Duration::from_secs(120), Duration::from_millis(200), || {
                if process.check_alive().is_err() {
                    return Some(None);
                }
                if !cookie.exists() {
                    return None;
                }
                let client = rpc_client(&self.url, &cookie).ok()?;
                client.get_block_count().ok().map(|_| Some(client))
            });
        process.check_alive()?;
        let rpc = rpc?.ok_or_else(|| TestbedError::Rpc {
            node: self.name.clone(),
            method: "getblockcount".into(),
            message: "process exited".into(),
        })?;
        Ok((process, rpc))
    }
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node").field("name", &self.name).field("rpc_port", &self.rpc_port).finish()
    }
}

/// Ports of one node.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NodePorts {
    pub p2p: u16,
    pub rpc: u16,
    pub zmq: u16,
}

impl Node {
    /// Starts a node and waits until its RPC answers and its wallet is ready.
    pub(crate) fn start(
        implementation: Implementation,
        name: &str,
        index: usize,
        tools: &Tools,
        dir: &Path,
        ports: NodePorts,
        pid_dir: &Path,
    ) -> Result<Node, TestbedError> {
        let bin = match implementation {
            Implementation::Core => tools.core_bitcoind()?,
            Implementation::Bsv => tools.bsv_bitcoind()?,
            Implementation::Litecoin => tools.litecoind()?,
        };
        let datadir = dir.join(name);
        std::fs::create_dir_all(&datadir).map_err(TestbedError::io(format!("create {}", datadir.display())))?;
        let zmq_port = (implementation == Implementation::Bsv).then_some(ports.zmq);
        let mut args: Vec<String> = vec![
            "-regtest".into(),
            format!("-datadir={}", datadir.display()),
            format!("-port={}", ports.p2p),
            format!("-bind=127.0.0.1:{}", ports.p2p),
            format!("-rpcport={}", ports.rpc),
        ];
        args.extend(
            ["-rpcbind=127.0.0.1", "-rpcallowip=127.0.0.1", "-server=1", "-listen=1"]
                .into_iter()
                .chain(["-dnsseed=0", "-discover=0", "-printtoconsole=0", "-rpcthreads=8"])
                .map(String::from),
        );
        args.extend(implementation.args(zmq_port));
        let launch = Launch {
            name: name.to_owned(),
            bin,
            args,
            datadir: datadir.clone(),
            pid_dir: pid_dir.to_owned(),
            stdout: dir.join(format!("{name}.stdout")),
            url: format!("http://127.0.0.1:{}", ports.rpc),
        };
        let (process, rpc) = launch.start()?;
        let node = Node {
            name: name.to_owned(),
            implementation,
            datadir,
            p2p_port: ports.p2p,
            rpc_port: ports.rpc,
            zmq_port,
            rpc,
            wallet: Mutex::new(Wallet::placeholder()),
            process,
            launch,
        };
        let wallet = Wallet::open(&node, index)?;
        *node.wallet.lock().map_err(|_| node.rpc_err("wallet", "wallet lock poisoned"))? = wallet;
        Ok(node)
    }

    /// Node name, e.g. `core-0`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Node software.
    pub fn implementation(&self) -> Implementation {
        self.implementation
    }

    /// The node's log file (debug.log, or bitcoind.log for BSV).
    pub fn log_path(&self) -> PathBuf {
        self.datadir.join(self.implementation.log_file())
    }

    /// RPC cookie file.
    pub fn cookie_path(&self) -> PathBuf {
        self.datadir.join("regtest/.cookie")
    }

    /// Data directory.
    pub fn datadir(&self) -> &Path {
        &self.datadir
    }

    /// RPC URL.
    pub fn rpc_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.rpc_port)
    }

    /// P2P address.
    pub fn p2p_addr(&self) -> String {
        format!("127.0.0.1:{}", self.p2p_port)
    }

    /// ZMQ endpoint, for implementations that publish ZMQ.
    pub fn zmq_endpoint(&self) -> Option<String> {
        self.zmq_port.map(|p| format!("tcp://127.0.0.1:{p}"))
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    pub(crate) fn rpc_err(&self, method: &str, message: impl std::fmt::Display) -> TestbedError {
        TestbedError::Rpc { node: self.name.clone(), method: method.to_owned(), message: message.to_string() }
    }

    /// Calls an RPC method with JSON arguments.
    pub fn call<T: DeserializeOwned>(&self, method: &str, args: &[Value]) -> Result<T, TestbedError> {
        self.rpc.call(method, args).map_err(|e| self.rpc_err(method, e))
    }

    /// Current tip height.
    pub fn height(&self) -> Result<u64, TestbedError> {
        self.call("getblockcount", &[])
    }

    /// Current tip hash.
    pub fn tip(&self) -> Result<String, TestbedError> {
        self.call("getbestblockhash", &[])
    }

    /// Mines `n` blocks to this node's own key or wallet; returns their hashes.
    pub fn mine(&self, n: u64) -> Result<Vec<String>, TestbedError> {
        let address = self.lock_wallet()?.address().to_owned();
        self.call("generatetoaddress", &[json!(n), json!(address)])
    }

    /// Sends a transaction paying this node's own key or wallet; returns its txid.
    pub fn send_tx(&self) -> Result<String, TestbedError> {
        self.lock_wallet()?.send(self)
    }

    /// Two signed, unsent transactions that spend the same coin (raw hex), for double-spend
    /// scenarios.
    pub fn conflicting_pair(&self) -> Result<(String, String), TestbedError> {
        self.lock_wallet()?.conflicting_pair(self)
    }

    /// Two signed, unsent transactions that spend the same coin with the same fee (raw hex):
    /// neither replaces the other, so each node keeps the first it got and refuses the other.
    pub fn double_spend_pair(&self) -> Result<(String, String), TestbedError> {
        self.lock_wallet()?.double_spend_pair(self)
    }

    /// Sends a transaction with an OP_RETURN output carrying `data` (hex); returns its txid.
    pub fn send_op_return(&self, data: &str) -> Result<String, TestbedError> {
        self.lock_wallet()?.send_op_return(self, data)
    }

    /// Builds a block on this node's tip whose coinbase pays one satoshi more than allowed
    /// (`generateblock` without submitting, the coinbase output raised, the merkle root redone
    /// and the proof of work ground again), then submits it. Returns its hash and `submitblock`'s
    /// answer (Core: `"bad-cb-amount"`). Core only: BSV and Litecoin lack `generateblock`.
    pub fn submit_overpaying_block(&self) -> Result<(String, Value), TestbedError> {
        use bitcoincore_rpc::bitcoin::consensus::encode::{deserialize, serialize_hex};
        use bitcoincore_rpc::bitcoin::hex::FromHex;
        use bitcoincore_rpc::bitcoin::{Amount, Block};
        let address = self.lock_wallet()?.address().to_owned();
        let made: Value = self.call("generateblock", &[json!(address), json!([]), json!(false)])?;
        let bad = |m: String| self.rpc_err("generateblock", &m);
        let hex = made["hex"].as_str().ok_or_else(|| bad(format!("no block hex in {made}")))?;
        let bytes = Vec::<u8>::from_hex(hex).map_err(|e| bad(e.to_string()))?;
        let mut block: Block = deserialize(&bytes).map_err(|e| bad(e.to_string()))?;
        let coinbase =
            block.txdata.first_mut().and_then(|tx| tx.output.first_mut()).ok_or_else(|| bad("no coinbase".into()))?;
        coinbase.value += Amount::from_sat(1);
        block.header.merkle_root = block.compute_merkle_root().ok_or_else(|| bad("no transactions".into()))?;
        while block.header.validate_pow(block.header.target()).is_err() {
            block.header.nonce = block.header.nonce.wrapping_add(1);
        }
        let answer: Value = self.call("submitblock", &[json!(serialize_hex(&block))])?;
        Ok((block.block_hash().to_string(), answer))
    }

    /// Builds a coinbase-only block from this node's `getblocktemplate`, its coinbase paying one
    /// satoshi more than allowed, and submits it. Returns its hash and `submitblock`'s answer.
    /// For nodes without `generateblock` (BSV).
    pub fn submit_overpaying_template_block(&self) -> Result<(String, Value), TestbedError> {
        use bitcoincore_rpc::bitcoin::consensus::encode::serialize_hex;
        let request = match self.implementation {
            Implementation::Bsv => json!({}),
            _ => json!({"rules": ["segwit"]}),
        };
        let template: Value = self.call("getblocktemplate", &[request])?;
        let block = crate::blocks::from_template(&template, 1).map_err(|m| self.rpc_err("getblocktemplate", &m))?;
        let answer: Value = self.call("submitblock", &[json!(serialize_hex(&block))])?;
        Ok((block.block_hash().to_string(), answer))
    }

    /// Submits a raw transaction; returns its txid.
    pub fn send_raw(&self, hex: &str) -> Result<String, TestbedError> {
        self.call("sendrawtransaction", &[json!(hex)])
    }

    fn lock_wallet(&self) -> Result<std::sync::MutexGuard<'_, Wallet>, TestbedError> {
        self.wallet.lock().map_err(|_| self.rpc_err("wallet", "wallet lock poisoned"))
    }

    /// Opens a persistent P2P connection to `other`.
    pub fn connect(&self, other: &Node) -> Result<(), TestbedError> {
        self.call::<Value>("addnode", &[json!(other.p2p_addr()), json!("add")]).map(|_| ())
    }

    /// Connects to `addr` (a node or a proxy in front of one) now (`addnode … onetry`), without
    /// waiting for the added-node loop's next round (a minute after `setnetworkactive true`).
    pub fn connect_now(&self, addr: &str) -> Result<(), TestbedError> {
        self.call::<Value>("addnode", &[json!(addr), json!("onetry")]).map(|_| ())
    }

    /// Number of connected peers.
    pub fn peer_count(&self) -> Result<usize, TestbedError> {
        self.call("getconnectioncount", &[])
    }

    /// Turns all P2P networking off or on.
    pub fn set_network_active(&self, active: bool) -> Result<(), TestbedError> {
        self.call::<Value>("setnetworkactive", &[json!(active)]).map(|_| ())
    }

    /// Transactions in this node's mempool.
    pub fn mempool_size(&self) -> Result<u64, TestbedError> {
        let info: Value = self.call("getmempoolinfo", &[])?;
        info["size"].as_u64().ok_or_else(|| self.rpc_err("getmempoolinfo", format!("no size in {info}")))
    }

    /// Whether `txid` is in this node's mempool.
    pub fn in_mempool(&self, txid: &str) -> Result<bool, TestbedError> {
        let pool: Vec<String> = self.call("getrawmempool", &[])?;
        Ok(pool.iter().any(|t| t == txid))
    }

    /// Stops the node cleanly (SIGTERM is bitcoind's orderly shutdown) and waits for it to exit.
    pub fn shutdown(&mut self) {
        self.process.stop(Duration::from_secs(60));
    }

    /// Stops the node cleanly and starts it again with the same data and ports (its ZMQ sequence
    /// numbers start over). Reconnect peers yourself if the test needs them.
    pub fn restart(&mut self) -> Result<(), TestbedError> {
        self.process.stop(Duration::from_secs(60));
        // The old cookie is deleted on shutdown; wait for the new one.
        let (process, rpc) = self.launch.start()?;
        self.process = process;
        self.rpc = rpc;
        if self.implementation == Implementation::Litecoin {
            let _ = self.call::<Value>("loadwallet", &[json!("bmon")]);
        }
        Ok(())
    }

    /// [`Node::restart`] with `extra` arguments added to its command line from now on (for
    /// example `-coinstatsindex=1`).
    pub fn restart_with(&mut self, extra: &[&str]) -> Result<(), TestbedError> {
        self.launch.args.extend(extra.iter().map(|a| (*a).to_owned()));
        self.restart()
    }

    /// The node's process (to stop several nodes at once, see [`crate::stop_all`]).
    pub(crate) fn process_mut(&mut self) -> &mut Managed {
        &mut self.process
    }

    /// Stops the node hard (SIGKILL), as a crash would.
    pub fn kill_hard(&mut self) {
        self.process.kill_hard();
    }
}
