//! One input partition's state, and how its mempool lists are kept as rows.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::divergence::Transactions;
use super::empty::Pools;
use super::network::ViewRecord;
use super::presence::Presence;
use super::rejections::Rejections;
use super::templates::Templates;
use crate::reorder::Reorder;
use crate::runtime::Rows;

/// One input partition's state: the nodes of a node-event partition; the networks of a view
/// partition (mempool sizes, lists and templates, and the records held for order); or the open transactions of a verdict
/// partition.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct PartitionState {
    pub nodes: BTreeMap<String, Rejections>,
    pub networks: BTreeMap<String, Pools>,
    #[serde(default)]
    pub transactions: Transactions,
    #[serde(default)]
    pub presence: BTreeMap<String, Presence>,
    #[serde(default)]
    pub templates: BTreeMap<String, Templates>,
    /// Each network's view records read and not yet applied (held for event-time order).
    #[serde(default)]
    pub pending: BTreeMap<String, Reorder<ViewRecord>>,
}

/// Rows of a network's mempool lists (one per transaction).
const LIST: u8 = b'p';
/// Rows of a network's templates (one per node).
const TEMPLATE: u8 = b't';
/// Rows of a network's held view records (one per record).
const PENDING: u8 = b'q';

/// A row key: the network, a NUL, the kind, and the part's own key.
fn row_key(network: &str, kind: u8, key: &[u8]) -> Vec<u8> {
    [network.as_bytes(), &[0, kind], key].concat()
}

/// A row key's network, kind and own key.
fn split_key(key: &[u8]) -> Option<(&str, u8, &[u8])> {
    let at = key.iter().position(|b| *b == 0)?;
    let network = std::str::from_utf8(&key[..at]).ok()?;
    let (kind, rest) = key[at + 1..].split_first()?;
    Some((network, *kind, rest))
}

/// The mempool lists' transactions and the nodes' templates are rows (hundreds of thousands of
/// transactions at mainnet scale, few of which change between checkpoints); the rest is the
/// value.
impl Rows for PartitionState {
    fn take_rows(&mut self) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        let mut rows = Vec::new();
        for (network, p) in &mut self.presence {
            rows.extend(p.take_rows().into_iter().map(|(k, v)| (row_key(network, LIST, &k), v)));
        }
        for (network, t) in &mut self.templates {
            rows.extend(t.take_rows().into_iter().map(|(k, v)| (row_key(network, TEMPLATE, &k), v)));
        }
        for (network, r) in &mut self.pending {
            rows.extend(r.take_rows().into_iter().map(|(k, v)| (row_key(network, PENDING, &k), v)));
        }
        rows
    }

    fn rows_failed(&mut self, keys: &[Vec<u8>]) {
        for key in keys {
            match split_key(key) {
                Some((network, LIST, k)) => self.presence.entry(network.to_owned()).or_default().row_failed(k),
                Some((network, TEMPLATE, k)) => self.templates.entry(network.to_owned()).or_default().row_failed(k),
                Some((network, PENDING, k)) => self.pending.entry(network.to_owned()).or_default().row_failed(k),
                _ => {}
            }
        }
    }

    fn put_row(&mut self, key: &[u8], value: &[u8]) -> bool {
        match split_key(key) {
            Some((network, LIST, k)) => self.presence.entry(network.to_owned()).or_default().put_row(k, value),
            Some((network, TEMPLATE, k)) => self.templates.entry(network.to_owned()).or_default().put_row(k, value),
            Some((network, PENDING, k)) => self.pending.entry(network.to_owned()).or_default().put_row(k, value),
            _ => false,
        }
    }

    fn restored(&mut self) {
        self.presence.values_mut().for_each(Presence::restored);
    }

    fn checkpointable(&self) -> bool {
        self.presence.values().all(Presence::checkpointable)
    }
}
