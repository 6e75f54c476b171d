//! Avro schemas, Rust record types and the wire codec for every bmon topic.
//!
//! The `.avsc` files under `schemas/avro/` are the source of truth. Each file is one version of one
//! schema family (`<family>.v<N>.avsc`); [`SchemaSet::builtin`] embeds them all. The Rust types in
//! [`types`] mirror the newest version of each family and are checked against it by tests.
//!
//! [`Codec`] frames records in Avro single-object encoding by default (`0xC3 0x01` + the 8-byte
//! CRC-64-AVRO fingerprint), or in Confluent framing (`0x00` + big-endian schema id) when a Schema
//! Registry is in use. Decoding resolves data written with any older version of a family into the
//! current Rust type (Avro schema resolution), and every failure is an error value, never a panic.

pub mod codec;
pub mod registry;
pub mod samples;
pub mod types;

pub use codec::{Codec, CodecError, ConfluentIds, Framing};
pub use registry::{Record, SchemaError, SchemaSet, SchemaVersion};
pub use types::*;
