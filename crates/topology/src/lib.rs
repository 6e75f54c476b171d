//! Typed, validated view of `topology.yaml`, the single source of truth for bmon's topics, keys,
//! processors and state stores.
//!
//! [`Topology::load`] parses the file with unknown fields rejected, then checks every
//! cross-reference (inputs, outputs, keys, schema files, changelog topics, replay windows). Every
//! problem is reported with the exact field path, e.g. `processors[1].inputs[0]`.

mod bind;
mod model;
mod retention;
mod validate;

use std::path::{Path, PathBuf};

/// The repository's topology.yaml, as this binary was built.
pub const BUILTIN: &str = include_str!("../../../topology.yaml");

pub use bind::BindError;
pub use model::{CleanupPolicy, KeyDecl, Processor, Recovery, StateStore, Topic, Topology};
pub use retention::{ParseRetentionError, Retention};

/// One thing wrong with a topology, located by its field path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Problem {
    /// Field path, e.g. `topics[2].partitions`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// Why a topology could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The YAML does not match the expected shape (unknown or missing field, wrong type).
    #[error("{path}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message, with the field path and line.
        message: String,
    },
    /// The file parsed but its contents are inconsistent.
    #[error("{path}: {} problem(s):\n{}", problems.len(), problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Every problem found.
        problems: Vec<Problem>,
    },
}

impl TopologyError {
    /// The problems, when the error is a validation error.
    pub fn problems(&self) -> &[Problem] {
        match self {
            TopologyError::Invalid { problems, .. } => problems,
            _ => &[],
        }
    }
}

impl Topology {
    /// Reads, parses and validates a topology file. Schema files are looked up relative to the
    /// file's directory.
    pub fn load(path: impl AsRef<Path>) -> Result<Topology, TopologyError> {
        let path = path.as_ref();
        let text =
            std::fs::read_to_string(path).map_err(|source| TopologyError::Io { path: path.to_owned(), source })?;
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        Topology::parse(&text, base).map_err(|e| match e {
            TopologyError::Syntax { message, .. } => TopologyError::Syntax { path: path.to_owned(), message },
            TopologyError::Invalid { problems, .. } => TopologyError::Invalid { path: path.to_owned(), problems },
            other => other,
        })
    }

    /// Parses and validates topology text; `base` is the directory `schema_dir` is relative to.
    pub fn parse(text: &str, base: &Path) -> Result<Topology, TopologyError> {
        let families = validate::schema_families(&base.join(Self::schema_dir_of(text)));
        Self::parse_with_families(text, &families)
    }

    /// The topology this bmon was built with (the repository's topology.yaml), checked against
    /// `families`, the schema families the binary embeds. Used where no topology file is given,
    /// e.g. by a producer beside a node.
    pub fn builtin<'a>(families: impl IntoIterator<Item = &'a str>) -> Result<Topology, TopologyError> {
        let families = families.into_iter().map(str::to_owned).collect();
        Self::parse_with_families(BUILTIN, &families)
    }

    /// Parses and validates topology text, with `families` the schema families that exist.
    pub fn parse_with_families(
        text: &str,
        families: &std::collections::HashSet<String>,
    ) -> Result<Topology, TopologyError> {
        let topology: Topology = serde_norway::from_str(text)
            .map_err(|e| TopologyError::Syntax { path: PathBuf::from("<topology>"), message: e.to_string() })?;
        let problems = validate::validate(&topology, families);
        if problems.is_empty() {
            Ok(topology)
        } else {
            Err(TopologyError::Invalid { path: PathBuf::from("<topology>"), problems })
        }
    }

    /// The `schema_dir` of topology text, or the default if it cannot be read from it.
    fn schema_dir_of(text: &str) -> PathBuf {
        #[derive(serde::Deserialize)]
        struct Dir {
            #[serde(default = "model::default_schema_dir")]
            schema_dir: PathBuf,
        }
        serde_norway::from_str::<Dir>(text).map(|d| d.schema_dir).unwrap_or_else(|_| model::default_schema_dir())
    }

    /// The topic with this name.
    pub fn topic(&self, name: &str) -> Option<&Topic> {
        self.topics.iter().find(|t| t.name == name)
    }

    /// The processor with this name.
    pub fn processor(&self, name: &str) -> Option<&Processor> {
        self.processors.iter().find(|p| p.name == name)
    }
}
