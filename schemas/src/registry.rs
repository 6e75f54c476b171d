//! The embedded set of schema versions, indexed by family, version and fingerprint.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use apache_avro::Schema;
use apache_avro::rabin::Rabin;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A Rust type that is the current form of one schema family.
pub trait Record: Serialize + DeserializeOwned {
    /// The schema family, e.g. `log_line_fact`; files are `schemas/avro/<family>.v<N>.avsc`.
    const FAMILY: &'static str;
}

/// Every `.avsc` file shipped with bmon, as `(family, version, json)`.
const BUILTIN: &[(&str, u32, &str)] = &[
    ("log_line_fact", 1, include_str!("../avro/log_line_fact.v1.avsc")),
    ("log_line_fact", 2, include_str!("../avro/log_line_fact.v2.avsc")),
    ("zmq_fact", 1, include_str!("../avro/zmq_fact.v1.avsc")),
    ("rpc_snapshot_fact", 1, include_str!("../avro/rpc_snapshot_fact.v1.avsc")),
    ("node_view", 1, include_str!("../avro/node_view.v1.avsc")),
    ("node_event", 1, include_str!("../avro/node_event.v1.avsc")),
    ("node_event", 2, include_str!("../avro/node_event.v2.avsc")),
    ("observation", 1, include_str!("../avro/observation.v1.avsc")),
    ("observation", 2, include_str!("../avro/observation.v2.avsc")),
    ("observation", 3, include_str!("../avro/observation.v3.avsc")),
    ("propagation_summary", 1, include_str!("../avro/propagation_summary.v1.avsc")),
    ("propagation_anomaly", 1, include_str!("../avro/propagation_anomaly.v1.avsc")),
    ("chain_reorg", 1, include_str!("../avro/chain_reorg.v1.avsc")),
    ("selfish_mining_suspect", 1, include_str!("../avro/selfish_mining_suspect.v1.avsc")),
    ("stale_tip", 1, include_str!("../avro/stale_tip.v1.avsc")),
    ("invalid_block", 1, include_str!("../avro/invalid_block.v1.avsc")),
    ("node_lagging", 1, include_str!("../avro/node_lagging.v1.avsc")),
    ("inflation", 1, include_str!("../avro/inflation.v1.avsc")),
    ("chain_split", 1, include_str!("../avro/chain_split.v1.avsc")),
    ("block_connect", 1, include_str!("../avro/block_connect.v1.avsc")),
    ("block_connect_comparison", 1, include_str!("../avro/block_connect_comparison.v1.avsc")),
    ("mempool_rejection_spike", 1, include_str!("../avro/mempool_rejection_spike.v1.avsc")),
    ("mempool_empty", 1, include_str!("../avro/mempool_empty.v1.avsc")),
    ("tx_verdict", 1, include_str!("../avro/tx_verdict.v1.avsc")),
    ("policy_divergence", 1, include_str!("../avro/policy_divergence.v1.avsc")),
    ("tx_conflict", 1, include_str!("../avro/tx_conflict.v1.avsc")),
    ("mempool_divergence", 1, include_str!("../avro/mempool_divergence.v1.avsc")),
    ("mempool_conflict", 1, include_str!("../avro/mempool_conflict.v1.avsc")),
    ("template_divergence", 1, include_str!("../avro/template_divergence.v1.avsc")),
    ("dead_letter", 1, include_str!("../avro/dead_letter.v1.avsc")),
    ("dead_letter", 2, include_str!("../avro/dead_letter.v2.avsc")),
];

/// A schema file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// The JSON is not a valid Avro schema.
    #[error("schema {family} v{version} does not parse: {source}")]
    Parse {
        /// Schema family.
        family: String,
        /// Version number.
        version: u32,
        /// The parser's complaint.
        #[source]
        source: Box<apache_avro::Error>,
    },
    /// No schema of this family is known.
    #[error("unknown schema family `{0}`")]
    UnknownFamily(String),
    /// Two versions of one family share a version number.
    #[error("schema {family} v{version} is declared twice")]
    Duplicate {
        /// Schema family.
        family: String,
        /// Version number.
        version: u32,
    },
}

/// One parsed version of a schema family.
#[derive(Debug)]
pub struct SchemaVersion {
    /// Schema family, e.g. `observation`.
    pub family: String,
    /// Version number, 1-based.
    pub version: u32,
    /// The schema JSON as shipped.
    pub json: String,
    /// The parsed schema.
    pub schema: Schema,
    /// CRC-64-AVRO (Rabin) fingerprint of the canonical form.
    pub fingerprint: u64,
}

/// All schema versions bmon knows, indexed for the codec.
#[derive(Debug)]
pub struct SchemaSet {
    versions: Vec<Arc<SchemaVersion>>,
    by_fingerprint: HashMap<u64, Arc<SchemaVersion>>,
    latest: HashMap<String, Arc<SchemaVersion>>,
}

impl SchemaSet {
    /// Builds a set from `(family, version, json)` triples.
    pub fn from_sources<'a>(sources: impl IntoIterator<Item = (&'a str, u32, &'a str)>) -> Result<Self, SchemaError> {
        let mut set = SchemaSet { versions: Vec::new(), by_fingerprint: HashMap::new(), latest: HashMap::new() };
        for (family, version, json) in sources {
            let schema = Schema::parse_str(json).map_err(|e| SchemaError::Parse {
                family: family.to_owned(),
                version,
                source: Box::new(e),
            })?;
            if set.versions.iter().any(|v| v.family == family && v.version == version) {
                return Err(SchemaError::Duplicate { family: family.to_owned(), version });
            }
            let fingerprint = fingerprint_of(&schema);
            let v = Arc::new(SchemaVersion {
                family: family.to_owned(),
                version,
                json: json.to_owned(),
                schema,
                fingerprint,
            });
            set.by_fingerprint.insert(fingerprint, Arc::clone(&v));
            let newer = set.latest.get(family).is_none_or(|cur| cur.version < version);
            if newer {
                set.latest.insert(family.to_owned(), Arc::clone(&v));
            }
            set.versions.push(v);
        }
        Ok(set)
    }

    /// The schemas shipped in `schemas/avro/`, parsed once per process.
    ///
    /// # Panics
    /// Never at run time: the embedded files are parsed by the crate's tests, so a broken file fails
    /// the build's test run rather than a deployment.
    pub fn builtin() -> Arc<SchemaSet> {
        Arc::clone(builtin_static())
    }

    /// True if this is the process-wide builtin set (whose readers and writers are prebuilt).
    pub fn is_builtin(self: &Arc<SchemaSet>) -> bool {
        Arc::ptr_eq(self, builtin_static())
    }

    /// The newest version of `family`.
    pub fn latest(&self, family: &str) -> Result<&Arc<SchemaVersion>, SchemaError> {
        self.latest.get(family).ok_or_else(|| SchemaError::UnknownFamily(family.to_owned()))
    }

    /// The version whose canonical form has this fingerprint.
    pub fn by_fingerprint(&self, fingerprint: u64) -> Option<&Arc<SchemaVersion>> {
        self.by_fingerprint.get(&fingerprint)
    }

    /// One specific version of a family.
    pub fn version(&self, family: &str, version: u32) -> Option<&Arc<SchemaVersion>> {
        self.versions.iter().find(|v| v.family == family && v.version == version)
    }

    /// Every version, in declaration order.
    pub fn versions(&self) -> impl Iterator<Item = &Arc<SchemaVersion>> {
        self.versions.iter()
    }

    /// The distinct family names.
    pub fn families(&self) -> impl Iterator<Item = &str> {
        self.latest.keys().map(String::as_str)
    }
}

/// CRC-64-AVRO fingerprint of a schema's parsing canonical form, as a little-endian u64.
pub fn fingerprint_of(schema: &Schema) -> u64 {
    let fp = schema.fingerprint::<Rabin>();
    let mut bytes = [0u8; 8];
    for (dst, src) in bytes.iter_mut().zip(fp.bytes.iter()) {
        *dst = *src;
    }
    u64::from_le_bytes(bytes)
}

fn builtin_static() -> &'static Arc<SchemaSet> {
    static SET: OnceLock<Arc<SchemaSet>> = OnceLock::new();
    SET.get_or_init(|| {
        #[allow(clippy::expect_used)]
        Arc::new(SchemaSet::from_sources(BUILTIN.iter().copied()).expect("embedded schemas parse"))
    })
}

/// Readers and writers for every builtin schema version, built once: building one resolves the
/// schema's names, which would otherwise cost more than decoding a small record.
pub(crate) struct Prebuilt {
    /// By fingerprint.
    pub(crate) readers: HashMap<u64, apache_avro::reader::datum::GenericDatumReader<'static>>,
    /// By fingerprint.
    pub(crate) writers: HashMap<u64, apache_avro::writer::datum::GenericDatumWriter<'static>>,
}

/// The prebuilt readers and writers of the builtin set.
pub(crate) fn prebuilt() -> &'static Prebuilt {
    static PREBUILT: OnceLock<Prebuilt> = OnceLock::new();
    PREBUILT.get_or_init(|| {
        let set: &'static SchemaSet = builtin_static();
        let mut p = Prebuilt { readers: HashMap::new(), writers: HashMap::new() };
        for v in &set.versions {
            if let Ok(r) = apache_avro::reader::datum::GenericDatumReader::builder(&v.schema).build() {
                p.readers.insert(v.fingerprint, r);
            }
            if let Ok(w) = apache_avro::writer::datum::GenericDatumWriter::builder(&v.schema).build() {
                p.writers.insert(v.fingerprint, w);
            }
        }
        p
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_schemas_parse_with_distinct_fingerprints() {
        let set = SchemaSet::from_sources(BUILTIN.iter().copied()).unwrap();
        assert_eq!(set.versions().count(), BUILTIN.len());
        assert_eq!(set.by_fingerprint.len(), BUILTIN.len(), "two versions share a fingerprint");
        assert_eq!(set.latest("dead_letter").unwrap().version, 2);
    }

    #[test]
    fn builtin_list_matches_files_on_disk() {
        // At run time: a test binary cached from another checkout must read this one's files.
        let dir = std::path::PathBuf::from(
            std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
        )
        .join("avro");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".avsc"))
            .collect();
        on_disk.sort();
        let mut listed: Vec<String> = BUILTIN.iter().map(|(f, v, _)| format!("{f}.v{v}.avsc")).collect();
        listed.sort();
        assert_eq!(on_disk, listed, "every .avsc file must be embedded, and only those");
    }

    #[test]
    fn bad_schema_json_is_an_error() {
        let err = SchemaSet::from_sources([("x", 1, "{\"type\": \"record\"}")]).unwrap_err();
        assert!(matches!(err, SchemaError::Parse { version: 1, .. }), "{err}");
        let err = SchemaSet::from_sources([("x", 1, "\"int\""), ("x", 1, "\"long\"")]).unwrap_err();
        assert!(matches!(err, SchemaError::Duplicate { .. }), "{err}");
    }
}
