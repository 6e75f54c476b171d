//! N connected regtest nodes of one implementation, and the scenarios that drive them.

use std::time::Duration;

use crate::{Implementation, Node, TestbedError, poll_until};

const SYNC_TIMEOUT: Duration = Duration::from_secs(120);
const POLL: Duration = Duration::from_millis(100);

/// A chain reorganisation caused on one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reorg {
    /// The node that reorganised.
    pub node: String,
    /// Blocks it mined alone and then lost.
    pub orphaned: Vec<String>,
    /// The tip before it reconnected.
    pub old_tip: String,
    /// The tip every node agrees on afterwards.
    pub new_tip: String,
}

/// Regtest nodes of one implementation, connected in a full mesh.
#[derive(Debug)]
pub struct Network {
    implementation: Implementation,
    nodes: Vec<Node>,
}

impl Network {
    pub(crate) fn new(implementation: Implementation, nodes: Vec<Node>) -> Network {
        Network { implementation, nodes }
    }

    /// Connects every pair of nodes, waits for the connections, then mines 101 blocks on the first
    /// node (so it has a mature coinbase) and waits until all nodes share the tip.
    pub(crate) fn bootstrap(&self) -> Result<(), TestbedError> {
        self.connect_all()?;
        self.mine_initial()
    }

    /// Mines 101 blocks on the first node (a mature coinbase) and waits until every node has them.
    pub fn mine_initial(&self) -> Result<(), TestbedError> {
        self.nodes[0].mine(101)?;
        self.wait_synced()?;
        Ok(())
    }

    /// Makes node `from` keep a connection to `addr` (another node, or a proxy in front of one)
    /// and waits until it has at least `peers` connections.
    pub fn link(&self, from: usize, addr: &str, peers: usize) -> Result<(), TestbedError> {
        let node = &self.nodes[from];
        node.call::<serde_json::Value>("addnode", &[addr.into(), "add".into()])?;
        poll_until(&format!("{} to have {peers} peers", node.name()), SYNC_TIMEOUT, POLL, || {
            node.peer_count().ok().filter(|c| *c >= peers)
        })
        .map(|_| ())
    }

    fn connect_all(&self) -> Result<(), TestbedError> {
        for (i, a) in self.nodes.iter().enumerate() {
            for b in &self.nodes[i + 1..] {
                a.connect(b)?;
            }
        }
        let want = self.nodes.len() - 1;
        for node in &self.nodes {
            poll_until(&format!("{} to have {want} peers", node.name()), SYNC_TIMEOUT, POLL, || {
                node.peer_count().ok().filter(|c| *c >= want)
            })?;
        }
        Ok(())
    }

    /// Node software of this network.
    pub fn implementation(&self) -> Implementation {
        self.implementation
    }

    /// The nodes.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// Mutable access, e.g. to kill a node.
    pub fn nodes_mut(&mut self) -> &mut [Node] {
        &mut self.nodes
    }

    /// Node `i`.
    ///
    /// # Panics
    /// If `i` is out of range.
    pub fn node(&self, i: usize) -> &Node {
        &self.nodes[i]
    }

    /// Mines `n` blocks on node `i` and waits until every node has them.
    pub fn mine(&self, i: usize, n: u64) -> Result<Vec<String>, TestbedError> {
        let hashes = self.nodes[i].mine(n)?;
        self.wait_synced()?;
        Ok(hashes)
    }

    /// Waits until every node reports the same tip; returns it.
    pub fn wait_synced(&self) -> Result<String, TestbedError> {
        poll_until("all nodes to share one tip", SYNC_TIMEOUT, POLL, || {
            let tips: Vec<String> = self.nodes.iter().filter_map(|n| n.tip().ok()).collect();
            (tips.len() == self.nodes.len() && tips.windows(2).all(|w| w[0] == w[1])).then(|| tips[0].clone())
        })
    }

    /// Sends a transaction from node `i` and waits until every node's mempool has it.
    pub fn send_tx(&self, i: usize) -> Result<String, TestbedError> {
        let txid = self.nodes[i].send_tx()?;
        poll_until(&format!("tx {txid} in every mempool"), SYNC_TIMEOUT, POLL, || {
            self.nodes.iter().all(|n| n.in_mempool(&txid).unwrap_or(false)).then_some(())
        })?;
        Ok(txid)
    }

    /// Makes node `i` reorganise `depth` blocks: it is cut off, mines `depth` blocks alone, the
    /// others mine `depth + 1`, and when it reconnects it switches to their longer chain.
    pub fn reorg(&self, i: usize, depth: u64) -> Result<Reorg, TestbedError> {
        let lone = &self.nodes[i];
        let other = (i + 1) % self.nodes.len();
        lone.set_network_active(false)?;
        poll_until(&format!("{} to drop its peers", lone.name()), SYNC_TIMEOUT, POLL, || {
            lone.peer_count().ok().filter(|c| *c == 0)
        })?;
        let rest: Vec<&Node> = self.nodes.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, n)| n).collect();
        poll_until("the others to drop the isolated node", SYNC_TIMEOUT, POLL, || {
            rest.iter().all(|n| n.peer_count().ok() == Some(rest.len() - 1)).then_some(())
        })?;
        let orphaned = lone.mine(depth)?;
        let old_tip = lone.tip()?;
        self.nodes[other].mine(depth + 1)?;
        let winner = self.nodes[other].tip()?;
        poll_until("the connected nodes to agree", SYNC_TIMEOUT, POLL, || {
            rest.iter().all(|n| n.tip().ok().as_deref() == Some(winner.as_str())).then_some(())
        })?;
        lone.set_network_active(true)?;
        for peer in &rest {
            lone.call::<serde_json::Value>("addnode", &[peer.p2p_addr().into(), "onetry".into()])?;
        }
        let new_tip = self.wait_synced()?;
        Ok(Reorg { node: lone.name().to_owned(), orphaned, old_tip, new_tip })
    }
}
