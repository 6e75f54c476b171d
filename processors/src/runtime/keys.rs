//! Output topics and their record keys, bound from topology.yaml.
//!
//! A processor names the schema family it publishes and the fields its records can be keyed by;
//! the topic and the key come from topology.yaml. The key picks the partition, so it decides
//! which records meet: every node's sighting of one hash (`object_hash`), one node's events in
//! order (`node_id`), one network's views (`network`), or derived events spread over partitions
//! with one object's events kept in order (`network_object`).

use bmon_topology::{BindError, Processor as Declared, Topology};

use super::Output;

/// What a record's key is made of, as its topic's `key` declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// The node id.
    NodeId,
    /// The block hash or txid.
    ObjectHash,
    /// The network name.
    Network,
    /// `network/hash`.
    NetworkObject,
}

impl KeyKind {
    /// Every kind, in declaration order.
    pub const ALL: [KeyKind; 4] = [KeyKind::NodeId, KeyKind::ObjectHash, KeyKind::Network, KeyKind::NetworkObject];

    /// Its name in topology.yaml's `keys`.
    pub fn name(self) -> &'static str {
        match self {
            KeyKind::NodeId => "node_id",
            KeyKind::ObjectHash => "object_hash",
            KeyKind::Network => "network",
            KeyKind::NetworkObject => "network_object",
        }
    }

    fn parse(name: &str) -> Option<KeyKind> {
        KeyKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// The fields one record can be keyed by.
#[derive(Debug, Clone, Copy, Default)]
pub struct KeyFields<'a> {
    /// The node the record is about.
    pub node_id: &'a str,
    /// Its network.
    pub network: &'a str,
    /// The block hash or txid, if it is about one.
    pub hash: &'a str,
}

/// An output topic and how its records are keyed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputTopic {
    /// Topic name.
    pub name: String,
    /// The key its records get.
    pub key: KeyKind,
}

impl OutputTopic {
    /// The output of processor `p` carrying `family`, whose records can be keyed by any of
    /// `supported` (an error names the topic, its key and these, if its key is not one of them).
    pub fn bind(t: &Topology, p: &Declared, family: &str, supported: &[KeyKind]) -> Result<OutputTopic, BindError> {
        let topic = t.output_of(p, family)?;
        let key = KeyKind::parse(&topic.key).filter(|k| supported.contains(k)).ok_or_else(|| BindError::Key {
            topic: topic.name.clone(),
            key: topic.key.clone(),
            what: family.to_owned(),
            supported: supported.iter().map(|k| k.name()).collect::<Vec<_>>().join(", "),
        })?;
        Ok(OutputTopic { name: topic.name.clone(), key })
    }

    /// The key of a record with fields `f`.
    pub fn key(&self, f: &KeyFields<'_>) -> Vec<u8> {
        match self.key {
            KeyKind::NodeId => f.node_id.as_bytes().to_vec(),
            KeyKind::ObjectHash => f.hash.as_bytes().to_vec(),
            KeyKind::Network => f.network.as_bytes().to_vec(),
            KeyKind::NetworkObject => {
                let mut k = Vec::with_capacity(f.network.len() + 1 + f.hash.len());
                k.extend_from_slice(f.network.as_bytes());
                k.push(b'/');
                k.extend_from_slice(f.hash.as_bytes());
                k
            }
        }
    }

    /// A record to publish here.
    pub fn output(&self, f: &KeyFields<'_>, payload: Vec<u8>) -> Output {
        Output { topic: self.name.clone(), key: self.key(f), payload }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_declared_kind() {
        let f = KeyFields { node_id: "n", network: "main", hash: "ab" };
        let key = |key| OutputTopic { name: "t".into(), key }.key(&f);
        assert_eq!(key(KeyKind::NodeId), b"n");
        assert_eq!(key(KeyKind::ObjectHash), b"ab");
        assert_eq!(key(KeyKind::Network), b"main");
        assert_eq!(key(KeyKind::NetworkObject), b"main/ab");
    }
}
