//! A local RocksDB store of one serialisable state value per input partition, written with the
//! offset it has consumed up to in one atomic write: the state and its offset never disagree.
//!
//! For processors whose per-partition state is small (a few nodes' or networks' worth), where
//! writing the whole value at a checkpoint is simpler than tracking changed keys. A large part
//! of a state (a mempool's transactions) can live beside it as rows ([`Rows`]), of which a
//! checkpoint writes only those that changed, in the same atomic write. Restore it in
//! [`super::Processor::restore`] when its offset is at or past the group's; otherwise replay.

use std::path::Path;

use rocksdb::{DB, Direction, IteratorMode, Options, WriteBatch};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A snapshot store failed.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// RocksDB failed.
    #[error("rocksdb: {0}")]
    Rocks(#[from] rocksdb::Error),
    /// A stored value could not be read back, or a value could not be written.
    #[error("state value: {0}")]
    Value(String),
}

/// One RocksDB with a value per (topic, partition).
pub struct SnapshotStore {
    db: DB,
}

impl std::fmt::Debug for SnapshotStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotStore").field("path", &self.db.path()).finish()
    }
}

fn key(topic: &str, partition: i32) -> Vec<u8> {
    format!("{topic}/{partition}").into_bytes()
}

fn row_prefix(topic: &str, partition: i32) -> Vec<u8> {
    format!("{topic}/{partition}/r/").into_bytes()
}

/// The rows of a state kept beside its value: written only when changed. States without rows
/// take the defaults.
pub trait Rows {
    /// The rows changed since the last call: (key, Some(value)) to write, (key, None) to delete.
    fn take_rows(&mut self) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        Vec::new()
    }
    /// A checkpoint that wrote these rows failed: they are to be written again (deleted ones
    /// included).
    fn rows_failed(&mut self, _keys: &[Vec<u8>]) {}
    /// Restores one row; false if it is malformed.
    fn put_row(&mut self, _key: &[u8], _value: &[u8]) -> bool {
        true
    }
    /// Called once all rows are restored.
    fn restored(&mut self) {}
    /// Whether the state may be written now (false in the middle of a multi-record update
    /// whose parts are not persisted); the checkpoint is then taken at the next tick.
    fn checkpointable(&self) -> bool {
        true
    }
}

impl SnapshotStore {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<SnapshotStore, SnapshotError> {
        std::fs::create_dir_all(dir).map_err(|e| SnapshotError::Value(format!("{}: {e}", dir.display())))?;
        let mut opts = Options::default();
        opts.create_if_missing(true);
        Ok(SnapshotStore { db: DB::open(&opts, dir)? })
    }

    /// The saved state of a partition and the offset it consumed up to, if any.
    pub fn load<T: DeserializeOwned>(&self, topic: &str, partition: i32) -> Result<Option<(i64, T)>, SnapshotError> {
        let Some(bytes) = self.db.get(key(topic, partition))? else { return Ok(None) };
        let (offset, value) = bytes.split_at_checked(8).ok_or_else(|| SnapshotError::Value("truncated".into()))?;
        let offset = i64::from_be_bytes(offset.try_into().map_err(|_| SnapshotError::Value("truncated".into()))?);
        let value = serde_json::from_slice(value).map_err(|e| SnapshotError::Value(e.to_string()))?;
        Ok(Some((offset, value)))
    }

    /// Saves a partition's state, having consumed up to `offset` (exclusive).
    pub fn save<T: Serialize>(&self, topic: &str, partition: i32, offset: i64, value: &T) -> Result<(), SnapshotError> {
        self.save_with_rows(topic, partition, offset, value, Vec::new())
    }

    /// Saves a partition's state and its changed rows in one atomic write.
    pub fn save_with_rows<T: Serialize>(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        value: &T,
        rows: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    ) -> Result<(), SnapshotError> {
        let mut bytes = offset.to_be_bytes().to_vec();
        serde_json::to_writer(&mut bytes, value).map_err(|e| SnapshotError::Value(e.to_string()))?;
        let mut batch = WriteBatch::default();
        batch.put(key(topic, partition), bytes);
        let prefix = row_prefix(topic, partition);
        for (k, v) in rows {
            let full = [prefix.as_slice(), &k].concat();
            match v {
                Some(v) => batch.put(full, v),
                None => batch.delete(full),
            }
        }
        Ok(self.db.write(batch)?)
    }

    /// A partition's rows, in key order.
    pub fn rows(&self, topic: &str, partition: i32) -> impl Iterator<Item = Result<(Vec<u8>, Vec<u8>), SnapshotError>> {
        let prefix = row_prefix(topic, partition);
        let n = prefix.len();
        self.db
            .iterator(IteratorMode::From(&prefix, Direction::Forward))
            .map(|r| r.map_err(SnapshotError::from))
            .take_while(move |r| r.as_ref().map_or(true, |(k, _)| k.starts_with(&prefix)))
            .map(move |r| r.map(|(k, v)| (k[n..].to_vec(), v.to_vec())))
    }

    /// Forgets a partition's state and its rows.
    pub fn forget(&self, topic: &str, partition: i32) -> Result<(), SnapshotError> {
        let mut batch = WriteBatch::default();
        batch.delete(key(topic, partition));
        let mut end = row_prefix(topic, partition);
        let start = end.clone();
        if let Some(last) = end.last_mut() {
            *last += 1;
        }
        batch.delete_range(start, end);
        Ok(self.db.write(batch)?)
    }
}

/// Per-partition state values of a processor, checkpointed to a [`SnapshotStore`]: the
/// bookkeeping of the runtime's restore, checkpoint and rebalance calls, done once. A partition
/// is written at a checkpoint only if it was touched since the last one.
#[derive(Debug)]
pub struct PartitionStates<S> {
    states: std::collections::BTreeMap<(String, i32), S>,
    dirty: std::collections::BTreeSet<(String, i32)>,
    store: SnapshotStore,
}

impl<S: Default + Serialize + DeserializeOwned + Rows> PartitionStates<S> {
    /// States stored under `dir`.
    pub fn open(dir: &Path) -> Result<PartitionStates<S>, SnapshotError> {
        Ok(PartitionStates { states: Default::default(), dirty: Default::default(), store: SnapshotStore::open(dir)? })
    }

    /// A partition's state (new if none), marked for the next checkpoint.
    pub fn get_mut(&mut self, topic: &str, partition: i32) -> &mut S {
        let key = (topic.to_owned(), partition);
        self.dirty.insert(key.clone());
        self.states.entry(key).or_default()
    }

    /// A partition's state if it has one, not marked (see [`PartitionStates::touch`]).
    pub fn peek_mut(&mut self, topic: &str, partition: i32) -> Option<&mut S> {
        self.states.get_mut(&(topic.to_owned(), partition))
    }

    /// Marks a partition for the next checkpoint.
    pub fn touch(&mut self, topic: &str, partition: i32) {
        self.dirty.insert((topic.to_owned(), partition));
    }

    /// Drops a partition's in-memory state (assigned anew, or reset to its stored state).
    pub fn drop_state(&mut self, topic: &str, partition: i32) {
        self.states.remove(&(topic.to_owned(), partition));
    }

    /// The partition went to another instance: its state goes, here and in the store.
    pub fn revoked(&mut self, topic: &str, partition: i32) {
        self.drop_state(topic, partition);
        if let Err(e) = self.store.forget(topic, partition) {
            tracing::warn!(topic, partition, error = %e, "cannot drop partition state");
        }
    }

    /// [`super::Processor::restore`]: the stored state if its offset is at or past `first` (the
    /// group's), and that offset; otherwise none (replay), the stale copy forgotten.
    pub fn restore(&mut self, topic: &str, partition: i32, first: i64) -> Option<i64> {
        match self.store.load::<S>(topic, partition) {
            Ok(Some((offset, mut state))) if offset >= first => {
                for row in self.store.rows(topic, partition) {
                    match row {
                        Ok((k, v)) if state.put_row(&k, &v) => {}
                        Ok(_) | Err(_) => {
                            tracing::warn!(topic, partition, "unreadable state row; replaying instead");
                            let _ = self.store.forget(topic, partition);
                            return None;
                        }
                    }
                }
                state.restored();
                self.states.insert((topic.to_owned(), partition), state);
                Some(offset)
            }
            Ok(Some(_)) => {
                tracing::info!(topic, partition, "local state is older than the group's offset; replaying instead");
                let _ = self.store.forget(topic, partition);
                None
            }
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(topic, partition, error = %e, "unreadable partition state; replaying instead");
                let _ = self.store.forget(topic, partition);
                None
            }
        }
    }

    /// [`super::Processor::checkpoint`]: writes each touched partition with its position.
    pub fn checkpoint(&mut self, positions: &[(String, i32, i64)]) {
        for (topic, partition, offset) in positions {
            let key = (topic.clone(), *partition);
            let Some(state) = self.states.get_mut(&key) else {
                self.dirty.remove(&key);
                continue;
            };
            if !self.dirty.contains(&key) || !state.checkpointable() {
                continue;
            }
            self.dirty.remove(&key);
            let rows = state.take_rows();
            let keys: Vec<Vec<u8>> = rows.iter().map(|(k, _)| k.clone()).collect();
            if let Err(e) = self.store.save_with_rows(topic, *partition, *offset, &*state, rows) {
                tracing::warn!(topic, partition, error = %e, "checkpoint failed; the next one rewrites the partition");
                state.rows_failed(&keys);
                self.dirty.insert(key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_value_and_its_offset_round_trip_per_partition() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = SnapshotStore::open(dir.path()).unwrap();
            s.save("t", 0, 42, &vec!["a".to_owned()]).unwrap();
            s.save("t", 1, 7, &vec!["b".to_owned()]).unwrap();
        }
        let s = SnapshotStore::open(dir.path()).unwrap();
        assert_eq!(s.load::<Vec<String>>("t", 0).unwrap(), Some((42, vec!["a".to_owned()])));
        s.forget("t", 1).unwrap();
        assert_eq!(s.load::<Vec<String>>("t", 1).unwrap(), None);
        assert!(s.load::<u8>("t", 0).is_err(), "a value of another shape is an error, not a panic");
    }

    #[test]
    fn rows_are_written_with_their_value_and_forgotten_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let s = SnapshotStore::open(dir.path()).unwrap();
        let put = |k: &str, v: &str| (k.as_bytes().to_vec(), Some(v.as_bytes().to_vec()));
        s.save_with_rows("t", 1, 5, &1u8, vec![put("a", "1"), put("b", "2")]).unwrap();
        s.save_with_rows("t", 10, 5, &1u8, vec![put("z", "9")]).unwrap();
        s.save_with_rows("t", 1, 6, &2u8, vec![(b"a".to_vec(), None), put("c", "3")]).unwrap();
        let rows: Vec<_> = s.rows("t", 1).map(Result::unwrap).collect();
        assert_eq!(rows, vec![(b"b".to_vec(), b"2".to_vec()), (b"c".to_vec(), b"3".to_vec())]);
        s.forget("t", 1).unwrap();
        assert_eq!(s.rows("t", 1).count(), 0);
        assert_eq!(s.rows("t", 10).count(), 1, "another partition's rows stay");
    }
}
