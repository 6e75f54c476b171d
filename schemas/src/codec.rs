//! Wire framing and Avro encoding of [`Record`]s.

use std::collections::HashMap;
use std::sync::{Arc, Once};

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::writer::datum::GenericDatumWriter;

use crate::registry::{Record, SchemaError, SchemaSet, SchemaVersion};

/// Magic bytes of Avro single-object encoding.
pub const SINGLE_OBJECT_MAGIC: [u8; 2] = [0xC3, 0x01];
/// Magic byte of Confluent Schema Registry framing.
pub const CONFLUENT_MAGIC: u8 = 0x00;
/// The largest allocation a decoded length prefix may ask for. Records are far smaller; this keeps
/// a corrupt length from allocating gigabytes.
pub const MAX_ALLOCATION_BYTES: usize = 64 * 1024 * 1024;

/// Why a record could not be encoded or decoded. Every decode error is a bad record: it belongs in
/// the dead-letter topic, never in a retry loop.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// Fewer bytes than the framing header needs.
    #[error("record too short: {0} bytes")]
    TooShort(usize),
    /// The first byte(s) match no framing this codec accepts.
    #[error("unknown framing magic {0:#04x}")]
    BadMagic(u8),
    /// A single-object record names a schema this build does not know.
    #[error("unknown schema fingerprint {0:#018x}")]
    UnknownFingerprint(u64),
    /// A Confluent-framed record names a schema id that was not registered.
    #[error("unknown schema registry id {0}")]
    UnknownSchemaId(u32),
    /// The record is of another family than the caller asked for.
    #[error("expected a {expected} record, found {found} v{version}")]
    WrongFamily {
        /// The family the caller asked for.
        expected: &'static str,
        /// The family the record was written with.
        found: String,
        /// Its version.
        version: u32,
    },
    /// The Avro body does not decode with its writer schema.
    #[error("corrupt {family} body: {reason}")]
    Body {
        /// The family the header named.
        family: String,
        /// What went wrong.
        reason: String,
    },
    /// The body decoded but bytes were left over.
    #[error("{0} trailing bytes after the record body")]
    TrailingBytes(usize),
    /// The value does not fit its schema (a bug in the caller's type, not bad input).
    #[error("cannot encode {family}: {reason}")]
    Encode {
        /// The family being written.
        family: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// The schema set has no such family.
    #[error(transparent)]
    Schema(#[from] SchemaError),
}

/// Schema Registry ids, assigned when bmon registers its schemas at start-up.
#[derive(Debug, Default, Clone)]
pub struct ConfluentIds {
    by_id: HashMap<u32, (String, u32)>,
    by_version: HashMap<(String, u32), u32>,
}

impl ConfluentIds {
    /// Records that the registry gave `id` to `family` version `version`.
    pub fn insert(&mut self, id: u32, family: &str, version: u32) {
        self.by_id.insert(id, (family.to_owned(), version));
        self.by_version.insert((family.to_owned(), version), id);
    }
}

/// How records are framed on the wire.
#[derive(Debug, Clone, Default)]
pub enum Framing {
    /// Avro single-object encoding; needs no registry. The default.
    #[default]
    SingleObject,
    /// Confluent framing with ids from a Schema Registry (e.g. Redpanda's built-in one).
    Confluent(ConfluentIds),
}

/// Encodes and decodes records with one framing. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Codec {
    schemas: Arc<SchemaSet>,
    framing: Framing,
}

impl Default for Codec {
    fn default() -> Self {
        Codec::new(SchemaSet::builtin(), Framing::SingleObject)
    }
}

impl Codec {
    /// A codec over `schemas` with the given framing.
    pub fn new(schemas: Arc<SchemaSet>, framing: Framing) -> Self {
        static LIMIT: Once = Once::new();
        LIMIT.call_once(|| {
            apache_avro::util::max_allocation_bytes(MAX_ALLOCATION_BYTES);
        });
        Codec { schemas, framing }
    }

    /// The schema set this codec uses.
    pub fn schemas(&self) -> &Arc<SchemaSet> {
        &self.schemas
    }

    /// Encodes `value` with the newest version of its family.
    pub fn encode<T: Record>(&self, value: &T) -> Result<Vec<u8>, CodecError> {
        let version = self.schemas.latest(T::FAMILY)?;
        let mut out = Vec::with_capacity(128);
        match &self.framing {
            Framing::SingleObject => {
                out.extend_from_slice(&SINGLE_OBJECT_MAGIC);
                out.extend_from_slice(&version.fingerprint.to_le_bytes());
            }
            Framing::Confluent(ids) => {
                let key = (version.family.clone(), version.version);
                let id = ids.by_version.get(&key).ok_or_else(|| CodecError::Encode {
                    family: T::FAMILY,
                    reason: format!("v{} is not registered with the schema registry", version.version),
                })?;
                out.push(CONFLUENT_MAGIC);
                out.extend_from_slice(&id.to_be_bytes());
            }
        }
        if self.schemas.is_builtin()
            && let Some(writer) = crate::registry::prebuilt().writers.get(&version.fingerprint)
        {
            writer.write_ser(&mut out, value).map_err(|e| encode_err::<T>(&e))?;
            return Ok(out);
        }
        let writer = GenericDatumWriter::builder(&version.schema).build().map_err(|e| encode_err::<T>(&e))?;
        writer.write_ser(&mut out, value).map_err(|e| encode_err::<T>(&e))?;
        Ok(out)
    }

    /// The schema version a framed record was written with, without decoding its body.
    pub fn writer_version(&self, bytes: &[u8]) -> Result<&Arc<SchemaVersion>, CodecError> {
        let (&magic, _) = bytes.split_first().ok_or(CodecError::TooShort(0))?;
        match (&self.framing, magic) {
            (_, 0xC3) => {
                let header: [u8; 10] =
                    bytes.get(..10).and_then(|h| h.try_into().ok()).ok_or(CodecError::TooShort(bytes.len()))?;
                if header[1] != SINGLE_OBJECT_MAGIC[1] {
                    return Err(CodecError::BadMagic(header[1]));
                }
                let mut fp = [0u8; 8];
                fp.copy_from_slice(&header[2..]);
                let fp = u64::from_le_bytes(fp);
                self.schemas.by_fingerprint(fp).ok_or(CodecError::UnknownFingerprint(fp))
            }
            (Framing::Confluent(ids), CONFLUENT_MAGIC) => {
                let header: [u8; 5] =
                    bytes.get(..5).and_then(|h| h.try_into().ok()).ok_or(CodecError::TooShort(bytes.len()))?;
                let id = u32::from_be_bytes([header[1], header[2], header[3], header[4]]);
                let (family, version) = ids.by_id.get(&id).ok_or(CodecError::UnknownSchemaId(id))?;
                self.schemas.version(family, *version).ok_or(CodecError::UnknownSchemaId(id))
            }
            (_, other) => Err(CodecError::BadMagic(other)),
        }
    }

    /// Decodes a framed record into `T`, resolving older schema versions into the current one.
    ///
    /// Both framings are accepted when the codec is in Confluent mode, so topics that mix records
    /// from before and after a registry was configured stay readable.
    pub fn decode<T: Record>(&self, bytes: &[u8]) -> Result<T, CodecError> {
        let writer = self.writer_version(bytes)?;
        if writer.family != T::FAMILY {
            return Err(CodecError::WrongFamily {
                expected: T::FAMILY,
                found: writer.family.clone(),
                version: writer.version,
            });
        }
        let header_len = if bytes[0] == CONFLUENT_MAGIC { 5 } else { 10 };
        let mut body = &bytes[header_len..];
        let reader = self.schemas.latest(T::FAMILY)?;
        let body_err =
            |e: apache_avro::Error| CodecError::Body { family: writer.family.clone(), reason: e.to_string() };
        let prebuilt =
            if self.schemas.is_builtin() { crate::registry::prebuilt().readers.get(&writer.fingerprint) } else { None };
        let value: T = if let (true, Some(r)) = (Arc::ptr_eq(writer, reader), prebuilt) {
            r.read_deser(&mut body).map_err(body_err)?
        } else if Arc::ptr_eq(writer, reader) {
            // Same schema: decode straight into T.
            GenericDatumReader::builder(&writer.schema)
                .build()
                .map_err(body_err)?
                .read_deser(&mut body)
                .map_err(body_err)?
        } else {
            // Older writer: resolve into the reader schema first (Avro schema resolution).
            let resolved = GenericDatumReader::builder(&writer.schema)
                .reader_schema(&reader.schema)
                .build()
                .map_err(body_err)?
                .read_value(&mut body)
                .map_err(body_err)?;
            apache_avro::from_value(&resolved).map_err(body_err)?
        };
        if !body.is_empty() {
            return Err(CodecError::TrailingBytes(body.len()));
        }
        Ok(value)
    }
}

impl Codec {
    /// Decodes a framed record of any family into JSON, as its writer schema describes it (for
    /// sinks that show records rather than interpret them, such as the Loki sink's events).
    /// Returns the family and the value; bytes fields become arrays of numbers, unions their
    /// branch's value.
    pub fn decode_json(&self, bytes: &[u8]) -> Result<(String, serde_json::Value), CodecError> {
        let writer = self.writer_version(bytes)?;
        let header_len = if bytes[0] == CONFLUENT_MAGIC { 5 } else { 10 };
        let mut body = &bytes[header_len..];
        let body_err =
            |e: apache_avro::Error| CodecError::Body { family: writer.family.clone(), reason: e.to_string() };
        let value = GenericDatumReader::builder(&writer.schema)
            .build()
            .map_err(body_err)?
            .read_value(&mut body)
            .map_err(body_err)?;
        if !body.is_empty() {
            return Err(CodecError::TrailingBytes(body.len()));
        }
        let json = serde_json::Value::try_from(value).map_err(body_err)?;
        Ok((writer.family.clone(), json))
    }
}

fn encode_err<T: Record>(e: &apache_avro::Error) -> CodecError {
    CodecError::Encode { family: T::FAMILY, reason: e.to_string() }
}
