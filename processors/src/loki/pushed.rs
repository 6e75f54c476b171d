//! The offsets whose entries Loki holds, per input partition, in a small RocksDB store shared
//! by the processor (which skips records at or below them) and the sink (which advances them
//! once a batch was accepted or dead-lettered).
//!
//! This is what keeps a restart from pushing again what Loki already holds: input offsets are
//! stored and committed a little after Loki accepts, and a consumer restarting from the
//! committed offset would otherwise push that tail twice. (Loki drops such byte-identical
//! repeats; VictoriaLogs and other Loki-API stores keep them.) The one remaining window is a
//! crash between Loki's answer and the write here: that batch is pushed again, byte-identical.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

/// The pushed offsets.
pub struct Pushed {
    db: rocksdb::DB,
    cache: Mutex<HashMap<(String, i32), i64>>,
}

impl std::fmt::Debug for Pushed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pushed").finish_non_exhaustive()
    }
}

fn key(topic: &str, partition: i32) -> Vec<u8> {
    let mut k = topic.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(&partition.to_be_bytes());
    k
}

impl Pushed {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Pushed, rocksdb::Error> {
        let mut opts = rocksdb::Options::default();
        opts.create_if_missing(true);
        let db = rocksdb::DB::open(&opts, dir)?;
        let mut cache = HashMap::new();
        for item in db.iterator(rocksdb::IteratorMode::Start) {
            let (k, v) = item?;
            let Some(split) = k.iter().position(|&b| b == 0) else { continue };
            let (Ok(p), Ok(o)) = (<[u8; 4]>::try_from(&k[split + 1..]), <[u8; 8]>::try_from(&v[..])) else {
                continue;
            };
            let topic = String::from_utf8_lossy(&k[..split]).into_owned();
            cache.insert((topic, i32::from_be_bytes(p)), i64::from_be_bytes(o));
        }
        Ok(Pushed { db, cache: Mutex::new(cache) })
    }

    /// The highest offset of `topic`/`partition` whose entry Loki holds.
    pub fn get(&self, topic: &str, partition: i32) -> Option<i64> {
        self.cache.lock().ok()?.get(&(topic.to_owned(), partition)).copied()
    }

    /// Records that Loki holds the entries up to each offset (never moving one back).
    pub fn advance(&self, offsets: &HashMap<(String, i32), i64>) -> Result<(), rocksdb::Error> {
        let mut batch = rocksdb::WriteBatch::default();
        let mut cache = self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for ((topic, partition), &offset) in offsets {
            let current = cache.entry((topic.clone(), *partition)).or_insert(-1);
            if offset > *current {
                *current = offset;
                batch.put(key(topic, *partition), offset.to_be_bytes());
            }
        }
        self.db.write(batch)
    }
}
