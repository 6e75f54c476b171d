//! RocksDB window state: one column family per input partition holding its windows, the alive
//! table, the clock estimates, the anomaly baseline, the watermark and the next offset, all written in one batch per
//! checkpoint, so the state and its offset never disagree.

use std::collections::BTreeMap;
use std::path::Path;

use rocksdb::{ColumnFamilyDescriptor, DB, IteratorMode, Options, WriteBatch};

use super::baseline::BaselineState;
use super::clock::ClockEstimator;
use super::window::{Window, WindowKey};

const OFFSET: &[u8] = b"meta/offset";
const ALIVE: &[u8] = b"meta/alive";
const CLOCKS: &[u8] = b"meta/clocks";
const WATERMARK: &[u8] = b"meta/watermark";
const BASELINE: &[u8] = b"meta/baseline";
const WINDOW_PREFIX: &[u8] = b"w/";

/// State store errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// RocksDB failed.
    #[error("rocksdb: {0}")]
    Rocks(#[from] rocksdb::Error),
    /// A stored value could not be read back.
    #[error("corrupt state value: {0}")]
    Corrupt(String),
}

/// A partition's saved state.
#[derive(Debug, Default)]
pub struct Saved {
    /// Next offset to consume.
    pub offset: i64,
    /// Open and recently closed windows.
    pub windows: Vec<Window>,
    /// Network → node → last observation.
    pub alive: BTreeMap<String, BTreeMap<String, i64>>,
    /// The partition's clock estimates.
    pub clocks: ClockEstimator,
    /// Highest event time.
    pub watermark_us: i64,
    /// The anomaly baseline.
    pub baseline: BaselineState,
}

/// The processor's RocksDB.
pub struct Store {
    db: DB,
}

fn cf_name(topic: &str, partition: i32) -> String {
    format!("{topic}/{partition}")
}

impl Store {
    /// Opens (or creates) the store in `dir` with every column family it already has.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        let existing = DB::list_cf(&opts, dir).unwrap_or_default();
        let cfs = existing.into_iter().map(|n| ColumnFamilyDescriptor::new(n, Options::default()));
        let db = DB::open_cf_descriptors(&opts, dir, cfs)?;
        Ok(Store { db })
    }

    /// Loads a partition's state, if saved.
    pub fn load(&self, topic: &str, partition: i32) -> Result<Option<Saved>, StoreError> {
        let Some(cf) = self.db.cf_handle(&cf_name(topic, partition)) else { return Ok(None) };
        let Some(offset) = self.db.get_cf(&cf, OFFSET)? else { return Ok(None) };
        let mut saved = Saved { offset: decode_i64(&offset)?, ..Saved::default() };
        if let Some(a) = self.db.get_cf(&cf, ALIVE)? {
            saved.alive = serde_json::from_slice(&a).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        }
        if let Some(c) = self.db.get_cf(&cf, CLOCKS)? {
            saved.clocks = serde_json::from_slice(&c).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        }
        if let Some(b) = self.db.get_cf(&cf, BASELINE)? {
            saved.baseline = serde_json::from_slice(&b).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        }
        if let Some(w) = self.db.get_cf(&cf, WATERMARK)? {
            saved.watermark_us = decode_i64(&w)?;
        }
        for item in self.db.iterator_cf(&cf, IteratorMode::From(WINDOW_PREFIX, rocksdb::Direction::Forward)) {
            let (k, v) = item?;
            if !k.starts_with(WINDOW_PREFIX) {
                break;
            }
            saved.windows.push(serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt(e.to_string()))?);
        }
        Ok(Some(saved))
    }

    /// Writes changed windows (`None`: delete), the alive table, the clock estimates, the
    /// baseline (if changed), the watermark and the offset in one batch.
    pub fn checkpoint(&mut self, topic: &str, partition: i32, c: &Checkpoint<'_>) -> Result<(), StoreError> {
        let name = cf_name(topic, partition);
        if self.db.cf_handle(&name).is_none() {
            self.db.create_cf(&name, &Options::default())?;
        }
        let cf = self.db.cf_handle(&name).ok_or_else(|| StoreError::Corrupt(format!("no column family {name}")))?;
        let mut batch = WriteBatch::default();
        for (key, w) in c.changed {
            match w {
                Some(w) => batch.put_cf(&cf, key, json(w)?),
                None => batch.delete_cf(&cf, key),
            }
        }
        batch.put_cf(&cf, ALIVE, json(c.alive)?);
        batch.put_cf(&cf, CLOCKS, json(c.clocks)?);
        if let Some(b) = c.baseline {
            batch.put_cf(&cf, BASELINE, json(b)?);
        }
        batch.put_cf(&cf, WATERMARK, c.watermark_us.to_be_bytes());
        batch.put_cf(&cf, OFFSET, c.offset.to_be_bytes());
        self.db.write(batch)?;
        Ok(())
    }

    /// Forgets a partition's state (it moved to another instance, or went stale).
    pub fn drop_partition(&mut self, topic: &str, partition: i32) -> Result<(), StoreError> {
        let name = cf_name(topic, partition);
        if self.db.cf_handle(&name).is_some() {
            self.db.drop_cf(&name)?;
        }
        Ok(())
    }
}

/// What one checkpoint writes.
pub struct Checkpoint<'a> {
    /// Changed windows by storage key (`None`: deleted).
    pub changed: &'a [(Vec<u8>, Option<Window>)],
    /// Network → node → last observation.
    pub alive: &'a BTreeMap<String, BTreeMap<String, i64>>,
    /// Clock estimates.
    pub clocks: &'a ClockEstimator,
    /// The anomaly baseline, if it changed.
    pub baseline: Option<&'a BaselineState>,
    /// Highest event time.
    pub watermark_us: i64,
    /// Next offset to consume.
    pub offset: i64,
}

fn json<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// The storage key of a window.
pub fn key_of((network, stage, hash): &WindowKey) -> Vec<u8> {
    let mut k = WINDOW_PREFIX.to_vec();
    k.extend_from_slice(format!("{network}/{stage:?}/{hash}").as_bytes());
    k
}

fn decode_i64(b: &[u8]) -> Result<i64, StoreError> {
    let arr: [u8; 8] = b.try_into().map_err(|_| StoreError::Corrupt("bad integer".into()))?;
    Ok(i64::from_be_bytes(arr))
}
