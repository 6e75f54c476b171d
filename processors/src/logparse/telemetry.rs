//! logparse metric names.

/// Redelivered facts skipped by envelope key, by stream kind (`log`, `zmq`) (counter).
pub const DUPLICATES: &str = "bmon_logparse_duplicate_facts_total";
