//! Feeding encoded records to a processor in process, as the runtime would: shared by the
//! in-process benchmarks.

use std::time::{Duration, Instant};

use bmon_processors::runtime::{Input, Processor};

/// Feeds `payloads` as consecutive offsets of `topic`/`partition` to `p`, with a checkpoint every
/// 50k records (the runtime checkpoints about once a second) and one at the end. Returns how many
/// outputs it made and how long it took.
pub fn feed(p: &mut impl Processor, topic: &str, partition: i32, payloads: &[Vec<u8>]) -> (usize, Duration) {
    let mut out = Vec::new();
    let mut outputs = 0usize;
    let start = Instant::now();
    for (offset, payload) in payloads.iter().enumerate() {
        let input = Input {
            topic,
            partition,
            offset: offset as i64,
            key: None,
            payload,
            timestamp_ms: None,
            replay: false,
            replay_id: None,
        };
        out.clear();
        p.process(&input, &mut out).unwrap_or_else(|e| panic!("record {offset}: {e}"));
        outputs += out.len();
        if offset % 50_000 == 49_999 {
            p.checkpoint(&[(topic.to_owned(), partition, offset as i64 + 1)]);
        }
    }
    p.checkpoint(&[(topic.to_owned(), partition, payloads.len() as i64)]);
    (outputs, start.elapsed())
}
