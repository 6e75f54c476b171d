//! Runtime metric names (every processor): records, dead letters, replay, rebalances.

/// Input records processed, by processor and topic (counter).
pub const RECORDS: &str = "bmon_processor_records_total";
/// Input records replayed to rebuild state, by processor (counter).
pub const REPLAYED: &str = "bmon_processor_replayed_records_total";
/// Records sent to the dead-letter topic, by processor and reason class (counter).
pub const DEAD_LETTERS: &str = "bmon_processor_dead_letters_total";
/// Output records published and acknowledged, by processor and topic (counter).
pub const OUTPUTS: &str = "bmon_processor_outputs_total";
/// Partitions assigned to this instance, by processor (gauge).
pub const ASSIGNED: &str = "bmon_processor_assigned_partitions";
/// Delivery failures that restarted the consumer loop, by processor (counter).
pub const RESTARTS: &str = "bmon_processor_restarts_total";
/// Age of each live input record when processed: now minus its broker timestamp, seconds, by
/// processor (histogram). How far behind the input the processor runs, and the broker's share of
/// end-to-end latency.
pub const RECORD_AGE: &str = "bmon_processor_record_age_seconds";
